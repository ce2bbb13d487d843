// Grammars over real vocabularies (Qwen3's and Llama-3's byte-level BPE, Mistral's SentencePiece
// with byte tokens): generation driven by random logits, each token drawn as moevk_generate draws
// it (the sampler's choice, else its choice among the allowed tokens), must stay inside the
// grammar, reach its end, and decode to a sentence of it — tokens that split UTF-8 characters
// included.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <random>

#include "../text/text_test_data.hpp"
#include "generate/grammar.hpp"
#include "generate/sampler.hpp"
#include "generate/token_grammar.hpp"
#include "text/tokenizer.hpp"

namespace moevk::generate {
namespace {

// Bounded everywhere, so a random walk through it ends; CJK characters are split into byte
// tokens by every one of these vocabularies at times.
const char* kRecordGrammar = R"(root ::= "{\"name\": \"" name "\", \"age\": " [1-9] [0-9]{0,2} ", \"tags\": [" tag (", " tag){0,3} "]}"
name ::= [A-Za-z ]{1,10} | [\u4e00-\u9fff]{1,4}
tag  ::= "\"" [a-z]{1,6} "\""
)";

struct Walk {
  std::vector<int32_t> tokens;
  bool complete = false;
  size_t resampled = 0;      // draws the grammar refused
  double mask_ms_max = 0;    // the slowest whole-vocabulary mask
};

// The whole-vocabulary mask (one walk over the sorted texts) against allows() token by token.
void expect_mask_is_allows(const TokenGrammar& grammar, size_t n_vocab) {
  std::vector<float> masked(n_vocab, 0.0f);
  const size_t count = grammar.mask(masked);
  size_t allowed = 0, disagree = 0;
  for (size_t id = 0; id < n_vocab; ++id) {
    const bool allows = grammar.allows(static_cast<int32_t>(id));
    allowed += allows;
    if (allows == std::isinf(masked[id]) && disagree++ < 5) ADD_FAILURE() << "token " << id << ": allows " << allows;
  }
  EXPECT_EQ(count, allowed);
}

Walk constrained_walk(const text::Tokenizer& tokenizer, const std::shared_ptr<const TokenTexts>& texts, uint32_t seed,
                      bool check_masks) {
  TokenGrammar grammar(Grammar::parse(kRecordGrammar), texts);
  SamplerParams params;
  params.temperature = 1.0f;
  params.top_k = 0;
  params.top_p = 1.0f;
  params.min_p = 0.0f;
  params.seed = seed;
  Sampler sampler(params);
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.0f, 3.0f);
  std::vector<float> logits(static_cast<size_t>(tokenizer.vocab_size()));
  Walk walk;
  for (int step = 0; step < 400 && !grammar.complete(); ++step) {
    for (float& l : logits) l = noise(rng);
    if (check_masks) expect_mask_is_allows(grammar, logits.size());
    int32_t token = sampler.sample(logits, walk.tokens);
    if (!grammar.allows(token)) {
      ++walk.resampled;
      const auto t0 = std::chrono::steady_clock::now();
      std::vector<float> masked = logits;
      EXPECT_GT(grammar.mask(masked), 0u);
      walk.mask_ms_max = std::max(
          walk.mask_ms_max, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      token = sampler.sample(masked, walk.tokens);
      EXPECT_TRUE(grammar.allows(token)) << "the masked draw chose a refused token " << token;
    }
    grammar.accept(token);
    walk.tokens.push_back(token);
  }
  walk.complete = grammar.complete();
  return walk;
}

void check_vocabulary(const text::VocabData& vocab, const char* name) {
  const text::Tokenizer tokenizer(vocab);
  const auto texts = TokenTexts::of(tokenizer);
  for (uint32_t seed = 1; seed <= 6; ++seed) {
    const Walk walk = constrained_walk(tokenizer, texts, seed, /*check_masks=*/seed == 1);
    ASSERT_TRUE(walk.complete) << name << " seed " << seed << ": the walk did not reach the grammar's end";
    std::string pieces;
    for (int32_t t : walk.tokens) {
      const std::string& piece = texts->pieces[t];
      pieces += piece;
    }
    GrammarMatcher check(Grammar::parse(kRecordGrammar));
    EXPECT_TRUE(check.accept(pieces) && check.complete()) << name << " seed " << seed << ": " << pieces;
    // What generation streams (the detokenizer) is that text.
    text::StreamDecoder stream(tokenizer);
    std::string streamed;
    for (int32_t t : walk.tokens) streamed += stream.push(t);
    streamed += stream.flush();
    EXPECT_EQ(streamed, pieces) << name << " seed " << seed;
    std::printf("[ %s ] seed %u: %zu tokens, %zu draws refused, slowest mask %.1f ms: %s\n", name, seed,
                walk.tokens.size(), walk.resampled, walk.mask_ms_max, pieces.c_str());
  }
}

class TokenGrammarVocab : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!text::testdata::require_npm_packages()) GTEST_FAIL() << "setup missing";
  }
};

TEST_F(TokenGrammarVocab, Qwen3WalksStayInTheGrammar) { check_vocabulary(text::testdata::qwen3_vocab(), "qwen3"); }
TEST_F(TokenGrammarVocab, Llama3WalksStayInTheGrammar) { check_vocabulary(text::testdata::llama3_vocab(), "llama3"); }
TEST_F(TokenGrammarVocab, MistralWalksStayInTheGrammar) {
  check_vocabulary(text::testdata::mistral_vocab(), "mistral");
}

TEST_F(TokenGrammarVocab, ControlTokensAreNeverTextAndTheEndWaitsForASentence) {
  const text::Tokenizer tokenizer(text::testdata::qwen3_vocab());
  const auto texts = TokenTexts::of(tokenizer);
  TokenGrammar grammar(Grammar::parse(R"(root ::= "<|im_start|>" | "ok" "!"?)"), texts);
  EXPECT_FALSE(grammar.allows(151644));  // <|im_start|> the control token: writes no text
  const int32_t im_end = 151645;
  EXPECT_FALSE(grammar.allows(im_end));  // the end of generation, before any sentence
  const std::vector<int32_t> ok = tokenizer.encode("ok", false, false);
  ASSERT_EQ(ok.size(), 1u);
  grammar.accept(ok[0]);
  EXPECT_TRUE(grammar.allows(im_end));
  EXPECT_FALSE(grammar.complete());  // "!" may follow
}

}  // namespace
}  // namespace moevk::generate
