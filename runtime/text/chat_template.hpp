// Chat prompt formatting without a Jinja engine: the template family is recognised from the
// model's tokenizer.chat_template source and rendered by hand, byte for byte as the real
// templates render it.
//  - "chatml": <|im_start|>role\ncontent<|im_end|>\n ... (Qwen1.5/2/2.5-MoE; a default system
//    prompt written in the template is used when the conversation has none; Qwen3's <think>
//    handling of assistant turns is followed when the template has it);
//  - "mistral": <s> [INST] user [/INST] answer</s> ... (Mixtral-8x7B-Instruct-v0.1; the system
//    prompt is put in front of the first user message). The older Mistral form without the
//    leading spaces ("<s>[INST] user [/INST]answer</s>", no system message) is recognised too.
//    Other [INST] dialects (Llama-2 <<SYS>>, Mistral v3) are refused rather than misrendered.
//  - "llama3": <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>...
//    (Meta-Llama-3-Instruct and the dense Llama-3 models; content trimmed as Jinja's `trim`; the
//    first release's template appends the assistant header even without a generation prompt,
//    and so do we for it). Llama-3.1+ templates (tools, a dated system preamble) are refused.
// Checked against Jinja2 renderings of the real templates (tests/data/text/expected_chat.json).
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "text/tokenizer.hpp"

namespace moevk::text {

struct Message {
  std::string role;     // "system", "user", "assistant"
  std::string content;
};

class ChatTemplate {
 public:
  enum class Family { ChatML, Mistral, Llama3 };
  static constexpr const char* kNames = "chatml, mistral, llama3";  // the names accepted as an override

  // `source_or_name`: the Jinja source from tokenizer.chat_template, or one of the names
  // "chatml" / "mistral" / "llama3" (an override). The bos text is used by the Mistral and Llama-3
  // forms, eos by the Mistral one.
  // Throws moevk::Error(MOEVK_ERROR_TOKENIZER, "chat template not understood: ...").
  explicit ChatTemplate(std::string_view source_or_name, std::string bos_text = "<s>", std::string eos_text = "</s>");

  // The model's own template (vocab().chat_template) with its BOS/EOS texts, or the named
  // override when `override_name` is not empty.
  static ChatTemplate for_tokenizer(const Tokenizer& tokenizer, std::string_view override_name = {});

  // Throws MOEVK_ERROR_TOKENIZER for conversations the template rejects (roles that do not
  // alternate user/assistant in the Mistral form, unknown roles).
  std::string apply(const std::vector<Message>& messages, bool add_generation_prompt) const;

  Family family() const { return family_; }
  const char* name() const;  // "chatml", "mistral" or "llama3"

 private:
  Family family_ = Family::ChatML;
  std::string default_system_;     // ChatML: written in the template when no system message is given
  bool qwen3_thinking_ = false;    // ChatML: Qwen3's reasoning_content / <think> handling
  bool mistral_spaced_ = true;     // Mistral: " [INST] " (v0.1 Mixtral) vs "[INST] " (older)
  bool llama3_always_prompt_ = false;  // Llama-3: the assistant header whatever add_generation_prompt
  std::string bos_, eos_;

  std::string apply_chatml(const std::vector<Message>& messages, bool add_generation_prompt) const;
  std::string apply_mistral(const std::vector<Message>& messages) const;
  std::string apply_llama3(const std::vector<Message>& messages, bool add_generation_prompt) const;
};

}  // namespace moevk::text
