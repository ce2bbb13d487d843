// Argmax: vocab-sized and odd rows against a plain scan; ties to the lowest index (also across
// threads of the strided scan); NaN counts as -inf; +inf wins.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/error.hpp"
#include "ops/transformer.hpp"
#include "support/gpu.hpp"

using namespace moevk;
using moevk::test::GpuTest;

namespace {
uint32_t reference(const float* row, uint32_t n) {
  uint32_t best = 0;
  float best_v = -std::numeric_limits<float>::infinity();
  for (uint32_t c = 0; c < n; ++c) {
    const float v = std::isnan(row[c]) ? -std::numeric_limits<float>::infinity() : row[c];
    if (v > best_v) best_v = v, best = c;
  }
  return best;
}

std::vector<uint32_t> run(vk::Context& ctx, const std::vector<float>& logits, uint32_t rows, uint32_t cols) {
  ops::Argmax argmax(ctx);
  auto in = test::upload(ctx, logits);
  auto ids = test::poisoned(ctx, uint64_t(rows) * 4);
  test::run_once(ctx, [&](vk::Recorder& r) { argmax.record(r, in.range(), ids.range(), rows, cols); });
  return test::download<uint32_t>(ctx, ids, rows);
}
}  // namespace

TEST_F(GpuTest, ArgmaxRandomRows) {
  uint32_t seed = 1;
  for (uint32_t cols : {1u, 7u, 255u, 257u, 151936u, 152064u})
    for (uint32_t rows : {1u, 3u, 17u}) {
      if (size_t(rows) * cols > 3'000'000) continue;  // keep the test fast
      SCOPED_TRACE("rows=" + std::to_string(rows) + " cols=" + std::to_string(cols));
      auto logits = test::random_normal(size_t(rows) * cols, seed++, 3.0f);
      // Put some maxima at the last column and at column 0.
      if (rows > 1) logits[size_t(cols) - 1] = 100.0f, logits[size_t(cols)] = 100.0f;
      std::vector<uint32_t> want(rows);
      for (uint32_t r = 0; r < rows; ++r) want[r] = reference(&logits[size_t(r) * cols], cols);
      EXPECT_EQ(run(*ctx, logits, rows, cols), want);
    }
}

namespace {
// Seven vocabulary-sized rows of special cases, over random values in [-1, 1]:
// 0: 9.0 at each of `ties` (equal maxima): the lowest wins.
// 1: NaN everywhere except a small finite maximum at 4242: NaN never wins.
// 2: all NaN -> 0.   3: all -inf -> 0.   4: +inf at cols - 2 beats everything, NaN around it.
// 5: all equal -> 0.   6: the maximum is -inf's neighbour (-1e38) at 100001 among -inf.
constexpr uint32_t kSpecialCols = 152064, kSpecialRows = 7;
std::vector<float> special_rows(uint32_t seed, std::initializer_list<uint32_t> ties) {
  const uint32_t cols = kSpecialCols;
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  auto logits = test::random_floats(size_t(kSpecialRows) * cols, seed, -1.0f, 1.0f);
  auto row = [&](uint32_t r) { return &logits[size_t(r) * cols]; };
  for (uint32_t c : ties) row(0)[c] = 9.0f;
  for (uint32_t c = 0; c < cols; ++c) row(1)[c] = nan;
  row(1)[4242] = -50.0f;
  for (uint32_t c = 0; c < cols; ++c) row(2)[c] = nan, row(3)[c] = -inf;
  row(4)[3] = nan, row(4)[cols - 2] = inf, row(4)[cols - 1] = nan;
  for (uint32_t c = 0; c < cols; ++c) row(5)[c] = 0.5f, row(6)[c] = -inf;
  row(6)[100001] = -1e38f;
  return logits;
}
}  // namespace

TEST_F(GpuTest, ArgmaxTiesNanAndInfinities) {
  // Row 0's equal maxima in different threads' slices and in the same thread's slice.
  const auto logits = special_rows(5, {77777u, 5000u + 256u, 5000u, 151000u});
  EXPECT_EQ(run(*ctx, logits, kSpecialRows, kSpecialCols),
            (std::vector<uint32_t>{5000, 4242, 0, 0, kSpecialCols - 2, 0, 100001}));
}

TEST_F(GpuTest, ArgmaxRejectsEmptyRows) {
  ops::Argmax argmax(*ctx);
  auto buf = ctx->create_buffer(64, vk::BufferKind::Device, "x");
  vk::Recorder rec(*ctx);
  rec.begin();
  EXPECT_THROW(argmax.record(rec, buf.range(), buf.range(), 1, 0), Error);
  EXPECT_THROW(argmax.record(rec, buf.range(), buf.range(), 2, 16), Error);
  rec.end();
}

TEST_F(GpuTest, ArgmaxMoreRowsThanOneDispatchRow) {
  const uint32_t rows = 65540, cols = 3;
  const auto logits = test::random_normal(size_t(rows) * cols, 21);
  std::vector<uint32_t> want(rows);
  for (uint32_t r = 0; r < rows; ++r) want[r] = reference(&logits[size_t(r) * cols], cols);
  EXPECT_EQ(run(*ctx, logits, rows, cols), want);
}

