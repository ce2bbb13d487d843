// MatMul::record_products: products of one input sharing a dispatch (q/k/v, gate/up) against
// the double-precision reference, and each reason they are recorded one by one instead.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "common/error.hpp"
#include "ops/coopmat.hpp"
#include "ops/matmul.hpp"
#include "ops/quantize_q8.hpp"
#include "matmul_cases.hpp"
#include "support/gpu.hpp"
#include "support/weights.hpp"

using namespace moevk;
using moevk::test::GpuTest;
using namespace moevk::test::matmul;
using quant::Type;

namespace {

// Up to three products of one x (q/k/v, gate/up) through record_products: weights in one buffer
// at uneven 4-aligned offsets, outputs in one poisoned buffer with poisoned gaps between them
// (each must stay poison), biases in one buffer. Checks every output against the double
// reference, that the gaps are untouched, and the dispatch count (1 when merged).
struct ProductsCase {
  std::vector<Type> types;     // one per product
  std::vector<uint32_t> rows;  // one per product
  uint32_t cols, tokens;
  bool bias = false, norm = false;
  bool same_buffer = true;  // weights in one buffer (else one buffer each: not mergeable)
};

// expect_dispatches: 1 where all merge; products recorded one by one bind each output and bias
// themselves, so with more the regions start where a binding may.
void check_products(vk::Context& ctx, const ops::MatMul& op, const ProductsCase& c, uint32_t expect_dispatches,
                    uint32_t seed) {
  const bool expect_merged = expect_dispatches == 1;
  const size_t n = c.rows.size();
  std::ostringstream what;
  what << "cols=" << c.cols << " tokens=" << c.tokens << " bias=" << c.bias << " norm=" << c.norm << " products:";
  for (size_t m = 0; m < n; ++m) what << " " << quant::type_info(c.types[m]).name << "x" << c.rows[m];
  // Weights: product m at an offset 36 + 12 m bytes past the previous one's end (no binding
  // alignment allows those: exercises the per-matrix bases).
  std::vector<std::vector<uint8_t>> w(n);
  std::vector<std::vector<float>> wf(n), bias(n);
  std::vector<uint8_t> packed;
  std::vector<uint64_t> w_at(n);
  for (size_t m = 0; m < n; ++m) {
    w[m] = test::random_weights(c.types[m], c.rows[m], c.cols, seed + 10 * uint32_t(m));
    wf[m] = test::dequantized(c.types[m], w[m], c.rows[m], c.cols);
    bias[m] = test::random_floats(c.rows[m], seed + 10 * uint32_t(m) + 1);
    packed.resize(packed.size() + 36 + 12 * m, 0xCD);
    w_at[m] = packed.size();
    // Where it goes: packed at w_at, or alone at the start of its buffer.
    const std::vector<uint8_t> on_device = test::device_weights(c.types[m], w[m], c.rows[m], c.cols, w_at[m]);
    packed.insert(packed.end(), on_device.begin(), on_device.end());
    w[m] = test::device_weights(c.types[m], w[m], c.rows[m], c.cols, 0);
  }
  std::vector<vk::Buffer> wbufs;
  if (c.same_buffer) {
    wbufs.push_back(test::upload(ctx, packed, "weights"));
  } else {
    for (size_t m = 0; m < n; ++m) wbufs.push_back(test::upload(ctx, w[m], "weights"));
  }
  std::vector<ops::Matrix> mats(n);
  for (size_t m = 0; m < n; ++m)
    mats[m] = c.same_buffer ? ops::Matrix{wbufs[0].range(w_at[m], w[m].size()), c.types[m], c.cols, c.rows[m]}
                            : ops::Matrix{wbufs[m].range(), c.types[m], c.cols, c.rows[m]};
  // Outputs: a gap of 5 floats before each region; biases likewise, 3 floats apart. Merged,
  // anywhere 4-aligned; else each region 256-aligned, as the session's buffers are.
  const uint64_t align = expect_merged ? 1 : 64;
  auto aligned = [&](uint64_t v) { return (v + align - 1) / align * align; };
  std::vector<uint64_t> y_at(n), b_at(n);
  uint64_t y_floats = 0, b_floats = 0;
  std::vector<float> bias_packed;
  for (size_t m = 0; m < n; ++m) {
    y_floats = aligned(y_floats + 5);
    y_at[m] = y_floats;
    y_floats += uint64_t(c.tokens) * c.rows[m];
    b_floats = aligned(b_floats + 3);
    bias_packed.resize(b_floats, 0.0f);
    b_at[m] = b_floats;
    bias_packed.insert(bias_packed.end(), bias[m].begin(), bias[m].end());
    b_floats = bias_packed.size();
  }
  y_floats += 5;
  auto ybuf = test::poisoned(ctx, y_floats * 4);
  auto bbuf = test::upload(ctx, bias_packed, "biases");
  const auto x = test::random_floats(size_t(c.tokens) * c.cols, seed + 7);
  auto xbuf = test::upload(ctx, x, "x");
  auto norm_weight = test::random_floats(c.cols, seed + 8);
  for (float& g : norm_weight) g += g < 0 ? -0.5f : 0.5f;
  auto nbuf = test::upload(ctx, norm_weight, "norm weight");
  const ops::InputNorm norm{nbuf.range(), 1e-5f};
  std::vector<vk::BufferRange> bias_ranges(n);
  std::vector<ops::MatMul::Product> products(n);
  for (size_t m = 0; m < n; ++m) {
    bias_ranges[m] = bbuf.range(b_at[m] * 4, uint64_t(c.rows[m]) * 4);
    products[m] = {&mats[m], ybuf.range(y_at[m] * 4, uint64_t(c.tokens) * c.rows[m] * 4),
                   c.bias ? &bias_ranges[m] : nullptr};
  }
  EXPECT_EQ(op.merges(products, c.tokens), expect_merged) << what.str();
  uint32_t dispatches = 0;
  test::run_once(ctx, [&](vk::Recorder& r) {
    op.record_products(r, products, xbuf.range(), c.tokens, c.norm ? &norm : nullptr);
    dispatches = r.dispatch_count();
  });
  EXPECT_EQ(dispatches, expect_dispatches) << what.str();
  const auto got = test::download<float>(ctx, ybuf, y_floats);

  size_t bad = 0, written_gap = 0;
  std::string first;
  std::vector<bool> output(y_floats, false);
  for (size_t m = 0; m < n; ++m) {
    for (uint32_t t = 0; t < c.tokens; ++t) {
      std::vector<double> xn(x.begin() + size_t(t) * c.cols, x.begin() + size_t(t + 1) * c.cols);
      if (c.norm) {
        double sum_sq = 0;
        for (double v : xn) sum_sq += v * v;
        const double scale = 1.0 / std::sqrt(sum_sq / c.cols + 1e-5);
        for (uint32_t k = 0; k < c.cols; ++k) xn[k] *= scale * norm_weight[k];
      }
      const std::vector<double> x_step = int8_half_steps(xn, op.path_for(mats[m], c.tokens) == "mm_dot");
      for (uint32_t r = 0; r < c.rows[m]; ++r) {
        double want = c.bias ? bias[m][r] : 0.0, magnitude = std::fabs(want), quant_bound = 0;
        for (uint32_t k = 0; k < c.cols; ++k) {
          want += double(wf[m][size_t(r) * c.cols + k]) * xn[k];
          magnitude += std::fabs(double(wf[m][size_t(r) * c.cols + k]) * xn[k]);
          quant_bound += std::fabs(double(wf[m][size_t(r) * c.cols + k])) * x_step[k / 32];
        }
        // As check_matmul's mv tolerance: f32 accumulation order, ~7x margin.
        const double tol = 1e-5 * std::max(1.0, std::sqrt(c.cols / 512.0)) * magnitude + 1e-6 + quant_bound;
        const size_t at = y_at[m] + size_t(t) * c.rows[m] + r;
        output[at] = true;
        if (!(std::fabs(got[at] - want) <= tol) && bad++ == 0) {
          std::ostringstream s;
          s << "product " << m << " y[" << t << "][" << r << "] = " << got[at] << ", want " << want;
          first = s.str();
        }
      }
    }
  }
  for (uint64_t i = 0; i < y_floats; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &got[i], 4);
    if (!output[i] && bits != test::kPoison) ++written_gap;
  }
  EXPECT_EQ(bad, 0u) << what.str() << ": " << bad << " wrong, first " << first;
  EXPECT_EQ(written_gap, 0u) << what.str() << ": elements outside the outputs were written";
}

}  // namespace

