// QuantizeQ8 (shaders/matmul/quantize_q8.comp) against the Q8 rule per 32-element block, on 1-D
// and 2-D workgroup grids: every block must be written (outputs start poisoned) and match.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <sstream>

#include "common/error.hpp"
#include "ops/quantize_q8.hpp"
#include "support/gpu.hpp"

using namespace moevk;
using moevk::test::GpuTest;

namespace {

// Runs n_blocks through an op with the given grid limit and checks every block: q = round(v / d)
// with d = max|v| / 127 (GLSL's division and round may differ from the CPU's by an ulp, so q is
// checked by how far q d lies from v, not bit for bit), xs = d * sum(q).
void check_quantize(vk::Context& ctx, uint32_t n_blocks, uint32_t max_groups_per_dim, uint32_t seed) {
  SCOPED_TRACE("n_blocks=" + std::to_string(n_blocks) + " max_groups_per_dim=" + std::to_string(max_groups_per_dim));
  auto x = test::random_normal(size_t(n_blocks) * 32, seed);
  for (uint32_t b = 0; b < n_blocks; ++b)  // blocks of different scales, and one of zeros
    for (uint32_t i = 0; i < 32; ++i) x[size_t(b) * 32 + i] *= b == 1 ? 0.0f : std::pow(10.0f, float(int(b % 5) - 2));
  auto xbuf = test::upload(ctx, x, "x");
  auto xq = test::poisoned(ctx, uint64_t(n_blocks) * 32, "xq");
  auto xd = test::poisoned(ctx, uint64_t(n_blocks) * 4, "xd");
  auto xs = test::poisoned(ctx, uint64_t(n_blocks) * 4, "xs");
  const ops::QuantizeQ8 op(ctx, max_groups_per_dim);
  test::run_once(ctx, [&](vk::Recorder& r) { op.record(r, xbuf.range(), xq.range(), xd.range(), xs.range(), n_blocks); });
  const auto q = test::download<int8_t>(ctx, xq, size_t(n_blocks) * 32);
  const auto d = test::download<float>(ctx, xd, n_blocks);
  const auto s = test::download<float>(ctx, xs, n_blocks);

  size_t bad = 0;
  std::string first;
  auto fail = [&](uint32_t b, const std::string& what) {
    if (bad++ == 0) first = "block " + std::to_string(b) + ": " + what;
  };
  for (uint32_t b = 0; b < n_blocks; ++b) {
    double amax = 0;
    for (uint32_t i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(double(x[size_t(b) * 32 + i])));
    const double want_d = amax / 127.0;
    // NaN (an unwritten block) fails every comparison below.
    if (!(std::fabs(d[b] - want_d) <= 1e-6 * want_d)) {
      fail(b, "d = " + std::to_string(d[b]) + ", want " + std::to_string(want_d));
      continue;
    }
    int64_t sum = 0, abs_sum = 0;
    for (uint32_t i = 0; i < 32; ++i) {
      const int v = q[size_t(b) * 32 + i];
      sum += v;
      abs_sum += std::abs(v);
      // Round to nearest: q d within d / 2 of v, up to the f32 rounding of d, 1 / d and v / d
      // (a few ulp of up to 127.5: 1e-4 of a step).
      if (!(v >= -127 && v <= 127 && std::fabs(v * want_d - x[size_t(b) * 32 + i]) <= want_d * (0.5 + 1e-4)))
        fail(b, "q[" + std::to_string(i) + "] = " + std::to_string(v) + " for " + std::to_string(x[size_t(b) * 32 + i]));
    }
    if (!(std::fabs(s[b] - d[b] * double(sum)) <= 1e-6 * d[b] * double(abs_sum)))
      fail(b, "xs = " + std::to_string(s[b]) + ", want " + std::to_string(d[b] * double(sum)));
  }
  EXPECT_EQ(bad, 0u) << bad << " wrong, first " << first;
}

}  // namespace

TEST_F(GpuTest, QuantizeQ8MatchesTheRuleOnOneAndTwoDimensionalGrids) {
  check_quantize(*ctx, 100, 0, 1);          // 2 workgroups: one grid row
  check_quantize(*ctx, 5 * 64 + 7, 3, 2);   // 6 workgroups as 3 x 2, the last one ragged
  check_quantize(*ctx, 4 * 64, 2, 3);       // exactly 2 x 2 full workgroups
  check_quantize(*ctx, 7 * 64 + 1, 3, 4);   // 8 workgroups as 3 x 3: the last grid slot is idle
}

TEST_F(GpuTest, QuantizeQ8GridStaysWithinTheLimitPerDimension) {
  // 8192 tokens x 18432 columns: 4.7M blocks, 73728 workgroups, past the 65535 of one dimension.
  const ops::QuantizeQ8 op(*ctx);
  const auto g = op.grid(8192u * 18432u / 32u);
  EXPECT_EQ(g.x, 65535u);
  EXPECT_EQ(g.y, 2u);
  EXPECT_GE(uint64_t(g.x) * g.y * ops::QuantizeQ8::kWorkgroup, 8192ull * 18432 / 32);
  // The largest count of blocks there can be still fits (1025 rows of 65535 workgroups).
  EXPECT_EQ(op.grid(UINT32_MAX).y, 1025u);
  EXPECT_EQ(op.grid(64).x, 1u);
  EXPECT_EQ(op.grid(65).x, 2u);
  // A limit that cannot hold the blocks in two dimensions is refused, not exceeded.
  const ops::QuantizeQ8 tiny(*ctx, 2);
  EXPECT_EQ(tiny.grid(4 * 64).y, 2u);
  try {
    tiny.grid(4 * 64 + 1);
    ADD_FAILURE() << "5 workgroups accepted on a 2 x 2 grid";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_UNSUPPORTED);
  }
}
