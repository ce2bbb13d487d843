// MatMul: every weight type x ragged shapes x every path (mv plain/subgroup, mm, mm_dot) against a
// double-precision reference on quant::dequantize'd weights.
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
#include "ops/weight_binding.hpp"
#include "matmul_cases.hpp"
#include "support/gpu.hpp"
#include "support/weights.hpp"

using namespace moevk;
using moevk::test::GpuTest;
using namespace moevk::test::matmul;
using quant::Type;

namespace {

// The types with an integer-dot kernel: 32-element sub-blocks of scale * int8 + offset, or
// 16-element halves of scale * int8 (Q3_K, Q6_K, IQ2_XS, IQ2_S, IQ1_M) or scale * int8 - min (Q2_K);
// the codebook types' int8 is the signed grid level.
const Type kDotTypes[] = {Type::Q8_0, Type::Q4_0, Type::Q4_1, Type::Q5_0, Type::Q5_1, Type::IQ4_NL, Type::IQ4_XS,
                          Type::Q4_K, Type::Q5_K, Type::Q2_K, Type::Q3_K, Type::Q6_K, Type::IQ2_XXS,
                          Type::IQ2_XS, Type::IQ2_S, Type::IQ3_XXS, Type::IQ3_S, Type::IQ1_S, Type::IQ1_M};
bool has_dot(Type t) { return std::find(std::begin(kDotTypes), std::end(kDotTypes), t) != std::end(kDotTypes); }

struct Case {
  Type type;
  uint32_t rows, cols, tokens;
  bool bias = false;
  test::WeightSource source = test::WeightSource::Quantize;
  bool accumulate = false;  // y starts with random values and the op adds to them
  bool norm = false;        // x RMS-normed on the way in (ops::InputNorm, mv path only)
};

std::string describe(const Case& c, const std::string& path) {
  std::ostringstream s;
  s << quant::type_info(c.type).name << " rows=" << c.rows << " cols=" << c.cols << " tokens=" << c.tokens
    << " bias=" << c.bias << " source=" << int(c.source) << " accumulate=" << c.accumulate << " norm=" << c.norm
    << " path=" << path;
  return s.str();
}

// Runs one case through `op` (whose path must be `expect_path`) and checks every output. The
// weights start `lead` bytes into their buffer: by default at an offset no binding alignment
// allows, which exercises `base`.
void check_matmul(vk::Context& ctx, const ops::MatMul& op, const Case& c, const std::string& expect_path,
                  uint32_t seed, uint32_t lead = 36) {
  const auto w = test::random_weights(c.type, c.rows, c.cols, seed, c.source);
  const auto wf = test::dequantized(c.type, w, c.rows, c.cols);
  std::vector<uint8_t> padded(lead, 0xCD);
  const auto on_device = test::device_weights(c.type, w, c.rows, c.cols, lead);
  padded.insert(padded.end(), on_device.begin(), on_device.end());
  const auto x = test::random_floats(size_t(c.tokens) * c.cols, seed + 1);
  const auto bias = test::random_floats(c.rows, seed + 2);
  // Norm weights around 1 with either sign, as trained RMSNorm gains; eps as Mixtral's.
  auto norm_weight = test::random_floats(c.cols, seed + 4);
  for (float& g : norm_weight) g += g < 0 ? -0.5f : 0.5f;
  const float eps = 1e-5f;
  auto nbuf = test::upload(ctx, norm_weight, "norm weight");
  const ops::InputNorm norm{nbuf.range(), eps};
  auto wbuf = test::upload(ctx, padded, "weights");
  auto xbuf = test::upload(ctx, x, "x");
  auto bbuf = test::upload(ctx, bias, "bias");
  const auto y0 = test::random_floats(size_t(c.tokens) * c.rows, seed + 3);
  auto ybuf = c.accumulate ? test::upload(ctx, y0, "y") : test::poisoned(ctx, uint64_t(c.tokens) * c.rows * 4);
  const ops::Matrix m{wbuf.range(lead, w.size()), c.type, c.cols, c.rows};
  const std::string path = op.path_for(m, c.tokens);
  ASSERT_EQ(path, expect_path) << describe(c, path);
  const vk::BufferRange bias_range = bbuf.range();
  test::run_once(ctx, [&](vk::Recorder& r) {
    op.record(r, m, xbuf.range(), ybuf.range(), c.tokens, c.bias ? &bias_range : nullptr, c.accumulate,
              c.norm ? &norm : nullptr);
  });
  const auto got = test::download<float>(ctx, ybuf, size_t(c.tokens) * c.rows);

  size_t bad = 0;
  std::string first;
  for (uint32_t t = 0; t < c.tokens; ++t) {
    // The reference input: x itself, or x / rms(x) * g in double.
    std::vector<float> x_ref(x.begin() + size_t(t) * c.cols, x.begin() + size_t(t + 1) * c.cols);
    std::vector<double> xn(x_ref.begin(), x_ref.end());
    if (c.norm) {
      double sum_sq = 0;
      for (float v : x_ref) sum_sq += double(v) * v;
      const double scale = 1.0 / std::sqrt(sum_sq / c.cols + eps);
      for (uint32_t k = 0; k < c.cols; ++k) xn[k] = double(x_ref[k]) * scale * norm_weight[k];
    }
    const std::vector<double> x_step = int8_half_steps(xn, path == "mm_dot");
    for (uint32_t r = 0; r < c.rows; ++r) {
      const float* wr = &wf[size_t(r) * c.cols];
      double want = c.bias ? bias[r] : 0.0, magnitude = c.bias ? std::fabs(bias[r]) : 0.0, quant_bound = 0;
      if (c.accumulate) {
        want += y0[size_t(t) * c.rows + r];
        magnitude += std::fabs(y0[size_t(t) * c.rows + r]);
      }
      for (uint32_t k = 0; k < c.cols; ++k) {
        want += double(wr[k]) * xn[k];
        magnitude += std::fabs(double(wr[k]) * xn[k]);
        quant_bound += std::fabs(double(wr[k])) * x_step[k / 32];
      }
      // f32 accumulation of K terms in another order than the reference: a random walk of
      // ~sqrt(K) * 2^-24 * sum|w x| (~1.4e-6 of the magnitude at K = 512); 1e-5 of it, grown
      // with sqrt(K / 512) for longer rows, leaves a 7x margin.
      // The coopmat path rounds w and x to fp16 (2^-11 each): at most ~1e-3 of every term.
      const double rel = path == "mm_coopmat" ? 2e-3 : 1e-5 * std::max(1.0, std::sqrt(c.cols / 512.0));
      const double tol = rel * magnitude + (path == "mm_coopmat" ? 1e-4 : 1e-6) + quant_bound;
      const double g = got[size_t(t) * c.rows + r];
      if (!(std::fabs(g - want) <= tol)) {
        if (bad++ == 0) {
          std::ostringstream s;
          s << "y[" << t << "][" << r << "] = " << g << ", want " << want << " (tol " << tol << ")";
          first = s.str();
        }
      }
    }
  }
  EXPECT_EQ(bad, 0u) << describe(c, path) << ": " << bad << " wrong, first " << first;
}

// The shapes every type runs: rows 1, 7, 65, 130 (not multiples of the 2-row mv group or the
// 64-row mm tile); cols 3 blocks (2 for the 256-element k-quants); tokens 1, 3, 8 (mv) and
// 17, 33 (mm with 32- and 64-token tiles).
std::vector<Case> cases_for(Type t) {
  const uint32_t cols = block_of(t) == 256 ? 512 : block_of(t) * (block_of(t) == 8 ? 5 : 3);
  return {{t, 1, cols, 1}, {t, 7, cols, 3, true}, {t, 65, cols, 8}, {t, 130, cols, 17, true},
          {t, 65, cols, 33, false, test::WeightSource::RandomBytes}, {t, 7, cols, 1, false, test::WeightSource::RandomBytes}};
}

}  // namespace

