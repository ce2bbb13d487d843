#include "generate/tool_grammar.hpp"

#include <set>
#include <sstream>

#include "common/error.hpp"
#include "common/ordered_json.hpp"
#include "generate/json_schema.hpp"
#include "generate/json_schema_gbnf.hpp"

namespace moevk::generate {

namespace {

// Appends a converted schema's rules to `out`, once each: every conversion writes the primitive
// rules it uses (ws, string, ...) the same way, and a second definition would not parse.
void merge_rules(const std::string& grammar, std::set<std::string>& defined, std::string& out) {
  std::istringstream lines(grammar);
  for (std::string line; std::getline(lines, line);) {
    const size_t arrow = line.find(" ::= ");
    if (arrow == std::string::npos) continue;
    if (defined.insert(line.substr(0, arrow)).second) out.append(line).append("\n");
  }
}

}  // namespace

ToolCallGrammar tool_call_grammar(const text::ResponseFormat& format, std::string_view tools_json) {
  using Tools = text::ResponseFormat::Tools;
  if (format.tools != Tools::Hermes && format.tools != Tools::Mistral)
    fail(MOEVK_ERROR_UNSUPPORTED, std::string("tool-call grammar: the ") + format.tools_name() +
                                      " call form has none yet (hermes and mistral do)");
  const auto tools = parse_ordered_json(tools_json, "tools_json");
  if (!tools.is_array() || tools.empty())
    fail(MOEVK_ERROR_INVALID_ARGUMENT, "tool-call grammar: tools_json is not a non-empty array of tools");
  std::string rules, calls;
  std::set<std::string> defined = {"root", "tool-call"};
  for (size_t i = 0; i < tools.size(); ++i) {
    const auto& tool = tools[i];
    const auto* function = tool.is_object() && tool.contains("function") ? &tool["function"] : nullptr;
    if (!function || !function->is_object() || !function->contains("name") || !(*function)["name"].is_string())
      fail(MOEVK_ERROR_INVALID_ARGUMENT, "tool-call grammar: tool " + std::to_string(i) +
                                             " is not {\"type\": \"function\", \"function\": {\"name\", ...}}");
    const std::string name = (*function)["name"].get<std::string>();
    const std::string schema = function->contains("parameters") ? (*function)["parameters"].dump()
                                                                : std::string(R"({"type": "object"})");
    const std::string rule = "tool-" + std::to_string(i);
    std::string arguments;
    try {
      arguments = json_schema_to_grammar(schema, rule + "-arguments");
    } catch (const Error& e) {
      fail(e.status(), "tool-call grammar: tool \"" + name + "\": " + e.what());
    }
    merge_rules(arguments, defined, rules);
    // As the templates write calls (and models, taught by them, do): compact but for a space
    // after each colon and comma between the two keys.
    std::string head = "{\"name\": ";
    head.append(nlohmann::ordered_json(name).dump()).append(", \"arguments\": ");
    rules.append(rule).append(" ::= ").append(json_schema_gbnf::gbnf_literal(head));
    rules.append(" ").append(rule).append("-arguments");
    // Mistral v3's template writes each past call's id after its arguments (9 letters and digits).
    if (format.tools == Tools::Mistral) rules.append(" (\", \\\"id\\\": \\\"\" [a-zA-Z0-9]{9} \"\\\"\")?");
    rules.append(" \"}\"\n");
    calls.append(i ? " | " : "").append(rule);
  }
  ToolCallGrammar out;
  if (format.tools == Tools::Hermes) {
    out.trigger = "<tool_call>";
    out.grammar = "root ::= \"\\n\" tool-call \"\\n</tool_call>\" (\"\\n<tool_call>\\n\" tool-call \"\\n</tool_call>\")*\n";
  } else {
    out.trigger = "[TOOL_CALLS]";
    out.grammar = "root ::= \" [\" tool-call (\", \" tool-call)* \"]\"\n";
  }
  out.grammar.append("tool-call ::= ").append(calls).append("\n").append(rules);
  return out;
}

}  // namespace moevk::generate
