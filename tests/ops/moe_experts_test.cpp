// MoeExperts (decode, grouped, grouped integer-dot and grouped cooperative-matrix paths, forced)
// and SharedExpertCombine against a double-precision reference on the dequantized weights. The
// cooperative-matrix path runs on the NV kernel where the device has it (MOEVK_ENABLE=coopmat),
// else on its emulated build (ops/coopmat.hpp), which checks the same tiles on lavapipe.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "common/error.hpp"
#include "moe_experts_reference.hpp"
#include "ops/coopmat.hpp"
#include "ops/moe.hpp"
#include "support/gpu.hpp"
#include "support/weights.hpp"

using namespace moevk;
using moevk::test::GpuTest;
using quant::Type;

namespace {

using namespace moevk::test::moe;

class MoeExpertsTest : public GpuTest {
 protected:
  uint64_t max_binding_bytes = 0;  // MoeExpertsOptions::max_weight_binding_bytes for run()
  bool allow_subgroup = true;      // MoeExpertsOptions::allow_subgroup for run()
  uint32_t quantize_groups = 0;    // MoeExpertsOptions::quantize_groups_per_dim for run()
  uint32_t decode_workgroup = 64, decode_rows = 2;  // MoeExpertsOptions::decode_* for run()
  bool quantize_h = true;          // MoeExpertsOptions::quantize_h_in_gate_up for run()
  uint32_t coopmat_tile_rows = 0;  // MoeExpertsOptions::coopmat_tile_rows for run()
  bool x_quantized_before = false; // run() quantizes x itself (QuantizeQ8) and passes it as x_q8
  uint32_t last_dispatches = 0, last_barriers = 0;  // what run()'s recording held

  struct Inputs {
    Case c;
    Experts gate, up, down;
    std::vector<float> x, weights;
    std::vector<uint32_t> ids;
  };

  Inputs make_inputs(const Case& c, uint32_t seed) {
    Inputs in{c, make_experts(c.gate, c.n_expert, c.n_ff, c.n_embd, c.lead, c.stride_pad, seed),
              make_experts(c.up, c.n_expert, c.n_ff, c.n_embd, c.lead, c.stride_pad, seed + 1),
              make_experts(c.down, c.n_expert, c.n_embd, c.n_ff, c.lead, c.stride_pad, seed + 2),
              test::random_floats(size_t(c.n_tokens) * c.n_embd, seed + 3),
              test::random_floats(size_t(c.n_tokens) * c.k, seed + 4, 0.05f, 1.0f),
              route(c, seed + 5)};
    return in;
  }

  // The paths this device runs: the dot path where it has the integer dot product and some
  // product's type has a kernel.
  std::vector<Path> paths_for(const Case& c) const {
    std::vector<Path> paths{Path::Decode, Path::Grouped};
    if (ctx->features().dot && (has_dot(c.gate) || has_dot(c.up) || has_dot(c.down))) paths.push_back(Path::GroupedDot);
    if (coopmat_runs(c)) paths.push_back(Path::GroupedCoopmat);
    return paths;
  }

  // The cooperative-matrix path: the NV kernel where it is on, else the emulated build for the
  // types it is built for.
  // The cooperative-matrix kernel takes weights, x and h as fp16 (max 65504): random-byte
  // weights of some types (fp16 scales of any bit pattern) reach ~1e4 and their h far beyond, out
  // of that kernel's domain. Real models' weights and activations are orders of magnitude below.
  static bool fits_fp16(const Inputs& in, const Reference& exact) {
    double x_max = 0;
    for (float v : in.x) x_max = std::max(x_max, double(std::fabs(v)));
    return std::max({abs_max(in.gate), abs_max(in.up), abs_max(in.down), x_max, exact.h_abs_max}) < 6e4;
  }
  bool coopmat_emulated() const { return !ops::coopmat_usable(*ctx); }
  bool coopmat_runs(const Case& c) const {
    if (!coopmat_emulated()) return true;
    return ops::coopmat_emulation_usable(*ctx, c.gate) && ops::coopmat_emulation_usable(*ctx, c.up) &&
           ops::coopmat_emulation_usable(*ctx, c.down);
  }

  // Runs one forced path on fresh device buffers (outputs and scratch poisoned). With
  // `accumulate_onto`, out starts as those values and the op adds to them.
  // With `norm_weight`, x is RMS-normed on the way in (eps 1e-6; decode path only).
  std::vector<float> run(const Inputs& in, Path path, const std::vector<float>* accumulate_onto = nullptr,
                         const std::vector<float>* norm_weight = nullptr) {
    const Case& c = in.c;
    auto gbuf = test::upload(*ctx, in.gate.bytes, "gate experts");
    auto ubuf = test::upload(*ctx, in.up.bytes, "up experts");
    auto dbuf = test::upload(*ctx, in.down.bytes, "down experts");
    auto xbuf = test::upload(*ctx, in.x, "x");
    auto idbuf = test::upload(*ctx, in.ids, "expert ids");
    auto wbuf = test::upload(*ctx, in.weights, "expert weights");
    const ops::ExpertsShape s{c.n_tokens, c.n_embd, c.n_ff, c.n_expert, c.k};
    auto scratch = test::poisoned(*ctx, ops::MoeExperts::scratch_bytes(s), "moe scratch");
    auto out = accumulate_onto ? test::upload(*ctx, *accumulate_onto, "out")
                               : test::poisoned(*ctx, uint64_t(c.n_tokens) * c.n_embd * 4);
    auto matrices = [&](const vk::Buffer& b, const Experts& e, Type t, uint32_t cols, uint32_t rows) {
      return ops::ExpertMatrices{b.range(c.lead, e.bytes.size() - c.lead), t, cols, rows, c.n_expert, e.stride};
    };
    const auto g = matrices(gbuf, in.gate, c.gate, c.n_embd, c.n_ff);
    const auto u = matrices(ubuf, in.up, c.up, c.n_embd, c.n_ff);
    const auto d = matrices(dbuf, in.down, c.down, c.n_ff, c.n_embd);
    ops::MoeExpertsOptions options;
    options.decode_max_tokens = path == Path::Decode ? UINT32_MAX : 0u;
    options.allow_dot = path == Path::GroupedDot;
    options.allow_coopmat = path == Path::GroupedCoopmat;
    options.coopmat_emulation = path == Path::GroupedCoopmat && coopmat_emulated();
    options.max_weight_binding_bytes = max_binding_bytes;
    options.quantize_groups_per_dim = quantize_groups;
    options.allow_subgroup = allow_subgroup;
    options.decode_workgroup = decode_workgroup;
    options.decode_rows = decode_rows;
    options.quantize_h_in_gate_up = quantize_h;
    options.coopmat_tile_rows = coopmat_tile_rows;
    ops::MoeExperts op(*ctx, options);
    const DotProducts dot = dot_products(c, path);
    const int dots = int(dot.gate) + int(dot.up) + int(dot.down);
    EXPECT_EQ(op.path_for(s, c.gate, c.up, c.down),
              path == Path::Decode           ? "decode"
              : path == Path::GroupedCoopmat ? "grouped_coopmat"
              : dots == 3                    ? "grouped_dot"
              : dots == 0                    ? "grouped"
                                             : "grouped_mixed");
    vk::Buffer nbuf;
    ops::InputNorm norm;
    if (norm_weight) {
      nbuf = test::upload(*ctx, *norm_weight, "norm weight");
      norm = {nbuf.range(), 1e-6f};
    }
    const uint32_t x_blocks = c.n_tokens * c.n_embd / 32;
    vk::Buffer xq, xd, xs;
    ops::Q8Activations x_q8;
    if (x_quantized_before) {
      xq = test::poisoned(*ctx, uint64_t(x_blocks) * 32, "xq");
      xd = test::poisoned(*ctx, uint64_t(x_blocks) * 4, "xd");
      xs = test::poisoned(*ctx, uint64_t(x_blocks) * 4, "xs");
      x_q8 = {xq.range(), xd.range(), xs.range(), c.n_embd, c.n_tokens};
    }
    test::run_once(*ctx, [&](vk::Recorder& r) {
      if (x_quantized_before) {
        ops::QuantizeQ8(*ctx).record(r, xbuf.range(), xq.range(), xd.range(), xs.range(), x_blocks);
        r.barrier();
      }
      const uint32_t d0 = r.dispatch_count(), b0 = r.barrier_count();
      op.record(r, s, g, u, d, xbuf.range(), idbuf.range(), wbuf.range(), scratch.range(), out.range(),
                accumulate_onto != nullptr, norm_weight ? &norm : nullptr, x_quantized_before ? &x_q8 : nullptr);
      last_dispatches = r.dispatch_count() - d0;
      last_barriers = r.barrier_count() - b0;
    });
    return test::download<float>(*ctx, out, size_t(c.n_tokens) * c.n_embd);
  }

