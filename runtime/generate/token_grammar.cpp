#include "generate/token_grammar.hpp"

#include <algorithm>
#include <limits>

#include "common/error.hpp"
#include "text/tokenizer.hpp"

namespace moevk::generate {

std::shared_ptr<const TokenTexts> TokenTexts::make(std::vector<std::string> pieces,
                                                   std::vector<uint8_t> end_of_generation) {
  if (end_of_generation.size() != pieces.size())
    fail(MOEVK_ERROR_INTERNAL, "TokenTexts: pieces and end_of_generation differ in length");
  auto texts = std::make_shared<TokenTexts>();
  texts->pieces = std::move(pieces);
  texts->end_of_generation = std::move(end_of_generation);
  for (size_t id = 0; id < texts->pieces.size(); ++id)
    if (!texts->pieces[id].empty() && !texts->end_of_generation[id]) texts->sorted_ids.push_back(static_cast<int32_t>(id));
  const auto& p = texts->pieces;
  std::sort(texts->sorted_ids.begin(), texts->sorted_ids.end(), [&](int32_t a, int32_t b) { return p[a] < p[b]; });
  std::string_view before;
  for (const int32_t id : texts->sorted_ids) {
    const std::string_view text = p[id];
    const size_t n = std::min(text.size(), before.size());
    size_t common = 0;
    while (common < n && text[common] == before[common]) ++common;
    texts->sorted_texts.push_back(text);
    texts->shared_prefix.push_back(static_cast<uint32_t>(common));
    before = text;
  }
  return texts;
}

std::shared_ptr<const TokenTexts> TokenTexts::of(const text::Tokenizer& tokenizer) {
  const auto n = static_cast<size_t>(tokenizer.vocab_size());
  std::vector<std::string> pieces(n);
  std::vector<uint8_t> end_of_generation(n);
  for (size_t i = 0; i < n; ++i) {
    const auto id = static_cast<int32_t>(i);
    end_of_generation[i] = tokenizer.is_eog(id);
    // The text as generation streams it: control tokens write nothing, so none may stand for
    // grammar text (a Qwen3 <think> is plain text there and stays allowed).
    if (!end_of_generation[i] && !tokenizer.is_control(id)) pieces[i] = tokenizer.token_to_piece(id, false);
  }
  return make(std::move(pieces), std::move(end_of_generation));
}

TokenGrammar::TokenGrammar(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenTexts> tokens,
                           std::string trigger)
    : tokens_(std::move(tokens)), matcher_(std::move(grammar)), trigger_(std::move(trigger)) {}

bool TokenGrammar::completes_trigger(const std::string& piece, std::string* rest) const {
  const std::string window = tail_ + piece;
  const size_t at = window.find(trigger_);  // the tail alone never holds it: it would have triggered
  if (at == std::string::npos) return false;
  *rest = window.substr(at + trigger_.size());
  return true;
}

bool TokenGrammar::allows(int32_t token) const {
  if (token < 0 || static_cast<size_t>(token) >= tokens_->pieces.size()) return false;
  const std::string& piece = tokens_->pieces[token];
  if (waiting()) {
    std::string rest;
    return tokens_->end_of_generation[token] || !completes_trigger(piece, &rest) || matcher_.allows(rest);
  }
  if (tokens_->end_of_generation[token]) return matcher_.accepting();
  return !piece.empty() && matcher_.allows(piece);
}

void TokenGrammar::accept(int32_t token) {
  if (!try_accept(token))
    fail(MOEVK_ERROR_INVALID_ARGUMENT, "grammar: token " + std::to_string(token) +
                                           " does not continue the text; the grammar expects " + matcher_.expected());
}

// The text is matched once: the matcher's accept refuses (changing nothing) where allows() would.
bool TokenGrammar::try_accept(int32_t token) {
  if (token < 0 || static_cast<size_t>(token) >= tokens_->pieces.size()) return false;
  if (tokens_->end_of_generation[token]) return waiting() || matcher_.accepting();
  const std::string& piece = tokens_->pieces[token];
  if (!waiting()) return !piece.empty() && matcher_.accept(piece);
  std::string rest;
  if (completes_trigger(piece, &rest)) {
    if (!matcher_.accept(rest)) return false;
    triggered_ = true;
    tail_.clear();
    return true;
  }
  tail_ += piece;
  if (tail_.size() >= trigger_.size()) tail_.erase(0, tail_.size() - (trigger_.size() - 1));
  return true;
}

size_t TokenGrammar::mask(std::span<float> logits) const {
  if (waiting()) {  // rare: a draw whose token completes the trigger with text the grammar refuses
    size_t count = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
      if (allows(static_cast<int32_t>(i))) ++count;
      else logits[i] = -std::numeric_limits<float>::infinity();
    }
    return count;
  }
  std::vector<uint8_t> by_text;
  matcher_.allows_sorted(tokens_->sorted_texts, tokens_->shared_prefix, by_text);
  std::vector<uint8_t> allowed(logits.size(), 0);
  for (size_t i = 0; i < by_text.size(); ++i)
    if (by_text[i] && static_cast<size_t>(tokens_->sorted_ids[i]) < allowed.size()) allowed[tokens_->sorted_ids[i]] = 1;
  if (matcher_.accepting())
    for (size_t id = 0; id < tokens_->end_of_generation.size() && id < allowed.size(); ++id)
      if (tokens_->end_of_generation[id]) allowed[id] = 1;
  size_t count = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (allowed[i]) ++count;
    else logits[i] = -std::numeric_limits<float>::infinity();
  }
  return count;
}

}  // namespace moevk::generate
