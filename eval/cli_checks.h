#pragma once
/// Command-line validation shared by every subcommand: numeric ranges checked by CLI11
/// as each value is parsed ("error: --num-sampling-steps: expected an integer >= 2, got
/// 0"), before any work starts.

#include <CLI/CLI.hpp>

#include "common/error.h"
#include "common/format.h"
#include "common/range.h"

namespace sit::eval {

/// A CLI11 validator for `range`; attach with option->check(valid(range)).
inline CLI::Validator valid(const Range& range) {
  return CLI::Validator([range](std::string& text) { return range.check_text(text); },
                        "");  // the range is in the error message, not the help line
}

/// Runs a library parser on an option's value; its error is prefixed with the option.
template <class Parse>
auto option_value(const char* option, Parse&& parse) {
  return in_context(option, std::forward<Parse>(parse));
}

/// Lower-cases the value (device names, precisions: "CPU" is "cpu").
inline CLI::Validator lowercase() {
  return CLI::Validator(
      [](std::string& text) {
        text = sit::lowercase(text);
        return std::string();
      },
      "");
}

/// Seeds: whole numbers in [0, 2^64 - 1]; "-1" is refused rather than wrapped.
inline CLI::Validator valid_seed() {
  return CLI::Validator([](std::string& text) { return check_seed_text(text); }, "");
}

}  // namespace sit::eval
