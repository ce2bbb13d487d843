// MoeExperts' kernels beyond each path's numerics (moe_experts_test.cpp): the decode kernels'
// reductions and workgroup shapes, long rows, the grouped dot path's shortcuts, the grouping
// against a CPU reference, out-of-range ids, replays reading new ids, refused shapes and types;
// and SharedExpertCombine.
#include "moe_experts_fixture.hpp"

using namespace moevk;
using namespace moevk::test::moe;
using moevk::test::GpuTest;
using quant::Type;

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
      seed += 10;
      check_decode_forms(make_inputs(c, seed), Path::Decode, seed + 5);
    }
  }
  allow_subgroup = true;
}

// The one-token gate+up on the integer dot product (moe_gate_up_mv_dot) for every weight form
// the int8 path has: symmetric and affine 32-element sub-blocks, the 16-element halves (Q6_K,
// Q3_K), Q2_K's half mins and a codebook type; sub-block counts that are not a multiple of the
// workgroup (3 of 32 elements over 64 threads, 9 over 32), ragged row groups, an expert slice at
// an odd lead, x quantized by the op or handed in (x_q8), and out accumulated onto.
TEST_F(MoeExpertsTest, DecodeDotGateUpOnEveryInt8Form) {
  if (!ctx->features().dot || !ctx->features().subgroup_arithmetic) GTEST_SKIP() << "no integer dot product";
  const Case cases[] = {
      {Type::Q4_0, Type::Q4_0, Type::Q4_0, 8, 2, 3, 96, 64, Routing::Random, 20, 36},
      {Type::Q8_0, Type::Q8_0, Type::F16, 16, 4, 2, 288, 40},
      {Type::Q4_K, Type::Q4_K, Type::Q6_K, 8, 2, 1, 256, 256},
      {Type::Q6_K, Type::Q6_K, Type::Q4_0, 8, 2, 2, 256, 96},
      {Type::Q3_K, Type::Q3_K, Type::Q8_0, 8, 2, 1, 256, 64},
      {Type::Q2_K, Type::Q2_K, Type::Q8_0, 8, 2, 1, 256, 64},
      {Type::IQ4_NL, Type::IQ4_NL, Type::Q4_1, 8, 2, 1, 96, 64},
      {Type::IQ2_XXS, Type::IQ2_XXS, Type::Q8_0, 8, 2, 1, 256, 64},
  };
  const std::pair<uint32_t, uint32_t> configs[] = {{64, 2}, {32, 3}};
  uint32_t seed = 2100;
  for (const auto& [wg, rows] : configs) {
    decode_workgroup = wg;
    decode_rows = rows;
    for (bool handed_in : {false, true}) {
      x_quantized_before = handed_in;
      for (const Case& c : cases) {
        SCOPED_TRACE(describe(c) + " " + std::to_string(wg) + "x" + std::to_string(rows) +
                     (handed_in ? " x_q8 given" : " x quantized by the op"));
        ASSERT_TRUE(decode_dot_runs(c));
        const Inputs in = make_inputs(c, seed += 10);
        const Reference want = reference_for(in, Path::DecodeDot);
        EXPECT_TRUE(close_to_reference(c, run(in, Path::DecodeDot), want));
        const std::vector<float> initial = test::random_floats(size_t(c.n_tokens) * c.n_embd, seed + 7);
        EXPECT_TRUE(close_to_reference(c, run(in, Path::DecodeDot, &initial), plus(want, initial))) << "accumulate";
      }
    }
  }
  x_quantized_before = false;
  decode_workgroup = 64;
  decode_rows = 2;
}

