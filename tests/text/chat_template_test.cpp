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

TEST(ChatTemplate, MatchesJinjaRenderingOfRealTemplates) {
  nlohmann::json templates = load_json("chat_templates.json");
  nlohmann::json expected = load_json("expected_chat.json");
  ASSERT_GE(expected["cases"].size(), 100u);
  for (const auto& c : expected["cases"]) {
    std::string name = c["template"];
    SCOPED_TRACE(name + " / " + c["conversation"].get<std::string>() +
                 (c["add_generation_prompt"].get<bool>() ? " + generation prompt" : ""));
    ChatTemplate chat(templates[name].get<std::string>());
    std::vector<Message> messages;
    for (const auto& m : c["messages"]) messages.push_back({m["role"], m["content"]});
    if (c["error"].get<bool>()) {
      try {
        chat.apply(messages, c["add_generation_prompt"]);
        ADD_FAILURE() << "the real template rejects this conversation";
      } catch (const Error& e) {
        EXPECT_EQ(e.status(), MOEVK_ERROR_TOKENIZER);
      }
    } else {
      EXPECT_EQ(chat.apply(messages, c["add_generation_prompt"]), c["expected"].get<std::string>());
    }
  }
}

TEST(ChatTemplate, RecognisesFamilies) {
  nlohmann::json templates = load_json("chat_templates.json");
  EXPECT_EQ(ChatTemplate(templates["qwen3"].get<std::string>()).family(), ChatTemplate::Family::ChatML);
  EXPECT_EQ(ChatTemplate(templates["qwen2"].get<std::string>()).family(), ChatTemplate::Family::ChatML);
  EXPECT_EQ(ChatTemplate(templates["mixtral"].get<std::string>()).family(), ChatTemplate::Family::Mistral);
  EXPECT_STREQ(ChatTemplate(templates["mistral_legacy"].get<std::string>()).name(), "mistral");
  EXPECT_EQ(ChatTemplate(templates["llama3"].get<std::string>()).family(), ChatTemplate::Family::Llama3);
  EXPECT_STREQ(ChatTemplate(templates["llama3_instruct"].get<std::string>()).name(), "llama3");
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
  for (const char* source : {"", "{{ messages }}", "llama-3", "{% for m in messages %}<|start_header_id|>{% endfor %}",
                             // Llama-3.1's dated system preamble and tools are not rendered by hand.
                             "{{- bos_token }}{%- if not date_string is defined %}{%- set date_string = \"26 Jul 2024\" %}"
                             "{{- 'Cutting Knowledge Date: December 2023\\n' }}{% set content = '<|start_header_id|>' + "
                             "message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}"
                             "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
                             "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}",
                             // Llama-2 and Mistral-v3 [INST] dialects render differently from Mixtral's.
                             "{{ bos_token + '[INST] ' + '<<SYS>>\\n' + system_message + ' [/INST]' }}",
                             "{{- \"[INST]\" + message[\"content\"] + \"[/INST]\" }}"}) {
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
  EXPECT_THROW(ChatTemplate("chatml").apply({{"tool", "x"}}, true), Error);
  EXPECT_THROW(ChatTemplate("mistral").apply({{"user", "x"}, {"robot", "y"}}, true), Error);
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
  EXPECT_EQ(ChatTemplate::for_tokenizer(tokenizer).family(), ChatTemplate::Family::ChatML);

  // Mixtral: BOS/EOS texts come from the vocabulary; an override name replaces the template.
  Tokenizer mistral(testdata::mistral_vocab());
  ChatTemplate mixtral = ChatTemplate::for_tokenizer(mistral);
  EXPECT_EQ(mixtral.family(), ChatTemplate::Family::Mistral);
  std::string mixtral_prompt = mixtral.apply({{"user", "Hi"}, {"assistant", "Yo"}}, false);
  EXPECT_EQ(mixtral_prompt, "<s> [INST] Hi [/INST] Yo</s>");
  auto mixtral_ids = mistral.encode(mixtral_prompt, false, true);
  EXPECT_EQ(mixtral_ids.front(), 1);
  EXPECT_EQ(mixtral_ids.back(), 2);
  EXPECT_EQ(ChatTemplate::for_tokenizer(mistral, "chatml").family(), ChatTemplate::Family::ChatML);

  // Llama-3: its own template; the BOS text from the vocabulary; the headers and <|eot_id|>
  // parse as single control tokens, which end a turn.
  Tokenizer llama3(testdata::llama3_vocab());
  ChatTemplate llama3_chat = ChatTemplate::for_tokenizer(llama3);
  EXPECT_EQ(llama3_chat.family(), ChatTemplate::Family::Llama3);
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
