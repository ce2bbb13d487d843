// A session: one KV cache and the recorded forward steps of a model (one recording per batch
// shape, replayed every step with the positions in a device buffer).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "models/decode_kernels.hpp"
#include "models/model.hpp"
#include "generate/sampler.hpp"
#include "models/profile_stage.hpp"

namespace moevk::generate {

struct SessionOptions {
  uint32_t n_ctx = 0;     // 0: min(n_ctx_train, 4096)
  // Prefill chunk, and moevk_context_default_params' default: 512 as llama.cpp's micro-batch and
  // `moevk bench`. Each chunk streams every active expert's weights once, so a 2048-token prompt
  // in chunks of 128 read Mixtral-8x7B's 25 GB 16 times, not 4.
  uint32_t n_batch = 512;
  bool expert_stats = false;
  bool profile = false;  // GPU timestamps at stage boundaries (Session::profile)
  // Decode steps fold each RMS norm into the products that read it (no norm pass or barrier);
  // off records the separate norms everywhere, for comparisons.
  bool fuse_norms = true;
  // The RoPE dispatch appends the step's K/V to the cache (no store pass and barrier); off:
  // attention's own store pass, for comparisons.
  bool fuse_kv_append = true;
  // Decode steps: the attention dispatch applies the q/k norms and RoPE and appends K/V itself
  // (no RoPE dispatch and barrier); with fuse_kv_append only. Off, for comparisons.
  bool fuse_rope_attention = true;
  // Products that read the same input (q, k and v; gate and up) in one dispatch where they
  // share a type (the loader puts their weights in one buffer); off: a dispatch each.
  bool merge_products = true;
  // Large routers (Qwen3's 128 experts) at small batches: logits and top-k in one dispatch whose
  // last workgroup ranks (no barrier between them); off: mul_mv, a barrier, then the top-k.
  bool router_handoff = true;
  // Decode attention: the last chunk's workgroup folds the chunks' partials into the output (no
  // combine dispatch and barrier); off: attention_combine after a barrier.
  bool attention_handoff = true;
  // Prefill chunks on the integer-dot tiles: the norm pass writes the int8 activations the
  // products read (no quantization pass and barrier per block). Off, for comparisons.
  bool quantize_in_norm = true;
  // Generation (moevk_generate) keeps the next step in flight while the host reads the last
  // one's token (Session::launch_chained), where the token is chosen on the GPU (greedy, or
  // sampled with gpu_sampling); off: step, wait, read, step. For comparisons.
  bool chain_steps = true;
  // Sampling that fits the GPU (SamplerParams::fits_gpu: any top-k, penalties over at most 256
  // tokens) draws on the GPU (LogitsMode::Sample), on a device with the kernel's shared memory
  // (ops::SampleTopK::fits); off: the logits are copied to the host and sampled there.
  bool gpu_sampling = true;
  // The one-token products' workgroup shapes (models/decode_kernels.hpp); MOEVK_DECODE_CONFIG
  // ("experts=128x2,mv=256x4"), read when the session is made, replaces the parts it names.
  models::DecodeKernelShapes decode_kernels;
};

// Accumulated over the steps of one kind (1-token decode steps, or prefill chunks of more).
struct StepProfile {
  uint64_t steps = 0, tokens = 0;
  double gpu_ms = 0;          // whole steps, from their first to their last timestamp
  double stage_ms[models::kStageCount] = {};  // by models::Stage; sums to gpu_ms
  // Of the latest recording of this kind (counted whether or not profiling is on).
  uint32_t dispatches_per_step = 0, barriers_per_step = 0;
};
struct Profile {
  bool enabled = false;  // stage times are zero without SessionOptions::profile
  StepProfile decode, prefill;
};

enum class LogitsMode {
  Last,        // logits of the last token copied to the host
  All,         // logits of every token of the call copied to the host
  ArgmaxOnly,  // only argmax of the last token's logits, computed on the GPU (greedy decoding)
  Sample,      // a token drawn on the GPU from the last token's logits (set_sampling first)
};

// One of a Sample step's candidates: the last token's best logits, best first.
struct Candidate {
  int32_t id;
  float logit;
};

// Device-local memory (bytes), for the "weights + KV cache + a few percent" budget.
struct MemoryUse {
  uint64_t weights = 0;      // the model's weights (shared by its sessions)
  uint64_t kv_cache = 0;     // this session's K and V caches
  uint64_t activations = 0;  // this session's other buffers: activations, scratch, logits
  uint64_t device_peak = 0;  // highest device-local total of the model's device so far (every
                             // session of the model and transient upload buffers included)
};

class Session {
 public:
  Session(const models::Model& model, const SessionOptions& options);
  ~Session();

