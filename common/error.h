#pragma once
/// Error type for bad user input and bad data. Internal invariants use assert.
/// Message shape: "<where>: <what> must be <expected>, got <actual>".

#include <sstream>
#include <stdexcept>
#include <string>

namespace sit {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// Concatenates anything streamable into one string.
template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

/// Throws sit::Error built from the streamed arguments.
template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(cat(args...));
}

/// Runs `f`; a sit::Error it throws comes back prefixed with where it failed
/// ("sweep.toml:7: cfg_scale: expected ..."). Returns what `f` returns.
template <class F>
auto in_context(const std::string& where, F&& f) {
  try {
    return f();
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
}

/// For branches that cannot be reached when the program is right (every enum value is
/// handled): throws std::logic_error("internal error: ...") instead of returning a dummy.
template <class... Args>
[[noreturn]] void unreachable(const Args&... args) {
  throw std::logic_error(cat("internal error: ", args...));
}

}  // namespace sit
