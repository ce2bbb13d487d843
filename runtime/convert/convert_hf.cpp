// Hugging Face -> GGUF with llama.cpp's names, shapes and metadata (convert_hf_to_gguf.py is the
// reference for the mapping). Every source tensor's shape is checked before the output file is
// created, so a bad checkpoint fails fast and leaves nothing behind.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "convert/convert.hpp"
#include "convert/safetensors.hpp"
#include "text/vocab.hpp"

namespace moevk::convert {

namespace {

using json = nlohmann::json;

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) fail(MOEVK_ERROR_IO, p.string() + ": cannot open");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Config {
  const json& j;
  uint32_t u32(const char* key, std::optional<uint32_t> fallback = std::nullopt) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
      if (fallback) return *fallback;
      fail(MOEVK_ERROR_INVALID_FILE, std::string("config.json: missing '") + key + "'");
    }
    if (!it->is_number_unsigned() || it->get<uint64_t>() > (1u << 26))
      fail(MOEVK_ERROR_INVALID_FILE, std::string("config.json: '") + key + "' must be an integer in [0, 2^26]");
    return uint32_t(it->get<uint64_t>());
  }
  double number(const char* key, double fallback) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_number()) fail(MOEVK_ERROR_INVALID_FILE, std::string("config.json: '") + key + "' must be a number");
    return it->get<double>();
  }
  bool flag(const char* key, bool fallback) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) fail(MOEVK_ERROR_INVALID_FILE, std::string("config.json: '") + key + "' must be a boolean");
    return it->get<bool>();
  }
};

std::string hf_layer(uint32_t l) { return "model.layers." + std::to_string(l) + "."; }

// The HF tensor behind one GGUF tensor: either whole (possibly with q/k row permutation), or the
// per-expert tensors stacked along the outermost dimension.
struct SourcePlan {
  std::vector<const StTensor*> parts;  // 1, or n_expert for stacked experts
  uint32_t permute_head_dim = 0;       // nonzero: llama q/k permutation
};

}  // namespace

uint64_t llama_qk_source_row(uint64_t row, uint32_t head_dim) {
  // GGUF row (h, i, j) = h*head_dim + 2*i + j  <-  HF row h*head_dim + j*head_dim/2 + i
  const uint64_t head = row / head_dim, within = row % head_dim;
  const uint64_t pair = within / 2, half = within % 2;
  return head * head_dim + half * (head_dim / 2) + pair;
}