  Reference reference_for(const Inputs& in, Path path) const {
    return reference(in.c, in.gate, in.up, in.down, in.x, in.ids, in.weights, dot_products(in.c, path),
                     path == Path::GroupedCoopmat);
  }

  void check(const Case& c, uint32_t seed) {
    const Inputs in = make_inputs(c, seed);
    const Reference exact = reference_for(in, Path::Decode);
    for (Path path : paths_for(c)) {
      if (path == Path::GroupedCoopmat && !fits_fp16(in, exact)) continue;
      const std::vector<float> got = run(in, path);
      EXPECT_TRUE(close_to_reference(c, got, reference_for(in, path))) << describe(c) << " " << path_name(path);
      // And what int8 activations cost against f32 ones: each element moves by up to d / 2
      // (uniform, rms d / sqrt(12) ~ max|v| / 440 per 32 elements), ~0.5% rms of a product per
      // int8 stage; 3% bounds the two stages (gate/up, down) with margin.
      if (path == Path::GroupedDot) {
        EXPECT_TRUE(test::relative_l2(got, exact.value, 0.03)) << describe(c) << " vs f32";
      }
      // fp16 operands: the worst-case range above is wide (~sqrt(n) x the typical error); the
      // typical one is ~2^-11 rms per rounding, a few roundings per term (x, Wg/Wu, h, Wd), so
      // ~1e-3 of the output's rms. 4e-3 bounds it with margin; a wrong tile is ~1.
      if (path == Path::GroupedCoopmat) {
        EXPECT_TRUE(test::relative_l2(got, exact.value, 4e-3)) << describe(c) << " vs f32";
      }
    }
  }

  // The reference of a run whose out starts as `initial` (accumulate): initial + experts(x).
  static Reference plus(Reference want, const std::vector<float>& initial) {
    for (size_t i = 0; i < want.value.size(); ++i) {
      want.value[i] += initial[i];
      want.lo[i] += initial[i];
      want.hi[i] += initial[i];
    }
    return want;
  }

  // x / rms(x) * g per token, in double (the fused input norm's reference input).
  static std::vector<float> rms_normed(const Case& c, const std::vector<float>& x, const std::vector<float>& g) {
    std::vector<float> normed(x.size());
    for (uint32_t t = 0; t < c.n_tokens; ++t) {
      double sum_sq = 0;
      for (uint32_t i = 0; i < c.n_embd; ++i) sum_sq += double(x[t * c.n_embd + i]) * x[t * c.n_embd + i];
      const double scale = 1.0 / std::sqrt(sum_sq / c.n_embd + 1e-6);
      for (uint32_t i = 0; i < c.n_embd; ++i) normed[t * c.n_embd + i] = float(x[t * c.n_embd + i] * scale * g[i]);
    }
    return normed;
  }

  // out starts as `initial` on every path; the result must be initial + experts(x).
  void check_accumulate(const Inputs& in, const std::vector<float>& initial, const std::string& what) {
    for (Path path : paths_for(in.c)) {
      const Reference want = reference_for(in, path);
      if (path == Path::GroupedCoopmat && !fits_fp16(in, want)) continue;
      EXPECT_TRUE(close_to_reference(in.c, run(in, path, &initial), plus(want, initial)))
          << describe(in.c) << " " << path_name(path) << " " << what;
    }
  }
};

}  // namespace

TEST_F(MoeExpertsTest, FloatAndLegacyQuantsMatchReferenceOnBothPaths) {
  // n_embd 64 / n_ff 96: neither is a multiple of the 32-row tiles or the 2-row mv workgroups.
  const Case cases[] = {
      {Type::F32, Type::F32, Type::F32, 8, 2, 1, 64, 96},
      {Type::F16, Type::F16, Type::F16, 8, 2, 17, 64, 96, Routing::OneExpert},
      {Type::BF16, Type::BF16, Type::BF16, 8, 1, 3, 64, 96, Routing::OneExpert},
      {Type::Q8_0, Type::Q8_0, Type::Q8_0, 60, 4, 33, 96, 64, Routing::Random, 20, 0},
      {Type::Q4_0, Type::Q4_0, Type::Q4_0, 64, 8, 3, 64, 96, Routing::FewExperts},
      {Type::Q4_1, Type::Q4_1, Type::Q4_1, 128, 8, 127, 64, 96, Routing::Random, 0, 36},
      {Type::Q5_0, Type::Q5_0, Type::Q5_0, 60, 4, 17, 96, 64, Routing::FewExperts},
      {Type::Q5_1, Type::Q5_1, Type::Q5_1, 8, 2, 33, 64, 96},
      {Type::IQ4_NL, Type::IQ4_NL, Type::IQ4_NL, 8, 2, 3, 64, 96},
  };
  uint32_t seed = 100;
  for (const Case& c : cases) check(c, seed += 10);
}

