// What `moevk chat` stores as the assistant message (tools/chat_turns.cpp), against the real
// template renderings through the C API: the stored answer must render back to exactly what the
// context holds, or every turn re-reads the whole conversation.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <unistd.h>

#include "chat_turns.hpp"
#include "moevk.h"

namespace moevk_cli {
namespace {

class ChatTurns : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // The fixture has no tokenizer.json: the placeholder vocabulary still has <s> and </s>.
    gguf_ = std::string(::testing::TempDir()) + "/chat-turns-" + std::to_string(getpid()) + ".gguf";
    const std::string hf_dir = std::string(MOEVK_TEST_DATA_DIR) + "/hf/qwen3moe-tiny";
    moevk_convert_params cp = moevk_convert_default_params();
    cp.hf_dir = hf_dir.c_str();
    cp.output_path = gguf_.c_str();
    ASSERT_EQ(moevk_convert(&cp), MOEVK_OK) << moevk_last_error();
    ASSERT_EQ(moevk_model_load(gguf_.c_str(), nullptr, &model_), MOEVK_OK) << moevk_last_error();
  }
  static void TearDownTestSuite() {
    moevk_model_free(model_);
    model_ = nullptr;
    std::remove(gguf_.c_str());
  }
  static std::string render(const std::string& name, const ChatMessages& messages, bool generation_prompt) {
    std::string out;
    EXPECT_TRUE(render_chat(model_, name, messages, generation_prompt, out)) << moevk_model_last_error(model_);
    return out;
  }
  static inline moevk_model* model_ = nullptr;
  static inline std::string gguf_;
};

TEST_F(ChatTurns, SpacedMistralDropsTheSpaceTheTemplateWrites) {
  ChatMessages turns = {{"user", "hi"}};
  const std::string prompt = render("mistral", turns, true);
  EXPECT_EQ(prompt, "<s> [INST] hi [/INST]");
  const std::string stored = assistant_content(model_, "mistral", turns, prompt, " Hello there");
  EXPECT_EQ(stored, "Hello there");
  // The next turn's rendering extends exactly what the context holds: prompt + streamed answer.
  turns.emplace_back("assistant", stored);
  turns.emplace_back("user", "again");
  const std::string next = render("mistral", turns, true);
  EXPECT_EQ(next.rfind(prompt + " Hello there", 0), 0u) << next;
}

TEST_F(ChatTurns, ChatMLKeepsTheAnswerAsStreamed) {
  ChatMessages turns = {{"system", "be brief"}, {"user", "hi"}};
  const std::string prompt = render("chatml", turns, true);
  EXPECT_EQ(assistant_content(model_, "chatml", turns, prompt, " Hello"), " Hello");
  EXPECT_EQ(assistant_content(model_, "chatml", turns, prompt, "Hello"), "Hello");
}

TEST_F(ChatTurns, AnswerWithoutTheTemplatesSpaceIsKeptAsIs) {
  // The model skipped the space the template writes: nothing renders back to what the context
  // holds, so the chat will re-read the conversation; the answer is stored unchanged.
  ChatMessages turns = {{"user", "hi"}};
  const std::string prompt = render("mistral", turns, true);
  EXPECT_EQ(assistant_content(model_, "mistral", turns, prompt, "Hello"), "Hello");
  EXPECT_EQ(assistant_content(model_, "mistral", turns, prompt, ""), "");
}

TEST_F(ChatTurns, MistralPromptHasOneBos) {
  // The template writes <s>; tokenizing with add_special must not add a second BOS.
  const std::string prompt = render("mistral", {{"user", "hi"}}, true);
  int32_t ids[64];
  size_t n = 0;
  ASSERT_EQ(moevk_tokenize(model_, prompt.data(), prompt.size(), 1, 1, ids, 64, &n), MOEVK_OK);
  ASSERT_GE(n, 2u);
  EXPECT_EQ(ids[0], moevk_model_bos(model_));
  EXPECT_NE(ids[1], moevk_model_bos(model_));
}

// --think off: enable_thinking=false reaches the template through moevk_chat_apply_template_with,
// and a stored answer renders back to what the context holds after that block.
TEST_F(ChatTurns, ThinkOffReachesTheTemplate) {
  ChatMessages turns = {{"user", "hi"}};
  std::string off, on, unset;
  ASSERT_TRUE(render_chat(model_, "chatml", turns, true, off, 0)) << moevk_model_last_error(model_);
  ASSERT_TRUE(render_chat(model_, "chatml", turns, true, on, 1)) << moevk_model_last_error(model_);
  ASSERT_TRUE(render_chat(model_, "chatml", turns, true, unset)) << moevk_model_last_error(model_);
  EXPECT_EQ(unset, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(on, unset);
  EXPECT_EQ(off, unset + "<think>\n\n</think>\n\n");
  // The chatml form stores no reasoning: the answer after the empty block is not extended by a
  // re-rendering, so it is kept as streamed (the chat then re-reads the conversation).
  EXPECT_EQ(assistant_content(model_, "chatml", turns, off, "Hello", 0), "Hello");

  moevk_chat_params params = moevk_chat_default_params();
  params.enable_thinking = 2;
  const moevk_chat_message message = {"user", "hi"};
  char* out = nullptr;
  EXPECT_EQ(moevk_chat_apply_template_with(model_, &message, 1, &params, &out), MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(moevk_last_error()).find("enable_thinking"), std::string::npos) << moevk_last_error();
  EXPECT_EQ(out, nullptr);
}

TEST_F(ChatTurns, UnknownTemplateNameListsTheNames) {
  std::string out;
  EXPECT_FALSE(render_chat(model_, "nonsense", {{"user", "hi"}}, true, out));
  EXPECT_NE(std::string(moevk_model_last_error(model_)).find("chatml, mistral"), std::string::npos)
      << moevk_model_last_error(model_);
}

}  // namespace
}  // namespace moevk_cli
