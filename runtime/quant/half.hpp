// fp32 <-> fp16 (IEEE binary16) and fp32 <-> bf16 conversions, bit-exact with ggml's scalar
// reference: fp16 rounds to nearest even, keeps inf and NaN, produces subnormals; bf16 rounds to
// nearest even and keeps NaN quiet (a NaN never rounds into inf).
#pragma once
#include <cstdint>
#include <cstring>

namespace moevk::quant {

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return bits_float(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
  if (exponent != 0) return bits_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
  if (mantissa == 0) return bits_float(sign);
  // Subnormal: value = mantissa * 2^-24, exact in fp32.
  const float magnitude = float(mantissa) * (1.0f / 16777216.0f);
  return sign ? -magnitude : magnitude;
}

inline uint16_t fp32_to_fp16(float f) {
  const uint32_t u = float_bits(f);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const uint32_t abs_bits = u & 0x7fffffffu;
  if (abs_bits > 0x7f800000u) {  // NaN: keep it a NaN (quiet) with the top mantissa bits
    return uint16_t(sign | 0x7e00u | ((abs_bits >> 13) & 0x3ffu));
  }
  if (abs_bits >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to >= 65520: inf
  const int32_t exponent = int32_t(abs_bits >> 23) - 127;
  if (exponent >= -14) {
    // Normal half: drop 13 mantissa bits with round-to-nearest-even; a carry into the
    // exponent is the correct result (it can not reach inf here, checked above).
    const uint32_t rebased = abs_bits - (112u << 23);
    const uint32_t rounded = rebased + 0x0fffu + ((rebased >> 13) & 1u);
    return uint16_t(sign | (rounded >> 13));
  }
  if (exponent < -25) return sign;  // below half the smallest subnormal: signed zero
  // Subnormal half: mantissa with the implicit bit, shifted right with round-to-nearest-even.
  const uint32_t mantissa = (abs_bits & 0x7fffffu) | 0x800000u;
  const uint32_t shift = uint32_t(-exponent - 14 + 13);  // 14..24
  const uint32_t truncated = mantissa >> shift;
  const uint32_t remainder = mantissa & ((1u << shift) - 1u);
  const uint32_t halfway = 1u << (shift - 1);
  uint32_t result = truncated;
  if (remainder > halfway || (remainder == halfway && (truncated & 1u))) ++result;
  return uint16_t(sign | result);
}

inline float bf16_to_fp32(uint16_t h) { return bits_float(uint32_t(h) << 16); }

inline uint16_t fp32_to_bf16(float f) {
  const uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 64u);  // force quiet NaN
  return uint16_t((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
}

}  // namespace moevk::quant
