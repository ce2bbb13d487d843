// MoeRouter against a double-precision reference on the dequantized router weights: expert ids
// exactly (in rank order), weights and logits within tolerance; ties go to the lowest id; a NaN
// logit never yields an invalid id.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "common/error.hpp"
#include "ops/moe.hpp"
#include "support/gpu.hpp"
#include "support/weights.hpp"

using namespace moevk;
using moevk::test::GpuTest;
using quant::Type;

namespace {

struct Reference {
  std::vector<double> logits;           // [n_tokens][n_expert]
  std::vector<uint32_t> ids;            // [n_tokens][k]
  std::vector<double> weights;          // [n_tokens][k]
};

// Ranks by logit, descending, the lowest id first among equals (HF's topk on probabilities with
// the tie rule the kernel promises).
std::vector<uint32_t> ranked(const double* logits, uint32_t n_expert) {
  std::vector<uint32_t> order(n_expert);
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return logits[a] > logits[b]; });
  return order;
}

// HF: Mixtral/Qwen3 softmax -> topk -> divide by the top-k sum; Qwen2-MoE softmax -> topk.
Reference reference(const std::vector<float>& w, const std::vector<float>& x, const ops::RouterShape& s) {
  Reference r;
  r.logits.assign(size_t(s.n_tokens) * s.n_expert, 0.0);
  for (uint32_t t = 0; t < s.n_tokens; ++t) {
    double* l = &r.logits[size_t(t) * s.n_expert];
    for (uint32_t e = 0; e < s.n_expert; ++e)
      for (uint32_t c = 0; c < s.n_embd; ++c) l[e] += double(w[size_t(e) * s.n_embd + c]) * x[size_t(t) * s.n_embd + c];
    std::vector<double> p(s.n_expert);
    if (s.gating == ops::Gating::Softmax) {
      const double m = *std::max_element(l, l + s.n_expert);
      double sum = 0;
      for (uint32_t e = 0; e < s.n_expert; ++e) sum += p[e] = std::exp(l[e] - m);
      for (double& v : p) v /= sum;
    } else {
      for (uint32_t e = 0; e < s.n_expert; ++e) p[e] = 1.0 / (1.0 + std::exp(-l[e]));
    }
    const auto order = ranked(l, s.n_expert);
    double kept = 0;
    for (uint32_t j = 0; j < s.k; ++j) kept += p[order[j]];
    for (uint32_t j = 0; j < s.k; ++j) {
      r.ids.push_back(order[j]);
      r.weights.push_back(s.renormalize ? p[order[j]] / kept : p[order[j]]);
    }
  }
  return r;
}

// The smallest gap between consecutive logits among the top k + 1 of one token: the ids (in rank
// order) are only well defined when it is far above the kernel's fp32 error.
double top_gap(const std::vector<double>& l, uint32_t k) {
  auto sorted = l;
  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
  double gap = 1e300;
  for (uint32_t j = 0; j + 1 < sorted.size() && j < k; ++j) gap = std::min(gap, sorted[j] - sorted[j + 1]);
  return gap;
}

struct Outputs {
  std::vector<uint32_t> ids;
  std::vector<float> weights, logits;
};

// The router forced onto `path` where it applies: "fused", "split" or "handoff" (path_for says
// which one a shape gets).
const char* const kPaths[] = {"fused", "split", "handoff"};
ops::MoeRouter router_on(vk::Context& ctx, const std::string& path) {
  return ops::MoeRouter(ctx, path == "fused" ? 0u : UINT32_MAX, path == "handoff");
}

