// Qwen1.5/Qwen2-MoE layers (and dense Qwen2): q/k/v projections with biases, NeoX RoPE (rotate
// halves, Hugging Face order), softmax top-k routing WITHOUT renormalisation (norm_topk_prob
// false), plus a shared expert added to every token, scaled by sigmoid(ffn_gate_inp_shexp · x).
#include "models/layer_builder.hpp"

namespace moevk::models {

void qwen2moe_layer(LayerBuilder& b, vk::Recorder& rec, uint32_t layer, uint32_t n_tokens) {
  b.attention(rec, layer, n_tokens, {ops::RopeLayout::Neox, /*qkv_bias=*/true, /*qk_norm=*/false});
  if (b.hp().is_moe(layer))
    b.moe_ffn(rec, layer, n_tokens, {ops::Gating::Softmax, b.hp().expert_weights_norm, /*shared_expert=*/true});
  else
    b.dense_ffn(rec, layer, n_tokens);
}

}  // namespace moevk::models
