// One session's forward pass: the layer buffers (KV cache, activations for n_batch tokens),
// the per-step inputs (positions and token ids, written by the host into a mapped buffer and
// copied on the GPU at the start of each replay) and the outputs (logits or the greedy id,
// copied into mapped readback buffers at the end of the replay: no extra submits).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "models/layer_builder.hpp"
#include "ops/sample_topk.hpp"
#include "vk/recorder.hpp"

namespace moevk::models {

enum class StepOutput {
  None,    // a prefill chunk whose logits nobody reads
  Last,    // logits of the last token
  All,     // logits of every token of the step
  Argmax,  // only the greedy id of the last token, computed on the GPU
  Sample,  // a token drawn on the GPU from the last token's logits (ops::SampleTopK; the draw's
           // parameters from set_sampling), and its candidates
};

class Forward {
 public:
  Forward(const Model& model, uint32_t n_batch, uint32_t n_ctx, bool expert_stats,
          const DecodeKernelShapes& decode_kernels = {});
  ~Forward();

  uint32_t n_batch() const { return n_batch_; }

  // Profiling: recordings made afterwards carry a timestamp at each stage boundary (see
  // models/profile_stage.hpp); a recorder needs timestamps_per_step() slots for them.
  void set_profile(bool on) { layers_.set_profile(on); }
  bool profile() const { return layers_.profile(); }
  uint32_t timestamps_per_step() const;

  // Records a whole step for n_tokens (1..n_batch) into `rec` (begin..end included).
  // chained_slot 0 or 1 (a one-token Argmax or Sample step only): the step's token is the one the
  // step submitted before it left on the GPU (its argmax or its draw), and its parameters and
  // its own token go through that slot's buffers (set_chained_inputs, set_sampling,
  // chained_token), so two such steps can be in flight at once, alternating slots: the host
  // submits the next before it has read the last.
  void record(vk::Recorder& rec, uint32_t n_tokens, StepOutput output, int chained_slot = -1);
  // Writes the step's inputs (read by the recorded copies at the next submit).
  void set_inputs(uint32_t n_past, std::span<const int32_t> ids);
  // After a submit of a Last or All recording: its logits rows (one row for Last).
  const float* logits(StepOutput output) const;
  // After a submit of an Argmax or Sample recording: the greedy or drawn token.
  int32_t token() const;
  // After a submit of a Sample recording: the last token's ops::SampleTopK::kMaxK best logits,
  // best first (value, index; a missing one, where the vocabulary is smaller, has index -1).
  std::vector<std::pair<float, int32_t>> candidates() const;
  // A Sample step's draw (before its submit): slot -1 for an unchained step, 0 or 1 for a chained one.
  void set_sampling(int slot, const ops::SampleParams& params);
  // The tokens at positions first.. in an unchained Sample step's ring of tokens by position
  // (n_ctx + 1 of them: every position and a draw's past the last; it never wraps), which is
  // copied to the device whole at the step's start; what is not written keeps what was. Chained
  // steps use the device's ring as the steps before them left it (each draw stores its token
  // at the next position).
  void set_sample_ring(uint32_t first, std::span<const int32_t> tokens);
  // A chained slot's step parameters (before its submit), and its token (after it has run).
  void set_chained_inputs(int slot, uint32_t n_past);
  int32_t chained_token(int slot) const;

  // Device-local bytes this forward pass holds: its KV caches, and everything (activations,
  // scratch, logits, the caches) together. Weights are the model's (Model::weight_bytes).
  uint64_t kv_cache_bytes() const { return layers_.buffers().kv_cache_bytes(); }
  uint64_t device_bytes() const;

  // Expert-choice counts [layer][expert] (zeros for dense layers), and their reset.
  std::vector<std::vector<uint64_t>> expert_counts() const;
  void reset_expert_counts();

  // Decode steps fold RMS norms into the products that read them (on by default); tests turn
  // it off to compare. Applies to recordings made afterwards.
  void set_fuse_norms(bool on) { layers_.set_fuse_norms(on); }
  // The step's K/V appended to the caches by the RoPE dispatch (on by default).
  void set_fuse_kv_append(bool on) { layers_.set_fuse_kv_append(on); }
  void set_fuse_rope_attention(bool on) { layers_.set_fuse_rope_attention(on); }
  void set_merge_products(bool on) { layers_.set_merge_products(on); }
  void set_quantize_in_norm(bool on) { layers_.set_quantize_in_norm(on); }
  void set_router_handoff(bool on) { layers_.set_router_handoff(on); }
  void set_attention_handoff(bool on) { layers_.set_attention_handoff(on); }

 private:
  // logits = output(rmsnorm(hidden)) for n rows: the norm fused into the product, or a norm pass
  // into `normed` first. Ends with a barrier.
  void output_head(vk::Recorder& rec, const vk::BufferRange& hidden, const vk::BufferRange& normed, uint32_t n,
                   const vk::BufferRange& logits);

  vk::Context& ctx_;
  const HParams& hp_;
  const Weights& w_;
  uint32_t n_batch_;
  LayerBuilder layers_;
  LayerRecipe recipe_;
  ops::Embedding embedding_;
  ops::Argmax argmax_;
  ops::SampleTopK sample_;
  vk::Buffer inputs_host_;   // Upload: StepParams then n_batch token ids
  vk::Buffer token_ids_;     // Device: n_batch u32
  vk::Buffer last_hidden_, last_normed_;  // [1][n_embd]
  vk::Buffer logits_;        // Device: [1][n_vocab], the last token's (Last, Argmax)
  vk::Buffer argmax_id_;     // Device: u32
  vk::Buffer argmax_scratch_;  // Device: ops::Argmax's slice partials and counter
  vk::Buffer logits_host_;   // Readback: [1][n_vocab]
  vk::Buffer argmax_host_;   // Readback: u32
  vk::Buffer chained_inputs_[2], chained_token_host_[2];  // Upload StepParams, Readback u32
  vk::Buffer sample_params_;  // Device: ops::SampleParams, copied in at a Sample step's start
  vk::Buffer sample_host_, chained_sample_host_[2];  // Upload: ops::SampleParams
  vk::Buffer candidates_, candidates_host_;  // Device, Readback: ops::SampleTopK::kCandidateBytes
  vk::Buffer sample_scratch_;  // Device: ops::SampleTopK's lists and counter
  vk::Buffer sample_ring_, sample_ring_host_;  // Device, Upload: ops::SampleTopK's ring
  vk::Buffer logits_all_, logits_all_host_;  // [n_batch][n_vocab] (All), from its first recording
  void ensure_all_logits();
};

}  // namespace moevk::models
