// Chat templates against Jinja2 renderings of the real templates (tests/data/text/
// make_chat_expected.py -> expected_chat.json): same bytes, and the same conversations rejected.
#include <gtest/gtest.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "text/chat_template.hpp"
#include "text_test_data.hpp"

namespace moevk::text {
namespace {

nlohmann::json load_json(const std::string& name) {
  std::string text = testdata::read_text_file(std::string(MOEVK_TEST_DATA_DIR) + "/text/" + name);
  if (text.empty()) ADD_FAILURE() << "missing tests/data/text/" << name;
  return text.empty() ? nlohmann::json::object() : nlohmann::json::parse(text);
}

std::vector<Message> messages_of(const nlohmann::json& j) {
  std::vector<Message> messages;
  for (const auto& m : j) messages.push_back({m["role"], m["content"]});
  return messages;
}

// Messages of a role and a string content only: what ChatTemplate::apply (and the C API's
// message structs) can express.
bool plain_messages(const nlohmann::json& messages) {
  for (const auto& m : messages)
    if (m.size() != 2 || !m.contains("role") || !m.contains("content") || !m["content"].is_string()) return false;
  return true;
}

// Every case through apply_json (the conversation, tools and variables as the JSON text the
// generator rendered from), and the plain ones through apply as well.
TEST(ChatTemplate, MatchesJinjaRenderingOfRealTemplates) {
  nlohmann::json templates = load_json("chat_templates.json");
  // Ordered, so that objects keep the key order Jinja2 saw (tojson writes them back).
  const std::string expected_text =
      testdata::read_text_file(std::string(MOEVK_TEST_DATA_DIR) + "/text/expected_chat.json");
  ASSERT_FALSE(expected_text.empty());
  const nlohmann::ordered_json expected = nlohmann::ordered_json::parse(expected_text);
  ASSERT_GE(expected["cases"].size(), 400u);
  int plain = 0, with_tools = 0;
  for (const auto& c : expected["cases"]) {
    std::string name = c["template"];
    SCOPED_TRACE(name + " / " + c["conversation"].get<std::string>() +
                 (c["add_generation_prompt"].get<bool>() ? " + generation prompt" : ""));
    ChatTemplate chat(templates[name].get<std::string>());
    const bool add_generation_prompt = c["add_generation_prompt"];
    const std::string messages_json = c["messages"].dump();
    const std::string tools_json = c["tools"].dump();
    const std::string variables_json = c["variables"].dump();
    auto render_json = [&] { return chat.apply_json(messages_json, add_generation_prompt, tools_json, variables_json); };
    const bool is_plain = plain_messages(c["messages"]) && c["tools"].is_null();
    std::vector<ChatVariable> variables;
    for (const auto& [k, v] : c["variables"].items())
      variables.push_back(v.is_boolean() ? ChatVariable{k, ChatVariable::Kind::Bool, v.get<bool>(), {}}
                                         : ChatVariable{k, ChatVariable::Kind::String, false, v.get<std::string>()});
    auto render_plain = [&] {
      std::vector<Message> messages;
      for (const auto& m : c["messages"]) messages.push_back({m["role"], m["content"]});
      return chat.apply(messages, add_generation_prompt, variables);
    };
    plain += is_plain;
    with_tools += !c["tools"].is_null();
    if (c["error"].get<bool>()) {
      for (int way = 0; way < (is_plain ? 2 : 1); ++way) {
        try {
          way == 0 ? render_json() : render_plain();
          ADD_FAILURE() << "the real template rejects this conversation" << (way ? " (apply)" : " (apply_json)");
        } catch (const Error& e) {
          EXPECT_EQ(e.status(), MOEVK_ERROR_TOKENIZER) << e.what();
        }
      }
    } else {
      EXPECT_EQ(render_json(), c["expected"].get<std::string>());
      if (is_plain) {
        EXPECT_EQ(render_plain(), c["expected"].get<std::string>()) << "(apply)";
      }
    }
  }
  EXPECT_GE(plain, 200);
  EXPECT_GE(with_tools, 100);
}

TEST(ChatTemplate, EveryRealTemplateParses) {
  nlohmann::json templates = load_json("chat_templates.json");
  int count = 0;
  for (const auto& [key, source] : templates.items()) {
    if (key == "description") continue;
    SCOPED_TRACE(key);
    EXPECT_STREQ(ChatTemplate(source.get<std::string>()).name(), "model");
    ++count;
  }
  EXPECT_GE(count, 11);
}

// Each name renders what the model template it stands for renders, on every conversation both
// accept ("chatml" has no default system prompt, so it is compared with Qwen3's form on turns
// without reasoning, tool results or a closing answer).
TEST(ChatTemplate, NamesRenderAsTheTemplatesTheyStandFor) {
  nlohmann::json templates = load_json("chat_templates.json");
  nlohmann::json expected = load_json("expected_chat.json");
  const std::pair<const char*, const char*> pairs[] = {{"mistral", "mixtral"}, {"llama3", "llama3_instruct"},
                                                       {"chatml", "qwen3"}};
  for (const auto& [name, model] : pairs) {
    int compared = 0;
    for (const auto& c : expected["cases"]) {
      const std::string conversation = c["conversation"];
      if (c["template"] != model || c["error"].get<bool>() || !c["variables"].empty() || !c["tools"].is_null() ||
          !plain_messages(c["messages"]))
        continue;
      // Qwen3 writes an empty <think> block into an answer that follows the last question.
      if (std::string(name) == "chatml" && (conversation.find("thinking") != std::string::npos ||
                                            conversation == "tool_turn" || conversation == "ends_with_assistant"))
        continue;
      SCOPED_TRACE(std::string(name) + " / " + conversation);
      EXPECT_EQ(ChatTemplate(name).apply(messages_of(c["messages"]), c["add_generation_prompt"]),
                c["expected"].get<std::string>());
      ++compared;
    }
    EXPECT_GE(compared, 10) << name;
  }
}

// "chatml" writes tools, calls and results as Qwen3's template does: the same text on every
// conversation with tools or calls where Qwen3's reasoning does not show (a closing answer after
// the last question gets Qwen3's empty <think> block, which "chatml" does not write).
TEST(ChatTemplate, ChatmlWritesToolsAsQwen3Does) {
  const std::string expected_text =
      testdata::read_text_file(std::string(MOEVK_TEST_DATA_DIR) + "/text/expected_chat.json");
  const nlohmann::ordered_json expected = nlohmann::ordered_json::parse(expected_text);
  ChatTemplate chatml("chatml");
  int compared = 0, tool_turns = 0;
  for (const auto& c : expected["cases"]) {
    const std::string conversation = c["conversation"];
    if (c["template"] != "qwen3" || c["error"].get<bool>() || !c["variables"].empty()) continue;
    bool tool_results = false;
    for (const auto& m : c["messages"]) tool_results = tool_results || m["role"] == "tool";
    // Plain turns are NamesRenderAsTheTemplatesTheyStandFor's.
    if (c["tools"].is_null() && plain_messages(c["messages"]) && !tool_results) continue;
    const auto& last = c["messages"].back();
    if (last["role"] == "assistant" || conversation.find("thinking") != std::string::npos ||
        conversation == "reasoning_content")
      continue;
    SCOPED_TRACE(conversation + (c["add_generation_prompt"].get<bool>() ? " + generation prompt" : ""));
    EXPECT_EQ(chatml.apply_json(c["messages"].dump(), c["add_generation_prompt"], c["tools"].dump()),
              c["expected"].get<std::string>());
    ++compared;
    tool_turns += tool_results;
  }
  EXPECT_GE(compared, 8);
  EXPECT_GE(tool_turns, 4);
}

TEST(ChatTemplate, NamesOverride) {
  std::vector<Message> messages = {{"system", "S"}, {"user", "U"}, {"assistant", "A"}, {"user", "V"}};
  EXPECT_EQ(ChatTemplate("chatml").apply(messages, true),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"
            "<|im_start|>user\nV<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(ChatTemplate("mistral").apply(messages, true), "<s> [INST] S\n\nU [/INST] A</s> [INST] V [/INST]");
  EXPECT_EQ(ChatTemplate("mistral", "<BOS>", "<EOS>").apply({{"user", "U"}, {"assistant", "A"}}, false),
            "<BOS> [INST] U [/INST] A<EOS>");
  // The override is Meta-Llama-3-Instruct's form: the assistant header for a generation prompt only.
  EXPECT_EQ(ChatTemplate("llama3", "<|begin_of_text|>").apply({{"user", " U "}}, true),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(ChatTemplate("llama3", "<|begin_of_text|>").apply({{"user", "U"}, {"assistant", "A"}}, false),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|>");
}

TEST(ChatTemplate, UnknownTemplateIsAnError) {
  for (const char* source : {"", "llama-3", "chat-ml", "{% if %}", "{{ messages", "{% for m in messages %}x",
                             "{% include 'other.jinja' %}", "{{ 'a' + }}"}) {
    try {
      ChatTemplate chat(source);
      ADD_FAILURE() << "accepted: " << source;
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), MOEVK_ERROR_TOKENIZER);
      EXPECT_EQ(std::string(e.what()).rfind("chat template not understood: ", 0), 0u) << e.what();
      EXPECT_NE(std::string(e.what()).find("chatml, mistral, llama3"), std::string::npos) << "names not listed: " << e.what();
    }
  }
}

TEST(ChatTemplate, RejectsUnknownRoles) {
  for (const char* name : {"chatml", "mistral"}) {
    try {
      ChatTemplate(name).apply({{"user", "x"}, {"robot", "y"}}, true);
      ADD_FAILURE() << name << " accepted the role 'robot'";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), MOEVK_ERROR_TOKENIZER);
      EXPECT_NE(std::string(e.what()).find("role"), std::string::npos) << e.what();
    }
  }
}

// Qwen3's template takes enable_thinking, as transformers' apply_chat_template(enable_thinking=False).
TEST(ChatTemplate, VariablesReachTheTemplate) {
  nlohmann::json templates = load_json("chat_templates.json");
  ChatTemplate qwen3(templates["qwen3"].get<std::string>());
  const std::vector<Message> messages = {{"user", "Hi"}};
  EXPECT_EQ(qwen3.apply(messages, true), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(qwen3.apply(messages, true, {{"enable_thinking", ChatVariable::Kind::Bool, false, {}}}),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  EXPECT_EQ(qwen3.apply(messages, true, {{"enable_thinking", ChatVariable::Kind::Bool, true, {}}}),
            qwen3.apply(messages, true));
}

// apply_json's inputs are the caller's text: each malformed or misshapen one is an
// MOEVK_ERROR_INVALID_ARGUMENT that names the argument, never a crash or a template error.
TEST(ChatTemplate, JsonInputsAreChecked) {
  ChatTemplate chat("chatml");
  const std::string ok = R"([{"role": "user", "content": "Hi"}])";
  EXPECT_EQ(chat.apply_json(ok, true), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(chat.apply_json(ok, true, "null", "{}"), chat.apply_json(ok, true));
  EXPECT_EQ(chat.apply_json(ok, true, "", R"({"enable_thinking": false})"),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  std::string deep = "[{\"role\": \"user\", \"content\": \"x\", \"deep\": " + std::string(100, '[') +
                     std::string(100, ']') + "}]";
  const struct {
    std::string messages, tools, variables, says;
  } bad[] = {
      {"", "", "", "messages_json is not JSON"},
      {R"([{"role": "user", "content": "Hi"})", "", "", "messages_json is not JSON"},
      {R"({"role": "user"})", "", "", "not a JSON array"},
      {R"([{"content": "Hi"}])", "", "", "message 0 is not an object with a string \"role\""},
      {R"([{"role": "user", "content": "a"}, "user"])", "", "", "message 1"},
      {R"([{"role": 7}])", "", "", "message 0"},
      {ok, "{", "", "tools_json is not JSON"},
      {ok, R"({"type": "function"})", "", "tools_json is not a JSON array"},
      {ok, "", "[true]", "variables_json is not a JSON object"},
      {ok, "", "{\"enable_thinking\": fals}", "variables_json is not JSON"},
      {ok, "", R"({"messages": []})", "\"messages\", which has its own parameter"},
      {ok, "", R"({"bos_token": "<s>"})", "\"bos_token\", which has its own parameter"},
      {ok, "", R"({"add_generation_prompt": false})", "its own parameter"},
      {deep, "", "", "messages_json nests deeper than 64 levels"},
      {R"([{"role": "user", "content": "x", "n": 18446744073709551615}])", "", "", "18446744073709551615"},
  };
  for (const auto& b : bad) {
    SCOPED_TRACE(b.messages.substr(0, 60) + " | " + b.tools + " | " + b.variables);
    try {
      chat.apply_json(b.messages, true, b.tools, b.variables);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_ARGUMENT) << e.what();
      EXPECT_NE(std::string(e.what()).find(b.says), std::string::npos) << e.what();
    }
  }
  // A variable given both ways is refused rather than one silently winning.
  try {
    chat.apply_json(ok, true, "", R"({"enable_thinking": true})", {{"enable_thinking", ChatVariable::Kind::Bool, false, {}}});
    ADD_FAILURE() << "accepted enable_thinking twice";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a second time"), std::string::npos) << e.what();
  }
  // Values reach the template with their JSON types, and objects keep their key order.
  ChatTemplate echo("{{ messages[0].extra | tojson }}|{{ n + 1 }}|{{ f * 2 }}|{{ none is none }}|{{ tools[0].z }}");
  EXPECT_EQ(echo.apply_json(R"([{"role": "user", "extra": {"z": 1, "a": [true, null, 1.5, "\u00e9"]}}])", false,
                            R"([{"z": "last"}])", R"({"n": 41, "f": 0.25, "none": null})"),
            R"({"z": 1, "a": [true, null, 1.5, "é"]}|42|0.5|True|last)");
  // A repeated key keeps its first place and its last value, as in Python's json.loads.
  EXPECT_EQ(ChatTemplate("{{ messages[0] | tojson }}").apply_json(R"([{"role": "u", "a": 1, "b": 2, "a": 3}])", false),
            R"({"role": "u", "a": 3, "b": 2})");
  // A wide object is read in linear time (no quadratic key checks): 200,000 keys.
  std::string wide = "[{\"role\": \"user\", \"content\": \"x\", \"w\": {";
  for (int i = 0; i < 200000; ++i) wide += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
  wide += "}}]";
  EXPECT_EQ(chat.apply_json(wide, false), "<|im_start|>user\nx<|im_end|>\n");
}

TEST(ChatTemplate, RealVocabularyTemplatesAndTokens) {
  if (!testdata::require_npm_packages()) return;
  // The template shipped with Qwen3 renders a prompt whose control tokens the tokenizer parses.
  const VocabData& vocab = testdata::qwen3_vocab();
  ChatTemplate chat(vocab.chat_template);
  std::string prompt = chat.apply({{"user", "Hi"}}, true);
  Tokenizer tokenizer(vocab);
  auto ids = tokenizer.encode(prompt, false, true);
  EXPECT_EQ(ids.front(), 151644);  // <|im_start|>
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 151645), 1);  // one <|im_end|>
  EXPECT_EQ(tokenizer.decode(ids), prompt);
  EXPECT_STREQ(ChatTemplate::for_tokenizer(tokenizer).name(), "model");

  // Mixtral: BOS/EOS texts come from the vocabulary; an override name replaces the template.
  Tokenizer mistral(testdata::mistral_vocab());
  ChatTemplate mixtral = ChatTemplate::for_tokenizer(mistral);
  std::string mixtral_prompt = mixtral.apply({{"user", "Hi"}, {"assistant", "Yo"}}, false);
  EXPECT_EQ(mixtral_prompt, "<s> [INST] Hi [/INST] Yo</s>");
  auto mixtral_ids = mistral.encode(mixtral_prompt, false, true);
  EXPECT_EQ(mixtral_ids.front(), 1);
  EXPECT_EQ(mixtral_ids.back(), 2);
  EXPECT_STREQ(ChatTemplate::for_tokenizer(mistral, "chatml").name(), "chatml");

  // Llama-3: its own template; the BOS text from the vocabulary; the headers and <|eot_id|>
  // parse as single control tokens, which end a turn.
  Tokenizer llama3(testdata::llama3_vocab());
  ChatTemplate llama3_chat = ChatTemplate::for_tokenizer(llama3);
  const std::string llama3_prompt = llama3_chat.apply({{"system", "Be brief."}, {"user", "Hi"}}, true);
  auto llama3_ids = llama3.encode(llama3_prompt, false, true);
  EXPECT_EQ(llama3_ids.front(), 128000);                                     // <|begin_of_text|>
  EXPECT_EQ(std::count(llama3_ids.begin(), llama3_ids.end(), 128006), 3);   // <|start_header_id|>
  EXPECT_EQ(std::count(llama3_ids.begin(), llama3_ids.end(), 128009), 2);   // <|eot_id|>
  EXPECT_TRUE(llama3.is_eog(128009));
  EXPECT_EQ(llama3.decode(llama3_ids), llama3_prompt);
}

}  // namespace
}  // namespace moevk::text
