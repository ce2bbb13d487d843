// The chat-template entry points of the C API with tool use: moevk_chat_apply_template_json
// and the tools_json / variables_json fields of moevk_chat_params, on a file whose template is
// Qwen3's real one, against the Jinja2 renderings of tests/data/text/expected_chat.json.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "moevk.h"
#include "tiny_model_files.hpp"

namespace {

using moevk::test::read_file;

class ChatApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string data = MOEVK_TEST_DATA_DIR;
    dir_ = std::string(::testing::TempDir()) + "/chat-api-" + std::to_string(getpid());
    // A byte-level BPE of a few tokens carries the template into the file.
    const auto templates = nlohmann::json::parse(read_file(data + "/text/chat_templates.json"));
    gguf_ = dir_ + "/qwen3-template.gguf";
    expected_ = nlohmann::ordered_json::parse(read_file(data + "/text/expected_chat.json"));
    ASSERT_EQ(moevk::test::convert_tiny_qwen2moe(
                  dir_, R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3},
        "merges": ["a b"]}, "pre_tokenizer": {"type": "ByteLevel"}})",
                  nlohmann::json{{"chat_template", templates["qwen3"]}}.dump(), gguf_),
              MOEVK_OK)
        << moevk_last_error();
    ASSERT_EQ(moevk_model_load(gguf_.c_str(), nullptr, &model_), MOEVK_OK) << moevk_last_error();
  }
  static void TearDownTestSuite() {
    moevk_model_free(model_);
    model_ = nullptr;
    std::filesystem::remove_all(dir_);
  }
  // The Jinja2 rendering of Qwen3's template for a conversation of expected_chat.json.
  static const nlohmann::ordered_json& find_case(const std::string& conversation, bool generation_prompt) {
    for (const auto& c : expected_["cases"])
      if (c["template"] == "qwen3" && c["conversation"] == conversation && c["add_generation_prompt"] == generation_prompt)
        return c;
    ADD_FAILURE() << "no case " << conversation;
    static const nlohmann::ordered_json none;
    return none;
  }
  static std::string take(char* s) {
    std::string out = s ? s : "";
    moevk_free_string(s);
    return out;
  }

  static inline moevk_model* model_ = nullptr;
  static inline std::string dir_, gguf_;
  static inline nlohmann::ordered_json expected_;
};

TEST_F(ChatApi, JsonConversationsWithToolsRenderAsTransformers) {
  int compared = 0;
  for (const char* conversation : {"tools_user", "tools_call", "tools_call_string_arguments", "tools_parallel_calls",
                                   "reasoning_content", "tools_history_without_tools"}) {
    for (bool generation_prompt : {false, true}) {
      SCOPED_TRACE(std::string(conversation) + (generation_prompt ? " + generation prompt" : ""));
      const auto& c = find_case(conversation, generation_prompt);
      ASSERT_FALSE(c["error"].get<bool>());
      const std::string messages = c["messages"].dump(), tools = c["tools"].dump();
      moevk_chat_params p = moevk_chat_default_params();
      p.add_generation_prompt = generation_prompt;
      p.tools_json = c["tools"].is_null() ? nullptr : tools.c_str();
      char* prompt = nullptr;
      ASSERT_EQ(moevk_chat_apply_template_json(model_, messages.c_str(), &p, &prompt), MOEVK_OK)
          << moevk_model_last_error(model_);
      EXPECT_EQ(take(prompt), c["expected"].get<std::string>());
      ++compared;
    }
  }
  EXPECT_EQ(compared, 12);
}

