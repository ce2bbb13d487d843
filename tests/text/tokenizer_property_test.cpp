// Properties of the real-vocabulary tokenizers on random input (fixed seeds): text round trips,
// bytes that are not UTF-8 never crash and byte-level BPE keeps them, streaming random ids gives
// exactly the (sanitized) one-shot decode, one valid UTF-8 chunk at a time.
#include <gtest/gtest.h>

#include <random>

#include "text/tokenizer.hpp"
#include "text/unicode.hpp"
#include "text_test_data.hpp"

namespace moevk::text {
namespace {

// Random text from a pool of scripts and the characters tokenizers treat specially.
std::string random_text(std::mt19937& rng, size_t length) {
  static const std::vector<std::pair<uint32_t, uint32_t>> ranges = {
      {'a', 'z'}, {'A', 'Z'}, {'0', '9'}, {' ', ' '}, {' ', ' '}, {'\n', '\n'}, {'\t', '\t'}, {'\r', '\r'},
      {'!', '/'}, {':', '@'}, {'\'', '\''}, {0x4E00, 0x9FFF}, {0x3040, 0x30FF}, {0xAC00, 0xD7A3},
      {0x0400, 0x04FF}, {0x0600, 0x06FF}, {0x0300, 0x036F}, {0x1F300, 0x1F6FF}, {0x200D, 0x200D},
      {0x3000, 0x3000}, {0xA0, 0xFF}, {0xFF01, 0xFF5E}, {0x10000, 0x10FFF}};
  std::string out;
  for (size_t i = 0; i < length; ++i) {
    auto [first, last] = ranges[rng() % ranges.size()];
    utf8_append(out, first + rng() % (last - first + 1));
  }
  return out;
}

std::string random_bytes(std::mt19937& rng, size_t length) {
  std::string out;
  for (size_t i = 0; i < length; ++i) out += static_cast<char>(rng() % 256);
  return out;
}

void expect_stream_matches_decode(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, bool strip) {
  StreamDecoder stream(tokenizer, /*skip_special=*/true, strip);
  std::string streamed;
  for (int32_t id : ids) {
    std::string chunk = stream.push(id);
    ASSERT_EQ(utf8_sanitize(chunk), chunk) << "invalid UTF-8 streamed after token " << id;
    streamed += chunk;
  }
  streamed += stream.flush();
  std::string whole = tokenizer.decode(ids, /*skip_special=*/true);
  if (!strip && tokenizer.kind() == Tokenizer::Kind::SentencePiece) {
    // decode() drops the prefix space of the first text token; the unstripped stream keeps it.
    std::string unstripped;
    for (int32_t id : ids) unstripped += tokenizer.token_to_piece(id, false);
    whole = unstripped;
  }
  EXPECT_EQ(streamed, utf8_sanitize(whole));
}

class RealVocabularyProperties : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testdata::require_npm_packages()) GTEST_FAIL() << "setup missing";
  }
};

TEST_F(RealVocabularyProperties, Qwen3RoundTripsRandomTextAndBytes) {
  Tokenizer tokenizer(testdata::qwen3_vocab());
  std::mt19937 rng(1234);
  for (int i = 0; i < 200; ++i) {
    std::string text = random_text(rng, 1 + rng() % 60);
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(text, true, false)), text);
  }
  for (int i = 0; i < 100; ++i) {
    std::string bytes = random_bytes(rng, 1 + rng() % 40);
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(bytes, false, false)), bytes) << "byte-level BPE is lossless";
  }
  // A long text without spaces is one pre-token: the merge loop must stay fast.
  std::string long_word;
  for (int i = 0; i < 20000; ++i) long_word += "\xE4\xB8\xAD";  // 中
  EXPECT_EQ(tokenizer.decode(tokenizer.encode(long_word, false, false)), long_word);
}

TEST_F(RealVocabularyProperties, MistralRoundTripsRandomTextAndSurvivesBytes) {
  Tokenizer tokenizer(testdata::mistral_vocab());
  std::mt19937 rng(99);
  for (int i = 0; i < 200; ++i) {
    std::string text = random_text(rng, 1 + rng() % 60);
    auto ids = tokenizer.encode(text, true, false);
    ASSERT_EQ(ids.front(), 1);
    EXPECT_EQ(tokenizer.decode(ids, /*skip_special=*/true), text);
  }
  for (int i = 0; i < 100; ++i) {
    std::string bytes = random_bytes(rng, 1 + rng() % 40);
    // Byte fallback keeps every byte; only a literal U+2581 could come back as a space.
    if (bytes.find("\xE2\x96\x81") != std::string::npos) continue;
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(bytes, false, false), true), bytes);
  }
  std::string long_text;
  for (int i = 0; i < 5000; ++i) long_text += "word ";
  EXPECT_EQ(tokenizer.decode(tokenizer.encode(long_text, false, false)), long_text);
}

TEST_F(RealVocabularyProperties, StreamingRandomIdsEqualsDecode) {
  std::mt19937 rng(5);
  for (const VocabData* vocab : {&testdata::qwen3_vocab(), &testdata::mistral_vocab()}) {
    Tokenizer tokenizer(*vocab);
    for (int i = 0; i < 100; ++i) {
      std::vector<int32_t> ids;
      size_t n = 1 + rng() % 30;
      for (size_t k = 0; k < n; ++k) {
        // Favour the byte tokens so that characters get split across tokens often.
        int32_t id = (rng() % 2) ? static_cast<int32_t>(rng() % 300) : static_cast<int32_t>(rng() % tokenizer.vocab_size());
        ids.push_back(id);
      }
      expect_stream_matches_decode(tokenizer, ids, (i % 2) == 0);
    }
  }
}

}  // namespace
}  // namespace moevk::text
