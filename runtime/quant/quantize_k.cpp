// CPU reference quantization of the k-quant super-blocks Q4_K, Q5_K and Q6_K, after ggml's
// quantize_row_q{4,5,6}_K_ref: a per-sub-block scale search, then the scales
// themselves quantized (6-bit / 8-bit) against one fp16 super-block scale.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "quant/blocks.hpp"
#include "quant/half.hpp"
#include "quant/quantize_internal.hpp"

namespace moevk::quant::detail {
namespace {

constexpr float kGroupMaxEps = 1e-15f;

// Round half to even, as ggml's nearest_int (valid for |v| < 2^22): adding 1.5 * 2^23 leaves the
// rounded integer in the low mantissa bits. Plain arithmetic, so the compiler vectorizes the
// scale-search loops (lrintf is a library call per element and was ~10x slower).
int nearest_int(float v) {
  const float shifted = v + 12582912.0f;
  return (std::bit_cast<int32_t>(shifted) & 0x007FFFFF) - 0x00400000;
}

// Asymmetric quantization of n values to 0..nmax with a weighted least-squares search over a few
// candidate scales (ggml's make_qkx2_quants). Returns the scale; *neg_min receives -min (>= 0).
// ggml tries the candidates one by one, and a better one changes `min`, which the later ones
// use. Tried one by one, each candidate is a chain of dependent float adds (slow: ~7 M values/s
// for Q4_K). Here the remaining candidates are evaluated together against the current `min`
// (one accumulator each, still summed in element order), the first better one is taken, and
// only the candidates after it are evaluated again: the same choices, bit for bit, as ggml's
// loop, and few re-evaluations since improvements are rare.
constexpr int kMaxCandidates = 21;  // nstep + 1: Q4_K 21, Q5_K 16
constexpr int kWindow = 4;  // candidates evaluated together: enough independent chains
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* neg_min, float rmin, float rdelta, int nstep) {
  constexpr int kMaxN = 32;
  float min = x[0], max = x[0];
  float sum_w = weights[0], sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    min = std::min(min, x[i]);
    max = std::max(max, x[i]);
    sum_w += weights[i];
    sum_x += weights[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::fill(L, L + n, uint8_t(0));
    *neg_min = -min;
    return 0.0f;
  }
  float iscale = float(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
    L[i] = uint8_t(l);
    const float diff = scale * float(l) + min - x[i];
    best_error += weights[i] * diff * diff;
  }
  if (nstep < 1) {  // no search: the range's own scale (ggml returns here too)
    *neg_min = -min;
    return scale;
  }
  const int candidates = std::min(nstep + 1, kMaxCandidates);
  for (int first = 0; first < candidates;) {
    // Always kWindow wide (fixed trip counts unroll and vectorize); candidates past the last
    // are evaluated and ignored.
    const int count = std::min(candidates - first, kWindow);
    float cand_iscale[kWindow], sum_l[kWindow] = {}, sum_l2[kWindow] = {}, sum_xl[kWindow] = {},
        error[kWindow] = {}, cand_scale[kWindow], cand_min[kWindow];
    bool usable[kWindow];
    uint8_t cand_L[kMaxN][kWindow];
    for (int c = 0; c < kWindow; ++c) cand_iscale[c] = (rmin + rdelta * float(first + c) + float(nmax)) / (max - min);
    for (int i = 0; i < n; ++i) {
      const float xi = x[i], wi = weights[i];
      for (int c = 0; c < kWindow; ++c) {
        const int l = std::clamp(nearest_int(cand_iscale[c] * (xi - min)), 0, nmax);
        cand_L[i][c] = uint8_t(l);
        sum_l[c] += wi * float(l);
        sum_l2[c] += wi * float(l) * float(l);
        sum_xl[c] += wi * float(l) * xi;
      }
    }
    for (int c = 0; c < kWindow; ++c) {
      const float D = sum_w * sum_l2[c] - sum_l[c] * sum_l[c];
      usable[c] = D > 0;
      cand_scale[c] = usable[c] ? (sum_w * sum_xl[c] - sum_x * sum_l[c]) / D : 0.0f;
      cand_min[c] = usable[c] ? (sum_l2[c] * sum_x - sum_l[c] * sum_xl[c]) / D : 0.0f;
      if (usable[c] && cand_min[c] > 0) {
        cand_min[c] = 0;
        cand_scale[c] = sum_xl[c] / sum_l2[c];
      }
    }
    for (int i = 0; i < n; ++i) {
      for (int c = 0; c < kWindow; ++c) {
        const float diff = cand_scale[c] * float(cand_L[i][c]) + cand_min[c] - x[i];
        error[c] += weights[i] * diff * diff;
      }
    }
    int taken = -1;
    for (int c = 0; c < count && taken < 0; ++c)
      if (usable[c] && error[c] < best_error) taken = c;
    if (taken < 0) {
      first += count;
      continue;
    }
    for (int i = 0; i < n; ++i) L[i] = cand_L[i][taken];
    best_error = error[taken];
    scale = cand_scale[taken];
    min = cand_min[taken];
    first += taken + 1;
  }
  *neg_min = -min;
  return scale;
}

// Symmetric quantization of n values to -nmax..nmax-1 with a search over 19 scales weighted by
// x^2 (ggml's make_qx_quants with rmse_type 1). L receives value + nmax. The returned scale has
// the sign that maps the extreme value to -nmax. Without `search`, that scale as it is (ggml's
// rmse_type 0).
float make_qx_quants(int n, int nmax, const float* x, uint8_t* L, bool search) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, uint8_t(0));
    return 0.0f;
  }
  auto fit = [&](float iscale, float& sumlx, float& suml2, bool store) {
    sumlx = 0;
    suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
      if (store) L[i] = uint8_t(l + nmax);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * float(l);
      suml2 += w * float(l) * float(l);
    }
  };
  float sumlx, suml2;
  fit(-float(nmax) / max, sumlx, suml2, true);
  if (!search) return -max / float(nmax);
  float scale = suml2 > 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int step = -9; step <= 9; ++step) {
    if (step == 0) continue;
    const float iscale = -(float(nmax) + 0.1f * float(step)) / max;
    fit(iscale, sumlx, suml2, false);
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      fit(iscale, sumlx, suml2, true);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

}  // namespace