TEST_F(GpuTest, MatMulProductsOfOneInputShareADispatch) {
  // q/k/v-like triples and gate/up-like pairs of every type: ragged rows (not multiples of the
  // decode kernel's 4 rows or the batch kernel's), one token (the decode specialization) and
  // small batches (both loops), bias and the fused norm, both reductions.
  uint32_t seed = 4100;
  for (bool subgroup : {true, false}) {
    ops::MatMulOptions options;
    options.allow_subgroup = subgroup;
    ops::MatMul op(*ctx, options);
    for (Type t : kTypes) {
      const uint32_t cols = block_of(t) == 256 ? 512 : block_of(t) * (block_of(t) == 8 ? 5 : 3);
      check_products(*ctx, op, {{t, t, t}, {33, 7, 5}, cols, 1, true, true}, 1, seed += 50);
      check_products(*ctx, op, {{t, t}, {9, 1}, cols, 3}, 1, seed += 50);
    }
    check_products(*ctx, op, {{Type::Q4_K, Type::Q4_K, Type::Q4_K}, {65, 17, 17}, 512, 8, false, true}, 1,
                   seed += 50);
    check_products(*ctx, op, {{Type::Q4_0, Type::Q4_0, Type::Q4_0}, {130, 3, 66}, 4096 + 32, 2, true, false}, 1,
                   seed += 50);
  }
  // Other decode shapes (rows per workgroup 1 and 8, a wider workgroup) split the row groups
  // between the products differently.
  for (auto [wg, rows] : {std::pair{64u, 1u}, std::pair{256u, 8u}}) {
    ops::MatMulOptions options;
    options.decode_workgroup = wg;
    options.decode_rows = rows;
    ops::MatMul op(*ctx, options);
    check_products(*ctx, op, {{Type::Q8_0, Type::Q8_0, Type::Q8_0}, {13, 8, 9}, 96, 1, true, true}, 1, seed += 50);
  }
}

