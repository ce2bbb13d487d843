// RmsNorm against a double-precision reference: model-width rows and per-head rows, dims that
// are not multiples of the workgroup, in place and out of place.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/error.hpp"
#include "ops/quantize_q8.hpp"
#include "ops/transformer.hpp"
#include "support/gpu.hpp"

using namespace moevk;
using moevk::test::GpuTest;

namespace {
std::vector<double> reference(const std::vector<float>& x, const std::vector<float>& w, uint32_t rows, uint32_t dim,
                              float eps) {
  std::vector<double> y(x.size());
  for (uint32_t r = 0; r < rows; ++r) {
    double sum_sq = 0;
    for (uint32_t i = 0; i < dim; ++i) sum_sq += double(x[size_t(r) * dim + i]) * x[size_t(r) * dim + i];
    const double scale = 1.0 / std::sqrt(sum_sq / dim + eps);
    for (uint32_t i = 0; i < dim; ++i) y[size_t(r) * dim + i] = x[size_t(r) * dim + i] * scale * w[i];
  }
  return y;
}
}  // namespace

TEST_F(GpuTest, RmsNormMatchesDoubleReference) {
  ops::RmsNorm norm(*ctx);
  uint32_t seed = 1;
  // (rows, dim): per-head shapes (64, 128), odd dims below and above both workgroup sizes.
  const std::pair<uint32_t, uint32_t> shapes[] = {{1, 4096}, {3, 7}, {17, 128}, {33, 200}, {127, 64},
                                                  {5, 4100}, {2, 513}, {40, 1}};
  for (auto [rows, dim] : shapes) {
    for (bool in_place : {false, true}) {
      for (float eps : {1e-5f, 1e-6f}) {
        SCOPED_TRACE("rows=" + std::to_string(rows) + " dim=" + std::to_string(dim) + (in_place ? " in place" : ""));
        // Rows of different scales, including tiny ones where eps matters.
        auto x = test::random_normal(size_t(rows) * dim, seed++);
        for (uint32_t r = 0; r < rows; ++r)
          for (uint32_t i = 0; i < dim; ++i) x[size_t(r) * dim + i] *= std::pow(10.0f, float(int(r % 7) - 4));
        const auto w = test::random_floats(dim, seed++, -2.0f, 2.0f);
        auto x_buf = test::upload(*ctx, x);
        auto w_buf = test::upload(*ctx, w);
        auto out = in_place ? vk::Buffer() : test::poisoned(*ctx, x.size() * 4);
        const vk::Buffer& result = in_place ? x_buf : out;
        test::run_once(*ctx, [&](vk::Recorder& r) {
          norm.record(r, x_buf.range(), w_buf.range(), result.range(), rows, dim, eps);
        });
        // fp32 sum of squares over <= 4100 terms and one inversesqrt (a few ulp): 1e-5 relative.
        EXPECT_TRUE(test::all_close(test::download<float>(*ctx, result, x.size()), reference(x, w, rows, dim, eps),
                                    1e-30, 1e-5));
      }
    }
  }
}

TEST_F(GpuTest, RmsNormRejectsSmallRanges) {
  ops::RmsNorm norm(*ctx);
  auto buf = ctx->create_buffer(256, vk::BufferKind::Device, "x");
  vk::Recorder rec(*ctx);
  rec.begin();
  EXPECT_THROW(norm.record(rec, buf.range(), buf.range(), buf.range(), 2, 64, 1e-5f), Error);
  EXPECT_THROW(norm.record(rec, buf.range(), buf.range(), buf.range(), 1, 0, 1e-5f), Error);
  rec.end();
}

TEST_F(GpuTest, RmsNormMoreRowsThanOneDispatchRow) {
  // 65535 workgroups per grid row: rows past it come from the second grid row.
  ops::RmsNorm norm(*ctx);
  const uint32_t rows = 70001, dim = 3;
  const auto x = test::random_normal(size_t(rows) * dim, 11);
  const auto w = test::random_floats(dim, 12);
  auto x_buf = test::upload(*ctx, x);
  auto w_buf = test::upload(*ctx, w);
  auto out = test::poisoned(*ctx, x.size() * 4);
  test::run_once(*ctx, [&](vk::Recorder& r) { norm.record(r, x_buf.range(), w_buf.range(), out.range(), rows, dim, 1e-6f); });
  EXPECT_TRUE(test::all_close(test::download<float>(*ctx, out, x.size()), reference(x, w, rows, dim, 1e-6f), 1e-30, 1e-5));
}

