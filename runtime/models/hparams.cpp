// Reading hyperparameters from GGUF metadata. Key names are llama.cpp's (gguf-py constants,
// llama-arch.cpp), so files written by llama.cpp's convert_hf_to_gguf.py and by our converter
// read the same way.
#include "models/hparams.hpp"

#include <algorithm>
#include <cmath>
#include <optional>

#include "common/error.hpp"
#include "gguf/gguf.hpp"

namespace moevk::model {

bool is_supported_arch(const std::string& arch) {
  return arch == "llama" || arch == "qwen2moe" || arch == "qwen3moe" || arch == "qwen2" || arch == "qwen3";
}

bool default_expert_weights_norm(const std::string& arch) {
  // llama.cpp hard-codes these per graph: Mixtral (llama) and qwen3moe renormalise the top-k
  // softmax weights, qwen2moe does not (HF norm_topk_prob=false for Qwen1.5-MoE).
  return arch != "qwen2moe";
}

namespace {

// Upper bounds far above any real model; they keep hostile files from driving huge allocations
// or overflowing the size arithmetic later on.
constexpr uint64_t kMaxLayers = 4096;
constexpr uint64_t kMaxWidth = 1u << 20;    // n_embd, n_ff, head_dim
constexpr uint64_t kMaxHeads = 1u << 14;
constexpr uint64_t kMaxExperts = 1u << 14;
constexpr uint64_t kMaxVocab = 1u << 24;
constexpr uint64_t kMaxContext = 1u << 26;

struct KeyReader {
  const gguf::File& file;
  std::string prefix;  // "<arch>."

  std::string key(const char* suffix) const { return prefix + suffix; }

