// Attention: F16 KV cache append, then causal grouped-query attention over the cache.
// Cache layout (per layer, K and V alike): [n_head_kv][n_ctx][head_dim] F16, stored as
// packHalf2x16 words. One KV head's positions are contiguous, so a decode chunk of positions is
// one contiguous block per head and a K/V tile load is fully coalesced.
// Paths, chosen from n_tokens at record time (StepParams.n_past is read on the GPU, so the same
// recording replays at any position):
//   decode  (n_tokens <= kDecodeMaxTokens): flash-decoding. n_chunks = chunks_for(n_ctx)
//           chunks are dispatched, each of the step's chunk length (on the GPU, from n_past:
//           the step's positions over n_chunks, in multiples of kChunkQuantum, so a short
//           history in a long context still fills every chunk it can with kChunkQuantum
//           positions; shaders/attention/decode_chunks.glsl); each workgroup (row tile, kv
//           head, chunk) writes partial (max, sum, accumulator) to scratch; the last live chunk
//           of each (row tile, kv head) to finish folds them into out (the "handoff": an atomic
//           arrival count per tile in the scratch's head), or, with the handoff off or where its
//           weights would not fit in shared memory, a barrier and attention_combine fold them
//           per (token, head).
//           Chunks past the causal length exit at once, so replays cost only the live chunks.
//           With a Prologue the flash pass (attention_flash_rope) also applies the step's q/k
//           norms and RoPE and appends its K/V, so no RoPE dispatch and barrier precede it.
//   prefill: one pass, each workgroup walks its K/V tiles up to the causal limit.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "ops/transformer.hpp"

