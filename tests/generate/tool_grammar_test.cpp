// Tool-call grammars: what follows the trigger must be calls in the template's form to declared
// tools with arguments of their schemas, and what the grammar allows must read back as those
// calls (text::parse_response).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string_view>
#include <vector>

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
  EXPECT_EQ(error(ResponseFormat::Tools::None, kTools),
            std::make_pair(MOEVK_ERROR_UNSUPPORTED,
                           std::string("tool-call grammar: the template has no tool-call form (its format is \"none\")")));
  EXPECT_EQ(error(ResponseFormat::Tools::Hermes, "[]").second,
            "tool-call grammar: tools_json is not a non-empty array of tools");
  EXPECT_EQ(error(ResponseFormat::Tools::Hermes, R"([{"type": "function"}])").second,
            "tool-call grammar: tool 0 is not {\"type\": \"function\", \"function\": {\"name\", ...}}");
  const auto pattern = error(ResponseFormat::Tools::Hermes, R"([{"type": "function", "function": {"name": "f",
      "parameters": {"type": "object", "properties": {"x": {"type": "string", "pattern": "a+"}}}}}])");
  EXPECT_EQ(pattern.first, MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pattern.second.rfind("tool-call grammar: tool \"f\": json_schema: /properties/x", 0), 0u) << pattern.second;
}

TEST(ToolCallGrammar, Qwen3CoderCallsWriteStringsRawAndTheRestAsJson) {
  const auto g = tool_call_grammar(form(ResponseFormat::Tools::Qwen3Coder), kTools);
  EXPECT_EQ(g.trigger, "<tool_call>");
  auto call = [](const std::string& function, const std::string& parameters) {
    return "\n<function=" + function + ">\n" + parameters + "</function>\n</tool_call>";
  };
  auto param = [](const std::string& name, const std::string& value) {
    return "<parameter=" + name + ">\n" + value + "\n</parameter>\n";
  };
  const std::string weather = call("get_weather", param("city", "Paris"));
  EXPECT_TRUE(sentence(g.grammar, weather));
  // A string is any text, lines and "<" tags included, but for the one that would end it.
  EXPECT_TRUE(sentence(g.grammar, call("get_weather", param("city", "New\nYork <b>\"</b>\n</param</parameter") +
                                                         param("unit", "\"celsius\""))));
  EXPECT_TRUE(sentence(g.grammar, call("get_weather", param("city", ""))));
  EXPECT_FALSE(sentence(g.grammar, call("get_weather", param("city", "a</parameter>b"))));
  // "unit" has no "type": JSON, as parse_response reads it.
  EXPECT_FALSE(sentence(g.grammar, call("get_weather", param("city", "Oslo") + param("unit", "celsius"))));
  EXPECT_FALSE(sentence(g.grammar, call("get_weather", param("city", "Oslo") + param("unit", "\"kelvin\""))));
  EXPECT_FALSE(sentence(g.grammar, call("get_weather", "")));  // city is required
  EXPECT_FALSE(sentence(g.grammar, call("get_weather", param("city", "X") + param("when", "1"))));
  EXPECT_TRUE(sentence(g.grammar, call("add", param("a", "2") + param("b", "-2.5e3"))));  // through $defs
  EXPECT_FALSE(sentence(g.grammar, call("add", param("a", "two") + param("b", "2"))));
  // A tool without parameters takes any, raw.
  EXPECT_TRUE(sentence(g.grammar, call("now", "")));
  EXPECT_TRUE(sentence(g.grammar, call("now", param("tz", "UTC") + param("n", "[1, 2]"))));
  EXPECT_FALSE(sentence(g.grammar, call("later", "")));
  // Parallel calls.
  EXPECT_TRUE(sentence(g.grammar, weather + "\n<tool_call>" + call("now", "")));

  // What the grammar allows reads back as the calls, values typed as the schema says.
  const std::string text = "Checking." + g.trigger + call("get_weather", param("city", "New\nYork") +
                                                                      param("unit", "\"celsius\"")) +
                           "\n<tool_call>" + call("add", param("a", "2") + param("b", "0.5"));
  ASSERT_TRUE(sentence(g.grammar, text.substr(std::string("Checking.").size() + g.trigger.size())));
  const auto message = nlohmann::json::parse(
      moevk::text::parse_response(text, form(ResponseFormat::Tools::Qwen3Coder), kTools));
  ASSERT_EQ(message["tool_calls"].size(), 2u) << message.dump();
  EXPECT_EQ(message["tool_calls"][0]["function"]["arguments"],
            nlohmann::json({{"city", "New\nYork"}, {"unit", "celsius"}}));
  EXPECT_EQ(message["tool_calls"][1]["function"]["arguments"], nlohmann::json({{"a", 2}, {"b", 0.5}}));
  EXPECT_EQ(message["content"], "Checking.");
}

