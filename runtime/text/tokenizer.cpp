#include "text/tokenizer.hpp"

#include <algorithm>
#include <cstring>

#include "common/error.hpp"
#include "text/tokenizer_impl.hpp"
#include "text/unicode.hpp"

namespace moevk::text {

namespace {

constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

// Control tokens that end a turn in the chat formats we know, besides eos/eot.
constexpr std::string_view kEndOfGenerationTexts[] = {
    "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "</s>", "<end_of_turn>",
};

[[noreturn]] void vocab_error(const std::string& what) {
  fail(MOEVK_ERROR_TOKENIZER, "vocabulary: " + what);
}

// "<0x41>" -> 0x41, or -1.
int parse_byte_token(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  int value = 0;
  for (char c : text.substr(3, 2)) {
    int digit = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t hit = text.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(text.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
  }
  out.append(text.substr(pos));
  return out;
}

}  // namespace

Tokenizer::Tokenizer(VocabData vocab) : impl_(std::make_unique<Impl>()) {
  Impl& im = *impl_;
  if (vocab.model == "llama") {
    im.kind = Kind::SentencePiece;
  } else if (vocab.model == "gpt2") {
    im.kind = Kind::ByteLevelBpe;
    if (vocab.pre == "qwen2") {
      im.pre = Impl::PreTokenizer::Qwen2;
    } else if (vocab.pre == "llama-bpe" || vocab.pre == "llama3" || vocab.pre == "llama-v3") {
      // llama.cpp's names for Meta-Llama-3's tokenizer, which also sets ignore_merges.
      im.pre = Impl::PreTokenizer::Llama3;
      im.ignore_merges = true;
    } else if (vocab.pre == "default" || vocab.pre == "gpt2" || vocab.pre.empty()) {
      im.pre = Impl::PreTokenizer::Gpt2;
    } else {
      fail(MOEVK_ERROR_UNSUPPORTED, "tokenizer pre-tokenizer not supported: '" + vocab.pre +
                                        "' (supported: qwen2, llama-bpe, gpt2, default)");
    }
  } else {
    fail(MOEVK_ERROR_UNSUPPORTED, "tokenizer model not supported: '" + vocab.model + "'");
  }
  const size_t n = vocab.tokens.size();
  if (n == 0) vocab_error("no tokens");
  if (n > static_cast<size_t>(INT32_MAX)) vocab_error("too many tokens");
  if (!vocab.scores.empty() && vocab.scores.size() != n) vocab_error("scores and tokens differ in length");
  if (vocab.token_types.empty()) vocab.token_types.assign(n, static_cast<int32_t>(TokenType::NORMAL));
  if (vocab.token_types.size() != n) vocab_error("token types and tokens differ in length");
  if (im.kind == Kind::SentencePiece && vocab.scores.empty()) vocab_error("SentencePiece vocabulary without scores");
  for (int32_t* id : {&vocab.bos_id, &vocab.eos_id, &vocab.unk_id, &vocab.pad_id, &vocab.eot_id})
    if (*id < -1 || *id >= static_cast<int32_t>(n)) vocab_error("special token id out of range: " + std::to_string(*id));

  im.token_ids.reserve(n * 2);
  im.pieces.resize(n);
  im.control.assign(n, 0);
  im.end_of_generation.assign(n, 0);
  im.byte_token_ids.fill(-1);
  const auto& byte_chars = byte_to_unicode();
  std::vector<int32_t> specials;
  for (size_t i = 0; i < n; ++i) {
    const std::string& text = vocab.tokens[i];
    const int32_t id = static_cast<int32_t>(i);
    auto type = static_cast<TokenType>(vocab.token_types[i]);
    // Unused rows (embedding padding like "[PAD151700]") are never produced by encoding.
    if (type != TokenType::UNUSED) im.token_ids.emplace(text, id);  // the first id wins for duplicates
    switch (type) {
      case TokenType::CONTROL:
      case TokenType::UNKNOWN:
        im.control[i] = 1;
        im.pieces[i] = text;
        if (!text.empty()) specials.push_back(id);
        break;
      case TokenType::USER_DEFINED:
        im.pieces[i] = text;
        if (!text.empty()) specials.push_back(id);
        break;
      case TokenType::UNUSED:
        break;
      case TokenType::BYTE: {
        int byte = parse_byte_token(text);
        if (byte < 0) vocab_error("byte token with text '" + text + "'");
        im.pieces[i] = std::string(1, static_cast<char>(byte));
        if (im.kind == Kind::SentencePiece && im.byte_token_ids[byte] < 0) im.byte_token_ids[byte] = id;
        break;
      }
      default:  // NORMAL, UNDEFINED
        if (im.kind == Kind::SentencePiece) {
          im.pieces[i] = replace_all(text, kSpmSpace, " ");
        } else {
          // Byte-level: every code point stands for one byte (unmapped ones are kept as text).
          std::string bytes;
          size_t pos = 0;
          while (pos < text.size()) {
            size_t start = pos;
            int b = unicode_to_byte(utf8_next(text, pos));
            if (b >= 0) bytes += static_cast<char>(b);
            else bytes.append(text, start, pos - start);
          }
          im.pieces[i] = std::move(bytes);
        }
    }
  }
  if (im.kind == Kind::ByteLevelBpe) {
    for (int b = 0; b < 256; ++b) im.byte_token_ids[b] = im.lookup(byte_chars[b]);
    for (size_t rank = 0; rank < vocab.merges.size(); ++rank) {
      const std::string& merge = vocab.merges[rank];
      size_t space = merge.find(' ', 1);  // the left part is never empty (" " would be 'Ġ')
      if (space == std::string::npos) vocab_error("merge without a space: '" + merge + "'");
      int32_t left = im.lookup(std::string_view(merge).substr(0, space));
      int32_t right = im.lookup(std::string_view(merge).substr(space + 1));
      int32_t result = im.lookup(merge.substr(0, space) + merge.substr(space + 1));
      if (left < 0 || right < 0 || result < 0) continue;  // a merge that can never apply
      im.merges.emplace(Impl::pair_key(left, right), Impl::Merge{static_cast<int32_t>(rank), result});
    }
  }
  // Longest first, so that "<|im_start|>" wins over a shorter token with the same start.
  std::sort(specials.begin(), specials.end(), [&](int32_t a, int32_t b) {
    return vocab.tokens[a].size() > vocab.tokens[b].size();
  });
  for (int32_t id : specials)
    im.specials_by_first_byte[static_cast<uint8_t>(vocab.tokens[id][0])].push_back(id);

  for (int32_t id : {vocab.eos_id, vocab.eot_id})
    if (id >= 0) im.end_of_generation[id] = 1;
  for (std::string_view text : kEndOfGenerationTexts) {
    int32_t id = im.lookup(text);
    if (id >= 0 && im.control[id]) im.end_of_generation[id] = 1;
  }
  im.vocab = std::move(vocab);
}

Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const Impl& im = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  const bool auto_bos = add_special && im.vocab.add_bos && im.vocab.bos_id >= 0;
  if (auto_bos) out.push_back(im.vocab.bos_id);

