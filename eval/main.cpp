// sit-eval: evaluation and benchmarking harness for SiT / DiT image generators.

#include <CLI/CLI.hpp>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include "common/build_info.h"
#include "common/error.h"
#include "eval/cli_checks.h"
#include "eval/commands.h"
#include "metrics/linalg.h"

#ifdef SIT_HAVE_TORCH
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#endif

namespace {

/// The first argument that is not an option or an option's value, if it names no command.
std::string unknown_command(const CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads") {
      ++i;  // its value
      continue;
    }
    if (!a.empty() && a[0] == '-') continue;
    for (const CLI::App* sub : app.get_subcommands({}))
      if (sub->get_name() == a) return "";
    return a;
  }
  return "";
}

#ifdef SIT_TORCH_PROGRAM
/// The command word of the arguments ("" for none: --help, --version).
std::string command_word(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads") ++i;  // its value
    else if (!a.empty() && a[0] != '-') return a;
  }
  return "";
}

/// An argument naming a pickle file (an EDM2 reference: its reader is LibTorch's side).
bool names_a_pickle(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(argv[i], ec)) continue;
    std::ifstream in(argv[i], std::ios::binary);
    unsigned char head[2] = {0, 0};
    in.read(reinterpret_cast<char*>(head), 2);
    if (in.gcount() == 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5) return true;
  }
  return false;
}

/// Replaces this process with SIT_TORCH_PROGRAM from this program's directory, same
/// arguments, unless this LibTorch-free front runs `metrics` itself (npz / HDF5 inputs).
/// Returns 1 after an error message when the program is needed and missing, -1 when the
/// front should go on alone (--help, --version, an unknown command: the front answers
/// them for its own commands).
int exec_torch_program(int argc, char** argv) {
  const std::string command = command_word(argc, argv);
  const bool pickle = command == "metrics" && names_a_pickle(argc, argv);
  if (command == "metrics" && !pickle) return -1;
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::filesystem::path program =
      (ec ? std::filesystem::path(argv[0]) : self).parent_path() / SIT_TORCH_PROGRAM;
  ::execv(program.c_str(), argv);
  const int e = errno;
  static const char* const kTorchCommands[] = {
      "version", "sample", "sweep", "report", "merge", "inspect", "compare", "gate",
      "evaluate", "features", "ref-stats", "convert-ref"};
  if (!pickle && std::find(std::begin(kTorchCommands), std::end(kTorchCommands), command) ==
                     std::end(kTorchCommands))
    return -1;
  std::cerr << "error: cannot run " << program.string() << " (" << std::strerror(e) << "): "
            << (pickle ? "reading an EDM2 reference pickle" : "'" + command + "'")
            << " needs that program, which holds sit-eval's LibTorch side; build it beside "
               "sit-eval (cmake --build build) and copy both together\n";
  return 1;
}
#endif

std::string command_list(const CLI::App& app) {
  std::string names;
  for (const CLI::App* sub : app.get_subcommands({}))
    names += (names.empty() ? "" : ", ") + sub->get_name();
  return names;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sit::eval;
#ifdef SIT_TORCH_PROGRAM
  if (const int rc = exec_torch_program(argc, argv); rc >= 0) return rc;
#endif
  CLI::App app{
      "sit-eval: reproducible evaluation of SiT / DiT samplers (FID, sFID, IS, "
      "precision/recall, KID with ADM evaluator semantics)",
      "sit-eval"};
  app.require_subcommand(1);
  app.fallthrough();  // --threads may follow the command
  app.set_version_flag("--version", "sit-eval " + sit::build_info().version + " (git " +
                                        sit::build_info().git_revision + ")");
  GlobalOptions global;
  global.threads = sit::linalg::hardware_threads();
  // OMP_NUM_THREADS, when set to a count, is the default (as for LibTorch and BLIS).
  if (const char* env = std::getenv("OMP_NUM_THREADS"))
    if (sit::integers(1, 4096).check_text(env).empty()) global.threads = std::atoi(env);
  app.add_option("--threads", global.threads,
                 "threads for BLAS, LibTorch and parallel loops (default: the CPUs this "
                 "process may use)")
      ->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)  // the last --threads wins
      ->check(valid(sit::integers(1, 4096)));

  std::map<std::string, Command> commands;
  commands["metrics"] = add_metrics_command(app, global);
#ifndef SIT_TORCH_PROGRAM
  commands["version"] = add_version_command(app);
#endif
#ifdef SIT_HAVE_TORCH
  commands["sample"] = add_sample_command(app);
  commands["sweep"] = add_sweep_command(app);
  commands["report"] = add_report_command(app);
  commands["merge"] = add_merge_command(app);
  commands["inspect"] = add_inspect_command(app);
  commands["compare"] = add_compare_command(app);
  commands["gate"] = add_gate_command(app);
  std::vector<std::pair<std::string, Command>> more;
  commands["evaluate"] = add_evaluate_commands(app, more);
  for (auto& [name, command] : more)
    commands[name] = std::move(command);
#endif

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    const std::string unknown = unknown_command(app, argc, argv);
    if (!unknown.empty())
      std::cerr << "error: unknown command '" << unknown << "' (commands: " << command_list(app)
                << "; sit-eval --help describes them)\n";
    else
      std::cerr << "error: " << e.what() << " (add --help for usage)\n";
    return 1;
  }
  try {
    sit::linalg::set_num_threads(global.threads);
#ifdef SIT_HAVE_TORCH
    at::set_num_threads(global.threads);  // Debian's LibTorch starts with one intra-op thread
#endif
    for (CLI::App* sub : app.get_subcommands())
      return commands.at(sub->get_name())();
  } catch (const sit::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
#ifdef SIT_HAVE_TORCH
  } catch (const c10::Error& e) {
    // LibTorch's message without its C++ backtrace
    std::cerr << "error: " << e.what_without_backtrace() << "\n";
    return 1;
#endif
  } catch (const std::filesystem::filesystem_error& e) {
    std::cerr << "error: " << e.path1().string() << ": " << e.code().message() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "error: out of memory (a size read from an input is larger than this machine "
                 "can hold)\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 1;
}
