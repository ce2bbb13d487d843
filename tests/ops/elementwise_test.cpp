// Elementwise add and swiglu against double references, odd sizes, in place, and a size past
// one dispatch row of workgroups (grid-stride loop).
#include <gtest/gtest.h>

#include <cmath>

#include "ops/transformer.hpp"
#include "support/gpu.hpp"

using namespace moevk;
using moevk::test::GpuTest;

namespace {
enum class Op { Add, Swiglu };

std::vector<double> reference(Op op, const std::vector<float>& a, const std::vector<float>& b) {
  std::vector<double> y(a.size());
  for (size_t i = 0; i < a.size(); ++i)
    y[i] = op == Op::Add ? double(a[i]) + b[i] : double(a[i]) / (1.0 + std::exp(-double(a[i]))) * b[i];
  return y;
}

void check(vk::Context& ctx, Op op, uint32_t n, bool in_place, uint32_t seed) {
  SCOPED_TRACE(std::string(op == Op::Add ? "add" : "swiglu") + " n=" + std::to_string(n) + (in_place ? " in place" : ""));
  ops::Elementwise ew(ctx);
  auto a = test::random_floats(n, seed, -8.0f, 8.0f);
  const auto b = test::random_floats(n, seed + 1, -3.0f, 3.0f);
  // Saturated gates: silu(-100) ~ -4e-42 (exp(100) overflows in fp32), silu(100) = 100.
  if (n > 4) a[1] = -100.0f, a[2] = 100.0f, a[3] = -30.0f, a[4] = 0.0f;
  auto a_buf = test::upload(ctx, a);
  auto b_buf = test::upload(ctx, b);
  auto out = in_place ? vk::Buffer() : test::poisoned(ctx, uint64_t(n) * 4);
  const vk::Buffer& result = in_place ? a_buf : out;
  test::run_once(ctx, [&](vk::Recorder& r) {
    if (op == Op::Add) ew.add(r, a_buf.range(), b_buf.range(), result.range(), n);
    else ew.swiglu(r, a_buf.range(), b_buf.range(), result.range(), n);
  });
  // add: one fp32 rounding. swiglu: Vulkan's exp is within 3 + 2|x| ulp (|x| <= 30 here -> ~63
  // ulp ~ 4e-6) plus a division and a product: 1e-5 relative; 1e-30 absolute for denormal tails.
  EXPECT_TRUE(test::all_close(test::download<float>(ctx, result, n), reference(op, a, b), 1e-30,
                              op == Op::Add ? 1e-7 : 1e-5));
}
}  // namespace

TEST_F(GpuTest, ElementwiseAddAndSwiglu) {
  uint32_t seed = 1;
  for (Op op : {Op::Add, Op::Swiglu})
    for (uint32_t n : {1u, 7u, 255u, 257u, 100003u})
      for (bool in_place : {false, true}) check(*ctx, op, n, in_place, seed += 2);
}

TEST_F(GpuTest, ElementwiseBeyondOneGridRow) {
  // 65535 workgroups of 256 cover 16776960 elements; the rest goes through the stride loop.
  check(*ctx, Op::Add, 65535u * 256u + 1001u, false, 77);
}
