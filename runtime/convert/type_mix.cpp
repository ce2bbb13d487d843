// llama-quantize's K-quant mixes (Q3_K_S ... Q5_K_M): which matrices it stores in a wider type.
// The rules follow llama.cpp's llama_tensor_get_type for the branches that concern the
// architectures moevk writes (none is Falcon) and files quantized without an importance matrix,
// so that `moevk convert --type q4_k_m` stores every tensor as `llama-quantize ... Q4_K_M` does.
#include <cstdio>
#include <string>

#include "convert/model_writer.hpp"

namespace moevk::convert {

namespace {

using quant::Mix;
using T = quant::Type;

// llama.cpp's use_more_bits: the first and last eighth of the layers, and every third between.
bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// N of "blk.N.", or -1. llama-quantize counts attn_v tensors in layer order (its tensor map sorts
// by layer), and reads ffn_down's layer from the name for MoE models: for the layouts moevk writes
// (one attn_v and one set of downs per layer) both are the layer index.
int layer_of(const std::string& name) {
  int layer = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) return -1;
  return layer;
}

bool has(const std::string& name, const char* part) { return name.find(part) != std::string::npos; }

// llama.cpp's LLM_TYPE_70B for these architectures: 80-layer Llama with grouped-query attention
// (Llama-2/3 70B; with as many KV heads as heads it is the 65B) and 80-layer Qwen2 (72B).
bool is_70b(const ModelSpec& s) {
  if (s.n_layer != 80 || s.n_expert > 0) return false;
  return (s.arch == "llama" && s.n_head != s.n_head_kv) || s.arch == "qwen2";
}

T mix_choice(const quant::FileType& ft, const ModelSpec& s, const TensorDecl& d) {
  const Mix m = ft.mix;
  const std::string& name = d.name;
  const int n = int(s.n_layer), i = layer_of(name);
  const bool eight_experts = s.n_expert == 8;
  if (name == "output.weight" || (s.tied_output && name == "token_embd.weight"))
    return d.dims[0] % quant::type_info(ft.base).block_size != 0 ? T::Q8_0 : T::Q6_K;
  if (name == "token_embd.weight") return ft.base;
  if (has(name, "attn_v.weight")) {
    T t = ft.base;
    if (m == Mix::Q3_K_M) t = i < 2 ? T::Q5_K : T::Q4_K;
    else if (m == Mix::Q3_K_L) t = T::Q5_K;
    else if ((m == Mix::Q4_K_M || m == Mix::Q5_K_M) && use_more_bits(i, n)) t = T::Q6_K;
    else if (m == Mix::Q4_K_S && i < 4) t = T::Q5_K;
    // 70B: 8 heads share each attn_v, which is 8x smaller than attn_q: more bits cost little.
    if (is_70b(s) && (t == T::Q3_K || t == T::Q4_K)) t = T::Q5_K;
    if (eight_experts) t = T::Q8_0;  // llama.cpp: "bumping this to Q8_0 trades just ~128MB"
    return t;
  }
  if (has(name, "attn_k.weight")) return eight_experts ? T::Q8_0 : ft.base;
  if (has(name, "ffn_down")) {  // ffn_down, ffn_down_exps, ffn_down_shexp
    switch (m) {
      case Mix::Q3_K_M: return i < n / 16 ? T::Q5_K : T::Q4_K;
      case Mix::Q3_K_L: return T::Q5_K;
      case Mix::Q4_K_M:
      case Mix::Q5_K_M: return use_more_bits(i, n) ? T::Q6_K : ft.base;
      case Mix::Q4_K_S: return i < n / 8 ? T::Q5_K : ft.base;
      default: return ft.base;
    }
  }
  if (has(name, "attn_output.weight")) {
    if (eight_experts)
      return m == Mix::Q3_K_S || m == Mix::Q3_K_M || m == Mix::Q4_K_S || m == Mix::Q4_K_M ? T::Q5_K : ft.base;
    if (m == Mix::Q3_K_M) return T::Q4_K;
    if (m == Mix::Q3_K_L) return T::Q5_K;
  }
  return ft.base;
}

// llama-quantize's replacement for a type whose block does not divide the row.
T mix_fallback(T t) {
  switch (t) {
    case T::Q2_K:
    case T::Q3_K: return T::IQ4_NL;
    case T::Q4_K: return T::Q5_0;
    case T::Q5_K: return T::Q5_1;
    case T::Q6_K: return T::Q8_0;
    default: return T::F16;
  }
}

}  // namespace

quant::Type mix_type(const quant::FileType& file_type, const ModelSpec& spec, const TensorDecl& decl,
                     std::string* note) {
  if (file_type.mix == Mix::NONE || decl.role != TensorRole::MATRIX) return stored_type(file_type.base, decl, note);
  const T chosen = mix_choice(file_type, spec, decl);
  const uint64_t ne0 = decl.dims[0];
  if (ne0 % quant::type_info(chosen).block_size == 0) return chosen;
  T fallback = mix_fallback(chosen);
  if (ne0 % quant::type_info(fallback).block_size != 0) fallback = T::F16;
  if (note)
    *note = fallback_note(decl, chosen, fallback) + " (as llama-quantize's " + quant::file_type_name(file_type) + ")";
  return fallback;
}

quant::Type chosen_type(const quant::FileType& file_type, const ModelSpec& spec, const TypeRules& rules,
                        const TensorDecl& decl, std::string* note) {
  if (const auto rule = rules.rule_type(decl)) return stored_type(*rule, decl, note);
  return mix_type(file_type, spec, decl, note);
}

}  // namespace moevk::convert