TEST_F(MoeExpertsTest, AccumulateAddsToOutputOnBothPaths) {
  // out += experts(x): the residual add fused into the down product (decode) or the combine
  // (grouped); the starting values must survive in every row, including ragged ones.
  const Case cases[] = {
      {Type::Q4_0, Type::Q4_0, Type::Q4_0, 8, 2, 1, 64, 96},
      {Type::Q8_0, Type::Q8_0, Type::Q8_0, 60, 4, 17, 96, 64, Routing::FewExperts},
      {Type::Q4_K, Type::Q4_K, Type::Q4_K, 8, 2, 3, 256, 256, Routing::Random, 20, 0},
  };
  uint32_t seed = 700;
  for (const Case& c : cases) {
    const Inputs in = make_inputs(c, seed += 10);
    // Starting values of the outputs' own scale, so the tolerance (relative to the largest
    // output) stays what it is without accumulation.
    double scale = 0;
    for (double v : reference_for(in, Path::Decode).value) scale = std::max(scale, std::fabs(v));
    auto initial = test::random_floats(size_t(c.n_tokens) * c.n_embd, seed + 7);
    for (float& v : initial) v = float(v * scale);
    check_accumulate(in, initial, "accumulate");
  }
}

TEST_F(MoeExpertsTest, KQuantsMatchReferenceOnBothPaths) {
  const Case cases[] = {
      {Type::Q4_K, Type::Q4_K, Type::Q4_K, 8, 2, 33, 256, 256, Routing::Random, 20, 0},
      {Type::Q5_K, Type::Q5_K, Type::Q5_K, 60, 4, 17, 256, 256, Routing::FewExperts},
      {Type::Q6_K, Type::Q6_K, Type::Q6_K, 64, 1, 127, 256, 256, Routing::OneExpert},
      // Q4_K_M's mix: gate/up Q4_K, down Q6_K.
      {Type::Q4_K, Type::Q4_K, Type::Q6_K, 16, 8, 3, 256, 256, Routing::Random},
      // The 2- and 3-bit super-blocks of Q2_K / Q3_K_M files (experts Q3_K, some downs Q4_K).
      {Type::Q3_K, Type::Q3_K, Type::Q3_K, 8, 2, 33, 256, 256, Routing::Random, 20, 0},
      {Type::Q2_K, Type::Q2_K, Type::Q2_K, 128, 8, 17, 256, 512, Routing::FewExperts},
      {Type::Q3_K, Type::Q3_K, Type::Q4_K, 60, 4, 1, 256, 256},
      {Type::Q2_K, Type::Q2_K, Type::Q3_K, 64, 1, 3, 512, 256, Routing::OneExpert},
      {Type::IQ4_XS, Type::IQ4_XS, Type::IQ4_XS, 128, 8, 17, 256, 256, Routing::FewExperts},
      {Type::IQ4_XS, Type::IQ4_XS, Type::Q4_K, 8, 2, 1, 256, 512},
  };
  uint32_t seed = 200;
  for (const Case& c : cases) check(c, seed += 10);
}

TEST_F(MoeExpertsTest, DecodeFusedInputNorm) {
  // The FFN's RMS norm folded into moe_gate_up_mv (decode: no norm pass, no barrier): the
  // reference runs on x / rms(x) * g computed in double (rounded to f32, 2^-24: far inside the
  // tolerance). Fused gate+up, the two-pass mode (gate and up types differ), several tokens and
  // a row longer than one strided pass.
  uint32_t seed = 7100;
  for (const Case& c : {Case{Type::Q4_0, Type::Q4_0, Type::Q4_0, 8, 2, 1, 96, 64},
                        Case{Type::Q4_K, Type::Q4_K, Type::Q6_K, 60, 4, 3, 256, 256},
                        Case{Type::Q8_0, Type::F16, Type::Q8_0, 16, 8, 2, 64, 96},
                        Case{Type::F16, Type::F16, Type::F16, 128, 8, 1, 2048 + 32, 24}}) {
    const Inputs in = make_inputs(c, seed += 11);
    auto g = test::random_floats(c.n_embd, seed + 7);
    for (float& v : g) v += v < 0 ? -0.5f : 0.5f;
    const auto want = reference(c, in.gate, in.up, in.down, rms_normed(c, in.x, g), in.ids, in.weights);
    EXPECT_TRUE(close_to_reference(c, run(in, Path::Decode, nullptr, &g), want)) << describe(c) << " decode, fused norm";
  }
}

TEST_F(MoeExpertsTest, IntegerDotPathEveryTypeMatchesReference) {
  // Every int8-affine type on moe_mul_mm_dot (fused gate+up and down), token counts that are not
  // multiples of the 32-row tiles, widths that are not multiples of the 64-row weight tiles nor
  // of the 2 sub-blocks per step (96 = 3 x 32, 160 = 5 x 32), and the expert counts and k of
  // Mixtral (8, 2), Qwen1.5-MoE (60, 4), Qwen2-MoE (64, 8) and Qwen3-MoE (128, 8).
  if (!ctx->features().dot) GTEST_SKIP() << "device has no integer dot product";
  const Case cases[] = {
      {Type::Q8_0, Type::Q8_0, Type::Q8_0, 8, 1, 1, 96, 160},
      {Type::Q4_0, Type::Q4_0, Type::Q4_0, 60, 4, 45, 96, 160, Routing::Random, 20, 0},
      {Type::Q4_1, Type::Q4_1, Type::Q4_1, 64, 8, 127, 160, 96, Routing::FewExperts},
      {Type::Q5_0, Type::Q5_0, Type::Q5_0, 128, 8, 77, 96, 160},
      {Type::Q5_1, Type::Q5_1, Type::Q5_1, 128, 2, 5, 160, 96, Routing::OneExpert, 0, 36},
      {Type::IQ4_NL, Type::IQ4_NL, Type::IQ4_NL, 8, 2, 63, 96, 224},
      {Type::IQ4_XS, Type::IQ4_XS, Type::IQ4_XS, 60, 4, 45, 256, 512, Routing::Random, 20, 0},
      // IQ4_XS gate/up with a Q6_K down (IQ4_XS files keep some downs wider).
      {Type::IQ4_XS, Type::IQ4_XS, Type::Q6_K, 8, 2, 33, 256, 256},
      {Type::Q4_K, Type::Q4_K, Type::Q4_K, 60, 4, 31, 256, 256, Routing::Random, 20, 0},
      {Type::Q5_K, Type::Q5_K, Type::Q5_K, 64, 1, 100, 256, 512, Routing::FewExperts},
      // Q4_K_M's mix: gate/up Q4_K, down Q6_K (16-element scales: each half folded on its own).
      {Type::Q4_K, Type::Q4_K, Type::Q6_K, 8, 2, 40, 256, 256},
      {Type::Q6_K, Type::Q6_K, Type::Q6_K, 8, 2, 33, 256, 256, Routing::Random, 20, 0},
      {Type::Q3_K, Type::Q3_K, Type::Q3_K, 64, 8, 17, 256, 256, Routing::FewExperts},
      // Q2_K (16-element scales and mins: the activations' half sums) with a Q3_K down.
      {Type::Q2_K, Type::Q2_K, Type::Q3_K, 8, 2, 17, 256, 256},
      {Type::Q2_K, Type::Q2_K, Type::Q2_K, 60, 4, 33, 256, 256, Routing::Random, 20, 0},
      // Q4_K gate/up with an F16 down (no int8 form): the dot and plain kernels mixed.
      {Type::Q4_K, Type::Q4_K, Type::F16, 8, 2, 17, 256, 256},
      // Gate and up of different dot types: two passes (modes 1 and 2), x quantized once.
      {Type::Q4_0, Type::Q8_0, Type::Q4_1, 8, 2, 19, 96, 160},
  };
  uint32_t seed = 1000;
  for (const Case& c : cases) check(c, seed += 10);
}

