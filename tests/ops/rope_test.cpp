// Rope against a double-precision reference: both layouts, positions near 0, 1000 and 30000,
// rot_dim < head_dim (the tail of each head untouched), and one recording replayed with new
// positions written to the step buffer.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/error.hpp"
#include "ops/transformer.hpp"
#include "quant/half.hpp"
#include "support/gpu.hpp"

using namespace moevk;
using moevk::test::GpuTest;

namespace {

struct RopeCase {
  uint32_t n_tokens, n_head, head_dim, rot_dim;
  float freq_base;
  ops::RopeLayout layout;
};

std::vector<double> reference(const std::vector<float>& x, const RopeCase& c, uint32_t n_past) {
  std::vector<double> y(x.begin(), x.end());
  const uint32_t half = c.rot_dim / 2;
  for (uint32_t t = 0; t < c.n_tokens; ++t)
    for (uint32_t h = 0; h < c.n_head; ++h)
      for (uint32_t i = 0; i < half; ++i) {
        const double theta = double(n_past + t) * std::pow(double(c.freq_base), -2.0 * i / c.rot_dim);
        const size_t base = (size_t(t) * c.n_head + h) * c.head_dim;
        const size_t i0 = base + (c.layout == ops::RopeLayout::Neox ? i : 2 * i);
        const size_t i1 = c.layout == ops::RopeLayout::Neox ? i0 + half : i0 + 1;
        const double x0 = x[i0], x1 = x[i1];
        y[i0] = x0 * std::cos(theta) - x1 * std::sin(theta);
        y[i1] = x0 * std::sin(theta) + x1 * std::cos(theta);
      }
  return y;
}

std::string describe(const RopeCase& c, uint32_t n_past) {
  return std::string(c.layout == ops::RopeLayout::Neox ? "neox" : "normal") + " T=" + std::to_string(c.n_tokens) +
         " heads=" + std::to_string(c.n_head) + " head_dim=" + std::to_string(c.head_dim) + " rot=" +
         std::to_string(c.rot_dim) + " base=" + std::to_string(c.freq_base) + " n_past=" + std::to_string(n_past);
}

// Angle error ~5e-7 rad at positions up to 3e4 (exact pos * freq, Cody-Waite reduction, Taylor
// sin/cos) plus fp32 rounding of the rotation: 2e-6 absolute on |x| <= 1. (Plain fp32 angles
// would be off by ~1e-3 rad at 3e4, and this test would catch that.)
constexpr double kAtol = 2e-6;

}  // namespace

TEST_F(GpuTest, RopeMatchesDoubleReference) {
  ops::Rope rope(*ctx);
  const RopeCase cases[] = {
      {1, 1, 64, 64, 10000.0f, ops::RopeLayout::Normal},
      {3, 5, 128, 128, 1000000.0f, ops::RopeLayout::Neox},
      {17, 3, 128, 128, 10000.0f, ops::RopeLayout::Normal},
      {5, 4, 80, 48, 10000.0f, ops::RopeLayout::Neox},   // rot_dim < head_dim
      {3, 2, 96, 32, 500000.0f, ops::RopeLayout::Normal},  // rot_dim < head_dim
      {33, 2, 64, 64, 1000000.0f, ops::RopeLayout::Neox},
      {2, 3, 6, 2, 10000.0f, ops::RopeLayout::Normal},  // one pair per head
  };
  uint32_t seed = 1;
  for (const RopeCase& c : cases) {
    for (uint32_t n_past : {0u, 1000u, 30000u}) {
      SCOPED_TRACE(describe(c, n_past));
      const auto x = test::random_floats(size_t(c.n_tokens) * c.n_head * c.head_dim, seed++);
      auto buf = test::upload(*ctx, x);
      const ops::StepParams step{n_past, c.n_tokens, {}};
      auto step_buf = test::upload(*ctx, std::vector<ops::StepParams>{step});
      test::run_once(*ctx, [&](vk::Recorder& r) {
        rope.record(r, buf.range(), step_buf.range(), c.n_tokens, c.n_head, c.head_dim, c.rot_dim, c.freq_base,
                    c.layout);
      });
      const auto got = test::download<float>(*ctx, buf, x.size());
      EXPECT_TRUE(test::all_close(got, reference(x, c, n_past), kAtol, 0.0));
      // Dims past rot_dim are copied bit for bit (untouched in place).
      for (size_t row = 0; row < size_t(c.n_tokens) * c.n_head; ++row)
        for (uint32_t d = c.rot_dim; d < c.head_dim; ++d) {
          const size_t i = row * c.head_dim + d;
          ASSERT_EQ(std::memcmp(&got[i], &x[i], 4), 0) << "element " << i;
        }
    }
  }
}

