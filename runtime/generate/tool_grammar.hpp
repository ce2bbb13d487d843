// Grammars for tool calls: a grammar (lazy, with TokenGrammar's trigger, where the form lets
// prose and calls mix) that leaves a model free to write prose or call a tool, and holds a
// call, once begun, to the call form of its chat template and to the called tool's parameter
// schema (json_schema.hpp), so that what text::parse_response reads back is always a call to a
// declared tool with arguments of its declared shape.
#pragma once
#include <string>
#include <string_view>

#include "text/chat_response.hpp"

namespace moevk::generate {

struct ToolCallGrammar {
  std::string grammar;  // GBNF, start rule "root": what follows the trigger
  std::string trigger;  // the text that begins the calls; empty: the grammar holds the whole answer
};

// OpenAI's tool_choice: "auto" (or empty; the model may call a tool or answer), "required" (it
// calls one: the grammar holds the answer from its first token, no trigger), "none" (it calls
// none: no text holding the form's marker, a Llama-3.1 answer not beginning with "{"), or a
// tool's name, as text or as {"type": "function", "function": {"name": ...}} (it calls that one).
struct ToolChoice {
  enum class Kind { Auto, Required, None, Named } kind = Kind::Auto;
  std::string name;  // Named
  // Throws MOEVK_ERROR_INVALID_ARGUMENT for an object of another shape.
  static ToolChoice parse(std::string_view text);
};

// For the forms of text::ResponseFormat:
//  - hermes: after "<tool_call>", "\n" + {"name": ..., "arguments": {...}} + "\n</tool_call>",
//    and more such blocks;
//  - qwen3_coder: after "<tool_call>", "\n<function=NAME>\n", a "<parameter=P>\nVALUE\n
//    </parameter>\n" per argument (the schema's order; those not required may be left out),
//    "</function>\n</tool_call>", and more blocks. A value whose schema's type is "string" is raw
//    text without "</parameter>" (an enum's or const's strings as they are), as parse_response
//    reads it; the others are JSON of their schema ("$ref"s into the parameters' "$defs" work;
//    a JSON string holding "</parameter>" is not refused, though parse_response ends the value
//    there).
//    A tool without "properties" takes any parameters, raw. Refused (INVALID_ARGUMENT): string
//    parameters with keywords raw text cannot bound (format, minLength, ...), names the tags
//    cannot carry (empty, "<", ">" or a newline in them, blank at an end), and parameters
//    schemas with keywords other than type "object", properties, required, a boolean
//    additionalProperties and annotations;
//  - mistral: after "[TOOL_CALLS]", " [" + calls + "]", each call optionally with its 9-character id;
//  - llama3_json: no trigger; the answer is one {"name": ..., "parameters": {...}} call, or prose
//    that does not begin with "{" or blank (parse_response reads only a whole answer as a call).
// Throws MOEVK_ERROR_UNSUPPORTED for a template without tool calls (format "none"), and
// MOEVK_ERROR_INVALID_ARGUMENT for tools_json that is not an array of {"type": "function",
// "function": {"name", "parameters"}} or a parameters schema json_schema_to_grammar (or the
// qwen3_coder form) refuses, naming the tool.
// With a tool_choice other than auto, the grammar has no trigger (above); a name not among the
// tools is MOEVK_ERROR_INVALID_ARGUMENT.
ToolCallGrammar tool_call_grammar(const text::ResponseFormat& format, std::string_view tools_json,
                                  const ToolChoice& choice = {});

}  // namespace moevk::generate
