// The pieces under the tokenizers: Unicode classes, UTF-8 handling, the GPT-2 byte mapping, the
// Qwen2 and Llama-3 pre-tokenizers, the merge order of both algorithms on small hand-made vocabularies, and
// vocabulary validation, GGUF round trips and Hugging Face import errors.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <set>

#include "common/error.hpp"
#include "gguf/gguf.hpp"
#include "text/tokenizer.hpp"
#include "text/tokenizer_impl.hpp"
#include "text/unicode.hpp"
#include "text/vocab.hpp"

namespace moevk::text {
namespace {

TEST(Unicode, Classes) {
  EXPECT_EQ(codepoint_flags('a'), kLetter);
  EXPECT_EQ(codepoint_flags(0x4E2D), kLetter);   // 中
  EXPECT_EQ(codepoint_flags(0xAC00), kLetter);   // 가
  EXPECT_EQ(codepoint_flags(0x3042), kLetter);   // あ
  EXPECT_EQ(codepoint_flags(0x0416), kLetter);   // Ж
  EXPECT_EQ(codepoint_flags('7'), kNumber);
  EXPECT_EQ(codepoint_flags(0x0663), kNumber);   // Arabic-Indic three
  EXPECT_EQ(codepoint_flags(0x00B2), kNumber);   // superscript two
  EXPECT_EQ(codepoint_flags(0xFF18), kNumber);   // full-width eight
  for (uint32_t space : {0x20u, 0x09u, 0x0Au, 0x0Du, 0xA0u, 0x3000u, 0x2009u})
    EXPECT_EQ(codepoint_flags(space), kWhiteSpace) << std::hex << space;
  for (uint32_t other : {uint32_t('!'), 0x1F600u, 0x200Bu, 0x0301u, 0x1Fu, 0x10FFFFu, 0x110000u})
    EXPECT_EQ(codepoint_flags(other), 0) << std::hex << other;
  // The generated table must be sorted and non-overlapping for the binary search.
  for (size_t i = 1; i < unicode_data::kRangeCount; ++i)
    ASSERT_LT(unicode_data::kRanges[i - 1].last, unicode_data::kRanges[i].first) << i;
}

TEST(Unicode, Utf8EncodeDecodeRandomCodepoints) {
  std::mt19937 rng(7);
  std::string text;
  std::vector<uint32_t> expected;
  for (int i = 0; i < 5000; ++i) {
    uint32_t cp = rng() % 0x110000;
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    expected.push_back(cp);
    utf8_append(text, cp);
  }
  std::vector<uint32_t> cps;
  std::vector<size_t> offsets;
  utf8_split(text, cps, offsets);
  EXPECT_EQ(cps, expected);
  EXPECT_EQ(offsets.back(), text.size());
  EXPECT_EQ(utf8_sanitize(text), text);
}

TEST(Unicode, MalformedInput) {
  EXPECT_EQ(utf8_sanitize("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(utf8_sanitize("\xE4\xBD"), "\xEF\xBF\xBD");          // truncated: one replacement
  EXPECT_EQ(utf8_sanitize("\xC0\xAF"), "\xEF\xBF\xBD");          // overlong '/'
  EXPECT_EQ(utf8_sanitize("\xED\xA0\x80"), "\xEF\xBF\xBD");      // surrogate
  EXPECT_EQ(utf8_sanitize("\x80x"), "\xEF\xBF\xBDx");            // stray continuation
  EXPECT_EQ(utf8_incomplete_tail("ab\xF0\x9F\xA6"), 3u);
  EXPECT_EQ(utf8_incomplete_tail("ab\xF0\x9F\xA6\x99"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("\xE4"), 1u);
  EXPECT_EQ(utf8_incomplete_tail("a\xFF"), 0u);
  EXPECT_EQ(utf8_incomplete_tail(""), 0u);
}

TEST(Unicode, Gpt2ByteMappingIsABijection) {
  const auto& table = byte_to_unicode();
  std::set<std::string> seen(table.begin(), table.end());
  EXPECT_EQ(seen.size(), 256u);
  EXPECT_EQ(table[' '], "\xC4\xA0");  // Ġ
  EXPECT_EQ(table['\n'], "\xC4\x8A"); // Ċ
  EXPECT_EQ(table['A'], "A");
  for (int b = 0; b < 256; ++b) {
    size_t pos = 0;
    EXPECT_EQ(unicode_to_byte(utf8_next(table[b], pos)), b);
  }
  EXPECT_EQ(unicode_to_byte(0x4E2D), -1);
}

std::vector<std::string> qwen2_words(std::string_view text) {
  std::vector<std::pair<size_t, size_t>> ranges;
  pretokenize_qwen2(text, ranges);
  std::vector<std::string> words;
  for (auto [b, e] : ranges) words.emplace_back(text.substr(b, e - b));
  return words;
}

using Words = std::vector<std::string>;

TEST(Qwen2PreTokenizer, SplitsLikeTheRegex) {
  EXPECT_EQ(qwen2_words("Hello world"), (Words{"Hello", " world"}));
  EXPECT_EQ(qwen2_words("I'm HE'LL"), (Words{"I", "'m", " HE", "'LL"}));
  EXPECT_EQ(qwen2_words("2024"), (Words{"2", "0", "2", "4"}));
  EXPECT_EQ(qwen2_words("for (int x"), (Words{"for", " (", "int", " x"}));
  EXPECT_EQ(qwen2_words("(int"), (Words{"(int"}));
  EXPECT_EQ(qwen2_words("a  b"), (Words{"a", " ", " b"}));
  EXPECT_EQ(qwen2_words("a \n\n b"), (Words{"a", " \n\n", " b"}));
  EXPECT_EQ(qwen2_words("x...\n\ny"), (Words{"x", "...\n\n", "y"}));
  EXPECT_EQ(qwen2_words("end   "), (Words{"end", "   "}));
  EXPECT_EQ(qwen2_words("\tdef"), (Words{"\tdef"}));
  EXPECT_EQ(qwen2_words("\n\ndef"), (Words{"\n\n", "def"}));
  EXPECT_EQ(qwen2_words("你好，世界"), (Words{"你好", "，世界"}));
  EXPECT_EQ(qwen2_words(" !!"), (Words{" !!"}));
  EXPECT_EQ(qwen2_words(""), Words{});
}

std::vector<std::string> llama3_words(std::string_view text) {
  std::vector<std::pair<size_t, size_t>> ranges;
  pretokenize_llama3(text, ranges);
  std::vector<std::string> words;
  for (auto [b, e] : ranges) words.emplace_back(text.substr(b, e - b));
  return words;
}

// Llama-3's regex is Qwen2's with \p{N}{1,3}: everything but digit runs splits the same.
TEST(Llama3PreTokenizer, DigitsInGroupsOfUpToThree) {
  EXPECT_EQ(llama3_words("1234567"), (Words{"123", "456", "7"}));
  EXPECT_EQ(llama3_words("12 123 1234"), (Words{"12", " ", "123", " ", "123", "4"}));
  EXPECT_EQ(llama3_words("3.14159"), (Words{"3", ".", "141", "59"}));
  EXPECT_EQ(llama3_words("a1b22c333d4444"), (Words{"a", "1", "b", "22", "c", "333", "d", "444", "4"}));
  EXPECT_EQ(llama3_words("x\xC2\xB2\xC2\xB3\xE2\x81\xB4\xE2\x81\xB5"),  // x²³⁴⁵: superscripts are \p{N}
            (Words{"x", "\xC2\xB2\xC2\xB3\xE2\x81\xB4", "\xE2\x81\xB5"}));
  EXPECT_EQ(llama3_words("\xD9\xA3\xD9\xA4\xD9\xA5\xD9\xA6"),  // Arabic-Indic 3456
            (Words{"\xD9\xA3\xD9\xA4\xD9\xA5", "\xD9\xA6"}));
  EXPECT_EQ(llama3_words("-273.15"), (Words{"-", "273", ".", "15"}));
}

TEST(Llama3PreTokenizer, ContractionsWhiteSpaceAndPunctuation) {
  EXPECT_EQ(llama3_words("I'm HE'LL"), (Words{"I", "'m", " HE", "'LL"}));
  EXPECT_EQ(llama3_words("don't we'RE they'Ve"), (Words{"don", "'t", " we", "'RE", " they", "'Ve"}));
  EXPECT_EQ(llama3_words("'x ''"), (Words{"'x", " ''"}));
  EXPECT_EQ(llama3_words("a  b"), (Words{"a", " ", " b"}));
  EXPECT_EQ(llama3_words("a \n\n b"), (Words{"a", " \n\n", " b"}));
  EXPECT_EQ(llama3_words("x\t\t\ty"), (Words{"x", "\t\t", "\ty"}));
  EXPECT_EQ(llama3_words("end \t "), (Words{"end", " \t "}));
  EXPECT_EQ(llama3_words("\r\n\r\n  z"), (Words{"\r\n\r\n", " ", " z"}));
  EXPECT_EQ(llama3_words("x...\n\ny"), (Words{"x", "...\n\n", "y"}));
  EXPECT_EQ(llama3_words("(x)[y] --> !!"), (Words{"(x", ")[", "y", "]", " -->", " !!"}));
  EXPECT_EQ(llama3_words(""), Words{});
}

// A SentencePiece vocabulary: <unk> <s> </s>, the 256 byte tokens, then the given pieces.
VocabData small_spm(const std::vector<std::pair<std::string, float>>& pieces) {
  VocabData v;
  v.model = "llama";
  v.pre = "default";
  v.add_space_prefix = false;
  for (const char* special : {"<unk>", "<s>", "</s>"}) {
    v.tokens.push_back(special);
    v.scores.push_back(0);
    v.token_types.push_back(static_cast<int32_t>(special[1] == 'u' ? TokenType::UNKNOWN : TokenType::CONTROL));
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    v.tokens.push_back(name);
    v.scores.push_back(0);
    v.token_types.push_back(static_cast<int32_t>(TokenType::BYTE));
  }
  for (const auto& [text, score] : pieces) {
    v.tokens.push_back(text);
    v.scores.push_back(score);
    v.token_types.push_back(static_cast<int32_t>(TokenType::NORMAL));
  }
  v.unk_id = 0;
  v.bos_id = 1;
  v.eos_id = 2;
  v.add_bos = true;
  return v;
}

constexpr int32_t kFirstPiece = 259;

TEST(SentencePiece, MergesHighestScoreFirst) {
  // a b c ab bc: "abc" becomes a+bc when bc scores higher, ab+c otherwise.
  Tokenizer bc_first(small_spm({{"a", 0}, {"b", 0}, {"c", 0}, {"ab", -2}, {"bc", -1}}));
  EXPECT_EQ(bc_first.encode("abc", false, false), (std::vector<int32_t>{kFirstPiece, kFirstPiece + 4}));
  Tokenizer ab_first(small_spm({{"a", 0}, {"b", 0}, {"c", 0}, {"ab", -1}, {"bc", -2}}));
  EXPECT_EQ(ab_first.encode("abc", false, false), (std::vector<int32_t>{kFirstPiece + 3, kFirstPiece + 2}));
  // Equal scores: the leftmost pair first.
  Tokenizer tie(small_spm({{"a", 0}, {"aa", -1}}));
  EXPECT_EQ(tie.encode("aaa", false, false), (std::vector<int32_t>{kFirstPiece + 1, kFirstPiece}));
}

TEST(SentencePiece, ByteFallbackSpacesAndBos) {
  auto vocab = small_spm({{"\xE2\x96\x81", 0}, {"h", 0}, {"i", 0}, {"\xE2\x96\x81h", -1}, {"\xE2\x96\x81hi", -2}});
  vocab.add_space_prefix = true;
  Tokenizer tokenizer(vocab);
  const int32_t space = kFirstPiece, hi = kFirstPiece + 4;
  // "é" (C3 A9) is not a piece: two byte tokens.
  auto ids = tokenizer.encode("hi \xC3\xA9", true, false);
  EXPECT_EQ(ids, (std::vector<int32_t>{1, hi, space, 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(tokenizer.decode(ids), "<s>hi \xC3\xA9");
  EXPECT_EQ(tokenizer.decode(ids, /*skip_special=*/true), "hi \xC3\xA9");
  EXPECT_EQ(tokenizer.token_to_piece(hi), " hi");
  EXPECT_EQ(tokenizer.token_to_piece(3 + 0x41), "A");
  // Special tokens in the text: a prefix space again after each one, as llama.cpp does.
  EXPECT_EQ(tokenizer.encode("hi</s>hi", false, true), (std::vector<int32_t>{hi, 2, hi}));
  EXPECT_EQ(tokenizer.encode("", true, false), (std::vector<int32_t>{1}));
}

TEST(SentencePiece, UnusedPaddingTokensAreNeverProduced) {
  auto vocab = small_spm({{"a", 0}, {"b", 0}, {"ab", -1}});
  vocab.tokens.push_back("ab");  // a padding row that happens to repeat a piece, scored higher
  vocab.scores.push_back(0);
  vocab.token_types.push_back(static_cast<int32_t>(TokenType::UNUSED));
  vocab.tokens.push_back("[PAD263]");
  vocab.scores.push_back(0);
  vocab.token_types.push_back(static_cast<int32_t>(TokenType::UNUSED));
  Tokenizer tokenizer(vocab);
  EXPECT_EQ(tokenizer.encode("ab", false, false), (std::vector<int32_t>{kFirstPiece + 2}));
  EXPECT_EQ(tokenizer.find_token("[PAD263]"), -1);
  EXPECT_EQ(tokenizer.token_to_piece(263), "");
}

VocabData small_bpe() {
  VocabData v;
  v.model = "gpt2";
  v.pre = "qwen2";
  for (const auto& chars : byte_to_unicode()) v.tokens.push_back(chars);
  for (const char* merged : {"ab", "bc", "abc", "\xC4\xA0" "a"}) v.tokens.push_back(merged);
  v.tokens.push_back("<|end|>");
  v.token_types.assign(v.tokens.size(), static_cast<int32_t>(TokenType::NORMAL));
  v.token_types.back() = static_cast<int32_t>(TokenType::CONTROL);
  v.eos_id = static_cast<int32_t>(v.tokens.size()) - 1;
  return v;
}

TEST(ByteLevelBpe, MergesByRank) {
  // Token ids 0..255 are the byte characters in byte order, so a byte's id is its value.
  auto vocab = small_bpe();
  const int32_t ab = 256, abc = 258, space_a = 259, end = 260;
  vocab.merges = {"b c", "a b", "a bc", "\xC4\xA0 a"};
  Tokenizer bc_first(vocab);
  EXPECT_EQ(bc_first.encode("abc", false, false), (std::vector<int32_t>{abc}));
  EXPECT_EQ(bc_first.encode("abc a", false, false), (std::vector<int32_t>{abc, space_a}));
  vocab.merges = {"a b", "b c", "a bc"};
  Tokenizer ab_first(vocab);
  EXPECT_EQ(ab_first.encode("abc", false, false), (std::vector<int32_t>{ab, 'c'}));
  EXPECT_EQ(ab_first.encode("abc a", false, false), (std::vector<int32_t>{ab, 'c', ' ', 'a'}));
  EXPECT_EQ(ab_first.encode("x<|end|>", false, true), (std::vector<int32_t>{'x', end}));
  EXPECT_TRUE(ab_first.is_eog(end));
  // Byte-level is lossless even for bytes that are not UTF-8.
  std::string bytes = "\xFF\xFE a\x80";
  EXPECT_EQ(ab_first.decode(ab_first.encode(bytes, false, false)), bytes);
}

TEST(Vocabulary, RejectsInconsistentData) {
  auto expect_status = [](VocabData v, moevk_status status) {
    try {
      Tokenizer t(std::move(v));
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), status) << e.what();
    }
  };
  auto v = small_spm({});
  v.model = "bert";
  expect_status(v, MOEVK_ERROR_UNSUPPORTED);
  v = small_spm({});
  v.scores.pop_back();
  expect_status(v, MOEVK_ERROR_TOKENIZER);
  v = small_spm({});
  v.bos_id = 100000;
  expect_status(v, MOEVK_ERROR_TOKENIZER);
  v = small_spm({});
  v.tokens.clear();
  expect_status(v, MOEVK_ERROR_TOKENIZER);
  auto b = small_bpe();
  b.pre = "deepseek-llm";
  expect_status(b, MOEVK_ERROR_UNSUPPORTED);
  b = small_bpe();
  b.merges = {"nospace"};
  expect_status(b, MOEVK_ERROR_TOKENIZER);
}

TEST(Vocabulary, GgufRoundTrip) {
  auto vocab = small_spm({{"\xE2\x96\x81", -1.5f}, {"h", -2}});
  vocab.pad_id = 0;
  vocab.eot_id = 2;
  vocab.chat_template = "{{ bos_token }}[INST]";
  vocab.add_space_prefix = false;
  std::string path = (std::filesystem::temp_directory_path() / ("moevk_vocab_" + std::to_string(getpid()) + ".gguf")).string();
  {
    gguf::Writer writer(path);
    write_vocab(writer, vocab);
    writer.finish();
  }
  auto file = gguf::File::open(path);
  VocabData back = read_vocab(*file);
  std::remove(path.c_str());
  EXPECT_EQ(back.model, vocab.model);
  EXPECT_EQ(back.tokens, vocab.tokens);
  EXPECT_EQ(back.scores, vocab.scores);
  EXPECT_EQ(back.token_types, vocab.token_types);
  EXPECT_EQ(back.bos_id, 1);
  EXPECT_EQ(back.eos_id, 2);
  EXPECT_EQ(back.unk_id, 0);
  EXPECT_EQ(back.pad_id, 0);
  EXPECT_EQ(back.eot_id, 2);
  EXPECT_TRUE(back.add_bos);
  EXPECT_FALSE(back.add_eos);
  EXPECT_FALSE(back.add_space_prefix);
  EXPECT_EQ(back.chat_template, vocab.chat_template);

  auto bpe = small_bpe();
  bpe.merges = {"a b", "b c"};
  {
    gguf::Writer writer(path);
    write_vocab(writer, bpe);
    writer.finish();
  }
  auto bpe_file = gguf::File::open(path);
  VocabData bpe_back = read_vocab(*bpe_file);
  std::remove(path.c_str());
  EXPECT_EQ(bpe_back.pre, "qwen2");
  EXPECT_EQ(bpe_back.merges, bpe.merges);
  EXPECT_TRUE(bpe_back.scores.empty());
  EXPECT_EQ(bpe_back.bos_id, -1);
  EXPECT_FALSE(bpe_back.add_bos);
}

TEST(Vocabulary, GgufMissingOrInconsistentKeys) {
  std::string path = (std::filesystem::temp_directory_path() / ("moevk_badvocab_" + std::to_string(getpid()) + ".gguf")).string();
  auto expect_rejected = [&](auto&& fill, const std::string& key) {
    {
      gguf::Writer writer(path);
      fill(writer);
      writer.finish();
    }
    auto file = gguf::File::open(path);
    try {
      read_vocab(*file);
      ADD_FAILURE() << "accepted, expected a complaint about " << key;
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_FILE);
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
    std::remove(path.c_str());
  };
  expect_rejected([](gguf::Writer& w) { w.set_string("tokenizer.ggml.model", "llama"); }, "tokenizer.ggml.tokens");
  expect_rejected([](gguf::Writer& w) {
    w.set_string("tokenizer.ggml.model", "llama");
    w.set_string_array("tokenizer.ggml.tokens", {"a", "b"});
    w.set_float32_array("tokenizer.ggml.scores", {0.0f});
  }, "tokenizer.ggml.scores");
  expect_rejected([](gguf::Writer& w) {
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set_string_array("tokenizer.ggml.tokens", {"a", "b"});
    w.set_string_array("tokenizer.ggml.merges", {"a b"});
    w.set_uint32("tokenizer.ggml.eos_token_id", 7);
  }, "tokenizer.ggml.eos_token_id");
  expect_rejected([](gguf::Writer& w) {
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set_uint32("tokenizer.ggml.tokens", 3);
  }, "tokenizer.ggml.tokens");
}

TEST(Vocabulary, HuggingFaceImportErrors) {
  auto expect_status = [](const std::string& json, moevk_status status) {
    try {
      vocab_from_hf(json, "");
      ADD_FAILURE() << "accepted " << json;
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), status) << e.what();
    }
  };
  expect_status("{not json", MOEVK_ERROR_INVALID_FILE);
  expect_status("{}", MOEVK_ERROR_INVALID_FILE);
  expect_status(R"({"model": {"type": "WordPiece", "vocab": {}}})", MOEVK_ERROR_UNSUPPORTED);
  expect_status(R"({"model": {"type": "BPE", "vocab": {"a": "x"}}, "pre_tokenizer": {"type": "ByteLevel"}})",
                MOEVK_ERROR_INVALID_FILE);
  expect_status(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                      {"type": "Split", "pattern": {"Regex": "\\w+"}}, {"type": "ByteLevel"}]}})",
                MOEVK_ERROR_UNSUPPORTED);
  expect_status(R"({"model": {"type": "BPE", "byte_fallback": null, "vocab": {}}})", MOEVK_ERROR_INVALID_FILE);
  try {
    vocab_from_hf(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}})",
                  R"({"eos_token": "<missing>"})");
    ADD_FAILURE() << "accepted an eos_token that is not a token";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_FILE);
  }
}

}  // namespace
}  // namespace moevk::text
