#include "generate/token_grammar.hpp"

#include <limits>

#include "common/error.hpp"

namespace moevk::generate {

TokenGrammar::TokenGrammar(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenTexts> tokens)
    : tokens_(std::move(tokens)), matcher_(std::move(grammar)) {}

bool TokenGrammar::allows(int32_t token) const {
  if (token < 0 || static_cast<size_t>(token) >= tokens_->pieces.size()) return false;
  if (tokens_->end_of_generation[token]) return matcher_.accepting();
  const std::string& piece = tokens_->pieces[token];
  return !piece.empty() && matcher_.allows(piece);
}

void TokenGrammar::accept(int32_t token) {
  if (!allows(token))
    fail(MOEVK_ERROR_INVALID_ARGUMENT, "grammar: token " + std::to_string(token) +
                                           " does not continue the text; the grammar expects " + matcher_.expected());
  if (!tokens_->end_of_generation[token]) matcher_.accept(tokens_->pieces[token]);
}

size_t TokenGrammar::mask(std::span<float> logits) const {
  size_t allowed = 0;
  const size_t n = std::min(logits.size(), tokens_->pieces.size());
  for (size_t i = 0; i < n; ++i) {
    if (allows(static_cast<int32_t>(i))) ++allowed;
    else logits[i] = -std::numeric_limits<float>::infinity();
  }
  for (size_t i = n; i < logits.size(); ++i) logits[i] = -std::numeric_limits<float>::infinity();
  return allowed;
}

}  // namespace moevk::generate
