#pragma once
// Shared helpers for the test programs.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"

namespace sit::test {

inline std::string fixture(const std::string& name) {
  return std::string(SIT_FIXTURES) + "/" + name;
}

/// The bytes of a file ("" when it cannot be read).
inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// A fresh empty directory `name` under the tests' temp area.
inline std::filesystem::path temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / "sit-eval-tests" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

/// A fresh empty directory named after the running test.
inline std::filesystem::path temp_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return temp_dir(std::string(info->test_suite_name()) + "." + info->name());
}

/// Row-major [n, d] Gaussian features with a random linear mix and offset.
inline std::vector<float> gaussian_features(int64_t n, int64_t d, uint64_t seed, double scale = 1.0,
                                            double offset = 0.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<double> mix(static_cast<size_t>(d * d));
  for (auto& m : mix)
    m = normal(rng) / std::sqrt(static_cast<double>(d));
  std::vector<float> out(static_cast<size_t>(n * d));
  std::vector<double> z(static_cast<size_t>(d));
  for (int64_t i = 0; i < n; ++i) {
    for (auto& v : z)
      v = normal(rng);
    for (int64_t j = 0; j < d; ++j) {
      double s = 0;
      for (int64_t k = 0; k < d; ++k)
        s += z[k] * mix[k * d + j];
      out[i * d + j] = static_cast<float>(scale * s + offset + 0.1 * j);
    }
  }
  return out;
}

/// Asserts that `fn` throws sit::Error whose message contains every given fragment.
template <class Fn>
void expect_error(Fn&& fn, std::initializer_list<std::string> fragments) {
  try {
    fn();
    ADD_FAILURE() << "expected sit::Error";
  } catch (const sit::Error& e) {
    const std::string msg = e.what();
    for (const auto& f : fragments)
      EXPECT_NE(msg.find(f), std::string::npos) << "message '" << msg << "' lacks '" << f << "'";
  }
}

}  // namespace sit::test
