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

// Jinja's `trim` is Python's str.strip(): every Unicode whitespace code point at either end.
bool whitespace_at(std::string_view s, size_t i, size_t& len) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  len = 1;
  if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) return true;
  auto is = [&](std::string_view seq) { return s.substr(i, seq.size()) == seq && (len = seq.size(), true); };
  if (is("\xC2\x85") || is("\xC2\xA0") || is("\xE1\x9A\x80") || is("\xE2\x80\xA8") || is("\xE2\x80\xA9") ||
      is("\xE2\x80\xAF") || is("\xE2\x81\x9F") || is("\xE3\x80\x80"))
    return true;
  // U+2000..U+200A: E2 80 80..8A.
  if (s.size() >= i + 3 && c == 0xE2 && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
      static_cast<unsigned char>(s[i + 2]) <= 0x8A) {
    len = 3;
    return true;
  }
  return false;
}

std::string_view jinja_trim(std::string_view s) {
  size_t len = 0;
  while (!s.empty() && whitespace_at(s, 0, len)) s.remove_prefix(len);
  // From the end: find the start of the last code point and test it.
  while (!s.empty()) {
    size_t start = s.size() - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    if (!whitespace_at(s, start, len) || start + len != s.size()) break;
    s.remove_suffix(len);
  }
  return s;
}

// Meta-Llama-3-Instruct's template (3.0). Its string literals hold "\n\n" as escapes or as the
// newlines themselves (tokenizer_config.json files have both), so the source is matched with
// escapes turned into newlines. 3.1+ templates add tools and a dated system turn: not these.
bool is_llama3(std::string_view source) {
  std::string s;
  s.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    const bool escape = source[i] == '\\' && i + 1 < source.size() && source[i + 1] == 'n';
    s += escape ? '\n' : source[i];
    i += escape ? 1 : 0;
  }
  return contains(s, "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'") &&
         contains(s, "message['content'] | trim + '<|eot_id|>'") &&
         contains(s, "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}") &&
         contains(s, "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}") && !contains(s, "Cutting Knowledge") &&
         !contains(s, "tools") && !contains(s, "date_string");
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
  } else if (source == "llama3") {
    family_ = Family::Llama3;
  } else if (is_llama3(source)) {
    family_ = Family::Llama3;  // Meta-Llama-3-Instruct (3.0); 3.1+ add tools and a dated system turn
    llama3_always_prompt_ = !contains(source, "add_generation_prompt");
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

const char* ChatTemplate::name() const {
  return family_ == Family::ChatML ? "chatml" : family_ == Family::Mistral ? "mistral" : "llama3";
}

std::string ChatTemplate::apply(const std::vector<Message>& messages, bool add_generation_prompt) const {
  for (const Message& m : messages)
    if (m.role != "system" && m.role != "user" && m.role != "assistant")
      fail(MOEVK_ERROR_TOKENIZER, "chat template: unsupported role '" + m.role + "'");
  if (family_ == Family::Llama3) return apply_llama3(messages, add_generation_prompt);
  return family_ == Family::ChatML ? apply_chatml(messages, add_generation_prompt) : apply_mistral(messages);
}

std::string ChatTemplate::apply_llama3(const std::vector<Message>& messages, bool add_generation_prompt) const {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i == 0) out += bos_;
    out += "<|start_header_id|>" + messages[i].role + "<|end_header_id|>\n\n" +
           std::string(jinja_trim(messages[i].content)) + "<|eot_id|>";
  }
  if (add_generation_prompt || llama3_always_prompt_) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
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
