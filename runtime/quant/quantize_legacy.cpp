// CPU reference quantization of the 32-element formats and the float formats, following ggml's
// quantize_row_*_ref round-to-nearest (same scale choice, same rounding, same packing).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "quant/blocks.hpp"
#include "quant/half.hpp"
#include "quant/quantize_internal.hpp"

namespace moevk::quant::detail {

void quantize_f16(const float* x, void* dst, uint64_t n) {
  auto* out = static_cast<uint8_t*>(dst);
  for (uint64_t i = 0; i < n; ++i) {
    const uint16_t h = fp32_to_fp16(x[i]);
    std::memcpy(out + 2 * i, &h, 2);
  }
}

void quantize_bf16(const float* x, void* dst, uint64_t n) {
  auto* out = static_cast<uint8_t*>(dst);
  for (uint64_t i = 0; i < n; ++i) {
    const uint16_t h = fp32_to_bf16(x[i]);
    std::memcpy(out + 2 * i, &h, 2);
  }
}

// The element of largest magnitude, with its sign (the symmetric formats map it to -8 / -16 so
// the full signed range is used on the side where the extreme value lies).
static float signed_absmax(const float* x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void quantize_q4_0(const float* x, void* dst, uint64_t n) {
  auto* y = static_cast<BlockQ4_0*>(dst);
  for (uint64_t i = 0; i < n / QK4_0; ++i, x += QK4_0) {
    const float d = signed_absmax(x, QK4_0) / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      const uint8_t q0 = uint8_t(std::min(15, int(int8_t(x[j] * id + 8.5f))));
      const uint8_t q1 = uint8_t(std::min(15, int(int8_t(x[j + QK4_0 / 2] * id + 8.5f))));
      y[i].qs[j] = uint8_t(q0 | (q1 << 4));
    }
  }
}

void quantize_q4_1(const float* x, void* dst, uint64_t n) {
  auto* y = static_cast<BlockQ4_1*>(dst);
  for (uint64_t i = 0; i < n / QK4_1; ++i, x += QK4_1) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < QK4_1; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / 15;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    for (int j = 0; j < QK4_1 / 2; ++j) {
      const uint8_t q0 = uint8_t(std::min(15, int(int8_t((x[j] - min) * id + 0.5f))));
      const uint8_t q1 = uint8_t(std::min(15, int(int8_t((x[j + QK4_1 / 2] - min) * id + 0.5f))));
      y[i].qs[j] = uint8_t(q0 | (q1 << 4));
    }
  }
}

// Q5 packing: low nibbles like Q4, the 5th bit of element j goes to bit j of qh.
static void pack_q5(const uint8_t* q5, uint8_t* qs, uint8_t* qh_bytes) {
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = uint8_t((q5[j] & 0xF) | ((q5[j + 16] & 0xF) << 4));
    qh |= uint32_t((q5[j] >> 4) & 1) << j;
    qh |= uint32_t((q5[j + 16] >> 4) & 1) << (j + 16);
  }
  std::memcpy(qh_bytes, &qh, 4);
}

void quantize_q5_0(const float* x, void* dst, uint64_t n) {
  auto* y = static_cast<BlockQ5_0*>(dst);
  for (uint64_t i = 0; i < n / QK5_0; ++i, x += QK5_0) {
    const float d = signed_absmax(x, QK5_0) / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    uint8_t q5[QK5_0];
    for (int j = 0; j < QK5_0; ++j) q5[j] = uint8_t(std::min(31, int(int8_t(x[j] * id + 16.5f))));
    pack_q5(q5, y[i].qs, y[i].qh);
  }
}

void quantize_q5_1(const float* x, void* dst, uint64_t n) {
  auto* y = static_cast<BlockQ5_1*>(dst);
  for (uint64_t i = 0; i < n / QK5_1; ++i, x += QK5_1) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < QK5_1; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / 31;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    uint8_t q5[QK5_1];
    for (int j = 0; j < QK5_1; ++j) q5[j] = uint8_t(std::min(31, int(uint8_t((x[j] - min) * id + 0.5f))));
    pack_q5(q5, y[i].qs, y[i].qh);
  }
}

void quantize_q8_0(const float* x, void* dst, uint64_t n) {
  auto* y = static_cast<BlockQ8_0*>(dst);
  for (uint64_t i = 0; i < n / QK8_0; ++i, x += QK8_0) {
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK8_0; ++j) y[i].qs[j] = int8_t(std::round(x[j] * id));
  }
}

}  // namespace moevk::quant::detail
