// C API: convert, make-model, inspect (include/moevk.h, section "Files").
#include <nlohmann/json.hpp>
#include <optional>

#include "api/api_internal.hpp"
#include "convert/convert.hpp"
#include "gguf/gguf.hpp"
#include "models/hparams.hpp"
#include "text/chat_response.hpp"
#include "text/chat_template.hpp"

namespace {

using namespace moevk;

// Copies a caller's struct of possibly older (smaller) layout over our defaults, so callers
// built against an older header keep working; one smaller than the first layout is refused.
template <class T>
T read_params(const T* given, T defaults, const char* what) {
  if (!given) fail(MOEVK_ERROR_INVALID_ARGUMENT, std::string(what) + ": params is NULL");
  if (!api::copy_params(*given, defaults))
    fail(MOEVK_ERROR_INVALID_ARGUMENT,
         api::struct_size_message<T>((std::string(what) + ": params->struct_size").c_str(), given->struct_size));
  return defaults;
}

// What `moevk info` says of the file's chat template: its size, whether it parses, and whether
// a trial conversation renders (a system message and a user message, then the user message
// alone, for templates that refuse system messages). Placeholder BOS/EOS texts: no vocabulary
// is read.
nlohmann::json chat_template_json(const gguf::File& file) {
  std::optional<std::string> source;
  try {
    source = file.get_string("tokenizer.chat_template");
  } catch (const Error&) {  // present but not a string
  }
  nlohmann::json j = {{"bytes", source ? source->size() : 0}, {"renders", false}, {"system_message", false},
                      {"tools", false}, {"tool_calls", "none"}, {"reasoning", false}, {"error", nullptr}};
  if (!source || source->empty()) return j;
  const text::ResponseFormat format = text::ResponseFormat::of_template(*source);
  j["tool_calls"] = format.tools_name();
  j["reasoning"] = format.reasoning;
  try {
    text::ChatTemplate chat(*source);
    std::string plain;
    try {
      plain = chat.apply({{"system", "You are a helpful assistant."}, {"user", "Hello"}}, true);
      j["system_message"] = true;
    } catch (const Error&) {
      plain = chat.apply({{"user", "Hello"}}, true);
    }
    j["renders"] = true;
    // Whether a tool list reaches the prompt: the same conversation with one tool.
    const std::string messages = j["system_message"].get<bool>()
                                     ? R"([{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Hello"}])"
                                     : R"([{"role": "user", "content": "Hello"}])";
    try {
      j["tools"] = chat.apply_json(messages, true,
                                   R"([{"type": "function", "function": {"name": "moevk_probe", "description": "A probe.",
                                       "parameters": {"type": "object", "properties": {}}}}])") != plain;
    } catch (const Error&) {
    }
  } catch (const Error& e) {
    j["error"] = e.what();
  }
  return j;
}

quant::FileType parse_type_arg(const char* name, const char* what) {
  quant::FileType t;
  if (!name || !quant::parse_file_type(name, t))
    fail(MOEVK_ERROR_INVALID_ARGUMENT, std::string(what) + ": unknown type '" + (name ? name : "(null)") + "'");
  if (!quant::type_info(t.base).can_quantize)
    fail(MOEVK_ERROR_UNSUPPORTED, std::string(what) + ": cannot write type " + quant::type_info(t.base).name);
  return t;
}

convert::TypeRules rules_arg(const char* const* rules, size_t n, const char* what) {
  if (n > 0 && !rules) fail(MOEVK_ERROR_INVALID_ARGUMENT, std::string(what) + ": tensor_types is NULL");
  std::vector<std::string> texts;
  for (size_t i = 0; i < n; ++i) {
    if (!rules[i]) fail(MOEVK_ERROR_INVALID_ARGUMENT, std::string(what) + ": tensor_types[" + std::to_string(i) + "] is NULL");
    texts.emplace_back(rules[i]);
  }
  try {
    return convert::TypeRules::parse(texts);
  } catch (const Error& e) {
    fail(e.status(), std::string(what) + ": " + e.what());
  }
}

convert::WriteCallbacks callbacks_of(moevk_progress_fn progress, void* progress_user, moevk_log_fn log, void* log_user) {
  convert::WriteCallbacks cb;
  if (progress)
    cb.progress = [progress, progress_user](float f, const std::string& stage) {
      return progress(f, stage.c_str(), progress_user) != 0;
    };
  if (log) cb.log = [log, log_user](const std::string& line) { log(line.c_str(), log_user); };
  return cb;
}

}  // namespace

extern "C" {

moevk_convert_params moevk_convert_default_params(void) {
  moevk_convert_params p{};
  p.struct_size = sizeof p;
  p.type = "f16";
  return p;
}

moevk_status moevk_convert(const moevk_convert_params* params) {
  return api::guard([&] {
    const moevk_convert_params p = read_params(params, moevk_convert_default_params(), "moevk_convert");
    if (!p.hf_dir || !*p.hf_dir) fail(MOEVK_ERROR_INVALID_ARGUMENT, "moevk_convert: hf_dir is not set");
    if (!p.output_path || !*p.output_path) fail(MOEVK_ERROR_INVALID_ARGUMENT, "moevk_convert: output_path is not set");
    convert::convert_hf(p.hf_dir, p.output_path, parse_type_arg(p.type, "moevk_convert"),
                        callbacks_of(p.progress, p.progress_user_data, p.log, p.log_user_data),
                        rules_arg(p.tensor_types, p.n_tensor_types, "moevk_convert"));
  });
}

moevk_make_model_params moevk_make_model_default_params(void) {
  moevk_make_model_params p{};
  p.struct_size = sizeof p;
  p.preset = "tiny";
  p.type = "q4_0";
  p.seed = 1;
  return p;
}

moevk_status moevk_make_model(const moevk_make_model_params* params, char** info_json_out) {
  if (info_json_out) *info_json_out = nullptr;
  return api::guard([&] {
    const moevk_make_model_params p = read_params(params, moevk_make_model_default_params(), "moevk_make_model");
    if (!p.dry_run && (!p.output_path || !*p.output_path))
      fail(MOEVK_ERROR_INVALID_ARGUMENT, "moevk_make_model: output_path is not set");
    convert::MakeModelOverrides o;
    if (p.arch) o.arch = p.arch;
    o.n_layer = p.n_layer;
    o.n_embd = p.n_embd;
    o.n_ff = p.n_ff;
    o.n_ff_shexp = p.n_ff_shexp;
    o.n_expert = p.n_expert;
    o.n_expert_used = p.n_expert_used;
    o.n_head = p.n_head;
    o.n_head_kv = p.n_head_kv;
    o.head_dim = p.head_dim;
    o.n_vocab = p.n_vocab;
    o.n_ctx = p.n_ctx;
    const convert::ModelSpec spec = convert::make_model_spec(p.preset ? p.preset : "tiny", o);
    const model::ModelInfo info =
        convert::make_model(spec, parse_type_arg(p.type, "moevk_make_model"), p.output_path ? p.output_path : "",
                            p.seed, p.dry_run != 0, callbacks_of(p.progress, p.progress_user_data, p.log, p.log_user_data),
                            rules_arg(p.tensor_types, p.n_tensor_types, "moevk_make_model"));
    if (info_json_out) *info_json_out = api::to_c_string(model::model_info_json(info));
  });
}

moevk_status moevk_inspect_json(const char* gguf_path, char** json_out) {
  if (json_out) *json_out = nullptr;
  return api::guard([&] {
    if (!gguf_path || !json_out) fail(MOEVK_ERROR_INVALID_ARGUMENT, "moevk_inspect_json: NULL argument");
    const std::unique_ptr<gguf::File> file = gguf::File::open(gguf_path);
    nlohmann::json j = nlohmann::json::parse(model::file_info_json(*file));
    j["chat_template"] = chat_template_json(*file);
    *json_out = api::to_c_string(j.dump(2));
  });
}

moevk_split_params moevk_split_default_params(void) {
  moevk_split_params p{};
  p.struct_size = sizeof p;
  p.max_tensors = 128;
  return p;
}

moevk_status moevk_split(const moevk_split_params* params) {
  if (params && params->paths_json_out && params->struct_size >= sizeof(moevk_split_params))
    *params->paths_json_out = nullptr;
  return api::guard([&] {
    const moevk_split_params p = read_params(params, moevk_split_default_params(), "moevk_split");
    if (!p.input_path || !p.output_path)
      fail(MOEVK_ERROR_INVALID_ARGUMENT, "moevk_split: input_path and output_path are required");
    const std::unique_ptr<gguf::File> file = gguf::File::open(p.input_path);
    gguf::WriteProgress progress;
    if (p.progress)
      // moevk_progress_fn returns nonzero to cancel; WriteProgress false.
      progress = [&p](float f, const std::string& stage) { return p.progress(f, stage.c_str(), p.progress_user_data) == 0; };
    std::vector<std::string> paths;
    if (p.merge) {
      gguf::write_merged(*file, p.output_path, progress);
      paths.push_back(p.output_path);
    } else {
      paths = gguf::write_split(*file, p.output_path, {p.max_file_bytes, p.max_tensors, progress});
    }
    if (p.paths_json_out) *p.paths_json_out = api::to_c_string(nlohmann::json(paths).dump());
  });
}

}  // extern "C"
