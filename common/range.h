#pragma once
/// Valid ranges of numeric settings, checked where a value is parsed (command-line
/// options and sweep keys alike) so bad values are refused before any work starts.
/// Messages read "expected an integer >= 2, got 0" and are prefixed with the option or
/// key by the caller.

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

namespace sit {

struct Range {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;  ///< strict bounds: > lo, < hi
  bool integer = false;                   ///< whole numbers only

  /// "an integer >= 2", "a number > 0", "a number in [0, 1)", "a finite number".
  std::string describe() const;
  /// Empty when `value` lies in the range (and is finite), else "expected ..., got V".
  std::string check(double value) const;
  /// As check() for the text of a command-line value: also refuses text that is not a
  /// number (or not a whole number where one is required).
  std::string check_text(const std::string& text) const;
};

/// Empty when `text` is a seed: a whole number in [0, 2^64 - 1] (no sign, no wrap).
std::string check_seed_text(const std::string& text);

/// Integers >= lo.
Range at_least(int64_t lo);
/// Integers in [lo, hi].
Range integers(int64_t lo, int64_t hi);
/// Numbers > lo (positive tolerances, step sizes).
Range greater_than(double lo);
/// Numbers >= lo.
Range not_below(double lo);
/// Numbers in [lo, hi], with either end open.
Range between(double lo, double hi, bool lo_open = false, bool hi_open = false);

}  // namespace sit