ModelSpec spec_from_hf(const std::string& config_text, const Checkpoint& ckpt, const std::string& name) {
  json j;
  try {
    j = json::parse(config_text);
  } catch (const json::exception& e) {
    fail(MOEVK_ERROR_INVALID_FILE, std::string("config.json: ") + e.what());
  }
  if (!j.is_object()) fail(MOEVK_ERROR_INVALID_FILE, "config.json is not a JSON object");
  const Config c{j};
  std::string cls;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string())
    cls = j["architectures"][0].get<std::string>();
  ModelSpec s;
  s.name = name;
  if (cls == "MixtralForCausalLM" || cls == "LlamaForCausalLM" || cls == "MistralForCausalLM") s.arch = "llama";
  else if (cls == "Qwen2MoeForCausalLM") s.arch = "qwen2moe";
  else if (cls == "Qwen3MoeForCausalLM") s.arch = "qwen3moe";
  else if (cls == "Qwen2ForCausalLM") s.arch = "qwen2";
  else if (cls == "Qwen3ForCausalLM") s.arch = "qwen3";
  else
    fail(MOEVK_ERROR_UNSUPPORTED, "config.json: architecture '" + cls +
                                      "' is not supported (Mixtral, Qwen2-MoE, Qwen3-MoE, Llama, Mistral, Qwen2, Qwen3)");

  s.n_vocab = c.u32("vocab_size");
  s.n_embd = c.u32("hidden_size");
  s.n_layer = c.u32("num_hidden_layers");
  s.n_head = c.u32("num_attention_heads");
  s.n_head_kv = c.u32("num_key_value_heads", s.n_head);
  if (s.n_head == 0) fail(MOEVK_ERROR_INVALID_FILE, "config.json: num_attention_heads is 0");
  s.head_dim = c.u32("head_dim", s.n_embd / s.n_head);
  s.n_ctx_train = c.u32("max_position_embeddings", 4096);
  s.norm_eps = float(c.number("rms_norm_eps", 1e-5));
  // transformers >= 5 nests rope_theta in rope_parameters.
  double theta = c.number("rope_theta", 10000.0);
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object())
    theta = Config{j["rope_parameters"]}.number("rope_theta", theta);
  s.rope_freq_base = float(theta);
  // Without lm_head the logits use the embedding (tie_word_embeddings), whatever the flag says.
  s.tied_output = ckpt.find("lm_head.weight") == nullptr;

  const bool mixtral = cls == "MixtralForCausalLM";
  s.n_ff = c.u32("intermediate_size", 0);
  if (mixtral) {
    s.n_expert = c.u32("num_local_experts");
    s.n_ff_exp = s.n_ff;
    s.expert_weights_norm = true;
  } else if (s.arch == "qwen2moe" || s.arch == "qwen3moe") {
    s.n_expert = j.contains("num_experts") ? c.u32("num_experts") : c.u32("num_local_experts");
    s.n_ff_exp = c.u32("moe_intermediate_size");
    s.n_ff_shexp = c.u32("shared_expert_intermediate_size", 0);
    s.expert_weights_norm = c.flag("norm_topk_prob", false);
  }
  if (s.n_expert > 0) s.n_expert_used = c.u32("num_experts_per_tok");

  // Per-layer structure from the tensors present.
  s.layer_is_moe.assign(s.n_layer, 0);
  for (uint32_t l = 0; l < s.n_layer; ++l) {
    const std::string p = hf_layer(l);
    s.layer_is_moe[l] = (ckpt.find(p + "block_sparse_moe.gate.weight") || ckpt.find(p + "mlp.gate.weight")) ? 1 : 0;
  }
  // The shared expert belongs to the MoE block: look for it in the first MoE layer, since
  // Qwen2-MoE's mlp_only_layers can make layer 0 (or any layer) a dense MLP without one.
  uint32_t first_moe = 0;
  while (first_moe < s.n_layer && !s.layer_is_moe[first_moe]) ++first_moe;
  if (s.n_ff_shexp > 0 &&
      (first_moe == s.n_layer || !ckpt.find(hf_layer(first_moe) + "mlp.shared_expert.up_proj.weight")))
    s.n_ff_shexp = 0;
  s.qkv_bias = ckpt.find(hf_layer(0) + "self_attn.q_proj.bias") != nullptr;
  s.qk_norm = ckpt.find(hf_layer(0) + "self_attn.q_norm.weight") != nullptr;
  if (s.arch == "llama" && s.qkv_bias)
    fail(MOEVK_ERROR_UNSUPPORTED, "q/k/v biases in a llama-family checkpoint are not supported");
  if (s.arch == "llama" && s.n_expert > 0) s.n_ff = s.n_ff_exp;
  return s;
}

