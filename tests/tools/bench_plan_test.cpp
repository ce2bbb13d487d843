// `moevk bench`'s test plan from llama-bench-style lists (tools/bench_plan.hpp).
#include "bench_plan.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>

#include "moevk.h"

namespace moevk_cli {
namespace {

std::vector<std::string> names(const std::vector<BenchTest>& tests) {
  std::vector<std::string> out;
  for (const BenchTest& t : tests) out.push_back(t.name());
  return out;
}

TEST(BenchPlan, DefaultsAreLlamaBenchs) {
  const std::vector<BenchTest> tests = plan_bench(BenchPlanOptions{});
  EXPECT_EQ(names(tests), (std::vector<std::string>{"pp512", "tg128"}));
  ASSERT_EQ(tests.size(), 2u);
  EXPECT_TRUE(tests[0].is_pp());
  EXPECT_TRUE(tests[1].is_tg());
  EXPECT_EQ(tests[0].positions(), 512u);
  EXPECT_EQ(tests[1].positions(), 129u);  // the token it starts from, then 128
}

TEST(BenchPlan, ListsCrossedWithDepthsDepthByDepth) {
  BenchPlanOptions o;
  o.n_prompt = {512, 0, 1024, 512};
  o.n_gen = {0, 32};
  o.pg = {{256, 64}};
  o.n_depth = {0, 4096};
  const std::vector<BenchTest> tests = plan_bench(o);
  EXPECT_EQ(names(tests), (std::vector<std::string>{"pp512", "pp1024", "tg32", "pp256+tg64", "pp512 @ d4096",
                                                     "pp1024 @ d4096", "tg32 @ d4096", "pp256+tg64 @ d4096"}));
  ASSERT_EQ(tests.size(), 8u);
  EXPECT_TRUE(tests[3].is_pg());
  EXPECT_FALSE(tests[3].is_tg());
  EXPECT_EQ(tests[3].positions(), 320u);
  EXPECT_EQ(tests[5].n_depth, 4096u);
  EXPECT_EQ(tests[5].positions(), 4096u + 1024u);
  EXPECT_EQ(tests[6].positions(), 4096u + 1u + 32u);
  EXPECT_EQ(tests[7].positions(), 4096u + 256u + 64u);
}

TEST(BenchPlan, NothingToRunIsEmpty) {
  BenchPlanOptions o;
  o.n_prompt = {0};
  o.n_gen = {0};
  EXPECT_TRUE(plan_bench(o).empty());
  o.pg = {{8, 4}};
  EXPECT_EQ(names(plan_bench(o)), (std::vector<std::string>{"pp8+tg4"}));
}

TEST(BenchPlan, ListParsing) {
  EXPECT_EQ(parse_uint_list("512", "-p", 0, 100000), (std::vector<uint32_t>{512}));
  EXPECT_EQ(parse_uint_list("0,128,4096", "-d", 0, 100000), (std::vector<uint32_t>{0, 128, 4096}));
  for (const char* bad : {"", ",", "512,", ",512", "512,,1024", "-1", "5x", "200000", " 5"}) {
    try {
      parse_uint_list(bad, "-p", 0, 100000);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("-p"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(parse_uint_list("0", "-pg", 1, 100), std::runtime_error);
}

// go_to_depth on a real context: the depth it leaves is the one asked for, by reset, truncation
// or a fresh decode, and the tokens it holds are the depth tokens (the next token's logits match
// a context that decoded exactly those).
TEST(BenchDepth, HoldsExactlyTheDepthTokens) {
  const std::string path = std::string(::testing::TempDir()) + "/bench-depth-" + std::to_string(getpid()) + ".gguf";
  moevk_make_model_params mp = moevk_make_model_default_params();
  mp.output_path = path.c_str();
  ASSERT_EQ(moevk_make_model(&mp, nullptr), MOEVK_OK) << moevk_last_error();
  moevk_model* model = nullptr;
  ASSERT_EQ(moevk_model_load(path.c_str(), nullptr, &model), MOEVK_OK) << moevk_last_error();
  moevk_context_params cp = moevk_context_default_params();
  cp.n_ctx = 24;
  moevk_context *ctx = nullptr, *fresh = nullptr;
  ASSERT_EQ(moevk_context_create(model, &cp, &ctx), MOEVK_OK) << moevk_model_last_error(model);
  ASSERT_EQ(moevk_context_create(model, &cp, &fresh), MOEVK_OK) << moevk_model_last_error(model);
  const int32_t n_vocab = moevk_model_n_vocab(model);
  std::vector<int32_t> depth_tokens(20);
  for (size_t i = 0; i < depth_tokens.size(); ++i) depth_tokens[i] = int32_t((i * 7919 + 13) % n_vocab);
  const int32_t probe = 3 % n_vocab;

  // The logits of `probe` decoded (a one-token step, as on ctx) after the first d depth tokens,
  // on a context of its own that decoded the first `batch` in one call and truncated to d (the
  // prefill kernels for 5 tokens and for 12 differ in rounding, so a depth reached by truncation
  // is compared with one reached so).
  auto expected = [&](uint32_t d, uint32_t batch) {
    EXPECT_EQ(moevk_context_reset(fresh), MOEVK_OK);
    EXPECT_EQ(moevk_decode(fresh, depth_tokens.data(), batch, 0), MOEVK_OK) << moevk_context_last_error(fresh);
    EXPECT_EQ(moevk_context_truncate(fresh, d), MOEVK_OK);
    EXPECT_EQ(moevk_decode(fresh, &probe, 1, 0), MOEVK_OK) << moevk_context_last_error(fresh);
    const float* l = nullptr;
    EXPECT_EQ(moevk_get_logits(fresh, -1, &l), MOEVK_OK);
    return std::vector<float>(l, l + n_vocab);
  };
  auto check_probe = [&](uint32_t d, uint32_t batch) {
    ASSERT_EQ(moevk_context_n_past(ctx), d);
    ASSERT_EQ(moevk_decode(ctx, &probe, 1, 0), MOEVK_OK) << moevk_context_last_error(ctx);
    const float* l = nullptr;
    ASSERT_EQ(moevk_get_logits(ctx, -1, &l), MOEVK_OK);
    const std::vector<float> want = expected(d, batch);
    double worst = 0, scale = 0;
    for (int32_t i = 0; i < n_vocab; ++i) {
      worst = std::max(worst, double(std::abs(l[i] - want[i])));
      scale = std::max(scale, double(std::abs(want[i])));
    }
    EXPECT_LE(worst, 1e-6 * std::max(1.0, scale)) << "depth " << d << " (" << worst << ")";
  };

  DepthHeld h{ctx};
  ASSERT_EQ(go_to_depth(h, 12, depth_tokens), MOEVK_OK) << moevk_context_last_error(ctx);
  EXPECT_EQ(h.depth, 12u);
  check_probe(12, 12);
  ASSERT_EQ(go_to_depth(h, 5, depth_tokens), MOEVK_OK);  // truncates: 12 are held
  EXPECT_EQ(h.depth, 5u);
  check_probe(5, 12);
  ASSERT_EQ(go_to_depth(h, 12, depth_tokens), MOEVK_OK);  // only 5 are held now: decodes afresh
  check_probe(12, 12);
  ASSERT_EQ(go_to_depth(h, 0, depth_tokens), MOEVK_OK);
  EXPECT_EQ(moevk_context_n_past(ctx), 0u);
  // Past the context: an error, and nothing is held, so the next call starts over.
  cp.n_ctx = 16;
  moevk_context* small = nullptr;
  ASSERT_EQ(moevk_context_create(model, &cp, &small), MOEVK_OK);
  DepthHeld hs{small};
  EXPECT_EQ(go_to_depth(hs, 20, depth_tokens), MOEVK_ERROR_CONTEXT_FULL);
  EXPECT_EQ(hs.depth, 0u);
  EXPECT_EQ(go_to_depth(hs, 8, depth_tokens), MOEVK_OK) << moevk_context_last_error(small);
  EXPECT_EQ(moevk_context_n_past(small), 8u);

  moevk_context_free(small);
  moevk_context_free(fresh);
  moevk_context_free(ctx);
  moevk_model_free(model);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace moevk_cli
