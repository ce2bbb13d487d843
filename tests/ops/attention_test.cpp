// Attention: F16 KV cache append + causal grouped-query attention (prefill and flash-decoding),
// against a double reference over the cache rounded to F16 exactly as the GPU stores it. Each case
// replays ONE recording per batch size at new positions (only the step buffer changes).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>

#include "common/error.hpp"
#include "ops/quantize_q8.hpp"
#include "ops/transformer.hpp"
#include "quant/half.hpp"
#include "support/gpu.hpp"

using namespace moevk;
using moevk::test::GpuTest;

namespace {

struct Step {
  uint32_t n_past, n_tokens;
};

// Host model of the cache: [n_head_kv][n_ctx][head_dim] halves, like the GPU layout.
struct HostCache {
  ops::KvShape s;
  std::vector<uint16_t> k, v;
  uint32_t filled = 0;
  explicit HostCache(const ops::KvShape& shape)
      : s(shape), k(size_t(shape.n_head_kv) * shape.n_ctx * shape.head_dim), v(k.size()) {}
  size_t at(uint32_t hk, uint32_t pos, uint32_t d) const { return (size_t(hk) * s.n_ctx + pos) * s.head_dim + d; }
};

// out[t][h][d] in double over the F16-rounded cache, positions j <= n_past + t.
std::vector<double> reference(const HostCache& c, const std::vector<float>& q, uint32_t n_past, uint32_t n_tokens,
                              float scale) {
  const ops::KvShape& s = c.s;
  const uint32_t group = s.n_head / s.n_head_kv, D = s.head_dim;
  std::vector<double> out(size_t(n_tokens) * s.n_head * D, 0.0);
  for (uint32_t t = 0; t < n_tokens; ++t)
    for (uint32_t h = 0; h < s.n_head; ++h) {
      const uint32_t hk = h / group, len = n_past + t + 1;
      const float* qrow = &q[(size_t(t) * s.n_head + h) * D];
      std::vector<double> score(len);
      double mx = -1e300;
      for (uint32_t j = 0; j < len; ++j) {
        double dot = 0;
        for (uint32_t d = 0; d < D; ++d) dot += double(qrow[d]) * quant::fp16_to_fp32(c.k[c.at(hk, j, d)]);
        score[j] = dot * double(scale);
        mx = std::max(mx, score[j]);
      }
      double sum = 0;
      for (double& x : score) sum += (x = std::exp(x - mx));
      double* o = &out[(size_t(t) * s.n_head + h) * D];
      for (uint32_t j = 0; j < len; ++j)
        for (uint32_t d = 0; d < D; ++d) o[d] += score[j] / sum * quant::fp16_to_fp32(c.v[c.at(hk, j, d)]);
    }
  return out;
}

// handoff: decode steps fold the chunks in the flash dispatch's last workgroup (where that
// applies, which the caller checks), else in attention_combine after a barrier.
// int8_out: prefill steps also write the output as int8 activations (Attention::writes_q8),
// checked against QuantizeQ8 run on the f32 output the same step wrote: bit for bit.
// history: positions [0, history) are in the cache before the first step (F16 of random normals,
// uploaded as if earlier steps had written them: prefilling thousands of positions would take
// the CPU driver minutes).
void run_steps_on(vk::Context& ctx, const ops::KvShape& s, const std::vector<Step>& steps, uint32_t seed, bool handoff,
                  bool int8_out = false, uint32_t history = 0) {
  SCOPED_TRACE("head_dim=" + std::to_string(s.head_dim) + " n_head=" + std::to_string(s.n_head) + "/" +
               std::to_string(s.n_head_kv) + " n_ctx=" + std::to_string(s.n_ctx) +
               (handoff ? " combine handoff" : " combine pass") + (int8_out ? ", int8 output" : ""));
  uint32_t max_tokens = 0;
  uint64_t scratch_bytes = 4;
  for (const Step& st : steps) {
    max_tokens = std::max(max_tokens, st.n_tokens);
    scratch_bytes = std::max(scratch_bytes, ops::Attention::scratch_bytes(s, st.n_tokens));
  }
  const uint32_t D = s.head_dim;
  const uint64_t q_bytes = uint64_t(max_tokens) * s.n_head * D * 4;
  const uint64_t kv_bytes = uint64_t(max_tokens) * s.n_head_kv * D * 4;
  const uint64_t cache_bytes = ops::Attention::cache_bytes(s);
  ASSERT_EQ(cache_bytes, uint64_t(s.n_head_kv) * s.n_ctx * D * 2);
  // The caches start as poison (half NaNs among them): positions not yet written must never be
  // read, since the runtime does not clear the cache between sessions.
  vk::Buffer k_cache = test::poisoned(ctx, cache_bytes, "K cache"), v_cache = test::poisoned(ctx, cache_bytes, "V cache");
  vk::Buffer q = test::poisoned(ctx, q_bytes, "q"), out = test::poisoned(ctx, q_bytes, "attention out");
  vk::Buffer k_new = test::poisoned(ctx, kv_bytes, "k_new"), v_new = test::poisoned(ctx, kv_bytes, "v_new");
  // Poisoned but for the handoff's arrival counters, which must start at zero (and are checked
  // to be zero again after every step).
  vk::Buffer scratch = test::poisoned(ctx, scratch_bytes, "attention scratch");
  ops::Attention::clear_counters(ctx, s, scratch.range());
  const std::vector<uint32_t> zero_counters(ops::Attention::scratch_counter_bytes(s) / 4, 0);
  vk::Buffer step = test::poisoned(ctx, sizeof(ops::StepParams), "step");
  const std::vector<uint32_t> poison(q_bytes / 4, test::kPoison);
  const float scale = 1.0f / std::sqrt(float(D));

  // The int8 output and, from the f32 output, QuantizeQ8's: [tokens][n_head * D] in 32-blocks.
  const uint64_t n_blocks_max = q_bytes / 4 / 32;
  vk::Buffer xq = test::poisoned(ctx, n_blocks_max * 32), xd = test::poisoned(ctx, n_blocks_max * 4),
             xs = test::poisoned(ctx, n_blocks_max * 4);
  vk::Buffer wq = test::poisoned(ctx, n_blocks_max * 32), wd = test::poisoned(ctx, n_blocks_max * 4),
             ws = test::poisoned(ctx, n_blocks_max * 4);
  const ops::QuantizeQ8 quantize(ctx);

  ops::Attention op(ctx);
  op.set_combine_handoff(handoff);
  std::map<uint32_t, std::unique_ptr<vk::Recorder>> recordings;  // one per batch size, replayed
  HostCache host(s);
  if (history > 0) {
    std::vector<uint16_t> k_all = test::download<uint16_t>(ctx, k_cache, host.k.size());
    std::vector<uint16_t> v_all = test::download<uint16_t>(ctx, v_cache, host.v.size());
    const auto k_rand = test::random_normal(host.k.size(), seed++), v_rand = test::random_normal(host.v.size(), seed++);
    for (uint32_t hk = 0; hk < s.n_head_kv; ++hk)
      for (uint32_t pos = 0; pos < history; ++pos)
        for (uint32_t d = 0; d < D; ++d) {
          const size_t i = host.at(hk, pos, d);
          host.k[i] = k_all[i] = quant::fp32_to_fp16(k_rand[i]);
          host.v[i] = v_all[i] = quant::fp32_to_fp16(v_rand[i]);
        }
    ctx.upload(k_cache.range(), k_all.data(), cache_bytes);
    ctx.upload(v_cache.range(), v_all.data(), cache_bytes);
    host.filled = history;
  }
  for (const Step& st : steps) {
    SCOPED_TRACE("n_past=" + std::to_string(st.n_past) + " n_tokens=" + std::to_string(st.n_tokens));
    ASSERT_EQ(st.n_past, host.filled);
    const uint32_t n = st.n_tokens;
    // q scaled up so the softmax is far from uniform (scores ~ N(0, 4)).
    const auto qv = test::random_normal(size_t(n) * s.n_head * D, seed++, 2.0f);
    const auto kv = test::random_normal(size_t(n) * s.n_head_kv * D, seed++);
    const auto vv = test::random_normal(size_t(n) * s.n_head_kv * D, seed++);
    ctx.upload(q.range(), qv.data(), qv.size() * 4);
    ctx.upload(k_new.range(), kv.data(), kv.size() * 4);
    ctx.upload(v_new.range(), vv.data(), vv.size() * 4);
    ctx.upload(out.range(), poison.data(), q_bytes);
    const ops::StepParams params{st.n_past, n, {}};
    ctx.upload(step.range(), &params, sizeof params);

    const bool q8 = int8_out && ops::Attention::writes_q8(s, n);
    const uint64_t n_blocks = uint64_t(n) * s.n_head * D / 32;
    const ops::Q8Activations out_q8{xq.range(0, n_blocks * 32), xd.range(0, n_blocks * 4), xs.range(0, n_blocks * 4),
                                    s.n_head * D, n};
    if (q8) {
      ctx.upload(xq.range(), poison.data(), n_blocks_max * 32);
      ctx.upload(xd.range(), poison.data(), n_blocks_max * 4);
      ctx.upload(xs.range(), poison.data(), n_blocks_max * 4);
    }
    auto& rec = recordings[n];
    if (!rec) {
      rec = std::make_unique<vk::Recorder>(ctx);
      rec->begin();
      op.record(*rec, s, n, step.range(), q.range(), k_new.range(), v_new.range(), k_cache.range(), v_cache.range(),
                scratch.range(), out.range(), scale, false, nullptr, q8 ? &out_q8 : nullptr);
      rec->end();
    }
    rec->submit();
    if (q8) {
      test::run_once(ctx, [&](vk::Recorder& r) {
        quantize.record(r, out.range(), wq.range(), wd.range(), ws.range(), uint32_t(n_blocks));
      });
      EXPECT_EQ(test::download<uint32_t>(ctx, xq, n_blocks * 8), test::download<uint32_t>(ctx, wq, n_blocks * 8))
          << "int8 values";
      EXPECT_EQ(test::download<uint32_t>(ctx, xd, n_blocks), test::download<uint32_t>(ctx, wd, n_blocks)) << "scales";
      EXPECT_EQ(test::download<uint32_t>(ctx, xs, n_blocks), test::download<uint32_t>(ctx, ws, n_blocks)) << "sums";
      // Nothing written past the step's blocks.
      const auto tail = test::download<uint32_t>(ctx, xd, n_blocks_max);
      for (uint64_t b = n_blocks; b < n_blocks_max; ++b) ASSERT_EQ(tail[b], test::kPoison) << "block " << b;
    }

    for (uint32_t t = 0; t < n; ++t)
      for (uint32_t hk = 0; hk < s.n_head_kv; ++hk)
        for (uint32_t d = 0; d < D; ++d) {
          const size_t src = (size_t(t) * s.n_head_kv + hk) * D + d;
          host.k[host.at(hk, st.n_past + t, d)] = quant::fp32_to_fp16(kv[src]);
          host.v[host.at(hk, st.n_past + t, d)] = quant::fp32_to_fp16(vv[src]);
        }
    host.filled += n;

    // Cache: written positions hold exactly the F16 (round to nearest even) of k_new/v_new, the
    // rest is still the poison (nothing written out of place).
    const auto k_got = test::download<uint16_t>(ctx, k_cache, host.k.size());
    const auto v_got = test::download<uint16_t>(ctx, v_cache, host.v.size());
    size_t cache_mismatches = 0;
    for (uint32_t hk = 0; hk < s.n_head_kv; ++hk)
      for (uint32_t pos = 0; pos < s.n_ctx; ++pos)
        for (uint32_t d = 0; d < D; ++d) {
          const size_t i = host.at(hk, pos, d);
          const uint16_t poison_half = uint16_t(i % 2 ? test::kPoison >> 16 : test::kPoison & 0xffff);
          const uint16_t want_k = pos < host.filled ? host.k[i] : poison_half;
          const uint16_t want_v = pos < host.filled ? host.v[i] : poison_half;
          if (k_got[i] != want_k || v_got[i] != want_v) {
            if (cache_mismatches++ < 5)
              ADD_FAILURE() << "cache hk=" << hk << " pos=" << pos << " d=" << d << " got k=" << k_got[i]
                            << " v=" << v_got[i] << " want k=" << want_k << " v=" << want_v;
          }
        }
    EXPECT_EQ(cache_mismatches, 0u);

    // f32 accumulation (dots of <= 128 terms, sums over <= 150 positions) and the GPU's exp
    // (allowed error 3 + 2|x| ulp) against double: observed <= 3e-6 on outputs of magnitude ~1;
    // 1e-5 + 1e-5 * |want| leaves a 3x margin, while a wrong position or weight is off by ~1e-2.
    const auto want = reference(host, qv, st.n_past, n, scale);
    EXPECT_TRUE(test::all_close(test::download<float>(ctx, out, want.size()), want, 1e-5, 1e-5));
    EXPECT_EQ(test::download<uint32_t>(ctx, scratch, zero_counters.size()), zero_counters) << "arrival counters";
  }
}

void run_steps(vk::Context& ctx, const ops::KvShape& s, const std::vector<Step>& steps, uint32_t seed,
               uint32_t history = 0) {
  run_steps_on(ctx, s, steps, seed, true, false, history);
  run_steps_on(ctx, s, steps, seed, false, false, history);
}

}  // namespace