TEST_F(GpuTest, MatMulEveryTypeDefaultPaths) {
  ops::MatMul op(*ctx);
  uint32_t seed = 100;
  for (Type t : kTypes)
    for (const Case& c : cases_for(t)) {
      const std::string mm_path = ops::MatMul(*ctx).path_for({{}, t, c.cols, c.rows}, 64);  // coopmat where usable
      const std::string want_path = c.tokens <= 8 ? "mv" : mm_path == "mm_coopmat" ? mm_path
                                    : (ctx->features().dot && has_dot(t)) ? "mm_dot" : "mm";
      check_matmul(*ctx, op, c, want_path, seed += 3);
    }
}

TEST_F(GpuTest, MatMulEveryTypeForcedMatrixMatrixPlain) {
  // mv_max_tokens = 0 sends even single tokens through the tiled kernel; no integer dot.
  ops::MatMulOptions options;
  options.mv_max_tokens = 0;
  options.allow_dot = false;
  options.allow_coopmat = false;
  ops::MatMul op(*ctx, options);
  uint32_t seed = 500;
  for (Type t : kTypes)
    for (const Case& c : cases_for(t))
      if (c.tokens != 8) check_matmul(*ctx, op, c, "mm", seed += 3);
}

TEST_F(GpuTest, MatMulMatrixVectorPlainReduction) {
  // The shared-memory tree without subgroups, as on devices without subgroup arithmetic. The
  // reduction does not depend on the type (decoders are covered above): one per block family.
  ops::MatMulOptions options;
  options.allow_subgroup = false;
  ops::MatMul op(*ctx, options);
  uint32_t seed = 900;
  for (Type t : {Type::F16, Type::Q4_0, Type::Q5_1, Type::Q4_K, Type::Q6_K})
    for (const Case& c : cases_for(t))
      if (c.tokens <= 8) check_matmul(*ctx, op, c, "mv", seed += 3);
}