TEST_F(MoeExpertsTest, CooperativeMatrixPathMatchesReference) {
  // moe_mul_mm_coopmat (the NV kernel where it is on, else its emulated build): fused gate+up
  // and down, token counts that are not multiples of the 32-row tiles (1, 17, 33, 127), widths
  // that are not multiples of the 64-row weight tiles (96, 160, 72) nor of the 32-column steps
  // (40 and 72 columns for F16), expert counts 8, 60, 64, 128 with k 1, 2, 4, 8, an expert taking
  // every token, padded strides, gate and up of different types (modes 1 and 2).
  const Case cases[] = {
      {Type::F16, Type::F16, Type::F16, 8, 2, 17, 40, 72},
      {Type::Q4_0, Type::Q4_0, Type::Q4_0, 60, 4, 33, 96, 160, Routing::Random, 20, 36},
      {Type::Q8_0, Type::Q8_0, Type::Q8_0, 64, 8, 127, 160, 96, Routing::FewExperts},
      {Type::Q4_K, Type::Q4_K, Type::Q6_K, 128, 8, 45, 256, 256},
      {Type::Q3_K, Type::Q3_K, Type::Q2_K, 8, 2, 33, 256, 256},
      {Type::Q4_0, Type::Q4_0, Type::Q4_0, 8, 1, 1, 64, 96, Routing::OneExpert},
      {Type::Q4_0, Type::Q8_0, Type::F16, 8, 2, 19, 96, 160, Routing::OneExpert},
      // Tiles of exactly 17 rows: the second 16-row fragment's products hold one valid row.
      {Type::Q8_0, Type::Q8_0, Type::Q8_0, 8, 2, 17, 64, 96, Routing::OneExpert},
  };
  // On 64-row tiles (Mixtral-sized experts at pp512), the coopmat path alone: tiles of 17 rows
  // (one 32-row chunk of results, fragments 3 and 4 skipped), many rows per expert, an expert
  // of 77 rows (a 64-row tile and one of 13), tiles of 49 rows (the fourth fragment skipped,
  // the third holding one row); the last two on 32-row tiles too.
  const Case tall[] = {
      cases[7], cases[2],
      {Type::Q4_K, Type::Q4_K, Type::Q4_K, 8, 2, 77, 256, 256, Routing::OneExpert},
      {Type::Q4_0, Type::Q4_0, Type::Q4_0, 8, 1, 49, 64, 96, Routing::OneExpert},
  };
  struct Run {
    Case c;
    uint32_t tile_rows;
    bool every_path;
  };
  std::vector<Run> runs;
  for (const Case& c : cases) runs.push_back({c, 32, true});
  for (const Case& c : tall) runs.push_back({c, 64, false});
  runs.push_back({tall[2], 32, false});
  runs.push_back({tall[3], 32, false});
  uint32_t seed = 1500;
  for (const auto& [c, tile_rows, every_path] : runs) {
    coopmat_tile_rows = tile_rows;
    SCOPED_TRACE(std::to_string(tile_rows) + "-row tiles");
    ASSERT_TRUE(coopmat_runs(c)) << describe(c);
    const Inputs probe = make_inputs(c, seed += 10);
    ASSERT_TRUE(fits_fp16(probe, reference_for(probe, Path::Decode))) << describe(c);  // check() would skip it
    if (every_path) {
      check(c, seed);
    } else {
      EXPECT_TRUE(close_to_reference(c, run(probe, Path::GroupedCoopmat), reference_for(probe, Path::GroupedCoopmat)))
          << describe(c);
    }
    const Inputs in = make_inputs(c, seed += 10);
    ASSERT_TRUE(fits_fp16(in, reference_for(in, Path::Decode))) << describe(c);
    const std::vector<float> initial = test::random_floats(size_t(c.n_tokens) * c.n_embd, seed + 5);
    EXPECT_TRUE(close_to_reference(c, run(in, Path::GroupedCoopmat, &initial),
                                   plus(reference_for(in, Path::GroupedCoopmat), initial)))
        << describe(c) << " accumulate";
  }
  coopmat_tile_rows = 0;
  // Emulated, a type without an emulated build takes the dot or plain tiles instead.
  ops::MoeExpertsOptions options;
  options.coopmat_emulation = true;
  options.allow_dot = false;
  const ops::ExpertsShape s{40, 256, 256, 8, 2};
  EXPECT_EQ(ops::MoeExperts(*ctx, options).path_for(s, Type::Q4_K, Type::Q4_K, Type::Q5_K), "grouped_mixed");
  EXPECT_EQ(ops::MoeExperts(*ctx, options).path_for(s, Type::Q5_K, Type::Q5_K, Type::Q5_K), "grouped");
  // The row tiles by the batch: 64 rows where experts average at least 48 (Mixtral-8x7B's
  // 8 experts, k 2, at 512 tokens: 128), else 32 (Qwen3-30B-A3B's 128, k 8: 32); forced either way.
  const ops::MoeExperts by_batch(*ctx, options);
  EXPECT_EQ(by_batch.coopmat_tile_rows({512, 4096, 14336, 8, 2}), 64u);
  EXPECT_EQ(by_batch.coopmat_tile_rows({192, 4096, 14336, 8, 2}), 64u);
  EXPECT_EQ(by_batch.coopmat_tile_rows({191, 4096, 14336, 8, 2}), 32u);
  EXPECT_EQ(by_batch.coopmat_tile_rows({512, 2048, 768, 128, 8}), 32u);
  options.coopmat_tile_rows = 64;
  EXPECT_EQ(ops::MoeExperts(*ctx, options).coopmat_tile_rows({512, 2048, 768, 128, 8}), 64u);
}

