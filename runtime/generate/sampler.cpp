#include "generate/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "common/error.hpp"

namespace moevk::generate {

Sampler::Sampler(const SamplerParams& params) : params_(params), rng_(params.seed) {}

void Sampler::apply_penalties(std::vector<float>& logits, std::span<const int32_t> history) {
  size_t n = params_.repeat_last_n < 0 ? history.size()
                                       : std::min<size_t>(history.size(), static_cast<size_t>(params_.repeat_last_n));
  const std::span<const int32_t> window = history.last(n);
  auto in_row = [&](int32_t id) { return id >= 0 && static_cast<size_t>(id) < logits.size(); };
  // Counted in a table by id (a whole context's window is tens of thousands of tokens), then
  // each id applied once, at its first place in the window, which also clears its count.
  if (counts_.size() < logits.size()) counts_.resize(logits.size(), 0);
  for (const int32_t id : window)
    if (in_row(id)) ++counts_[id];
  for (const int32_t id : window) {
    if (!in_row(id) || counts_[id] == 0) continue;
    float& l = logits[id];
    // The repetition penalty as llama.cpp/CTRL apply it: shrink positive logits, grow negative.
    if (params_.repeat_penalty != 1.0f) l = l > 0 ? l / params_.repeat_penalty : l * params_.repeat_penalty;
    l -= static_cast<float>(counts_[id]) * params_.frequency_penalty + params_.presence_penalty;
    counts_[id] = 0;
  }
}

double Sampler::draw() {
  if (!returned_.empty()) {
    const double u = returned_.back();
    returned_.pop_back();
    return u;
  }
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  // Greedy decoding draws nothing; every other call one uniform (a failing call none).
  if (logits.empty()) throw Error(MOEVK_ERROR_INVALID_ARGUMENT, "sampling from empty logits");
  return sample_with(logits, history, params_.greedy() ? 0.0 : draw());
}

int32_t Sampler::sample_with(std::span<const float> logits_in, std::span<const int32_t> history, double r) {
  if (logits_in.empty()) throw Error(MOEVK_ERROR_INVALID_ARGUMENT, "sampling from empty logits");
  // Penalties touch at most repeat_last_n ids: applied to a copy, only when there are any.
  std::span<const float> logits = logits_in;
  if (params_.has_penalties() && !history.empty() && params_.repeat_last_n != 0) {
    penalised_.assign(logits_in.begin(), logits_in.end());
    apply_penalties(penalised_, history);
    logits = penalised_;
  }
  auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  auto& c = candidates_;
  if (params_.greedy()) {
    size_t best = 0;
    for (size_t i = 1; i < logits.size(); ++i)
      if (logits[i] > logits[best]) best = i;  // strict: the lowest id wins ties
    return static_cast<int32_t>(best);
  }

  const size_t n = logits.size();
  // Probabilities at temperature 1 for top-p and min-p (the llama.cpp order), then temperature.
  auto softmax = [&](float temp) {
    double sum = 0;
    const float max_logit = c.front().logit;
    for (auto& x : c) {
      x.p = static_cast<float>(std::exp((x.logit - max_logit) / temp));
      sum += x.p;
    }
    for (auto& x : c) x.p = static_cast<float>(x.p / sum);
  };
  // Top-p over the sorted first m candidates: how many it keeps (at least 1), and whether their
  // mass reached top_p within the m.
  auto top_p_prefix = [&](size_t m) {
    double cum = 0;
    size_t kept = 0;
    while (kept < m) {
      cum += c[kept++].p;
      if (cum >= params_.top_p) return std::pair{kept, true};
    }
    return std::pair{std::max<size_t>(kept, 1), false};
  };
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n) {
    // One pass keeping the k best in a heap whose front is the worst of them (a 152k-token
    // vocabulary: a compare per logit, instead of building and partially sorting every candidate).
    // Ids come in increasing order, so a later logit equal to the worst kept never beats it:
    // only a strictly larger one enters.
    const size_t k = static_cast<size_t>(params_.top_k);
    c.clear();
    for (size_t i = 0; i < k; ++i) c.push_back({static_cast<int32_t>(i), logits[i], 0.0f});
    std::make_heap(c.begin(), c.end(), by_logit);
    float worst = c.front().logit;
    for (size_t i = k; i < n; ++i) {
      if (!(logits[i] > worst)) continue;
      std::pop_heap(c.begin(), c.end(), by_logit);
      c.back() = {static_cast<int32_t>(i), logits[i], 0.0f};
      std::push_heap(c.begin(), c.end(), by_logit);
      worst = c.front().logit;
    }
    std::sort(c.begin(), c.end(), by_logit);
    softmax(1.0f);
    if (params_.top_p < 1.0f) c.resize(top_p_prefix(c.size()).first);
    if (params_.min_p > 0.0f) {
      const float threshold = c.front().p * params_.min_p;
      size_t kept = 1;
      while (kept < c.size() && c[kept].p >= threshold) ++kept;
      c.resize(kept);
    }
  } else {
    // No top-k: every token is a candidate, but sorting all of them (a 152k vocabulary: ~20 ms,
    // over ten decode steps of a fast GPU) is not needed. The probabilities come in one pass in id
    // order; min-p keeps exactly those at or above p_max * min_p (probabilities fall with the
    // logit, so its prefix of the sorted order is that set); top-p's prefix is found among the
    // best 64 candidates, then 512, ..., selected and sorted only as far as the mass reaches
    // top_p. The same tokens as sorting everything first: both cuts are prefixes of one order.
    // (The sum of the exponentials is taken in id order, not in sorted order, so a probability
    // may differ in its last bit; a draw changes only where it sits on that bit's edge.)
    size_t best = 0;
    for (size_t i = 1; i < n; ++i)
      if (logits[i] > logits[best]) best = i;
    const float max_logit = logits[best];
    weights_.resize(n);
    double sum = 0;
    for (size_t i = 0; i < n; ++i) {
      weights_[i] = static_cast<float>(std::exp(logits[i] - max_logit));
      sum += weights_[i];
    }
    // Without min-p the threshold is 0, which every probability meets.
    const float threshold = params_.min_p > 0.0f ? static_cast<float>(weights_[best] / sum) * params_.min_p : 0.0f;
    c.clear();
    for (size_t i = 0; i < n; ++i) {
      const float p = static_cast<float>(weights_[i] / sum);
      // The best always stays (a min-p above 1 keeps it alone, as the sorted form's first).
      if (p >= threshold || i == best)
        c.push_back({static_cast<int32_t>(i), logits[i], p});
    }
    if (params_.top_p < 1.0f) {
      size_t m = std::min<size_t>(64, c.size());
      for (;;) {
        std::nth_element(c.begin(), c.begin() + (m - 1), c.end(), by_logit);
        std::sort(c.begin(), c.begin() + m, by_logit);
        const auto [kept, reached] = top_p_prefix(m);
        if (reached || m == c.size()) {
          c.resize(kept);
          break;
        }
        m = std::min(c.size(), m * 8);
      }
    } else {
      std::sort(c.begin(), c.end(), by_logit);
    }
  }
  softmax(params_.temperature);
  double cum = 0;
  for (const auto& x : c) {
    cum += x.p;
    if (r < cum) return x.id;
  }
  // Rounding left the draw past the sum: the last candidate that has any probability (a
  // grammar's refused tokens are -infinity, probability 0, and sort last).
  for (auto x = c.rbegin(); x != c.rend(); ++x)
    if (x->p > 0) return x->id;
  return c.front().id;
}

}  // namespace moevk::generate