// The decode kernels' workgroup size and rows per workgroup are specialization constants that
// bench ops sweeps (--decode-configs): other shapes than the default 64 x 2, including rows that
// leave a ragged last row group (5 rows over 64 and 96), and the down product on a shape of its
// own, against the reference with both reductions and the fused norm; a shape the device cannot
// take is refused by name, for both kernels and for the down product alone.
TEST_F(MoeExpertsTest, DecodeKernelsTakeOtherWorkgroupShapes) {
  const Case cases[] = {
      {Type::Q4_0, Type::Q4_0, Type::Q4_0, 8, 2, 3, 64, 96, Routing::Random, 20, 36},
      {Type::Q4_K, Type::Q4_K, Type::Q6_K, 8, 2, 1, 256, 256},
  };
  // (workgroup, rows) of both kernels, then of the down product alone on its own shape
  // (down=WxR: narrower than gate+up, wider, and 3 rows over 64 and 96, a ragged last group).
  struct Shape {
    uint32_t wg, rows, down_wg, down_rows;
  };
  const Shape configs[] = {{32, 1, 0, 0},  {128, 5, 0, 0},  {256, 8, 0, 0},
                           {64, 2, 32, 4}, {64, 2, 256, 1}, {64, 2, 64, 3}};
  uint32_t seed = 1900;
  for (bool subgroup : {true, false}) {
    if (subgroup && !ctx->features().subgroup_arithmetic) continue;
    allow_subgroup = subgroup;
    for (const Shape& shape : configs) {
      SCOPED_TRACE(std::string(subgroup ? "subgroupAdd " : "shared tree ") + std::to_string(shape.wg) + "x" +
                   std::to_string(shape.rows) + " down " + std::to_string(shape.down_wg) + "x" +
                   std::to_string(shape.down_rows));
      decode_workgroup = shape.wg;
      decode_rows = shape.rows;
      down_workgroup = shape.down_wg;
      down_rows = shape.down_rows;
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
  decode_workgroup = 64;
  decode_rows = 2;
  down_workgroup = 0;
  down_rows = 0;
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
    // The same shapes as the down product's alone, named as its.
    decode_workgroup = 64;
    decode_rows = 2;
    down_workgroup = wg;
    down_rows = rows;
    try {
      run(in, Path::Decode);
      ADD_FAILURE() << "down " << wg << "x" << rows << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_ARGUMENT) << e.what();
      EXPECT_NE(std::string(e.what()).find("moe experts (down): decode workgroup"), std::string::npos) << e.what();
    }
    down_workgroup = 0;
    down_rows = 0;
  }
  decode_workgroup = 64;
  decode_rows = 2;
}

// wide_decode: both float decode kernels take two neighbouring pair runs a thread step (32
// elements, 16 quant bytes) for every type with the 16-byte decoder (Q4_0, Q4_K, Q5_K, Q6_K),
// beside products of other types that keep their steps; rows whose quant bytes are 16-aligned
// (one 128-bit load: Q4_0 and Q4_K rows of 256 columns at lead 0) and not (54-byte Q4_0 rows,
// Q6_K's 210-byte blocks, experts at lead 20); fewer steps than threads (96 columns: 3 over 32
// or 64) and ragged row groups; gate and up of different types (two passes); both reductions,
// the fused norm and out accumulated onto.
TEST_F(MoeExpertsTest, DecodeWideStepsOnEveryPairType) {
  const Case cases[] = {
      {Type::Q4_0, Type::Q4_0, Type::Q4_0, 8, 2, 3, 96, 64, Routing::Random, 20, 36},
      {Type::Q4_0, Type::Q4_0, Type::Q4_0, 8, 2, 2, 256, 512},
      {Type::Q4_K, Type::Q4_K, Type::Q6_K, 8, 2, 1, 256, 256},
      {Type::Q5_K, Type::Q5_K, Type::Q4_K, 8, 2, 2, 512, 256, Routing::Random, 20, 0},
      {Type::Q6_K, Type::Q4_K, Type::Q6_K, 8, 2, 1, 256, 768},
      {Type::Q4_0, Type::Q4_0, Type::Q5_0, 8, 2, 2, 96, 160},
      {Type::Q4_1, Type::Q4_1, Type::Q4_K, 8, 2, 1, 160, 256},
  };
  const std::pair<uint32_t, uint32_t> configs[] = {{64, 2}, {32, 3}};
  uint32_t seed = 2300;
  for (bool subgroup : {true, false}) {
    if (subgroup && !ctx->features().subgroup_arithmetic) continue;
    allow_subgroup = subgroup;
    for (const auto& [wg, rows] : configs) {
      decode_workgroup = wg;
      decode_rows = rows;
      for (const Case& c : cases) {
        SCOPED_TRACE(describe(c) + (subgroup ? " subgroupAdd " : " shared tree ") + std::to_string(wg) + "x" +
                     std::to_string(rows));
        ASSERT_TRUE(decode_wide_differs(c));
        seed += 10;
        check_decode_forms(make_inputs(c, seed), Path::DecodeWide, seed + 5);
      }
    }
  }
  allow_subgroup = true;
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
    ops::MoeExperts op(*ctx, options_for(path));
    ASSERT_EQ(op.path_for(s, c.gate, c.up, c.down), path_name(path));
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
      const auto want = reference(c, in.gate, in.up, in.down, in.x, ids, in.weights, dot_products(c, path),
                                  path == Path::GroupedCoopmat);
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
  expect_status(MOEVK_ERROR_UNSUPPORTED, {buf.range(), Type::TQ1_0, 256, 256, 4, q4k_stride}, ok);
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