// Prefill of 17, decode steps replaying one recording, a second prefill chunk after earlier
// tokens (n_past > 0), multi-token decode, and a decode crossing chunk boundaries.
const std::vector<Step> kSteps = {{0, 17}, {17, 1}, {18, 1}, {19, 1},  {20, 33},
                                  {53, 3}, {56, 3}, {59, 1}, {60, 17}, {77, 1}};

// Prefill steps write the output projection's int8 activations too (head_dim 32, 64, 128; the
// decode steps of the same sequences do not).
TEST_F(GpuTest, AttentionPrefillWritesInt8Activations) {
  run_steps_on(*ctx, {64, 8, 8, 32}, {{0, 17}, {17, 1}, {18, 33}}, 210, true, true);
  run_steps_on(*ctx, {48, 16, 4, 64}, {{0, 9}, {9, 2}, {11, 20}}, 310, true, true);
  run_steps_on(*ctx, {64, 8, 2, 128}, {{0, 33}, {33, 1}, {34, 19}}, 410, true, true);
  EXPECT_FALSE(ops::Attention::writes_q8({90, 4, 2, 16}, 17));  // head_dim 16: not in 32-blocks
  EXPECT_FALSE(ops::Attention::writes_q8({90, 8, 8, 32}, 1));   // decode
}

