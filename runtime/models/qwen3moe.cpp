// Qwen3-MoE layers (and dense Qwen3): no attention biases; each head of q and k is RMS-normed
// (attn_q_norm / attn_k_norm, length head_dim, which the file states and which need not be
// n_embd / n_head) before NeoX RoPE; softmax top-k routing renormalised (norm_topk_prob true);
// no shared expert.
#include "models/layer_builder.hpp"

namespace moevk::models {

void qwen3moe_layer(LayerBuilder& b, vk::Recorder& rec, uint32_t layer, uint32_t n_tokens) {
  b.attention(rec, layer, n_tokens, {ops::RopeLayout::Neox, /*qkv_bias=*/false, /*qk_norm=*/true});
  if (b.hp().is_moe(layer))
    b.moe_ffn(rec, layer, n_tokens, {ops::Gating::Softmax, b.hp().expert_weights_norm, /*shared_expert=*/false});
  else
    b.dense_ffn(rec, layer, n_tokens);
}

}  // namespace moevk::models