TEST_F(GpuTest, RopeReplayReadsPositionsFromTheStepBuffer) {
  ops::Rope rope(*ctx);
  const RopeCase c{3, 2, 64, 64, 10000.0f, ops::RopeLayout::Neox};
  const size_t n = size_t(c.n_tokens) * c.n_head * c.head_dim;
  auto buf = ctx->create_buffer(n * 4, vk::BufferKind::Device, "q");
  auto step_buf = ctx->create_buffer(sizeof(ops::StepParams), vk::BufferKind::Device, "step");
  vk::Recorder rec(*ctx);
  rec.begin();
  rope.record(rec, buf.range(), step_buf.range(), c.n_tokens, c.n_head, c.head_dim, c.rot_dim, c.freq_base, c.layout);
  rec.end();
  uint32_t seed = 50;
  for (uint32_t n_past : {0u, 7u, 29999u, 4u}) {
    SCOPED_TRACE(n_past);
    const auto x = test::random_floats(n, seed++);
    ctx->upload(buf.range(), x.data(), n * 4);
    const ops::StepParams step{n_past, c.n_tokens, {}};
    ctx->upload(step_buf.range(), &step, sizeof(step));
    rec.submit();
    std::vector<float> got(n);
    ctx->download(buf.range(), got.data(), n * 4);
    EXPECT_TRUE(test::all_close(got, reference(x, c, n_past), kAtol, 0.0));
  }
}

TEST_F(GpuTest, RopeRejectsBadRotDim) {
  ops::Rope rope(*ctx);
  auto buf = ctx->create_buffer(4096, vk::BufferKind::Device, "x");
  vk::Recorder rec(*ctx);
  rec.begin();
  EXPECT_THROW(rope.record(rec, buf.range(), buf.range(), 1, 1, 64, 65, 1e4f, ops::RopeLayout::Normal), Error);
  EXPECT_THROW(rope.record(rec, buf.range(), buf.range(), 1, 1, 64, 31, 1e4f, ops::RopeLayout::Neox), Error);
  EXPECT_THROW(rope.record(rec, buf.range(), buf.range(), 1, 1, 64, 0, 1e4f, ops::RopeLayout::Neox), Error);
  rec.end();
}

TEST_F(GpuTest, RopeQkInOneDispatchMatchesReferenceAndPlainRope) {
  // q and k of a step in one dispatch (GQA: fewer k heads; rot_dim < head_dim too): each
  // element as the double reference, and bit for bit what two plain dispatches give.
  ops::Rope rope(*ctx);
  struct QkCase {
    RopeCase q;
    uint32_t n_head_k;
  };
  const QkCase cases[] = {
      {{1, 4, 64, 64, 1000000.0f, ops::RopeLayout::Neox}, 2},
      {{17, 5, 80, 48, 10000.0f, ops::RopeLayout::Normal}, 1},
      {{3, 2, 128, 128, 500000.0f, ops::RopeLayout::Neox}, 2},
  };
  uint32_t seed = 300;
  for (const QkCase& c : cases) {
    for (uint32_t n_past : {0u, 1000u, 30000u}) {
      SCOPED_TRACE(describe(c.q, n_past) + " n_head_k=" + std::to_string(c.n_head_k));
      RopeCase ck = c.q;
      ck.n_head = c.n_head_k;
      const auto q = test::random_floats(size_t(c.q.n_tokens) * c.q.n_head * c.q.head_dim, seed++);
      const auto k = test::random_floats(size_t(c.q.n_tokens) * c.n_head_k * c.q.head_dim, seed++);
      auto qbuf = test::upload(*ctx, q), kbuf = test::upload(*ctx, k);
      auto qplain = test::upload(*ctx, q), kplain = test::upload(*ctx, k);
      const ops::StepParams step{n_past, c.q.n_tokens, {}};
      auto step_buf = test::upload(*ctx, std::vector<ops::StepParams>{step});
      const RopeCase& cq = c.q;
      test::run_once(*ctx, [&](vk::Recorder& r) {
        rope.record_qk(r, qbuf.range(), kbuf.range(), step_buf.range(), cq.n_tokens, cq.n_head, c.n_head_k,
                       cq.head_dim, cq.rot_dim, cq.freq_base, cq.layout);
        EXPECT_EQ(r.dispatch_count(), 1u);
        rope.record(r, qplain.range(), step_buf.range(), cq.n_tokens, cq.n_head, cq.head_dim, cq.rot_dim,
                    cq.freq_base, cq.layout);
        rope.record(r, kplain.range(), step_buf.range(), cq.n_tokens, c.n_head_k, cq.head_dim, cq.rot_dim,
                    cq.freq_base, cq.layout);
      });
      const auto got_q = test::download<float>(*ctx, qbuf, q.size());
      const auto got_k = test::download<float>(*ctx, kbuf, k.size());
      EXPECT_TRUE(test::all_close(got_q, reference(q, cq, n_past), kAtol, 0.0));
      EXPECT_TRUE(test::all_close(got_k, reference(k, ck, n_past), kAtol, 0.0));
      EXPECT_EQ(std::memcmp(got_q.data(), test::download<float>(*ctx, qplain, q.size()).data(), q.size() * 4), 0);
      EXPECT_EQ(std::memcmp(got_k.data(), test::download<float>(*ctx, kplain, k.size()).data(), k.size() * 4), 0);
    }
  }
}