TEST_F(GpuTest, MatMulWiderMatrixVectorBatch) {
  // mv_max_tokens above the default: 16 accumulators per row, no power-of-two batch.
  ops::MatMulOptions options;
  options.mv_max_tokens = 16;
  ops::MatMul op(*ctx, options);
  check_matmul(*ctx, op, {Type::Q4_K, 33, 256, 13, true}, "mv", 1300);
  check_matmul(*ctx, op, {Type::Q8_0, 9, 64, 16}, "mv", 1310);
}

TEST_F(GpuTest, MatMulFusedInputNorm) {
  // The RMS norm folded into the matrix-vector kernel (decode: no norm pass, no barrier): both
  // reductions, both loops (16-element pairs at <= 4 tokens, 8 otherwise), a batch, long rows
  // (several strided passes), bias and accumulate. The norm's own error (f32 sum of squares,
  // one inversesqrt) is ~1e-7 relative, inside the product's tolerance.
  uint32_t seed = 1500;
  for (bool subgroup : {true, false}) {
    ops::MatMulOptions options;
    options.allow_subgroup = subgroup;
    ops::MatMul op(*ctx, options);
    for (Type t : {Type::F16, Type::Q8_0, Type::Q4_0, Type::Q4_K}) {
      const uint32_t cols = block_of(t) == 256 ? 512 : block_of(t) * 3;
      check_matmul(*ctx, op, {t, 7, cols, 1, false, test::WeightSource::Quantize, false, true}, "mv", seed += 5);
      check_matmul(*ctx, op, {t, 65, cols, 3, true, test::WeightSource::Quantize, true, true}, "mv", seed += 5);
      check_matmul(*ctx, op, {t, 9, cols, 8, false, test::WeightSource::Quantize, true, true}, "mv", seed += 5);
    }
    check_matmul(*ctx, op, {Type::Q4_0, 5, 4096 + 32, 1, false, test::WeightSource::Quantize, false, true}, "mv", seed += 5);
    check_matmul(*ctx, op, {Type::Q4_K, 3, 4096 + 256, 2, true, test::WeightSource::Quantize, true, true}, "mv", seed += 5);
  }
  // A norm on a batch that takes the tiled kernels is a caller's bug, refused.
  const auto w = test::random_weights(Type::Q8_0, 4, 64, 1);
  auto wbuf = test::upload(*ctx, w, "weights");
  auto xbuf = test::upload(*ctx, test::random_floats(64 * 64, 2), "x");
  auto ybuf = test::poisoned(*ctx, 64 * 4 * 4);
  const ops::InputNorm norm{xbuf.range(0, 256), 1e-5f};
  ops::MatMul op(*ctx);
  const ops::Matrix m{wbuf.range(), Type::Q8_0, 64, 4};
  EXPECT_FALSE(op.fuses_norm(m, 64));
  EXPECT_TRUE(op.fuses_norm(m, 1));
  vk::Recorder rec(*ctx);
  rec.begin();
  try {
    op.record(rec, m, xbuf.range(), ybuf.range(), 64, nullptr, false, &norm);
    ADD_FAILURE() << "a fused norm on the mm path was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_INTERNAL);
  }
  rec.end();
}

