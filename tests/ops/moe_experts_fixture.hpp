// The MoeExperts test fixture (moe_experts_test.cpp: each path's numerics; moe_experts_kernels_test.cpp:
// kernel shapes, grouping, replay and refusals): inputs from moe_experts_reference.hpp's cases, each
// forced path run on the device, the double-precision reference per path. In a named namespace
// (not an anonymous one): both files' TEST_Fs must name one fixture type.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "moe_experts_reference.hpp"
#include "ops/coopmat.hpp"
#include "ops/moe.hpp"
#include "ops/weight_binding.hpp"
#include "support/gpu.hpp"
#include "support/weights.hpp"

namespace moevk::test::moe {

using quant::Type;

class MoeExpertsTest : public GpuTest {
 protected:
  uint64_t max_binding_bytes = 0;  // MoeExpertsOptions::max_weight_binding_bytes for run()
  bool allow_subgroup = true;      // MoeExpertsOptions::allow_subgroup for run()
  uint32_t quantize_groups = 0;    // MoeExpertsOptions::quantize_groups_per_dim for run()
  uint32_t decode_workgroup = 64, decode_rows = 2;  // MoeExpertsOptions::decode_* for run()
  uint32_t down_workgroup = 0, down_rows = 0;       // MoeExpertsOptions::down_* for run()
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

  // The one-token gate+up on the integer dot product: gate and up of one int8 type, on a device
  // with dot and subgroup arithmetic.
  bool decode_dot_runs(const Case& c) const {
    return ctx->features().dot && ctx->features().subgroup_arithmetic && allow_subgroup && c.gate == c.up &&
           has_dot(c.gate) && c.n_embd % 32 == 0;
  }

  // Whether wide_decode changes a kernel of the case: some type has wide steps.
  static bool decode_wide_differs(const Case& c) {
    return ops::weight_has_wide_runs(c.gate) || ops::weight_has_wide_runs(c.up) || ops::weight_has_wide_runs(c.down);
  }

  // The op's options that force `path`, with the fixture's settings above.
  ops::MoeExpertsOptions options_for(Path path) const {
    ops::MoeExpertsOptions options;
    const bool decode = path == Path::Decode || path == Path::DecodeDot || path == Path::DecodeWide;
    options.decode_max_tokens = decode ? UINT32_MAX : 0u;
    options.allow_dot = path == Path::GroupedDot || path == Path::DecodeDot;
    options.dot_decode = path == Path::DecodeDot;
    options.wide_decode = path == Path::DecodeWide;
    options.allow_coopmat = path == Path::GroupedCoopmat;
    options.coopmat_emulation = path == Path::GroupedCoopmat && coopmat_emulated();
    options.max_weight_binding_bytes = max_binding_bytes;
    options.quantize_groups_per_dim = quantize_groups;
    options.allow_subgroup = allow_subgroup;
    options.decode_workgroup = decode_workgroup;
    options.decode_rows = decode_rows;
    options.down_workgroup = down_workgroup;
    options.down_rows = down_rows;
    options.quantize_h_in_gate_up = quantize_h;
    options.coopmat_tile_rows = coopmat_tile_rows;
    return options;
  }

  // The paths this device runs: the dot path where it has the integer dot product and some
  // product's type has a kernel.
  std::vector<Path> paths_for(const Case& c) const {
    std::vector<Path> paths{Path::Decode, Path::Grouped};
    if (ctx->features().dot && (has_dot(c.gate) || has_dot(c.up) || has_dot(c.down))) paths.push_back(Path::GroupedDot);
    if (coopmat_runs(c)) paths.push_back(Path::GroupedCoopmat);
    if (decode_dot_runs(c)) paths.push_back(Path::DecodeDot);
    if (decode_wide_differs(c)) paths.push_back(Path::DecodeWide);
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
    ops::MoeExperts op(*ctx, options_for(path));
    const DotProducts dot = dot_products(c, path);
    const int dots = int(dot.gate) + int(dot.up) + int(dot.down);
    EXPECT_EQ(op.path_for(s, c.gate, c.up, c.down),
              path == Path::Decode           ? "decode"
              : path == Path::DecodeDot      ? "decode_dot"
              : path == Path::DecodeWide     ? (decode_wide_differs(c) ? "decode_wide" : "decode")
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
      if (path == Path::GroupedDot || path == Path::DecodeDot) {
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

  // A decode-path run against the reference three ways: as it is, with out accumulated onto
  // (initial values from `seed`), and with the fused input norm (x / rms(x) * g into both
  // products, g from seed + 1).
  void check_decode_forms(const Inputs& in, Path path, uint32_t seed) {
    const Case& c = in.c;
    const Reference want = reference_for(in, path);
    EXPECT_TRUE(close_to_reference(c, run(in, path), want)) << describe(c);
    const std::vector<float> initial = test::random_floats(size_t(c.n_tokens) * c.n_embd, seed);
    EXPECT_TRUE(close_to_reference(c, run(in, path, &initial), plus(want, initial))) << describe(c) << " accumulate";
    const std::vector<float> g = test::random_floats(c.n_embd, seed + 1, 0.5f, 1.5f);
    EXPECT_TRUE(close_to_reference(c, run(in, path, nullptr, &g),
                                   reference(c, in.gate, in.up, in.down, rms_normed(c, in.x, g), in.ids, in.weights)))
        << describe(c) << " fused norm";
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

}  // namespace moevk::test::moe
