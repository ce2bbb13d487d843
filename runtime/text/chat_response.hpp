// What a chat model wrote, split back into the message its chat template renders: reasoning
// (Qwen3's <think> block), the answer, and tool calls in the form the template asked for. The
// inverse of the template's assistant turn: a parsed message rendered again by the same
// template gives the same text (tests/text/chat_response_test.cpp checks this on the real
// templates), so a client can store the answer, run the tools and send the results back.
//
// The forms, told apart by the template source as the models' own documentation writes them:
//  - hermes: <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>, one block per call
//    (Qwen2.5, Qwen3, Qwen3-2507: "<tool_call>" in the template);
//  - qwen3_coder: <tool_call>\n<function=NAME>\n<parameter=P>\nVALUE\n</parameter>...\n</function>\n
//    </tool_call> (Qwen3-Coder: "<function=" in the template); values are JSON where they parse,
//    strings where the tool's schema says "string" or they do not;
//  - mistral: [TOOL_CALLS] [{"name": ..., "arguments": {...}}, ...] (Mistral v3, Mixtral-8x22B);
//  - llama3_json: the whole answer one {"name": ..., "parameters": {...}} object, optionally after
//    <|python_tag|> (Llama-3.1's JSON tool calling).
// Text that looks like a call but does not parse (a cut-off block, broken JSON) stays in the
// content, as written: nothing the model wrote is dropped.
#pragma once
#include <string>
#include <string_view>

namespace moevk::text {

struct ResponseFormat {
  enum class Tools { None, Hermes, Qwen3Coder, Mistral, Llama3Json } tools = Tools::None;
  bool reasoning = false;  // the template knows <think>...</think> (Qwen3)

  // From a template's Jinja source, or one of ChatTemplate's names ("chatml" is the Qwen form).
  static ResponseFormat of_template(std::string_view source_or_name);
  // "hermes", "qwen3_coder", "mistral", "llama3_json" or "none".
  const char* tools_name() const;
};

// The spaces parse_response trims from the text around calls and from Mistral v3's answer:
// space, tab, newline, carriage return (ResponseStream holds them back for that reason).
bool is_trimmed_space(char c);

// The assistant message as JSON text: {"role": "assistant", "content": "...",
// "reasoning_content": "..." (when the format has reasoning and the text has a think block),
// "tool_calls": [{"id", "type": "function", "function": {"name", "arguments": an object}}]
// (when there are calls)}. `tools_json` (empty, or the tool definitions the prompt carried) gives
// qwen3_coder's parameter types. Ids the model did not write are made from the text and the
// call's place: 9 letters and digits (Mistral's rule), the same for the same text. Bytes that are
// not UTF-8 (a reply cut inside a character) become U+FFFD. Never throws for any text; only for
// tools_json that is not JSON, or not an array (MOEVK_ERROR_INVALID_ARGUMENT).
std::string parse_response(std::string_view text, const ResponseFormat& format, std::string_view tools_json = {});

}  // namespace moevk::text
