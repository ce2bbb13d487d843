// Size summary of a model: what it stores, and what one decoded token reads. Decoding is bound by
// memory bandwidth, so "bytes read per token" (attention, router, shared expert, the k chosen
// experts' slices, norms, output matrix, one embedding row) is the number that predicts speed.
#include <algorithm>
#include <cstring>
#include <cstdint>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "gguf/gguf.hpp"
#include "models/hparams.hpp"
#include "quant/file_type.hpp"

namespace moevk::model {

bool is_routed_expert_tensor(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return false;
  for (const char* merged : {".ffn_gate_exps.weight", ".ffn_up_exps.weight", ".ffn_down_exps.weight"}) {
    const size_t n = std::strlen(merged);
    if (name.size() > n && name.compare(name.size() - n, n, merged) == 0) return true;
  }
  // blk.N.ffn_gate.E.weight (one tensor per expert, older Mixtral conversions)
  for (const char* proj : {".ffn_gate.", ".ffn_up.", ".ffn_down."}) {
    const size_t at = name.find(proj);
    if (at == std::string::npos) continue;
    size_t p = at + std::strlen(proj);
    const size_t digits_begin = p;
    while (p < name.size() && name[p] >= '0' && name[p] <= '9') ++p;
    if (p > digits_begin && name.compare(p, std::string::npos, ".weight") == 0) return true;
  }
  return false;
}

ModelInfo describe(const HParams& hp, const std::vector<TensorShape>& tensors) {
  ModelInfo info;
  info.hp = hp;
  info.n_tensors = tensors.size();
  std::map<uint32_t, TypeUsage> usage;
  // Routed experts are read k/E of the time on average per token (exactly k slices of E).
  const double expert_fraction = hp.n_expert ? double(hp.n_expert_used) / double(hp.n_expert) : 1.0;
  for (const TensorShape& t : tensors) {
    uint64_t elements = 1;
    for (uint64_t d : t.dims) elements *= d;
    info.total_params += elements;
    info.weight_bytes += t.bytes;
    TypeUsage& u = usage[uint32_t(t.type)];
    u.type = t.type;
    u.tensors += 1;
    u.elements += elements;
    u.bytes += t.bytes;

    if (is_routed_expert_tensor(t.name)) {
      info.expert_params += elements;
      info.active_params += uint64_t(double(elements) * expert_fraction + 0.5);
      info.active_bytes_per_token += uint64_t(double(t.bytes) * expert_fraction + 0.5);
    } else if (t.name == "token_embd.weight" && !hp.tied_output && t.dims.size() >= 2 && t.dims[1] > 0) {
      // One row is gathered per token. (Tied output: the whole matrix is read for the logits.)
      info.active_params += t.dims[0];
      info.active_bytes_per_token += t.bytes / t.dims[1];
    } else {
      info.active_params += elements;
      info.active_bytes_per_token += t.bytes;
    }
  }
  for (auto& [id, u] : usage) info.by_type.push_back(u);
  std::sort(info.by_type.begin(), info.by_type.end(),
            [](const TypeUsage& a, const TypeUsage& b) { return a.bytes > b.bytes; });
  // F16 K and V per layer per token.
  info.kv_bytes_per_token = uint64_t(hp.n_layer) * (uint64_t(hp.n_embd_k_gqa()) + hp.n_embd_v_gqa()) * 2;
  info.kv_bytes_full_context = info.kv_bytes_per_token * hp.n_ctx_train;
  return info;
}

ModelInfo describe(const gguf::File& file) {
  HParams hp = read_hparams(file);
  std::vector<TensorShape> shapes;
  shapes.reserve(file.tensors().size());
  for (const gguf::TensorInfo& t : file.tensors()) shapes.push_back({t.name, t.dims, t.type, t.size});
  return describe(hp, shapes);
}

std::string model_info_json(const ModelInfo& info) {
  const HParams& hp = info.hp;
  nlohmann::json h = {
      {"architecture", hp.arch},
      {"n_vocab", hp.n_vocab},
      {"n_ctx_train", hp.n_ctx_train},
      {"n_embd", hp.n_embd},
      {"n_layer", hp.n_layer},
      {"n_head", hp.n_head},
      {"n_head_kv", hp.n_head_kv},
      {"head_dim", hp.head_dim},
      {"head_dim_v", hp.head_dim_v},
      {"n_rot", hp.n_rot},
      {"n_ff", hp.n_ff},
      {"n_ff_exp", hp.n_ff_exp},
      {"n_ff_shexp", hp.n_ff_shexp},
      {"n_expert", hp.n_expert},
      {"n_expert_used", hp.n_expert_used},
      {"norm_eps", hp.norm_eps},
      {"rope_freq_base", hp.rope_freq_base},
      {"rope_type", hp.rope_type == RopeType::NORM ? "norm" : "neox"},
      {"expert_weights_norm", hp.expert_weights_norm},
      {"has_shared_expert", hp.has_shared_expert},
      {"qkv_bias", hp.qkv_bias},
      {"qk_norm", hp.qk_norm},
      {"tied_output", hp.tied_output},
  };
  uint32_t moe_layers = 0;
  for (uint8_t m : hp.layer_is_moe) moe_layers += m;
  h["n_moe_layers"] = moe_layers;
  nlohmann::json types = nlohmann::json::array();
  for (const TypeUsage& u : info.by_type)
    types.push_back({{"type", quant::type_info(u.type).name}, {"tensors", u.tensors},
                     {"elements", u.elements}, {"bytes", u.bytes}});
  nlohmann::json j = {
      {"hparams", h},
      {"n_tensors", info.n_tensors},
      {"total_params", info.total_params},
      {"expert_params", info.expert_params},
      {"active_params", info.active_params},
      {"weight_bytes", info.weight_bytes},
      {"active_bytes_per_token", info.active_bytes_per_token},
      {"kv_bytes_per_token", info.kv_bytes_per_token},
      {"kv_bytes_full_context", info.kv_bytes_full_context},
      {"types", types},
  };
  return j.dump(2);
}

std::string file_info_json(const gguf::File& file) {
  nlohmann::json j = nlohmann::json::parse(model_info_json(describe(file)));
  j["gguf"] = {{"version", file.version()},
               {"alignment", file.alignment()},
               {"data_offset", file.data_offset()},
               {"file_size", file.file_size()}};
  // The files of a split set (one entry for a plain file); a tensor's offset is in its file.
  nlohmann::json shards = nlohmann::json::array();
  for (const gguf::Shard& s : file.shards())
    shards.push_back({{"path", s.path}, {"version", s.version}, {"alignment", s.alignment},
                      {"data_offset", s.data_offset}, {"file_size", s.file_size}, {"n_tensors", s.n_tensors}});
  j["gguf"]["files"] = std::move(shards);
  // general.file_type (llama_ftype) as published files name it: "Q4_K_M". Informational only
  // (the tensors' own types are what is loaded), so a value of the wrong type is left out.
  std::optional<uint64_t> file_type;
  try {
    file_type = file.get_uint("general.file_type");
  } catch (const Error&) {
  }
  if (file_type) {
    const char* name = *file_type <= UINT32_MAX ? quant::file_type_id_name(uint32_t(*file_type)) : nullptr;
    j["file_type"] = {{"id", *file_type}, {"name", name ? nlohmann::json(name) : nlohmann::json(nullptr)}};
  }
  nlohmann::json tensors = nlohmann::json::array();
  for (const gguf::TensorInfo& t : file.tensors())
    tensors.push_back({{"name", t.name}, {"type", quant::type_info(t.type).name}, {"type_id", uint32_t(t.type)},
                       {"dims", t.dims}, {"file", t.shard}, {"offset", t.offset}, {"bytes", t.size}});
  j["tensors"] = std::move(tensors);
  return j.dump(2);
}

}  // namespace moevk::model