TEST_F(GpuTest, AttentionHeadDim16Gqa4x2) { run_steps(*ctx, {90, 4, 2, 16}, kSteps, 100); }
TEST_F(GpuTest, AttentionHeadDim32NoGrouping) { run_steps(*ctx, {90, 8, 8, 32}, kSteps, 200); }
TEST_F(GpuTest, AttentionHeadDim64Gqa32x8) { run_steps(*ctx, {80, 32, 8, 64}, kSteps, 300); }
TEST_F(GpuTest, AttentionHeadDim128Gqa32x4) {
  run_steps(*ctx, {78, 32, 4, 128}, {{0, 33}, {33, 1}, {34, 1}, {35, 17}, {52, 3}, {55, 3}, {58, 1}, {59, 17}, {76, 1}, {77, 1}},
            400);
}

// The widest head the op takes (tiles shrink to fit 32 KiB of shared memory) and a head_dim that
// is not a power of two.
TEST_F(GpuTest, AttentionHeadDim256AndOddSizedHeads) {
  run_steps(*ctx, {70, 4, 1, 256}, {{0, 17}, {17, 1}, {18, 9}, {27, 2}}, 600);
  run_steps(*ctx, {70, 6, 3, 48}, {{0, 33}, {33, 1}, {34, 17}, {51, 1}}, 700);
}

