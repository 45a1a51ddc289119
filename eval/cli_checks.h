#pragma once
/// Command-line validation shared by every subcommand: numeric ranges checked by CLI11
/// as each value is parsed ("error: --num-sampling-steps: expected an integer >= 2, got
/// 0"), before any work starts.

#include <CLI/CLI.hpp>

#include "common/range.h"

namespace sit::eval {

/// A CLI11 validator for `range`; attach with option->check(valid(range)).
inline CLI::Validator valid(const Range& range) {
  return CLI::Validator([range](std::string& text) { return range.check_text(text); },
                        "");  // the range is in the error message, not the help line
}

}  // namespace sit::eval
