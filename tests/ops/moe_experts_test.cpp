// MoeExperts (decode, grouped, grouped integer-dot and grouped cooperative-matrix paths, forced)
// against a double-precision reference on the dequantized weights, per weight type. The
// cooperative-matrix path runs on the NV kernel where the device has it (MOEVK_ENABLE=coopmat),
// else on its emulated build (ops/coopmat.hpp), which checks the same tiles on lavapipe.
#include "moe_experts_fixture.hpp"

using namespace moevk;
using namespace moevk::test::moe;
using moevk::test::GpuTest;
using quant::Type;

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

TEST_F(MoeExpertsTest, CodebookTypesMatchReferenceOnBothPaths) {
  // The IQ1/IQ2/IQ3 formats of the published low-bit MoE files (e.g. IQ2_XXS experts with IQ3
  // or 4-bit downs; codebook lookups in every kernel's decoder), on every path: decode, the plain
  // tiles and, where the device has the integer dot, moe_mul_mm_dot on their signed-level int8
  // form (IQ2_XS, IQ2_S and IQ1_M with a scale per 16-element half).
  const Case cases[] = {
      {Type::IQ2_XXS, Type::IQ2_XXS, Type::IQ2_XXS, 128, 8, 17, 256, 256, Routing::FewExperts},
      {Type::IQ2_XS, Type::IQ2_XS, Type::IQ3_XXS, 8, 2, 3, 256, 512},
      {Type::IQ2_S, Type::IQ2_S, Type::IQ3_S, 60, 4, 33, 256, 256, Routing::Random, 20, 0},
      {Type::IQ3_XXS, Type::IQ3_XXS, Type::IQ3_XXS, 8, 2, 1, 512, 256},
      {Type::IQ3_S, Type::IQ3_S, Type::IQ4_XS, 64, 8, 17, 256, 256, Routing::OneExpert},
      {Type::IQ1_S, Type::IQ1_S, Type::IQ2_XXS, 8, 2, 33, 256, 256},
      {Type::IQ1_M, Type::IQ1_M, Type::Q4_K, 128, 8, 3, 256, 256, Routing::Random},
      {Type::IQ2_XXS, Type::IQ2_XXS, Type::Q4_K, 8, 2, 17, 256, 256},
  };
  uint32_t seed = 300;
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
