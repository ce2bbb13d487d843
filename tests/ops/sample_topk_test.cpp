// SampleTopK: the 64 best (value, index) pairs of a row against a plain partial sort (rows under
// 64, one slice, ragged slices, vocabulary-sized rows; ties to the lowest index across slices,
// NaN as -inf, -0 as 0); the draw against a double-precision reference of generate::Sampler's
// rule and against the Sampler itself (on the same uniform), away from the rule's boundaries;
// counters left zero for the next replay.
#include "sample_topk_rig.hpp"

using namespace moevk;
using namespace moevk::test::sample;
using moevk::test::GpuTest;

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
