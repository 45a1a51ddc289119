#pragma once
/// IEEE binary16 rounding in software (round to nearest even), for emulating half
/// precision arithmetic exactly on any CPU.

#include <cstdint>
#include <cstring>

namespace sit::metrics {

/// Returns x rounded to the nearest IEEE half value, as a float: subnormal halves are
/// multiples of 2^-24, values from 65520 on overflow to +-Inf, NaN stays NaN.
inline float round_to_half(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  const uint32_t sign = u & 0x80000000u;
  const uint32_t a = u ^ sign;
  uint32_t r;
  if (a >= 0x7f800000u) {
    r = a;  // Inf or NaN
  } else if (a < 0x38800000u) {
    // Below 2^-14: half subnormals. 0.5 + |x| has an ulp of 2^-24, so the addition rounds
    // |x| to the subnormal grid with round-to-nearest-even.
    float y;
    std::memcpy(&y, &a, sizeof(y));
    const float rounded = (y + 0.5f) - 0.5f;
    std::memcpy(&r, &rounded, sizeof(r));
  } else {
    // Keep 10 mantissa bits, ties to even.
    r = (a + 0x0fffu + ((a >> 13) & 1u)) & 0xffffe000u;
    if (r >= 0x47800000u) r = 0x7f800000u;  // >= 65536 after rounding: overflow
  }
  r |= sign;
  float out;
  std::memcpy(&out, &r, sizeof(out));
  return out;
}

}  // namespace sit::metrics
