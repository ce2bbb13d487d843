// Hugging Face checkpoint -> GGUF, and random-weight model files.
//
// Stored types (both paths): norms, biases, routers (ffn_gate_inp) and the shared-expert gate
// stay F32; every matrix, token_embd and output included, takes the requested type (or a
// TypeRules rule's), except a matrix whose row length is not a multiple of the type's block,
// which falls back to Q8_0 (K-quants, rows a multiple of 32) or F16, reported through
// WriteCallbacks::log. A K-quant mix (q4_k_m, ...) chooses per matrix as llama-quantize does
// (mix_type).
#pragma once
#include <cstdint>
#include <string>

#include "convert/model_writer.hpp"
#include "models/hparams.hpp"

namespace moevk::convert {

class Checkpoint;

// config.json (MixtralForCausalLM, Qwen2MoeForCausalLM, Qwen3MoeForCausalLM, and the dense
// LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM / Qwen3ForCausalLM) plus the tensors
// present (MoE vs dense layers, biases, q/k norms, tied output) -> ModelSpec.
ModelSpec spec_from_hf(const std::string& config_json, const Checkpoint& checkpoint, const std::string& name);

// llama.cpp's q/k row permutation for arch `llama`: HF stores each head's rotary pairs as
// halves (rotate-half); GGUF `llama` wants them interleaved. Returns the HF row that becomes
// row `row` of the GGUF tensor (rows = n_heads * head_dim).
uint64_t llama_qk_source_row(uint64_t row, uint32_t head_dim);

void convert_hf(const std::string& hf_dir, const std::string& out_path, const quant::FileType& type,
                const WriteCallbacks& callbacks, const TypeRules& rules = {});

// Random-weight models. Presets: tiny (llama/Mixtral-style), tiny-qwen2moe, tiny-qwen3moe,
// mixtral-8x7b, mixtral-8x22b, qwen1.5-moe-a2.7b, qwen3-30b-a3b.
struct MakeModelOverrides {  // 0 = keep the preset's value
  std::string arch;
  uint32_t n_layer = 0, n_embd = 0, n_ff = 0, n_ff_shexp = 0, n_expert = 0, n_expert_used = 0;
  uint32_t n_head = 0, n_head_kv = 0, head_dim = 0, n_vocab = 0, n_ctx = 0;
};
const char* make_model_presets();  // "tiny, tiny-qwen2moe, ..." for help texts
ModelSpec make_model_spec(const std::string& preset, const MakeModelOverrides& overrides);
// Writes the file (unless dry_run) and returns its summary.
model::ModelInfo make_model(const ModelSpec& spec, const quant::FileType& type, const std::string& out_path,
                            uint64_t seed,
                            bool dry_run, const WriteCallbacks& callbacks, const TypeRules& rules = {});

}  // namespace moevk::convert