TEST_F(MoeExpertsTest, IntegerDotPathFollowsDeviceAndOptions) {
  const ops::ExpertsShape s{40, 256, 256, 8, 2};
  // Defaults: decode up to 4 tokens, dot where the device has it, the NV cooperative-matrix
  // kernel for every product ahead of it where that is on (MOEVK_ENABLE=coopmat on such a GPU).
  const ops::MoeExperts op(*ctx);
  const bool coop = ops::coopmat_usable(*ctx), dot = ctx->features().dot;
  EXPECT_EQ(op.path_for({4, 256, 256, 8, 2}, Type::Q4_0, Type::Q4_0, Type::Q4_0), "decode");
  EXPECT_EQ(op.path_for(s, Type::Q4_K, Type::Q4_K, Type::Q4_K), coop ? "grouped_coopmat" : dot ? "grouped_dot" : "grouped");
  EXPECT_EQ(op.path_for(s, Type::Q4_K, Type::Q4_K, Type::Q6_K), coop ? "grouped_coopmat" : dot ? "grouped_dot" : "grouped");
  EXPECT_EQ(op.path_for(s, Type::Q4_K, Type::Q4_K, Type::F16), coop ? "grouped_coopmat" : dot ? "grouped_mixed" : "grouped");
  EXPECT_EQ(op.path_for(s, Type::F16, Type::F16, Type::F32), coop ? "grouped_coopmat" : "grouped");
  ops::MoeExpertsOptions no_dot;
  no_dot.allow_dot = no_dot.allow_coopmat = false;
  EXPECT_EQ(ops::MoeExperts(*ctx, no_dot).path_for(s, Type::Q4_K, Type::Q4_K, Type::Q4_K), "grouped");
  // MOEVK_DISABLE=dot: the plain tiles, and they still compute the right thing.
  auto plain = test::make_context("dot,coopmat");
  EXPECT_EQ(ops::MoeExperts(*plain).path_for(s, Type::Q4_K, Type::Q4_K, Type::Q4_K), "grouped");
  const Case c{Type::Q4_0, Type::Q4_0, Type::Q4_0, 8, 2, 17, 64, 96};
  const Inputs in = make_inputs(c, 1200);
  std::swap(ctx, plain);
  const std::vector<float> got = run(in, Path::Grouped);
  std::swap(ctx, plain);
  EXPECT_TRUE(close_to_reference(c, got, reference_for(in, Path::Grouped)));
  test::expect_no_validation_messages(*plain);
}

TEST_F(MoeExpertsTest, IntegerDotPathQuantizesOnATwoDimensionalGrid) {
  // x and h are quantized one thread per 32 elements. A Mixtral prefill of 8192 tokens has
  // 8192 x 2 x 14336 / 32 = 7.3M blocks of h, more than 65535 workgroups of 64 in one grid
  // dimension: the grid has two, so the batch stays on the dot kernels.
  if (!ctx->features().dot) GTEST_SKIP() << "device has no integer dot product";
  ops::MoeExpertsOptions dot_options;
  dot_options.allow_coopmat = false;
  const ops::MoeExperts op(*ctx, dot_options);
  EXPECT_EQ(op.path_for({8192, 4096, 14336, 8, 2}, Type::Q4_0, Type::Q4_0, Type::Q4_0), "grouped_dot");
  // A limit of 2 or 3 workgroups per dimension puts small batches on 2-D grids: x of 45 x 96
  // (135 blocks) and h of 45 x 1 x 160 (225) on 2 x 2; x of 40 x 160 (200) and h of 40 x 2 x 96
  // (240) on 3 x 2.
  uint32_t seed = 7500;
  for (const auto& [c, groups] : {std::pair{Case{Type::Q4_0, Type::Q4_0, Type::Q4_0, 8, 1, 45, 96, 160}, 2u},
                                  std::pair{Case{Type::Q8_0, Type::Q8_0, Type::Q8_0, 8, 2, 40, 160, 96,
                                                 Routing::Random, 20, 0}, 3u}}) {
    quantize_groups = groups;
    const Inputs in = make_inputs(c, seed += 10);
    EXPECT_TRUE(close_to_reference(c, run(in, Path::GroupedDot), reference_for(in, Path::GroupedDot))) << describe(c);
  }
  quantize_groups = 0;
}

TEST_F(MoeExpertsTest, TensorsLargerThanOneBindingRunInExpertWindows) {
  // A binding limit of a few experts' bytes: each tensor is bound as windows of whole experts
  // (3 + 3 + 2 of 8, or one per window), every product runs per window on every path, with
  // ragged windows, padded strides, an expert taking every token, gate/up of different types
  // (two passes) and accumulate (the decode down product adds the later windows in).
  uint32_t seed = 7300;
  const Case cases[] = {{Type::Q4_0, Type::Q4_0, Type::Q4_0, 8, 2, 3, 64, 96, Routing::Random, 20, 36},
                        {Type::Q8_0, Type::F16, Type::Q4_K, 8, 4, 37, 256, 256},
                        {Type::Q4_K, Type::Q4_K, Type::Q6_K, 5, 2, 1, 256, 256, Routing::OneExpert}};
  for (const Case& c : cases) {
    const Inputs probe = make_inputs(c, seed);
    const uint64_t largest = std::max({probe.gate.stride, probe.up.stride, probe.down.stride});
    for (uint64_t experts_per_binding : {3ull, 1ull}) {
      max_binding_bytes = experts_per_binding * largest + 300;
      SCOPED_TRACE(std::to_string(experts_per_binding) + " expert(s) per binding");
      check(c, seed += 13);
    }
    const Inputs in = make_inputs(c, seed += 13);
    check_accumulate(in, test::random_floats(size_t(c.n_tokens) * c.n_embd, seed + 7), "accumulate, windows");
  }
  max_binding_bytes = 0;
}

TEST_F(MoeExpertsTest, GateAndUpOfDifferentTypesRunAsTwoPasses) {
  const Case cases[] = {
      {Type::Q4_0, Type::Q8_0, Type::F16, 8, 2, 17, 64, 96, Routing::Random, 20, 0},
      {Type::Q6_K, Type::Q4_K, Type::Q5_K, 8, 2, 1, 256, 256},
  };
  uint32_t seed = 300;
  for (const Case& c : cases) check(c, seed += 10);
}

TEST_F(MoeExpertsTest, DecodeKernelsReduceWithSubgroupsAndWithTheSharedTree) {
  // moe_gate_up_mv and moe_down_mv fold their per-thread sums either way (subgroupAdd where the
  // device has subgroup arithmetic, as the other tests run them; the shared-memory tree
  // without): both against the reference, with accumulate, a fused norm, two passes (gate/up
  // of different types) and long rows.
  const Case cases[] = {
      {Type::Q4_0, Type::Q4_0, Type::Q4_0, 8, 2, 3, 64, 96, Routing::Random, 20, 36},
      {Type::Q6_K, Type::Q4_K, Type::Q5_K, 8, 2, 1, 256, 256},
      {Type::Q8_0, Type::Q8_0, Type::Q8_0, 4, 2, 2, 2048 + 32, 512 + 32},
  };
  uint32_t seed = 880;
  for (bool subgroup : {true, false}) {
    if (subgroup && !ctx->features().subgroup_arithmetic) continue;
    SCOPED_TRACE(subgroup ? "subgroupAdd" : "shared tree");
    allow_subgroup = subgroup;
    for (const Case& c : cases) {
      const Inputs in = make_inputs(c, seed += 10);
      const Reference plain = reference_for(in, Path::Decode);
      EXPECT_TRUE(close_to_reference(c, run(in, Path::Decode), plain)) << describe(c);
      const std::vector<float> initial = test::random_floats(size_t(c.n_tokens) * c.n_embd, seed + 5);
      EXPECT_TRUE(close_to_reference(c, run(in, Path::Decode, &initial), plus(plain, initial)))
          << describe(c) << " accumulate";
      // The fused norm: x / rms(x) * g into both products.
      const std::vector<float> g = test::random_floats(c.n_embd, seed + 6, 0.5f, 1.5f);
      EXPECT_TRUE(close_to_reference(c, run(in, Path::Decode, nullptr, &g),
                                     reference(c, in.gate, in.up, in.down, rms_normed(c, in.x, g), in.ids, in.weights)))
          << describe(c) << " fused norm";
    }
  }
  allow_subgroup = true;
}

