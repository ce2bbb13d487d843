// Attention with its decode prologue (attention_flash_rope: the step's q/k norms, RoPE and K/V
// append inside the attention dispatch) against the two dispatches it replaces
// (Rope::record_qk_append, then Attention::record with kv_appended), step by step on the same
// inputs, each path with its own poisoned caches and outputs. Prefill chunks take the two-dispatch
// path on both sides (the prologue is decode-only), so the decode steps see a filled cache.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <tuple>

#include "common/error.hpp"
#include "ops/transformer.hpp"
#include "quant/half.hpp"
#include "support/gpu.hpp"

using namespace moevk;
using moevk::test::GpuTest;

namespace {

struct Step {
  uint32_t n_past, n_tokens;
};

struct Case {
  ops::KvShape s;
  uint32_t rot_dim;
  ops::RopeLayout layout;
  bool norm;
  std::vector<Step> steps;
  // Positions [0, history) in both paths' caches before the first step (F16 of random normals,
  // uploaded: prefilling thousands here would take the CPU driver minutes).
  uint32_t history = 0;
};

// Halves a and b within one unit in the last place of each other (F16 bit patterns: adjacent
// values of one sign differ by 1; +0 and -0 count as equal).
bool within_one_half_ulp(uint16_t a, uint16_t b) {
  if ((a & 0x7FFF) == 0 && (b & 0x7FFF) == 0) return true;
  if ((a ^ b) & 0x8000) return false;
  return (a > b ? a - b : b - a) <= 1;
}

void run_case(vk::Context& ctx, const Case& c, uint32_t seed) {
  const ops::KvShape& s = c.s;
  SCOPED_TRACE("head_dim=" + std::to_string(s.head_dim) + " n_head=" + std::to_string(s.n_head) + "/" +
               std::to_string(s.n_head_kv) + " rot_dim=" + std::to_string(c.rot_dim) +
               " neox=" + std::to_string(c.layout == ops::RopeLayout::Neox) + " norm=" + std::to_string(c.norm));
  const uint32_t D = s.head_dim;
  uint32_t max_tokens = 0;
  uint64_t scratch_bytes = 16;
  for (const Step& st : c.steps) {
    max_tokens = std::max(max_tokens, st.n_tokens);
    scratch_bytes = std::max(scratch_bytes, ops::Attention::scratch_bytes(s, st.n_tokens));
  }
  const uint64_t q_bytes = uint64_t(max_tokens) * s.n_head * D * 4, kv_bytes = uint64_t(max_tokens) * s.n_head_kv * D * 4;
  // The prologue's side: q, k, v as ranges of one buffer (at 256-aligned offsets, as the
  // runtime lays them out); the plain side: three buffers.
  const uint64_t k_at = (q_bytes + 255) / 256 * 256, v_at = k_at + (kv_bytes + 255) / 256 * 256;
  vk::Buffer qkv = test::poisoned(ctx, v_at + kv_bytes, "qkv");
  const vk::BufferRange fq = qkv.range(0, q_bytes), fk = qkv.range(k_at, kv_bytes), fv = qkv.range(v_at, kv_bytes);
  vk::Buffer pq = test::poisoned(ctx, q_bytes, "q"), pk = test::poisoned(ctx, kv_bytes, "k"),
             pv = test::poisoned(ctx, kv_bytes, "v");
  const uint64_t cache_bytes = ops::Attention::cache_bytes(s);
  vk::Buffer fk_cache = test::poisoned(ctx, cache_bytes), fv_cache = test::poisoned(ctx, cache_bytes);
  vk::Buffer pk_cache = test::poisoned(ctx, cache_bytes), pv_cache = test::poisoned(ctx, cache_bytes);
  vk::Buffer f_out = test::poisoned(ctx, q_bytes), p_out = test::poisoned(ctx, q_bytes);
  vk::Buffer f_scratch = test::poisoned(ctx, scratch_bytes), p_scratch = test::poisoned(ctx, scratch_bytes);
  for (vk::Buffer* b : {&f_scratch, &p_scratch}) ops::Attention::clear_counters(ctx, s, b->range());  // start at zero
  vk::Buffer step = test::poisoned(ctx, sizeof(ops::StepParams), "step");
  const auto qw = test::random_floats(D, seed++, 0.5f, 1.5f), kw = test::random_floats(D, seed++, 0.5f, 1.5f);
  vk::Buffer q_norm = test::upload(ctx, qw, "q norm"), k_norm = test::upload(ctx, kw, "k norm");
  const vk::BufferRange q_norm_range = q_norm.range(), k_norm_range = k_norm.range();
  const ops::Rope::QkNorm norms{q_norm_range, k_norm_range, 1e-6f};
  const float freq_base = 10000.0f, scale = 1.0f / std::sqrt(float(D));
  const std::vector<uint32_t> poison(q_bytes / 4, test::kPoison);

  ops::Attention op(ctx);
  ops::Rope rope(ctx);
  ops::Attention::Prologue prologue;
  prologue.q_norm = c.norm ? &q_norm_range : nullptr;
  prologue.k_norm = c.norm ? &k_norm_range : nullptr;
  prologue.eps = 1e-6f;
  prologue.rot_dim = c.rot_dim;
  prologue.freq_base = freq_base;
  prologue.layout = c.layout;
  // The two-dispatch path on (q, k, v, caches, out, scratch).
  auto plain = [&](vk::Recorder& r, uint32_t n, const vk::BufferRange& q, const vk::BufferRange& k,
                   const vk::BufferRange& v, vk::Buffer& kc, vk::Buffer& vc, vk::Buffer& out, vk::Buffer& scratch) {
    const ops::Rope::KvAppend append{v, kc.range(), vc.range(), s.n_ctx};
    rope.record_qk_append(r, q, k, c.norm ? &norms : nullptr, append, step.range(), n, s.n_head, s.n_head_kv, D,
                          c.rot_dim, freq_base, c.layout);
    r.barrier();
    op.record(r, s, n, step.range(), q, k, v, kc.range(), vc.range(), scratch.range(), out.range(), scale, true);
  };
  std::map<std::pair<uint32_t, bool>, std::unique_ptr<vk::Recorder>> recordings;  // (n, prologue side)
  auto replay = [&](uint32_t n, bool prologue_side, const std::function<void(vk::Recorder&)>& body) {
    auto& rec = recordings[{n, prologue_side}];
    if (!rec) {
      rec = std::make_unique<vk::Recorder>(ctx);
      rec->begin();
      body(*rec);
      rec->end();
    }
    rec->submit();
  };

  if (c.history > 0) {
    std::vector<uint16_t> halves = test::download<uint16_t>(ctx, fk_cache, cache_bytes / 2);
    const auto values = test::random_normal(halves.size(), seed++);
    for (uint32_t hk = 0; hk < s.n_head_kv; ++hk)
      for (uint32_t pos = 0; pos < c.history; ++pos)
        for (uint32_t d = 0; d < D; ++d) {
          const size_t i = (size_t(hk) * s.n_ctx + pos) * D + d;
          halves[i] = quant::fp32_to_fp16(values[i]);
        }
    for (vk::Buffer* b : {&fk_cache, &fv_cache, &pk_cache, &pv_cache}) ctx.upload(b->range(), halves.data(), cache_bytes);
  }
  uint32_t filled = c.history;
  for (const Step& st : c.steps) {
    SCOPED_TRACE("n_past=" + std::to_string(st.n_past) + " n_tokens=" + std::to_string(st.n_tokens));
    ASSERT_EQ(st.n_past, filled);
    const uint32_t n = st.n_tokens;
    const auto qv = test::random_normal(size_t(n) * s.n_head * D, seed++, 2.0f);
    const auto kv = test::random_normal(size_t(n) * s.n_head_kv * D, seed++);
    const auto vv = test::random_normal(size_t(n) * s.n_head_kv * D, seed++);
    for (const auto& [range, values] : {std::pair{fq, &qv}, {fk, &kv}, {fv, &vv}, {pq.range(), &qv},
                                        {pk.range(), &kv}, {pv.range(), &vv}})
      ctx.upload(range, values->data(), values->size() * 4);
    ctx.upload(f_out.range(), poison.data(), q_bytes);
    ctx.upload(p_out.range(), poison.data(), q_bytes);
    const ops::StepParams params{st.n_past, n, {}};
    ctx.upload(step.range(), &params, sizeof params);

    const bool decode = op.takes_prologue(n, fq, fk, fv);
    EXPECT_EQ(decode, n <= 8);
    replay(n, true, [&](vk::Recorder& r) {
      if (decode) {
        op.record(r, s, n, step.range(), fq, fk, fv, fk_cache.range(), fv_cache.range(), f_scratch.range(),
                  f_out.range(), scale, false, &prologue);
        // Attention, and its combine unless the last chunk's workgroup folds: nothing before them.
        EXPECT_EQ(r.dispatch_count(), op.hands_off_combine(s, n, true) ? 1u : 2u);
      } else {
        plain(r, n, fq, fk, fv, fk_cache, fv_cache, f_out, f_scratch);
      }
    });
    replay(n, false, [&](vk::Recorder& r) { plain(r, n, pq.range(), pk.range(), pv.range(), pk_cache, pv_cache, p_out, p_scratch); });
    filled += n;

    if (decode) {  // the prologue leaves its inputs as they were
      EXPECT_EQ(test::download<float>(ctx, qkv, qv.size()), qv);
      std::vector<float> k_after(kv.size()), v_after(vv.size());
      ctx.download(fk, k_after.data(), kv.size() * 4);
      ctx.download(fv, v_after.data(), vv.size() * 4);
      EXPECT_EQ(k_after, kv);
      EXPECT_EQ(v_after, vv);
    }
    // Caches: every written half within one F16 ulp of the plain path's (the norm's sum of
    // squares is added in another order, so a value on a rounding boundary may round the other
    // way; measured: most steps identical), and unwritten positions still the poison on both.
    for (auto [got_buf, want_buf, what] : {std::tuple{&fk_cache, &pk_cache, "K"}, {&fv_cache, &pv_cache, "V"}}) {
      const auto got = test::download<uint16_t>(ctx, *got_buf, cache_bytes / 2);
      const auto want = test::download<uint16_t>(ctx, *want_buf, cache_bytes / 2);
      size_t bad = 0;
      for (uint32_t hk = 0; hk < s.n_head_kv; ++hk)
        for (uint32_t pos = 0; pos < s.n_ctx; ++pos)
          for (uint32_t d = 0; d < D; ++d) {
            const size_t i = (size_t(hk) * s.n_ctx + pos) * D + d;
            const uint16_t poison_half = uint16_t(i % 2 ? test::kPoison >> 16 : test::kPoison & 0xffff);
            const bool ok = pos < filled ? within_one_half_ulp(got[i], want[i]) : got[i] == poison_half && want[i] == poison_half;
            if (!ok && bad++ < 5)
              ADD_FAILURE() << what << " cache hk=" << hk << " pos=" << pos << " d=" << d << " got " << got[i]
                            << " want " << want[i];
          }
      EXPECT_EQ(bad, 0u) << what;
    }
    // Outputs: a K element one F16 ulp (2^-11 relative) apart moves a score by at most
    // |q_d| |k_d| 2^-11 (~1e-3 at |q| ~ 2 sqrt(D) scaled), and an output by the weight change
    // times |v| ~ 1; 2e-3 absolute + relative bounds a few such flips per row, while a wrong
    // position, rotation or norm moves outputs by ~1e-1.
    const auto got = test::download<float>(ctx, f_out, size_t(n) * s.n_head * D);
    const auto want = test::download<float>(ctx, p_out, got.size());
    EXPECT_TRUE(test::all_close(got, want, 2e-3, 2e-3));
  }
}

}  // namespace