// The message structs take tools and variables too.
TEST_F(ChatApi, MessageStructsTakeToolsAndVariables) {
  const auto& c = find_case("tools_user", true);
  const std::string tools = c["tools"].dump();
  moevk_chat_message messages[2] = {{"system", "You are terse."}, {"user", "Weather in Paris, and 2+2.5?"}};
  moevk_chat_params p = moevk_chat_default_params();
  p.tools_json = tools.c_str();
  char* prompt = nullptr;
  ASSERT_EQ(moevk_chat_apply_template_with(model_, messages, 2, &p, &prompt), MOEVK_OK) << moevk_last_error();
  EXPECT_EQ(take(prompt), c["expected"].get<std::string>());

  // enable_thinking through variables_json is the same as through its field.
  const auto& no_think = find_case("system_user/no_think", true);
  moevk_chat_message plain[2] = {{"system", "You are terse."}, {"user", "What is 2+2?"}};
  moevk_chat_params v = moevk_chat_default_params();
  v.variables_json = R"({"enable_thinking": false})";
  ASSERT_EQ(moevk_chat_apply_template_with(model_, plain, 2, &v, &prompt), MOEVK_OK) << moevk_last_error();
  EXPECT_EQ(take(prompt), no_think["expected"].get<std::string>());
  moevk_chat_params f = moevk_chat_default_params();
  f.enable_thinking = 0;
  ASSERT_EQ(moevk_chat_apply_template_with(model_, plain, 2, &f, &prompt), MOEVK_OK) << moevk_last_error();
  EXPECT_EQ(take(prompt), no_think["expected"].get<std::string>());
}

// A caller built against the first moevk_chat_params has no tools_json or variables_json: what
// lies past its struct_size is never read.
TEST_F(ChatApi, OlderParamsLeaveTheNewFieldsUnread) {
  moevk_chat_params p = moevk_chat_default_params();
  p.struct_size = offsetof(moevk_chat_params, enable_thinking) + sizeof p.enable_thinking;
  p.tools_json = "not JSON at all";
  p.variables_json = "{";
  char* prompt = nullptr;
  const char* messages = R"([{"role": "user", "content": "What is 2+2?"}])";
  ASSERT_EQ(moevk_chat_apply_template_json(model_, messages, &p, &prompt), MOEVK_OK) << moevk_last_error();
  EXPECT_EQ(take(prompt), find_case("user_only", true)["expected"].get<std::string>());
}

