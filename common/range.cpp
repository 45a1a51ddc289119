#include "common/range.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "common/error.h"
#include "common/format.h"

namespace sit {
namespace {

std::string number(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::abs(v) < 1e15)
    return std::to_string(static_cast<long long>(v));
  return python_repr(v);
}

}  // namespace

std::string Range::describe() const {
  const std::string what = integer ? "an integer" : "a number";
  const bool has_lo = std::isfinite(lo), has_hi = std::isfinite(hi);
  if (has_lo && has_hi)
    return cat(what, " in ", lo_open ? "(" : "[", number(lo), ", ", number(hi), hi_open ? ")" : "]");
  if (has_lo) return cat(what, lo_open ? " > " : " >= ", number(lo));
  if (has_hi) return cat(what, hi_open ? " < " : " <= ", number(hi));
  return integer ? what : "a finite number";
}

std::string Range::check(double v) const {
  const bool ok = std::isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi) &&
                  (!integer || v == std::floor(v));
  return ok ? std::string() : cat("expected ", describe(), ", got ", number(v));
}

std::string Range::check_text(const std::string& text) const {
  if (integer) {  // digits only: no 1e3, 0x10 or 2.0 where a count is expected
    const size_t start = !text.empty() && (text[0] == '-' || text[0] == '+') ? 1 : 0;
    if (text.size() == start || text.find_first_not_of("0123456789", start) != std::string::npos)
      return cat("expected ", describe(), ", got '", text, "'");
  }
  const char* begin = text.c_str();
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(begin, &end);
  if (text.empty() || end != begin + text.size() || errno == ERANGE)
    return cat("expected ", describe(), ", got '", text, "'");
  return check(v);
}

std::string check_seed_text(const std::string& text) {
  errno = 0;
  char* end = nullptr;
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos) {
    std::strtoull(text.c_str(), &end, 10);
    if (errno != ERANGE) return "";
  }
  return cat("expected an integer in [0, 18446744073709551615], got '", text, "'");
}

Range at_least(int64_t lo) {
  Range r;
  r.lo = static_cast<double>(lo);
  r.integer = true;
  return r;
}

Range integers(int64_t lo, int64_t hi) {
  Range r = at_least(lo);
  r.hi = static_cast<double>(hi);
  return r;
}

Range greater_than(double lo) {
  Range r;
  r.lo = lo;
  r.lo_open = true;
  return r;
}

Range not_below(double lo) {
  Range r;
  r.lo = lo;
  return r;
}

Range between(double lo, double hi, bool lo_open, bool hi_open) {
  Range r;
  r.lo = lo;
  r.hi = hi;
  r.lo_open = lo_open;
  r.hi_open = hi_open;
  return r;
}

}  // namespace sit
