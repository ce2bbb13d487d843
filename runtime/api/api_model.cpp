// C API: models and text (tokenize, detokenize, chat templates).
#include <memory>

#include <nlohmann/json.hpp>

#include "api/api_internal.hpp"
#include "api/handles.hpp"
#include "generate/tool_grammar.hpp"
#include "text/chat_response.hpp"
#include "text/chat_template.hpp"

using moevk::api::copy_params;
using moevk::api::guard;
using moevk::api::invalid_argument;
using moevk::api::struct_size_error;

extern "C" {

moevk_model_params moevk_model_default_params(void) {
  moevk_model_params p{};
  p.struct_size = sizeof p;
  return p;
}

moevk_status moevk_model_load(const char* path, const moevk_model_params* params, moevk_model** model_out) {
  if (!model_out) return invalid_argument("moevk_model_load: model_out is NULL");
  *model_out = nullptr;
  if (!path) return invalid_argument("moevk_model_load: path is NULL");
  moevk_model_params p = moevk_model_default_params();
  if (params && !copy_params(*params, p))
    return struct_size_error<moevk_model_params>("moevk_model_load: params->struct_size", params->struct_size);
  return guard([&] {
    moevk::models::LoadOptions options;
    if (p.device) options.device.device = p.device;
    options.device.validation = p.validation != 0;
    if (p.progress) {
      options.progress = [&](float fraction, const char* stage) {
        return p.progress(fraction, stage, p.progress_user_data) == 0;
      };
    }
    auto m = std::make_unique<moevk_model>();
    m->model = moevk::models::Model::load(path, options);
    m->tokenizer = std::make_unique<moevk::text::Tokenizer>(m->model->vocab());
    *model_out = m.release();
  });
}

void moevk_model_free(moevk_model* model) { delete model; }

const char* moevk_model_last_error(const moevk_model* model) {
  return model ? model->last_error.get() : moevk_last_error();
}

moevk_status moevk_model_info_json(const moevk_model* model, char** json_out) {
  if (!model || !json_out) return invalid_argument("moevk_model_info_json: NULL argument");
  return guard(
      [&] {
        const auto& m = *model->model;
        const auto& h = m.hparams();
        const auto& caps = m.context().caps();
        nlohmann::json j = {
            {"path", m.path()},
            {"architecture", h.arch},
            {"n_vocab", h.n_vocab},
            {"n_ctx_train", h.n_ctx_train},
            {"n_embd", h.n_embd},
            {"n_layer", h.n_layer},
            {"n_head", h.n_head},
            {"n_head_kv", h.n_head_kv},
            {"head_dim", h.head_dim},
            {"n_expert", h.n_expert},
            {"n_expert_used", h.n_expert_used},
            {"weight_bytes", m.weight_bytes()},
            {"device", caps.name},
            {"device_vendor", caps.vendor},
            {"driver", caps.driver_name + " " + caps.driver_version_string},
            {"features", m.context().features().describe()},
        };
        *json_out = moevk::api::to_c_string(j.dump(2));
      },
      model->last_error);
}

int32_t moevk_model_n_vocab(const moevk_model* model) { return model ? model->tokenizer->vocab_size() : 0; }
int32_t moevk_model_n_ctx_train(const moevk_model* model) {
  return model ? static_cast<int32_t>(model->model->hparams().n_ctx_train) : 0;
}
int32_t moevk_model_bos(const moevk_model* model) { return model ? model->tokenizer->bos_id() : -1; }
int32_t moevk_model_eos(const moevk_model* model) { return model ? model->tokenizer->eos_id() : -1; }
int moevk_model_is_eog(const moevk_model* model, int32_t token) {
  return model && token >= 0 && token < model->tokenizer->vocab_size() && model->tokenizer->is_eog(token);
}

moevk_status moevk_tokenize(const moevk_model* model, const char* text, size_t text_len, int add_special,
                            int parse_special, int32_t* tokens, size_t capacity, size_t* n_tokens_out) {
  if (!model || (!text && text_len) || !n_tokens_out || (!tokens && capacity))
    return invalid_argument("moevk_tokenize: NULL argument");
  moevk_status status = guard(
      [&] {
        auto ids = model->tokenizer->encode(std::string_view(text ? text : "", text_len), add_special != 0,
                                            parse_special != 0);
        *n_tokens_out = ids.size();
        if (ids.size() > capacity)
          throw moevk::Error(MOEVK_ERROR_INVALID_ARGUMENT, "moevk_tokenize: " + std::to_string(ids.size()) +
                                                               " tokens do not fit a buffer of " +
                                                               std::to_string(capacity));
        std::copy(ids.begin(), ids.end(), tokens);
      },
      model->last_error);
  return status;
}

moevk_status moevk_detokenize(const moevk_model* model, const int32_t* tokens, size_t n_tokens, char** text_out) {
  if (!model || (!tokens && n_tokens) || !text_out) return invalid_argument("moevk_detokenize: NULL argument");
  return guard(
      [&] {
        *text_out = moevk::api::to_c_string(
            model->tokenizer->decode(std::span<const int32_t>(tokens, n_tokens), /*skip_special=*/false));
      },
      model->last_error);
}

moevk_status moevk_token_to_piece(const moevk_model* model, int32_t token, char** piece_out, size_t* len_out) {
  if (!model || !piece_out) return invalid_argument("moevk_token_to_piece: NULL argument");
  return guard(
      [&] {
        std::string piece = model->tokenizer->token_to_piece(token);
        if (len_out) *len_out = piece.size();
        *piece_out = moevk::api::to_c_string(piece);
      },
      model->last_error);
}

moevk_chat_params moevk_chat_default_params(void) {
  moevk_chat_params p{};
  p.struct_size = sizeof p;
  p.template_name = nullptr;
  p.add_generation_prompt = 1;
  p.enable_thinking = -1;
  return p;
}

}  // extern "C"

namespace {

// The chat entry points' shared body: parameters checked, the template chosen, and `render`
// called with it and the template variables the fields ask for.
template <class Render>
moevk_status with_chat_template(const moevk_model* model, const moevk_chat_params* params, const char* fn,
                                Render&& render) {
  moevk_chat_params p = moevk_chat_default_params();
  if (params && !moevk::api::copy_params(*params, p))
    return moevk::api::struct_size_error<moevk_chat_params>((std::string(fn) + ": params->struct_size").c_str(),
                                                            params->struct_size);
  if (p.enable_thinking < -1 || p.enable_thinking > 1)
    return invalid_argument((std::string(fn) + ": enable_thinking is " + std::to_string(p.enable_thinking) +
                             ", not -1 (unset), 0 or 1")
                                .c_str());
  return guard(
      [&] {
        const auto& tok = *model->tokenizer;
        std::string source = p.template_name ? p.template_name : tok.vocab().chat_template;
        if (source.empty())
          throw moevk::Error(MOEVK_ERROR_TOKENIZER,
                             "the model has no chat template (tokenizer.chat_template); choose one with "
                             "--chat-template chatml|mistral|llama3");
        auto piece = [&](int32_t id) { return id >= 0 ? tok.token_to_piece(id) : std::string(); };
        moevk::text::ChatTemplate tmpl(source, piece(tok.bos_id()), piece(tok.eos_id()));
        std::vector<moevk::text::ChatVariable> variables;
        if (p.enable_thinking >= 0)
          variables.push_back({"enable_thinking", moevk::text::ChatVariable::Kind::Bool, p.enable_thinking == 1, {}});
        render(tmpl, p, variables);
      },
      model->last_error);
}

// The response entry points' shared body: parameters checked (NULL: the defaults) and `body`
// called with them and the response format of their template (the file's, or template_name).
template <class Body>
moevk_status with_response_format(const moevk_model* model, const moevk_chat_params* params, const char* fn,
                                  Body&& body) {
  moevk_chat_params p = moevk_chat_default_params();
  if (params && !moevk::api::copy_params(*params, p))
    return moevk::api::struct_size_error<moevk_chat_params>((std::string(fn) + ": params->struct_size").c_str(),
                                                            params->struct_size);
  return guard(
      [&] {
        const std::string_view source = p.template_name ? std::string_view(p.template_name)
                                                        : std::string_view(model->tokenizer->vocab().chat_template);
        body(moevk::text::ResponseFormat::of_template(source), p);
      },
      model->last_error);
}

}  // namespace

