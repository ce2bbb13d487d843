// Token sampling on the host from one row of logits: repetition/presence/frequency penalties,
// top-k, top-p, min-p, temperature, then a seeded draw. Greedy decoding does not come here: it
// runs as an argmax on the GPU (Session, LogitsMode::ArgmaxOnly).
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
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& params);
  // `history`: the tokens so far (prompt and generated); the last repeat_last_n are penalised.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);
  const SamplerParams& params() const { return params_; }

 private:
  struct Candidate {
    int32_t id;
    float logit;
    float p;
  };
  void apply_penalties(std::vector<float>& logits, std::span<const int32_t> history) const;

  SamplerParams params_;
  std::mt19937_64 rng_;
  std::vector<Candidate> candidates_;
  std::vector<float> penalised_;  // the logits with penalties applied, when there are any
};

}  // namespace moevk::generate