// The decode kernels' workgroup size and rows per workgroup are specialization constants that
// bench ops sweeps (--decode-configs): other shapes than the default 64 x 2, including rows that
// leave a ragged last row group (5 rows over 64 and 96), against the reference with both
// reductions and the fused norm; a shape the device cannot take is refused by name.
TEST_F(MoeExpertsTest, DecodeKernelsTakeOtherWorkgroupShapes) {
  const Case cases[] = {
      {Type::Q4_0, Type::Q4_0, Type::Q4_0, 8, 2, 3, 64, 96, Routing::Random, 20, 36},
      {Type::Q4_K, Type::Q4_K, Type::Q6_K, 8, 2, 1, 256, 256},
  };
  const std::pair<uint32_t, uint32_t> configs[] = {{32, 1}, {128, 5}, {256, 8}};
  uint32_t seed = 1900;
  for (bool subgroup : {true, false}) {
    if (subgroup && !ctx->features().subgroup_arithmetic) continue;
    allow_subgroup = subgroup;
    for (const auto& [wg, rows] : configs) {
      SCOPED_TRACE(std::string(subgroup ? "subgroupAdd " : "shared tree ") + std::to_string(wg) + "x" +
                   std::to_string(rows));
      decode_workgroup = wg;
      decode_rows = rows;
      for (const Case& c : cases) {
        const Inputs in = make_inputs(c, seed += 10);
        EXPECT_TRUE(close_to_reference(c, run(in, Path::Decode), reference_for(in, Path::Decode))) << describe(c);
        const std::vector<float> g = test::random_floats(c.n_embd, seed + 6, 0.5f, 1.5f);
        EXPECT_TRUE(close_to_reference(c, run(in, Path::Decode, nullptr, &g),
                                       reference(c, in.gate, in.up, in.down, rms_normed(c, in.x, g), in.ids, in.weights)))
            << describe(c) << " fused norm";
      }
    }
  }
  allow_subgroup = true;
  const Inputs in = make_inputs(cases[0], 1999);
  for (const auto& [wg, rows] : std::vector<std::pair<uint32_t, uint32_t>>{{48, 2}, {64, 0}, {64, 9}, {2048, 1}}) {
    decode_workgroup = wg;
    decode_rows = rows;
    try {
      run(in, Path::Decode);
      ADD_FAILURE() << wg << "x" << rows << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_ARGUMENT) << e.what();
      EXPECT_NE(std::string(e.what()).find("decode workgroup"), std::string::npos) << e.what();
    }
  }
  decode_workgroup = 64;
  decode_rows = 2;
}

TEST_F(MoeExpertsTest, LongRowsStrideTheDecodeLoops) {
  // moe_gate_up_mv and moe_down_mv stride along a row 64 threads x 8 = 512 columns at a time:
  // n_embd (gate/up) and n_ff (down) beyond that, with a ragged last pass, run the loops more
  // than once (the other cases have rows <= 256 columns).
  const Case cases[] = {
      {Type::Q8_0, Type::Q8_0, Type::Q8_0, 4, 2, 3, 2048 + 32, 512 + 32},
      {Type::Q4_1, Type::Q4_1, Type::Q4_1, 8, 2, 2, 2048 + 32, 64, Routing::Random, 20, 0},
      {Type::Q4_K, Type::Q4_K, Type::Q4_K, 4, 1, 2, 2048 + 256, 512 + 256},
  };
  uint32_t seed = 800;
  for (const Case& c : cases) check(c, seed += 10);
}

// The grouped dot path's two shortcuts against the passes they replace, on the same inputs:
// gate+up writing h as int8 activations (OUT_Q8) instead of f32 h quantized by a pass of its
// own, and x handed over already quantized (x_q8, as the layer's norm pass writes it) instead
// of quantized inside. The same int8 values either way, so bit-identical outputs, with one
// dispatch and one barrier fewer for OUT_Q8 and one dispatch fewer for x_q8. Ragged n_ff (the
// last 64-row tile holds one 32-column block), partial row tiles, expert windows.
TEST_F(MoeExpertsTest, GroupedDotShortcutsGiveTheSameOutputs) {
  if (!ctx->features().dot) GTEST_SKIP() << "no integer dot product on this device";
  const Case cases[] = {
      {Type::Q4_0, Type::Q4_0, Type::Q4_0, 8, 2, 33, 64, 96},
      {Type::Q4_K, Type::Q4_K, Type::Q8_0, 16, 4, 17, 256, 288},
      {Type::Q8_0, Type::Q8_0, Type::Q8_0, 60, 4, 40, 96, 160},
  };
  uint32_t seed = 1300;
  for (const Case& c : cases) {
    for (uint64_t window : {uint64_t(0), uint64_t(3 * quant::row_bytes(c.gate, c.n_embd) * c.n_ff)}) {
      SCOPED_TRACE(describe(c) + (window ? " in windows of experts" : ""));
      const Inputs in = make_inputs(c, seed += 10);
      max_binding_bytes = window;
      const std::vector<float> both = run(in, Path::GroupedDot);
      const uint32_t dispatches = last_dispatches, barriers = last_barriers;
      EXPECT_TRUE(close_to_reference(c, both, reference_for(in, Path::GroupedDot)));
      quantize_h = false;
      const std::vector<float> h_pass = run(in, Path::GroupedDot);
      quantize_h = true;
      EXPECT_EQ(both, h_pass) << "OUT_Q8 against the quantization pass";
      EXPECT_EQ(last_dispatches, dispatches + 1);
      EXPECT_EQ(last_barriers, barriers + 1);
      x_quantized_before = true;
      const std::vector<float> given_x = run(in, Path::GroupedDot);
      x_quantized_before = false;
      EXPECT_EQ(both, given_x) << "x quantized before against inside";
      EXPECT_EQ(last_dispatches + 1, dispatches);
      EXPECT_EQ(last_barriers, barriers);
    }
  }
  max_binding_bytes = 0;
}

