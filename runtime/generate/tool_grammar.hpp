// Grammars for tool calls: a lazy grammar (TokenGrammar's trigger) that leaves a model free to
// write prose or call a tool, and holds a call, once begun, to the call form of its chat
// template and to the called tool's parameter schema (json_schema.hpp), so that what
// text::parse_response reads back is always a call to a declared tool with arguments of its
// declared shape.
#pragma once
#include <string>
#include <string_view>

#include "text/chat_response.hpp"

namespace moevk::generate {

struct ToolCallGrammar {
  std::string grammar;  // GBNF, start rule "root": what follows the trigger
  std::string trigger;  // the text that begins the calls
};

// For the hermes form (Qwen's "<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>",
// one or more) and the mistral form ("[TOOL_CALLS] [{"name": ..., "arguments": {...}}, ...]").
// Throws MOEVK_ERROR_UNSUPPORTED for the other forms (naming the form), and
// MOEVK_ERROR_INVALID_ARGUMENT for tools_json that is not an array of {"type": "function",
// "function": {"name", "parameters"}} or a parameters schema json_schema_to_grammar refuses
// (naming the tool).
ToolCallGrammar tool_call_grammar(const text::ResponseFormat& format, std::string_view tools_json);

}  // namespace moevk::generate