  uint32_t n_ctx() const;
  uint32_t n_past() const;
  uint32_t n_vocab() const;
  // The one-token products' workgroup shapes this session recorded with.
  const models::DecodeKernelShapes& decode_kernels() const;
  void reset();
  // Keeps the first n_keep tokens of the KV cache (n_keep <= n_past; INVALID_ARGUMENT above)
  // and forgets the rest and the last call's logits: the next decode continues at position
  // n_keep. Nothing is cleared on the GPU: attention reads only positions below n_past + t.
  void truncate(uint32_t n_keep);

  // Appends tokens and runs the model over them in chunks of n_batch. Throws CONTEXT_FULL
  // (nothing appended) when n_past + tokens.size() > n_ctx, INVALID_ARGUMENT for ids outside the
  // vocabulary, DEVICE_LOST if the GPU is lost.
  void decode(std::span<const int32_t> tokens, LogitsMode mode);

  // After decode(..., Last/All): logits of token `index` of the last call (-1: last).
  std::span<const float> logits(int32_t index) const;
  // After decode(..., ArgmaxOnly): the greedy token.
  int32_t argmax() const;

  // Sampling on the GPU: the parameters (params.fits_gpu(), else INVALID_ARGUMENT) and the
  // uniform draw u in [0, 1) of the next decode(..., Sample) (unused when greedy); chained
  // Sample steps keep the parameters and take a draw each (launch_chained). The token is then
  // the one Sampler::sample_with(logits, history, u) would pick, history being the tokens decoded
  // so far (the penalties' window), but for float rounding at the rule's edges.
  void set_sampling(const SamplerParams& params, double u);
  // After decode(..., Sample): the drawn token, and the candidates it was drawn from (the best
  // ops::SampleTopK::kMaxK logits, fewer where the vocabulary is smaller).
  int32_t sampled() const;
  std::vector<Candidate> candidates() const;
  // SessionOptions::gpu_sampling and MOEVK_DISABLE=gpu_sampling: whether callers should sample here.
  bool samples_on_gpu() const;

  // Decoding kept in flight, so the host is off the GPU's critical path: a chained step decodes
  // one token, the token the step before it chose on the GPU (its argmax or its draw; no
  // readback in between), so the host can submit step t+1 before it has read step t's token.
  // - chain_ready(): the newest step (done or in flight) chose its token on the GPU
  //   (decode(..., ArgmaxOnly or Sample), or a chained step), so a chained step can follow it,
  //   choosing its own the same way.
  // - launch_chained(u): submits one (at most two in flight), a Sample step drawing with u (the
  //   parameters of the last set_sampling); CONTEXT_FULL when no position is left for it.
  // - finish_chained(): waits for the oldest in flight; its token is now decoded (n_past + 1);
  //   returns the token it chose (the next one).
  // - drop_chained(): waits for every step in flight and forgets them (n_past unchanged: what
  //   they wrote past it is never read). decode(), reset() and truncate() do it first.
  bool chain_ready() const;
  void launch_chained(double u = 0.0);
  int32_t finish_chained();
  void drop_chained();
  uint32_t chained_in_flight() const;
  // SessionOptions::chain_steps and MOEVK_DISABLE=chain_steps: whether callers should chain.
  bool chains_steps() const;
  bool expert_stats() const;  // SessionOptions::expert_stats

  // With expert_stats: counts[layer][expert] of top-k choices over every decoded token.
  std::vector<std::vector<uint64_t>> expert_counts() const;

  // Per-stage GPU time and dispatch/barrier counts since creation (reset() keeps them).
  const Profile& profile() const;
  // Wall time the calling thread has spent blocked on the GPU's steps since creation (their
  // fences: decode(), finish_chained(), drop_chained()); the rest of a generation loop's time is
  // the host's own work. Counted whether or not profiling is on.
  double gpu_wait_ms() const;

  MemoryUse memory_use() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moevk::generate