TEST_F(GpuTest, MatMulMatrixVectorBatchCappedBySharedMemory) {
  // mul_mv keeps 4 partial sums per token in each slot of shared memory: one slot per thread
  // (128) with the plain reduction, 2 KiB per token, so the allowed maximum of 32 tokens (64 KiB)
  // exceeds every device's limit here (lavapipe 32 KiB, NVIDIA 48 KiB); one per subgroup with
  // the subgroup reduction (128 / 8 = 16 on lavapipe, 256 bytes per token). The op caps the
  // batch to what fits and sends larger ones to the matrix-matrix kernels. Without the cap the
  // 17..32-token plain pipelines would exceed maxComputeSharedMemorySize (validation fails).
  // A fused norm needs a fifth sum per slot: it is offered up to the smaller batch that fits.
  for (bool subgroup : {true, false}) {
    const bool reduces_by_subgroup = subgroup && ctx->features().subgroup_arithmetic;
    const uint32_t slots = reduces_by_subgroup ? 128 / ctx->caps().min_subgroup_size : 128;
    const uint32_t fit = ctx->caps().max_shared_memory / (4 * slots * 4);
    const uint32_t norm_fit = ctx->caps().max_shared_memory / (5 * slots * 4);
    ops::MatMulOptions options;
    options.mv_max_tokens = 32;
    options.allow_subgroup = subgroup;
    ops::MatMul op(*ctx, options);
    const uint32_t cap = std::min(32u, fit);
    EXPECT_EQ(op.mv_max_tokens(), cap);
    const ops::Matrix m{{}, Type::Q8_0, 64, 9};
    EXPECT_EQ(op.path_for(m, cap), "mv");
    if (cap < 32) {
      EXPECT_NE(op.path_for(m, cap + 1), "mv");
    }
    const std::string mm = ops::MatMul(*ctx).path_for(m, 64);
    check_matmul(*ctx, op, {Type::Q8_0, 9, 64, cap, true}, "mv", 1400 + subgroup);
    check_matmul(*ctx, op, {Type::Q8_0, 9, 64, 32}, cap < 32 ? mm : "mv", 1410 + subgroup);
    const uint32_t norm_cap = std::min(cap, norm_fit);
    EXPECT_TRUE(op.fuses_norm(m, norm_cap));
    EXPECT_EQ(op.fuses_norm(m, norm_cap + 1), false);
    check_matmul(*ctx, op, {Type::Q8_0, 9, 64, norm_cap, false, test::WeightSource::Quantize, false, true}, "mv",
                 1420 + subgroup);
    // Options below the cap are kept as they are.
    options.mv_max_tokens = 3;
    EXPECT_EQ(ops::MatMul(*ctx, options).mv_max_tokens(), std::min(3u, fit));
  }
}

TEST_F(GpuTest, MatMulRunsAtTheRequestedSubgroupSize) {
  // CMakeLists.txt runs the subgroup kernels' tests again on lavapipe at 4 lanes
  // (LP_NATIVE_VECTOR_WIDTH=128) and says so in MOEVK_TEST_SUBGROUP_SIZE: that run is only worth
  // something if the driver took the width.
  const char* want = std::getenv("MOEVK_TEST_SUBGROUP_SIZE");
  if (!want || !*want) GTEST_SKIP() << "not a run at a requested subgroup size";
  if (ctx->caps().driver_name.find("llvmpipe") == std::string::npos)
    GTEST_SKIP() << "the size is requested from lavapipe only; this is " << ctx->caps().driver_name;
  const uint32_t size = uint32_t(std::stoul(want));
  EXPECT_EQ(ctx->caps().subgroup_size, size);
  EXPECT_EQ(ctx->caps().min_subgroup_size, size);
  EXPECT_EQ(ops::MatMul::mv_subgroup_slots(ctx->caps()), 128 / size);
}

