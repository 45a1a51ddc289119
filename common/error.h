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

/// A file could not be written (disk full, I/O error, read-only file system): a fault of
/// the machine, not of the input. A sweep stops on it instead of recording the
/// configuration as failed, so that the same command computes it once the fault is gone.
class OutputError : public Error {
 public:
  using Error::Error;
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

/// Throws sit::OutputError built from the streamed arguments (name the file).
template <class... Args>
[[noreturn]] void fail_output(const Args&... args) {
  throw OutputError(cat(args...));
}

/// Runs `f`; a sit::Error it throws comes back prefixed with where it failed
/// ("sweep.toml:7: cfg_scale: expected ..."). Returns what `f` returns.
template <class F>
auto in_context(const std::string& where, F&& f) {
  try {
    return f();
  } catch (const OutputError& e) {
    throw OutputError(where + ": " + e.what());
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
