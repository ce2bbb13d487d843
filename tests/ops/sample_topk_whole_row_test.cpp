// SampleTopK with top-k off (SampleParams::all, or a top-k past the best 64): the draw over the
// whole row against generate::Sampler's rule in double, with and without top-p, min-p, a top-k
// past 64 and penalties; draws near the rule's edges are counted, not asserted.
#include "sample_topk_rig.hpp"

using namespace moevk;
using namespace moevk::test::sample;
using moevk::test::GpuTest;

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