// norm_weight: x is RMS-normed on the way in (ops::InputNorm, eps kNormEps).
// The scratch is poisoned but for the handoff's arrival counters, which must start at zero; they
// are checked to be zero again afterwards (the next replay relies on it).
constexpr float kNormEps = 1e-6f;
Outputs run_router(vk::Context& ctx, const ops::RouterShape& s, Type type, const std::vector<uint8_t>& w_bytes,
                   const std::vector<float>& x, const std::string& path = "fused",
                   const std::vector<float>* norm_weight = nullptr) {
  const ops::MoeRouter router = router_on(ctx, path);
  vk::Buffer n_buf;
  ops::InputNorm norm;
  if (norm_weight) {
    n_buf = test::upload(ctx, *norm_weight, "norm weight");
    norm = {n_buf.range(), kNormEps};
  }
  auto w_buf = test::upload(ctx, test::device_weights(type, w_bytes, s.n_expert, s.n_embd, 0), "router weights");
  auto x_buf = test::upload(ctx, x);
  auto scratch = test::poisoned(ctx, ops::MoeRouter::scratch_bytes(s));
  ops::MoeRouter::clear_counters(ctx, scratch.range());
  const std::vector<uint32_t> zero_counters(ops::MoeRouter::kLogitsOffset / 4, 0);
  auto ids = test::poisoned(ctx, uint64_t(s.n_tokens) * s.k * 4);
  auto wts = test::poisoned(ctx, uint64_t(s.n_tokens) * s.k * 4);
  const ops::Matrix m{w_buf.range(), type, s.n_embd, s.n_expert};
  test::run_once(ctx, [&](vk::Recorder& r) {
    router.record(r, s, m, x_buf.range(), scratch.range(), ids.range(), wts.range(), norm_weight ? &norm : nullptr);
  });
  Outputs o;
  o.ids = test::download<uint32_t>(ctx, ids, size_t(s.n_tokens) * s.k);
  o.weights = test::download<float>(ctx, wts, size_t(s.n_tokens) * s.k);
  std::vector<uint32_t> head(ops::MoeRouter::kLogitsOffset / 4 + size_t(s.n_tokens) * s.n_expert);
  ctx.download(scratch.range(), head.data(), head.size() * 4);
  EXPECT_EQ(std::vector<uint32_t>(head.begin(), head.begin() + zero_counters.size()), zero_counters)
      << "arrival counters not left at zero";
  o.logits.resize(size_t(s.n_tokens) * s.n_expert);
  std::memcpy(o.logits.data(), head.data() + zero_counters.size(), o.logits.size() * 4);
  return o;
}

std::string describe(const ops::RouterShape& s, Type t) {
  return std::string(quant::type_info(t).name) + " E=" + std::to_string(s.n_expert) + " k=" + std::to_string(s.k) +
         " T=" + std::to_string(s.n_tokens) + " embd=" + std::to_string(s.n_embd) +
         (s.gating == ops::Gating::Softmax ? " softmax" : " sigmoid") + (s.renormalize ? " renorm" : "");
}

// Random weights of `type`; x redrawn per token until its top-(k+1) logits are at least 1e-2
// apart (the kernel's logit error is ~1e-5), so the reference ids are the only right answer.
// x / rms(x) * g per token of n_embd values, in double, rounded to f32 (2^-24 relative: far
// inside the logit tolerance).
std::vector<float> rms_normed(const std::vector<float>& x, const std::vector<float>& g, uint32_t n_embd) {
  std::vector<float> out(x.size());
  for (size_t t = 0; t < x.size() / n_embd; ++t) {
    double sum_sq = 0;
    for (uint32_t i = 0; i < n_embd; ++i) sum_sq += double(x[t * n_embd + i]) * x[t * n_embd + i];
    const double scale = 1.0 / std::sqrt(sum_sq / n_embd + kNormEps);
    for (uint32_t i = 0; i < n_embd; ++i) out[t * n_embd + i] = float(x[t * n_embd + i] * scale * g[i]);
  }
  return out;
}

