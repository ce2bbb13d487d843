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
  // A `trigger` makes the grammar lazy (llama.cpp's grammar triggers): tokens are free until the
  // text contains the trigger, and the grammar holds what follows its first occurrence (the part
  // of the token that completes it included). Empty: the grammar holds the text from the start.
  TokenGrammar(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenTexts> tokens,
               std::string trigger = {});

  bool allows(int32_t token) const;
  // Records the token (allows(token) must hold; INVALID_ARGUMENT otherwise, naming it).
  void accept(int32_t token);
  // Sets every refused token's logit to -infinity; returns how many are allowed.
  size_t mask(std::span<float> logits) const;
  // The text is a whole sentence and nothing may follow: generation is done.
  bool complete() const { return !waiting() && matcher_.complete(); }
  // A lazy grammar whose trigger has not come yet.
  bool waiting() const { return !trigger_.empty() && !triggered_; }
  const GrammarMatcher& matcher() const { return matcher_; }

 private:
  bool try_accept(int32_t token);
  // While waiting: the text after the trigger if `piece` completes it, else nothing.
  bool completes_trigger(const std::string& piece, std::string* rest) const;

  std::shared_ptr<const TokenTexts> tokens_;
  GrammarMatcher matcher_;
  std::string trigger_;
  bool triggered_ = false;
  std::string tail_;  // while waiting: the text's last trigger_.size() - 1 bytes
};

}  // namespace moevk::generate