namespace {

// Finds and shape-checks the HF tensors for every GGUF tensor of the layout.
SourcePlan plan_source(const ModelSpec& s, const Checkpoint& ckpt, const TensorDecl& d) {
  const std::string& n = d.name;
  SourcePlan plan;
  auto expect = [&](const StTensor& t, std::vector<uint64_t> hf_shape) {
    // A [1, n] shared-expert gate is accepted for an [n] GGUF vector.
    const bool ok = t.shape == hf_shape || (hf_shape.size() == 1 && t.shape == std::vector<uint64_t>{1, hf_shape[0]});
    if (!ok) {
      std::string want, got;
      for (uint64_t v : hf_shape) want += (want.empty() ? "" : ", ") + std::to_string(v);
      for (uint64_t v : t.shape) got += (got.empty() ? "" : ", ") + std::to_string(v);
      fail(MOEVK_ERROR_INVALID_FILE, "tensor " + t.name + " has shape [" + got + "], config.json implies [" + want + "]");
    }
    if (t.dtype == StDtype::OTHER)
      fail(MOEVK_ERROR_UNSUPPORTED, "tensor " + t.name + " has dtype " + t.dtype_name + " (F32, F16, BF16 are read)");
    plan.parts.push_back(&t);
  };
  // HF keeps [out, in] row-major: the reverse of GGUF's ne order.
  std::vector<uint64_t> hf2d = d.dims.size() >= 2 ? std::vector<uint64_t>{d.dims[1], d.dims[0]} : d.dims;
  if (n == "token_embd.weight") { expect(ckpt.get("model.embed_tokens.weight"), hf2d); return plan; }
  if (n == "output_norm.weight") { expect(ckpt.get("model.norm.weight"), hf2d); return plan; }
  if (n == "output.weight") { expect(ckpt.get("lm_head.weight"), hf2d); return plan; }

  // blk.L.<rest>
  const size_t dot = n.find('.', 4);
  const uint32_t l = uint32_t(std::stoul(n.substr(4, dot - 4)));
  const std::string rest = n.substr(dot + 1), p = hf_layer(l);
  static const std::unordered_map<std::string, std::string> direct = {
      {"attn_norm.weight", "input_layernorm.weight"},
      {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"attn_q.weight", "self_attn.q_proj.weight"},
      {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_v.weight", "self_attn.v_proj.weight"},
      {"attn_output.weight", "self_attn.o_proj.weight"},
      {"attn_q.bias", "self_attn.q_proj.bias"},
      {"attn_k.bias", "self_attn.k_proj.bias"},
      {"attn_v.bias", "self_attn.v_proj.bias"},
      {"attn_q_norm.weight", "self_attn.q_norm.weight"},
      {"attn_k_norm.weight", "self_attn.k_norm.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"},
      {"ffn_gate_inp_shexp.weight", "mlp.shared_expert_gate.weight"},
      {"ffn_gate_shexp.weight", "mlp.shared_expert.gate_proj.weight"},
      {"ffn_up_shexp.weight", "mlp.shared_expert.up_proj.weight"},
      {"ffn_down_shexp.weight", "mlp.shared_expert.down_proj.weight"},
  };
  const bool mixtral_names = ckpt.find(p + "block_sparse_moe.gate.weight") != nullptr;
  if (auto it = direct.find(rest); it != direct.end()) {
    expect(ckpt.get(p + it->second), hf2d);
    if (s.arch == "llama" && (rest == "attn_q.weight" || rest == "attn_k.weight")) plan.permute_head_dim = s.head_dim;
    return plan;
  }
  if (rest == "ffn_gate_inp.weight") {
    expect(ckpt.get(p + (mixtral_names ? "block_sparse_moe.gate.weight" : "mlp.gate.weight")), hf2d);
    return plan;
  }
  // Stacked experts: GGUF ne [in, out, n_expert] from n_expert HF tensors [out, in].
  const char* mixtral_proj = rest == "ffn_gate_exps.weight" ? "w1" : rest == "ffn_down_exps.weight" ? "w2" : "w3";
  const char* qwen_proj = rest == "ffn_gate_exps.weight" ? "gate_proj" : rest == "ffn_down_exps.weight" ? "down_proj" : "up_proj";
  if (rest == "ffn_gate_exps.weight" || rest == "ffn_up_exps.weight" || rest == "ffn_down_exps.weight") {
    for (uint32_t e = 0; e < s.n_expert; ++e) {
      const std::string name = mixtral_names
          ? p + "block_sparse_moe.experts." + std::to_string(e) + "." + mixtral_proj + ".weight"
          : p + "mlp.experts." + std::to_string(e) + "." + qwen_proj + ".weight";
      expect(ckpt.get(name), hf2d);
    }
    return plan;
  }
  fail(MOEVK_ERROR_INTERNAL, "converter has no source for " + n);
}

RowSource make_row_source(const SourcePlan& plan, const TensorDecl& d) {
  const uint64_t ne0 = d.dims[0];
  if (plan.permute_head_dim) {
    const StTensor* t = plan.parts[0];
    const uint32_t hd = plan.permute_head_dim;
    return [t, ne0, hd](uint64_t first, uint64_t n, float* out) {
      for (uint64_t r = 0; r < n; ++r) t->read_f32(llama_qk_source_row(first + r, hd) * ne0, ne0, out + r * ne0);
    };
  }
  if (plan.parts.size() == 1) {
    const StTensor* t = plan.parts[0];
    return [t, ne0](uint64_t first, uint64_t n, float* out) { t->read_f32(first * ne0, n * ne0, out); };
  }
  const uint64_t rows_per_part = d.dims[1];
  std::vector<const StTensor*> parts = plan.parts;
  return [parts, ne0, rows_per_part](uint64_t first, uint64_t n, float* out) {
    for (uint64_t r = first; r < first + n; ++r)
      parts[r / rows_per_part]->read_f32((r % rows_per_part) * ne0, ne0, out + (r - first) * ne0);
  };
}

text::VocabData vocab_for(const std::filesystem::path& dir, uint32_t n_vocab, const WriteCallbacks& callbacks) {
  const std::filesystem::path tok = dir / "tokenizer.json";
  std::error_code ec;
  if (!std::filesystem::exists(tok, ec)) {
    if (callbacks.log) callbacks.log("no tokenizer.json: writing a placeholder vocabulary of " + std::to_string(n_vocab) + " tokens");
    return placeholder_vocab(n_vocab);
  }
  const std::filesystem::path cfg = dir / "tokenizer_config.json";
  text::VocabData v = text::vocab_from_hf(read_text(tok), std::filesystem::exists(cfg, ec) ? read_text(cfg) : "");
  if (v.tokens.size() > n_vocab)
    fail(MOEVK_ERROR_INVALID_FILE, "tokenizer.json has " + std::to_string(v.tokens.size()) +
                                       " tokens, more than vocab_size " + std::to_string(n_vocab));
  // The embedding is often padded past the tokenizer (Qwen: 151936 rows, ~151.6k tokens);
  // llama.cpp names the extra rows [PAD<id>] and marks them unused.
  for (uint32_t id = uint32_t(v.tokens.size()); id < n_vocab; ++id) {
    v.tokens.push_back("[PAD" + std::to_string(id) + "]");
    if (!v.scores.empty()) v.scores.push_back(0.0f);
    if (!v.token_types.empty()) v.token_types.push_back(int32_t(text::TokenType::UNUSED));
  }
  return v;
}

}  // namespace

void convert_hf(const std::string& hf_dir, const std::string& out_path, const quant::FileType& type,
                const WriteCallbacks& callbacks, const TypeRules& rules) {
  namespace fs = std::filesystem;
  const fs::path dir(hf_dir);
  const Checkpoint ckpt(hf_dir);
  std::string name = fs::path(hf_dir).lexically_normal().filename().string();
  if (name.empty()) name = fs::path(hf_dir).lexically_normal().parent_path().filename().string();
  const ModelSpec spec = spec_from_hf(read_text(dir / "config.json"), ckpt, name);
  spec.hparams();  // validates before any tensor is looked at

  std::unordered_map<std::string, RowSource> sources;
  for (const TensorDecl& d : tensor_layout(spec)) sources.emplace(d.name, make_row_source(plan_source(spec, ckpt, d), d));
  const text::VocabData vocab = vocab_for(dir, spec.n_vocab, callbacks);
  write_model(out_path, spec, vocab, type, quant::ScaleSearch::Full,
              [&](const TensorDecl& d) { return sources.at(d.name); }, callbacks, rules);
}

}  // namespace moevk::convert
