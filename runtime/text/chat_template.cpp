#include "text/chat_template.hpp"

#include "common/error.hpp"
#include "text/jinja.hpp"

namespace moevk::text {

namespace {

// The named forms, written for moevk (tests/text/chat_template_test.cpp checks each against the
// model template it stands for).
constexpr const char* kChatML =
    "{%- for message in messages %}"
    "{%- if message.role not in ['system', 'user', 'assistant', 'tool'] %}"
    "{{- raise_exception('chatml: unsupported role ' ~ message.role) }}"
    "{%- endif %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
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
                                const std::vector<ChatVariable>& variables) const {
  using jinja::Value;
  Value list = Value::list();
  for (const Message& m : messages) {
    Value message = Value::dict();
    message.set("role", Value::string(m.role));
    message.set("content", Value::string(m.content));
    list.push(std::move(message));
  }
  Value context = Value::dict();
  context.set("messages", std::move(list));
  context.set("tools", Value::none());
  context.set("documents", Value::none());
  context.set("add_generation_prompt", Value::boolean(add_generation_prompt));
  context.set("bos_token", Value::string(bos_));
  context.set("eos_token", Value::string(eos_));
  for (const ChatVariable& v : variables)
    context.set(v.name, v.kind == ChatVariable::Kind::Bool ? Value::boolean(v.boolean) : Value::string(v.text));
  return template_->render(context);
}

}  // namespace moevk::text
