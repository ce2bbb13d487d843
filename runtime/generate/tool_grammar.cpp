#include "generate/tool_grammar.hpp"

#include <cctype>
#include <set>
#include <sstream>
#include <vector>

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

using Json = nlohmann::ordered_json;
using Tools = text::ResponseFormat::Tools;

[[noreturn]] void refuse_tool(const std::string& name, const std::string& what) {
  fail(MOEVK_ERROR_INVALID_ARGUMENT, "tool-call grammar: tool " + json_schema_gbnf::json_quoted(name) + ": " + what);
}

struct Tool {
  std::string name;
  Json parameters;  // the schema ({"type": "object"} when the tool has none)
};

std::vector<Tool> tools_of(std::string_view tools_json) {
  const auto tools = parse_ordered_json(tools_json, "tools_json");
  if (!tools.is_array() || tools.empty())
    fail(MOEVK_ERROR_INVALID_ARGUMENT, "tool-call grammar: tools_json is not a non-empty array of tools");
  std::vector<Tool> out;
  for (size_t i = 0; i < tools.size(); ++i) {
    const auto& tool = tools[i];
    const auto* function = tool.is_object() && tool.contains("function") ? &tool["function"] : nullptr;
    if (!function || !function->is_object() || !function->contains("name") || !(*function)["name"].is_string())
      fail(MOEVK_ERROR_INVALID_ARGUMENT, "tool-call grammar: tool " + std::to_string(i) +
                                             " is not {\"type\": \"function\", \"function\": {\"name\", ...}}");
    out.push_back({(*function)["name"].get<std::string>(),
                   function->contains("parameters") ? (*function)["parameters"] : Json{{"type", "object"}}});
  }
  return out;
}

// The rules of a tool's arguments as a JSON object (hermes, mistral, llama3_json): start rule `rule`.
std::string json_arguments(const Tool& tool, const std::string& rule) {
  try {
    return json_schema_to_grammar(tool.parameters.dump(), rule);
  } catch (const Error& e) {
    fail(e.status(), "tool-call grammar: tool " + json_schema_gbnf::json_quoted(tool.name) + ": " + e.what());
  }
}

// Text without `pattern` in it, as rules `name`, `name`-1, ...: the k-th has read the first k
// characters of the pattern after its first one, which the rest must not repeat.
std::string excluding_rules(std::string_view pattern, const std::string& name) {
  const std::string first = json_schema_gbnf::class_member(pattern.substr(0, 1));
  std::string out = name + " ::= [^" + first + "]* (" + json_schema_gbnf::gbnf_literal(pattern.substr(0, 1)) + " " +
                    name + "-1)*\n";
  for (size_t k = 1; k < pattern.size(); ++k) {
    const std::string c = json_schema_gbnf::class_member(pattern.substr(k, 1));
    out.append(name).append("-").append(std::to_string(k)).append(" ::= ([^").append(first).append(c);
    out.append("] [^").append(first).append("]*");
    if (k + 1 < pattern.size())
      out.append(" | ").append(json_schema_gbnf::gbnf_literal(pattern.substr(k, 1))).append(" ").append(name);
    if (k + 1 < pattern.size()) out.append("-").append(std::to_string(k + 1));
    out.append(")?\n");
  }
  return out;
}

// Qwen3-Coder's parameter values are written raw, not as JSON, where the schema's type is
// "string" (text::parse_response reads them so): any text without "</parameter>" in it, which
// would end the value.
constexpr std::string_view kParameterClose = "</parameter>";

std::string raw_value_rules() { return excluding_rules(kParameterClose, "raw-value"); }

// A name as Qwen3-Coder's template writes it between "=" and ">", which parse_response reads
// back trimmed up to the first ">".
void check_tag_name(const std::string& tool, const std::string& what, const std::string& name) {
  const bool blank_edge = !name.empty() && (std::isspace(static_cast<unsigned char>(name.front())) ||
                                            std::isspace(static_cast<unsigned char>(name.back())));
  if (name.empty() || blank_edge || name.find_first_of("<>\n") != std::string::npos)
    refuse_tool(tool, what + " " + json_schema_gbnf::json_quoted(name) +
                          " cannot be written in the qwen3_coder form (empty, a \"<\", \">\" or newline in it, or "
                          "blank at an end)");
}