// Qwen3-like: NeoX RoPE over the whole head, q/k norms, 8 query heads per KV head so an 8-token
// batch spans two row tiles, decode steps before, across (61..63 | 64) and after a 64-position
// chunk boundary, one recording per batch size replayed at new positions.
TEST_F(GpuTest, AttentionPrologueQwen3Like) {
  run_case(*ctx, {{200, 16, 2, 128}, 128, ops::RopeLayout::Neox, true,
                  {{0, 60}, {60, 1}, {61, 3}, {64, 1}, {65, 8}, {73, 1}, {74, 8}}},
           100);
}

// Mixtral-like: adjacent-pair RoPE, no q/k norms.
TEST_F(GpuTest, AttentionPrologueNormalRopeWithoutNorms) {
  run_case(*ctx, {{100, 8, 2, 64}, 64, ops::RopeLayout::Normal, false, {{0, 17}, {17, 1}, {18, 2}, {20, 1}, {21, 1}}},
           200);
}

// Partial rotation (dims past rot_dim only normed), an odd head count per group, the widest head.
TEST_F(GpuTest, AttentionProloguePartialRotationAndWideHeads) {
  run_case(*ctx, {{90, 6, 3, 48}, 32, ops::RopeLayout::Neox, true, {{0, 9}, {9, 1}, {10, 4}, {14, 1}}}, 300);
  run_case(*ctx, {{70, 4, 1, 256}, 256, ops::RopeLayout::Normal, true, {{0, 17}, {17, 1}, {18, 8}}}, 400);
}

