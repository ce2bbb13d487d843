#include "generate/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "common/error.hpp"

namespace moevk::generate {

Sampler::Sampler(const SamplerParams& params) : params_(params), rng_(params.seed) {}

void Sampler::apply_penalties(std::vector<Candidate>& c, std::span<const int32_t> history) const {
  if (!params_.has_penalties() || history.empty() || params_.repeat_last_n == 0) return;
  size_t n = params_.repeat_last_n < 0 ? history.size()
                                       : std::min<size_t>(history.size(), static_cast<size_t>(params_.repeat_last_n));
  std::unordered_map<int32_t, int> counts;
  for (size_t i = history.size() - n; i < history.size(); ++i) ++counts[history[i]];
  // Candidates are still in id order here, so an id indexes its candidate directly.
  for (const auto& [id, count] : counts) {
    if (id < 0 || static_cast<size_t>(id) >= c.size()) continue;
    float& l = c[id].logit;
    // The repetition penalty as llama.cpp/CTRL apply it: shrink positive logits, grow negative.
    if (params_.repeat_penalty != 1.0f) l = l > 0 ? l / params_.repeat_penalty : l * params_.repeat_penalty;
    l -= static_cast<float>(count) * params_.frequency_penalty + params_.presence_penalty;
  }
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  if (logits.empty()) throw Error(MOEVK_ERROR_INVALID_ARGUMENT, "sampling from empty logits");
  auto& c = candidates_;
  c.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) c[i] = {static_cast<int32_t>(i), logits[i], 0.0f};
  apply_penalties(c, history);

  auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  if (params_.greedy()) return std::min_element(c.begin(), c.end(), by_logit)->id;

  size_t keep = c.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < keep) {
    keep = static_cast<size_t>(params_.top_k);
    std::partial_sort(c.begin(), c.begin() + keep, c.end(), by_logit);
  } else {
    std::sort(c.begin(), c.end(), by_logit);
  }
  c.resize(keep);

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
  softmax(1.0f);
  if (params_.top_p < 1.0f) {
    double cum = 0;
    size_t n = 0;
    while (n < c.size()) {
      cum += c[n++].p;
      if (cum >= params_.top_p) break;
    }
    c.resize(std::max<size_t>(n, 1));
  }
  if (params_.min_p > 0.0f) {
    const float threshold = c.front().p * params_.min_p;
    size_t n = 1;
    while (n < c.size() && c[n].p >= threshold) ++n;
    c.resize(n);
  }
  softmax(params_.temperature);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  double r = u(rng_), cum = 0;
  for (const auto& x : c) {
    cum += x.p;
    if (r < cum) return x.id;
  }
  return c.back().id;
}

}  // namespace moevk::generate
