// CPU quantization of the 2-, 3-bit and IQ4_XS super-blocks (256 elements), so `moevk
// make-model` and `convert` can write the file types published for these models and the tests
// can make them. Plain round-to-nearest with one least-squares scale per group, simpler than
// ggml's searches (the files are for benchmarks and checks, where the bit layout is what
// matters; quality is bounded in tests/quant/roundtrip_test.cpp):
//   Q2_K   16-element groups x = d * sc * q - dmin * m, q in 0..3, sc and m 4-bit;
//   Q3_K   16-element groups x = d * (s - 32) * q, q in -4..3, s 6-bit;
//   IQ4_XS 32-element groups x = d * (s - 32) * codebook[q], the IQ4_NL codebook, s 6-bit.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/blocks.hpp"
#include "quant/half.hpp"
#include "quant/quantize_internal.hpp"

namespace moevk::quant::detail {
namespace {

int clamp_round(float v, int lo, int hi) { return std::clamp(int(std::lround(v)), lo, hi); }

// The value of largest magnitude (with its sign) among n.
float signed_amax(const float* x, int n) {
  float best = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > std::fabs(best)) best = x[i];
  return best;
}

// Least-squares scale of the codes q for values x: argmin_d sum (x - d q)^2.
template <class Code>
float refit(const float* x, int n, float d, Code code) {
  double sqx = 0, sqq = 0;
  for (int i = 0; i < n; ++i) {
    const float q = code(x[i], d);
    sqx += double(q) * x[i];
    sqq += double(q) * q;
  }
  return sqq > 0 ? float(sqx / sqq) : d;
}

int nearest_iq4(float v) {
  int best = 0;
  for (int k = 1; k < 16; ++k)
    if (std::fabs(v - float(kIQ4NLValues[k])) < std::fabs(v - float(kIQ4NLValues[best]))) best = k;
  return best;
}

// The signed 6-bit group scales of a super-block: the super scale d (the largest group scale
// maps to -32) and each group's s - 32 in -32..31, against d as stored in fp16.
void six_bit_scales(const float* group_scale, int groups, uint16_t& d_half, int* levels) {
  float max_scale = 0;
  for (int g = 0; g < groups; ++g)
    if (std::fabs(group_scale[g]) > std::fabs(max_scale)) max_scale = group_scale[g];
  d_half = fp32_to_fp16(max_scale / -32.0f);
  const float d = fp16_to_fp32(d_half);
  for (int g = 0; g < groups; ++g) levels[g] = d != 0.0f ? clamp_round(group_scale[g] / d, -32, 31) : 0;
}

}  // namespace

void quantize_q2_k(const float* x, void* dst, uint64_t n) {
  auto* y = static_cast<BlockQ2_K*>(dst);
  for (uint64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    BlockQ2_K& b = y[i];
    std::memset(&b, 0, sizeof b);
    // Group g = elements 16g..16g+15: x = scale * q - min_offset, q in 0..3, min_offset >= 0.
    float scale[16], offset[16];
    for (int g = 0; g < 16; ++g) {
      const float* v = x + 16 * g;
      const float lo = std::min(0.0f, *std::min_element(v, v + 16)), hi = *std::max_element(v, v + 16);
      offset[g] = -lo;
      scale[g] = (hi - lo) / 3.0f;
    }
    const float max_scale = *std::max_element(scale, scale + 16), max_offset = *std::max_element(offset, offset + 16);
    b.d = fp32_to_fp16(max_scale / 15.0f);
    b.dmin = fp32_to_fp16(max_offset / 15.0f);
    const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
    for (int g = 0; g < 16; ++g) {
      const int sc = d > 0 ? clamp_round(scale[g] / d, 0, 15) : 0;
      const int m = dmin > 0 ? clamp_round(offset[g] / dmin, 0, 15) : 0;
      b.scales[g] = uint8_t(sc | (m << 4));
      const float dl = d * float(sc), ml = dmin * float(m);
      for (int l = 0; l < 16; ++l) {
        const int e = 16 * g + l;
        const int q = dl > 0 ? clamp_round((x[e] + ml) / dl, 0, 3) : 0;
        // Element e = 128h + 32j + l' sits in qs[32h + l'] at bits 2j.
        b.qs[32 * (e / 128) + e % 32] |= uint8_t(q << (2 * ((e % 128) / 32)));
      }
    }
  }
}

void quantize_q3_k(const float* x, void* dst, uint64_t n) {
  auto* y = static_cast<BlockQ3_K*>(dst);
  auto code = [](float v, float d) { return d != 0.0f ? float(clamp_round(v / d, -4, 3)) : 0.0f; };
  for (uint64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    BlockQ3_K& b = y[i];
    std::memset(&b, 0, sizeof b);
    float scale[16];
    for (int g = 0; g < 16; ++g) scale[g] = refit(x + 16 * g, 16, signed_amax(x + 16 * g, 16) / -4.0f, code);
    int level[16];
    six_bit_scales(scale, 16, b.d, level);
    const float d = fp16_to_fp32(b.d);
    for (int g = 0; g < 16; ++g) {
      const int s = level[g] + 32;
      b.scales[g % 8] |= uint8_t((s & 15) << (g < 8 ? 0 : 4));
      b.scales[8 + g % 4] |= uint8_t((s >> 4) << (2 * (g / 4)));
      const float dl = d * float(level[g]);
      for (int l = 0; l < 16; ++l) {
        const int e = 16 * g + l, h = e / 128, j = (e % 128) / 32;
        const int u = int(code(x[e], dl)) + 4;  // 0..7: low 2 bits in qs, bit 2 in hmask
        b.qs[32 * h + e % 32] |= uint8_t((u & 3) << (2 * j));
        if (u & 4) b.hmask[e % 32] |= uint8_t(1 << (4 * h + j));
      }
    }
  }
}

void quantize_iq4_xs(const float* x, void* dst, uint64_t n) {
  auto* y = static_cast<BlockIQ4_XS*>(dst);
  auto code = [](float v, float d) { return d != 0.0f ? float(kIQ4NLValues[nearest_iq4(v / d)]) : 0.0f; };
  for (uint64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    BlockIQ4_XS& b = y[i];
    std::memset(&b, 0, sizeof b);
    float scale[8];
    for (int s = 0; s < 8; ++s) scale[s] = refit(x + 32 * s, 32, signed_amax(x + 32 * s, 32) / -127.0f, code);
    int level[8];
    six_bit_scales(scale, 8, b.d, level);
    const float d = fp16_to_fp32(b.d);
    for (int s = 0; s < 8; ++s) {
      const int ls = level[s] + 32;
      b.scales_l[s / 2] |= uint8_t((ls & 15) << (4 * (s % 2)));
      b.scales_h |= uint16_t((ls >> 4) << (2 * s));
      const float dl = d * float(level[s]);
      const float* v = x + 32 * s;
      for (int j = 0; j < 16; ++j) {
        const int lo = dl != 0.0f ? nearest_iq4(v[j] / dl) : 8, hi = dl != 0.0f ? nearest_iq4(v[j + 16] / dl) : 8;
        b.qs[16 * s + j] = uint8_t(lo | (hi << 4));
      }
    }
  }
}

}  // namespace moevk::quant::detail