// A raw string is any text without "</parameter>": random texts built from pieces of it.
TEST(ToolCallGrammar, Qwen3CoderRawStringsAreExactlyTheTextsWithoutTheClosingTag) {
  const char* tools = R"([{"type": "function", "function": {"name": "f", "parameters": {"type": "object",
      "properties": {"s": {"type": "string"}}, "required": ["s"]}}}])";
  const auto g = tool_call_grammar(form(ResponseFormat::Tools::Qwen3Coder), tools);
  const std::vector<std::string> pieces = {"<", "/", "</", "</param", "eter", ">", "</parameter", "</parameter>", "x", "\n", "<<", "é"};
  std::mt19937 rng(20261208);
  int with = 0, without = 0;
  for (int i = 0; i < 400; ++i) {
    std::string value;
    for (int n = std::uniform_int_distribution<int>(0, 8)(rng); n > 0; --n)
      value += pieces[std::uniform_int_distribution<size_t>(0, pieces.size() - 1)(rng)];
    const bool holds = value.find("</parameter>") != std::string::npos;
    (holds ? with : without)++;
    EXPECT_EQ(sentence(g.grammar, "\n<function=f>\n<parameter=s>\n" + value + "\n</parameter>\n</function>\n</tool_call>"),
              !holds)
        << value;
  }
  EXPECT_GT(with, 20);
  EXPECT_GT(without, 20);
}

TEST(ToolCallGrammar, Qwen3CoderStringEnumsAreRawAndOddSchemasAreRefused) {
  const char* tools = R"([{"type": "function", "function": {"name": "set", "parameters": {"type": "object",
      "properties": {"mode": {"type": "string", "enum": ["on", "off"]}, "note": {"type": "string", "const": "x<y"},
        "flag": {"type": "boolean"}}, "required": ["mode"], "additionalProperties": false}}}])";
  const auto g = tool_call_grammar(form(ResponseFormat::Tools::Qwen3Coder), tools);
  const auto set = [](const std::string& parameters) { return "\n<function=set>\n" + parameters + "</function>\n</tool_call>"; };
  EXPECT_TRUE(sentence(g.grammar, set("<parameter=mode>\noff\n</parameter>\n")));
  EXPECT_TRUE(sentence(g.grammar, set("<parameter=mode>\non\n</parameter>\n<parameter=note>\nx<y\n</parameter>\n"
                                      "<parameter=flag>\ntrue\n</parameter>\n")));
  EXPECT_FALSE(sentence(g.grammar, set("<parameter=mode>\n\"on\"\n</parameter>\n")));
  EXPECT_FALSE(sentence(g.grammar, set("<parameter=mode>\nauto\n</parameter>\n")));
  EXPECT_FALSE(sentence(g.grammar, set("<parameter=mode>\non\n</parameter>\n<parameter=flag>\nTrue\n</parameter>\n")));

  auto error = [](const std::string& parameters) {
    const std::string json = R"([{"type": "function", "function": {"name": "f", "parameters": )" + parameters + "}}]";
    try {
      tool_call_grammar(form(ResponseFormat::Tools::Qwen3Coder), json);
    } catch (const moevk::Error& e) {
      EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_ARGUMENT);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error(R"({"type": "object", "properties": {"d": {"type": "string", "format": "date"}}})"),
            "tool-call grammar: tool \"f\": /properties/d: \"format\" is not supported for a string parameter in "
            "the qwen3_coder form (written raw)");
  EXPECT_EQ(error(R"({"type": "object", "properties": {"a>b": {"type": "string"}}})"),
            "tool-call grammar: tool \"f\": the parameter \"a>b\" cannot be written in the qwen3_coder form (empty, a "
            "\"<\", \">\" or newline in it, or blank at an end)");
  EXPECT_EQ(error(R"({"type": "object", "required": ["x"]})"),
            "tool-call grammar: tool \"f\": parameters: required \"x\" is not among the properties");
  EXPECT_EQ(error(R"({"type": "object", "anyOf": [{"properties": {}}]})"),
            "tool-call grammar: tool \"f\": parameters: \"anyOf\" is not supported in the qwen3_coder form");
  EXPECT_EQ(error(R"({"type": "object", "properties": {"n": {"type": "integer", "maximum": 3}}})"),
            "tool-call grammar: tool \"f\": json_schema: /properties/n: \"maximum\" is not supported");
}

TEST(ToolCallGrammar, Llama3AnswersAreOneCallOrProse) {
  const auto g = tool_call_grammar(form(ResponseFormat::Tools::Llama3Json), kTools);
  EXPECT_EQ(g.trigger, "");
  const std::string call = R"({"name": "get_weather", "parameters": {"city": "Paris"}})";
  EXPECT_TRUE(sentence(g.grammar, call));
  EXPECT_TRUE(sentence(g.grammar, R"({"name": "now", "parameters": {}})"));
  EXPECT_TRUE(sentence(g.grammar, "It is sunny in Paris.\n{not a call}"));
  EXPECT_FALSE(sentence(g.grammar, R"({"name": "get_weather", "arguments": {"city": "Paris"}})"));
  EXPECT_FALSE(sentence(g.grammar, R"({"name": "get_weather", "parameters": {}})"));
  EXPECT_FALSE(sentence(g.grammar, call + " and more"));
  EXPECT_FALSE(sentence(g.grammar, "{\"answer\": 1}"));
  const auto message = nlohmann::json::parse(
      moevk::text::parse_response(call, form(ResponseFormat::Tools::Llama3Json), kTools));
  ASSERT_EQ(message["tool_calls"].size(), 1u) << message.dump();
  EXPECT_EQ(message["tool_calls"][0]["function"]["arguments"], nlohmann::json({{"city", "Paris"}}));
}