// A long context: 157 chunks dispatched (of up to 128 positions, at these short histories of 64:
// decode_chunks.glsl), most of them past the causal limit (early exit), a decode step that
// crosses a chunk boundary and a batch of 8 (the largest decode batch).
// The combine handoff keeps 2 * BR * n_chunks per-chunk weights in shared memory: at 157 chunks
// a Qwen3-like head (128 wide, 8 heads a KV head) takes it for one token, not for eight (the
// combine pass then), and a 16-wide head not at all.
TEST_F(GpuTest, AttentionLongContextChunksSkipped) {
  const ops::KvShape narrow{20000, 4, 2, 16}, qwen3_like{20000, 8, 1, 128};
  const ops::Attention op(*ctx);
  EXPECT_FALSE(op.hands_off_combine(narrow, 1, false));
  EXPECT_TRUE(op.hands_off_combine(qwen3_like, 1, false));
  EXPECT_FALSE(op.hands_off_combine(qwen3_like, 8, false));
  run_steps(*ctx, narrow, {{0, 127}, {127, 1}, {128, 1}, {129, 8}, {137, 9}, {146, 1}}, 500);
  run_steps(*ctx, qwen3_like, {{0, 127}, {127, 1}, {128, 1}, {129, 8}, {137, 1}}, 510);
}