bool is_annotation(const std::string& key) {
  static const std::set<std::string> annotations = {"title", "description", "default", "examples", "$schema",
                                                    "$id", "$comment", "$defs", "definitions", "deprecated"};
  return annotations.count(key) > 0;
}

// One tool's call in the qwen3_coder form: "<function=NAME>\n" and a "<parameter=P>\nVALUE\n
// </parameter>\n" per argument, in the schema's order, those not required optional; values of
// type "string" raw (an enum's or const's strings as they are), the others JSON of their schema.
std::string coder_call(const Tool& tool, const std::string& rule, std::set<std::string>& defined, std::string& rules) {
  check_tag_name(tool.name, "the name", tool.name);
  const Json& schema = tool.parameters;
  if (!schema.is_object()) refuse_tool(tool.name, "parameters: not an object schema");
  const Json* properties = nullptr;
  std::set<std::string> required;
  bool more = false;
  for (const auto& [key, value] : schema.items()) {
    if (key == "type") {
      if (value != "object") refuse_tool(tool.name, "parameters: \"type\" is not \"object\"");
    } else if (key == "properties") {
      if (!value.is_object()) refuse_tool(tool.name, "parameters: \"properties\" is not an object");
      properties = &value;
    } else if (key == "required") {
      if (!value.is_array()) refuse_tool(tool.name, "parameters: \"required\" is not an array of names");
      for (const auto& r : value) {
        if (!r.is_string()) refuse_tool(tool.name, "parameters: \"required\" is not an array of names");
        required.insert(r.get<std::string>());
      }
    } else if (key == "additionalProperties") {
      if (!value.is_boolean())
        refuse_tool(tool.name, "parameters: a schema for \"additionalProperties\" is not supported in the qwen3_coder form");
      more = value.get<bool>();
    } else if (!is_annotation(key)) {
      refuse_tool(tool.name, "parameters: " + json_schema_gbnf::json_quoted(key) +
                                 " is not supported in the qwen3_coder form");
    }
  }
  if (!properties) more = !schema.contains("additionalProperties") || more;
  for (const auto& r : required)
    if (!properties || !properties->contains(r))
      refuse_tool(tool.name, "parameters: required " + json_schema_gbnf::json_quoted(r) + " is not among the properties");

  // The parameters' values: raw strings here, the JSON ones converted together (one document,
  // so "$ref"s into "$defs" resolve).
  struct Parameter {
    std::string name, value;  // value: a rule, or alternatives
  };
  std::vector<Parameter> parameters;
  std::vector<std::string> pointers;
  std::vector<size_t> json_params;
  if (properties) {
    for (const auto& [name, p] : properties->items()) {
      check_tag_name(tool.name, "the parameter", name);
      const std::string at = json_schema_gbnf::pointer_join("/properties", name);
      parameters.push_back({name, {}});
      // As parse_response tells them: a "type" of "string" is written raw.
      if (p.is_object() && p.contains("type") && p["type"] == "string") {
        std::vector<std::string> literals;
        for (const auto& [key, value] : p.items()) {
          if (key == "enum" || key == "const") {
            const Json values = key == "const" ? Json::array({value}) : value;
            if (!values.is_array() || values.empty()) refuse_tool(tool.name, at + "/" + key + ": not a non-empty array");
            for (const auto& v : values) {
              if (!v.is_string()) continue;  // not a string: "type" rules it out
              const std::string text = v.get<std::string>();
              if (text.find(kParameterClose) != std::string::npos)
                refuse_tool(tool.name, at + "/" + key + ": a value holds \"</parameter>\"");
              literals.push_back(json_schema_gbnf::gbnf_literal(text));
            }
            if (literals.empty()) refuse_tool(tool.name, at + ": no value of the " + key + " is a string");
          } else if (key != "type" && !is_annotation(key)) {
            refuse_tool(tool.name, at + ": " + json_schema_gbnf::json_quoted(key) +
                                       " is not supported for a string parameter in the qwen3_coder form (written raw)");
          }
        }
        if (p.contains("enum") && p.contains("const")) refuse_tool(tool.name, at + ": both \"enum\" and \"const\"");
        if (literals.empty()) {
          if (defined.insert("raw-value").second) rules.append(raw_value_rules());
          parameters.back().value = "raw-value";
        } else {
          parameters.back().value = literals.size() == 1 ? literals[0] : "(" + json_schema_gbnf::join(literals, " | ") + ")";
        }
      } else {
        pointers.push_back(at);
        json_params.push_back(parameters.size() - 1);
      }
    }
  }
  if (!pointers.empty()) {
    std::vector<std::string> starts;
    std::string json_rules;
    try {
      json_rules = json_schema_rules_at(schema.dump(), pointers, rule + "-arguments", starts);
    } catch (const Error& e) {
      refuse_tool(tool.name, e.what());
    }
    merge_rules(json_rules, defined, rules);
    for (size_t i = 0; i < starts.size(); ++i) parameters[json_params[i]].value = starts[i];
  }

  std::string body = json_schema_gbnf::gbnf_literal("<function=" + tool.name + ">\n");
  for (const auto& p : parameters) {
    const std::string one = json_schema_gbnf::gbnf_literal("<parameter=" + p.name + ">\n") + " " + p.value + " " +
                            json_schema_gbnf::gbnf_literal("\n</parameter>\n");
    body.append(" ").append(required.count(p.name) ? one : "(" + one + ")?");
  }
  if (more) {
    // Undeclared parameters: any name, raw values (parse_response reads them as JSON where they
    // parse, strings where not).
    if (defined.insert("raw-value").second) rules.append(raw_value_rules());
    if (defined.insert("parameter-name").second) rules.append("parameter-name ::= [^<>\\n \\t]+\n");
    body.append(" (\"<parameter=\" parameter-name \">\\n\" raw-value \"\\n</parameter>\\n\")*");
  }
  return body.append(" \"</function>\"");
}

}  // namespace

