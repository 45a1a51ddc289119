#pragma once
/// Number and shape formatting shared by the CLI, reports and error messages.

#include <cstdint>
#include <string>
#include <vector>

namespace sit {

/// Formats a double exactly as Python's repr(float) does (shortest round-trip digits,
/// scientific notation below 1e-4 and from 1e16 on), so printed metrics match the ADM
/// evaluator's `print("FID:", value)` digit for digit.
std::string python_repr(double value);

/// "(3, 4)" for {3, 4}; "(7,)" for {7}; "()" for a scalar: numpy's shape notation.
std::string shape_string(const std::vector<int64_t>& shape);

/// ASCII lower case ("CPU" -> "cpu"): names that are case-insensitive.
std::string lowercase(std::string text);

/// Fixed-point with `digits` decimals ("2.06").
std::string fixed(double value, int digits);

/// Bytes from a file made safe to print in an error message: printable ASCII as is, other
/// bytes as \xNN, cut after `max_chars` input bytes with "..." (a damaged header can hold
/// anything, a terminal escape included).
std::string printable(const std::string& bytes, size_t max_chars = 200);

}  // namespace sit