namespace {

// Shared by Q4_K and Q5_K: per 32-element sub-block scale and min by make_qkx2_quants, then both
// quantized to 6 bits against fp16 super-block scales d and dmin, and L recomputed against the
// scales exactly as they will decode. `BlockK` has d, dmin and scales[12].
template <typename BlockK>
void quantize_k_sub_blocks(const float* x, BlockK& y, uint8_t* L, int nmax, float rmin, int nstep) {
  float weights[32], mins[QK_K / 32], scales[QK_K / 32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < QK_K / 32; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] = make_qkx2_quants(32, nmax, xs, weights, L + 32 * j, &mins[j], rmin, 0.1f, nstep);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  std::memset(y.scales, 0, sizeof y.scales);
  for (int j = 0; j < QK_K / 32; ++j) {
    const uint8_t ls = uint8_t(std::min(63, nearest_int(inv_scale * scales[j])));
    const uint8_t lm = uint8_t(std::min(63, nearest_int(inv_min * mins[j])));
    if (j < 4) {
      y.scales[j] = ls;
      y.scales[j + 4] = lm;
    } else {
      y.scales[j + 4] = uint8_t((ls & 0xF) | ((lm & 0xF) << 4));
      y.scales[j - 4] |= uint8_t((ls >> 4) << 6);
      y.scales[j] |= uint8_t((lm >> 4) << 6);
    }
  }
  y.d = fp32_to_fp16(max_scale / 63.f);
  y.dmin = fp32_to_fp16(max_min / 63.f);
  for (int j = 0; j < QK_K / 32; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, y.scales, sc, m);
    const float d = fp16_to_fp32(y.d) * float(sc);
    if (d == 0.0f) continue;
    const float dm = fp16_to_fp32(y.dmin) * float(m);
    for (int l = 0; l < 32; ++l) {
      L[32 * j + l] = uint8_t(std::clamp(nearest_int((x[32 * j + l] + dm) / d), 0, nmax));
    }
  }
}

}  // namespace

void quantize_q4_k(const float* x, void* dst, uint64_t n, bool search) {
  auto* y = static_cast<BlockQ4_K*>(dst);
  for (uint64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    uint8_t L[QK_K];
    quantize_k_sub_blocks(x, y[i], L, 15, -1.f, search ? 20 : 0);
    uint8_t* q = y[i].qs;
    for (int j = 0; j < QK_K; j += 64, q += 32) {
      for (int l = 0; l < 32; ++l) q[l] = uint8_t(L[j + l] | (L[j + l + 32] << 4));
    }
  }
}

void quantize_q5_k(const float* x, void* dst, uint64_t n, bool search) {
  auto* y = static_cast<BlockQ5_K*>(dst);
  for (uint64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    uint8_t L[QK_K];
    quantize_k_sub_blocks(x, y[i], L, 31, -0.5f, search ? 15 : 0);
    // Low 4 bits as Q4_K; the fifth bit of chunk c's elements goes to qh bits 2c and 2c+1.
    std::memset(y[i].qh, 0, sizeof y[i].qh);
    uint8_t* ql = y[i].qs;
    for (int c = 0; c < 4; ++c, ql += 32) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t lo = L[64 * c + l], hi = L[64 * c + 32 + l];
        ql[l] = uint8_t((lo & 0xF) | ((hi & 0xF) << 4));
        y[i].qh[l] |= uint8_t(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      }
    }
  }
}

void quantize_q6_k(const float* x, void* dst, uint64_t n, bool search) {
  auto* y = static_cast<BlockQ6_K*>(dst);
  for (uint64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    uint8_t L[QK_K];
    float scales[QK_K / 16];
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < QK_K / 16; ++ib) {
      scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, search);
      if (std::fabs(scales[ib]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&y[i], 0, sizeof y[i]);
      continue;
    }
    const float iscale = -128.f / max_scale;
    y[i].d = fp32_to_fp16(1 / iscale);
    for (int ib = 0; ib < QK_K / 16; ++ib) {
      y[i].scales[ib] = int8_t(std::min(127, nearest_int(iscale * scales[ib])));
    }
    for (int j = 0; j < QK_K / 16; ++j) {
      const float d = fp16_to_fp32(y[i].d) * float(y[i].scales[j]);
      if (d == 0.0f) continue;
      for (int l = 0; l < 16; ++l) {
        L[16 * j + l] = uint8_t(std::clamp(nearest_int(x[16 * j + l] / d), -32, 31) + 32);
      }
    }
    uint8_t* ql = y[i].ql;
    uint8_t* qh = y[i].qh;
    for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
        ql[l] = uint8_t((q1 & 0xF) | ((q3 & 0xF) << 4));
        ql[l + 32] = uint8_t((q2 & 0xF) | ((q4 & 0xF) << 4));
        qh[l] = uint8_t((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
    }
  }
}

}  // namespace moevk::quant::detail
