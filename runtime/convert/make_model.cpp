// Random-weight model files with the shapes of real models, for benchmarks and memory tests.
// Values are deterministic per (seed, tensor, row), so the file does not depend on threading.
// Generation is table-driven (12 random bits -> one normal quantile), cheap enough that writing
// a 26 GB Mixtral-8x7B Q4_0 file is bound by quantization and the disk, not the RNG.
#include <cmath>
#include <cstring>

#include "common/error.hpp"
#include "convert/convert.hpp"

namespace moevk::convert {

namespace {

struct Preset {
  const char* name;
  ModelSpec spec;
  bool head_dim_derived;  // head_dim follows n_embd / n_head when those are overridden
};

ModelSpec base(const char* arch, uint32_t layers, uint32_t embd, uint32_t n_ff, uint32_t ff_exp, uint32_t ff_shexp,
               uint32_t experts, uint32_t used, uint32_t heads, uint32_t heads_kv, uint32_t head_dim, uint32_t vocab,
               uint32_t ctx, float eps, float theta) {
  ModelSpec s;
  s.arch = arch;
  s.n_layer = layers;
  s.n_embd = embd;
  s.n_ff = n_ff;
  s.n_ff_exp = ff_exp;
  s.n_ff_shexp = ff_shexp;
  s.n_expert = experts;
  s.n_expert_used = used;
  s.n_head = heads;
  s.n_head_kv = heads_kv;
  s.head_dim = head_dim;
  s.n_vocab = vocab;
  s.n_ctx_train = ctx;
  s.norm_eps = eps;
  s.rope_freq_base = theta;
  return s;
}

// Architecture-specific structure: Qwen1.5-MoE has q/k/v biases, a shared expert and no top-k
// renormalisation; Qwen3-MoE has per-head q/k RMSNorm; Mixtral renormalises.
void apply_arch_flags(ModelSpec& s) {
  s.qkv_bias = s.arch == "qwen2moe" || s.arch == "qwen2";
  s.qk_norm = s.arch == "qwen3moe" || s.arch == "qwen3";
  s.expert_weights_norm = model::default_expert_weights_norm(s.arch);
  if (s.arch != "qwen2moe") s.n_ff_shexp = 0;
}

const std::vector<Preset>& presets() {
  static const std::vector<Preset> all = [] {
    std::vector<Preset> p;
    p.push_back({"tiny", base("llama", 2, 64, 128, 128, 0, 8, 2, 4, 2, 16, 512, 512, 1e-5f, 1e6f), true});
    p.push_back({"tiny-qwen2moe", base("qwen2moe", 2, 64, 128, 32, 96, 12, 4, 4, 2, 16, 512, 512, 1e-6f, 1e6f), true});
    p.push_back({"tiny-qwen3moe", base("qwen3moe", 3, 64, 128, 32, 0, 16, 4, 4, 2, 32, 512, 512, 1e-6f, 1e6f), false});
    // Dense models (no experts): Llama, Qwen2 (q/k/v biases), Qwen3 (q/k norms, head_dim * heads
    // wider than the model, as in Qwen3). FFN width 160: not a multiple of the matmul tiles.
    p.push_back({"tiny-llama", base("llama", 2, 64, 160, 0, 0, 0, 0, 4, 2, 16, 384, 512, 1e-5f, 1e4f), true});
    p.push_back({"tiny-qwen2", base("qwen2", 2, 64, 160, 0, 0, 0, 0, 4, 2, 16, 384, 512, 1e-6f, 1e6f), true});
    p.push_back({"tiny-qwen3", base("qwen3", 2, 64, 160, 0, 0, 0, 0, 4, 2, 32, 384, 512, 1e-6f, 1e6f), false});
    p.push_back({"mixtral-8x7b", base("llama", 32, 4096, 14336, 14336, 0, 8, 2, 32, 8, 128, 32000, 32768, 1e-5f, 1e6f), true});
    p.push_back({"mixtral-8x22b", base("llama", 56, 6144, 16384, 16384, 0, 8, 2, 48, 8, 128, 32768, 65536, 1e-5f, 1e6f), true});
    p.push_back({"qwen1.5-moe-a2.7b",
                 base("qwen2moe", 24, 2048, 5632, 1408, 5632, 60, 4, 16, 16, 128, 151936, 8192, 1e-6f, 1e6f), true});
    p.push_back({"qwen3-30b-a3b",
                 base("qwen3moe", 48, 2048, 6144, 768, 0, 128, 8, 32, 4, 128, 151936, 40960, 1e-6f, 1e6f), false});
    for (Preset& preset : p) {
      preset.spec.name = std::string("random ") + preset.name;
      apply_arch_flags(preset.spec);
    }
    return p;
  }();
  return all;
}

// ---- deterministic fast normals ----------------------------------------------------------

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Standard-normal quantiles at (k + 0.5) / 4096: |x| <= 3.5, a fine stand-in for N(0,1) weights.
const float* normal_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(4096);
    for (int k = 0; k < 4096; ++k) {
      const double p = (k + 0.5) / 4096.0;
      double lo = -10, hi = 10;  // bisection on the CDF 0.5 * erfc(-x / sqrt 2)
      for (int it = 0; it < 60; ++it) {
        const double mid = 0.5 * (lo + hi);
        (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
      }
      t[k] = float(0.5 * (lo + hi));
    }
    return t;
  }();
  return table.data();
}

uint64_t name_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Scale and offset of a tensor's values: matrices N(0, 0.02^2) as at initialisation of trained
// models, norms around 1, biases and routers small.
void value_law(const TensorDecl& d, float& mean, float& stddev) {
  const std::string& n = d.name;
  mean = 0.0f;
  stddev = 0.02f;
  if (n.find("norm") != std::string::npos) {
    mean = 1.0f;
    stddev = 0.05f;
  }
}

}  // namespace