// moe_group on its own terms: the counts, prefix offsets and row-tile starts in group_info, the
// stable permutation grouped_entry (rows of expert e in entry order) and its inverse
// grouped_row, read from the scratch after a grouped run, against a CPU reference. Entry counts
// above the kernel's 128-entry chunks, expert counts above its workgroup; ids >= n_expert are
// skipped.
TEST_F(MoeExpertsTest, GroupingMatchesCpuReference) {
  struct GroupCase {
    uint32_t n_expert, k, n_tokens;
    Routing routing;
  };
  const GroupCase cases[] = {{60, 4, 77, Routing::Random},    {128, 8, 33, Routing::FewExperts},
                             {8, 2, 100, Routing::OneExpert},  {64, 1, 127, Routing::Random},
                             {256, 8, 47, Routing::Random},    {1024, 2, 300, Routing::Random}};
  uint32_t seed = 900;
  for (const GroupCase& g : cases) {
    const Case c{Type::Q8_0, Type::Q8_0, Type::Q8_0, g.n_expert, g.k, g.n_tokens, 32, 32, g.routing};
    Inputs in = make_inputs(c, seed += 10);
    std::mt19937 rng(seed);
    for (uint32_t i = 0; i < 5; ++i)  // a few slots the router would never produce
      in.ids[rng() % in.ids.size()] = i % 2 ? c.n_expert + i : 0xFFFFFFFFu;
    const uint32_t n = c.n_tokens * c.k, E = c.n_expert, tile = ops::MoeExperts::kGroupTileRows;

    // Reference: counting sort by expert, stable in entry order.
    std::vector<uint32_t> info(3 * E + 2, 0), entry, row(n, 0xFFFFFFFFu);
    for (uint32_t id : in.ids)
      if (id < E) ++info[id];
    for (uint32_t e = 0; e < E; ++e) {
      info[E + e + 1] = info[E + e] + info[e];
      info[2 * E + 1 + e + 1] = info[2 * E + 1 + e] + (info[e] + tile - 1) / tile;
    }
    for (uint32_t e = 0; e < E; ++e)
      for (uint32_t i = 0; i < n; ++i)
        if (in.ids[i] == e) {
          row[i] = uint32_t(entry.size());
          entry.push_back(i);
        }

    auto gbuf = test::upload(*ctx, in.gate.bytes);
    auto ubuf = test::upload(*ctx, in.up.bytes);
    auto dbuf = test::upload(*ctx, in.down.bytes);
    auto xbuf = test::upload(*ctx, in.x);
    auto idbuf = test::upload(*ctx, in.ids);
    auto wbuf = test::upload(*ctx, in.weights);
    const ops::ExpertsShape s{c.n_tokens, c.n_embd, c.n_ff, c.n_expert, c.k};
    auto scratch = test::poisoned(*ctx, ops::MoeExperts::scratch_bytes(s));
    auto out = test::poisoned(*ctx, uint64_t(c.n_tokens) * c.n_embd * 4);
    ops::MoeExperts op(*ctx, 0u);  // the grouped path, on the dot kernel where the device has it
    test::run_once(*ctx, [&](vk::Recorder& r) {
      op.record(r, s, {gbuf.range(), c.gate, c.n_embd, c.n_ff, E, in.gate.stride},
                {ubuf.range(), c.up, c.n_embd, c.n_ff, E, in.up.stride},
                {dbuf.range(), c.down, c.n_ff, c.n_embd, E, in.down.stride}, xbuf.range(), idbuf.range(), wbuf.range(),
                scratch.range(), out.range());
    });
    const auto l = ops::MoeExperts::scratch_layout(s);
    std::vector<uint32_t> got_info(info.size()), got_entry(entry.size()), got_row(n);
    ctx->download(scratch.range(l.group_info, info.size() * 4), got_info.data(), info.size() * 4);
    ctx->download(scratch.range(l.grouped_entry, entry.size() * 4), got_entry.data(), entry.size() * 4);
    ctx->download(scratch.range(l.grouped_row, n * 4), got_row.data(), n * 4);
    const std::string what = describe(c);
    EXPECT_EQ(got_info, info) << what << ": counts [0, E), offsets [E, 2E], tile starts [2E+1, 3E+1]";
    EXPECT_EQ(got_entry, entry) << what << ": grouped_entry over the " << entry.size() << " routed rows";
    EXPECT_EQ(got_row, row) << what << ": grouped_row";
    EXPECT_TRUE(close_to_reference(c, test::download<float>(*ctx, out, size_t(c.n_tokens) * c.n_embd),
                                   reference_for(in, ctx->features().dot ? Path::GroupedDot : Path::Grouped)))
        << what;
  }
}

// An id the router never produces (>= n_expert) must not read out of bounds: the slot is skipped.
TEST_F(MoeExpertsTest, OutOfRangeExpertIdContributesNothing) {
  const Case c{Type::Q8_0, Type::Q8_0, Type::Q8_0, 8, 2, 5, 64, 96};
  Inputs in = make_inputs(c, 400);
  in.ids[3] = 8;
  in.ids[6] = 0xFFFFFFFFu;
  for (Path path : paths_for(c))
    EXPECT_TRUE(close_to_reference(c, run(in, path), reference_for(in, path))) << path_name(path);
}

// A step is recorded once and replayed: new expert ids written to the device buffer between
// submits must be picked up without re-recording (the ids are never read back by the CPU).
TEST_F(MoeExpertsTest, ReplayReadsNewExpertIdsFromTheDevice) {
  const Case c{Type::Q4_0, Type::Q4_0, Type::Q4_0, 16, 2, 9, 64, 96};
  const Inputs in = make_inputs(c, 500);
  auto gbuf = test::upload(*ctx, in.gate.bytes);
  auto ubuf = test::upload(*ctx, in.up.bytes);
  auto dbuf = test::upload(*ctx, in.down.bytes);
  auto xbuf = test::upload(*ctx, in.x);
  auto idbuf = test::upload(*ctx, in.ids);
  auto wbuf = test::upload(*ctx, in.weights);
  const ops::ExpertsShape s{c.n_tokens, c.n_embd, c.n_ff, c.n_expert, c.k};
  for (Path path : paths_for(c)) {
    auto scratch = test::poisoned(*ctx, ops::MoeExperts::scratch_bytes(s));
    auto out = test::poisoned(*ctx, uint64_t(c.n_tokens) * c.n_embd * 4);
    ops::MoeExpertsOptions options;
    options.decode_max_tokens = path == Path::Decode ? UINT32_MAX : 0u;
    options.allow_dot = path == Path::GroupedDot;
    ops::MoeExperts op(*ctx, options);
    vk::Recorder rec(*ctx);
    rec.begin();
    op.record(rec, s, {gbuf.range(), c.gate, c.n_embd, c.n_ff, c.n_expert, in.gate.stride},
              {ubuf.range(), c.up, c.n_embd, c.n_ff, c.n_expert, in.up.stride},
              {dbuf.range(), c.down, c.n_ff, c.n_embd, c.n_expert, in.down.stride}, xbuf.range(), idbuf.range(),
              wbuf.range(), scratch.range(), out.range());
    rec.end();
    for (uint32_t step = 0; step < 3; ++step) {
      Case routed = c;
      routed.routing = step == 1 ? Routing::OneExpert : Routing::Random;
      const auto ids = route(routed, 600 + step);
      ctx->upload(idbuf.range(), ids.data(), ids.size() * 4);
      rec.submit();
      const auto want = reference(c, in.gate, in.up, in.down, in.x, ids, in.weights, dot_products(c, path));
      EXPECT_TRUE(close_to_reference(c, test::download<float>(*ctx, out, want.value.size()), want))
          << path_name(path) << " step " << step;
    }
  }
}