void check_random_case(vk::Context& ctx, const ops::RouterShape& s, Type type, uint32_t seed,
                       const std::vector<float>* norm_weight = nullptr) {
  SCOPED_TRACE(describe(s, type) + (norm_weight ? " fused norm" : ""));
  // The router sees x, or its RMS-normed form (then x's scale does not matter).
  auto router_input = [&](const std::vector<float>& v) { return norm_weight ? rms_normed(v, *norm_weight, s.n_embd) : v; };
  const auto w_bytes = test::random_weights(type, s.n_expert, s.n_embd, seed);
  const auto w = test::dequantized(type, w_bytes, s.n_expert, s.n_embd);
  // Logits of std ~2 (weights ~N(0,1)): softmax neither flat nor one-hot.
  const float amp = 2.0f * std::sqrt(3.0f / float(s.n_embd));
  std::mt19937 rng(seed * 7919u + 1u);
  std::uniform_real_distribution<float> dist(-amp, amp);
  std::vector<float> x(size_t(s.n_tokens) * s.n_embd);
  for (uint32_t t = 0; t < s.n_tokens; ++t) {
    for (int attempt = 0;; ++attempt) {
      ASSERT_LT(attempt, 1000) << "could not draw a token without near-ties";
      std::vector<float> xt(s.n_embd);
      for (float& v : xt) v = dist(rng);
      ops::RouterShape one = s;
      one.n_tokens = 1;
      if (top_gap(reference(w, router_input(xt), one).logits, s.k) < 1e-2) continue;
      std::copy(xt.begin(), xt.end(), x.begin() + size_t(t) * s.n_embd);
      break;
    }
  }
  const Reference want = reference(w, router_input(x), s);
  for (const char* path : kPaths) {
    const ops::Matrix m{{}, type, s.n_embd, s.n_expert};
    if (router_on(ctx, path).path_for(s, m) != path) continue;  // batch too large for that path
    SCOPED_TRACE(path);
    const Outputs got = run_router(ctx, s, type, w_bytes, x, path, norm_weight);
    EXPECT_EQ(got.ids, want.ids);
    // fp32 dot products of <= 768 terms with |logit| ~ 2..8: error well under 1e-4; softmax and
    // sigmoid change by at most that much per unit of logit error.
    EXPECT_TRUE(test::all_close(got.logits, want.logits, 1e-4, 1e-5));
    EXPECT_TRUE(test::all_close(got.weights, want.weights, 2e-5, 1e-4));
  }
}

}  // namespace

TEST_F(GpuTest, RouterF32AllShapesAndGatings) {
  uint32_t seed = 1;
  for (uint32_t n_expert : {8u, 60u, 64u, 128u, 256u}) {
    for (uint32_t k : {1u, 2u, 4u, 8u}) {
      uint32_t combo = 0;  // each (n_expert, k) sees all four gating/renorm combinations
      for (uint32_t n_tokens : {1u, 3u, 17u, 33u}) {
        ops::RouterShape s{n_tokens, 136, n_expert, k};  // 136 = 17 groups of 8: not a multiple of the lanes
        s.gating = combo & 1 ? ops::Gating::Sigmoid : ops::Gating::Softmax;
        s.renormalize = (combo >> 1) & 1;
        ++combo;
        check_random_case(*ctx, s, Type::F32, seed++);
      }
    }
  }
}

TEST_F(GpuTest, RouterOtherWeightTypes) {
  uint32_t seed = 100;
  // Mixtral-like (8/2 softmax renorm), Qwen2-MoE-like (60/4 no renorm), Qwen3-like (128/8 renorm).
  const ops::RouterShape shapes[] = {{3, 0, 8, 2, ops::Gating::Softmax, true},
                                     {17, 0, 60, 4, ops::Gating::Softmax, false},
                                     {1, 0, 128, 8, ops::Gating::Softmax, true},
                                     {5, 0, 256, 8, ops::Gating::Sigmoid, true}};
  for (Type t : {Type::F16, Type::BF16, Type::Q8_0, Type::Q4_0, Type::Q4_K, Type::Q6_K}) {
    for (ops::RouterShape s : shapes) {
      s.n_embd = quant::type_info(t).block_size == 256 ? 768u : 96u;
      check_random_case(*ctx, s, t, seed++);
    }
  }
}

