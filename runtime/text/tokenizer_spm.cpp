// SentencePiece-style encoding as llama.cpp does it for "llama" vocabularies: start from code
// points, repeatedly merge the adjacent pair whose concatenation is the token with the highest
// score (ties: leftmost), then map symbols to ids with byte-fallback for unknown characters.
#include <queue>

#include "text/tokenizer_impl.hpp"
#include "text/unicode.hpp"

namespace moevk::text {

namespace {

struct Symbol {
  size_t offset, length;  // bytes in the escaped text; length 0 once merged into its left neighbour
  int prev, next;
};

struct Candidate {
  float score;
  int left;
  size_t length;  // merged length when queued; stale when the symbols changed since
  bool operator<(const Candidate& other) const {
    // priority_queue pops the largest: highest score first, then the leftmost.
    return score < other.score || (score == other.score && left > other.left);
  }
};

}  // namespace

void Tokenizer::Impl::encode_spm(std::string_view text, bool add_space_prefix, std::vector<int32_t>& out) const {
  std::string escaped;
  escaped.reserve(text.size() * 3 + 3);
  if (add_space_prefix) escaped += "\xE2\x96\x81";
  for (char c : text) {
    if (c == ' ') escaped += "\xE2\x96\x81";
    else escaped += c;
  }

  std::vector<Symbol> symbols;
  symbols.reserve(escaped.size());
  for (size_t pos = 0; pos < escaped.size();) {
    size_t length = utf8_valid_length(escaped, pos);  // malformed bytes stay single symbols
    int index = static_cast<int>(symbols.size());
    symbols.push_back({pos, length, index - 1, -1});
    if (index > 0) symbols[index - 1].next = index;
    pos += length;
  }

  std::priority_queue<Candidate> queue;
  auto try_pair = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    std::string_view merged(escaped.data() + symbols[left].offset, symbols[left].length + symbols[right].length);
    int32_t id = lookup(merged);
    if (id < 0) return;
    queue.push({vocab.scores[id], left, merged.size()});
  };
  for (size_t i = 1; i < symbols.size(); ++i) try_pair(static_cast<int>(i) - 1, static_cast<int>(i));

  while (!queue.empty()) {
    Candidate best = queue.top();
    queue.pop();
    Symbol& left = symbols[best.left];
    if (left.length == 0 || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    if (left.length + right.length != best.length) continue;  // one side changed since queued
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = best.left;
    try_pair(left.prev, best.left);
    try_pair(best.left, left.next);
  }

  for (int i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
    std::string_view piece(escaped.data() + symbols[i].offset, symbols[i].length);
    int32_t id = lookup(piece);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (char byte : piece) {  // byte fallback: <0xXX>, or <unk> when the vocabulary lacks it
      int32_t byte_id = byte_token_ids[static_cast<uint8_t>(byte)];
      if (byte_id >= 0) out.push_back(byte_id);
      else if (vocab.unk_id >= 0) out.push_back(vocab.unk_id);
    }
  }
}

}  // namespace moevk::text
