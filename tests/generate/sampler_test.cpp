// Host-side sampling: each filter on its own, against hand-computed expectations.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <map>
#include <random>

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

namespace {
// The sampler's definition written out plainly: penalties on a copy, every candidate sorted by
// (logit desc, id asc), the first top_k kept, then top-p, min-p, temperature and the draw.
int32_t reference_sample(const SamplerParams& p, std::mt19937_64& rng, std::vector<float> logits,
                         const std::vector<int32_t>& history) {
  if (p.has_penalties() && p.repeat_last_n != 0) {
    const size_t n = p.repeat_last_n < 0 ? history.size() : std::min<size_t>(history.size(), p.repeat_last_n);
    std::map<int32_t, int> counts;
    for (size_t i = history.size() - n; i < history.size(); ++i) ++counts[history[i]];
    for (auto [id, count] : counts) {
      float& l = logits[id];
      if (p.repeat_penalty != 1.0f) l = l > 0 ? l / p.repeat_penalty : l * p.repeat_penalty;
      l -= float(count) * p.frequency_penalty + p.presence_penalty;
    }
  }
  std::vector<std::pair<float, int32_t>> c;
  for (size_t i = 0; i < logits.size(); ++i) c.push_back({logits[i], int32_t(i)});
  std::sort(c.begin(), c.end(), [](auto a, auto b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  if (p.temperature <= 0.0f) return c.front().second;
  if (p.top_k > 0 && size_t(p.top_k) < c.size()) c.resize(p.top_k);
  std::vector<float> prob(c.size());
  auto softmax = [&](float temp) {
    double sum = 0;
    for (size_t i = 0; i < c.size(); ++i) sum += prob[i] = float(std::exp((c[i].first - c[0].first) / temp));
    for (float& x : prob) x = float(x / sum);
  };
  softmax(1.0f);
  if (p.top_p < 1.0f) {
    double cum = 0;
    size_t n = 0;
    while (n < c.size()) {
      cum += prob[n++];
      if (cum >= p.top_p) break;
    }
    c.resize(std::max<size_t>(n, 1));
    prob.resize(c.size());
  }
  if (p.min_p > 0.0f) {
    size_t n = 1;
    while (n < c.size() && prob[n] >= prob[0] * p.min_p) ++n;
    c.resize(n);
    prob.resize(n);
  }
  softmax(p.temperature);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  double r = u(rng), cum = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    cum += prob[i];
    if (r < cum) return c[i].second;
  }
  return c.back().second;
}
}  // namespace

TEST(Sampler, MatchesItsPlainDefinitionOnVocabularySizedRows) {
  // The one-pass top-k selection against a full sort: the same stream of tokens for the same
  // seed, on logits rounded to a coarse grid (many ties, also at the k-th place), with and
  // without penalties, k at, below and above the tie groups, greedy too.
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(151936);
  for (float& l : logits) l = std::round(normal(gen) * 4.0f) / 4.0f;
  std::vector<int32_t> history;
  for (int i = 0; i < 80; ++i) history.push_back(int32_t(gen() % logits.size()));
  // Penalise some of the best too, so penalties move the top-k.
  for (int i = 0; i < 4; ++i) {
    const int32_t best = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    history.push_back(best);
    logits[best] -= 0.25f;  // the next best for the following round; one tie group lower
  }
  for (int32_t top_k : {0, 1, 2, 40, 1000}) {
    for (bool penalties : {false, true}) {
      for (float temperature : {0.0f, 0.8f}) {
        SamplerParams p;
        p.top_k = top_k;
        p.temperature = temperature;
        p.seed = 99;
        if (penalties) p.repeat_penalty = 1.3f, p.presence_penalty = 0.5f, p.frequency_penalty = 0.25f;
        SCOPED_TRACE("top_k " + std::to_string(top_k) + " penalties " + std::to_string(penalties) + " temperature " +
                     std::to_string(temperature));
        Sampler s(p);
        std::mt19937_64 rng(p.seed);
        for (int draw = 0; draw < 6; ++draw) ASSERT_EQ(s.sample(logits, history), reference_sample(p, rng, logits, history));
      }
    }
  }
  // Without top-k the sampler sorts only as far as top-p's mass reaches (64, 512, 4096, ...
  // candidates) and keeps min-p's set without sorting: on this flat row top-p cuts past 64,
  // 512, 4096 and 32768 candidates; on a sharper one (logits x 6) inside the first 64; or not at
  // all; with min-p off, on, and above 1 (the best alone).
  std::vector<float> sharp = logits;
  for (float& l : sharp) l *= 6.0f;
  for (const std::vector<float>* row : {&logits, &sharp})
  for (float top_p : {0.2f, 0.6f, 0.95f, 0.999f, 1.0f}) {
    for (float min_p : {0.0f, 0.01f, 0.05f, 1.5f}) {
      SamplerParams p;
      p.top_k = 0;
      p.top_p = top_p;
      p.min_p = min_p;
      p.temperature = 0.9f;
      p.seed = 5;
      SCOPED_TRACE("top_p " + std::to_string(top_p) + " min_p " + std::to_string(min_p) +
                   (row == &sharp ? " sharp" : " flat"));
      Sampler s(p);
      std::mt19937_64 rng(p.seed);
      for (int draw = 0; draw < 8; ++draw) ASSERT_EQ(s.sample(*row, history), reference_sample(p, rng, *row, history));
    }
  }
}
