#include "text/chat_template.hpp"

#include "common/error.hpp"

namespace moevk::text {

namespace {

[[noreturn]] void not_understood(std::string_view source) {
  std::string excerpt(source.substr(0, 80));
  if (source.size() > 80) excerpt += "...";
  fail(MOEVK_ERROR_TOKENIZER, "chat template not understood: " + (excerpt.empty() ? std::string("(empty)") : excerpt) +
                                  " (a template name must be one of: " + ChatTemplate::kNames + ")");
}

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

// Qwen1.5/2/2.5 templates write their default system turn as one string literal:
// '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' (with a backslash-n in the source).
std::string find_default_system(std::string_view source) {
  constexpr std::string_view kOpen = "<|im_start|>system\\n";
  for (size_t pos = source.find(kOpen); pos != std::string_view::npos; pos = source.find(kOpen, pos + 1)) {
    size_t start = pos + kOpen.size();
    size_t end = source.find("<|im_end|>", start);
    if (end == std::string_view::npos) continue;
    std::string_view text = source.substr(start, end - start);
    // A literal that stops here ('...system\n' + messages[0].content) is not a default prompt.
    if (text.empty() || contains(text, "'") || contains(text, "\"") || contains(text, "{")) continue;
    return std::string(text);
  }
  return {};
}

std::string_view strip_chars(std::string_view s, bool left, bool right) {
  while (left && !s.empty() && s.front() == '\n') s.remove_prefix(1);
  while (right && !s.empty() && s.back() == '\n') s.remove_suffix(1);
  return s;
}

}  // namespace

ChatTemplate::ChatTemplate(std::string_view source, std::string bos_text, std::string eos_text)
    : bos_(std::move(bos_text)), eos_(std::move(eos_text)) {
  if (source == "chatml") {
    family_ = Family::ChatML;
  } else if (source == "mistral") {
    family_ = Family::Mistral;
  } else if (contains(source, "<|im_start|>")) {
    family_ = Family::ChatML;
    default_system_ = find_default_system(source);
    qwen3_thinking_ = contains(source, "reasoning_content") && contains(source, "<think>");
  } else if (contains(source, "' [INST] '") && contains(source, "' [/INST]'") && !contains(source, "<<SYS>>")) {
    family_ = Family::Mistral;  // Mixtral-8x7B-Instruct-v0.1
    mistral_spaced_ = true;
  } else if (contains(source, "'[INST] ' + message['content'] + ' [/INST]'") && !contains(source, "<<SYS>>")) {
    family_ = Family::Mistral;  // the first Mistral/Mixtral-Instruct template
    mistral_spaced_ = false;
  } else {
    // Other [INST] dialects (Llama-2's <<SYS>>, Mistral v3's "[INST]...[/INST]" with the system
    // prompt on the last turn) render differently: refuse rather than misrender; "mistral" overrides.

    not_understood(source);
  }
}

ChatTemplate ChatTemplate::for_tokenizer(const Tokenizer& tokenizer, std::string_view override_name) {
  const VocabData& vocab = tokenizer.vocab();
  auto text_of = [&](int32_t id) { return id >= 0 ? vocab.tokens[id] : std::string(); };
  std::string_view source = override_name.empty() ? std::string_view(vocab.chat_template) : override_name;
  return ChatTemplate(source, text_of(vocab.bos_id), text_of(vocab.eos_id));
}

const char* ChatTemplate::name() const { return family_ == Family::ChatML ? "chatml" : "mistral"; }

std::string ChatTemplate::apply(const std::vector<Message>& messages, bool add_generation_prompt) const {
  for (const Message& m : messages)
    if (m.role != "system" && m.role != "user" && m.role != "assistant")
      fail(MOEVK_ERROR_TOKENIZER, "chat template: unsupported role '" + m.role + "'");
  return family_ == Family::ChatML ? apply_chatml(messages, add_generation_prompt) : apply_mistral(messages);
}

std::string ChatTemplate::apply_chatml(const std::vector<Message>& messages, bool add_generation_prompt) const {
  std::string out;
  if (!default_system_.empty() && (messages.empty() || messages[0].role != "system"))
    out += "<|im_start|>system\n" + default_system_ + "<|im_end|>\n";
  // Qwen3 keeps the reasoning only of assistant turns after the last user query.
  size_t last_query = messages.empty() ? 0 : messages.size() - 1;
  if (qwen3_thinking_) {
    for (size_t i = messages.size(); i-- > 0;) {
      const std::string& c = messages[i].content;
      bool tool_response = c.rfind("<tool_response>", 0) == 0 && c.size() >= 16 &&
                           c.compare(c.size() - 16, 16, "</tool_response>") == 0;
      if (messages[i].role == "user" && !tool_response) {
        last_query = i;
        break;
      }
    }
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const Message& m = messages[i];
    if (!qwen3_thinking_ || m.role != "assistant") {
      out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      continue;
    }
    std::string_view content = m.content, reasoning;
    size_t close = content.find("</think>");
    if (close != std::string_view::npos) {
      reasoning = content.substr(0, close);
      size_t open = reasoning.rfind("<think>");
      if (open != std::string_view::npos) reasoning = reasoning.substr(open + 7);
      reasoning = strip_chars(strip_chars(reasoning, false, true), true, false);
      content = strip_chars(content.substr(content.rfind("</think>") + 8), true, false);
    }
    bool after_last_query = i > last_query;
    if (after_last_query && (i + 1 == messages.size() || !reasoning.empty())) {
      out += "<|im_start|>assistant\n<think>\n" + std::string(strip_chars(reasoning, true, true)) + "\n</think>\n\n" +
             std::string(content);
    } else {
      out += "<|im_start|>assistant\n" + std::string(content);
    }
    out += "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

std::string ChatTemplate::apply_mistral(const std::vector<Message>& messages) const {
  size_t first = 0;
  std::string system;
  if (!messages.empty() && messages[0].role == "system") {
    // The first Mistral template has no place for a system prompt and raises, so do we.
    if (!mistral_spaced_) fail(MOEVK_ERROR_TOKENIZER, "chat template: this Mistral template supports no system message");
    system = messages[0].content;
    first = 1;
  }
  std::string out = bos_;
  for (size_t i = first; i < messages.size(); ++i) {
    const Message& m = messages[i];
    bool expect_user = (i - first) % 2 == 0;
    if ((m.role == "user") != expect_user)
      fail(MOEVK_ERROR_TOKENIZER,
           "chat template: after the optional system message, roles must alternate user/assistant/user/...");
    if (m.role == "user") {
      std::string text = (i == first && first == 1) ? system + "\n\n" + m.content : m.content;
      out += (mistral_spaced_ ? " [INST] " : "[INST] ") + text + " [/INST]";
    } else {
      out += (mistral_spaced_ ? " " : "") + m.content + eos_;
    }
  }
  return out;
}

}  // namespace moevk::text
