// Elementwise add and swiglu against double references, odd sizes, in place, and a size past
// one dispatch row of workgroups (grid-stride loop).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "common/error.hpp"
#include "ops/quantize_q8.hpp"
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

// swiglu_q8: the int8 activations swiglu() then QuantizeQ8 give, bit for bit (ragged token
// counts, widths that are a multiple of 32 but not of the workgroup's blocks, saturated gates),
// outputs poisoned; widths that are not a multiple of 32 are refused.
TEST_F(GpuTest, SwigluQ8EqualsSwigluThenQuantize) {
  ops::Elementwise ew(*ctx);
  const ops::QuantizeQ8 quantize(*ctx);
  uint32_t seed = 77;
  for (auto [tokens, cols] : {std::pair<uint32_t, uint32_t>{1, 32}, {3, 96}, {17, 224}, {33, 1408}}) {
    SCOPED_TRACE("tokens=" + std::to_string(tokens) + " cols=" + std::to_string(cols));
    const uint32_t n = tokens * cols, blocks = n / 32;
    auto g = test::random_floats(n, seed++, -8.0f, 8.0f);
    const auto u = test::random_floats(n, seed++, -3.0f, 3.0f);
    g[0] = -100.0f;
    if (n > 40) g[33] = 100.0f, g[34] = 0.0f;
    for (uint32_t i = 64; i < std::min<uint32_t>(n, 96); ++i) g[i] = 0.0f;  // a block of zeros: d = 0
    auto gb = test::upload(*ctx, g), ub = test::upload(*ctx, u);
    auto h = test::poisoned(*ctx, uint64_t(n) * 4);
    auto wq = test::poisoned(*ctx, n), wd = test::poisoned(*ctx, blocks * 4ull), ws = test::poisoned(*ctx, blocks * 4ull);
    auto xq = test::poisoned(*ctx, n), xd = test::poisoned(*ctx, blocks * 4ull), xs = test::poisoned(*ctx, blocks * 4ull);
    test::run_once(*ctx, [&](vk::Recorder& r) {
      ew.swiglu(r, gb.range(), ub.range(), h.range(), n);
      r.barrier();
      quantize.record(r, h.range(), wq.range(), wd.range(), ws.range(), blocks);
      ew.swiglu_q8(r, gb.range(), ub.range(), ops::Q8Activations{xq.range(), xd.range(), xs.range(), cols, tokens});
    });
    EXPECT_EQ(test::download<uint32_t>(*ctx, xq, n / 4), test::download<uint32_t>(*ctx, wq, n / 4)) << "int8 values";
    EXPECT_EQ(test::download<uint32_t>(*ctx, xd, blocks), test::download<uint32_t>(*ctx, wd, blocks)) << "scales";
    EXPECT_EQ(test::download<uint32_t>(*ctx, xs, blocks), test::download<uint32_t>(*ctx, ws, blocks)) << "sums";
  }
  auto buf = ctx->create_buffer(4096, vk::BufferKind::Device, "x");
  vk::Recorder rec(*ctx);
  rec.begin();
  EXPECT_THROW(ew.swiglu_q8(rec, buf.range(), buf.range(), ops::Q8Activations{buf.range(), buf.range(), buf.range(), 48, 2}),
               Error);
  EXPECT_THROW(ew.swiglu_q8(rec, buf.range(), buf.range(), ops::Q8Activations{buf.range(), buf.range(), buf.range(), 64, 64}),
               Error);  // 16 KiB of gate in a 4 KiB buffer
  rec.end();
}
