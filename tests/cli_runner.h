#pragma once
// Runs the sit-eval program as a user would: exit code, stdout and stderr.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {  // NOLINT: header-local helpers for one test program each

struct CliRun {
  int code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

CliRun run(const std::string& args) {
  const auto dir = std::filesystem::temp_directory_path() / "sit-eval-tests";
  std::filesystem::create_directories(dir);
  const auto err_path = dir / ("stderr." + std::to_string(::getpid()));
  const std::string cmd =
      // One thread: ctest runs tests side by side on every core, and multi-threaded
      // processes sharing cores slow each other down badly (spinning thread barriers).
      std::string(SIT_EVAL_BINARY) + " --threads 1 " + args + " 2>" + err_path.string();
  CliRun r;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0)
    r.out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err_path);
  r.err.assign(std::istreambuf_iterator<char>(in), {});
  return r;
}

[[maybe_unused]] std::string fx(const std::string& name) {
  return sit::test::fixture(name);
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace
