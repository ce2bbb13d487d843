// Generated assistant text back into messages (text/chat_response.hpp). The strongest check is
// the round trip on the real templates: the text a template writes for an assistant turn with
// tool calls, parsed, gives those calls, and the parsed message renders to the same text.
#include <gtest/gtest.h>

#include <random>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "text/chat_response.hpp"
#include "text/chat_template.hpp"
#include "text_test_data.hpp"

namespace moevk::text {
namespace {

using json = nlohmann::ordered_json;

json load(const std::string& name) {
  const std::string text = testdata::read_text_file(std::string(MOEVK_TEST_DATA_DIR) + "/text/" + name);
  if (text.empty()) ADD_FAILURE() << "missing tests/data/text/" << name;
  return text.empty() ? json::object() : json::parse(text);
}

const json kTools = json::parse(R"([
  {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                   "required": ["city"]}}},
  {"type": "function", "function": {"name": "add", "description": "Adds two numbers.",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "number"},
                                                    "note": {"type": "string"}}}}}])");

json call(const char* id, const char* name, json arguments) {
  return {{"id", id}, {"type", "function"}, {"function", {{"name", name}, {"arguments", std::move(arguments)}}}};
}

TEST(ChatResponse, FormatsFollowTheTemplates) {
  const json templates = load("chat_templates.json");
  const std::pair<const char*, const char*> expected[] = {
      {"qwen3", "hermes"},          {"qwen3_instruct_2507", "hermes"}, {"qwen3_thinking_2507", "hermes"},
      {"qwen3_coder", "qwen3_coder"}, {"mixtral_8x22b", "mistral"},    {"llama31", "llama3_json"},
      {"qwen2", "none"},            {"mixtral", "none"},               {"llama3_instruct", "none"}};
  for (const auto& [name, tools] : expected) {
    EXPECT_STREQ(ResponseFormat::of_template(templates[name].get<std::string>()).tools_name(), tools) << name;
  }
  EXPECT_TRUE(ResponseFormat::of_template(templates["qwen3"].get<std::string>()).reasoning);
  EXPECT_FALSE(ResponseFormat::of_template(templates["qwen3_coder"].get<std::string>()).reasoning);
  EXPECT_FALSE(ResponseFormat::of_template(templates["mixtral_8x22b"].get<std::string>()).reasoning);
  EXPECT_STREQ(ResponseFormat::of_template("chatml").tools_name(), "hermes");
  EXPECT_STREQ(ResponseFormat::of_template("mistral").tools_name(), "none");
}

TEST(ChatResponse, RoundTripsTheRealTemplatesAssistantTurns) {
  const json templates = load("chat_templates.json");
  const json user = {{"role", "user"}, {"content", "Weather in Paris, and 2+2.5?"}};
  const json weather = call("call12345", "get_weather", {{"city", "Paris"}, {"unit", "celsius"}});
  const json add = call("call67890", "add", {{"a", 2}, {"b", 2.5}, {"note", "a \"quoted\"\nline"}});
  const std::pair<const char*, json> answers[] = {
      {"one call", {{"role", "assistant"}, {"content", ""}, {"tool_calls", {weather}}}},
      {"two calls", {{"role", "assistant"}, {"content", ""}, {"tool_calls", {weather, add}}}},
      {"text and a call", {{"role", "assistant"}, {"content", "Let me check."}, {"tool_calls", {add}}}},
      {"plain answer", {{"role", "assistant"}, {"content", "It is sunny, and 4.5."}}},
      {"reasoning and a call",
       {{"role", "assistant"}, {"reasoning_content", "I need the weather."}, {"content", ""}, {"tool_calls", {weather}}}},
  };
  int round_trips = 0, with_calls = 0;
  for (const char* name : {"qwen3", "qwen3_instruct_2507", "qwen3_thinking_2507", "qwen3_coder", "mixtral_8x22b",
                           "llama31"}) {
    const std::string source = templates[name].get<std::string>();
    const ChatTemplate chat(source);
    const ResponseFormat format = ResponseFormat::of_template(source);
    for (const auto& [what, answer] : answers) {
      SCOPED_TRACE(std::string(name) + " / " + what);
      const std::string tools = kTools.dump();
      std::string prompt, full;
      try {
        prompt = chat.apply_json(json::array({user}).dump(), true, tools);
        full = chat.apply_json(json::array({user, answer}).dump(), false, tools);
      } catch (const Error& e) {
        // Llama-3.1's template takes one call at a time.
        EXPECT_STREQ(name, "llama31") << e.what();
        continue;
      }
      ASSERT_EQ(full.rfind(prompt, 0), 0u) << "the turn does not extend the prompt:\n" << prompt << "\n--\n" << full;
      std::string generated = full.substr(prompt.size());
      // The end-of-turn token ends generation and is not part of the text.
      for (const char* end : {"<|im_end|>\n", "</s>", "<|eot_id|>"}) {
        const std::string e = end;
        if (generated.size() >= e.size() && generated.compare(generated.size() - e.size(), e.size(), e) == 0) {
          generated.resize(generated.size() - e.size());
          break;
        }
      }
      const json parsed = json::parse(parse_response(generated, format, tools));
      EXPECT_EQ(parsed["role"], "assistant");
      if (answer.contains("tool_calls")) {
        ASSERT_TRUE(parsed.contains("tool_calls")) << generated << "\n->\n" << parsed.dump();
        ASSERT_EQ(parsed["tool_calls"].size(), answer["tool_calls"].size());
        for (size_t i = 0; i < parsed["tool_calls"].size(); ++i) {
          EXPECT_EQ(parsed["tool_calls"][i]["function"], answer["tool_calls"][i]["function"]) << generated;
          EXPECT_EQ(parsed["tool_calls"][i]["id"].get<std::string>().size(), 9u);
        }
        ++with_calls;
      } else {
        EXPECT_FALSE(parsed.contains("tool_calls")) << parsed.dump();
        EXPECT_EQ(parsed["content"], answer["content"]);
      }
      if (format.reasoning && answer.contains("reasoning_content")) {
        EXPECT_EQ(parsed.value("reasoning_content", json()), answer["reasoning_content"]) << generated;
      }
      EXPECT_EQ(chat.apply_json(json::array({user, parsed}).dump(), false, tools), full) << parsed.dump();
      ++round_trips;
    }
  }
  EXPECT_GE(round_trips, 28);
  EXPECT_GE(with_calls, 22);
}

TEST(ChatResponse, ReasoningIsSplitOff) {
  const ResponseFormat qwen3 = ResponseFormat::of_template("chatml");
  auto parse = [&](const char* text) { return json::parse(parse_response(text, qwen3)); };
  json m = parse("<think>\nStep one.\nStep two.\n</think>\n\nThe answer.");
  EXPECT_EQ(m["reasoning_content"], "Step one.\nStep two.");
  EXPECT_EQ(m["content"], "The answer.");
  // The thinking templates write <think> into the generation prompt.
  m = parse("Step one.\n</think>\n\nThe answer.");
  EXPECT_EQ(m["reasoning_content"], "Step one.");
  EXPECT_EQ(m["content"], "The answer.");
  // Cut off while reasoning: all of it is reasoning, no answer yet.
  m = parse("<think>\nStill thinking");
  EXPECT_EQ(m["reasoning_content"], "Still thinking");
  EXPECT_EQ(m["content"], "");
  // No think block: the content as written, spaces included.
  m = parse(" Hello ");
  EXPECT_FALSE(m.contains("reasoning_content"));
  EXPECT_EQ(m["content"], " Hello ");
  // A format without reasoning leaves the tags in the content.
  m = json::parse(parse_response("<think>x</think>y", ResponseFormat{}));
  EXPECT_EQ(m["content"], "<think>x</think>y");
}

// Text that looks like a call and is not one stays in the content, as written.
TEST(ChatResponse, BrokenCallsStayInTheContent) {
  const ResponseFormat hermes = ResponseFormat::of_template("chatml");
  ResponseFormat mistral, llama, coder;
  mistral.tools = ResponseFormat::Tools::Mistral;
  llama.tools = ResponseFormat::Tools::Llama3Json;
  coder.tools = ResponseFormat::Tools::Qwen3Coder;
  const std::pair<const ResponseFormat*, std::string> cases[] = {
      {&hermes, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Par"},
      {&hermes, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": }}\n</tool_call>"},
      {&hermes, "<tool_call>\n[1, 2]\n</tool_call>"},
      {&hermes, "<tool_call>\n{\"arguments\": {}}\n</tool_call>"},
      {&mistral, "[TOOL_CALLS] [{\"name\": \"add\", \"arguments\": {\"a\": 1}"},
      {&mistral, "[TOOL_CALLS] []"},
      {&mistral, "[TOOL_CALLS] [{\"name\": 3}]"},
      {&llama, "{\"name\": \"add\"}"},
      {&llama, "{\"city\": \"Paris\"}"},
      {&coder, "<tool_call>\n<function=add>\n<parameter=a>\n1\n</function>\n</tool_call>"},
      {&coder, "<tool_call>\n<function=>\n</function>\n</tool_call>"},
  };
  for (const auto& [format, text] : cases) {
    SCOPED_TRACE(text);
    const json m = json::parse(parse_response(text, *format));
    EXPECT_FALSE(m.contains("tool_calls")) << m.dump();
    EXPECT_EQ(m["content"], text);
  }
  // One good block and one broken: the good one is a call, the broken one content.
  const json m = json::parse(parse_response(
      "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}\n</tool_call>\n<tool_call>\n{oops}\n</tool_call>", hermes));
  ASSERT_EQ(m["tool_calls"].size(), 1u);
  EXPECT_EQ(m["content"], "<tool_call>\n{oops}\n</tool_call>");
}

TEST(ChatResponse, Qwen3CoderValuesFollowTheSchema) {
  ResponseFormat coder;
  coder.tools = ResponseFormat::Tools::Qwen3Coder;
  const std::string text =
      "<tool_call>\n<function=add>\n<parameter=a>\n2\n</parameter>\n<parameter=b>\n[1, 2]\n</parameter>\n"
      "<parameter=note>\n42\n</parameter>\n<parameter=extra>\nnot json\n</parameter>\n</function>\n</tool_call>";
  json m = json::parse(parse_response(text, coder, kTools.dump()));
  EXPECT_EQ(m["tool_calls"][0]["function"]["arguments"],
            json::parse(R"({"a": 2, "b": [1, 2], "note": "42", "extra": "not json"})"));
  // Without the tool list, values that parse as JSON are JSON.
  m = json::parse(parse_response(text, coder));
  EXPECT_EQ(m["tool_calls"][0]["function"]["arguments"]["note"], 42);
  EXPECT_THROW(parse_response(text, coder, "{\"not\": \"a list\"}"), Error);
  EXPECT_THROW(parse_response(text, coder, "[oops"), Error);
}

TEST(ChatResponse, IdsAreStableAndMistralShaped) {
  const ResponseFormat hermes = ResponseFormat::of_template("chatml");
  const std::string text = "<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n"
                           "<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>";
  const json m = json::parse(parse_response(text, hermes));
  const json again = json::parse(parse_response(text, hermes));
  ASSERT_EQ(m["tool_calls"].size(), 2u);
  EXPECT_EQ(m["tool_calls"], again["tool_calls"]);
  EXPECT_NE(m["tool_calls"][0]["id"], m["tool_calls"][1]["id"]);
  for (const auto& c : m["tool_calls"]) {
    const std::string id = c["id"];
    ASSERT_EQ(id.size(), 9u);
    for (char ch : id) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(ch))) << id;
  }
}

// Any text: no exception, valid JSON out (bytes that are not UTF-8 replaced).
TEST(ChatResponse, AnyTextGivesAMessage) {
  const char* pieces[] = {"<tool_call>", "</tool_call>", "<think>", "</think>", "[TOOL_CALLS]", "<|python_tag|>",
                          "<function=f>", "</function>", "<parameter=p>", "</parameter>", "{\"name\": \"f\", ",
                          "\"arguments\": {", "\"parameters\": {", "}", "]", "[", "\n", " ", "x", "\xff", "\xe4\xb8",
                          "\"", "1"};
  ResponseFormat formats[5];
  formats[1].tools = ResponseFormat::Tools::Hermes;
  formats[1].reasoning = true;
  formats[2].tools = ResponseFormat::Tools::Qwen3Coder;
  formats[3].tools = ResponseFormat::Tools::Mistral;
  formats[4].tools = ResponseFormat::Tools::Llama3Json;
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; ++i) {
    std::string text;
    const int n = rng() % 12;
    for (int k = 0; k < n; ++k) text += pieces[rng() % std::size(pieces)];
    for (const ResponseFormat& f : formats) {
      std::string out;
      ASSERT_NO_THROW(out = parse_response(text, f)) << text;
      const json m = json::parse(out);
      ASSERT_TRUE(m["content"].is_string()) << text;
    }
  }
}

}  // namespace
}  // namespace moevk::text
