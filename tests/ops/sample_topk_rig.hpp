// SampleTopK's test rig, shared by sample_topk_test.cpp (the best 64, top-k draws, penalties)
// and sample_topk_whole_row_test.cpp (top-k off): a row on the device and the op recorded over
// it, the plain partial sort and the double-precision draw it is checked against, and penalty
// histories with their reference rewrite.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <set>

#include "common/error.hpp"
#include "generate/sampler.hpp"
#include "ops/sample_topk.hpp"
#include "support/gpu.hpp"

namespace moevk::test::sample {
constexpr uint32_t kK = ops::SampleTopK::kMaxK;
constexpr uint32_t kNone = 0xFFFFFFFFu;
const float kNegInf = -std::numeric_limits<float>::infinity();

struct Pair {
  float value;
  uint32_t index;
};

// The row's kK best, best first; NaN as -inf, -0 as 0; missing ones as (-inf, kNone).
inline std::vector<Pair> reference_top(const std::vector<float>& row) {
  std::vector<Pair> all(row.size());
  for (size_t i = 0; i < row.size(); ++i) {
    float v = std::isnan(row[i]) ? kNegInf : row[i];
    if (v == 0.0f) v = 0.0f;
    all[i] = {v, uint32_t(i)};
  }
  const size_t n = std::min<size_t>(kK, all.size());
  std::partial_sort(all.begin(), all.begin() + n, all.end(), [](const Pair& a, const Pair& b) {
    return a.value > b.value || (a.value == b.value && a.index < b.index);
  });
  all.resize(n);
  all.resize(kK, Pair{kNegInf, kNone});
  return all;
}

struct Outputs {
  std::vector<Pair> candidates;
  uint32_t id = 0;
};

// The penalty tests' histories have 600 positions; a ring of 601 holds them and the draw's.
constexpr uint32_t kRingPositions = 601;

// One row on the GPU: outputs poisoned, the scratch's counter zeroed and its lists poisoned.
class Rig {
 public:
  Rig(vk::Context& ctx, const std::vector<float>& row, uint32_t ring_positions = kRingPositions)
      : ctx_(ctx), op_(ctx), n_(uint32_t(row.size())), ring_positions_(ring_positions) {
    logits_ = test::upload(ctx, row);
    params_ = ctx.create_buffer(sizeof(ops::SampleParams), vk::BufferKind::Device, "sample params");
    candidates_ = test::poisoned(ctx, ops::SampleTopK::kCandidateBytes);
    id_ = test::poisoned(ctx, 4);
    scratch_ = test::poisoned(ctx, ops::SampleTopK::scratch_bytes(n_));
    ops::SampleTopK::clear_counters(ctx, scratch_.range());
    ring_ = test::upload(ctx, std::vector<uint32_t>(ring_positions, 0), "ring");
    rec_ = std::make_unique<vk::Recorder>(ctx);
    rec_->begin();
    op_.record(*rec_, logits_.range(), n_, params_.range(), candidates_.range(), id_.range(), scratch_.range(),
               ring_.range());
    rec_->end();
  }
  // The tokens by position for the penalties: position p at p % ring_positions.
  void set_ring(const std::vector<uint32_t>& ring) { ctx_.upload(ring_.range(), ring.data(), ring.size() * 4); }
  std::vector<uint32_t> ring() { return test::download<uint32_t>(ctx_, ring_, ring_positions_); }
  // Where the draw goes: the position after the histories' last.
  uint32_t next_in_ring() { return ring()[600 % ring_positions_]; }
  Outputs run(const ops::SampleParams& p) {
    ctx_.upload(params_.range(), &p, sizeof p);
    const std::vector<uint32_t> poison(2 * kK, test::kPoison);
    ctx_.upload(candidates_.range(), poison.data(), poison.size() * 4);
    ctx_.upload(id_.range(), poison.data(), 4);
    rec_->submit();
    Outputs r;
    const auto words = test::download<uint32_t>(ctx_, candidates_, 2 * kK);
    for (uint32_t i = 0; i < kK; ++i) {
      Pair c;
      std::memcpy(&c.value, &words[2 * i], 4);
      c.index = words[2 * i + 1];
      r.candidates.push_back(c);
    }
    r.id = test::download<uint32_t>(ctx_, id_, 1)[0];
    EXPECT_EQ(test::download<uint32_t>(ctx_, scratch_, 1)[0], 0u) << "the counter is left for the next replay";
    return r;
  }

