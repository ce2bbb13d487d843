// Every tensor a forward pass reads, in device buffers, as the ops see them (ops::Matrix,
// ops::ExpertMatrices, f32 vectors). One Buffer per tensor, except the matrices of one input that
// share a type (a layer's q/k/v with their biases, gate/up, the shared expert's gate/up): those
// share a buffer, so their products merge into one dispatch; the routed experts of a layer are one
// buffer per projection (a 3-D GGUF tensor as stored, or the older per-expert tensors
// `blk.N.ffn_gate.E.weight` stacked at load), so one binding reaches every expert.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "models/model.hpp"
#include "ops/tensor.hpp"

namespace moevk::models {

struct LayerWeights {
  vk::BufferRange attn_norm, ffn_norm;  // f32 [n_embd]
  ops::Matrix wq, wk, wv, wo;
  vk::BufferRange bq, bk, bv;           // f32 biases (qkv_bias), else empty
  vk::BufferRange q_norm, k_norm;       // f32 [head_dim] (qk_norm), else empty
  // Dense FFN (layers without a router).
  ops::Matrix ffn_gate, ffn_up, ffn_down;
  // MoE FFN.
  ops::Matrix router;                   // rows = n_expert
  ops::ExpertMatrices gate_exps, up_exps, down_exps;
  // Shared expert (qwen2moe); gate_inp_shexp has rows = 1 and may be absent.
  bool has_shared_expert = false, has_shared_gate = false;
  ops::Matrix gate_shexp, up_shexp, down_shexp, gate_inp_shexp;
};

class Weights {
 public:
  // Validates names, shapes and types of every tensor the architecture needs, checks the total
  // against the device, then uploads. Throws MISSING_TENSOR / INVALID_FILE / UNSUPPORTED /
  // OUT_OF_DEVICE_MEMORY / CANCELLED, always naming the tensor.
  static std::unique_ptr<Weights> load(vk::Context& ctx, const gguf::File& file, const HParams& hp,
                                       const Progress& progress);

  ops::Matrix token_embd, output;  // output aliases token_embd when tied
  vk::BufferRange output_norm;
  std::vector<LayerWeights> layers;
  uint64_t bytes() const { return bytes_; }

 private:
  Weights() = default;
  friend struct WeightLoader;
  std::vector<vk::Buffer> buffers_;
  uint64_t bytes_ = 0;
};

}  // namespace moevk::models