  // SentencePiece puts a space in front of the text, and again after each special token
  // (llama.cpp's behaviour, which the GGUF models were converted against).
  bool after_special = true;
  auto encode_fragment = [&](std::string_view fragment) {
    if (fragment.empty()) return;
    if (im.kind == Kind::SentencePiece)
      im.encode_spm(fragment, im.vocab.add_space_prefix && after_special, out);
    else
      im.encode_bpe(fragment, out);
    after_special = false;
  };
  size_t fragment_start = 0, pos = 0;
  while (pos < text.size()) {
    int32_t matched = -1;
    for (int32_t id : im.specials_by_first_byte[static_cast<uint8_t>(text[pos])]) {
      if (!parse_special && im.control[id]) continue;
      const std::string& token_text = im.vocab.tokens[id];
      if (text.compare(pos, token_text.size(), token_text) == 0) {
        matched = id;
        break;
      }
    }
    if (matched < 0) {
      ++pos;
      continue;
    }
    encode_fragment(text.substr(fragment_start, pos - fragment_start));
    out.push_back(matched);
    after_special = true;
    pos += im.vocab.tokens[matched].size();
    fragment_start = pos;
  }
  encode_fragment(text.substr(fragment_start));
  // A chat template that writes BOS itself ("<s>[INST]...") must not get a second one: models
  // never saw two, and llama.cpp / Hugging Face would only warn about it.
  if (auto_bos && out.size() >= 2 && out[1] == im.vocab.bos_id) out.erase(out.begin());

  if (add_special && im.vocab.add_eos && im.vocab.eos_id >= 0) out.push_back(im.vocab.eos_id);
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
  if (id < 0 || id >= vocab_size())
    fail(MOEVK_ERROR_INVALID_ARGUMENT, "token id " + std::to_string(id) + " outside the vocabulary (size " +
                                           std::to_string(vocab_size()) + ")");
  if (impl_->control[id] && !render_special) return {};
  return impl_->pieces[id];
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string out;
  bool strip_space = impl_->kind == Kind::SentencePiece && impl_->vocab.add_space_prefix;
  for (int32_t id : ids) {
    std::string piece = token_to_piece(id, !skip_special);
    // The prefix space belongs to the first text token after leading control tokens (BOS).
    if (strip_space && !impl_->control[id]) {
      if (!piece.empty() && piece[0] == ' ') piece.erase(0, 1);
      strip_space = false;
    }
    out += piece;
  }
  return out;
}

bool Tokenizer::is_eog(int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->end_of_generation[id];
}
bool Tokenizer::is_control(int32_t id) const { return id >= 0 && id < vocab_size() && impl_->control[id]; }
int32_t Tokenizer::bos_id() const { return impl_->vocab.bos_id; }
int32_t Tokenizer::eos_id() const { return impl_->vocab.eos_id; }
int32_t Tokenizer::eot_id() const { return impl_->vocab.eot_id; }
bool Tokenizer::adds_bos() const { return impl_->vocab.add_bos && impl_->vocab.bos_id >= 0; }
int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->vocab.tokens.size()); }
Tokenizer::Kind Tokenizer::kind() const { return impl_->kind; }
int32_t Tokenizer::find_token(std::string_view token_text) const { return impl_->lookup(token_text); }
const VocabData& Tokenizer::vocab() const { return impl_->vocab; }

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special, bool strip_leading_space)
    : tokenizer_(tokenizer), skip_special_(skip_special), strip_leading_space_(strip_leading_space) {}

std::string StreamDecoder::push(int32_t id) {
  std::string piece = tokenizer_.token_to_piece(id, !skip_special_);
  if (at_start_ && !tokenizer_.is_control(id)) {
    if (strip_leading_space_ && tokenizer_.kind() == Tokenizer::Kind::SentencePiece && !piece.empty() &&
        piece[0] == ' ')
      piece.erase(0, 1);
    at_start_ = false;
  }
  pending_ += piece;
  size_t keep = utf8_incomplete_tail(pending_);
  std::string ready = utf8_sanitize(std::string_view(pending_).substr(0, pending_.size() - keep));
  pending_.erase(0, pending_.size() - keep);
  return ready;
}

std::string StreamDecoder::flush() {
  std::string rest = utf8_sanitize(pending_);
  pending_.clear();
  return rest;
}

void StreamDecoder::reset() {
  pending_.clear();
  at_start_ = true;
}

}  // namespace moevk::text
