// Tool-call grammars: what follows the trigger must be calls in the template's form to declared
// tools with arguments of their schemas, and what the grammar allows must read back as those
// calls (text::parse_response).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../text/text_test_data.hpp"
#include "common/error.hpp"
#include "generate/grammar.hpp"
#include "generate/tool_grammar.hpp"
#include "text/chat_response.hpp"

using moevk::generate::Grammar;
using moevk::generate::GrammarMatcher;
using moevk::generate::tool_call_grammar;
using moevk::text::ResponseFormat;

namespace {

const char* kTools = R"([
  {"type": "function", "function": {"name": "get_weather", "description": "Weather now",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
      "unit": {"enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}},
  {"type": "function", "function": {"name": "add",
    "parameters": {"type": "object", "$defs": {"n": {"type": "number"}},
      "properties": {"a": {"$ref": "#/$defs/n"}, "b": {"$ref": "#/$defs/n"}}, "required": ["a", "b"]}}},
  {"type": "function", "function": {"name": "now"}}
])";

ResponseFormat form(ResponseFormat::Tools tools) {
  ResponseFormat f;
  f.tools = tools;
  return f;
}

bool sentence(const std::string& grammar, const std::string& text) {
  GrammarMatcher m(Grammar::parse(grammar));
  return m.accept(text) && m.accepting();
}

}  // namespace

TEST(ToolCallGrammar, HermesCallsMeetTheirToolsSchemas) {
  const auto g = tool_call_grammar(form(ResponseFormat::Tools::Hermes), kTools);
  EXPECT_EQ(g.trigger, "<tool_call>");
  const std::string one = "\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
  EXPECT_TRUE(sentence(g.grammar, one));
  EXPECT_TRUE(sentence(g.grammar, "\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"unit\": \"celsius\"}}\n</tool_call>"));
  EXPECT_TRUE(sentence(g.grammar, "\n{\"name\": \"add\", \"arguments\": {\"a\": 2, \"b\": 2.5}}\n</tool_call>"));
  EXPECT_TRUE(sentence(g.grammar, "\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>"));
  // Parallel calls, as Qwen's template writes them.
  EXPECT_TRUE(sentence(g.grammar, one + "\n<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>"));
  // An undeclared tool, a wrong argument type, a missing required one, an undeclared one.
  EXPECT_FALSE(sentence(g.grammar, "\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(sentence(g.grammar, "\n{\"name\": \"add\", \"arguments\": {\"a\": \"2\", \"b\": 2}}\n</tool_call>"));
  EXPECT_FALSE(sentence(g.grammar, "\n{\"name\": \"get_weather\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(sentence(g.grammar, "\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"X\", \"when\": 1}}\n</tool_call>"));
  EXPECT_FALSE(sentence(g.grammar, "\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"X\", \"unit\": \"kelvin\"}}\n</tool_call>"));

  // What the grammar allows reads back as the calls.
  const auto message = nlohmann::json::parse(moevk::text::parse_response(
      "Let me check." + g.trigger + one, form(ResponseFormat::Tools::Hermes), kTools));
  ASSERT_EQ(message["tool_calls"].size(), 1u) << message.dump();
  EXPECT_EQ(message["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(message["tool_calls"][0]["function"]["arguments"], nlohmann::json({{"city", "Paris"}}));
  EXPECT_EQ(message["content"], "Let me check.");
}

TEST(ToolCallGrammar, MistralCallsAreOneList) {
  const auto g = tool_call_grammar(form(ResponseFormat::Tools::Mistral), kTools);
  EXPECT_EQ(g.trigger, "[TOOL_CALLS]");
  const std::string calls =
      " [{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}, {\"name\": \"now\", \"arguments\": {}}]";
  EXPECT_TRUE(sentence(g.grammar, calls));
  EXPECT_FALSE(sentence(g.grammar, " []"));
  EXPECT_FALSE(sentence(g.grammar, " [{\"name\": \"add\", \"arguments\": {\"a\": 1}}]"));
  const auto message = nlohmann::json::parse(
      moevk::text::parse_response(g.trigger + calls, form(ResponseFormat::Tools::Mistral), kTools));
  ASSERT_EQ(message["tool_calls"].size(), 2u) << message.dump();
  EXPECT_EQ(message["tool_calls"][1]["function"]["name"], "now");
}

TEST(ToolCallGrammar, RefusalsNameTheFormOrTheTool) {
  auto error = [](ResponseFormat::Tools tools, const char* json) -> std::pair<moevk_status, std::string> {
    try {
      tool_call_grammar(form(tools), json);
    } catch (const moevk::Error& e) {
      return {e.status(), e.what()};
    }
    return {MOEVK_OK, ""};
  };
  EXPECT_EQ(error(ResponseFormat::Tools::Qwen3Coder, kTools),
            std::make_pair(MOEVK_ERROR_UNSUPPORTED,
                           std::string("tool-call grammar: the qwen3_coder call form has none yet (hermes and mistral do)")));
  EXPECT_EQ(error(ResponseFormat::Tools::None, kTools).first, MOEVK_ERROR_UNSUPPORTED);
  EXPECT_EQ(error(ResponseFormat::Tools::Hermes, "[]").second,
            "tool-call grammar: tools_json is not a non-empty array of tools");
  EXPECT_EQ(error(ResponseFormat::Tools::Hermes, R"([{"type": "function"}])").second,
            "tool-call grammar: tool 0 is not {\"type\": \"function\", \"function\": {\"name\", ...}}");
  const auto pattern = error(ResponseFormat::Tools::Hermes, R"([{"type": "function", "function": {"name": "f",
      "parameters": {"type": "object", "properties": {"x": {"type": "string", "pattern": "a+"}}}}}])");
  EXPECT_EQ(pattern.first, MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pattern.second.rfind("tool-call grammar: tool \"f\": json_schema: /properties/x", 0), 0u) << pattern.second;
}

// The real templates' own renderings of past calls (tests/data/text/expected_chat.json, made by
// Jinja2) are sentences of the grammar for their tools: the grammar holds a model to the very
// form its template taught it.
TEST(ToolCallGrammar, TheTemplatesOwnCallsAreSentences) {
  const std::string data = MOEVK_TEST_DATA_DIR;
  const auto templates = nlohmann::json::parse(moevk::text::testdata::read_text_file(data + "/text/chat_templates.json"));
  const auto expected = nlohmann::json::parse(moevk::text::testdata::read_text_file(data + "/text/expected_chat.json"));
  int hermes = 0, mistral = 0;
  for (const auto& c : expected["cases"]) {
    if (!c.contains("tools") || !c["tools"].is_array() || c["tools"].empty() || c["error"].get<bool>()) continue;
    const auto format = ResponseFormat::of_template(templates[c["template"].get<std::string>()].get<std::string>());
    if (format.tools != ResponseFormat::Tools::Hermes && format.tools != ResponseFormat::Tools::Mistral) continue;
    const auto g = tool_call_grammar(format, c["tools"].dump());
    const std::string text = c["expected"];
    const bool is_hermes = format.tools == ResponseFormat::Tools::Hermes;
    const std::string close = is_hermes ? "</tool_call>" : "</s>";
    for (size_t at = text.find(g.trigger); at != std::string::npos; at = text.find(g.trigger, at + 1)) {
      const size_t begin = at + g.trigger.size(), end = text.find(close, begin);
      if (end == std::string::npos) continue;
      const std::string body = text.substr(begin, end - begin);
      // Calls, not the system prompt's description of the form; arguments as objects (a string
      // of JSON, which the conversations also try, is not what a model writes).
      const auto parsed = nlohmann::json::parse(body, nullptr, false);
      const auto calls = parsed.is_array() ? parsed : nlohmann::json::array({parsed});
      bool real = !parsed.is_discarded();
      for (const auto& call : calls) real = real && call.is_object() && call.contains("arguments") && call["arguments"].is_object();
      if (!real) continue;
      const std::string after = is_hermes ? body + close : body;
      EXPECT_TRUE(sentence(g.grammar, after)) << c["template"] << " " << c["conversation"] << ": " << after;
      (is_hermes ? hermes : mistral)++;
    }
  }
  EXPECT_GT(hermes, 10);
  EXPECT_GT(mistral, 2);
}