// rms_norm_q8: the f32 rows exactly as rms_norm writes them, and the int8 activations exactly as
// QuantizeQ8 makes of those rows (both read the same f32 values and apply the same rule; the
// rule itself is quantize_q8_test's). Dims of 1 to 257 blocks of 32 (past the workgroup of 256
// threads, one per block), in place and out of place, every output poisoned first.
TEST_F(GpuTest, RmsNormWithInt8OutputEqualsNormThenQuantize) {
  ops::RmsNorm norm(*ctx);
  const ops::QuantizeQ8 quantize(*ctx);
  uint32_t seed = 50;
  const std::pair<uint32_t, uint32_t> shapes[] = {{1, 2048}, {3, 96}, {17, 4096}, {33, 32}, {5, 4128}, {2, 8224}};
  for (auto [rows, dim] : shapes) {
    for (bool in_place : {false, true}) {
      SCOPED_TRACE("rows=" + std::to_string(rows) + " dim=" + std::to_string(dim) + (in_place ? " in place" : ""));
      auto x = test::random_normal(size_t(rows) * dim, seed++);
      for (uint32_t r = 0; r < rows; ++r)
        for (uint32_t i = 0; i < dim; ++i) x[size_t(r) * dim + i] *= std::pow(10.0f, float(int(r % 5) - 2));
      const auto w = test::random_floats(dim, seed++, -2.0f, 2.0f);
      const uint32_t blocks = rows * dim / 32;
      auto w_buf = test::upload(*ctx, w);
      // Separately: rms_norm, then QuantizeQ8 over its output.
      auto x_plain = test::upload(*ctx, x);
      auto out_plain = test::poisoned(*ctx, x.size() * 4);
      auto xq_plain = test::poisoned(*ctx, uint64_t(blocks) * 32), xd_plain = test::poisoned(*ctx, blocks * 4ull),
           xs_plain = test::poisoned(*ctx, blocks * 4ull);
      test::run_once(*ctx, [&](vk::Recorder& r) {
        norm.record(r, x_plain.range(), w_buf.range(), out_plain.range(), rows, dim, 1e-6f);
        r.barrier();
        quantize.record(r, out_plain.range(), xq_plain.range(), xd_plain.range(), xs_plain.range(), blocks);
      });
      // Fused.
      auto x_buf = test::upload(*ctx, x);
      auto out = in_place ? vk::Buffer() : test::poisoned(*ctx, x.size() * 4);
      const vk::Buffer& result = in_place ? x_buf : out;
      auto xq = test::poisoned(*ctx, uint64_t(blocks) * 32), xd = test::poisoned(*ctx, blocks * 4ull),
           xs = test::poisoned(*ctx, blocks * 4ull);
      const ops::Q8Activations q8{xq.range(), xd.range(), xs.range(), dim, rows};
      test::run_once(*ctx, [&](vk::Recorder& r) {
        norm.record(r, x_buf.range(), w_buf.range(), result.range(), rows, dim, 1e-6f, &q8);
      });
      auto same_bytes = [&](const vk::Buffer& a, const vk::Buffer& b, size_t bytes) {
        const auto va = test::download<uint8_t>(*ctx, a, bytes), vb = test::download<uint8_t>(*ctx, b, bytes);
        return va == vb;
      };
      EXPECT_TRUE(same_bytes(result, out_plain, x.size() * 4)) << "f32 rows";
      EXPECT_TRUE(same_bytes(xq, xq_plain, size_t(blocks) * 32)) << "int8 values";
      EXPECT_TRUE(same_bytes(xd, xd_plain, blocks * 4ull)) << "scales";
      EXPECT_TRUE(same_bytes(xs, xs_plain, blocks * 4ull)) << "scaled sums";
      // And the f32 rows are the norm (so the comparison above is not of two wrong results).
      EXPECT_TRUE(test::all_close(test::download<float>(*ctx, result, x.size()), reference(x, w, rows, dim, 1e-6f),
                                  1e-30, 1e-5));
    }
  }
}

TEST_F(GpuTest, RmsNormWithInt8OutputRejectsOtherShapes) {
  ops::RmsNorm norm(*ctx);
  auto buf = ctx->create_buffer(1 << 16, vk::BufferKind::Device, "x");
  vk::Recorder rec(*ctx);
  rec.begin();
  auto expect_invalid = [&](uint32_t rows, uint32_t dim, const ops::Q8Activations& q8) {
    try {
      norm.record(rec, buf.range(), buf.range(), buf.range(), rows, dim, 1e-5f, &q8);
      ADD_FAILURE() << "accepted rows=" << rows << " dim=" << dim;
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_ARGUMENT) << e.what();
    }
  };
  expect_invalid(2, 48, {buf.range(), buf.range(), buf.range(), 48, 2});                 // 48 % 32 != 0
  expect_invalid(2, 64, {buf.range(), buf.range(), buf.range(), 64, 3});                 // other rows
  expect_invalid(2, 64, {buf.range(0, 64), buf.range(), buf.range(), 64, 2});            // xq too small
  expect_invalid(2, 64, {buf.range(), buf.range(0, 12), buf.range(), 64, 2});            // xd too small
  rec.end();
}