extern "C" {

moevk_status moevk_chat_apply_template_with(const moevk_model* model, const moevk_chat_message* messages,
                                            size_t n_messages, const moevk_chat_params* params, char** prompt_out) {
  if (!model || (!messages && n_messages) || !prompt_out)
    return invalid_argument("moevk_chat_apply_template_with: NULL argument");
  return with_chat_template(model, params, "moevk_chat_apply_template_with", [&](const auto& tmpl, const auto& p,
                                                                                 const auto& variables) {
    std::vector<moevk::text::Message> msgs;
    for (size_t i = 0; i < n_messages; ++i) {
      if (!messages[i].role || !messages[i].content)
        throw moevk::Error(MOEVK_ERROR_INVALID_ARGUMENT, "chat message " + std::to_string(i) + " has a NULL field");
      msgs.push_back({messages[i].role, messages[i].content});
    }
    *prompt_out = moevk::api::to_c_string(tmpl.apply(msgs, p.add_generation_prompt != 0, variables,
                                                     p.tools_json ? p.tools_json : "",
                                                     p.variables_json ? p.variables_json : ""));
  });
}

moevk_status moevk_chat_apply_template_json(const moevk_model* model, const char* messages_json,
                                            const moevk_chat_params* params, char** prompt_out) {
  if (!model || !messages_json || !prompt_out) return invalid_argument("moevk_chat_apply_template_json: NULL argument");
  return with_chat_template(model, params, "moevk_chat_apply_template_json", [&](const auto& tmpl, const auto& p,
                                                                                 const auto& variables) {
    *prompt_out = moevk::api::to_c_string(tmpl.apply_json(messages_json, p.add_generation_prompt != 0,
                                                          p.tools_json ? p.tools_json : "",
                                                          p.variables_json ? p.variables_json : "", variables));
  });
}

moevk_status moevk_chat_parse_response(const moevk_model* model, const char* text, const moevk_chat_params* params,
                                       char** message_json_out) {
  if (!model || !text || !message_json_out) return invalid_argument("moevk_chat_parse_response: NULL argument");
  return with_response_format(model, params, "moevk_chat_parse_response", [&](const auto& format, const auto& p) {
    *message_json_out =
        moevk::api::to_c_string(moevk::text::parse_response(text, format, p.tools_json ? p.tools_json : ""));
  });
}

moevk_status moevk_chat_stream_create(const moevk_model* model, const moevk_chat_params* params, const char* prompt,
                                      moevk_chat_stream** stream_out) {
  if (!model || !stream_out) return invalid_argument("moevk_chat_stream_create: NULL argument");
  *stream_out = nullptr;
  return with_response_format(model, params, "moevk_chat_stream_create", [&](const auto& format, const auto& p) {
    auto s = std::make_unique<moevk_chat_stream>();
    s->stream = std::make_unique<moevk::text::ResponseStream>(format, p.tools_json ? p.tools_json : "",
                                                              prompt ? prompt : "");
    *stream_out = s.release();
  });
}

moevk_status moevk_chat_stream_push(moevk_chat_stream* stream, const char* text, size_t text_len, char** delta_json_out) {
  if (!stream) return invalid_argument("moevk_chat_stream_push: stream is NULL");
  if ((!text && text_len) || !delta_json_out) {
    stream->last_error = "moevk_chat_stream_push: NULL argument";
    return invalid_argument("moevk_chat_stream_push: NULL argument");
  }
  *delta_json_out = nullptr;
  return guard(
      [&] {
        *delta_json_out = moevk::api::to_c_string(stream->stream->push(std::string_view(text ? text : "", text_len)));
      },
      &stream->last_error);
}

moevk_status moevk_chat_stream_finish(moevk_chat_stream* stream, char** delta_json_out, char** message_json_out) {
  if (!stream) return invalid_argument("moevk_chat_stream_finish: stream is NULL");
  if (!delta_json_out || !message_json_out) {
    stream->last_error = "moevk_chat_stream_finish: NULL argument";
    return invalid_argument("moevk_chat_stream_finish: NULL argument");
  }
  *delta_json_out = *message_json_out = nullptr;
  return guard(
      [&] {
        std::string message;
        std::unique_ptr<char, void (*)(char*)> delta(moevk::api::to_c_string(stream->stream->finish(message)),
                                                     moevk_free_string);
        *message_json_out = moevk::api::to_c_string(message);
        *delta_json_out = delta.release();
      },
      &stream->last_error);
}

const char* moevk_chat_stream_last_error(const moevk_chat_stream* stream) {
  return stream ? stream->last_error.c_str() : "";
}

void moevk_chat_stream_free(moevk_chat_stream* stream) { delete stream; }

moevk_status moevk_chat_tool_call_grammar(const moevk_model* model, const moevk_chat_params* params,
                                         char** grammar_out, char** trigger_out) {
  if (!model || !params || !grammar_out || !trigger_out)
    return invalid_argument("moevk_chat_tool_call_grammar: NULL argument");
  return with_response_format(model, params, "moevk_chat_tool_call_grammar", [&](const auto& format, const auto& p) {
    *grammar_out = *trigger_out = nullptr;
    if (!p.tools_json) throw moevk::Error(MOEVK_ERROR_INVALID_ARGUMENT, "moevk_chat_tool_call_grammar: no tools_json");
    const auto g = moevk::generate::tool_call_grammar(format, p.tools_json,
                                                      moevk::generate::ToolChoice::parse(p.tool_choice ? p.tool_choice : ""));
    std::unique_ptr<char, void (*)(char*)> grammar(moevk::api::to_c_string(g.grammar), moevk_free_string);
    *trigger_out = g.trigger.empty() ? nullptr : moevk::api::to_c_string(g.trigger);
    *grammar_out = grammar.release();
  });
}

moevk_status moevk_chat_apply_template(const moevk_model* model, const char* template_name,
                                       const moevk_chat_message* messages, size_t n_messages,
                                       int add_generation_prompt, char** prompt_out) {
  moevk_chat_params p = moevk_chat_default_params();
  p.template_name = template_name;
  p.add_generation_prompt = add_generation_prompt;
  return moevk_chat_apply_template_with(model, messages, n_messages, &p, prompt_out);
}

}  // extern "C"