TEST_F(GpuTest, QkNormRopeInOneDispatchMatchesReferenceAndUnfusedPath) {
  // Qwen3's per-head q/k RMS norm fused with RoPE: against norm-then-rotate in double, and
  // against the unfused ops (RmsNorm per head, then record_qk) on the same inputs.
  ops::Rope rope(*ctx);
  ops::RmsNorm norm(*ctx);
  struct Case {
    RopeCase q;
    uint32_t n_head_k;
  };
  const Case cases[] = {
      {{1, 4, 64, 64, 1000000.0f, ops::RopeLayout::Neox}, 2},
      {{3, 4, 128, 128, 1000000.0f, ops::RopeLayout::Neox}, 1},
      {{17, 2, 80, 48, 10000.0f, ops::RopeLayout::Normal}, 2},  // rot_dim < head_dim, not a multiple of WG
      {{2, 3, 256, 256, 500000.0f, ops::RopeLayout::Neox}, 3},  // the largest head_dim
  };
  const float eps = 1e-6f;
  uint32_t seed = 400;
  for (const Case& c : cases) {
    for (uint32_t n_past : {0u, 30000u}) {
      const RopeCase& cq = c.q;
      SCOPED_TRACE(describe(cq, n_past) + " n_head_k=" + std::to_string(c.n_head_k));
      RopeCase ck = cq;
      ck.n_head = c.n_head_k;
      const auto q = test::random_floats(size_t(cq.n_tokens) * cq.n_head * cq.head_dim, seed++);
      const auto k = test::random_floats(size_t(cq.n_tokens) * c.n_head_k * cq.head_dim, seed++);
      const auto qw = test::random_floats(cq.head_dim, seed++, 0.5f, 1.5f);
      const auto kw = test::random_floats(cq.head_dim, seed++, 0.5f, 1.5f);
      auto qbuf = test::upload(*ctx, q), kbuf = test::upload(*ctx, k);
      auto qplain = test::upload(*ctx, q), kplain = test::upload(*ctx, k);
      auto qwbuf = test::upload(*ctx, qw), kwbuf = test::upload(*ctx, kw);
      auto step_buf = test::upload(*ctx, std::vector<ops::StepParams>{{n_past, cq.n_tokens, {}}});
      test::run_once(*ctx, [&](vk::Recorder& r) {
        rope.record_qk_normed(r, qbuf.range(), kbuf.range(), qwbuf.range(), kwbuf.range(), eps, step_buf.range(),
                              cq.n_tokens, cq.n_head, c.n_head_k, cq.head_dim, cq.rot_dim, cq.freq_base, cq.layout);
        EXPECT_EQ(r.dispatch_count(), 1u);
        norm.record(r, qplain.range(), qwbuf.range(), qplain.range(), cq.n_tokens * cq.n_head, cq.head_dim, eps);
        norm.record(r, kplain.range(), kwbuf.range(), kplain.range(), cq.n_tokens * c.n_head_k, cq.head_dim, eps);
        r.barrier();
        rope.record_qk(r, qplain.range(), kplain.range(), step_buf.range(), cq.n_tokens, cq.n_head, c.n_head_k,
                       cq.head_dim, cq.rot_dim, cq.freq_base, cq.layout);
      });
      auto normed = [&](const std::vector<float>& x, const std::vector<float>& w) {
        std::vector<float> out(x.size());  // rounded to f32 as the GPU stores it; the rest in double
        for (size_t row = 0; row < x.size() / cq.head_dim; ++row) {
          double ss = 0;
          for (uint32_t d = 0; d < cq.head_dim; ++d) ss += double(x[row * cq.head_dim + d]) * x[row * cq.head_dim + d];
          const double scale = 1.0 / std::sqrt(ss / cq.head_dim + eps);
          for (uint32_t d = 0; d < cq.head_dim; ++d)
            out[row * cq.head_dim + d] = float(x[row * cq.head_dim + d] * scale * w[d]);
        }
        return out;
      };
      // Normed values reach ~3 (|x| <= 1 over an rms near 0.58, weights up to 1.5): the rotation's
      // 2e-6 bound on |x| <= 1 scaled by 3, plus a few f32 ulps of the norm (2e-6 relative).
      const double atol = 3 * kAtol, rtol = 2e-6;
      const auto got_q = test::download<float>(*ctx, qbuf, q.size());
      const auto got_k = test::download<float>(*ctx, kbuf, k.size());
      EXPECT_TRUE(test::all_close(got_q, reference(normed(q, qw), cq, n_past), atol, rtol));
      EXPECT_TRUE(test::all_close(got_k, reference(normed(k, kw), ck, n_past), atol, rtol));
      // Same f32 operations as the unfused path; only the compiler's contraction may differ.
      const auto plain_q = test::download<float>(*ctx, qplain, q.size());
      const auto plain_k = test::download<float>(*ctx, kplain, k.size());
      EXPECT_TRUE(test::all_close(got_q, std::vector<double>(plain_q.begin(), plain_q.end()), 1e-6, 1e-6));
      EXPECT_TRUE(test::all_close(got_k, std::vector<double>(plain_k.begin(), plain_k.end()), 1e-6, 1e-6));
    }
  }
}