// Bad JSON is the caller's error, named; the model stays usable.
TEST_F(ChatApi, BadJsonIsAnInvalidArgument) {
  const char* good = R"([{"role": "user", "content": "Hi"}])";
  struct Case {
    const char* messages;
    const char* tools;
    const char* variables;
    int enable_thinking;
    const char* says;
  } cases[] = {
      {"[{\"role\": \"user\"", nullptr, nullptr, -1, "messages_json is not JSON"},
      {R"({"role": "user"})", nullptr, nullptr, -1, "not a JSON array"},
      {good, "{\"type\": 1}", nullptr, -1, "tools_json is not a JSON array"},
      {good, "[", nullptr, -1, "tools_json is not JSON"},
      {good, nullptr, "[]", -1, "variables_json is not a JSON object"},
      {good, nullptr, R"({"tools": []})", -1, "its own parameter"},
      {good, nullptr, R"({"enable_thinking": true})", 0, "a second time"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.says);
    moevk_chat_params p = moevk_chat_default_params();
    p.tools_json = c.tools;
    p.variables_json = c.variables;
    p.enable_thinking = c.enable_thinking;
    char* prompt = nullptr;
    EXPECT_EQ(moevk_chat_apply_template_json(model_, c.messages, &p, &prompt), MOEVK_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(prompt, nullptr);
    EXPECT_NE(std::strstr(moevk_last_error(), c.says), nullptr) << moevk_last_error();
    EXPECT_NE(std::strstr(moevk_model_last_error(model_), c.says), nullptr) << moevk_model_last_error(model_);
  }
  char* prompt = nullptr;
  EXPECT_EQ(moevk_chat_apply_template_json(model_, nullptr, nullptr, &prompt), MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(moevk_chat_apply_template_json(nullptr, good, nullptr, &prompt), MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(moevk_chat_apply_template_json(model_, good, nullptr, nullptr), MOEVK_ERROR_INVALID_ARGUMENT);
  // Message structs carry bytes, UTF-8 or not, to the template the same with tools as without
  // (no JSON in between).
  moevk_chat_message raw = {"user", "\xff\xfe"};
  moevk_chat_params p = moevk_chat_default_params();
  ASSERT_EQ(moevk_chat_apply_template_with(model_, &raw, 1, &p, &prompt), MOEVK_OK) << moevk_last_error();
  const std::string without_tools = take(prompt);
  EXPECT_NE(without_tools.find("\xff\xfe"), std::string::npos);
  p.tools_json = "[]";
  ASSERT_EQ(moevk_chat_apply_template_with(model_, &raw, 1, &p, &prompt), MOEVK_OK) << moevk_last_error();
  EXPECT_EQ(take(prompt), without_tools);
  // Still usable.
  ASSERT_EQ(moevk_chat_apply_template_json(model_, good, nullptr, &prompt), MOEVK_OK) << moevk_last_error();
  EXPECT_EQ(take(prompt), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

// A generated tool call back into a message that renders to what the model wrote, and the
// template's tool support as moevk info reports it.
TEST_F(ChatApi, ParsedResponsesRenderBack) {
  const auto& c = find_case("tools_user", true);
  const std::string tools = c["tools"].dump();
  const std::string generated =
      "<think>\nThe user wants the weather.\n</think>\n\nChecking.\n<tool_call>\n"
      "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}\n</tool_call>";
  moevk_chat_params p = moevk_chat_default_params();
  p.tools_json = tools.c_str();
  char* out = nullptr;
  ASSERT_EQ(moevk_chat_parse_response(model_, generated.c_str(), &p, &out), MOEVK_OK) << moevk_last_error();
  const auto message = nlohmann::ordered_json::parse(take(out));
  EXPECT_EQ(message["content"], "Checking.");
  EXPECT_EQ(message["reasoning_content"], "The user wants the weather.");
  ASSERT_EQ(message["tool_calls"].size(), 1u);
  EXPECT_EQ(message["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(message["tool_calls"][0]["function"]["arguments"].dump(), R"({"city":"Paris","unit":"celsius"})");

  // prompt + generated == the conversation with the parsed message appended (and its end token).
  nlohmann::ordered_json conversation = c["messages"];
  char* prompt = nullptr;
  ASSERT_EQ(moevk_chat_apply_template_json(model_, conversation.dump().c_str(), &p, &prompt), MOEVK_OK);
  const std::string before = take(prompt);
  conversation.push_back(message);
  p.add_generation_prompt = 0;
  ASSERT_EQ(moevk_chat_apply_template_json(model_, conversation.dump().c_str(), &p, &prompt), MOEVK_OK)
      << moevk_last_error();
  EXPECT_EQ(take(prompt), before + generated + "<|im_end|>\n");

  // A plain answer is the content; NULLs and a bad tool list are refused.
  ASSERT_EQ(moevk_chat_parse_response(model_, "Hello there", nullptr, &out), MOEVK_OK);
  EXPECT_EQ(take(out), R"({"role":"assistant","content":"Hello there"})");
  EXPECT_EQ(moevk_chat_parse_response(model_, nullptr, nullptr, &out), MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(moevk_chat_parse_response(model_, "x", nullptr, nullptr), MOEVK_ERROR_INVALID_ARGUMENT);
  p.tools_json = "{";
  EXPECT_EQ(moevk_chat_parse_response(model_, "x", &p, &out), MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::strstr(moevk_last_error(), "tools_json is not JSON"), nullptr) << moevk_last_error();
  // A template override picks its form: "mistral" (Mixtral-8x7B's) has no tool calls.
  moevk_chat_params m = moevk_chat_default_params();
  m.template_name = "mistral";
  ASSERT_EQ(moevk_chat_parse_response(model_, generated.c_str(), &m, &out), MOEVK_OK);
  EXPECT_FALSE(nlohmann::json::parse(take(out)).contains("tool_calls"));

  char* info = nullptr;
  ASSERT_EQ(moevk_inspect_json(gguf_.c_str(), &info), MOEVK_OK) << moevk_last_error();
  const auto ct = nlohmann::json::parse(take(info)).at("chat_template");
  EXPECT_TRUE(ct.at("renders").get<bool>());
  EXPECT_TRUE(ct.at("tools").get<bool>());
  EXPECT_EQ(ct.at("tool_calls"), "hermes");
  EXPECT_TRUE(ct.at("reasoning").get<bool>());
}

// The lazy grammar for tool calls in the template's form, usable as a grammar with its trigger.
TEST_F(ChatApi, ToolCallGrammarForTheTemplatesForm) {
  const std::string tools = find_case("tools_user", true)["tools"].dump();
  moevk_chat_params p = moevk_chat_default_params();
  p.tools_json = tools.c_str();
  char* grammar = nullptr;
  char* trigger = nullptr;
  ASSERT_EQ(moevk_chat_tool_call_grammar(model_, &p, &grammar, &trigger), MOEVK_OK) << moevk_model_last_error(model_);
  EXPECT_STREQ(trigger, "<tool_call>");
  moevk_grammar* g = nullptr;
  EXPECT_EQ(moevk_grammar_create(model_, grammar, nullptr, trigger, &g), MOEVK_OK) << moevk_model_last_error(model_);
  moevk_grammar_free(g);
  moevk_free_string(grammar);
  moevk_free_string(trigger);

  // tool_choice: a named tool's call from the first token (no trigger), and a name not declared.
  p.tool_choice = "get_weather";
  ASSERT_EQ(moevk_chat_tool_call_grammar(model_, &p, &grammar, &trigger), MOEVK_OK) << moevk_model_last_error(model_);
  EXPECT_EQ(trigger, nullptr);
  EXPECT_EQ(std::string(grammar).rfind("root ::= \"<tool_call>\" calls\n", 0), 0u) << grammar;
  moevk_free_string(grammar);
  p.tool_choice = "later";
  EXPECT_EQ(moevk_chat_tool_call_grammar(model_, &p, &grammar, &trigger), MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(moevk_model_last_error(model_)).find("\"later\""), std::string::npos);
  p.tool_choice = nullptr;

  // A template without tool calls (Llama-3's), and no tools at all.
  p.template_name = "llama3";
  EXPECT_EQ(moevk_chat_tool_call_grammar(model_, &p, &grammar, &trigger), MOEVK_ERROR_UNSUPPORTED);
  EXPECT_NE(std::string(moevk_model_last_error(model_)).find("has no tool-call form"), std::string::npos)
      << moevk_model_last_error(model_);
  EXPECT_EQ(grammar, nullptr);
  p.template_name = nullptr;
  p.tools_json = nullptr;
  EXPECT_EQ(moevk_chat_tool_call_grammar(model_, &p, &grammar, &trigger), MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(moevk_chat_tool_call_grammar(model_, nullptr, &grammar, &trigger), MOEVK_ERROR_INVALID_ARGUMENT);
}

// The answer read as it streams: deltas of reasoning and content as they come, the call whole at
// the end, and the message moevk_chat_parse_response gives.
TEST_F(ChatApi, StreamedAnswerAddsUpToTheParsedMessage) {
  const std::string tools = find_case("tools_user", true)["tools"].dump();
  moevk_chat_params p = moevk_chat_default_params();
  p.tools_json = tools.c_str();
  moevk_chat_stream* stream = nullptr;
  ASSERT_EQ(moevk_chat_stream_create(model_, &p, "<|im_start|>assistant\n", &stream), MOEVK_OK)
      << moevk_model_last_error(model_);
  const std::string answer =
      "<think>\nParis, so the weather tool.\n</think>\n\nLet me check.\n<tool_call>\n{\"name\": \"get_weather\", "
      "\"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
  std::string reasoning, content;
  for (size_t i = 0; i < answer.size(); i += 3) {
    char* delta = nullptr;
    const std::string piece = answer.substr(i, 3);
    ASSERT_EQ(moevk_chat_stream_push(stream, piece.data(), piece.size(), &delta), MOEVK_OK)
        << moevk_chat_stream_last_error(stream);
    const auto d = nlohmann::json::parse(take(delta));
    EXPECT_FALSE(d.contains("tool_calls"));
    reasoning += d.value("reasoning_content", "");
    content += d.value("content", "");
    if (i + 3 == 33) {
      EXPECT_EQ(reasoning, "Paris, so the weather too");  // while it is written
    }
  }
  EXPECT_EQ(content, "Let me check.");  // the call's text held back
  char* delta = nullptr;
  char* message = nullptr;
  ASSERT_EQ(moevk_chat_stream_finish(stream, &delta, &message), MOEVK_OK) << moevk_chat_stream_last_error(stream);
  const auto last = nlohmann::json::parse(take(delta));
  const std::string streamed_message = take(message);
  char* parsed = nullptr;
  ASSERT_EQ(moevk_chat_parse_response(model_, answer.c_str(), &p, &parsed), MOEVK_OK);
  EXPECT_EQ(streamed_message, take(parsed));
  const auto m = nlohmann::json::parse(streamed_message);
  EXPECT_EQ(reasoning + last.value("reasoning_content", ""), m["reasoning_content"]);
  EXPECT_EQ(content + last.value("content", ""), m["content"]);
  ASSERT_TRUE(last.contains("tool_calls")) << last.dump();
  EXPECT_EQ(last["tool_calls"], m["tool_calls"]);

  // Nothing after the end; NULLs and a bad tool list refused.
  EXPECT_EQ(moevk_chat_stream_push(stream, "x", 1, &delta), MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(moevk_chat_stream_last_error(stream)).find("after the end"), std::string::npos)
      << moevk_chat_stream_last_error(stream);
  EXPECT_EQ(moevk_chat_stream_finish(stream, &delta, &message), MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(moevk_chat_stream_push(stream, nullptr, 1, &delta), MOEVK_ERROR_INVALID_ARGUMENT);
  moevk_chat_stream_free(stream);
  EXPECT_EQ(moevk_chat_stream_push(nullptr, "x", 1, &delta), MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(moevk_chat_stream_last_error(nullptr), "");
  moevk_chat_stream_free(nullptr);
  p.tools_json = "{";
  EXPECT_EQ(moevk_chat_stream_create(model_, &p, nullptr, &stream), MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(stream, nullptr);
  EXPECT_EQ(moevk_chat_stream_create(model_, nullptr, nullptr, nullptr), MOEVK_ERROR_INVALID_ARGUMENT);
}

// Files whose templates write calls as Qwen3-Coder (XML) and Llama-3.1 (a bare JSON answer) do.
TEST_F(ChatApi, ToolCallGrammarForQwen3CoderAndLlama31Files) {
  const std::string data = MOEVK_TEST_DATA_DIR;
  const auto templates = nlohmann::json::parse(read_file(data + "/text/chat_templates.json"));
  const std::string tools = find_case("tools_user", true)["tools"].dump();
  for (const char* name : {"qwen3_coder", "llama31"}) {
    SCOPED_TRACE(name);
    const std::string gguf = dir_ + "/" + name + ".gguf";
    ASSERT_EQ(moevk::test::convert_tiny_qwen2moe(
                  dir_ + "/" + name, R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3},
        "merges": ["a b"]}, "pre_tokenizer": {"type": "ByteLevel"}})",
                  nlohmann::json{{"chat_template", templates[name]}}.dump(), gguf),
              MOEVK_OK)
        << moevk_last_error();
    moevk_model* model = nullptr;
    ASSERT_EQ(moevk_model_load(gguf.c_str(), nullptr, &model), MOEVK_OK) << moevk_last_error();
    moevk_chat_params p = moevk_chat_default_params();
    p.tools_json = tools.c_str();
    char* grammar = nullptr;
    char* trigger = reinterpret_cast<char*>(&p);  // overwritten, NULL included
    ASSERT_EQ(moevk_chat_tool_call_grammar(model, &p, &grammar, &trigger), MOEVK_OK) << moevk_model_last_error(model);
    const bool coder = std::string(name) == "qwen3_coder";
    if (coder) {
      EXPECT_STREQ(trigger, "<tool_call>");
      EXPECT_NE(std::strstr(grammar, "<function=get_weather>"), nullptr) << grammar;
    } else {
      EXPECT_EQ(trigger, nullptr);
      EXPECT_NE(std::strstr(grammar, "\\\"parameters\\\": "), nullptr) << grammar;
    }
    moevk_grammar* g = nullptr;
    ASSERT_EQ(moevk_grammar_create(model, grammar, nullptr, trigger, &g), MOEVK_OK) << moevk_model_last_error(model);
    // Lazy (Qwen3-Coder: any text before "<tool_call>"), or holding from the first token
    // (Llama-3.1: an answer that is not a call begins with neither "{" nor a space).
    EXPECT_EQ(moevk_grammar_allows(g, 3), coder ? 1 : 0);  // "Ġ", a space
    EXPECT_EQ(moevk_grammar_allows(g, 0), 1);              // "a"
    moevk_grammar_free(g);
    moevk_free_string(grammar);
    moevk_free_string(trigger);
    moevk_model_free(model);
  }
}

}  // namespace
