// The pieces every architecture's forward pass is made of (attention block, dense FFN, MoE FFN
// with optional shared expert), recorded against one session's buffers. Each architecture file
// (llama.cpp, qwen2moe.cpp, qwen3moe.cpp) says in a few lines which pieces its layers use and
// how (rope layout, biases, q/k norms, router normalisation); the builder knows the buffers.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "models/decode_kernels.hpp"
#include "models/profile_stage.hpp"
#include "models/weights.hpp"
#include "ops/expert_histogram.hpp"
#include "ops/matmul.hpp"
#include "ops/moe.hpp"
#include "ops/transformer.hpp"

namespace moevk::models {

struct AttentionStyle {
  ops::RopeLayout rope = ops::RopeLayout::Normal;
  bool qkv_bias = false;  // add attn_{q,k,v}.bias (when the file has them)
  bool qk_norm = false;   // RMSNorm each head of q and k before RoPE (Qwen3)
};

struct MoeStyle {
  ops::Gating gating = ops::Gating::Softmax;
  bool renormalize = true;     // top-k weights renormalised to sum 1
  bool shared_expert = false;  // add the (optionally sigmoid-gated) shared expert
};

// Device buffers of one session, sized for n_batch tokens and n_ctx positions.
struct Activations {
  // [n_batch][n_embd]: the residual stream, updated in place: each block's last product adds
  // into it (MatMul / MoeExperts accumulate, SharedExpertCombine), so no separate add pass.
  vk::Buffer residual;
  vk::Buffer normed;       // [n_batch][n_embd]
  // normed as int8 activations (the norm pass writes both where integer-dot products read
  // them): xq [n_batch][n_embd] int8, then xd and xs per 32 values; devices with dot only.
  vk::Buffer normed_q8;
  // Ranges of normed_q8 for n_batch rows of max(n_embd, n_embd_q) columns: the normed rows for
  // the products after a norm, and the attention output for the output projection.
  vk::BufferRange normed_xq, normed_xd, normed_xs;
  vk::Buffer qkv;          // q, k, v below
  vk::BufferRange q, k, v; // [n_batch][heads][head_dim] each, ranges of qkv
  vk::Buffer attn;         // [n_batch][n_head][head_dim]
  vk::Buffer ffn_gate_up;                   // ffn_gate, ffn_up below
  vk::BufferRange ffn_gate, ffn_up;         // [n_batch][max FFN width] each, ranges of ffn_gate_up
  vk::Buffer ffn_hidden;                    // [n_batch][max FFN width]
  vk::Buffer shared_out;   // [n_batch][n_embd]
  vk::Buffer shared_gate;  // [n_batch] logits of the shared expert's sigmoid gate
  vk::Buffer expert_ids, expert_weights;  // [n_batch][k]
  vk::Buffer router_scratch, experts_scratch, attn_scratch;
  std::vector<vk::Buffer> k_cache, v_cache;  // per layer
  vk::Buffer step;         // ops::StepParams
  vk::Buffer expert_counts;  // [n_layer][n_expert] u32, when expert stats are on

  uint64_t kv_cache_bytes() const;
  uint64_t device_bytes() const;  // every buffer above, KV caches included
};

class LayerBuilder {
 public:
  LayerBuilder(vk::Context& ctx, const HParams& hp, const Weights& weights, uint32_t n_batch, uint32_t n_ctx,
               bool expert_stats, const DecodeKernelShapes& decode_kernels = {});

  const HParams& hp() const { return hp_; }
  const Activations& buffers() const { return act_; }
  uint32_t n_ctx() const { return n_ctx_; }

  // The residual stream: token embeddings go here first; it holds the hidden state after the layers.
  vk::BufferRange residual() const { return act_.residual.range(); }

  // x += Wo · attention(rope(norm(x) Wq,k,v)) over the KV cache.
  void attention(vk::Recorder& rec, uint32_t layer, uint32_t n_tokens, const AttentionStyle& style);
  // x += Wdown · (silu(Wgate norm(x)) * Wup norm(x))
  void dense_ffn(vk::Recorder& rec, uint32_t layer, uint32_t n_tokens);
  // x += sum_k w_k expert_k(norm(x)) (+ gated shared expert)
  void moe_ffn(vk::Recorder& rec, uint32_t layer, uint32_t n_tokens, const MoeStyle& style);

  // With profiling on, mark() writes a timestamp tagged `ended`: the stage of the work recorded
  // since the previous mark. Off (the default) it records nothing, so a recording differs only
  // by its timestamps.
  void set_profile(bool on) { profile_ = on; }
  bool profile() const { return profile_; }
  void mark(vk::Recorder& rec, Stage ended) const {
    if (profile_) rec.timestamp(static_cast<uint32_t>(ended));
  }
  static constexpr uint32_t kMarksPerLayer = 4;  // attention start/end, FFN start/end

