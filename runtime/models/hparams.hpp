// Hyperparameters of the supported architectures, read from GGUF metadata with llama.cpp's key
// names (`<arch>.block_count`, `<arch>.expert_count`, ...), and a size summary of a model file
// (total / active parameters, bytes read per decoded token, KV-cache bytes).
//
// Architectures: `llama` (dense Llama, and Mixtral when expert_count > 0), `qwen2moe`,
// `qwen3moe`, and the dense `qwen2`, `qwen3`.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "quant/types.hpp"

namespace moevk::gguf {
class File;
struct TensorInfo;
}

namespace moevk::model {

// NORM: rotate interleaved pairs (x0,x1),(x2,x3)... (llama.cpp's LLAMA_ROPE_TYPE_NORM, used
// for arch `llama`, whose q/k rows the converter permutes). NEOX: rotate halves (x_i,
// x_{i+d/2}) (Hugging Face order, used by the Qwen families).
enum class RopeType { NORM, NEOX };

struct HParams {
  std::string arch;
  uint32_t n_vocab = 0;
  uint32_t n_ctx_train = 0;
  uint32_t n_embd = 0;
  uint32_t n_layer = 0;
  uint32_t n_head = 0;
  uint32_t n_head_kv = 0;
  uint32_t head_dim = 0;     // <arch>.attention.key_length, default n_embd / n_head
  uint32_t head_dim_v = 0;   // <arch>.attention.value_length, default head_dim
  uint32_t n_rot = 0;        // <arch>.rope.dimension_count, default head_dim
  uint32_t n_ff = 0;         // dense FFN width (<arch>.feed_forward_length)
  uint32_t n_ff_exp = 0;     // one expert's FFN width (Mixtral files: feed_forward_length)
  uint32_t n_ff_shexp = 0;   // shared expert's FFN width (qwen2moe), 0 when absent
  uint32_t n_expert = 0;
  uint32_t n_expert_used = 0;
  float norm_eps = 1e-5f;
  float rope_freq_base = 10000.0f;
  RopeType rope_type = RopeType::NORM;
  // Renormalise the top-k router weights to sum 1 (Mixtral, Qwen3-MoE: yes; Qwen1.5/2-MoE: no).
  // From <arch>.expert_weights_norm when present, else the architecture's default.
  bool expert_weights_norm = false;
  bool has_shared_expert = false;  // blk.*.ffn_up_shexp present
  bool qkv_bias = false;           // blk.*.attn_q.bias present
  bool qk_norm = false;            // blk.*.attn_q_norm present (qwen3*)
  bool tied_output = false;        // no output.weight: logits use token_embd
  std::vector<uint8_t> layer_is_moe;  // per layer: blk.N.ffn_gate_inp present

  bool is_moe(uint32_t layer) const { return layer < layer_is_moe.size() && layer_is_moe[layer]; }
  uint32_t n_embd_q() const { return n_head * head_dim; }
  uint32_t n_embd_k_gqa() const { return n_head_kv * head_dim; }
  uint32_t n_embd_v_gqa() const { return n_head_kv * head_dim_v; }
};

// True for the architectures this runtime knows.
bool is_supported_arch(const std::string& arch);
// llama.cpp's default for expert_weights_norm when the key is absent.
bool default_expert_weights_norm(const std::string& arch);

// Reads and validates. Throws moevk::Error (UNSUPPORTED for an unknown architecture,
// INVALID_FILE naming the key for a missing or inconsistent value).
HParams read_hparams(const gguf::File& file);
// Checks the relations between fields (counts nonzero, heads divide, k <= experts, ...).
void validate_hparams(const HParams& hp);

// One tensor as the summary needs it (a gguf::TensorInfo, or a planned tensor before writing).
struct TensorShape {
  std::string name;
  std::vector<uint64_t> dims;  // ne[0] first
  quant::Type type = quant::Type::F32;
  uint64_t bytes = 0;
};

struct TypeUsage {
  quant::Type type = quant::Type::F32;
  uint64_t tensors = 0;
  uint64_t elements = 0;
  uint64_t bytes = 0;
};

struct ModelInfo {
  HParams hp;
  uint64_t n_tensors = 0;
  uint64_t total_params = 0;
  uint64_t expert_params = 0;          // routed experts only (all of them)
  uint64_t active_params = 0;          // per token: everything but unchosen experts and embedding rows
  uint64_t weight_bytes = 0;           // all tensor data
  uint64_t active_bytes_per_token = 0; // bytes of weights read to decode one token
  uint64_t kv_bytes_per_token = 0;     // F16 K and V over all layers
  uint64_t kv_bytes_full_context = 0;  // at n_ctx_train
  std::vector<TypeUsage> by_type;      // ordered by bytes, largest first
};

// True for routed-expert weights: blk.N.ffn_{gate,up,down}_exps.weight (3-D) and the per-expert
// blk.N.ffn_{gate,up,down}.E.weight of older Mixtral files.
bool is_routed_expert_tensor(const std::string& name);

ModelInfo describe(const HParams& hp, const std::vector<TensorShape>& tensors);
ModelInfo describe(const gguf::File& file);
// ModelInfo as a JSON object (make-model's summary of a planned file).
std::string model_info_json(const ModelInfo& info);
// The summary of a file (the C API's moevk_inspect_json): model_info_json plus the file's layout,
// "gguf": {"version", "alignment", "data_offset", "file_size"} and "tensors": [{"name", "type",
// "type_id" (ggml's id), "dims" (ne[0] first), "offset" (absolute), "bytes"}] in file order, so
// scripts and other GGUF readers can be checked against ours.
std::string file_info_json(const gguf::File& file);

}  // namespace moevk::model
