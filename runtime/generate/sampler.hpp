// Token sampling on the host from one row of logits: repetition/presence/frequency penalties,
// top-k, top-p, min-p, temperature, then a seeded draw. Greedy decoding does not come here: it
// runs as an argmax on the GPU (Session, LogitsMode::ArgmaxOnly); nor does sampling that fits the
// GPU (SamplerParams::fits_gpu: any top-k, penalties over any window), which the GPU does with
// the same rule and a draw from this sampler's stream (Session, LogitsMode::Sample).
#pragma once
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace moevk::generate {

struct SamplerParams {
  float temperature = 0.8f;   // <= 0: greedy
  int32_t top_k = 40;         // <= 0: off
  float top_p = 0.95f;        // >= 1: off
  float min_p = 0.05f;        // <= 0: off
  float repeat_penalty = 1.0f;
  int32_t repeat_last_n = 64;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;

  bool greedy() const { return temperature <= 0.0f; }
  bool has_penalties() const {
    return repeat_penalty != 1.0f || presence_penalty != 0.0f || frequency_penalty != 0.0f;
  }
  // What the GPU sampler (ops::SampleTopK) does as sample() does: a temperature with a top-k of
  // at most its kMaxK candidates (the rest of the rule runs on those), or with any other top-k
  // or none (the whole row: SampleParams::all), or greedy with penalties, over any window (the
  // whole history too: the GPU keeps the context's tokens by position). The GPU divides by
  // repeat_penalty within 2.5 ulp, so a penalised logit may differ from the host's in its last
  // bits; and its float sums over the whole row (top-p's mass, the draw's total) are taken in
  // another order than the host's double ones, so a cut or a draw within ~1e-5 of an edge may
  // fall the other way.
  static constexpr int32_t kGpuMaxTopK = 64;
  bool fits_gpu() const { return !greedy() || has_penalties(); }
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& params);
  // `history`: the tokens so far (prompt and generated); the last repeat_last_n are penalised.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);
  // The same with the draw given (u in [0, 1)): sample() is sample_with(..., draw()).
  int32_t sample_with(std::span<const float> logits, std::span<const int32_t> history, double u);
  // The next uniform draw of the seeded stream, one per sampled token: what a GPU sample step
  // takes in place of sample(), so both paths walk the same stream.
  double draw();
  // Hands back a draw that went unused (a speculative step dropped): the next draw() returns it.
  // Several go back newest first, so they come out again in their first order.
  void give_back(double u) { returned_.push_back(u); }
  const SamplerParams& params() const { return params_; }

 private:
  struct Candidate {
    int32_t id;
    float logit;
    float p;
  };
  void apply_penalties(std::vector<float>& logits, std::span<const int32_t> history);

  SamplerParams params_;
  std::mt19937_64 rng_;
  std::vector<Candidate> candidates_;
  std::vector<float> penalised_;  // the logits with penalties applied, when there are any
  std::vector<uint32_t> counts_;  // per token id, the window's count; all zero between calls
  std::vector<float> weights_;    // exp(logit - max) per token, without top-k
  std::vector<double> returned_;  // draws given back, the next at the end
};

}  // namespace moevk::generate