namespace moevk::ops {

namespace {

constexpr uint32_t kDecodeMaxTokens = 8;
constexpr uint32_t kMaxChunks = 256;    // combine keeps one weight per chunk in shared memory
constexpr uint32_t kChunkQuantum = 64;  // chunk lengths are multiples of this (and of every BC)
constexpr uint32_t kMaxHeadDim = 256;
constexpr uint32_t kStoreWorkgroup = 256;
constexpr uint32_t kCombineWorkgroup = 64;
constexpr uint32_t kMaxGroupsX = 65535;

struct StorePush {
  uint32_t n_tokens, n_head_kv, half_dim, n_ctx;
};
struct FlashPush {
  uint32_t n_tokens, n_head, n_head_kv, n_ctx, chunk_len, split;  // split: 0 prefill, 1 partials, 2 handoff
  float scale;
  uint32_t partial_base;  // words: the partials follow the arrival counters in the scratch
};
struct CombinePush {
  uint32_t n_tokens, n_head, n_ctx, chunk_len, n_chunks;
};
struct FlashProloguePush {
  FlashPush flash;
  uint32_t q_off, k_off, v_off, half_rot, neox;  // offsets in floats inside the qkv binding
  float eps, scale_hi, scale_lo;
};
constexpr uint32_t kMaxNew = kDecodeMaxTokens;  // attention_flash.comp's MAX_NEW

bool is_decode(uint32_t n_tokens) { return n_tokens <= kDecodeMaxTokens; }

// The longest chunk of flash-decoding (a step at n_ctx), which sets how many are dispatched: at
// most kMaxChunks over n_ctx, each a multiple of kChunkQuantum positions (the smallest that
// still amortises the Q load and partial write).
uint32_t chunk_len_for(uint32_t n_ctx) {
  const uint32_t quanta = (n_ctx + kChunkQuantum - 1) / kChunkQuantum;
  return kChunkQuantum * std::max(1u, (quanta + kMaxChunks - 1) / kMaxChunks);
}
uint32_t chunks_for(uint32_t n_ctx) {
  const uint32_t len = chunk_len_for(n_ctx);
  return (n_ctx + len - 1) / len;
}

uint32_t next_pow2(uint32_t v) {
  uint32_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

struct FlashTiles {
  uint32_t wg, br, bc;
};

// attention_flash.comp's shared arrays: q_sh, kv_sh, s_sh, m/l/alpha_sh and the handoff's
// arrival_sh word. The prologue adds this step's K and V rows (F16 pairs) and one float per
// thread (<= 128).
uint64_t flash_shared_bytes(uint32_t d, uint32_t br, uint32_t bc, bool prologue) {
  return 4ull * (uint64_t(br) * d + uint64_t(bc) * (d / 2 + 1) + uint64_t(br) * (bc + 1) + 3ull * br + 1 +
                 (prologue ? 2ull * kMaxNew * (d / 2) + 128 : 0));
}

// Decode: BR covers the (token, group head) rows of one KV head so each K/V tile is read once
// for all of them; BC = 64 positions per tile. Prefill: 32 x 32 tiles. Both shrink until the
// tiles fit the device's shared memory (head_dim 256 on a 32 KiB device).
FlashTiles flash_tiles(const vk::Context& ctx, uint32_t head_dim, uint32_t rows, bool decode, bool prologue) {
  FlashTiles t{128, decode ? std::min(next_pow2(rows), 32u) : 32u, decode ? 64u : 32u};
  const uint64_t limit = std::max(ctx.caps().max_shared_memory, 16384u);
  while (flash_shared_bytes(head_dim, t.br, t.bc, prologue) > limit && t.bc > 16) t.bc /= 2;
  while (flash_shared_bytes(head_dim, t.br, t.bc, prologue) > limit && t.br > 1) t.br /= 2;
  if (t.br * t.bc <= 64) t.wg = 64;  // one KV head, one token: 64 scores per tile
  return t;
}

uint64_t partial_bytes(const KvShape& s, uint32_t n_tokens) {
  return uint64_t(chunks_for(s.n_ctx)) * n_tokens * s.n_head * (s.head_dim + 2) * 4;
}

// The handoff's arrival counters, one per (row tile, kv head): at most n_tokens * group row
// tiles (tiles hold at least one row) per kv head, so kDecodeMaxTokens * n_head words serve every
// decode batch at the same place; a multiple of 256 bytes keeps the partials' binding aligned.
uint64_t counter_bytes(const KvShape& s) { return (uint64_t(kDecodeMaxTokens) * s.n_head * 4 + 255) / 256 * 256; }

void check_shape(const KvShape& s, uint32_t n_tokens) {
  require(s.head_dim >= 2 && s.head_dim <= kMaxHeadDim && s.head_dim % 2 == 0, MOEVK_ERROR_UNSUPPORTED,
          "attention: head_dim " + std::to_string(s.head_dim) + " unsupported (even, 2.." +
              std::to_string(kMaxHeadDim) + ")");
  require(s.n_head_kv > 0 && s.n_head > 0 && s.n_head % s.n_head_kv == 0, MOEVK_ERROR_INVALID_ARGUMENT,
          "attention: n_head must be a positive multiple of n_head_kv");
  require(s.n_ctx > 0 && n_tokens > 0 && n_tokens <= s.n_ctx, MOEVK_ERROR_INVALID_ARGUMENT,
          "attention: need 0 < n_tokens <= n_ctx");
}

}  // namespace

Attention::Attention(vk::Context& ctx) : ctx_(ctx) {}

bool Attention::writes_q8(const KvShape& s, uint32_t n_tokens) { return !is_decode(n_tokens) && s.head_dim % 32 == 0; }

bool Attention::takes_prologue(uint32_t n_tokens, const vk::BufferRange& q, const vk::BufferRange& k_new,
                               const vk::BufferRange& v_new) const {
  return is_decode(n_tokens) && q.buffer == k_new.buffer && q.buffer == v_new.buffer && q.offset % 4 == 0 &&
         k_new.offset % 4 == 0 && v_new.offset % 4 == 0;
}

uint64_t Attention::cache_bytes(const KvShape& s) {
  return uint64_t(s.n_head_kv) * s.n_ctx * s.head_dim * 2;
}

uint64_t Attention::scratch_bytes(const KvShape& s, uint32_t n_tokens) {
  // Prefill needs none; a minimal size keeps the binding valid.
  return is_decode(n_tokens) ? counter_bytes(s) + partial_bytes(s, n_tokens) : 16;
}

uint64_t Attention::scratch_counter_bytes(const KvShape& s) { return counter_bytes(s); }

void Attention::clear_counters(vk::Context& ctx, const KvShape& s, const vk::BufferRange& scratch) {
  const uint64_t bytes = counter_bytes(s);
  if (scratch.size < bytes) return;  // a prefill-only scratch: no decode step uses it
  const std::vector<uint8_t> zeros(bytes, 0);
  ctx.upload({scratch.buffer, scratch.offset, bytes}, zeros.data(), zeros.size());
}

bool Attention::hands_off_combine(const KvShape& s, uint32_t n_tokens, bool prologue) const {
  if (!combine_handoff_ || !is_decode(n_tokens)) return false;
  // combine_tile keeps each row's per-chunk (m, l) in the K/V tile: 2 * BR * n_chunks words.
  const FlashTiles t = flash_tiles(ctx_, s.head_dim, n_tokens * (s.n_head / std::max(s.n_head_kv, 1u)), true, prologue);
  return 2ull * t.br * chunks_for(s.n_ctx) <= uint64_t(t.bc) * (s.head_dim / 2 + 1);
}

void Attention::record(vk::Recorder& rec, const KvShape& s, uint32_t n_tokens, const vk::BufferRange& step,
                       const vk::BufferRange& q, const vk::BufferRange& k_new, const vk::BufferRange& v_new,
                       const vk::BufferRange& k_cache, const vk::BufferRange& v_cache,
                       const vk::BufferRange& scratch, const vk::BufferRange& out, float scale,
                       bool kv_appended, const Prologue* prologue, const Q8Activations* out_q8) const {
  check_shape(s, n_tokens);
  require(!out_q8 || writes_q8(s, n_tokens), MOEVK_ERROR_INTERNAL,
          "attention: int8 output is for prefill steps with head_dim a multiple of 32");
  if (out_q8) {
    const uint64_t blocks = uint64_t(n_tokens) * s.n_head * s.head_dim / 32;
    require(out_q8->cols == s.n_head * s.head_dim && out_q8->n_tokens >= n_tokens && out_q8->xq.size >= blocks * 32 &&
                out_q8->xd.size >= blocks * 4 && out_q8->xs.size >= blocks * 4,
            MOEVK_ERROR_INVALID_ARGUMENT, "attention: int8 output buffers too small");
  }
  require(!prologue || (takes_prologue(n_tokens, q, k_new, v_new) && !kv_appended), MOEVK_ERROR_INTERNAL,
          "attention: a prologue needs a decode batch with q, k and v in one buffer, and appends K/V itself");
  const uint64_t q_bytes = uint64_t(n_tokens) * s.n_head * s.head_dim * 4;
  const uint64_t kv_new_bytes = uint64_t(n_tokens) * s.n_head_kv * s.head_dim * 4;
  require(step.size >= sizeof(StepParams), MOEVK_ERROR_INVALID_ARGUMENT, "attention: step buffer too small");
  require(q.size >= q_bytes && out.size >= q_bytes, MOEVK_ERROR_INVALID_ARGUMENT, "attention: q/out too small");
  require(k_new.size >= kv_new_bytes && v_new.size >= kv_new_bytes, MOEVK_ERROR_INVALID_ARGUMENT,
          "attention: k_new/v_new too small");
  require(k_cache.size >= cache_bytes(s) && v_cache.size >= cache_bytes(s), MOEVK_ERROR_INVALID_ARGUMENT,
          "attention: KV cache too small");
  const bool decode = is_decode(n_tokens);
  require(!decode || scratch.size >= scratch_bytes(s, n_tokens), MOEVK_ERROR_INVALID_ARGUMENT,
          "attention: scratch too small (see scratch_bytes)");

  // 1. Append this step's K/V at positions n_past + t (unless the RoPE pass did, or the
  //    prologue will).
  if (!kv_appended && !prologue) {
    const uint32_t half_dim = s.head_dim / 2;
    const uint64_t words = uint64_t(n_tokens) * s.n_head_kv * half_dim;
    const vk::Pipeline& store = ctx_.pipeline({"attention_kv_store", 5, sizeof(StorePush), {kStoreWorkgroup}});
    const uint32_t store_groups =
        uint32_t(std::min<uint64_t>((words + kStoreWorkgroup - 1) / kStoreWorkgroup, kMaxGroupsX));
    rec.dispatch(store, {step, k_new, v_new, k_cache, v_cache}, StorePush{n_tokens, s.n_head_kv, half_dim, s.n_ctx},
                 store_groups);
    rec.barrier();
  }

  // 2. Attention.
  const uint32_t group = s.n_head / s.n_head_kv;
  const uint32_t rows = n_tokens * group;
  const FlashTiles t = flash_tiles(ctx_, s.head_dim, rows, decode, prologue != nullptr);
  const vk::Pipeline& flash = ctx_.pipeline(
      {"attention_flash", 9, sizeof(FlashPush), {t.wg, s.head_dim, t.br, t.bc, out_q8 ? 1u : 0u}});
  const uint32_t row_tiles = (rows + t.br - 1) / t.br;
  require(row_tiles <= kMaxGroupsX && s.n_head_kv <= kMaxGroupsX, MOEVK_ERROR_UNSUPPORTED,
          "attention: too many rows for one dispatch");
  if (!decode) {
    // The partials binding is unused here; `out` stands in so no scratch is needed, and for the
    // int8 outputs when there are none.
    rec.dispatch(flash,
                 {step, q, k_cache, v_cache, out, out, out_q8 ? out_q8->xq : out, out_q8 ? out_q8->xd : out,
                  out_q8 ? out_q8->xs : out},
                 FlashPush{n_tokens, s.n_head, s.n_head_kv, s.n_ctx, s.n_ctx, 0, scale, 0}, row_tiles, s.n_head_kv, 1);
    return;
  }
  // The shaders take the quantum and compute each step's chunk length from it.
  const uint32_t chunk_len = kChunkQuantum, n_chunks = chunks_for(s.n_ctx);
  const bool handoff = hands_off_combine(s, n_tokens, prologue != nullptr);
  const uint64_t counters = counter_bytes(s);
  const FlashPush flash_push{n_tokens, s.n_head,      s.n_head_kv, s.n_ctx, chunk_len, handoff ? 2u : 1u,
                             scale,    uint32_t(counters / 4)};
  if (prologue) {
    const Prologue& p = *prologue;
    require(p.rot_dim > 0 && p.rot_dim % 2 == 0 && p.rot_dim <= s.head_dim, MOEVK_ERROR_INVALID_ARGUMENT,
            "attention: rot_dim must be even and in 1..head_dim");
    require(std::isfinite(p.freq_base) && p.freq_base > 0.0f, MOEVK_ERROR_INVALID_ARGUMENT,
            "attention: freq_base must be positive");
    require((p.q_norm == nullptr) == (p.k_norm == nullptr), MOEVK_ERROR_INVALID_ARGUMENT,
            "attention: q and k norms come together");
    require(!p.q_norm || (p.q_norm->size >= s.head_dim * 4ull && p.k_norm->size >= s.head_dim * 4ull),
            MOEVK_ERROR_INVALID_ARGUMENT, "attention: q/k norm weights shorter than head_dim");
    // One binding over q, k and v, starting at an aligned offset; each at a float offset in it.
    const uint64_t align = std::max<uint64_t>(ctx_.caps().min_storage_buffer_offset_alignment, 4);
    const uint64_t lo = std::min({q.offset, k_new.offset, v_new.offset}) / align * align;
    const uint64_t hi = std::max({q.offset + q_bytes, k_new.offset + kv_new_bytes, v_new.offset + kv_new_bytes});
    require(hi - lo <= ctx_.caps().max_storage_buffer_range && (hi - lo) / 4 < (1ull << 32), MOEVK_ERROR_UNSUPPORTED,
            "attention: q, k and v span more than one storage binding");
    const vk::BufferRange qkv{q.buffer, lo, hi - lo};
    float scale_hi, scale_lo;
    Rope::frequency_scale(p.freq_base, p.rot_dim, scale_hi, scale_lo);
    const FlashProloguePush push{flash_push,
                                 static_cast<uint32_t>((q.offset - lo) / 4),
                                 static_cast<uint32_t>((k_new.offset - lo) / 4),
                                 static_cast<uint32_t>((v_new.offset - lo) / 4),
                                 p.rot_dim / 2,
                                 p.layout == RopeLayout::Neox ? 1u : 0u,
                                 p.eps,
                                 scale_hi,
                                 scale_lo};
    const vk::Pipeline& pipeline = ctx_.pipeline({"attention_flash_rope", 8, sizeof(FlashProloguePush),
                                                  {t.wg, s.head_dim, t.br, t.bc, p.q_norm ? 1u : 0u}});
    // Without norms their bindings are never read: the step buffer stands in.
    rec.dispatch(pipeline,
                 {step, qkv, k_cache, v_cache, p.q_norm ? *p.q_norm : step, scratch, p.k_norm ? *p.k_norm : step, out},
                 push, row_tiles, s.n_head_kv, n_chunks);
  } else {
    rec.dispatch(flash, {step, q, k_cache, v_cache, out, scratch, out, out, out}, flash_push, row_tiles, s.n_head_kv,
                 n_chunks);
  }
  if (handoff) return;
  rec.barrier();
  const vk::Pipeline& combine =
      ctx_.pipeline({"attention_combine", 3, sizeof(CombinePush), {kCombineWorkgroup, s.head_dim, kMaxChunks}});
  const vk::BufferRange partials{scratch.buffer, scratch.offset + counters, scratch.size - counters};
  rec.dispatch(combine, {step, partials, out}, CombinePush{n_tokens, s.n_head, s.n_ctx, chunk_len, n_chunks},
               n_tokens * s.n_head);
}

}  // namespace moevk::ops