ToolChoice ToolChoice::parse(std::string_view text) {
  ToolChoice c;
  if (text.empty() || text == "auto") return c;
  if (text == "required") {
    c.kind = Kind::Required;
  } else if (text == "none") {
    c.kind = Kind::None;
  } else if (text.front() == '{') {  // OpenAI's {"type": "function", "function": {"name": ...}}
    const auto j = parse_ordered_json(text, "tool_choice");
    if (!j.is_object() || !j.contains("function") || !j["function"].is_object() || !j["function"].contains("name") ||
        !j["function"]["name"].is_string())
      fail(MOEVK_ERROR_INVALID_ARGUMENT, "tool_choice: an object must be {\"type\": \"function\", \"function\": {\"name\": ...}}");
    c.kind = Kind::Named;
    c.name = j["function"]["name"].get<std::string>();
  } else {
    c.kind = Kind::Named;
    c.name = std::string(text);
  }
  return c;
}

ToolCallGrammar tool_call_grammar(const text::ResponseFormat& format, std::string_view tools_json,
                                  const ToolChoice& choice) {
  if (format.tools == Tools::None)
    fail(MOEVK_ERROR_UNSUPPORTED, "tool-call grammar: the template has no tool-call form (its format is \"none\")");
  std::vector<Tool> tools = tools_of(tools_json);
  if (choice.kind == ToolChoice::Kind::None) {
    // Any text but a call: none of the form's marker (Llama-3.1: no answer that begins with "{").
    ToolCallGrammar out;
    if (format.tools == Tools::Llama3Json) {
      out.grammar = "root ::= [^{ \\t\\n\\r] .*\n";
    } else {
      const std::string_view marker = format.tools == Tools::Mistral ? "[TOOL_CALLS]" : "<tool_call>";
      out.grammar = "root ::= text\n" + excluding_rules(marker, "text");
    }
    return out;
  }
  if (choice.kind != ToolChoice::Kind::Auto && format.tools == Tools::Mistral)
    // Its calls begin with the [TOOL_CALLS] control token, which no grammar writes (control
    // tokens are never text): the grammar can wait for it (auto), not make it.
    fail(MOEVK_ERROR_UNSUPPORTED, "tool-call grammar: tool_choice other than \"auto\" in the mistral form (its calls "
                                  "begin with the [TOOL_CALLS] control token, which a grammar cannot write)");
  if (choice.kind == ToolChoice::Kind::Named) {
    std::vector<Tool> named;
    for (auto& t : tools)
      if (t.name == choice.name) named.push_back(std::move(t));
    if (named.empty())
      fail(MOEVK_ERROR_INVALID_ARGUMENT, "tool-call grammar: tool_choice names " +
                                             json_schema_gbnf::json_quoted(choice.name) + ", which is not among the tools");
    tools = std::move(named);
  }
  std::string rules, calls;
  std::set<std::string> defined = {"root", "tool-call"};
  for (size_t i = 0; i < tools.size(); ++i) {
    const Tool& tool = tools[i];
    const std::string rule = "tool-" + std::to_string(i);
    rules.append(rule).append(" ::= ");
    if (format.tools == Tools::Qwen3Coder) {
      // The rule's line first, the rules it uses after it.
      std::string used;
      const std::string call = coder_call(tool, rule, defined, used);
      rules.append(call).append("\n").append(used);
    } else {
      std::string used;
      merge_rules(json_arguments(tool, rule + "-arguments"), defined, used);
      // As the templates write calls (and models, taught by them, do): compact but for a space
      // after each colon and comma between the two keys.
      std::string head = "{\"name\": ";
      head.append(nlohmann::ordered_json(tool.name).dump())
          .append(format.tools == Tools::Llama3Json ? ", \"parameters\": " : ", \"arguments\": ");
      rules.append(json_schema_gbnf::gbnf_literal(head)).append(" ").append(rule).append("-arguments");
      // Mistral v3's template writes each past call's id after its arguments (9 letters and digits).
      if (format.tools == Tools::Mistral) rules.append(" (\", \\\"id\\\": \\\"\" [a-zA-Z0-9]{9} \"\\\"\")?");
      rules.append(" \"}\"\n").append(used);
    }
    calls.append(i ? " | " : "").append(rule);
  }
  ToolCallGrammar out;
  switch (format.tools) {
    case Tools::Hermes:
    case Tools::Qwen3Coder:
      out.trigger = "<tool_call>";
      out.grammar = "root ::= \"\\n\" tool-call \"\\n</tool_call>\" (\"\\n<tool_call>\\n\" tool-call \"\\n</tool_call>\")*\n";
      break;
    case Tools::Mistral:
      out.trigger = "[TOOL_CALLS]";
      out.grammar = "root ::= \" [\" tool-call (\", \" tool-call)* \"]\"\n";
      break;
    default:
      // Llama-3.1's answer is a call or prose, never both (parse_response reads a whole answer
      // that is one {"name", "parameters"} object as the call): no trigger, and an answer that
      // begins with "{" is a call. Its template takes one call a turn.
      if (defined.insert("prose").second) rules.append("prose ::= [^{ \\t\\n\\r] .*\n");
      out.grammar = "root ::= tool-call | prose\n";
      break;
  }
  out.grammar.append("tool-call ::= ").append(calls).append("\n").append(rules);
  if (choice.kind != ToolChoice::Kind::Auto) {
    // A call from the answer's first token: the trigger becomes the grammar's start.
    if (out.trigger.empty()) {
      out.grammar.replace(0, out.grammar.find('\n') + 1, "root ::= tool-call\n");
    } else {
      out.grammar = "root ::= " + json_schema_gbnf::gbnf_literal(out.trigger) + " calls\ncalls ::= " +
                    out.grammar.substr(std::string_view("root ::= ").size());
      out.trigger.clear();
    }
  }
  return out;
}

}  // namespace moevk::generate
