// A grammar applied to tokens: which tokens of a vocabulary may come next, for constrained
// generation. Sampling first draws as usual and keeps the token if the grammar allows it; only a
// refused draw pays for masking the whole vocabulary and drawing again from what is allowed
// (llama.cpp's order: the sampler's cuts then apply to the allowed tokens alone).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "generate/grammar.hpp"

namespace moevk::text {
class Tokenizer;
}

namespace moevk::generate {

// Each token's bytes as a grammar sees them: its text, "" for control tokens (never allowed),
// and which end generation (allowed where the text is a whole sentence).
struct TokenTexts {
  std::vector<std::string> pieces;
  std::vector<uint8_t> end_of_generation;
  // The tokens with text, sorted by it, and the prefix each shares with the one before: the
  // order GrammarMatcher::allows_sorted reads a vocabulary in (views into `pieces`).
  std::vector<int32_t> sorted_ids;
  std::vector<std::string_view> sorted_texts;
  std::vector<uint32_t> shared_prefix;

  static std::shared_ptr<const TokenTexts> make(std::vector<std::string> pieces, std::vector<uint8_t> end_of_generation);
  static std::shared_ptr<const TokenTexts> of(const text::Tokenizer& tokenizer);

  TokenTexts() = default;
  TokenTexts(const TokenTexts&) = delete;  // the views point into this one's pieces
  TokenTexts& operator=(const TokenTexts&) = delete;
};

class TokenGrammar {
 public:
  TokenGrammar(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenTexts> tokens);

  bool allows(int32_t token) const;
  // Records the token (allows(token) must hold; INVALID_ARGUMENT otherwise, naming it).
  void accept(int32_t token);
  // Sets every refused token's logit to -infinity; returns how many are allowed.
  size_t mask(std::span<float> logits) const;
  // The text is a whole sentence and nothing may follow: generation is done.
  bool complete() const { return matcher_.complete(); }
  const GrammarMatcher& matcher() const { return matcher_; }

 private:
  std::shared_ptr<const TokenTexts> tokens_;
  GrammarMatcher matcher_;
};

}  // namespace moevk::generate
