// RmsNorm against a double-precision reference: model-width rows and per-head rows, dims that
// are not multiples of the workgroup, in place and out of place.
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.hpp"
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
