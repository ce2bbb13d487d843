// SampleTopK: the 64 best (value, index) pairs of a row against a plain partial sort (rows under
// 64, one slice, ragged slices, vocabulary-sized rows; ties to the lowest index across slices,
// NaN as -inf, -0 as 0); the draw against a double-precision reference of generate::Sampler's
// rule and against the Sampler itself (on the same uniform), away from the rule's boundaries;
// counters left zero for the next replay.
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

using namespace moevk;
using moevk::test::GpuTest;

namespace {
constexpr uint32_t kK = ops::SampleTopK::kMaxK;
constexpr uint32_t kNone = 0xFFFFFFFFu;
const float kNegInf = -std::numeric_limits<float>::infinity();

struct Pair {
  float value;
  uint32_t index;
};

// The row's kK best, best first; NaN as -inf, -0 as 0; missing ones as (-inf, kNone).
std::vector<Pair> reference_top(const std::vector<float>& row) {
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

::testing::AssertionResult same_candidates(const std::vector<Pair>& got, const std::vector<Pair>& want) {
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

ops::SampleParams params(uint32_t k, float temperature, float top_p, float min_p, float u) {
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
Drawn reference_draw(const std::vector<Pair>& c, const ops::SampleParams& p) {
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
History penalty_history(const std::vector<float>& row, uint32_t seed, bool ends,
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
std::vector<float> penalised_reference(std::vector<float> row, const std::vector<int32_t>& history, uint32_t window,
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

}  // namespace

TEST_F(GpuTest, SampleTopKCandidatesAreTheRowsBest) {
  uint32_t seed = 700;
  for (uint32_t cols : {1u, 5u, 63u, 64u, 65u, 1000u, 2048u, 2049u, 4097u, 32000u, 151936u}) {
    SCOPED_TRACE("cols=" + std::to_string(cols));
    auto row = test::random_normal(cols, seed++, 3.0f);
    // Large values at slice edges (2048 columns a slice at most): the first, the last, a
    // slice's last and the next's first.
    row[0] = 40.0f;
    row[cols - 1] = 41.0f;
    if (cols > 2049) row[2047] = 39.0f, row[2048] = 39.0f;
    Rig rig(*ctx, row);
    const auto want = reference_top(row);
    // k = 0: candidates only, the id untouched; temperature 0: the best one.
    Outputs only = rig.run(params(0, 0.8f, 1.0f, 0.0f, 0.5f));
    EXPECT_TRUE(same_candidates(only.candidates, want));
    EXPECT_EQ(only.id, test::kPoison);
    Outputs greedy = rig.run(params(40, 0.0f, 1.0f, 0.0f, 0.5f));
    EXPECT_TRUE(same_candidates(greedy.candidates, want));
    EXPECT_EQ(greedy.id, want[0].index);
  }
}

TEST_F(GpuTest, SampleTopKTiesNanInfinitiesAndSignedZeros) {
  const uint32_t cols = 152064;
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  struct Case {
    std::string name;
    std::vector<float> row;
  };
  std::vector<Case> cases;
  {  // 100 equal maxima spread over the slices: the 64 lowest indices win, in order.
    auto row = test::random_floats(cols, 31, -1.0f, 1.0f);
    for (uint32_t i = 0; i < 100; ++i) row[(i * 7919u + 13u) % cols] = 9.0f;
    cases.push_back({"ties", row});
  }
  {  // NaN everywhere but 10 numbers; the rest of the 64 are NaN, ranked as -inf by index.
    std::vector<float> row(cols, nan);
    for (uint32_t i = 0; i < 10; ++i) row[151000 - i * 9000] = float(i) - 50.0f;
    cases.push_back({"nan", row});
  }
  {  // +inf beats everything; -inf below every number.
    auto row = test::random_floats(cols, 32, -1.0f, 1.0f);
    row[cols - 2] = inf, row[5] = -inf, row[6] = nan;
    cases.push_back({"inf", row});
  }
  cases.push_back({"all -inf", std::vector<float>(cols, -inf)});
  {  // -0 and 0 are equal: by index.
    std::vector<float> row(cols, -1.0f);
    for (uint32_t i = 0; i < 80; ++i) row[i * 1500u + 3u] = (i % 2) ? 0.0f : -0.0f;
    cases.push_back({"signed zeros", row});
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Rig rig(*ctx, c.row);
    const auto want = reference_top(c.row);
    Outputs got = rig.run(params(40, 0.8f, 0.95f, 0.05f, 0.3f));
    EXPECT_TRUE(same_candidates(got.candidates, want));
    // A draw from rows whose best is infinite takes the best; the tie rows draw among equals.
    if (std::isinf(want[0].value)) {
      EXPECT_EQ(got.id, want[0].index);
    } else {
      EXPECT_EQ(got.id, reference_draw(want, params(40, 0.8f, 0.95f, 0.05f, 0.3f)).id);
    }
  }
}

TEST_F(GpuTest, SampleTopKDrawsAsTheHostSampler) {
  // Parameter sets of the CLI's and the models' usual settings, and edges: k 1, k = kMaxK, a
  // hot and a cold temperature, top-p and min-p cutting.
  struct Setting {
    uint32_t k;
    float temperature, top_p, min_p;
  };
  const Setting settings[] = {{1, 0.8f, 1.0f, 0.0f},    {5, 1.0f, 1.0f, 0.0f},   {40, 0.8f, 0.95f, 0.05f},
                              {64, 1.5f, 1.0f, 0.0f},   {64, 0.3f, 0.5f, 0.0f},  {40, 0.7f, 1.0f, 0.3f},
                              {17, 2.0f, 0.9f, 0.01f},  {20, 0.6f, 0.95f, 0.0f}};
  std::mt19937 rng(99);
  int checked = 0, near_boundary = 0;
  uint32_t seed = 800;
  for (uint32_t cols : {300u, 5000u, 151936u}) {
    SCOPED_TRACE("cols=" + std::to_string(cols));
    // Logits spread like a model's: a few units between the best candidates.
    const auto row = test::random_normal(cols, seed++, 1.5f);
    Rig rig(*ctx, row);
    const auto top = reference_top(row);
    const int draws = cols > 100000 ? 3 : 12;
    for (const Setting& s : settings) {
      std::set<uint32_t> seen;
      for (int d = 0; d < draws; ++d) {
        const float u = (float(d) + std::uniform_real_distribution<float>(0.0f, 1.0f)(rng)) / float(draws);
        const ops::SampleParams p = params(s.k, s.temperature, s.top_p, s.min_p, u);
        const Outputs got = rig.run(p);
        ASSERT_TRUE(same_candidates(got.candidates, top));
        const Drawn want = reference_draw(top, p);
        generate::SamplerParams sp;
        sp.temperature = s.temperature, sp.top_k = int32_t(s.k), sp.top_p = s.top_p, sp.min_p = s.min_p;
        generate::Sampler host(sp);
        const int32_t host_id = host.sample_with(row, {}, double(u));
        ++checked;
        // Float exp and sums over <= 64 terms are good to ~1e-6 of the total; closer to a
        // boundary than 1e-5, float arithmetic may decide either way (counted, not checked).
        if (want.margin < 1e-5) {
          ++near_boundary;
          continue;
        }
        EXPECT_EQ(got.id, want.id) << "k=" << s.k << " T=" << s.temperature << " top_p=" << s.top_p
                                   << " min_p=" << s.min_p << " u=" << u;
        EXPECT_EQ(int32_t(got.id), host_id) << "k=" << s.k << " u=" << u;
        seen.insert(got.id);
      }
      // Draws spread over the interval reach more than one token where more than one is kept.
      if (s.k > 1 && s.min_p < 0.1f && draws > 3) {
        EXPECT_GT(seen.size(), 1u) << "k=" << s.k;
      }
    }
  }
  EXPECT_LT(near_boundary * 20, checked) << near_boundary << " of " << checked << " draws near a boundary";
}

// Penalties: the window's tokens (repeats among them, some among the best, one in each slice
// edge) penalised as generate::Sampler does, then the candidates and the draw of that row; the
// drawn token lands in the ring at the next position. Windows short and long (more positions
// than the workgroup's threads; the whole 600-token history; past it, which takes the history
// as the host does), in a ring that holds the history and in one of just the window that wraps
// (the draw then overwrites the window's oldest position, after every read of it), and in a
// ring shorter than the window (the shader reads the positions it holds, no slot twice). The GPU
// divides within 2.5 ulp: values compare to 4 ulp, indices and draws exactly (ties within 4 ulp
// do not occur in these rows).
TEST_F(GpuTest, SampleTopKAppliesPenaltiesOverTheWindow) {
  uint32_t seed = 900;
  for (uint32_t cols : {300u, 5000u, 151936u}) {
    SCOPED_TRACE("cols=" + std::to_string(cols));
    auto row = test::random_normal(cols, seed++, 1.5f);
    const uint32_t history_seed = seed++;
    struct Setting {
      float temperature, repeat, presence, frequency;
      uint32_t window, ring_positions;
    };
    for (const Setting& st :
         {Setting{0.9f, 1.3f, 0.0f, 0.0f, 64, kRingPositions}, Setting{0.8f, 1.1f, 0.4f, 0.2f, 256, kRingPositions},
          Setting{0.0f, 1.5f, 0.0f, 0.0f, 32, kRingPositions}, Setting{1.2f, 1.0f, 0.8f, 0.0f, 17, kRingPositions},
          Setting{0.9f, 1.2f, 0.3f, 0.1f, 600, kRingPositions}, Setting{1.0f, 1.3f, 0.2f, 0.2f, 300, 300},
          Setting{0.0f, 1.4f, 0.1f, 0.3f, 5000, kRingPositions}, Setting{0.9f, 1.3f, 0.0f, 0.2f, 600, 300}}) {
      SCOPED_TRACE("T=" + std::to_string(st.temperature) + " window=" + std::to_string(st.window) +
                   " ring=" + std::to_string(st.ring_positions));
      // The history: 600 positions, the window the last `window` of them, written to the ring.
      const History h = penalty_history(row, history_seed, /*ends=*/true, st.ring_positions);
      const std::vector<int32_t>& history = h.ids;
      const uint32_t seen = std::min(st.window, st.ring_positions);
      generate::SamplerParams sp;
      sp.temperature = st.temperature, sp.top_k = 40, sp.repeat_penalty = st.repeat;
      sp.presence_penalty = st.presence, sp.frequency_penalty = st.frequency, sp.repeat_last_n = int32_t(seen);
      ASSERT_TRUE(sp.fits_gpu());
      // The host's penalised row, ranked.
      const std::vector<float> penalised = penalised_reference(row, history, seen, st.repeat, st.presence, st.frequency);
      const auto want_top = reference_top(penalised);
      Rig rig(*ctx, row, st.ring_positions);
      for (int d = 0; d < 4; ++d) {
        rig.set_ring(h.ring);
        const float u = (float(d) + 0.37f) / 4.0f;
        ops::SampleParams p = params(st.temperature > 0 ? 40u : 1u, st.temperature, 0.95f, 0.05f, u);
        p.repeat_penalty = st.repeat, p.presence = st.presence, p.frequency = st.frequency;
        p.window = st.window, p.last_pos = 599;
        const Outputs got = rig.run(p);
        for (uint32_t i = 0; i < kK; ++i) {
          ASSERT_EQ(got.candidates[i].index, want_top[i].index) << "candidate " << i;
          EXPECT_NEAR(got.candidates[i].value, want_top[i].value, 4 * std::abs(want_top[i].value) * 1.2e-7)
              << "candidate " << i;
        }
        sp.top_p = 0.95f, sp.min_p = 0.05f;
        generate::Sampler host_rule(sp);
        const int32_t want = host_rule.sample_with(row, history, double(u));
        const Drawn ref = reference_draw(want_top, p);
        if (ref.margin >= 1e-5) {
          EXPECT_EQ(int32_t(got.id), want) << "u=" << u;
        }
        EXPECT_EQ(rig.next_in_ring(), got.id) << "the draw goes to the next position";
      }
    }
  }
}

// The kernel's 18.4 KiB of shared memory is above Vulkan's guaranteed 16 KiB: a device with
// less is not given it (Session then samples on the host).
TEST_F(GpuTest, SampleTopKFitsDevicesWithItsSharedMemory) {
  EXPECT_TRUE(ops::SampleTopK::fits(ctx->caps())) << "this device runs the kernel in the tests above";
  vk::Capabilities caps = ctx->caps();
  caps.max_shared_memory = 16384;
  EXPECT_FALSE(ops::SampleTopK::fits(caps));
  caps.max_shared_memory = 32768;
  EXPECT_TRUE(ops::SampleTopK::fits(caps));
}

TEST_F(GpuTest, SampleTopKRejectsBadRanges) {
  ops::SampleTopK op(*ctx);
  auto small = ctx->create_buffer(64, vk::BufferKind::Device, "x");
  auto big = ctx->create_buffer(1 << 20, vk::BufferKind::Device, "y");
  vk::Recorder rec(*ctx);
  rec.begin();
  const vk::BufferRange r = big.range();
  EXPECT_THROW(op.record(rec, r, 0, r, r, r, r, r), Error);
  // A vocabulary-sized row needs its lists in the scratch; the candidates 512 bytes; the ring a
  // position at least.
  EXPECT_THROW(op.record(rec, r, 151936, r, r, r, small.range(), r), Error);
  EXPECT_THROW(op.record(rec, r, 1000, r, small.range(), r, r, r), Error);
  EXPECT_THROW(op.record(rec, r, 1000, r, r, r, r, small.range(0, 2)), Error);
  // The scratch is read 16 bytes at a time: an offset of 4 is refused.
  const vk::BufferRange shifted{r.buffer, 4, r.size - 4};
  EXPECT_THROW(op.record(rec, r, 1000, r, r, r, shifted, r), Error);
  rec.end();
}

// Top-k off (SampleParams::all): generate::Sampler's whole-row rule in double. min-p's threshold,
// top-p's mass and the draw's point are each scaled by (1 + slack): at slack 0 the rule's token;
// the test also asks whether slacks of +-eps on each give it too, i.e. whether float
// arithmetic, whose sums over a row are good to ~1e-6 of the total, may decide it another way.
namespace {
struct RankedRow {
  std::vector<uint32_t> order;  // best first: the larger logit, the lower index among equals
  std::vector<double> weight;   // exp(l - max) in order
  double sum = 0;               // of them all
};
RankedRow rank_row(const std::vector<float>& row) {
  RankedRow r;
  r.order.resize(row.size());
  for (uint32_t i = 0; i < row.size(); ++i) r.order[i] = i;
  std::sort(r.order.begin(), r.order.end(),
            [&](uint32_t a, uint32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
  const double best = row[r.order[0]];
  for (uint32_t i : r.order) {
    r.weight.push_back(std::exp(double(row[i]) - best));
    r.sum += r.weight.back();
  }
  return r;
}
uint32_t whole_row_draw(const RankedRow& r, const std::vector<float>& row, const ops::SampleParams& p, double min_slack,
                        double top_slack, double draw_slack) {
  if (p.temperature <= 0) return r.order[0];
  // A top-k (p.k) keeps the first k, and top-p's mass is a share of theirs.
  const size_t n = p.k > 0 && p.k < r.order.size() ? p.k : r.order.size();
  double mass = 0;
  for (size_t j = 0; j < n; ++j) mass += r.weight[j];
  size_t kept = n;
  if (p.min_p > 0) {
    kept = 1;
    while (kept < n && r.weight[kept] >= double(p.min_p) * (1 + min_slack)) ++kept;
  }
  if (p.top_p < 1) {
    double cum = 0;
    for (size_t j = 0; j < kept; ++j) {
      cum += r.weight[j];
      if (cum >= double(p.top_p) * mass * (1 + top_slack)) {
        kept = j + 1;
        break;
      }
    }
  }
  const double best = row[r.order[0]];
  std::vector<double> w(kept);
  double total = 0;
  for (size_t j = 0; j < kept; ++j) total += w[j] = std::exp((double(row[r.order[j]]) - best) / p.temperature);
  const double point = double(p.u) * total * (1 + draw_slack);
  double cum = 0;
  for (size_t j = 0; j < kept; ++j) {
    cum += w[j];
    if (cum > point) return r.order[j];
  }
  return r.order[kept - 1];
}
struct WholeRowWant {
  uint32_t id;
  bool stable;  // the same token for every slack of +-eps
};
WholeRowWant whole_row_want(const RankedRow& r, const std::vector<float>& row, const ops::SampleParams& p, double eps) {
  WholeRowWant want{whole_row_draw(r, row, p, 0, 0, 0), true};
  for (int corner = 0; corner < 8 && want.stable; ++corner)
    want.stable = whole_row_draw(r, row, p, corner & 1 ? eps : -eps, corner & 2 ? eps : -eps,
                                 corner & 4 ? eps : -eps) == want.id;
  return want;
}
ops::SampleParams whole_row_params(float temperature, float top_p, float min_p, float u) {
  ops::SampleParams p = params(0, temperature, top_p, min_p, u);
  p.all = 1;
  return p;
}

// The whole-row tests' rows and settings.
struct NamedRow {
  std::string name;
  std::vector<float> row;
};
struct WholeRowSetting {
  float temperature, top_p, min_p;
};
// Logits at half-unit levels: long runs of ties, across every cut.
NamedRow levels_row(uint32_t seed) {
  auto row = test::random_normal(4999, seed, 2.0f);
  for (float& v : row) v = std::round(v * 2.0f) / 2.0f;
  return {"levels 4999", row};
}
// Every third token masked (-inf).
NamedRow masked_row(uint32_t seed) {
  auto row = test::random_normal(20003, seed, 2.0f);
  for (size_t i = 0; i < row.size(); i += 3) row[i] = kNegInf;
  return {"masked 20003", row};
}
}  // namespace

// Rows where the best 64 decide (a few large logits), where they do not (flat rows of a
// vocabulary: top-p's cut and the draw are selected over the whole row), ties in long runs (the
// selection goes on into the indices), masked tokens (-inf), one slice and many; settings of
// OpenAI-style clients (top-p alone), min-p alone, both, neither, and min-p above 1 (the best
// alone). The candidates are still the row's best 64.
TEST_F(GpuTest, SampleTopKDrawsFromTheWholeRowAsTheHostSampler) {
  std::vector<NamedRow> rows;
  {
    auto row = test::random_normal(151936, 1001, 1.5f);
    for (uint32_t i = 0; i < 12; ++i) row[(i * 12007u + 5u) % row.size()] = 9.0f + 0.4f * float(i);
    rows.push_back({"peaked 151936", row});
  }
  rows.push_back({"flat 151936", test::random_normal(151936, 1002, 1.5f)});
  rows.push_back({"sigma 3, 32000", test::random_normal(32000, 1003, 3.0f)});
  rows.push_back(levels_row(1004));
  rows.push_back({"constant 5001", std::vector<float>(5001, 0.25f)});
  rows.push_back({"one slice 301", test::random_normal(301, 1005, 1.5f)});
  rows.push_back({"three columns", test::random_normal(3, 1007, 1.5f)});  // fewer than one 16-byte load
  rows.push_back(masked_row(1006));
  // {T, 1, 0}: nothing cuts the row (a temperature alone): the draw among the best 64 where its
  // point falls there, from the slices' tempered sums, else over the row.
  const WholeRowSetting settings[] = {{0.8f, 0.95f, 0.05f}, {1.0f, 1.0f, 0.0f},   {0.7f, 0.9f, 0.0f},
                                      {1.2f, 1.0f, 0.02f},  {0.5f, 0.5f, 0.0f},   {1.0f, 0.999f, 0.0f},
                                      {0.9f, 1.0f, 2.0f},   {1.5f, 0.98f, 0.001f}, {0.7f, 1.0f, 0.0f}};
  const double eps = 1e-5;
  std::mt19937 rng(1099);
  int checked = 0, unstable = 0;
  for (const NamedRow& r : rows) {
    SCOPED_TRACE(r.name);
    Rig rig(*ctx, r.row);
    const auto top = reference_top(r.row);
    const RankedRow ranked = rank_row(r.row);
    const int draws = r.row.size() > 100000 ? 4 : 8;
    for (const WholeRowSetting& s : settings) {
      std::set<uint32_t> seen;
      for (int d = 0; d < draws; ++d) {
        const float u = (float(d) + std::uniform_real_distribution<float>(0.0f, 1.0f)(rng)) / float(draws);
        const ops::SampleParams p = whole_row_params(s.temperature, s.top_p, s.min_p, u);
        const Outputs got = rig.run(p);
        ASSERT_TRUE(same_candidates(got.candidates, top));
        const WholeRowWant want = whole_row_want(ranked, r.row, p, eps);
        generate::SamplerParams sp;
        sp.temperature = s.temperature, sp.top_k = 0, sp.top_p = s.top_p, sp.min_p = s.min_p;
        ASSERT_TRUE(sp.fits_gpu());
        generate::Sampler host(sp);
        const int32_t host_id = host.sample_with(r.row, {}, double(u));
        ++checked;
        seen.insert(got.id);
        if (!want.stable) {
          ++unstable;
          continue;
        }
        EXPECT_EQ(got.id, want.id) << "T=" << s.temperature << " top_p=" << s.top_p << " min_p=" << s.min_p
                                   << " u=" << u;
        EXPECT_EQ(int32_t(got.id), host_id) << "T=" << s.temperature << " top_p=" << s.top_p << " u=" << u;
      }
      if (s.min_p <= 1.0f && r.name != "peaked 151936") {
        EXPECT_GT(seen.size(), 1u) << "draws over the interval reach more than one token";
      }
    }
  }
  std::printf("whole-row draws: %d checked, %d within %.0e of an edge\n", checked, unstable, eps);
  EXPECT_LT(unstable * 5, checked) << unstable << " of " << checked << " draws near an edge";
}

// A top-k past the best 64 (SampleParams::all with k): the rule on the row's first k, top-p's
// mass theirs; k of 65 to 3000 (past the 2048 the draw gathers), on the rows of the test above,
// one k above the row's length (no cut), and 40 (the op takes a small k here too, though the
// session sends those without `all`).
TEST_F(GpuTest, SampleTopKWholeRowTakesATopKPastTheBest64) {
  std::vector<NamedRow> rows;
  rows.push_back({"flat 151936", test::random_normal(151936, 1101, 1.5f)});
  rows.push_back({"sigma 3, 32000", test::random_normal(32000, 1102, 3.0f)});
  rows.push_back(levels_row(1103));
  rows.push_back(masked_row(1104));
  rows.push_back({"one slice 301", test::random_normal(301, 1105, 1.5f)});
  {
    // min-p 0.02 keeps the 50 peaks alone: decided among the best 64, where a top-k of 40 cuts.
    auto row = test::random_normal(32000, 1106, 1.0f);
    for (uint32_t i = 0; i < 50; ++i) row[(i * 613u + 7u) % row.size()] = 9.0f + 0.01f * float(i);
    rows.push_back({"50 peaks, 32000", row});
  }
  const WholeRowSetting settings[] = {{0.8f, 0.95f, 0.05f}, {1.0f, 1.0f, 0.0f}, {0.7f, 0.9f, 0.0f}, {1.2f, 1.0f, 0.02f}};
  const double eps = 1e-5;
  int checked = 0, unstable = 0;
  for (const NamedRow& r : rows) {
    SCOPED_TRACE(r.name);
    Rig rig(*ctx, r.row);
    const auto top = reference_top(r.row);
    const RankedRow ranked = rank_row(r.row);
    for (const uint32_t k : {40u, 65u, 100u, 1000u, 3000u, 400000u}) {
      if (k >= r.row.size() && k != 400000u) continue;
      for (const WholeRowSetting& s : settings) {
        std::set<uint32_t> seen;
        for (const float u : {0.13f, 0.52f, 0.87f}) {
          ops::SampleParams p = whole_row_params(s.temperature, s.top_p, s.min_p, u);
          p.k = k;
          const Outputs got = rig.run(p);
          ASSERT_TRUE(same_candidates(got.candidates, top));
          const WholeRowWant want = whole_row_want(ranked, r.row, p, eps);
          ++checked;
          seen.insert(got.id);
          if (!want.stable) {
            ++unstable;
            continue;
          }
          EXPECT_EQ(got.id, want.id) << "k=" << k << " T=" << s.temperature << " top_p=" << s.top_p
                                     << " min_p=" << s.min_p << " u=" << u;
          generate::SamplerParams sp;
          sp.temperature = s.temperature, sp.top_k = int32_t(k), sp.top_p = s.top_p, sp.min_p = s.min_p;
          ASSERT_TRUE(sp.fits_gpu());
          generate::Sampler host(sp);
          EXPECT_EQ(int32_t(got.id), host.sample_with(r.row, {}, double(u)))
              << "k=" << k << " T=" << s.temperature << " top_p=" << s.top_p << " u=" << u;
        }
        EXPECT_GT(seen.size(), 1u) << "k=" << k << ": draws over the interval reach more than one token";
      }
    }
  }
  std::printf("top-k draws: %d checked, %d within %.0e of an edge\n", checked, unstable, eps);
  EXPECT_LT(unstable * 5, checked) << unstable << " of " << checked << " draws near an edge";
}

// Penalties with top-k off: the whole penalised row (repeats among the best, slice edges) is
// the one the cuts and the draw are taken over.
TEST_F(GpuTest, SampleTopKWholeRowDrawAppliesPenalties) {
  uint32_t seed = 1200;
  int checked = 0, unstable = 0;
  for (uint32_t cols : {301u, 4999u, 151936u}) {
    SCOPED_TRACE("cols=" + std::to_string(cols));
    auto row = test::random_normal(cols, seed++, 2.0f);
    const History h = penalty_history(row, seed++, /*ends=*/false);
    const std::vector<int32_t>& history = h.ids;
    const uint32_t window = 400;  // more positions than the workgroup's threads
    const float repeat = 1.3f, presence = 0.4f, frequency = 0.2f;
    const std::vector<float> penalised = penalised_reference(row, history, window, repeat, presence, frequency);
    const RankedRow ranked = rank_row(penalised);
    Rig rig(*ctx, row);
    for (const float top_p : {0.9f, 1.0f}) {
      for (int d = 0; d < 4; ++d) {
        rig.set_ring(h.ring);
        ops::SampleParams p = whole_row_params(1.0f, top_p, 0.0f, (float(d) + 0.41f) / 4.0f);
        p.repeat_penalty = repeat, p.presence = presence, p.frequency = frequency;
        p.window = window, p.last_pos = 599;
        const Outputs got = rig.run(p);
        const WholeRowWant want = whole_row_want(ranked, penalised, p, 1e-5);
        ++checked;
        EXPECT_EQ(rig.next_in_ring(), got.id) << "the draw goes to the next position";
        if (!want.stable) {
          ++unstable;
          continue;
        }
        EXPECT_EQ(got.id, want.id) << "top_p=" << top_p << " u=" << p.u;
        generate::SamplerParams sp;
        sp.temperature = 1.0f, sp.top_k = 0, sp.top_p = top_p, sp.min_p = 0.0f;
        sp.repeat_penalty = repeat, sp.presence_penalty = presence, sp.frequency_penalty = frequency;
        sp.repeat_last_n = int32_t(window);
        generate::Sampler host(sp);
        EXPECT_EQ(int32_t(got.id), host.sample_with(row, history, double(p.u))) << "top_p=" << top_p << " u=" << p.u;
      }
    }
  }
  EXPECT_LT(unstable * 4, checked) << unstable << " of " << checked << " draws near an edge";
}