// Deep in a context of more than 256 chunks of 64 positions (n_ctx 16448: 129 chunks dispatched,
// of up to 128 positions): each step's chunk length follows its n_past (decode_chunks.glsl), so
// one recording replays with 64-position chunks at 8251 positions (all 129 live) and 128 from
// 8259 on (65 live). The combine handoff takes the Qwen3-like head's one-token steps, the pass
// its 8-token ones.
TEST_F(GpuTest, AttentionDecodeChunksFollowTheStep) {
  const ops::KvShape narrow{16448, 4, 2, 16}, qwen3_like{16448, 8, 1, 128};
  const ops::Attention op(*ctx);
  EXPECT_TRUE(op.hands_off_combine(qwen3_like, 1, false));
  EXPECT_FALSE(op.hands_off_combine(qwen3_like, 8, false));
  const std::vector<Step> steps = {{8250, 1}, {8251, 8}, {8259, 1}, {8260, 3}};
  run_steps(*ctx, narrow, steps, 530, 8250);
  run_steps(*ctx, qwen3_like, steps, 540, 8250);
}

// Every shape above takes the handoff for its one-token decode steps (the default path).
TEST_F(GpuTest, AttentionCombineHandoffIsTheDefaultDecodePath) {
  const ops::Attention op(*ctx);
  for (const ops::KvShape& s : std::vector<ops::KvShape>{
           {90, 4, 2, 16}, {90, 8, 8, 32}, {80, 32, 8, 64}, {78, 32, 4, 128}, {70, 4, 1, 256}, {70, 6, 3, 48}}) {
    EXPECT_TRUE(op.hands_off_combine(s, 1, false)) << s.head_dim;
    EXPECT_TRUE(op.hands_off_combine(s, 1, true)) << s.head_dim;
  }
  ops::Attention off(*ctx);
  off.set_combine_handoff(false);
  EXPECT_FALSE(off.hands_off_combine({90, 4, 2, 16}, 1, false));
  EXPECT_FALSE(op.hands_off_combine({90, 4, 2, 16}, 9, false));  // prefill
}

TEST_F(GpuTest, AttentionRejectsBadShapes) {
  ops::Attention op(*ctx);
  vk::Buffer b = test::poisoned(*ctx, 1 << 16);
  vk::Recorder rec(*ctx);
  rec.begin();
  auto call = [&](const ops::KvShape& s, uint32_t n) {
    op.record(rec, s, n, b.range(), b.range(), b.range(), b.range(), b.range(), b.range(), b.range(), b.range(), 1.0f);
  };
  EXPECT_THROW(call({16, 4, 2, 15}, 1), Error);   // odd head_dim
  EXPECT_THROW(call({16, 4, 2, 512}, 1), Error);  // head_dim too large
  EXPECT_THROW(call({16, 6, 4, 16}, 1), Error);   // n_head not a multiple of n_head_kv
  EXPECT_THROW(call({16, 4, 2, 16}, 17), Error);  // more tokens than the context
  EXPECT_THROW(call({4096, 32, 8, 128}, 1), Error);  // buffers too small
  rec.end();
}