TEST_F(GpuTest, MatMulSubgroupReductionSlotsFollowTheSmallestSubgroupSize) {
  // One slot per subgroup of a 128-thread workgroup, counted at the smallest subgroup size the
  // driver may pick: NVIDIA (32) needs 4, so 32 tokens take 2 KiB (2.5 with a norm) and fit its
  // 48 KiB, where 128 slots per sum allowed 24 (19 with a norm). AMD (32..64) 4, Intel (8..32)
  // and lavapipe (8) 16. No size reported: one slot per thread, as the plain reduction.
  vk::Capabilities caps;
  caps.max_shared_memory = 48 * 1024;
  for (auto [min_size, slots] : {std::pair{32u, 4u}, {64u, 2u}, {8u, 16u}, {4u, 32u}, {1u, 128u}, {0u, 128u}}) {
    caps.min_subgroup_size = min_size;
    EXPECT_EQ(ops::MatMul::mv_subgroup_slots(caps), slots) << "min subgroup size " << min_size;
  }
  caps.min_subgroup_size = 32;
  EXPECT_EQ(ops::MatMul::mv_token_cap(caps, true, false, 32), 32u);
  EXPECT_EQ(ops::MatMul::mv_token_cap(caps, true, true, 32), 32u);
  EXPECT_EQ(ops::MatMul::mv_token_cap(caps, true, false, 8), 8u);
  EXPECT_EQ(ops::MatMul::mv_token_cap(caps, false, false, 32), 24u);  // 48 KiB / 2 KiB
  EXPECT_EQ(ops::MatMul::mv_token_cap(caps, false, true, 32), 19u);   // 48 KiB / 2.5 KiB
  // Small shared memory still caps the subgroup reduction: 16 slots x 4 floats = 256 bytes a token.
  caps.max_shared_memory = 4096;
  caps.min_subgroup_size = 8;
  EXPECT_EQ(ops::MatMul::mv_token_cap(caps, true, false, 32), 16u);
  EXPECT_EQ(ops::MatMul::mv_token_cap(caps, true, true, 32), 12u);  // 4096 / 320
  // The op applies it with this device's caps.
  EXPECT_EQ(ops::MatMul::mv_subgroup_slots(ctx->caps()), 128 / ctx->caps().min_subgroup_size);

  // On lavapipe (subgroups of 8, 32 KiB) the subgroup reduction now takes the 32-token maximum,
  // with and without a norm, where 128 slots per sum stopped it at 16 (12): batches at that cap
  // on the matrix-vector path match the reference, rows of several strided passes included.
  if (!ctx->features().subgroup_arithmetic) GTEST_SKIP() << "device has no subgroup arithmetic";
  ops::MatMulOptions options;
  options.mv_max_tokens = 32;
  ops::MatMul op(*ctx, options);
  const uint32_t cap = ops::MatMul::mv_token_cap(ctx->caps(), true, false, 32);
  ASSERT_EQ(op.mv_max_tokens(), cap);
  const uint32_t norm_cap = ops::MatMul::mv_token_cap(ctx->caps(), true, true, cap);
  EXPECT_TRUE(op.fuses_norm({{}, Type::Q4_0, 64, 9}, norm_cap));
  uint32_t seed = 3600;
  for (const Case& c : {Case{Type::Q4_K, 33, 512, cap, true}, Case{Type::Q4_0, 5, 2048 + 32, cap},
                        Case{Type::F16, 7, 40, cap - 1, false, test::WeightSource::Quantize, true}})
    check_matmul(*ctx, op, c, "mv", seed += 3);
  for (const Case& c : {Case{Type::Q8_0, 9, 96, norm_cap, false, test::WeightSource::Quantize, false, true},
                        Case{Type::Q4_K, 3, 256, norm_cap, true, test::WeightSource::Quantize, true, true}})
    check_matmul(*ctx, op, c, "mv", seed += 3);
}

// One-token batches run mul_mv with options.decode_workgroup x decode_rows (bench ops sweeps
// them): other shapes than 128 x 4, with rows that leave a ragged last group (5 over 37), on
// both reductions, with bias, accumulate and a fused norm, and long rows for the 32-thread one;
// batches keep their 128 x 4 kernel; shapes a device cannot take are refused by name.
TEST_F(GpuTest, MatMulDecodeKernelTakesOtherWorkgroupShapes) {
  uint32_t seed = 3500;
  for (bool subgroup : {true, false}) {
    for (const auto& [wg, rows] : std::vector<std::pair<uint32_t, uint32_t>>{{32, 1}, {64, 5}, {256, 8}}) {
      SCOPED_TRACE(std::to_string(wg) + "x" + std::to_string(rows) + (subgroup ? " subgroupAdd" : " shared tree"));
      ops::MatMulOptions options;
      options.allow_subgroup = subgroup;
      options.decode_workgroup = wg;
      options.decode_rows = rows;
      ops::MatMul op(*ctx, options);
      for (const Case& c : {Case{Type::Q4_0, 37, 256, 1, true}, Case{Type::Q4_K, 37, 512, 1, false},
                            Case{Type::Q6_K, 11, 256, 1, false, test::WeightSource::Quantize, true},
                            Case{Type::Q8_0, 37, 96, 1, false, test::WeightSource::Quantize, false, true},
                            Case{Type::Q4_K, 3, 2048 + 256, 1}, Case{Type::Q8_0, 37, 96, 3, true}})
        check_matmul(*ctx, op, c, "mv", seed += 3);
    }
  }
  for (const auto& [wg, rows] : std::vector<std::pair<uint32_t, uint32_t>>{{96, 4}, {128, 0}, {128, 9}, {2048, 1}}) {
    ops::MatMulOptions options;
    options.decode_workgroup = wg;
    options.decode_rows = rows;
    ops::MatMul op(*ctx, options);
    vk::Buffer b = test::poisoned(*ctx, 1 << 16);
    vk::Recorder rec(*ctx);
    rec.begin();
    try {
      op.record(rec, {b.range(), Type::Q8_0, 64, 8}, b.range(), b.range(), 1);
      ADD_FAILURE() << wg << "x" << rows << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_ARGUMENT) << e.what();
      EXPECT_NE(std::string(e.what()).find("decode workgroup"), std::string::npos) << e.what();
    }
    rec.end();
  }
}