 private:
  vk::Context& ctx_;
  ops::SampleTopK op_;
  uint32_t n_, ring_positions_;
  vk::Buffer logits_, params_, candidates_, id_, scratch_, ring_;
  std::unique_ptr<vk::Recorder> rec_;
};

inline ::testing::AssertionResult same_candidates(const std::vector<Pair>& got, const std::vector<Pair>& want) {
  for (uint32_t i = 0; i < kK; ++i) {
    uint32_t gv, wv;
    std::memcpy(&gv, &got[i].value, 4);
    std::memcpy(&wv, &want[i].value, 4);
    if (gv != wv || got[i].index != want[i].index)
      return ::testing::AssertionFailure() << "candidate " << i << ": (" << got[i].value << ", " << got[i].index
                                           << ") where (" << want[i].value << ", " << want[i].index << ")";
  }
  return ::testing::AssertionSuccess();
}

inline ops::SampleParams params(uint32_t k, float temperature, float top_p, float min_p, float u) {
  ops::SampleParams p;
  p.k = k;
  p.temperature = temperature;
  p.top_p = top_p;
  p.min_p = min_p;
  p.u = u;
  return p;
}

// generate::Sampler's rule in double over the ranked candidates: the token, and how close the
// inputs came to one of the rule's boundaries (a cumulative probability against top-p or the
// draw, a probability against min-p's threshold): closer than float arithmetic can decide.
struct Drawn {
  uint32_t id;
  double margin;
};
inline Drawn reference_draw(const std::vector<Pair>& c, const ops::SampleParams& p) {
  uint32_t n = 0;
  while (n < std::min(p.k, kK) && c[n].index != kNone) ++n;
  double margin = std::numeric_limits<double>::infinity();
  if (p.temperature <= 0) return {c[0].index, margin};
  std::vector<double> prob(n);
  double sum = 0;
  for (uint32_t i = 0; i < n; ++i) sum += prob[i] = std::exp(double(c[i].value) - c[0].value);
  for (auto& x : prob) x /= sum;
  if (p.top_p < 1.0f) {
    double cum = 0;
    uint32_t kept = 0;
    while (kept < n) {
      cum += prob[kept++];
      margin = std::min(margin, std::abs(cum - p.top_p));
      if (cum >= p.top_p) break;
    }
    n = std::max(kept, 1u);
  }
  if (p.min_p > 0.0f) {
    const double threshold = prob[0] * p.min_p;
    uint32_t kept = 1;
    while (kept < n) {
      margin = std::min(margin, std::abs(prob[kept] - threshold));
      if (prob[kept] < threshold) break;
      ++kept;
    }
    n = kept;
  }
  sum = 0;
  for (uint32_t i = 0; i < n; ++i) sum += prob[i] = std::exp((double(c[i].value) - c[0].value) / p.temperature);
  double cum = 0;
  for (uint32_t i = 0; i < n; ++i) {
    cum += prob[i] / sum;
    margin = std::min(margin, std::abs(cum - double(p.u)));
    if (double(p.u) < cum) return {c[i].index, margin};
  }
  return {c[n - 1].index, margin};
}

// A 600-position history for the penalty tests: random ids of the row, repeats of its best 6
// among the last 36 positions, and in a row of several slices the ids either side of the first
// slice edge; with `ends` the row's first and last ids too. And its last ring_positions
// positions as the ring the shader reads (position p at p % ring_positions).
struct History {
  std::vector<int32_t> ids;
  std::vector<uint32_t> ring;
};
inline History penalty_history(const std::vector<float>& row, uint32_t seed, bool ends,
                        uint32_t ring_positions = kRingPositions) {
  const uint32_t cols = uint32_t(row.size());
  std::mt19937 rng(seed);
  History h;
  h.ids.resize(600);
  for (auto& t : h.ids) t = int32_t(rng() % cols);
  const auto best = reference_top(row);
  for (int i = 0; i < 12; ++i) h.ids[599 - 3 * i] = int32_t(best[i % 6].index);  // repeats of the best
  if (ends) h.ids[590] = 0, h.ids[591] = int32_t(cols - 1);
  if (cols > 2048) h.ids[592] = 2047, h.ids[593] = 2048;
  h.ring.resize(ring_positions);
  for (uint32_t p = 600 - std::min(600u, ring_positions); p < 600; ++p) h.ring[p % ring_positions] = uint32_t(h.ids[p]);
  return h;
}

// The row as generate::Sampler penalises it over the last `window` ids of the history (all of
// them where it holds fewer).
inline std::vector<float> penalised_reference(std::vector<float> row, const std::vector<int32_t>& history, uint32_t window,
                                       float repeat, float presence, float frequency) {
  std::map<int32_t, int> counts;
  for (size_t i = history.size() - std::min<size_t>(window, history.size()); i < history.size(); ++i)
    ++counts[history[i]];
  for (const auto& [id, count] : counts) {
    float& l = row[id];
    if (repeat != 1.0f) l = l > 0 ? l / repeat : l * repeat;
    l -= float(count) * frequency + presence;
  }
  return row;
}

}  // namespace moevk::test::sample