TEST_F(GpuTest, MatMulProductsRecordedOneByOneWhereTheyCannotShare) {
  // Each reason products cannot share a dispatch: weights in separate buffers, a batch on the
  // tiled path, weights beyond one binding, merging turned off, more than three. record_products
  // then records each with record(), with the same results. Mixed types (a Q4_K_M file's Q6_K
  // attn_v) merge the products of each type: q and k together, v alone.
  uint32_t seed = 4900;
  ops::MatMul op(*ctx);
  check_products(*ctx, op, {{Type::Q4_K, Type::Q6_K, Type::Q4_K}, {9, 5, 5}, 512, 1, true, true}, 2, seed += 50);
  check_products(*ctx, op, {{Type::Q8_0, Type::Q4_0, Type::F16}, {9, 5, 3}, 64, 3, true}, 3, seed += 50);
  check_products(*ctx, op, {{Type::Q8_0, Type::Q8_0}, {9, 5}, 64, 1, false, false, false}, 2, seed += 50);
  check_products(*ctx, op, {{Type::F16, Type::F16}, {9, 5}, 64, 17, true}, 2, seed += 50);  // tiled
  {
    ops::MatMulOptions options;
    options.max_weight_binding_bytes = 800;  // each Q8_0 matrix (612, 340 bytes) fits, the pair does not
    ops::MatMul small(*ctx, options);
    check_products(*ctx, small, {{Type::Q8_0, Type::Q8_0}, {9, 5}, 64, 1}, 2, seed += 50);
  }
  {
    ops::MatMulOptions options;
    options.merge_products = false;
    ops::MatMul off(*ctx, options);
    check_products(*ctx, off, {{Type::F16, Type::F16, Type::F16}, {9, 5, 3}, 64, 1, true, true}, 3, seed += 50);
  }
  // Batches on the integer-dot tiles (where the device has them): x quantized once for all the
  // products, of any dot types: one quantization pass and two barriers, then a tile grid each;
  // with merging off, a quantization and two barriers per product.
  if (ctx->features().dot) {
    for (uint32_t tokens : {17u, 33u}) {
      check_products(*ctx, op, {{Type::Q4_0, Type::Q8_0, Type::Q4_K}, {65, 9, 130}, 256, tokens, true}, 4, seed += 50);
      ops::MatMulOptions options;
      options.merge_products = false;
      ops::MatMul off(*ctx, options);
      check_products(*ctx, off, {{Type::Q4_0, Type::Q4_0}, {65, 9}, 256, tokens, true}, 4, seed += 50);
    }
    // Only the dot-able ones share it: F16 takes the plain tiles. A Q4_K_M file's Q6_K attn_v
    // is dot-able and shares it.
    check_products(*ctx, op, {{Type::Q4_K, Type::Q4_K, Type::F16}, {9, 5, 5}, 512, 17}, 4, seed += 50);
    check_products(*ctx, op, {{Type::Q4_K, Type::Q4_K, Type::Q6_K}, {9, 5, 5}, 512, 17}, 4, seed += 50);
  }
  // Four products are more than one dispatch takes.
  check_products(*ctx, op, {{Type::F32, Type::F32, Type::F32, Type::F32}, {3, 3, 3, 3}, 40, 1}, 4, seed += 50);
}