// wide_decode: one-token products of Q4_0, Q4_K, Q5_K and Q6_K take 32 elements a thread step
// (16 quant bytes: one 128-bit load where 16-aligned, as rows of 256 columns at lead 0 are; lead
// 36, 54-byte Q4_0 rows and Q6_K's 210-byte blocks mostly are not). Bias, accumulate, the fused
// norm, ragged row groups, fewer steps than threads (96 columns: 3), both reductions; a type
// without wide steps and a 3-token batch beside them keep theirs.
TEST_F(GpuTest, MatMulDecodeWideSteps) {
  using test::WeightSource;
  uint32_t seed = 3700;
  for (bool subgroup : {true, false}) {
    SCOPED_TRACE(subgroup ? "subgroupAdd" : "shared tree");
    ops::MatMulOptions options;
    options.allow_subgroup = subgroup;
    options.wide_decode = true;
    ops::MatMul op(*ctx, options);
    for (uint32_t lead : {0u, 36u}) {
      SCOPED_TRACE("lead " + std::to_string(lead));
      for (const Case& c : {Case{Type::Q4_0, 37, 256, 1, true}, Case{Type::Q4_0, 13, 96, 1, false, WeightSource::Quantize, true},
                            Case{Type::Q4_K, 37, 512, 1, false, WeightSource::Quantize, false, true},
                            Case{Type::Q5_K, 11, 256, 1, true},
                            Case{Type::Q6_K, 11, 768, 1, false, WeightSource::Quantize, true, true},
                            Case{Type::Q4_K, 3, 2048 + 256, 1}, Case{Type::Q8_0, 37, 96, 1, true},
                            Case{Type::Q4_K, 9, 256, 3, true}})
        check_matmul(*ctx, op, c, "mv", seed += 3, lead);
    }
  }
}

TEST_F(GpuTest, MatMulMatrixVectorLongRows) {
  // Rows longer than one pass of mul_mv's strided loop (128 threads x 8 elements = 1024 columns,
  // x 16 = 2048 in the paired loop of single tokens), with a ragged last pass: the other cases
  // have cols <= 512, where every thread runs the loop at most once.
  uint32_t seed = 3300;
  for (bool subgroup : {true, false}) {
    ops::MatMulOptions options;
    options.allow_subgroup = subgroup;
    ops::MatMul op(*ctx, options);
    for (const Case& c : {Case{Type::F16, 3, 4096 + 8, 1, true}, Case{Type::Q8_0, 5, 4096 + 32, 3},
                          Case{Type::Q4_0, 5, 4096 + 32, 1, false, test::WeightSource::RandomBytes},
                          Case{Type::Q4_K, 3, 4096 + 256, 1}, Case{Type::Q4_K, 3, 4096 + 256, 8, true}})
      check_matmul(*ctx, op, c, "mv", seed += 3);
  }
}

TEST_F(GpuTest, MatMulIntegerDotPath) {
  if (!ctx->features().dot) GTEST_SKIP() << "device has no integer dot product";
  ops::MatMulOptions options;
  options.mv_max_tokens = 0;
  options.allow_coopmat = false;
  ops::MatMul op(*ctx, options);
  uint32_t seed = 1500;
  for (Type t : kDotTypes) {
    const uint32_t cols = block_of(t) == 256 ? 512 : 96;
    for (uint32_t tokens : {1u, 3u, 17u, 33u, 70u}) {
      const auto source = tokens % 2 ? test::WeightSource::RandomBytes : test::WeightSource::Quantize;
      check_matmul(*ctx, op, {t, tokens == 1 ? 7u : 130u, cols, tokens, tokens == 3, source}, "mm_dot", seed += 3);
    }
  }
}

