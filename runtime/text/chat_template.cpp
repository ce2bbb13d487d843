#include "text/chat_template.hpp"

#include "common/error.hpp"
#include "common/ordered_json.hpp"
#include "text/jinja.hpp"

namespace moevk::text {

namespace {

// The named forms, written for moevk (tests/text/chat_template_test.cpp checks each against the
// model template it stands for).
// ChatML as Qwen writes it, tools included (the hermes form that ResponseFormat reads for
// "chatml"): the tools' signatures in the system turn, calls as <tool_call> JSON blocks, results
// as <tool_response> blocks in a user turn.
constexpr const char* kChatML =
    "{%- set ns = namespace(first=0) %}"
    "{%- if tools %}"
    "{{- '<|im_start|>system\\n' }}"
    "{%- if messages and messages[0].role == 'system' %}"
    "{{- messages[0].content + '\\n\\n' }}{%- set ns.first = 1 %}"
    "{%- endif %}"
    "{{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n'"
    " ~ 'You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' ~ (tool | tojson) }}{%- endfor %}"
    "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within '"
    " ~ '<tool_call></tool_call> XML tags:\\n<tool_call>\\n{\"name\": <function-name>, \"arguments\": '"
    " ~ '<args-json-object>}\\n</tool_call><|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages[ns.first:] %}"
    "{%- if message.role not in ['system', 'user', 'assistant', 'tool'] %}"
    "{{- raise_exception('chatml: unsupported role ' ~ message.role) }}"
    "{%- endif %}"
    "{%- set content = message.content if message.content is string else '' %}"
    "{%- if message.role == 'tool' %}"
    "{%- if loop.first or loop.previtem.role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}"
    "{{- '\\n<tool_response>\\n' ~ content ~ '\\n</tool_response>' }}"
    "{%- if loop.last or loop.nextitem.role != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}"
    "{%- else %}"
    "{{- '<|im_start|>' + message.role + '\\n' + content }}"
    "{%- if message.role == 'assistant' and message.tool_calls %}"
    "{%- for call in message.tool_calls %}"
    "{%- set f = call.function if call.function is defined else call %}"
    "{%- if content or not loop.first %}{{- '\\n' }}{%- endif %}"
    "{{- '<tool_call>\\n{\"name\": \"' ~ f.name ~ '\", \"arguments\": '"
    " ~ (f.arguments if f.arguments is string else f.arguments | tojson) ~ '}\\n</tool_call>' }}"
    "{%- endfor %}"
    "{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}";

constexpr const char* kMistral =
    "{%- set ns = namespace(system='', first=0) %}"
    "{%- if messages and messages[0].role == 'system' %}"
    "{%- set ns.system = messages[0].content %}{%- set ns.first = 1 %}"
    "{%- endif %}"
    "{{- bos_token }}"
    "{%- for message in messages[ns.first:] %}"
    "{%- if message.role not in ['user', 'assistant'] %}"
    "{{- raise_exception('mistral: only user and assistant roles follow the optional system message') }}"
    "{%- endif %}"
    "{%- if (message.role == 'user') != loop.index0 is even %}"
    "{{- raise_exception('mistral: after the optional system message, roles must alternate user/assistant/...') }}"
    "{%- endif %}"
    "{%- if message.role == 'user' %}"
    "{{- ' [INST] ' + (ns.system + '\\n\\n' if loop.first and ns.first else '') + message.content + ' [/INST]' }}"
    "{%- else %}{{- ' ' + message.content + eos_token }}{%- endif %}"
    "{%- endfor %}";

constexpr const char* kLlama3 =
    "{%- for message in messages %}"
    "{%- if loop.first %}{{- bos_token }}{%- endif %}"
    "{{- '<|start_header_id|>' + message.role + '<|end_header_id|>\\n\\n' + message.content | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";

[[noreturn]] void not_understood(const std::string& why) {
  fail(MOEVK_ERROR_TOKENIZER, "chat template not understood: " + why + " (a template name must be one of: " +
                                  ChatTemplate::kNames + ")");
}

using jinja::Value;

using json = nlohmann::ordered_json;

// Template values from JSON (its depth already bounded by parse_ordered_json).
Value value_of(const json& j, const char* what) {
  switch (j.type()) {
    case json::value_t::null: return Value::none();
    case json::value_t::boolean: return Value::boolean(j.get<bool>());
    case json::value_t::number_integer: return Value::integer(j.get<int64_t>());
    case json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u <= uint64_t(INT64_MAX)) return Value::integer(int64_t(u));
      fail(MOEVK_ERROR_INVALID_ARGUMENT, std::string(what) + " holds the integer " + std::to_string(u) +
                                              ", beyond the 64-bit integers templates compute with");
    }
    case json::value_t::number_float: return Value::number(j.get<double>());
    case json::value_t::string: return Value::string(j.get<std::string>());
    case json::value_t::array: {
      Value list = Value::list();
      for (const auto& item : j) list.push(value_of(item, what));
      return list;
    }
    case json::value_t::object: {
      // Keys are unique already, so no Value::set, whose check for an existing key would make a
      // wide object quadratic.
      Value::Dict entries;
      entries.reserve(j.size());
      for (const auto& [key, item] : j.items()) entries.emplace_back(key, value_of(item, what));
      return Value::dict(std::move(entries));
    }
    default: fail(MOEVK_ERROR_INVALID_ARGUMENT, std::string(what) + " holds a binary value");
  }
}

Value parse_value(std::string_view text, const char* what) { return value_of(parse_ordered_json(text, what), what); }

std::string render(const jinja::Template& tmpl, Value messages, Value tools, bool add_generation_prompt,
                   const std::string& bos, const std::string& eos, std::vector<std::pair<std::string, Value>> variables) {
  Value context = Value::dict();
  context.set("messages", std::move(messages));
  context.set("tools", std::move(tools));
  context.set("documents", Value::none());
  context.set("add_generation_prompt", Value::boolean(add_generation_prompt));
  context.set("bos_token", Value::string(bos));
  context.set("eos_token", Value::string(eos));
  for (auto& [name, value] : variables) context.set(name, std::move(value));
  return tmpl.render(context);
}

Value value_of(const ChatVariable& v) {
  return v.kind == ChatVariable::Kind::Bool ? Value::boolean(v.boolean) : Value::string(v.text);
}

}  // namespace

ChatTemplate::ChatTemplate(std::string_view source, std::string bos_text, std::string eos_text)
    : bos_(std::move(bos_text)), eos_(std::move(eos_text)) {
  std::string_view jinja_source = source;
  if (source == "chatml") {
    jinja_source = kChatML;
  } else if (source == "mistral") {
    jinja_source = kMistral;
  } else if (source == "llama3") {
    jinja_source = kLlama3;
  } else if (source.find("{{") == std::string_view::npos && source.find("{%") == std::string_view::npos) {
    // Text without a tag would render as itself: a misspelt name, most likely.
    std::string excerpt(source.substr(0, 80));
    not_understood(excerpt.empty() ? std::string("(empty)") : "'" + excerpt + "' is not a template");
  }
  name_ = jinja_source == source ? "model" : std::string(source);
  try {
    template_ = std::make_shared<const jinja::Template>(jinja_source);
  } catch (const Error& e) {
    not_understood(e.what());
  }
}

ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

ChatTemplate ChatTemplate::for_tokenizer(const Tokenizer& tokenizer, std::string_view override_name) {
  const VocabData& vocab = tokenizer.vocab();
  auto text_of = [&](int32_t id) { return id >= 0 ? vocab.tokens[id] : std::string(); };
  std::string_view source = override_name.empty() ? std::string_view(vocab.chat_template) : override_name;
  return ChatTemplate(source, text_of(vocab.bos_id), text_of(vocab.eos_id));
}

std::string ChatTemplate::apply(const std::vector<Message>& messages, bool add_generation_prompt,
                                const std::vector<ChatVariable>& variables, std::string_view tools_json,
                                std::string_view variables_json) const {
  Value list = Value::list();
  for (const Message& m : messages) {
    Value message = Value::dict();
    message.set("role", Value::string(m.role));
    message.set("content", Value::string(m.content));
    list.push(std::move(message));
  }
  return render_with(std::move(list), add_generation_prompt, tools_json, variables_json, variables);
}

std::string ChatTemplate::apply_json(std::string_view messages_json, bool add_generation_prompt,
                                     std::string_view tools_json, std::string_view variables_json,
                                     const std::vector<ChatVariable>& variables) const {
  Value messages = parse_value(messages_json, "messages_json");
  if (!messages.is_list()) fail(MOEVK_ERROR_INVALID_ARGUMENT, "messages_json is not a JSON array of messages");
  for (size_t i = 0; i < messages.items().size(); ++i) {
    const Value& m = messages.items()[i];
    const Value* role = m.is_dict() ? m.find("role") : nullptr;
    if (!role || !role->is_string())
      fail(MOEVK_ERROR_INVALID_ARGUMENT, "messages_json: message " + std::to_string(i) +
                                             " is not an object with a string \"role\"");
  }
  return render_with(std::move(messages), add_generation_prompt, tools_json, variables_json, variables);
}

std::string ChatTemplate::render_with(jinja::Value&& messages, bool add_generation_prompt, std::string_view tools_json,
                                      std::string_view variables_json, const std::vector<ChatVariable>& variables) const {
  Value tools = Value::none();
  if (!tools_json.empty()) {
    tools = parse_value(tools_json, "tools_json");
    if (!tools.is_none() && !tools.is_list())
      fail(MOEVK_ERROR_INVALID_ARGUMENT, "tools_json is not a JSON array of tool definitions (or null)");
  }
  std::vector<std::pair<std::string, Value>> extra;
  for (const ChatVariable& v : variables) extra.emplace_back(v.name, value_of(v));
  if (!variables_json.empty()) {
    Value vars = parse_value(variables_json, "variables_json");
    if (!vars.is_dict()) fail(MOEVK_ERROR_INVALID_ARGUMENT, "variables_json is not a JSON object");
    for (auto& [name, item] : vars.mutable_entries()) {
      for (const char* own : {"messages", "tools", "add_generation_prompt", "bos_token", "eos_token"})
        if (name == own)
          fail(MOEVK_ERROR_INVALID_ARGUMENT, "variables_json sets \"" + name + "\", which has its own parameter");
      for (const ChatVariable& v : variables)
        if (name == v.name) fail(MOEVK_ERROR_INVALID_ARGUMENT, "variables_json sets \"" + name + "\" a second time");
      extra.emplace_back(name, std::move(item));
    }
  }
  return render(*template_, std::move(messages), std::move(tools), add_generation_prompt, bos_, eos_, std::move(extra));
}

}  // namespace moevk::text
