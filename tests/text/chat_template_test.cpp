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

TEST(ChatTemplate, MatchesJinjaRenderingOfRealTemplates) {
  nlohmann::json templates = load_json("chat_templates.json");
  nlohmann::json expected = load_json("expected_chat.json");
  ASSERT_GE(expected["cases"].size(), 200u);
  for (const auto& c : expected["cases"]) {
    std::string name = c["template"];
    SCOPED_TRACE(name + " / " + c["conversation"].get<std::string>() +
                 (c["add_generation_prompt"].get<bool>() ? " + generation prompt" : ""));
    ChatTemplate chat(templates[name].get<std::string>());
    std::vector<ChatVariable> variables;
    const nlohmann::json given = c.value("variables", nlohmann::json::object());
    for (const auto& [k, v] : given.items()) {
      ASSERT_TRUE(v.is_boolean()) << k;
      variables.push_back({k, ChatVariable::Kind::Bool, v.get<bool>(), {}});
    }
    std::vector<Message> messages = messages_of(c["messages"]);
    if (c["error"].get<bool>()) {
      try {
        chat.apply(messages, c["add_generation_prompt"], variables);
        ADD_FAILURE() << "the real template rejects this conversation";
      } catch (const Error& e) {
        EXPECT_EQ(e.status(), MOEVK_ERROR_TOKENIZER);
      }
    } else {
      EXPECT_EQ(chat.apply(messages, c["add_generation_prompt"], variables), c["expected"].get<std::string>());
    }
  }
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
      if (c["template"] != model || c["error"].get<bool>() || !c["variables"].empty()) continue;
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