TEST_F(GpuTest, MatMulIntegerDotPathQuantizesOnATwoDimensionalGrid) {
  // The activations' quantization runs one thread per 32 elements: a long prefill of a wide
  // matrix (8192 tokens x 18432 columns: 73728 workgroups of 64) needs more workgroups than
  // one grid dimension guarantees (65535), so they are laid out in two. A limit of 3 per
  // dimension makes small batches do the same: 33 x 512 is 528 blocks in 3 x 3 workgroups,
  // 70 x 96 210 in 3 x 2 (two idle), 17 x 512 272 in 3 x 2 (one idle).
  if (!ctx->features().dot) GTEST_SKIP() << "device has no integer dot product";
  ops::MatMulOptions options;
  options.mv_max_tokens = 0;
  options.allow_coopmat = false;
  options.quantize_groups_per_dim = 3;
  ops::MatMul op(*ctx, options);
  uint32_t seed = 3500;
  for (const Case& c : {Case{Type::Q4_0, 65, 512, 33, true}, Case{Type::Q8_0, 130, 96, 70},
                        Case{Type::Q4_K, 7, 512, 17, false, test::WeightSource::RandomBytes}})
    check_matmul(*ctx, op, c, "mm_dot", seed += 3);
  // The path stays mm_dot at any batch, and the default grid holds the wide prefill.
  EXPECT_EQ(ops::MatMul(*ctx, {true, false}).path_for({{}, Type::Q4_0, 18432, 4096}, 8192), "mm_dot");
  EXPECT_EQ(ops::QuantizeQ8(*ctx).grid(8192u * 18432u / 32u).y, 2u);
  // The op records through that limit: 10 workgroups do not fit 3 x 3, and it says so.
  const auto w = test::random_weights(Type::Q8_0, 4, 640, 1);
  auto wbuf = test::upload(*ctx, w, "weights");
  auto xbuf = test::upload(*ctx, test::random_floats(32 * 640, 2), "x");
  auto ybuf = test::poisoned(*ctx, 32 * 4 * 4);
  vk::Recorder rec(*ctx);
  rec.begin();
  try {
    op.record(rec, {wbuf.range(), Type::Q8_0, 640, 4}, xbuf.range(), ybuf.range(), 32);  // 640 blocks
    ADD_FAILURE() << "a quantize grid over the limit was recorded";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_UNSUPPORTED) << e.what();
  }
  rec.end();
}

TEST_F(GpuTest, MatMulAccumulateAddsToOutputOnEveryPath) {
  // y += W x (+ bias): the residual add fused into the product, on mv (subgroup and plain
  // reduction), mm and mm_dot, over a split matrix too (every chunk adds to its own rows).
  uint32_t seed = 2700;
  const uint64_t slack = ops::weight_binding_slack(*ctx);
  for (int variant = 0; variant < 5; ++variant) {
    ops::MatMulOptions options;
    options.allow_coopmat = false;
    options.allow_subgroup = variant != 1;
    options.mv_max_tokens = variant == 2 || variant == 3 ? 0 : 8;
    options.allow_dot = variant == 3;
    if (variant == 4) options.max_weight_binding_bytes = slack + 3 * quant::row_bytes(Type::Q4_0, 96);
    ops::MatMul op(*ctx, options);
    for (Case c : {Case{Type::Q4_0, 65, 96, 1}, Case{Type::Q4_K, 7, 256, 3, true}, Case{Type::Q8_0, 130, 64, 17, true},
                   Case{Type::F16, 65, 40, 33}}) {
      if (variant == 4 && c.type != Type::Q4_0) continue;
      if (variant == 3 && (!ctx->features().dot || !has_dot(c.type))) continue;
      c.accumulate = true;
      std::string path = c.tokens <= options.mv_max_tokens ? "mv" : "mm";
      if (path == "mm" && variant == 3) path = "mm_dot";
      check_matmul(*ctx, op, c, path, seed += 3);
    }
  }
}

TEST_F(GpuTest, MatMulHonoursDisabledFeatures) {
  // MOEVK_DISABLE-style: without dot the q4_0 batch takes the plain tiles; without subgroup the
  // mv kernel uses the shared-memory reduction.
  auto plain = test::make_context("dot,subgroup,coopmat");
  EXPECT_FALSE(plain->features().dot);
  EXPECT_FALSE(plain->features().subgroup_arithmetic);
  ops::MatMul op(*plain);
  check_matmul(*plain, op, {Type::Q4_0, 65, 96, 17, true}, "mm", 1700);
  check_matmul(*plain, op, {Type::Q6_K, 65, 256, 3}, "mv", 1710);
  test::expect_no_validation_messages(*plain);
}

TEST_F(GpuTest, MatMulRejectsTypesWithoutAKernel) {
  std::vector<uint8_t> w(110 * 4, 0);
  auto wbuf = test::upload(*ctx, w);
  auto x = test::upload(*ctx, std::vector<float>(256, 1.0f));
  auto y = test::poisoned(*ctx, 4 * 4);
  ops::MatMul op(*ctx);
  for (Type t : {Type::TQ1_0, Type::TQ2_0, Type::Q8_K}) {
    ops::Matrix m{wbuf.range(), t, 256, 1};
    try {
      op.path_for(m, 1);
      ADD_FAILURE() << quant::type_info(t).name << " accepted by path_for";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), MOEVK_ERROR_UNSUPPORTED);
    }
    vk::Recorder rec(*ctx);
    rec.begin();
    try {
      op.record(rec, m, x.range(), y.range(), 1);
      ADD_FAILURE() << quant::type_info(t).name << " accepted by record";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), MOEVK_ERROR_UNSUPPORTED);
      EXPECT_NE(std::string(e.what()).find(quant::type_info(t).name), std::string::npos) << e.what();
    }
    rec.end();
  }
  EXPECT_THROW(ops::MatMul::check_supported(Type::TQ1_0), Error);
  EXPECT_NO_THROW(ops::MatMul::check_supported(Type::IQ2_XXS));
  EXPECT_NO_THROW(ops::MatMul::check_supported(Type::Q3_K));
  EXPECT_NO_THROW(ops::MatMul::check_supported(Type::IQ4_NL));
}