TEST_F(GpuTest, RopeWithKvAppendWritesTheCachesAndQ) {
  // The RoPE dispatch that also appends the step's K (rotated) and V to the F16 caches, with and
  // without Qwen3's q/k norms, both layouts, partial rotation: q against the double reference as
  // above; each cache word at position n_past + t against f16 of the reference row (the f32
  // result is within ~6e-6 of the double one, so f16 rounding may differ by one ulp: 2^-11
  // relative, at most 2e-3 absolute for |v| <= 3); every other word keeps its poison, and
  // positions >= n_ctx are dropped.
  ops::Rope rope(*ctx);
  struct Case {
    RopeCase q;
    uint32_t n_head_k, n_ctx, n_past;
    bool norm;
  };
  const Case cases[] = {
      {{1, 4, 64, 64, 1000000.0f, ops::RopeLayout::Neox}, 2, 40, 7, true},
      {{3, 4, 128, 128, 1000000.0f, ops::RopeLayout::Neox}, 1, 20, 0, false},
      {{17, 2, 80, 48, 10000.0f, ops::RopeLayout::Normal}, 2, 30, 11, false},  // 4 of 17 past n_ctx
      {{2, 3, 256, 256, 500000.0f, ops::RopeLayout::Neox}, 3, 9, 5, true},
  };
  const float eps = 1e-6f;
  const uint32_t kPoison = 0x7E007E00u;  // two f16 NaNs: never a value the kernel writes
  uint32_t seed = 900;
  for (const Case& c : cases) {
    const RopeCase& cq = c.q;
    SCOPED_TRACE(describe(cq, c.n_past) + " n_head_k=" + std::to_string(c.n_head_k) + (c.norm ? " norm" : ""));
    RopeCase ck = cq;
    ck.n_head = c.n_head_k;
    const size_t kv_elems = size_t(cq.n_tokens) * c.n_head_k * cq.head_dim;
    const auto q = test::random_floats(size_t(cq.n_tokens) * cq.n_head * cq.head_dim, seed++);
    const auto k = test::random_floats(kv_elems, seed++);
    const auto v = test::random_floats(kv_elems, seed++);
    const auto qw = test::random_floats(cq.head_dim, seed++, 0.5f, 1.5f);
    const auto kw = test::random_floats(cq.head_dim, seed++, 0.5f, 1.5f);
    auto qbuf = test::upload(*ctx, q), kbuf = test::upload(*ctx, k), vbuf = test::upload(*ctx, v);
    auto qwbuf = test::upload(*ctx, qw), kwbuf = test::upload(*ctx, kw);
    const size_t cache_words = size_t(c.n_head_k) * c.n_ctx * cq.head_dim / 2;
    auto kc = test::upload(*ctx, std::vector<uint32_t>(cache_words, kPoison));
    auto vc = test::upload(*ctx, std::vector<uint32_t>(cache_words, kPoison));
    auto step_buf = test::upload(*ctx, std::vector<ops::StepParams>{{c.n_past, cq.n_tokens, {}}});
    const ops::Rope::QkNorm norms{qwbuf.range(), kwbuf.range(), eps};
    const ops::Rope::KvAppend append{vbuf.range(), kc.range(), vc.range(), c.n_ctx};
    test::run_once(*ctx, [&](vk::Recorder& r) {
      rope.record_qk_append(r, qbuf.range(), kbuf.range(), c.norm ? &norms : nullptr, append, step_buf.range(),
                            cq.n_tokens, cq.n_head, c.n_head_k, cq.head_dim, cq.rot_dim, cq.freq_base, cq.layout);
      EXPECT_EQ(r.dispatch_count(), 1u);
    });
    auto normed = [&](const std::vector<float>& x, const std::vector<float>& w) {
      if (!c.norm) return x;
      std::vector<float> out(x.size());
      for (size_t row = 0; row < x.size() / cq.head_dim; ++row) {
        double ss = 0;
        for (uint32_t d = 0; d < cq.head_dim; ++d) ss += double(x[row * cq.head_dim + d]) * x[row * cq.head_dim + d];
        const double scale = 1.0 / std::sqrt(ss / cq.head_dim + eps);
        for (uint32_t d = 0; d < cq.head_dim; ++d) out[row * cq.head_dim + d] = float(x[row * cq.head_dim + d] * scale * w[d]);
      }
      return out;
    };
    const double atol = 3 * kAtol, rtol = 2e-6;
    EXPECT_TRUE(test::all_close(test::download<float>(*ctx, qbuf, q.size()), reference(normed(q, qw), cq, c.n_past),
                                atol, rtol));
    const std::vector<double> want_k = reference(normed(k, kw), ck, c.n_past);
    const auto got_k = test::download<uint32_t>(*ctx, kc, cache_words);
    const auto got_v = test::download<uint32_t>(*ctx, vc, cache_words);
    const uint32_t half = cq.head_dim / 2;
    size_t bad = 0, written = 0;
    std::string first;
    for (uint32_t h = 0; h < c.n_head_k; ++h)
      for (uint32_t pos = 0; pos < c.n_ctx; ++pos)
        for (uint32_t w = 0; w < half; ++w) {
          const size_t at = (size_t(h) * c.n_ctx + pos) * half + w;
          const bool in_step = pos >= c.n_past && pos - c.n_past < cq.n_tokens;
          for (int which = 0; which < 2; ++which) {
            const uint32_t word = which ? got_v[at] : got_k[at];
            if (!in_step) {
              if (word != kPoison && bad++ == 0) first = "word outside the step written";
              continue;
            }
            ++written;
            const size_t row = (size_t(pos - c.n_past) * c.n_head_k + h) * cq.head_dim + 2 * w;
            for (int lane = 0; lane < 2; ++lane) {
              const double want = which ? double(v[row + lane]) : want_k[row + lane];
              const float got = quant::fp16_to_fp32(uint16_t(word >> (16 * lane)));
              if (!(std::fabs(got - want) <= 2e-3 * std::max(1.0, std::fabs(want))) && bad++ == 0)
                first = std::string(which ? "v" : "k") + " head " + std::to_string(h) + " pos " + std::to_string(pos) +
                        " dim " + std::to_string(2 * w + lane) + ": " + std::to_string(got) + " want " +
                        std::to_string(want);
            }
          }
        }
    EXPECT_EQ(bad, 0u) << first;
    EXPECT_EQ(written, 2 * size_t(c.n_head_k) * std::min(cq.n_tokens, c.n_ctx - c.n_past) * half);
  }
}