TEST_F(GpuTest, RouterFusedInputNorm) {
  // The FFN's RMS norm folded into the router (decode: no norm pass before it), on both paths:
  // route_topk's own first pass, or the split path's mul_mv. Norm gains around 1 of either sign;
  // n_embd 160 and 96: not multiples of the 256 elements the lanes cover per pass.
  uint32_t seed = 600;
  const ops::RouterShape shapes[] = {{1, 96, 8, 2, ops::Gating::Softmax, true},
                                     {3, 160, 60, 4, ops::Gating::Softmax, false},
                                     {1, 256, 128, 8, ops::Gating::Softmax, true},
                                     {5, 96, 256, 8, ops::Gating::Sigmoid, true}};
  for (const ops::RouterShape& s : shapes) {
    auto g = test::random_floats(s.n_embd, seed + 50);
    for (float& v : g) v += v < 0 ? -0.5f : 0.5f;
    check_random_case(*ctx, s, Type::F32, seed++, &g);
    check_random_case(*ctx, s, Type::Q8_0, seed++, &g);
  }
}

TEST_F(GpuTest, RouterTiesGoToTheLowestId) {
  // Identical weight rows give bit-identical logits; with softmax the tied probabilities are
  // equal too. Experts 9, 4, 30, 17 share the largest row; 2 and 40 the next largest.
  const uint32_t n_embd = 64, n_expert = 48, n_tokens = 5;
  auto w = test::random_normal(size_t(n_expert) * n_embd, 3, 0.1f);
  const auto top = test::random_floats(n_embd, 4, 0.5f, 1.0f);
  std::vector<float> second(top);
  for (float& v : second) v *= 0.5f;
  for (uint32_t e : {9u, 4u, 30u, 17u}) std::copy(top.begin(), top.end(), w.begin() + e * n_embd);
  for (uint32_t e : {2u, 40u}) std::copy(second.begin(), second.end(), w.begin() + e * n_embd);
  const std::vector<float> x(size_t(n_tokens) * n_embd, 1.0f);  // every token: positive row sums win
  std::vector<uint8_t> bytes(w.size() * 4);
  std::memcpy(bytes.data(), w.data(), bytes.size());
  for (bool renorm : {false, true}) {
    const ops::RouterShape s{n_tokens, n_embd, n_expert, 6, ops::Gating::Softmax, renorm};
    for (const char* path : kPaths) {
    SCOPED_TRACE(path);
    const Outputs got = run_router(*ctx, s, Type::F32, bytes, x, path);
    const Reference want = reference(w, x, s);
    for (uint32_t t = 0; t < n_tokens; ++t) {
      const std::vector<uint32_t> ids(got.ids.begin() + t * 6, got.ids.begin() + t * 6 + 6);
      EXPECT_EQ(ids, (std::vector<uint32_t>{4, 9, 17, 30, 2, 40})) << "token " << t;
      for (uint32_t j = 1; j < 4; ++j) EXPECT_EQ(got.weights[t * 6 + j], got.weights[t * 6]);
    }
    EXPECT_TRUE(test::all_close(got.weights, want.weights, 2e-5, 1e-4));
    }
  }
  // All experts equal: ids 0..k-1, weights 1/n_expert (no renorm) or 1/k (renorm).
  const std::vector<float> flat(size_t(n_expert) * n_embd, 0.25f);
  std::memcpy(bytes.data(), flat.data(), bytes.size());
  for (bool renorm : {false, true}) {
    const ops::RouterShape s{n_tokens, n_embd, n_expert, 8, ops::Gating::Softmax, renorm};
    const Outputs got = run_router(*ctx, s, Type::F32, bytes, x);
    for (uint32_t t = 0; t < n_tokens; ++t)
      for (uint32_t j = 0; j < 8; ++j) {
        EXPECT_EQ(got.ids[t * 8 + j], j);
        EXPECT_NEAR(got.weights[t * 8 + j], renorm ? 1.0 / 8 : 1.0 / n_expert, 1e-6);
      }
  }
}