namespace {
// Through the split path: a scratch with zeroed counters, poisoned partials.
std::vector<uint32_t> run_split(vk::Context& ctx, const std::vector<float>& logits, uint32_t rows, uint32_t cols,
                                uint32_t expect_slices) {
  ops::Argmax argmax(ctx);
  EXPECT_EQ(argmax.slices(rows, cols, true), expect_slices) << rows << "x" << cols;
  auto in = test::upload(ctx, logits);
  auto ids = test::poisoned(ctx, uint64_t(rows) * 4);
  auto scratch = test::poisoned(ctx, ops::Argmax::scratch_bytes(rows, cols));
  ops::Argmax::clear_counters(ctx, scratch.range());
  const vk::BufferRange s = scratch.range();
  test::run_once(ctx, [&](vk::Recorder& r) { argmax.record(r, in.range(), ids.range(), rows, cols, &s); });
  // Every row's last workgroup reset its counter for the next replay.
  const auto counters = test::download<uint32_t>(ctx, scratch, ops::Argmax::kMaxSplitRows);
  for (uint32_t r = 0; r < ops::Argmax::kMaxSplitRows; ++r) EXPECT_EQ(counters[r], 0u) << "counter " << r;
  return test::download<uint32_t>(ctx, ids, rows);
}
}  // namespace

TEST_F(GpuTest, ArgmaxSplitOverSlicesOfTheVocabulary) {
  // Vocabulary-sized rows in slices of 2048 columns (ragged last slice; Mixtral's 32000, Qwen's
  // 151936 and 152064), a row count up to the counters' 64, the maximum at slice edges.
  uint32_t seed = 300;
  for (auto [rows, cols, slices] : {std::tuple{1u, 4096u, 2u}, std::tuple{1u, 32000u, 16u},
                                    std::tuple{3u, 151936u, 75u}, std::tuple{1u, 152064u, 75u},
                                    std::tuple{64u, 4099u, 3u}, std::tuple{1u, 1000000u, 256u}}) {
    SCOPED_TRACE("rows=" + std::to_string(rows) + " cols=" + std::to_string(cols));
    auto logits = test::random_normal(size_t(rows) * cols, seed++, 3.0f);
    if (rows > 1) logits[2047] = 100.0f, logits[size_t(cols) + 2048] = 100.0f;  // last / first of a slice
    logits[size_t(rows - 1) * cols + cols - 1] = 101.0f;                         // the last column
    std::vector<uint32_t> want(rows);
    for (uint32_t r = 0; r < rows; ++r) want[r] = reference(&logits[size_t(r) * cols], cols);
    EXPECT_EQ(run_split(*ctx, logits, rows, cols, slices), want);
  }
  // Short rows, or more rows than counters, stay one workgroup per row.
  ops::Argmax argmax(*ctx);
  EXPECT_EQ(argmax.slices(1, 4095, true), 1u);
  EXPECT_EQ(argmax.slices(65, 151936, true), 1u);
  EXPECT_EQ(argmax.slices(1, 151936, false), 1u);
  EXPECT_EQ(ops::Argmax(*ctx, false).slices(1, 151936, true), 1u);
}

TEST_F(GpuTest, ArgmaxSplitTiesNanAndInfinitiesAcrossSlices) {
  // As ArgmaxTiesNanAndInfinities, with row 0's equal maxima in four slices (one at a slice's
  // first column) and the specials in different slices.
  const auto logits = special_rows(6, {77777u, 6144u, 100000u, 151000u});
  EXPECT_EQ(run_split(*ctx, logits, kSpecialRows, kSpecialCols, 75),
            (std::vector<uint32_t>{6144, 4242, 0, 0, kSpecialCols - 2, 0, 100001}));
}

TEST_F(GpuTest, ArgmaxSplitReplaysWithTheCountersItLeft) {
  // One recording replayed on new logits: each run must see zeroed counters from the last.
  const uint32_t cols = 151936;
  ops::Argmax argmax(*ctx);
  auto in = ctx->create_buffer(uint64_t(cols) * 4, vk::BufferKind::Device, "logits");
  auto ids = test::poisoned(*ctx, 4);
  auto scratch = test::poisoned(*ctx, ops::Argmax::scratch_bytes(1, cols));
  ops::Argmax::clear_counters(*ctx, scratch.range());
  const vk::BufferRange s = scratch.range();
  vk::Recorder rec(*ctx);
  rec.begin();
  argmax.record(rec, in.range(), ids.range(), 1, cols, &s);
  rec.end();
  for (uint32_t run = 0; run < 4; ++run) {
    auto logits = test::random_normal(cols, 700 + run, 2.0f);
    const uint32_t at = (run * 40503u) % cols;
    logits[at] = 50.0f;
    ctx->upload(in.range(), logits.data(), logits.size() * 4);
    rec.submit();
    EXPECT_EQ(test::download<uint32_t>(*ctx, ids, 1)[0], at) << "run " << run;
  }
}