const char* make_model_presets() {
  return "tiny, tiny-qwen2moe, tiny-qwen3moe, tiny-llama, tiny-qwen2, tiny-qwen3, mixtral-8x7b, mixtral-8x22b, "
         "qwen1.5-moe-a2.7b, qwen3-30b-a3b";
}

ModelSpec make_model_spec(const std::string& preset_name, const MakeModelOverrides& o) {
  const Preset* preset = nullptr;
  for (const Preset& p : presets())
    if (p.name == preset_name) preset = &p;
  if (!preset)
    fail(MOEVK_ERROR_INVALID_ARGUMENT,
         "unknown preset '" + preset_name + "' (known: " + make_model_presets() + ")");
  ModelSpec s = preset->spec;
  // Dense presets switch among the dense architectures, MoE presets among the MoE ones
  // (llama.cpp's qwen2/qwen3 graphs have no experts; llama covers both).
  const bool dense = s.n_expert == 0;
  if (dense && o.n_expert)
    fail(MOEVK_ERROR_INVALID_ARGUMENT, "make-model: preset '" + preset_name + "' is dense; --experts needs a MoE preset");
  if (!o.arch.empty() && o.arch != s.arch) {
    const bool allowed = dense ? (o.arch == "llama" || o.arch == "qwen2" || o.arch == "qwen3")
                               : (o.arch == "llama" || o.arch == "qwen2moe" || o.arch == "qwen3moe");
    if (!allowed)
      fail(MOEVK_ERROR_INVALID_ARGUMENT, std::string("make-model: --arch must be ") +
                                             (dense ? "llama, qwen2 or qwen3 for a dense preset"
                                                    : "llama, qwen2moe or qwen3moe for a MoE preset"));
    s.arch = o.arch;
    apply_arch_flags(s);
    if (s.arch == "qwen2moe" && s.n_ff_shexp == 0) s.n_ff_shexp = s.n_ff_exp * 4;
  }
  auto set = [](uint32_t& field, uint32_t v) { if (v) field = v; };
  set(s.n_layer, o.n_layer);
  set(s.n_embd, o.n_embd);
  set(s.n_expert, o.n_expert);
  set(s.n_expert_used, o.n_expert_used);
  set(s.n_head, o.n_head);
  set(s.n_head_kv, o.n_head_kv);
  set(s.n_vocab, o.n_vocab);
  set(s.n_ctx_train, o.n_ctx);
  if (s.arch == "qwen2moe") set(s.n_ff_shexp, o.n_ff_shexp);
  if (o.n_ff) {
    // The width that matters is the expert's; Mixtral files store it as feed_forward_length too.
    // Dense models have only the dense width.
    if (!dense) s.n_ff_exp = o.n_ff;
    if (dense || s.arch == "llama") s.n_ff = o.n_ff;
  }
  if (o.head_dim) {
    s.head_dim = o.head_dim;
  } else if (preset->head_dim_derived && (o.n_embd || o.n_head)) {
    if (s.n_head == 0 || s.n_embd % s.n_head != 0)
      fail(MOEVK_ERROR_INVALID_ARGUMENT, "make-model: --embd must be a multiple of --heads (or give --head-dim)");
    s.head_dim = s.n_embd / s.n_head;
  }
  s.layer_is_moe.assign(s.n_layer, s.n_expert > 0 ? 1 : 0);
  if (s.n_layer > 4096 || s.n_embd > (1u << 20) || s.n_vocab > (1u << 24) || s.n_expert > (1u << 14))
    fail(MOEVK_ERROR_INVALID_ARGUMENT, "make-model: a dimension is out of range");
  try {
    s.hparams();
  } catch (const Error& e) {
    fail(MOEVK_ERROR_INVALID_ARGUMENT, std::string("make-model: ") + e.what());
  }
  return s;
}

