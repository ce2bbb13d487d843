// Internals shared by tokenizer.cpp (setup, specials, decoding) and the two encoders.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "text/tokenizer.hpp"

namespace moevk::text {

struct Tokenizer::Impl {
  VocabData vocab;
  Kind kind = Kind::SentencePiece;
  enum class PreTokenizer { Qwen2, Llama3, Gpt2 } pre = PreTokenizer::Qwen2;
  bool ignore_merges = false;  // BPE: a word that is a token as a whole skips the merges

  std::unordered_map<std::string, int32_t> token_ids;  // token text -> id
  std::vector<std::string> pieces;                     // decoded bytes per id
  std::vector<uint8_t> control;                        // 1 for control / unknown tokens
  std::vector<uint8_t> end_of_generation;
  std::array<int32_t, 256> byte_token_ids{};           // SPM <0xXX> / BPE byte-char token per byte, -1 if absent

  // BPE: (left id, right id) -> (rank, merged id).
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  std::unordered_map<uint64_t, Merge> merges;

  // Tokens matched verbatim in the text, grouped by first byte, longest first.
  std::array<std::vector<int32_t>, 256> specials_by_first_byte;

  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  int32_t lookup(std::string_view text) const {
    auto it = token_ids.find(std::string(text));
    return it == token_ids.end() ? -1 : it->second;
  }

  // Encoders of one text fragment (no special tokens inside), appending to `out`.
  void encode_spm(std::string_view text, bool add_space_prefix, std::vector<int32_t>& out) const;
  void encode_bpe(std::string_view text, std::vector<int32_t>& out) const;
};

// Pre-tokenizers: byte ranges [begin, end) of the words of `text`.
void pretokenize_qwen2(std::string_view text, std::vector<std::pair<size_t, size_t>>& words);
void pretokenize_llama3(std::string_view text, std::vector<std::pair<size_t, size_t>>& words);
void pretokenize_gpt2(std::string_view text, std::vector<std::pair<size_t, size_t>>& words);

}  // namespace moevk::text
