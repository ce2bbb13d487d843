// Chat prompt formatting: the model's own tokenizer.chat_template, run by moevk's Jinja
// interpreter (text/jinja.hpp) as Hugging Face's apply_chat_template runs it: the variables
// messages, add_generation_prompt, bos_token, eos_token, tools (the caller's tool definitions,
// or none) and documents (none), plus any the caller adds (enable_thinking for Qwen3's
// templates). Reading the model's answer back into a message: text/chat_response.hpp. So the templates published with
// Qwen1.5/2/3-MoE, Qwen3-2507 and Qwen3-Coder, Mixtral-8x7B and 8x22B (Mistral v3, with tools),
// Llama-3 and 3.1 render byte for byte as transformers renders them (tests/data/text/
// expected_chat.json, made by Jinja2).
//
// Three names stand in for a model's template (an override, or for a file that has none):
//  - "chatml": <|im_start|>role\ncontent<|im_end|>\n ... (the Qwen form, without a default
//    system prompt; enable_thinking=false writes Qwen3's empty <think> block after the prompt);
//  - "mistral": <s> [INST] user [/INST] answer</s> ... (Mixtral-8x7B-Instruct-v0.1's; a system
//    prompt goes in front of the first user message);
//  - "llama3": <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>...
//    (Meta-Llama-3-Instruct's; content trimmed).
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "text/tokenizer.hpp"

namespace moevk::text {

namespace jinja {
class Template;
class Value;
}

struct Message {
  std::string role;     // "system", "user", "assistant", "tool": what the template accepts
  std::string content;
};

// Extra template variables: booleans (enable_thinking) or strings.
struct ChatVariable {
  std::string name;
  enum class Kind { Bool, String } kind = Kind::Bool;
  bool boolean = false;
  std::string text;
};

class ChatTemplate {
 public:
  static constexpr const char* kNames = "chatml, mistral, llama3";  // the names accepted as an override

  // `source_or_name`: the Jinja source from tokenizer.chat_template, or one of kNames. The bos
  // and eos texts are the template's bos_token and eos_token.
  // Throws moevk::Error(MOEVK_ERROR_TOKENIZER, "chat template not understood: ...") for a source
  // that does not parse (naming the line) or a name that is not one of kNames.
  explicit ChatTemplate(std::string_view source_or_name, std::string bos_text = "<s>", std::string eos_text = "</s>");
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // The model's own template (vocab().chat_template) with its BOS/EOS texts, or the named
  // override when `override_name` is not empty.
  static ChatTemplate for_tokenizer(const Tokenizer& tokenizer, std::string_view override_name = {});

  // Throws MOEVK_ERROR_TOKENIZER for conversations the template rejects (its raise_exception:
  // roles that do not alternate in the Mistral forms, roles it does not know) and for templates
  // that fail while rendering (naming the line).
  // `tools_json` and `variables_json` as apply_json takes them.
  std::string apply(const std::vector<Message>& messages, bool add_generation_prompt,
                    const std::vector<ChatVariable>& variables = {}, std::string_view tools_json = {},
                    std::string_view variables_json = {}) const;

  // The same for a conversation given as JSON text, in the form transformers' apply_chat_template
  // and OpenAI's chat API take: `messages_json` an array of objects, each with a string "role" and
  // whatever else the template reads ("content" as a string, null or a list of parts;
  // "tool_calls" [{"id", "type": "function", "function": {"name", "arguments"}}],
  // "tool_call_id", "name", "reasoning_content"). `tools_json`: empty or "null" (tools=None), or
  // an array of tool definitions ({"type": "function", "function": {"name", "description",
  // "parameters"}}). `variables_json`: empty, or an object whose members become template
  // variables (vLLM's chat_template_kwargs: {"enable_thinking": false}, Llama-3.1's
  // {"date_string": "..."}); they may not name messages, tools, add_generation_prompt, bos_token
  // or eos_token, nor repeat one of `variables`. JSON objects keep their key order, as Python's
  // json.loads does, so `tojson` writes them back as transformers would.
  // Throws MOEVK_ERROR_INVALID_ARGUMENT for JSON that is not well formed (naming which argument
  // and where), of the wrong shape or nested deeper than 64 levels; rendering fails as apply's.
  std::string apply_json(std::string_view messages_json, bool add_generation_prompt, std::string_view tools_json = {},
                         std::string_view variables_json = {}, const std::vector<ChatVariable>& variables = {}) const;

  // "chatml", "mistral" or "llama3" for an override; "model" for a template from the file.
  const char* name() const { return name_.c_str(); }

 private:
  // Renders a conversation already made Values, with the tools and variables of apply_json.
  std::string render_with(jinja::Value&& messages, bool add_generation_prompt, std::string_view tools_json,
                          std::string_view variables_json, const std::vector<ChatVariable>& variables) const;
  std::string name_;
  std::shared_ptr<const jinja::Template> template_;
  std::string bos_, eos_;
};

}  // namespace moevk::text
