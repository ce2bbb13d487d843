// Llama-family layers: dense Llama and Mixtral. GGUF stores q/k rows permuted for the
// interleaved-pair rotation (llama.cpp's convert permutes Hugging Face's), hence Normal RoPE;
// no attention biases; MoE routing is a softmax over all experts, top-k, renormalised
// (Mixtral), unless the file says otherwise through expert_weights_norm.
#include "models/layer_builder.hpp"

namespace moevk::models {

void llama_layer(LayerBuilder& b, vk::Recorder& rec, uint32_t layer, uint32_t n_tokens) {
  b.attention(rec, layer, n_tokens, {ops::RopeLayout::Normal, /*qkv_bias=*/false, /*qk_norm=*/false});
  if (b.hp().is_moe(layer))
    b.moe_ffn(rec, layer, n_tokens, {ops::Gating::Softmax, b.hp().expert_weights_norm, /*shared_expert=*/false});
  else
    b.dense_ffn(rec, layer, n_tokens);
}

}  // namespace moevk::models
