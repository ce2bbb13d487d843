// CPU side of the MoeExperts tests (moe_experts_test.cpp): cases, random experts and routing,
// and the double-precision reference of each path with its tolerance.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "support/weights.hpp"

namespace moevk::test::moe {

using quant::Type;

enum class Routing {
  Random,      // k distinct experts per token out of all n_expert
  FewExperts,  // only the first max(k, n_expert / 8) experts: most experts are never chosen
  OneExpert,   // every token has the same k experts: expert n_expert-1 takes all tokens
};

struct Case {
  Type gate, up, down;
  uint32_t n_expert, k, n_tokens, n_embd, n_ff;
  Routing routing = Routing::Random;
  uint32_t lead = 0;        // bytes before expert 0 in its buffer (not a binding-aligned offset)
  uint32_t stride_pad = 0;  // bytes between experts beyond one matrix
};

inline std::string describe(const Case& c) {
  return std::string(quant::type_info(c.gate).name) + "/" + quant::type_info(c.up).name + "/" +
         quant::type_info(c.down).name + " E=" + std::to_string(c.n_expert) + " k=" + std::to_string(c.k) +
         " T=" + std::to_string(c.n_tokens) + " embd=" + std::to_string(c.n_embd) + " ff=" +
         std::to_string(c.n_ff) + " routing=" + std::to_string(int(c.routing));
}

// n_expert matrices of rows x cols, expert e at lead + e * stride of the returned bytes, plus
// their dequantized values [e][row][col].
struct Experts {
  std::vector<uint8_t> bytes;
  std::vector<float> values;
  uint64_t stride = 0;
};

inline Experts make_experts(Type t, uint32_t n_expert, uint32_t rows, uint32_t cols, uint32_t lead, uint32_t pad,
                     uint32_t seed) {
  // Both sources (quantizer output and every bit pattern); the CPU quantizers are slow, so large
  // expert sets take random blocks.
  const bool big = uint64_t(n_expert) * rows * cols > (1u << 21);
  const auto source = seed % 2 && !big ? test::WeightSource::Quantize : test::WeightSource::RandomBytes;
  const auto all = test::random_weights(t, n_expert * rows, cols, seed, source);
  Experts x;
  x.values = test::dequantized(t, all, n_expert * rows, cols);
  const uint64_t matrix = quant::row_bytes(t, cols) * rows;
  x.stride = matrix + pad;
  x.bytes.assign(lead + (n_expert - 1) * x.stride + matrix + 4, 0xCD);
  for (uint32_t e = 0; e < n_expert; ++e) {  // bytes as uploaded: in device order for where each expert goes
    const std::vector<uint8_t> one(all.begin() + e * matrix, all.begin() + (e + 1) * matrix);
    const auto on_device = test::device_weights(t, one, rows, cols, lead + e * x.stride);
    std::copy(on_device.begin(), on_device.begin() + matrix, x.bytes.begin() + lead + e * x.stride);
  }
  return x;
}

inline std::vector<uint32_t> route(const Case& c, uint32_t seed) {
  std::mt19937 rng(seed);
  uint32_t pool = c.n_expert;
  if (c.routing == Routing::FewExperts) pool = std::max(c.k, c.n_expert / 8);
  std::vector<uint32_t> experts(pool);
  std::iota(experts.begin(), experts.end(), 0u);
  if (c.routing == Routing::OneExpert) std::swap(experts[0], experts[c.n_expert - 1]);
  std::vector<uint32_t> ids;
  for (uint32_t t = 0; t < c.n_tokens; ++t) {
    if (c.routing != Routing::OneExpert) std::shuffle(experts.begin(), experts.end(), rng);
    ids.insert(ids.end(), experts.begin(), experts.begin() + c.k);
  }
  return ids;
}

inline double silu(double v) { return v / (1.0 + std::exp(-v)); }

// DecodeDot: the decode path with gate+up on the integer dot product (MoeExpertsOptions::dot_decode).
// DecodeWide: the float decode kernels taking two pair runs a thread step (MoeExpertsOptions::
// wide_decode), the same sums as Decode in another order.
enum class Path { Decode, Grouped, GroupedDot, GroupedCoopmat, DecodeDot, DecodeWide };
inline const char* path_name(Path p) {
  return p == Path::Decode       ? "decode"
         : p == Path::Grouped    ? "grouped"
         : p == Path::GroupedDot ? "grouped_dot"
         : p == Path::DecodeDot  ? "decode_dot"
         : p == Path::DecodeWide ? "decode_wide"
                                 : "grouped_coopmat";
}

// The types with an integer-dot kernel (int8-affine 32-element sub-blocks, or 16-element halves:
// Q2_K, Q3_K, Q6_K).
inline bool has_dot(Type t) {
  return t == Type::Q8_0 || t == Type::Q4_0 || t == Type::Q4_1 || t == Type::Q5_0 || t == Type::Q5_1 ||
         t == Type::IQ4_NL || t == Type::IQ4_XS || t == Type::Q4_K || t == Type::Q5_K || t == Type::Q2_K ||
         t == Type::Q3_K || t == Type::Q6_K || t == Type::IQ2_XXS || t == Type::IQ2_XS || t == Type::IQ2_S ||
         t == Type::IQ3_XXS || t == Type::IQ3_S || t == Type::IQ1_S || t == Type::IQ1_M;
}
// Which products take the dot kernel on `path` (the op's rule: the weight type decides).
struct DotProducts {
  bool gate = false, up = false, down = false;
};
inline DotProducts dot_products(const Case& c, Path p) {
  if (p == Path::DecodeDot) return {true, true, false};  // int8 x for gate and up; the down stays f32
  if (p != Path::GroupedDot) return {};
  return {has_dot(c.gate), has_dot(c.up), has_dot(c.down)};
}

// Row r of expert e times v, in double.
// The largest |value| of a set of experts (the cooperative-matrix path rounds them to fp16).
inline double abs_max(const Experts& w) {
  double m = 0;
  for (float v : w.values) m = std::max(m, double(std::fabs(v)));
  return m;
}

inline double dot_row(const Experts& w, uint32_t rows, uint32_t cols, uint32_t e, uint32_t r, const double* v) {
  const float* row = w.values.data() + (size_t(e) * rows + r) * cols;
  double acc = 0;
  for (uint32_t c = 0; c < cols; ++c) acc += double(row[c]) * v[c];
  return acc;
}

// quantize_q8's rule in double: per 32 elements d = max|v| / 127, q = round(v / d), v' = q d.
// The GPU applies it in f32 to its own v, so an element whose v / d lies near a rounding boundary
// may get the neighbouring q there: `near` marks those within `margin` of a boundary in units of
// q (what f32 rounding of d, 1 / d and the GPU's own v can move v / d) plus slack[i] / d (the
// most the GPU's v may differ beyond rounding, moving v and its block's d); `other` is v' on the
// other side of that boundary.
struct Int8RoundTrip {
  std::vector<double> value, other, d;
  std::vector<bool> near;
};
inline Int8RoundTrip int8_round_trip(const std::vector<double>& v, const std::vector<double>& slack, double margin) {
  Int8RoundTrip r{v, v, std::vector<double>(v.size()), std::vector<bool>(v.size())};
  for (size_t b = 0; b < v.size(); b += 32) {
    const size_t end = std::min(v.size(), b + 32);
    double amax = 0, slack_max = 0;
    for (size_t i = b; i < end; ++i) {
      amax = std::max(amax, std::fabs(v[i]));
      slack_max = std::max(slack_max, slack[i]);
    }
    const double d = amax / 127.0;
    for (size_t i = b; i < end; ++i) {
      r.d[i] = d;
      if (d == 0) continue;
      const double q = v[i] / d, rounded = std::round(q);
      r.value[i] = rounded * d;
      r.other[i] = (rounded > q ? rounded - 1 : rounded + 1) * d;
      r.near[i] = std::fabs(q - std::floor(q) - 0.5) < margin + (slack[i] + slack_max) / d;
    }
  }
  return r;
}

// Row r of expert e in absolute values times v (the worst case of errors v in its inputs).
inline double abs_dot_row(const Experts& w, uint32_t rows, uint32_t cols, uint32_t e, uint32_t r, const double* v) {
  const float* row = w.values.data() + (size_t(e) * rows + r) * cols;
  double acc = 0;
  for (uint32_t c = 0; c < cols; ++c) acc += std::fabs(double(row[c])) * v[c];
  return acc;
}

// The path's arithmetic in double: products marked in `dot` see their activations through
// int8_round_trip (as the dot kernels do), the others the f32 values. Where the GPU may round
// an element the other way, every output must lie in [lo, hi]:
//   x elements near a boundary (usually none, rarely more than one per token): both roundings
//     are run, up to 4 per token (16 combinations), the range spans them;
//   h elements near a boundary in each of those runs (the GPU's h is within the f32 slack of the
//     run's): |Wd| * d each, widening the range;
//   x elements beyond the 4 (practically never): |w| * d each into g and u (eg, eu), carried into
//     h as dh <= 1.1 eg (|u| + eu) + (|SiLU(g)| + 1.1 eg) eu (|SiLU'| <= 1.1), then through
//     the down product (and into h's slack).
// With `half` (the cooperative-matrix kernel: every weight and activation rounded to fp16 as it
// enters the tile, products summed in f32): fp16 rounding moves a value by at most 2^-11 of it
// plus 2^-25 (subnormals), so a product term moves by at most (2^-10 + 2^-21) |w| |a| +
// 2^-24 (|w| + |a|): summed, eg and eu of g and u; h moves by dh as above, then by its own
// rounding on the way into the down product, whose weights round too. The range is this worst
// case (every term's rounding in one direction), ~sqrt(n) times the typical error.
struct Reference {
  std::vector<double> value, lo, hi;
  double h_abs_max = 0;  // the largest |SiLU(gate) * up| (fp16 holds up to 65504)
};

inline Reference reference(const Case& c, const Experts& gate, const Experts& up, const Experts& down,
                    const std::vector<float>& x, const std::vector<uint32_t>& ids, const std::vector<float>& weights,
                    DotProducts dot = {}, bool half = false) {
  Reference ref;
  ref.value.assign(size_t(c.n_tokens) * c.n_embd, 0.0);
  ref.lo = ref.hi = ref.value;
  constexpr double kUlp = 1.0 / (1 << 24);
  // q = round(x * (1 / d)), d = max|x| / 127 on both sides from the same f32 x: a few ulps of
  // rounding in d, 1 / d and the product (~4e-5 in units of q for |q| <= 127); 2.5e-4 is 5x that.
  constexpr double kRoundingMargin = 2.5e-4;
  constexpr uint32_t kMaxEnumerated = 4;
  auto silu_and_up = [](double eg, double eu, double g, double u) {  // |dh| from |dg| <= eg, |du| <= eu
    return 1.1 * eg * (std::fabs(u) + eu) + (std::fabs(silu(g)) + 1.1 * eg) * eu;
  };
  std::vector<double> xt(c.n_embd), gate_abs(c.n_embd), up_abs(c.n_embd), x_flip(c.n_embd);
  std::vector<double> h(c.n_ff), dh(c.n_ff), h_slack(c.n_ff), h_err(c.n_ff), out(c.n_embd), allow(c.n_embd);
  constexpr double kHalfUnit = 1.0 / (1 << 11), kHalfTiny = 1.0 / (1 << 25);
  const std::vector<double> ones(std::max(c.n_embd, c.n_ff), 1.0);
  for (uint32_t t = 0; t < c.n_tokens; ++t) {
    for (uint32_t i = 0; i < c.n_embd; ++i) xt[i] = x[size_t(t) * c.n_embd + i];
    const Int8RoundTrip xq = int8_round_trip(xt, std::vector<double>(c.n_embd, 0.0), kRoundingMargin);
    std::vector<uint32_t> near_x;
    for (uint32_t i = 0; i < c.n_embd; ++i) {
      x_flip[i] = 0;
      if ((dot.gate || dot.up) && xq.near[i]) {
        if (near_x.size() < kMaxEnumerated) near_x.push_back(i);
        else x_flip[i] = xq.d[i];
      }
    }
    for (uint32_t combination = 0; combination < (1u << near_x.size()); ++combination) {
      std::vector<double> x_dot = xq.value;
      for (size_t n = 0; n < near_x.size(); ++n)
        if (combination >> n & 1) x_dot[near_x[n]] = xq.other[near_x[n]];
      for (uint32_t i = 0; i < c.n_embd; ++i) {
        gate_abs[i] = std::fabs(dot.gate ? x_dot[i] : xt[i]);
        up_abs[i] = std::fabs(dot.up ? x_dot[i] : xt[i]);
      }
      std::fill(out.begin(), out.end(), 0.0);
      std::fill(allow.begin(), allow.end(), 0.0);
      for (uint32_t j = 0; j < c.k; ++j) {
        const uint32_t e = ids[t * c.k + j];
        if (e >= c.n_expert) continue;
        for (uint32_t r = 0; r < c.n_ff; ++r) {
          const double g = dot_row(gate, c.n_ff, c.n_embd, e, r, dot.gate ? x_dot.data() : xt.data());
          const double u = dot_row(up, c.n_ff, c.n_embd, e, r, dot.up ? x_dot.data() : xt.data());
          h[r] = silu(g) * u;
          ref.h_abs_max = std::max(ref.h_abs_max, std::fabs(h[r]));
          const double eg = dot.gate ? abs_dot_row(gate, c.n_ff, c.n_embd, e, r, x_flip.data()) : 0.0;
          const double eu = dot.up ? abs_dot_row(up, c.n_ff, c.n_embd, e, r, x_flip.data()) : 0.0;
          dh[r] = silu_and_up(eg, eu, g, u);
          if (half) {
            double x_abs_sum = 0;
            for (uint32_t i = 0; i < c.n_embd; ++i) x_abs_sum += gate_abs[i];
            auto term_bound = [&](const Experts& w) {
              return (2 + 1.0 / 1024) * kHalfUnit * abs_dot_row(w, c.n_ff, c.n_embd, e, r, gate_abs.data()) +
                     2 * kHalfTiny * (abs_dot_row(w, c.n_ff, c.n_embd, e, r, ones.data()) + x_abs_sum);
            };
            dh[r] = silu_and_up(term_bound(gate), term_bound(up), g, u);
          }
          if (!dot.down) continue;
          // Where the GPU's h may lie besides: f32 sums of n terms (n = 32-element sub-blocks
          // on the dot kernel, columns on the plain one; 3 more roundings per term) within
          // (n + 3) ulps of sum |terms|, and a few ulps of SiLU and the product.
          const double n_g = dot.gate ? c.n_embd / 32 : c.n_embd, n_u = dot.up ? c.n_embd / 32 : c.n_embd;
          const double fg = (n_g + 3) * kUlp * abs_dot_row(gate, c.n_ff, c.n_embd, e, r, gate_abs.data());
          const double fu = (n_u + 3) * kUlp * abs_dot_row(up, c.n_ff, c.n_embd, e, r, up_abs.data());
          h_slack[r] = silu_and_up(eg + fg, eu + fu, g, u) + 8 * kUlp * std::fabs(h[r]);
        }
        const Int8RoundTrip hq = int8_round_trip(h, h_slack, kRoundingMargin);
        // The f32 part of the slack reaches the outputs within the f32 tolerance; h's elements
        // near a boundary and what the unenumerated x elements did to h are allowed here.
        for (uint32_t r = 0; r < c.n_ff; ++r) h_err[r] = dh[r] + (dot.down && hq.near[r] ? hq.d[r] : 0.0);
        double h_abs_sum = 0;
        if (half) {
          // h' = fp16(h + dh) times fp16(Wd): |h' - h| <= (1 + 2^-11) dh + 2^-11 |h| + 2^-25,
          // and Wd's rounding adds (2^-11 |Wd| + 2^-25) |h'|.
          for (uint32_t r = 0; r < c.n_ff; ++r) {
            const double h_moved = (1 + kHalfUnit) * h_err[r] + kHalfUnit * std::fabs(h[r]) + kHalfTiny;
            h_err[r] = h_moved + kHalfUnit * (std::fabs(h[r]) + h_moved);
            h_abs_sum += std::fabs(h[r]) + h_moved;
          }
        }
        const double w = weights[t * c.k + j];
        for (uint32_t r = 0; r < c.n_embd; ++r) {
          out[r] += w * dot_row(down, c.n_embd, c.n_ff, e, r, dot.down ? hq.value.data() : h.data());
          allow[r] += w * (abs_dot_row(down, c.n_embd, c.n_ff, e, r, h_err.data()) + kHalfTiny * h_abs_sum);
        }
      }
      for (uint32_t r = 0; r < c.n_embd; ++r) {
        const size_t at = size_t(t) * c.n_embd + r;
        if (combination == 0) {
          ref.value[at] = out[r];
          ref.lo[at] = out[r] - allow[r];
          ref.hi[at] = out[r] + allow[r];
        }
        ref.lo[at] = std::min(ref.lo[at], out[r] - allow[r]);
        ref.hi[at] = std::max(ref.hi[at], out[r] + allow[r]);
      }
    }
  }
  return ref;
}

// Every format is compared against its own dequantized values, so the format changes only the
// magnitudes, not the error: what remains is f32 accumulation over the n_embd- and n_ff-term dot
// products (~sqrt(K) * 2^-24 relative to the terms' scale; observed <= 3e-7 of the largest output
// at K = 64..256) plus at most an ulp per weight where the GPU fuses q * d + m into an fma.
// 3e-6 of the output scale (per sqrt(K / 256)) leaves a ~10x margin; a wrong block, expert, slot
// or weight gives errors of the order of the scale itself.
// The dot path is compared against the same arithmetic on int8 activations (Reference): its int
// sums are exact and its f32 work is a few operations per 32-element sub-block, so the same
// tolerance holds around [lo, hi], the range of what rounding an element the other way gives.
inline ::testing::AssertionResult close_to_reference(const Case& c, const std::vector<float>& got, const Reference& ref) {
  const std::vector<double>& want = ref.value;
  double scale = 1e-30;
  for (double v : want) scale = std::max(scale, std::fabs(v));
  const double terms = std::sqrt(double(std::max(c.n_embd, c.n_ff)) / 256.0);
  const double atol = 3e-6 * scale * std::max(1.0, terms);
  if (got.size() != want.size()) return ::testing::AssertionFailure() << "size " << got.size() << " != " << want.size();
  size_t bad = 0, worst = 0;
  double worst_excess = -1, widest = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = atol + 1e-5 * std::fabs(want[i]);
    widest = std::max(widest, (ref.hi[i] - ref.lo[i]) / scale);
    const double excess = std::max(ref.lo[i] - tol - got[i], got[i] - ref.hi[i] - tol);
    if (!(excess <= 0)) {  // NaN (poison) fails too
      ++bad;
      if (!(excess <= worst_excess)) {
        worst_excess = excess;
        worst = i;
      }
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << got.size() << " elements differ (atol " << atol
                                       << "); worst at [" << worst << "]: got " << got[worst] << ", want "
                                       << want[worst] << " in [" << ref.lo[worst] << ", " << ref.hi[worst]
                                       << "] (widest range " << widest << " of the output scale)";
}

}  // namespace moevk::test::moe