model::ModelInfo make_model(const ModelSpec& spec, const quant::FileType& type, const std::string& out_path,
                            uint64_t seed, bool dry_run, const WriteCallbacks& callbacks, const TypeRules& rules) {
  const model::HParams hp = spec.hparams();
  if (!quant::type_info(type.base).can_quantize)
    fail(MOEVK_ERROR_UNSUPPORTED, std::string("make-model: no CPU quantizer for ") + quant::type_info(type.base).name);
  std::vector<std::string> notes;
  model::ModelInfo info = model::describe(hp, planned_shapes(spec, type, &notes, rules));
  if (dry_run) {
    if (callbacks.log)
      for (const std::string& n : notes) callbacks.log(n);
    return info;
  }
  const float* table = normal_table();
  auto source = [&](const TensorDecl& d) -> RowSource {
    float mean, stddev;
    value_law(d, mean, stddev);
    const uint64_t tensor_seed = seed * 0xD1B54A32D192ED03ull ^ name_hash(d.name);
    const uint64_t ne0 = d.dims[0];
    return [=](uint64_t first, uint64_t n, float* out) {
      for (uint64_t r = first; r < first + n; ++r) {
        uint64_t state = tensor_seed + r * 0x9E3779B97F4A7C15ull;
        splitmix64(state);  // decorrelate neighbouring rows
        float* row = out + (r - first) * ne0;
        uint64_t i = 0;
        while (i < ne0) {
          uint64_t bits = splitmix64(state);
          for (int k = 0; k < 5 && i < ne0; ++k, ++i, bits >>= 12) row[i] = mean + stddev * table[bits & 4095];
        }
      }
    };
  };
  // Random weights: the scale search would only refine the rounding of meaningless values, and
  // it is most of the time of a K-quant file (Qwen3-30B-A3B in Q4_K: ~7 M values/s per core
  // with it, about 4.5 minutes on 16 cores for its 30 G values; see quant::ScaleSearch).
  write_model(out_path, spec, placeholder_vocab(spec.n_vocab), type, quant::ScaleSearch::MinMax, source, callbacks,
              rules);
  return info;
}

}  // namespace moevk::convert