  // Decode-sized steps let the products norm their own input (no norm pass, no barrier). On by
  // default; off records the separate norm everywhere (tests compare the two).
  void set_fuse_norms(bool on) { fuse_norms_ = on; }
  bool fuse_norms() const { return fuse_norms_; }
  // The step's K/V appended to the cache by the RoPE dispatch (on by default; off: Attention's
  // own store pass). Tests compare the two.
  void set_fuse_kv_append(bool on) { fuse_kv_append_ = on; }
  void set_fuse_rope_attention(bool on) { fuse_rope_attention_ = on; }
  // Products of one input (q/k/v, gate/up) in one dispatch where they can (on by default).
  void set_merge_products(bool on) { matmul_.set_merge_products(on); }
  // Prefill: the norm pass also writes the int8 activations the integer-dot products read (no
  // quantization pass and barrier of theirs). On by default; off for comparisons.
  void set_quantize_in_norm(bool on) { quantize_in_norm_ = on; }
  void set_router_handoff(bool on) { router_.set_handoff(on); }
  void set_attention_handoff(bool on) { attention_.set_combine_handoff(on); }

  const ops::MatMul& matmul() const { return matmul_; }
  const ops::RmsNorm& rms_norm() const { return rms_norm_; }

 private:
  // The input of a block's first products: the residual stream x with `norm` set (fuse), or
  // the normed buffer after a norm pass and a barrier; with `q8` also as int8 activations.
  struct BlockInput {
    vk::BufferRange x;
    std::optional<ops::InputNorm> norm;
    std::optional<ops::Q8Activations> q8;
    const ops::InputNorm* norm_ptr() const { return norm ? &*norm : nullptr; }
    const ops::Q8Activations* q8_ptr() const { return q8 ? &*q8 : nullptr; }
  };
  // want_q8: some product of the block reads int8 activations (used only without fuse, where
  // the device has the integer dot product and quantize_in_norm is on).
  BlockInput normed_input(vk::Recorder& rec, const vk::BufferRange& norm_weight, uint32_t n, bool fuse,
                          bool want_q8);
  // Whether any of the products runs on the integer-dot tiles at this batch (reads int8 x).
  bool reads_q8(std::span<const ops::MatMul::Product> products, uint32_t n) const;
  // normed_q8's ranges for [n][cols] int8 activations (cols % 32 == 0, at most its width).
  ops::Q8Activations normed_q8(uint32_t n, uint32_t cols) const;
  // Prefill: where `down` takes int8 activations, the [n][cols] SwiGLU output as those, laid out
  // in ffn_hidden (which then holds no f32; swiglu_q8 writes it). Nothing where the down
  // product is not on the integer-dot tiles, cols % 32 != 0, or quantize_in_norm is off.
  std::optional<ops::Q8Activations> hidden_q8(const ops::Matrix& down, uint32_t n, uint32_t cols) const;
  // SwiGLU of ffn_gate and ffn_up ([n][cols]) into ffn_hidden, then the barrier before `down`
  // reads it: as int8 where hidden_q8 gives them (returned, for the product), else f32.
  std::optional<ops::Q8Activations> swiglu_for(vk::Recorder& rec, const ops::Matrix& down, uint32_t n, uint32_t cols);

  vk::Context& ctx_;
  const HParams& hp_;
  const Weights& w_;
  uint32_t n_batch_, n_ctx_;
  bool expert_stats_;
  bool profile_ = false;
  bool fuse_norms_ = true;
  bool fuse_kv_append_ = true;
  bool fuse_rope_attention_ = true;  // decode: RoPE and the KV append inside the attention dispatch
  bool quantize_in_norm_ = true;
  Activations act_;
  ops::MatMul matmul_;
  ops::RmsNorm rms_norm_;
  ops::Rope rope_;
  ops::Attention attention_;
  ops::Elementwise elementwise_;
  ops::MoeRouter router_;
  ops::MoeExperts experts_;
  ops::SharedExpertCombine shared_combine_;
  ops::ExpertHistogram histogram_;
};

// One decoder layer of an architecture family.
using LayerRecipe = void (*)(LayerBuilder& builder, vk::Recorder& rec, uint32_t layer, uint32_t n_tokens);
void llama_layer(LayerBuilder& builder, vk::Recorder& rec, uint32_t layer, uint32_t n_tokens);
void qwen2moe_layer(LayerBuilder& builder, vk::Recorder& rec, uint32_t layer, uint32_t n_tokens);
void qwen3moe_layer(LayerBuilder& builder, vk::Recorder& rec, uint32_t layer, uint32_t n_tokens);
// The recipe for an architecture name (dense qwen2/qwen3 share their MoE siblings' recipes).
LayerRecipe layer_recipe(const std::string& arch);

}  // namespace moevk::models
