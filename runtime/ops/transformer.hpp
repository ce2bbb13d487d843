// The non-MoE transformer ops. All activations f32 row-major.
#pragma once
#include "ops/quantize_q8.hpp"
#include "ops/tensor.hpp"
#include "vk/recorder.hpp"

namespace moevk::ops {

// out[r][i] = x[r][i] / sqrt(mean_i(x[r]^2) + eps) * weight[i]; n_rows rows of dim. In place ok.
// Also the per-head q/k norm of Qwen3 (rows = n_tokens * n_head, dim = head_dim).
class RmsNorm {
 public:
  explicit RmsNorm(vk::Context& ctx);
  // q8: also write the normed rows as int8 activations there (exactly QuantizeQ8's output for
  // `out`; its cols == dim, a multiple of 32, and n_tokens == n_rows), so products on the
  // integer-dot path need no quantization pass of their own.
  void record(vk::Recorder& rec, const vk::BufferRange& x, const vk::BufferRange& weight,
              const vk::BufferRange& out, uint32_t n_rows, uint32_t dim, float eps,
              const Q8Activations* q8 = nullptr) const;
 private:
  vk::Context& ctx_;
};

enum class RopeLayout {
  Normal,  // llama/Mixtral as GGUF stores it: rotate adjacent pairs (2i, 2i+1)
  Neox,    // qwen2moe/qwen3moe: rotate (i, i + rot_dim/2)
};

// In place on x: [n_tokens][n_head][head_dim]; token t has position step.n_past + t.
// theta_i = pos * freq_base^(-2i/rot_dim) for the first rot_dim dims of each head.
class Rope {
 public:
  explicit Rope(vk::Context& ctx);
  void record(vk::Recorder& rec, const vk::BufferRange& x, const vk::BufferRange& step,
              uint32_t n_tokens, uint32_t n_head, uint32_t head_dim, uint32_t rot_dim,
              float freq_base, RopeLayout layout) const;
  // q [n_tokens][n_head][head_dim] and k [n_tokens][n_head_k][head_dim] in one dispatch, each
  // element computed exactly as record() would.
  void record_qk(vk::Recorder& rec, const vk::BufferRange& q, const vk::BufferRange& k, const vk::BufferRange& step,
                 uint32_t n_tokens, uint32_t n_head, uint32_t n_head_k, uint32_t head_dim, uint32_t rot_dim,
                 float freq_base, RopeLayout layout) const;
  // Qwen3: RMS norm of each head of q and k (weights q_weight, k_weight: [head_dim]) and then
  // their RoPE, in one dispatch (head_dim <= kMaxNormedHeadDim); the same arithmetic as
  // RmsNorm per head followed by record_qk, up to f32 contraction.
  static constexpr uint32_t kMaxNormedHeadDim = 256;
  void record_qk_normed(vk::Recorder& rec, const vk::BufferRange& q, const vk::BufferRange& k,
                        const vk::BufferRange& q_weight, const vk::BufferRange& k_weight, float eps,
                        const vk::BufferRange& step, uint32_t n_tokens, uint32_t n_head, uint32_t n_head_k,
                        uint32_t head_dim, uint32_t rot_dim, float freq_base, RopeLayout layout) const;

