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

}  // namespace sit