// tool_choice: "required" and a name hold the answer to a call from its first token; "none" to
// any text but a call.
TEST(ToolCallGrammar, ToolChoiceRequiredNamedAndNone) {
  using moevk::generate::ToolChoice;
  const auto hermes = form(ResponseFormat::Tools::Hermes);
  const std::string weather = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
  const std::string now = "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>";

  const auto required = tool_call_grammar(hermes, kTools, ToolChoice::parse("required"));
  EXPECT_EQ(required.trigger, "");
  EXPECT_TRUE(sentence(required.grammar, weather));
  EXPECT_TRUE(sentence(required.grammar, weather + "\n" + now));
  EXPECT_FALSE(sentence(required.grammar, "Sure. " + weather));
  EXPECT_FALSE(sentence(required.grammar, "It is sunny."));

  for (const char* choice : {"now", R"({"type": "function", "function": {"name": "now"}})"}) {
    const auto named = tool_call_grammar(hermes, kTools, ToolChoice::parse(choice));
    EXPECT_TRUE(sentence(named.grammar, now)) << choice;
    EXPECT_FALSE(sentence(named.grammar, weather)) << choice;
  }
  const auto coder = tool_call_grammar(form(ResponseFormat::Tools::Qwen3Coder), kTools, ToolChoice::parse("now"));
  EXPECT_TRUE(sentence(coder.grammar, "<tool_call>\n<function=now>\n</function>\n</tool_call>"));
  const auto llama = tool_call_grammar(form(ResponseFormat::Tools::Llama3Json), kTools, ToolChoice::parse("required"));
  EXPECT_TRUE(sentence(llama.grammar, R"({"name": "now", "parameters": {}})"));
  EXPECT_FALSE(sentence(llama.grammar, "It is sunny."));

  const auto none = tool_call_grammar(hermes, kTools, ToolChoice::parse("none"));
  EXPECT_EQ(none.trigger, "");
  EXPECT_TRUE(sentence(none.grammar, "<think>\nno tools\n</think>\n\nIt is <b>sunny</b> <tool_ca"));
  EXPECT_FALSE(sentence(none.grammar, "Let me check." + weather));
  EXPECT_FALSE(sentence(none.grammar, "a <tool_call> b"));
  const auto mistral_none = tool_call_grammar(form(ResponseFormat::Tools::Mistral), kTools, ToolChoice::parse("none"));
  EXPECT_TRUE(sentence(mistral_none.grammar, "[TOOL] calls [x]"));
  EXPECT_FALSE(sentence(mistral_none.grammar, "x [TOOL_CALLS] [y]"));
  const auto llama_none = tool_call_grammar(form(ResponseFormat::Tools::Llama3Json), kTools, ToolChoice::parse("none"));
  EXPECT_TRUE(sentence(llama_none.grammar, "Sure: {}"));
  EXPECT_FALSE(sentence(llama_none.grammar, R"({"name": "now", "parameters": {}})"));

  auto error = [&](const ResponseFormat& f, const char* choice) -> std::pair<moevk_status, std::string> {
    try {
      tool_call_grammar(f, kTools, ToolChoice::parse(choice));
    } catch (const moevk::Error& e) {
      return {e.status(), e.what()};
    }
    return {MOEVK_OK, ""};
  };
  EXPECT_EQ(error(hermes, "later"),
            std::make_pair(MOEVK_ERROR_INVALID_ARGUMENT,
                           std::string("tool-call grammar: tool_choice names \"later\", which is not among the tools")));
  EXPECT_EQ(error(hermes, R"({"type": "function"})").first, MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(error(form(ResponseFormat::Tools::Mistral), "required").first, MOEVK_ERROR_UNSUPPORTED);
}

// The real templates' own renderings of past calls (tests/data/text/expected_chat.json, made by
// Jinja2) are sentences of the grammar for their tools: the grammar holds a model to the very
// form its template taught it.
TEST(ToolCallGrammar, TheTemplatesOwnCallsAreSentences) {
  const std::string data = MOEVK_TEST_DATA_DIR;
  const auto templates = nlohmann::json::parse(moevk::text::testdata::read_text_file(data + "/text/chat_templates.json"));
  const auto expected = nlohmann::json::parse(moevk::text::testdata::read_text_file(data + "/text/expected_chat.json"));
  int hermes = 0, mistral = 0, coder = 0, llama3 = 0;
  for (const auto& c : expected["cases"]) {
    if (!c.contains("tools") || !c["tools"].is_array() || c["tools"].empty() || c["error"].get<bool>()) continue;
    const auto format = ResponseFormat::of_template(templates[c["template"].get<std::string>()].get<std::string>());
    if (format.tools == ResponseFormat::Tools::None) continue;
    const auto g = tool_call_grammar(format, c["tools"].dump());
    const std::string text = c["expected"];
    if (format.tools == ResponseFormat::Tools::Qwen3Coder) {
      // Calls follow "<tool_call>" and end at "</tool_call>"; the system prompt's example (which
      // names no declared tool) and its mention of the tags are not calls.
      for (size_t at = text.find(g.trigger); at != std::string::npos; at = text.find(g.trigger, at + 1)) {
        const size_t begin = at + g.trigger.size(), end = text.find("</tool_call>", begin);
        const auto from_begin = [&](std::string_view s) { return text.compare(begin, s.size(), s) == 0; };
        if (end == std::string::npos || !from_begin("\n<function=") || from_begin("\n<function=example_")) continue;
        const std::string after = text.substr(begin, end + 12 - begin);
        EXPECT_TRUE(sentence(g.grammar, after)) << c["template"] << " " << c["conversation"] << ": " << after;
        coder++;
      }
      continue;
    }
    if (format.tools == ResponseFormat::Tools::Llama3Json) {
      // A call is an assistant turn's whole text; arguments as objects (not a JSON string).
      const std::string header = "<|start_header_id|>assistant<|end_header_id|>\n\n";
      for (size_t at = text.find(header); at != std::string::npos; at = text.find(header, at + 1)) {
        const size_t begin = at + header.size(), end = text.find("<|eot_id|>", begin);
        if (end == std::string::npos) continue;
        const std::string turn = text.substr(begin, end - begin);
        const auto parsed = nlohmann::json::parse(turn, nullptr, false);
        if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("parameters") ||
            !parsed["parameters"].is_object())
          continue;
        EXPECT_TRUE(sentence(g.grammar, turn)) << c["template"] << " " << c["conversation"] << ": " << turn;
        llama3++;
      }
      continue;
    }
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
  EXPECT_GT(coder, 2);
  EXPECT_GT(llama3, 2);
}
