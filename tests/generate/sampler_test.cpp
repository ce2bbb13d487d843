// Host-side sampling: each filter on its own, against hand-computed expectations.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "generate/sampler.hpp"

using moevk::generate::Sampler;
using moevk::generate::SamplerParams;

namespace {

SamplerParams plain() {
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  return p;
}

std::map<int32_t, int> histogram(Sampler& s, const std::vector<float>& logits, int draws,
                                 const std::vector<int32_t>& history = {}) {
  std::map<int32_t, int> h;
  for (int i = 0; i < draws; ++i) ++h[s.sample(logits, history)];
  return h;
}

}  // namespace

TEST(Sampler, GreedyPicksTheLowestIdAmongEqualMaxima) {
  SamplerParams p = plain();
  p.temperature = 0.0f;
  Sampler s(p);
  EXPECT_EQ(s.sample(std::vector<float>{0.1f, 3.0f, -1.0f, 3.0f}, {}), 1);
}

TEST(Sampler, TopKKeepsOnlyTheKBest) {
  SamplerParams p = plain();
  p.top_k = 2;
  Sampler s(p);
  auto h = histogram(s, {1.0f, 5.0f, 4.9f, 0.0f, 4.8f}, 2000);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_GT(h[1], 0);
  EXPECT_GT(h[2], 0);
}

TEST(Sampler, DistributionFollowsSoftmaxAtTemperature) {
  // p = softmax(logits / T): with logits {0, ln 3} and T = 1, p = {1/4, 3/4}.
  SamplerParams p = plain();
  Sampler s(p);
  auto h = histogram(s, {0.0f, std::log(3.0f)}, 20000);
  EXPECT_NEAR(h[1] / 20000.0, 0.75, 0.015);
  // T = 0.5 squares the odds: 9:1.
  p.temperature = 0.5f;
  Sampler s2(p);
  auto h2 = histogram(s2, {0.0f, std::log(3.0f)}, 20000);
  EXPECT_NEAR(h2[1] / 20000.0, 0.9, 0.012);
}

TEST(Sampler, TopPCutsTheTail) {
  // probabilities 0.5, 0.3, 0.2: top_p 0.7 keeps the first two (0.5 + 0.3 >= 0.7).
  SamplerParams p = plain();
  p.top_p = 0.7f;
  Sampler s(p);
  auto h = histogram(s, {std::log(0.5f), std::log(0.3f), std::log(0.2f)}, 5000);
  EXPECT_EQ(h.count(2), 0u);
  EXPECT_NEAR(h[0] / 5000.0, 0.5 / 0.8, 0.03);
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  // p = 0.6, 0.3, 0.1; min_p 0.2 keeps p >= 0.12: the first two.
  SamplerParams p = plain();
  p.min_p = 0.2f;
  Sampler s(p);
  auto h = histogram(s, {std::log(0.6f), std::log(0.3f), std::log(0.1f)}, 5000);
  EXPECT_EQ(h.count(2), 0u);
  EXPECT_GT(h[1], 0);
}

TEST(Sampler, RepetitionPenaltyShrinksPositiveAndGrowsNegativeLogits) {
  SamplerParams p = plain();
  p.temperature = 0.0f;
  p.repeat_penalty = 2.0f;
  Sampler s(p);
  // Token 0 (logit 3) was seen: 3 / 2 = 1.5 < 2 (token 1) -> greedy picks 1.
  EXPECT_EQ(s.sample(std::vector<float>{3.0f, 2.0f}, std::vector<int32_t>{0}), 1);
  // Token 1 seen with a negative logit: -1 * 2 = -2 < -1.5 -> token 0 wins.
  EXPECT_EQ(s.sample(std::vector<float>{-1.5f, -1.0f}, std::vector<int32_t>{1}), 0);
}

TEST(Sampler, PresenceAndFrequencyPenaltiesSubtract) {
  SamplerParams p = plain();
  p.temperature = 0.0f;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.25f;
  Sampler s(p);
  // token 0 seen 3 times: 2.0 - 3*0.5 - 0.25 = 0.25 < 1.0
  EXPECT_EQ(s.sample(std::vector<float>{2.0f, 1.0f}, std::vector<int32_t>{0, 0, 0}), 1);
  // seen once: 2.0 - 0.5 - 0.25 = 1.25 > 1.0
  EXPECT_EQ(s.sample(std::vector<float>{2.0f, 1.0f}, std::vector<int32_t>{0}), 0);
}

TEST(Sampler, PenaltiesOnlyLookAtTheLastN) {
  SamplerParams p = plain();
  p.temperature = 0.0f;
  p.repeat_penalty = 10.0f;
  p.repeat_last_n = 2;
  Sampler s(p);
  // token 0 was seen, but 3 tokens ago: outside the window, no penalty.
  EXPECT_EQ(s.sample(std::vector<float>{3.0f, 2.0f}, std::vector<int32_t>{0, 5, 6}), 0);
}

TEST(Sampler, SameSeedSameStream) {
  SamplerParams p = plain();
  p.seed = 42;
  Sampler a(p), b(p);
  std::vector<float> logits(50);
  for (int i = 0; i < 50; ++i) logits[i] = std::sin(i * 1.3f);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(a.sample(logits, {}), b.sample(logits, {}));
}
