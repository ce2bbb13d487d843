// Text <-> token ids for the two vocabulary kinds GGUF models carry:
//  - "llama": SentencePiece-style BPE over code points with scores (Mistral/Mixtral), spaces
//    escaped to U+2581, a prefix space, byte-fallback tokens <0xXX>;
//  - "gpt2": byte-level BPE with merge ranks (Qwen2/Qwen3), pre-tokenized by the model's regex.
// Special (control) tokens written in the text are recognised when asked to (parse_special).
// A Tokenizer is immutable after construction; all methods are thread-safe.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "text/vocab.hpp"

namespace moevk::text {

class Tokenizer {
 public:
  enum class Kind { SentencePiece, ByteLevelBpe };

  // Validates the vocabulary; throws moevk::Error (MOEVK_ERROR_UNSUPPORTED for an unknown model or
  // pre-tokenizer, MOEVK_ERROR_TOKENIZER for an inconsistent vocabulary).
  explicit Tokenizer(VocabData vocab);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // add_special: BOS (and EOS) as the vocabulary asks (add_bos / add_eos); no BOS is added to a
  // text whose first parsed token is already BOS.
  // parse_special: control tokens written in the text (<|im_start|>, <s>) become their ids;
  // otherwise they are tokenized as plain text. User-defined tokens are always matched.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // The bytes a token stands for (may be part of a UTF-8 character). Control tokens give their
  // text when render_special, else "". Throws MOEVK_ERROR_INVALID_ARGUMENT for an invalid id.
  std::string token_to_piece(int32_t id, bool render_special = true) const;

  // Concatenated pieces. For SentencePiece vocabularies the space the encoder put in front of
  // the text is removed again (as llama.cpp and Hugging Face do), so decode(encode(s)) == s.
  // Invalid UTF-8 in the result (cut byte tokens) is kept as raw bytes.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  bool is_eog(int32_t id) const;      // end of generation: eos, eot, <|im_end|>, <|endoftext|>, ...
  bool is_control(int32_t id) const;  // control / unknown tokens (not text)
  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t eot_id() const;             // -1 when the vocabulary has none
  bool adds_bos() const;
  int32_t vocab_size() const;
  Kind kind() const;
  // The id of the token whose text is exactly `token_text`, or -1.
  int32_t find_token(std::string_view token_text) const;
  const VocabData& vocab() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Streaming detokenizer: push ids as they are generated, get back only complete UTF-8 text
// (never half a character); flush() at the end returns what is left (an incomplete character
// becomes U+FFFD). Malformed bytes are replaced by U+FFFD, so all output is valid UTF-8.
class StreamDecoder {
 public:
  // strip_leading_space: drop the SentencePiece prefix space of the first text (use when the
  // stream starts at the beginning of a text, not when it continues a prompt).
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = true, bool strip_leading_space = false);
  std::string push(int32_t id);
  std::string flush();
  void reset();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  bool strip_leading_space_;
  bool at_start_ = true;
  std::string pending_;  // bytes of a character not yet complete
};

}  // namespace moevk::text