TEST_F(GpuTest, MatMulSplitsMatricesLargerThanOneBinding) {
  // Bindings of a few rows (as a vocabulary matrix beyond lavapipe's 128 MiB range would be):
  // every path writes its chunk's rows at the right place, chunk starts 2 mod 4 for q4_0.
  const uint64_t slack = ops::weight_binding_slack(*ctx);
  uint32_t seed = 2000;
  for (const Case& c : {Case{Type::Q4_0, 130, 96, 3, true}, Case{Type::Q4_0, 130, 96, 33, true},
                        Case{Type::Q6_K, 65, 256, 1}, Case{Type::F16, 70, 40, 17, true}}) {
    for (bool dot : {false, true}) {
      ops::MatMulOptions options;
      options.allow_dot = dot;
      options.allow_coopmat = false;
      options.max_weight_binding_bytes = slack + 3 * quant::row_bytes(c.type, c.cols);
      ops::MatMul op(*ctx, options);
      const std::string path = c.tokens <= 8 ? "mv" : (dot && ctx->features().dot && has_dot(c.type)) ? "mm_dot" : "mm";
      check_matmul(*ctx, op, c, path, seed += 3);
    }
  }
}

TEST_F(GpuTest, MatMulCooperativeMatrixPath) {
  ops::MatMulOptions options;
  options.mv_max_tokens = 0;
  ops::MatMul op(*ctx, options);
  if (op.path_for({{}, Type::Q4_0, 32, 1}, 64) != "mm_coopmat")
    GTEST_SKIP() << "no NV cooperative matrix 16x16x16 f16/f32 with subgroups of 32 (lavapipe has none)";
  uint32_t seed = 3000;
  for (Type t : kTypes)
    for (const Case& c : cases_for(t)) check_matmul(*ctx, op, c, "mm_coopmat", seed += 3);
}

TEST_F(GpuTest, MatMulCooperativeMatrixTilesEmulated) {
  // The coopmat kernel's emulated build (shaders/common/coopmat.glsl): its tiling, fragment
  // offsets, strides and layouts on any device, for the types it is built for; 129 tokens and
  // 130 rows span several 64 x 64 tiles with ragged edges, with bias and accumulate.
  ops::MatMulOptions options;
  options.mv_max_tokens = 0;
  options.coopmat_emulation = true;
  ops::MatMul op(*ctx, options);
  uint32_t seed = 3500;
  for (Type t : {Type::F16, Type::Q8_0, Type::Q4_0, Type::Q2_K, Type::Q3_K, Type::Q4_K, Type::Q6_K}) {
    ASSERT_TRUE(ops::coopmat_emulation_usable(*ctx, t)) << quant::type_info(t).name;
    std::vector<Case> cases = cases_for(t);
    const uint32_t cols = cases[0].cols;
    cases.push_back({t, 130, cols, 129, true, test::WeightSource::Quantize, true});
    cases.push_back({t, 64, cols, 64, false, test::WeightSource::RandomBytes});
    for (const Case& c : cases) check_matmul(*ctx, op, c, "mm_coopmat", seed += 3);
  }
  // Types without an emulated build take the other paths.
  EXPECT_NE(op.path_for({{}, Type::Q5_1, 32, 8}, 64), "mm_coopmat");
}

TEST_F(GpuTest, MatMulMatrixVectorPairedRunsForSmallBatches) {
  // mv_max_tokens <= 4 takes the 16-element (dequant8x2) loop for the 2- to 6-bit types with
  // several tokens; single tokens take it by default (covered above).
  ops::MatMulOptions options;
  options.mv_max_tokens = 4;
  ops::MatMul op(*ctx, options);
  uint32_t seed = 2500;
  for (Type t : {Type::Q4_0, Type::Q4_1, Type::Q5_0, Type::Q5_1, Type::IQ4_NL, Type::IQ4_XS, Type::Q2_K, Type::Q3_K, Type::Q4_K,
                 Type::Q5_K, Type::Q6_K}) {
    const uint32_t cols = block_of(t) == 256 ? 512 : 96;
    check_matmul(*ctx, op, {t, 65, cols, 4, true, test::WeightSource::RandomBytes}, "mv", seed += 3);
    check_matmul(*ctx, op, {t, 7, cols, 2}, "mv", seed += 3);
  }
}