TEST_F(GpuTest, RouterNanLogitsStillGiveValidDistinctIds) {
  const uint32_t n_embd = 32, n_expert = 16, n_tokens = 3, k = 4;
  auto w = test::random_normal(size_t(n_expert) * n_embd, 8);
  w[5 * n_embd + 3] = std::nanf("");  // expert 5's logit is NaN for every token
  auto x = test::random_floats(size_t(n_tokens) * n_embd, 9);
  x[2 * n_embd + 7] = std::nanf("");  // token 2: every logit is NaN
  std::vector<uint8_t> bytes(w.size() * 4);
  std::memcpy(bytes.data(), w.data(), bytes.size());
  const ops::RouterShape s{n_tokens, n_embd, n_expert, k, ops::Gating::Softmax, true};
  for (const char* path : kPaths) {
  SCOPED_TRACE(path);
  const Outputs got = run_router(*ctx, s, Type::F32, bytes, x, path);
  // Tokens 0 and 1: the NaN expert ranks below every number, the others as the reference says.
  auto w_finite = w;
  w_finite[5 * n_embd + 3] = 0.0f;
  const auto x01 = std::vector<float>(x.begin(), x.begin() + 2 * n_embd);
  const Reference finite = reference(w_finite, x01, {2, n_embd, n_expert, n_expert, ops::Gating::Softmax, true});
  for (uint32_t t = 0; t < 2; ++t) {
    std::vector<uint32_t> want;
    for (uint32_t j = 0; j < n_expert && want.size() < k; ++j)
      if (finite.ids[t * n_expert + j] != 5) want.push_back(finite.ids[t * n_expert + j]);
    EXPECT_EQ(std::vector<uint32_t>(got.ids.begin() + t * k, got.ids.begin() + t * k + k), want) << "token " << t;
  }
  // Token 2: all NaN -> all tie at -inf -> the lowest ids.
  EXPECT_EQ(std::vector<uint32_t>(got.ids.begin() + 2 * k, got.ids.end()), (std::vector<uint32_t>{0, 1, 2, 3}));
  }
}

TEST_F(GpuTest, RouterPathChoice) {
  const ops::Matrix m{{}, Type::Q4_0, 2048, 128};
  const ops::MoeRouter router(*ctx);  // defaults: handoff for small batches of large routers
  EXPECT_EQ(router.path_for({1, 2048, 128, 8}, m), "handoff");
  EXPECT_EQ(router.path_for({8, 2048, 128, 8}, m), "handoff");
  EXPECT_EQ(router.path_for({9, 2048, 128, 8}, m), "fused");
  EXPECT_EQ(router.path_for({1, 4096, 8, 2}, {{}, Type::F32, 4096, 8}), "fused");  // Mixtral's small router
  EXPECT_EQ(ops::MoeRouter(*ctx, 0).path_for({1, 2048, 128, 8}, m), "fused");
  EXPECT_EQ(ops::MoeRouter(*ctx, 8, false).path_for({1, 2048, 128, 8}, m), "split");
  // The handoff's 64 counters serve 64 token groups of 8: larger forced batches go split.
  EXPECT_EQ(ops::MoeRouter(*ctx, UINT32_MAX).path_for({512, 2048, 128, 8}, m), "handoff");
  EXPECT_NE(ops::MoeRouter(*ctx, UINT32_MAX).path_for({513, 2048, 128, 8}, m), "handoff");
}