  std::optional<uint32_t> opt_u32(const char* suffix, uint64_t max) const {
    const std::string k = key(suffix);
    std::optional<uint64_t> v = file.get_uint(k);
    if (!v) return std::nullopt;
    if (*v > max)
      fail(MOEVK_ERROR_INVALID_FILE, file.path() + ": metadata key " + k + " = " + std::to_string(*v) +
                                         " is out of range (max " + std::to_string(max) + ")");
    return uint32_t(*v);
  }
  uint32_t u32(const char* suffix, uint64_t max) const {
    std::optional<uint32_t> v = opt_u32(suffix, max);
    if (!v) fail(MOEVK_ERROR_INVALID_FILE, file.path() + ": missing metadata key " + key(suffix));
    return *v;
  }
  std::optional<float> opt_f32(const char* suffix) const {
    const std::string k = key(suffix);
    std::optional<double> v = file.get_float(k);
    if (!v) return std::nullopt;
    if (!std::isfinite(*v))
      fail(MOEVK_ERROR_INVALID_FILE, file.path() + ": metadata key " + k + " is not a finite number");
    return float(*v);
  }
};

bool has_tensor(const gguf::File& file, const std::string& name) { return file.find_tensor(name) != nullptr; }

std::string blk(uint32_t layer, const char* rest) { return "blk." + std::to_string(layer) + "." + rest; }

}  // namespace

void validate_hparams(const HParams& hp) {
  auto bad = [&](const std::string& what) {
    fail(MOEVK_ERROR_INVALID_FILE, "hyperparameters of '" + hp.arch + "': " + what);
  };
  auto nonzero = [&](uint64_t v, const char* key) {
    if (v == 0) bad(hp.arch + "." + key + " must be nonzero");
  };
  nonzero(hp.n_vocab, "vocab_size");
  nonzero(hp.n_ctx_train, "context_length");
  nonzero(hp.n_embd, "embedding_length");
  nonzero(hp.n_layer, "block_count");
  nonzero(hp.n_head, "attention.head_count");
  nonzero(hp.n_head_kv, "attention.head_count_kv");
  nonzero(hp.head_dim, "attention.key_length");
  nonzero(hp.head_dim_v, "attention.value_length");
  if (hp.n_head % hp.n_head_kv != 0)
    bad(hp.arch + ".attention.head_count (" + std::to_string(hp.n_head) + ") is not a multiple of " + hp.arch +
        ".attention.head_count_kv (" + std::to_string(hp.n_head_kv) + ")");
  if (hp.head_dim % 2 != 0) bad(hp.arch + ".attention.key_length must be even (rope rotates pairs)");
  if (hp.n_rot == 0 || hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0)
    bad(hp.arch + ".rope.dimension_count (" + std::to_string(hp.n_rot) + ") must be even and in [2, head_dim]");
  if (!(hp.norm_eps > 0.0f) || !(hp.norm_eps < 1.0f))
    bad(hp.arch + ".attention.layer_norm_rms_epsilon must be in (0, 1)");
  if (!(hp.rope_freq_base > 0.0f)) bad(hp.arch + ".rope.freq_base must be positive");
  if (hp.layer_is_moe.size() != hp.n_layer) bad("per-layer MoE flags do not match block_count");
  bool any_moe = false, any_dense = false;
  for (uint8_t m : hp.layer_is_moe) (m ? any_moe : any_dense) = true;
  if (any_moe) {
    nonzero(hp.n_expert, "expert_count");
    nonzero(hp.n_expert_used, "expert_used_count");
    nonzero(hp.n_ff_exp, "expert_feed_forward_length");
  }
  if (hp.n_expert_used > hp.n_expert)
    bad(hp.arch + ".expert_used_count (" + std::to_string(hp.n_expert_used) + ") exceeds " + hp.arch +
        ".expert_count (" + std::to_string(hp.n_expert) + ")");
  if (any_dense) nonzero(hp.n_ff, "feed_forward_length");
  if (hp.has_shared_expert) nonzero(hp.n_ff_shexp, "expert_shared_feed_forward_length");
}

HParams read_hparams(const gguf::File& file) {
  HParams hp;
  std::optional<std::string> arch = file.get_string("general.architecture");
  if (!arch) fail(MOEVK_ERROR_INVALID_FILE, file.path() + ": missing metadata key general.architecture");
  hp.arch = *arch;
  if (!is_supported_arch(hp.arch))
    fail(MOEVK_ERROR_UNSUPPORTED, file.path() + ": architecture '" + hp.arch +
                                      "' is not supported (llama, qwen2moe, qwen3moe, qwen2, qwen3)");
  const KeyReader keys{file, hp.arch + "."};

  hp.n_layer = keys.u32("block_count", kMaxLayers);
  hp.n_embd = keys.u32("embedding_length", kMaxWidth);
  hp.n_ctx_train = keys.u32("context_length", kMaxContext);
  hp.n_head = keys.u32("attention.head_count", kMaxHeads);
  // llama.cpp: head_count_kv defaults to head_count (no grouped-query attention).
  hp.n_head_kv = keys.opt_u32("attention.head_count_kv", kMaxHeads).value_or(hp.n_head);
  if (std::optional<uint32_t> k = keys.opt_u32("attention.key_length", kMaxWidth)) {
    hp.head_dim = *k;
  } else {
    if (hp.n_embd % hp.n_head != 0)
      fail(MOEVK_ERROR_INVALID_FILE, file.path() + ": " + keys.key("embedding_length") +
                                         " is not a multiple of " + keys.key("attention.head_count") +
                                         " and " + keys.key("attention.key_length") + " is absent");
    hp.head_dim = hp.n_embd / hp.n_head;
  }
  hp.head_dim_v = keys.opt_u32("attention.value_length", kMaxWidth).value_or(hp.head_dim);
  hp.n_rot = keys.opt_u32("rope.dimension_count", kMaxWidth).value_or(hp.head_dim);
  hp.n_ff = keys.opt_u32("feed_forward_length", kMaxWidth).value_or(0);
  hp.n_expert = keys.opt_u32("expert_count", kMaxExperts).value_or(0);
  hp.n_expert_used = keys.opt_u32("expert_used_count", kMaxExperts).value_or(0);
  // Mixtral files (arch llama) carry the expert width in feed_forward_length.
  hp.n_ff_exp = keys.opt_u32("expert_feed_forward_length", kMaxWidth).value_or(hp.n_ff);
  hp.n_ff_shexp = keys.opt_u32("expert_shared_feed_forward_length", kMaxWidth).value_or(0);
  hp.norm_eps = keys.opt_f32("attention.layer_norm_rms_epsilon").value_or(1e-5f);
  hp.rope_freq_base = keys.opt_f32("rope.freq_base").value_or(10000.0f);
  hp.rope_type = hp.arch == "llama" ? RopeType::NORM : RopeType::NEOX;
  hp.expert_weights_norm = default_expert_weights_norm(hp.arch);
  if (std::optional<bool> norm = file.get_bool(keys.key("expert_weights_norm"))) hp.expert_weights_norm = *norm;

  // n_vocab: the key is optional in llama.cpp's files; then the token list, then the embedding.
  if (std::optional<uint32_t> v = keys.opt_u32("vocab_size", kMaxVocab)) {
    hp.n_vocab = *v;
  } else if (const gguf::Value* tokens = file.find("tokenizer.ggml.tokens");
             tokens && tokens->type == gguf::ValueType::ARRAY) {
    hp.n_vocab = uint32_t(std::min<uint64_t>(tokens->array_size(), kMaxVocab));
  } else if (const gguf::TensorInfo* embd = file.find_tensor("token_embd.weight"); embd && embd->dims.size() >= 2) {
    hp.n_vocab = uint32_t(std::min<uint64_t>(embd->dims[1], kMaxVocab));
  }

  hp.layer_is_moe.assign(hp.n_layer, 0);
  for (uint32_t l = 0; l < hp.n_layer; ++l) {
    hp.layer_is_moe[l] = has_tensor(file, blk(l, "ffn_gate_inp.weight")) ? 1 : 0;
    if (has_tensor(file, blk(l, "ffn_up_shexp.weight"))) hp.has_shared_expert = true;
  }
  hp.qkv_bias = has_tensor(file, "blk.0.attn_q.bias");
  hp.qk_norm = has_tensor(file, "blk.0.attn_q_norm.weight");
  hp.tied_output = !has_tensor(file, "output.weight");
  if (hp.has_shared_expert && hp.n_ff_shexp == 0) {
    // Older qwen2moe files lack the key; the tensor's shape says it.
    for (uint32_t l = 0; l < hp.n_layer && hp.n_ff_shexp == 0; ++l)
      if (const gguf::TensorInfo* t = file.find_tensor(blk(l, "ffn_up_shexp.weight")); t && t->dims.size() >= 2)
        hp.n_ff_shexp = uint32_t(std::min<uint64_t>(t->dims[1], kMaxWidth));
  }
  try {
    validate_hparams(hp);
  } catch (const Error& e) {
    fail(e.status(), file.path() + ": " + e.what());
  }
  return hp;
}

}  // namespace moevk::model