// Deep in a context of more than 256 chunks of 64 positions (n_ctx 16448, 129 chunks): the
// chunk holding the step's new positions follows the step's chunk length (64 positions at 8251,
// 128 from 8259 on), as the plain path's chunks do.
TEST_F(GpuTest, AttentionPrologueChunksFollowTheStep) {
  run_case(*ctx, {{16448, 4, 2, 16}, 16, ops::RopeLayout::Neox, true, {{8250, 1}, {8251, 8}, {8259, 1}}, 8250}, 500);
}

TEST_F(GpuTest, AttentionPrologueNeedsOneBufferAndADecodeBatch) {
  ops::Attention op(*ctx);
  vk::Buffer a = test::poisoned(*ctx, 1 << 16), b = test::poisoned(*ctx, 1 << 16);
  EXPECT_TRUE(op.takes_prologue(1, a.range(0, 256), a.range(256, 256), a.range(512, 256)));
  EXPECT_FALSE(op.takes_prologue(9, a.range(0, 256), a.range(256, 256), a.range(512, 256)));  // prefill
  EXPECT_FALSE(op.takes_prologue(1, a.range(0, 256), b.range(256, 256), a.range(512, 256)));  // two buffers
  vk::Recorder rec(*ctx);
  rec.begin();
  ops::Attention::Prologue p;
  p.rot_dim = 16;
  const ops::KvShape s{16, 4, 2, 16};
  EXPECT_THROW(op.record(rec, s, 1, a.range(), a.range(0, 256), b.range(0, 128), a.range(512, 128), a.range(),
                         a.range(), a.range(), a.range(), 1.0f, false, &p),
               Error);
  p.rot_dim = 15;  // odd
  EXPECT_THROW(op.record(rec, s, 1, a.range(), a.range(0, 256), a.range(256, 128), a.range(512, 128), b.range(),
                         b.range(), b.range(), b.range(), 1.0f, false, &p),
               Error);
  rec.end();
}