  // The per-head norms (optional: null for architectures without them) and RoPE of q and k as
  // above, and the step's K (rotated) and V appended to one layer's F16 caches in the same
  // dispatch, as Attention's own store would (Attention::record with kv_appended then skips it).
  // head_dim <= kMaxNormedHeadDim; k is left unrotated (only the cache gets the rotated rows).
  struct QkNorm {
    vk::BufferRange q_weight, k_weight;
    float eps = 0.0f;
  };
  struct KvAppend {
    vk::BufferRange v, k_cache, v_cache;  // v: [n_tokens][n_head_k][head_dim] f32
    uint32_t n_ctx = 0;
  };
  void record_qk_append(vk::Recorder& rec, const vk::BufferRange& q, const vk::BufferRange& k, const QkNorm* norm,
                        const KvAppend& append, const vk::BufferRange& step, uint32_t n_tokens, uint32_t n_head,
                        uint32_t n_head_k, uint32_t head_dim, uint32_t rot_dim, float freq_base,
                        RopeLayout layout) const;
  // freq_base^(-2/rot_dim) as a double-float (hi, lo): the shaders power it per pair.
  static void frequency_scale(float freq_base, uint32_t rot_dim, float& hi, float& lo);
 private:
  vk::Context& ctx_;
};

// The F16 KV cache of one layer and the attention over it.
// Cache layout (K and V alike): [n_head_kv][n_ctx][head_dim] F16 (packHalf2x16 words, head_dim
// even, <= 256): one KV head's positions are contiguous, so decode streams them in coalesced
// tiles. Scratch (decode, n_tokens <= 8 only; prefill needs none): flash-decoding partials,
// n_chunks (<= 256, fixed by n_ctx) x n_tokens x n_head x (head_dim + 2) f32.
struct KvShape {
  uint32_t n_ctx = 0, n_head = 0, n_head_kv = 0, head_dim = 0;
};

class Attention {
 public:
  explicit Attention(vk::Context& ctx);
  // Bytes of one layer's K (and, separately, V) cache for n_ctx positions (F16).
  static uint64_t cache_bytes(const KvShape& s);
  // Decode scratch: scratch_counter_bytes(s) of arrival counters (the combine handoff's; zero
  // before the first replay of a recording, and every dispatch leaves them zero, so a scratch
  // zeroed once when it is allocated serves every batch size), then the per-chunk partials.
  static uint64_t scratch_bytes(const KvShape& s, uint32_t n_tokens);
  static uint64_t scratch_counter_bytes(const KvShape& s);
  // Zeroes the scratch's counters (a transfer that waits; nothing where the scratch is a
  // prefill's, too small to hold them): once, after allocating it.
  static void clear_counters(vk::Context& ctx, const KvShape& s, const vk::BufferRange& scratch);
  // Decode: whether the last chunk's workgroup folds the partials itself (one dispatch, no
  // combine pass and barrier): on unless set_combine_handoff(false), where the per-chunk
  // weights fit its shared memory.
  bool hands_off_combine(const KvShape& s, uint32_t n_tokens, bool prologue) const;
  void set_combine_handoff(bool on) { combine_handoff_ = on; }
  // Writes k_new/v_new ([n_tokens][n_head_kv][head_dim] f32) into the caches at positions
  // step.n_past + t (converted to F16); then for each token t and head h:
  //   out[t][h] = softmax_j(q[t][h] . K[j][h / group] * scale) V[j][h / group]
  // over j <= step.n_past + t (causal, grouped-query: group = n_head / n_head_kv).
  // q: [n_tokens][n_head][head_dim]; out: [n_tokens][n_head][head_dim].
  // Decode (few tokens) splits the KV length across workgroups; prefill is tiled.
  // Decode with the step's RoPE (and Qwen3's per-head q/k norms) and its KV append done by the
  // attention dispatch itself (shaders/attention/attention_flash.comp, PROLOGUE): no RoPE
  // dispatch and barrier before it. q, k_new, v_new are then the raw projections, ranges of one
  // VkBuffer; the caches get this step's K (normed, rotated) and V as Rope::record_qk_append
  // would store them; q, k_new and v_new are left as they were.
  struct Prologue {
    const vk::BufferRange* q_norm = nullptr;  // both or neither: f32 [head_dim]
    const vk::BufferRange* k_norm = nullptr;
    float eps = 0.0f;
    uint32_t rot_dim = 0;  // even, <= head_dim
    float freq_base = 10000.0f;
    RopeLayout layout = RopeLayout::Normal;
  };
  // Whether record() takes a Prologue for this step: a decode batch, and q, k_new, v_new in
  // one buffer at 4-byte offsets.
  bool takes_prologue(uint32_t n_tokens, const vk::BufferRange& q, const vk::BufferRange& k_new,
                      const vk::BufferRange& v_new) const;
  void record(vk::Recorder& rec, const KvShape& s, uint32_t n_tokens, const vk::BufferRange& step,
              const vk::BufferRange& q, const vk::BufferRange& k_new, const vk::BufferRange& v_new,
              const vk::BufferRange& k_cache, const vk::BufferRange& v_cache,
              const vk::BufferRange& scratch, const vk::BufferRange& out, float scale,
              bool kv_appended = false, const Prologue* prologue = nullptr,
              const Q8Activations* out_q8 = nullptr) const;
  // Whether record() can write the output as int8 activations too (out_q8: [n_tokens][n_head *
  // head_dim], quantize_q8's rule on the same f32 values), for the output projection's integer
  // dot product: prefill steps with head_dim a multiple of 32. No quantization pass, no barrier.
  static bool writes_q8(const KvShape& s, uint32_t n_tokens);
  // kv_appended: this step's K/V are in the caches already (Rope::record_qk_append): no store
  // pass (k_new, v_new are not read). Not with a prologue (which appends them itself).
 private:
  vk::Context& ctx_;
  bool combine_handoff_ = true;
};

// out[t][:] = dequantized row token_ids[t] of the table (any matmul weight type); ids out of
// range write zeros (the host validates ids before they get here).
class Embedding {
 public:
  // max_weight_binding_bytes: largest table binding; a bigger table is gathered in row chunks
  // (0: the device's maxStorageBufferRange; tests set it small).
  explicit Embedding(vk::Context& ctx, uint64_t max_weight_binding_bytes = 0);
  void record(vk::Recorder& rec, const Matrix& table, const vk::BufferRange& token_ids,
              const vk::BufferRange& out, uint32_t n_tokens) const;
 private:
  vk::Context& ctx_;
  uint64_t max_weight_binding_bytes_ = 0;
};

// Element-wise: out = a + b; out = silu(gate) * up.
class Elementwise {
 public:
  explicit Elementwise(vk::Context& ctx);
  void add(vk::Recorder& rec, const vk::BufferRange& a, const vk::BufferRange& b,
           const vk::BufferRange& out, uint32_t n) const;
  void swiglu(vk::Recorder& rec, const vk::BufferRange& gate, const vk::BufferRange& up,
              const vk::BufferRange& out, uint32_t n) const;
  // silu(gate) * up as the int8 activations of the product that reads it (out: [n_tokens][cols],
  // cols % 32 == 0), the values swiglu() and then QuantizeQ8 would give, in one pass: no f32
  // output, no quantization pass and no barrier between them.
  void swiglu_q8(vk::Recorder& rec, const vk::BufferRange& gate, const vk::BufferRange& up,
                 const Q8Activations& out) const;
 private:
  vk::Context& ctx_;
};

// ids[r] = argmax over logits[r][0..n_cols) (lowest index wins ties; a NaN counts as -inf, so a
// row of only NaN gives 0); u32.
// ids[r] = argmax of logits row r (lowest index on ties, NaN as -inf). Given a scratch, rows of
// a vocabulary's size (at least kSplitMinCols columns, up to kMaxSplitRows rows) are split over
// slices of ~kSliceCols columns, one workgroup each, the last to finish folding the slices
// (argmax.comp's split): one workgroup alone would scan Qwen's 152k logits serially.
class Argmax {
 public:
  static constexpr uint32_t kSplitMinCols = 4096, kSliceCols = 2048, kMaxSlices = 256;
  static constexpr uint64_t kCounterBytes = 256;  // one counter per row at the scratch's head
  static constexpr uint32_t kMaxSplitRows = kCounterBytes / 4;
  explicit Argmax(vk::Context& ctx, bool allow_split = true);
  // scratch: scratch_bytes(n_rows, n_cols) or more, its counters zeroed once (clear_counters);
  // every dispatch leaves them zero. Without it (or split off) one workgroup per row.
  void record(vk::Recorder& rec, const vk::BufferRange& logits, const vk::BufferRange& ids,
              uint32_t n_rows, uint32_t n_cols, const vk::BufferRange* scratch = nullptr) const;
  // Workgroups per row record() uses (1: unsplit).
  uint32_t slices(uint32_t n_rows, uint32_t n_cols, bool has_scratch) const;
  static uint64_t scratch_bytes(uint32_t n_rows, uint32_t n_cols);
  static void clear_counters(vk::Context& ctx, const vk::BufferRange& scratch);
 private:
  vk::Context& ctx_;
  bool allow_split_;
};

}  // namespace moevk::ops
