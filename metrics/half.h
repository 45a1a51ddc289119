#pragma once
/// IEEE binary16 rounding in software (round to nearest even), for emulating half
/// precision arithmetic exactly on any CPU.

#include <cstdint>
#include <cstring>

namespace sit::metrics {

/// Returns x rounded to the nearest IEEE half value, as a float: subnormal halves are
/// multiples of 2^-24, values from 65520 on overflow to +-Inf, NaN stays NaN.
/// Branch-free (selects only), so loops calling it vectorise.
inline float round_to_half(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  const uint32_t sign = u & 0x80000000u;
  const uint32_t a = u ^ sign;
  // Normal halves: keep 10 mantissa bits, ties to even; >= 65536 after rounding overflows.
  uint32_t normal = (a + 0x0fffu + ((a >> 13) & 1u)) & 0xffffe000u;
  normal = normal >= 0x47800000u ? 0x7f800000u : normal;
  // Below 2^-14 (half subnormals): 0.5 + |x| has an ulp of 2^-24, so the addition rounds
  // |x| to the subnormal grid with round-to-nearest-even.
  float y;
  std::memcpy(&y, &a, sizeof(y));
  const float rounded = (y + 0.5f) - 0.5f;
  uint32_t subnormal;
  std::memcpy(&subnormal, &rounded, sizeof(subnormal));
  uint32_t r = a < 0x38800000u ? subnormal : normal;
  r = a >= 0x7f800000u ? a : r;  // Inf and NaN unchanged
  r |= sign;
  float out;
  std::memcpy(&out, &r, sizeof(out));
  return out;
}

}  // namespace sit::metrics
