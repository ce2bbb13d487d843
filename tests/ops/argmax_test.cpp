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

TEST_F(GpuTest, ArgmaxTiesNanAndInfinities) {
  const uint32_t cols = 152064, rows = 7;
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  auto logits = test::random_floats(size_t(rows) * cols, 5, -1.0f, 1.0f);
  auto row = [&](uint32_t r) { return &logits[size_t(r) * cols]; };
  // 0: equal maxima in different threads' slices and the same thread's slice: lowest wins.
  for (uint32_t c : {77777u, 5000u + 256u, 5000u, 151000u}) row(0)[c] = 9.0f;
  // 1: NaN everywhere except a small finite maximum: NaN never wins.
  for (uint32_t c = 0; c < cols; ++c) row(1)[c] = nan;
  row(1)[4242] = -50.0f;
  // 2: all NaN -> 0.   3: all -inf -> 0.   4: +inf beats everything, NaN around it.
  for (uint32_t c = 0; c < cols; ++c) row(2)[c] = nan, row(3)[c] = -inf;
  row(4)[3] = nan, row(4)[cols - 2] = inf, row(4)[cols - 1] = nan;
  // 5: all equal -> 0.   6: the maximum is -inf's neighbour (-1e38) among -inf.
  for (uint32_t c = 0; c < cols; ++c) row(5)[c] = 0.5f, row(6)[c] = -inf;
  row(6)[100001] = -1e38f;
  EXPECT_EQ(run(*ctx, logits, rows, cols), (std::vector<uint32_t>{5000, 4242, 0, 0, cols - 2, 0, 100001}));
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
