// CPU quantization of IQ4_NL after ggml's reference (quantize_row_iq4_nl_ref): each 32-element
// block picks the scale, among 15 candidates around amax/127, that minimizes the x^2-weighted
// squared error against the non-linear codebook, then stores the nearest code per element.
#include <cmath>
#include <cstring>

#include "quant/blocks.hpp"
#include "quant/half.hpp"
#include "quant/quantize_internal.hpp"

namespace moevk::quant::detail {
namespace {

int nearest_code(float v) {
  int best = 0;
  float best_distance = std::fabs(v - float(kIQ4NLValues[0]));
  for (int k = 1; k < 16; ++k) {
    const float distance = std::fabs(v - float(kIQ4NLValues[k]));
    if (distance < best_distance) {
      best_distance = distance;
      best = k;
    }
  }
  return best;
}

}  // namespace

void quantize_iq4_nl(const float* x, void* dst, uint64_t n) {
  auto* y = static_cast<BlockIQ4_NL*>(dst);
  constexpr int kTries = 7;
  for (uint64_t i = 0; i < n / QK4_NL; ++i, x += QK4_NL) {
    float amax = 0, max = 0;
    for (int j = 0; j < QK4_NL; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    if (amax < 1e-15f) {
      std::memset(&y[i], 0, sizeof y[i]);
      continue;
    }
    // Least-squares scale for the codes chosen with inverse scale `id`.
    auto fit = [&](float id, float& sumqx, float& sumq2) {
      sumqx = sumq2 = 0;
      for (int j = 0; j < QK4_NL; ++j) {
        const float q = float(kIQ4NLValues[nearest_code(id * x[j])]);
        const float w = x[j] * x[j];
        sumqx += w * q * x[j];
        sumq2 += w * q * q;
      }
    };
    float sumqx, sumq2;
    fit(-float(kIQ4NLValues[0]) / max, sumqx, sumq2);
    float d = sumq2 > 0 ? sumqx / sumq2 : max / -float(kIQ4NLValues[0]);
    float best = d * sumqx;
    for (int t = -kTries; t <= kTries; ++t) {
      fit((float(t) + float(kIQ4NLValues[0])) / max, sumqx, sumq2);
      if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
        d = sumqx / sumq2;
        best = d * sumqx;
      }
    }
    y[i].d = fp32_to_fp16(d);
    // Codes against the scale as stored, so decoding sees the nearest levels.
    const float stored = fp16_to_fp32(y[i].d);
    const float id = stored != 0.0f ? 1.0f / stored : 0.0f;
    for (int j = 0; j < QK4_NL / 2; ++j) {
      y[i].qs[j] = uint8_t(nearest_code(id * x[j]) | (nearest_code(id * x[j + QK4_NL / 2]) << 4));
    }
  }
}

}  // namespace moevk::quant::detail