TEST_F(MoeExpertsTest, RejectsBadShapesAndTypesWithoutAKernel) {
  auto buf = test::poisoned(*ctx, 1 << 21);  // room for four 256x256 F32 experts
  auto small = test::poisoned(*ctx, 1 << 12);
  const ops::ExpertsShape s{2, 256, 256, 4, 2};
  auto scratch = test::poisoned(*ctx, ops::MoeExperts::scratch_bytes(s));
  ops::MoeExperts op(*ctx);
  auto expect_status = [&](moevk_status status, const ops::ExpertMatrices& g, const ops::ExpertMatrices& d,
                           const char* message = "") {
    vk::Recorder rec(*ctx);
    rec.begin();
    try {
      op.record(rec, s, g, g, d, small.range(), small.range(), small.range(), scratch.range(), small.range());
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), status) << e.what();
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
    rec.end();
  };
  const uint64_t q4k_stride = quant::row_bytes(Type::Q4_K, 256) * 256;
  const ops::ExpertMatrices ok{buf.range(), Type::Q4_0, 256, 256, 4, quant::row_bytes(Type::Q4_0, 256) * 256};
  expect_status(MOEVK_ERROR_UNSUPPORTED, {buf.range(), Type::IQ2_XXS, 256, 256, 4, q4k_stride}, ok);
  expect_status(MOEVK_ERROR_INVALID_ARGUMENT, {buf.range(), Type::Q4_0, 256, 128, 4, ok.expert_stride}, ok);
  // Four Q4_K experts need 4 * 36 KiB: more than the 64 KiB range holds.
  expect_status(MOEVK_ERROR_INVALID_ARGUMENT, {buf.range(0, 1 << 16), Type::Q4_K, 256, 256, 4, q4k_stride}, ok);
  // Even but not 4-aligned: the float decoders read whole words, so the start and every expert
  // (start + e * stride) must be 4-aligned, whatever the type (as MatMul requires). Everything
  // else about these matrices fits, so the message names the alignment.
  const uint64_t f16_stride = quant::row_bytes(Type::F16, 256) * 256;
  const uint64_t f32_stride = quant::row_bytes(Type::F32, 256) * 256;
  const char* aligned = "4-byte aligned";
  expect_status(MOEVK_ERROR_INVALID_ARGUMENT, {buf.range(2, 4 * f16_stride), Type::F16, 256, 256, 4, f16_stride}, ok,
                aligned);
  expect_status(MOEVK_ERROR_INVALID_ARGUMENT, {buf.range(), Type::F16, 256, 256, 4, f16_stride + 2}, ok, aligned);
  expect_status(MOEVK_ERROR_INVALID_ARGUMENT, {buf.range(2, 4 * ok.expert_stride), Type::Q4_0, 256, 256, 4, ok.expert_stride},
                ok, aligned);
  expect_status(MOEVK_ERROR_INVALID_ARGUMENT, ok, {buf.range(), Type::F32, 256, 256, 4, f32_stride + 6}, aligned);
  // The same matrices 4-aligned are accepted (offset 4, stride padded by 4).
  vk::Recorder rec(*ctx);
  rec.begin();
  EXPECT_NO_THROW(op.record(rec, s, {buf.range(4, 4 * f16_stride + 16), Type::F16, 256, 256, 4, f16_stride + 4},
                            {buf.range(4, 4 * f16_stride + 16), Type::F16, 256, 256, 4, f16_stride + 4},
                            {buf.range(0, 4 * f32_stride + 16), Type::F32, 256, 256, 4, f32_stride + 4}, small.range(),
                            small.range(), small.range(), scratch.range(), small.range()));
  rec.end();
}

// The grouped path's histogram holds kMaxGroupedExperts counters: one more expert is refused with
// a status naming the limit (decode batches have no such limit).
TEST_F(MoeExpertsTest, GroupedPathRefusesMoreExpertsThanItsHistogram) {
  const uint32_t E = ops::MoeExperts::kMaxGroupedExperts + 1, cols = 32;
  const uint64_t stride = quant::row_bytes(Type::Q8_0, cols) * cols;
  auto weights = test::poisoned(*ctx, stride * E);
  auto small = test::poisoned(*ctx, 1 << 16);
  const ops::ExpertMatrices m{weights.range(), Type::Q8_0, cols, cols, E, stride};
  for (uint32_t n_tokens : {1u, 40u}) {
    const ops::ExpertsShape s{n_tokens, cols, cols, E, 1};
    auto scratch = test::poisoned(*ctx, ops::MoeExperts::scratch_bytes(s));
    ops::MoeExperts op(*ctx, 8u);
    vk::Recorder rec(*ctx);
    rec.begin();
    if (n_tokens <= 8) {
      EXPECT_NO_THROW(op.record(rec, s, m, m, m, small.range(), small.range(), small.range(), scratch.range(),
                                small.range()));
    } else {
      try {
        op.record(rec, s, m, m, m, small.range(), small.range(), small.range(), scratch.range(), small.range());
        ADD_FAILURE() << "accepted " << E << " experts on the grouped path";
      } catch (const Error& e) {
        EXPECT_EQ(e.status(), MOEVK_ERROR_UNSUPPORTED) << e.what();
        EXPECT_NE(std::string(e.what()).find("at most 1024 experts"), std::string::npos) << e.what();
      }
    }
    rec.end();
  }
}

TEST_F(GpuTest, SharedExpertCombineAddsGatedSharedOutput) {
  for (uint32_t n_tokens : {1u, 17u}) {
    const uint32_t n_embd = 200;
    const auto base = test::random_floats(size_t(n_tokens) * n_embd, n_tokens);
    const auto shared = test::random_floats(size_t(n_tokens) * n_embd, n_tokens + 1);
    const auto logits = test::random_floats(n_tokens, n_tokens + 2, -4.0f, 4.0f);
    ops::SharedExpertCombine op(*ctx);
    for (bool gated : {true, false}) {
      auto out = test::upload(*ctx, base);
      auto sbuf = test::upload(*ctx, shared);
      auto gbuf = test::upload(*ctx, logits);
      const vk::BufferRange gate_range = gbuf.range();
      test::run_once(*ctx, [&](vk::Recorder& r) {
        op.record(r, out.range(), sbuf.range(), gated ? &gate_range : nullptr, n_tokens, n_embd);
      });
      std::vector<double> want(base.size());
      for (uint32_t t = 0; t < n_tokens; ++t) {
        const double g = gated ? 1.0 / (1.0 + std::exp(-double(logits[t]))) : 1.0;
        for (uint32_t i = 0; i < n_embd; ++i)
          want[size_t(t) * n_embd + i] = base[size_t(t) * n_embd + i] + g * shared[size_t(t) * n_embd + i];
      }
      // One f32 exp, one multiply-add: a few ulps of values below 2.
      EXPECT_TRUE(test::all_close(test::download<float>(*ctx, out, want.size()), want, 1e-6, 1e-5))
          << "tokens=" << n_tokens << " gated=" << gated;
    }
  }
}
