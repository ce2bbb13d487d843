// Byte-level BPE as GPT-2 / Qwen2 / Llama-3 use it: split the text into words with the model's
// pre-tokenizer regex (implemented by hand over Unicode classes), map each byte to its printable
// code point, then repeatedly apply the lowest-ranked merge (ties: leftmost).
#include <queue>

#include "text/tokenizer_impl.hpp"
#include "text/unicode.hpp"

namespace moevk::text {

namespace {

bool is_cr_or_lf(uint32_t cp) { return cp == '\r' || cp == '\n'; }
uint32_t ascii_lower(uint32_t cp) { return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp; }

// Length in code points of an English contraction ('s 't 're 've 'm 'll 'd, any case) at i, or 0.
size_t contraction_length(const std::vector<uint32_t>& cps, size_t i, bool case_insensitive) {
  if (cps[i] != '\'' || i + 1 >= cps.size()) return 0;
  auto lower = [&](size_t k) { return case_insensitive ? ascii_lower(cps[k]) : cps[k]; };
  uint32_t a = lower(i + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= cps.size()) return 0;
  uint32_t b = lower(i + 2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// The three white-space alternatives both regexes end with, at a white-space code point i:
// (qwen2 only) \s*[\r\n]+ , then \s+(?!\S) , then \s+ .
size_t white_space_length(const std::vector<uint32_t>& cps, size_t i, bool newline_rule) {
  size_t end = i;
  while (end < cps.size() && is_white_space(cps[end])) ++end;
  if (newline_rule) {
    // Greedy \s* backs off to the last CR/LF of the run; [\r\n]+ then takes just that one.
    for (size_t k = end; k > i; --k)
      if (is_cr_or_lf(cps[k - 1])) return k - i;
  }
  if (end == cps.size()) return end - i;  // \s+(?!\S) at the end of the text
  if (end - i >= 2) return end - i - 1;   // leave the last space to prefix the next word
  return 1;                               // \s+
}

using Words = std::vector<std::pair<size_t, size_t>>;

void emit(const std::vector<size_t>& offsets, size_t first, size_t count, Words& words) {
  words.emplace_back(offsets[first], offsets[first + count]);
}

// Qwen2's and Llama-3's regexes differ only in how many digits one word takes:
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}| ?[^\s\p{L}\p{N}]+[\r\n]*|
// \s*[\r\n]+|\s+(?!\S)|\s+
void pretokenize_digit_groups(std::string_view text, size_t max_digits, Words& words) {
  std::vector<uint32_t> cps;
  std::vector<size_t> offsets;
  utf8_split(text, cps, offsets);
  const size_t n = cps.size();
  auto letter = [&](size_t k) { return k < n && is_letter(cps[k]); };
  auto other = [&](size_t k) {  // [^\s\p{L}\p{N}]
    return k < n && !(codepoint_flags(cps[k]) & (kLetter | kNumber | kWhiteSpace));
  };
  for (size_t i = 0; i < n;) {
    size_t length = contraction_length(cps, i, true);
    if (length == 0) {
      uint8_t flags = codepoint_flags(cps[i]);
      bool may_prefix = !is_cr_or_lf(cps[i]) && !(flags & (kLetter | kNumber));
      if ((flags & kLetter) || (may_prefix && letter(i + 1))) {
        size_t end = (flags & kLetter) ? i : i + 1;
        while (letter(end)) ++end;
        length = end - i;
      } else if (flags & kNumber) {
        // Greedy {1,max}: "1234567" is 123|456|7, counted from the left.
        length = 1;
        while (length < max_digits && i + length < n && is_number(cps[i + length])) ++length;
      } else if (other(i) || (cps[i] == ' ' && other(i + 1))) {
        size_t end = other(i) ? i : i + 1;
        while (other(end)) ++end;
        while (end < n && is_cr_or_lf(cps[end])) ++end;
        length = end - i;
      } else {
        length = white_space_length(cps, i, true);
      }
    }
    emit(offsets, i, length, words);
    i += length;
  }
}

}  // namespace

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
void pretokenize_qwen2(std::string_view text, Words& words) { pretokenize_digit_groups(text, 1, words); }

// The same with \p{N}{1,3} (llama.cpp's pre "llama-bpe", Meta-Llama-3's tokenizer.json).
void pretokenize_llama3(std::string_view text, Words& words) { pretokenize_digit_groups(text, 3, words); }

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
void pretokenize_gpt2(std::string_view text, Words& words) {
  std::vector<uint32_t> cps;
  std::vector<size_t> offsets;
  utf8_split(text, cps, offsets);
  const size_t n = cps.size();
  auto has = [&](size_t k, uint8_t flag) { return k < n && (codepoint_flags(cps[k]) & flag); };
  auto other = [&](size_t k) { return k < n && !(codepoint_flags(cps[k]) & (kLetter | kNumber | kWhiteSpace)); };
  for (size_t i = 0; i < n;) {
    size_t length = contraction_length(cps, i, false);
    if (length == 0) {
      size_t start = (cps[i] == ' ' && i + 1 < n && !is_white_space(cps[i + 1])) ? i + 1 : i;
      size_t end = start;
      if (has(start, kLetter)) {
        while (has(end, kLetter)) ++end;
      } else if (has(start, kNumber)) {
        while (has(end, kNumber)) ++end;
      } else if (other(start)) {
        while (other(end)) ++end;
      }
      length = end > start ? end - i : white_space_length(cps, i, false);
    }
    emit(offsets, i, length, words);
    i += length;
  }
}

namespace {

struct Symbol {
  int32_t id;  // -1 once merged into its left neighbour
  int prev, next;
};

struct Candidate {
  int32_t rank;
  int left;
  int32_t left_id, right_id;  // the pair when queued; stale when either side changed since
  bool operator<(const Candidate& other) const {
    return rank > other.rank || (rank == other.rank && left > other.left);
  }
};

}  // namespace

void Tokenizer::Impl::encode_bpe(std::string_view text, std::vector<int32_t>& out) const {
  Words words;
  switch (pre) {
    case PreTokenizer::Qwen2: pretokenize_qwen2(text, words); break;
    case PreTokenizer::Llama3: pretokenize_llama3(text, words); break;
    case PreTokenizer::Gpt2: pretokenize_gpt2(text, words); break;
  }

  std::vector<Symbol> symbols;
  std::string word_chars;
  for (auto [begin, end] : words) {
    if (ignore_merges) {
      // Llama-3 (Hugging Face "ignore_merges"): a word that is itself a token is taken whole,
      // even where the merges would not reach it.
      word_chars.clear();
      for (size_t pos = begin; pos < end; ++pos) word_chars += byte_to_unicode()[static_cast<uint8_t>(text[pos])];
      if (int32_t whole = lookup(word_chars); whole >= 0) {
        out.push_back(whole);
        continue;
      }
    }
    symbols.clear();
    for (size_t pos = begin; pos < end; ++pos) {
      int index = static_cast<int>(symbols.size());
      symbols.push_back({byte_token_ids[static_cast<uint8_t>(text[pos])], index - 1, index + 1});
    }
    symbols.back().next = -1;

    std::priority_queue<Candidate> queue;
    auto try_pair = [&](int left, int right) {
      if (left < 0 || right < 0) return;
      auto it = merges.find(pair_key(symbols[left].id, symbols[right].id));
      if (it == merges.end()) return;
      queue.push({it->second.rank, left, symbols[left].id, symbols[right].id});
    };
    for (size_t i = 1; i < symbols.size(); ++i) try_pair(static_cast<int>(i) - 1, static_cast<int>(i));

    while (!queue.empty()) {
      Candidate best = queue.top();
      queue.pop();
      Symbol& left = symbols[best.left];
      if (left.id != best.left_id || left.next < 0 || symbols[left.next].id != best.right_id) continue;
      Symbol& right = symbols[left.next];
      left.id = merges.at(pair_key(best.left_id, best.right_id)).result;
      right.id = -1;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = best.left;
      try_pair(left.prev, best.left);
      try_pair(best.left, left.next);
    }
    for (int i = 0; i >= 0; i = symbols[i].next) {
      if (symbols[i].id >= 0) out.push_back(symbols[i].id);
      else if (vocab.unk_id >= 0) out.push_back(vocab.unk_id);  // byte missing from the vocabulary
    }
  }
}

}  // namespace moevk::text