// The handoff path's recording replayed: each dispatch's last workgroup resets its group's
// arrival count, so a second submission with new activations ranks the new logits (a count
// left at 1 would make a different workgroup, or none, rank before all slices are in).
TEST_F(GpuTest, RouterHandoffReplaysWithFreshCounts) {
  const ops::RouterShape s{3, 256, 128, 8, ops::Gating::Softmax, true};
  const ops::MoeRouter router(*ctx, UINT32_MAX);
  const auto w_bytes = test::random_weights(Type::Q8_0, s.n_expert, s.n_embd, 71);
  const auto w = test::dequantized(Type::Q8_0, w_bytes, s.n_expert, s.n_embd);
  const ops::Matrix m{{}, Type::Q8_0, s.n_embd, s.n_expert};
  ASSERT_EQ(router.path_for(s, m), "handoff");
  auto w_buf = test::upload(*ctx, test::device_weights(Type::Q8_0, w_bytes, s.n_expert, s.n_embd, 0), "router weights");
  auto x_buf = test::poisoned(*ctx, uint64_t(s.n_tokens) * s.n_embd * 4, "x");
  auto scratch = test::poisoned(*ctx, ops::MoeRouter::scratch_bytes(s));
  ops::MoeRouter::clear_counters(*ctx, scratch.range());
  const std::vector<uint32_t> zeros(ops::MoeRouter::kLogitsOffset / 4, 0);
  auto ids = test::poisoned(*ctx, uint64_t(s.n_tokens) * s.k * 4);
  auto wts = test::poisoned(*ctx, uint64_t(s.n_tokens) * s.k * 4);
  vk::Recorder rec(*ctx);
  rec.begin();
  router.record(rec, s, {w_buf.range(), Type::Q8_0, s.n_embd, s.n_expert}, x_buf.range(), scratch.range(), ids.range(),
                wts.range());
  rec.end();
  const float amp = 2.0f * std::sqrt(3.0f / float(s.n_embd));
  for (uint32_t replay = 0; replay < 3; ++replay) {
    SCOPED_TRACE("replay " + std::to_string(replay));
    const auto x = test::random_floats(size_t(s.n_tokens) * s.n_embd, 80 + replay, -amp, amp);
    ctx->upload(x_buf.range(), x.data(), x.size() * 4);
    rec.submit();
    const Reference want = reference(w, x, s);
    const auto got_weights = test::download<float>(*ctx, wts, size_t(s.n_tokens) * s.k);
    // Random x may hold near-ties; the weights of the k chosen must match the reference's
    // either way (a tie swaps two ids of equal weight), and the ids must be the reference's
    // wherever the gap is clear.
    EXPECT_TRUE(test::all_close(got_weights, want.weights, 2e-5, 1e-4));
    const auto got_ids = test::download<uint32_t>(*ctx, ids, size_t(s.n_tokens) * s.k);
    for (uint32_t t = 0; t < s.n_tokens; ++t) {
      std::vector<double> lt(want.logits.begin() + t * s.n_expert, want.logits.begin() + (t + 1) * s.n_expert);
      if (top_gap(lt, s.k) < 1e-3) continue;
      EXPECT_EQ(std::vector<uint32_t>(got_ids.begin() + t * s.k, got_ids.begin() + (t + 1) * s.k),
                std::vector<uint32_t>(want.ids.begin() + t * s.k, want.ids.begin() + (t + 1) * s.k))
          << "token " << t;
    }
    std::vector<uint32_t> counters(zeros.size());
    ctx->download(scratch.range(0, ops::MoeRouter::kLogitsOffset), counters.data(), ops::MoeRouter::kLogitsOffset);
    EXPECT_EQ(counters, zeros);
  }
}

TEST_F(GpuTest, RouterRejectsUnsupportedShapes) {
  ops::MoeRouter router(*ctx);
  auto buf = ctx->create_buffer(1 << 16, vk::BufferKind::Device, "any");
  const ops::Matrix m{buf.range(), Type::F32, 64, 300};
  vk::Recorder rec(*ctx);
  rec.begin();
  auto record = [&](ops::RouterShape s, ops::Matrix w) {
    router.record(rec, s, w, buf.range(), buf.range(), buf.range(), buf.range());
  };
  EXPECT_THROW(record({1, 64, 300, 8}, m), Error);  // more than 256 experts
  EXPECT_THROW(record({1, 64, 16, 9}, {buf.range(), Type::F32, 64, 16}), Error);  // k > 8
  EXPECT_THROW(record({1, 64, 4, 5}, {buf.range(), Type::F32, 64, 4}), Error);    // k > n_expert
  EXPECT_THROW(record({1, 64, 16, 2}, {buf.range(), Type::F32, 64, 15}), Error);  // rows != n_expert
  EXPECT_THROW(record({1, 60, 16, 2}, {buf.range(), Type::Q4_0, 60, 16}), Error); // cols not whole blocks
  rec.end();
}
