// The grammar matcher: sets of stacks over Grammar::elements() (grammar.hpp), moved a code point
// at a time.
#include <algorithm>
#include <cstdint>

#include "common/error.hpp"
#include "generate/grammar.hpp"
#include "text/unicode.hpp"

namespace moevk::generate {

namespace {

using Stack = GrammarMatcher::Stack;

[[noreturn]] void too_ambiguous() {
  fail(MOEVK_ERROR_INVALID_ARGUMENT, "grammar: the text so far reads in more than " +
                                         std::to_string(GrammarMatcher::kMaxStacks) +
                                         " ways at once; make the grammar less ambiguous");
}

void dedupe(std::vector<Stack>& stacks) {
  std::sort(stacks.begin(), stacks.end());
  stacks.erase(std::unique(stacks.begin(), stacks.end()), stacks.end());
  if (stacks.size() > GrammarMatcher::kMaxStacks) too_ambiguous();
}

// Length of the UTF-8 sequence a lead byte begins; 0 for a byte no sequence begins with.
int utf8_length(unsigned char b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}

// What the bytes at `pos` are: a whole character (its code point and length), the valid start
// of one that the bytes end inside (its length: the rest of `text`), or not UTF-8 at all.
enum class Utf8 { Char, Partial, Invalid };
Utf8 next_char(std::string_view text, size_t pos, uint32_t& cp, size_t& len) {
  len = text::utf8_valid_length(text, pos);
  if (len > 1 || static_cast<unsigned char>(text[pos]) < 0x80) {
    size_t at = pos;
    cp = text::utf8_next(text, at);
    return Utf8::Char;
  }
  len = text.size() - pos;
  return text::utf8_incomplete_tail(text.substr(pos)) == len ? Utf8::Partial : Utf8::Invalid;
}

std::string describe_char(uint32_t cp) {
  if (cp == '\n') return "\\n";
  if (cp == '\r') return "\\r";
  if (cp == '\t') return "\\t";
  if (cp == '"' || cp == '\\' || cp == ']' || cp == '-' || cp == '^') return std::string("\\") + char(cp);
  if (cp < 0x20 || cp == 0x7F) {
    static const char* hex = "0123456789ABCDEF";
    return std::string("\\x") + hex[cp >> 4] + hex[cp & 15];
  }
  std::string out;
  text::utf8_append(out, cp);
  return out;
}

std::string describe_set(const std::vector<Grammar::Range>& ranges) {
  std::string out;
  if (ranges.size() == 1 && ranges[0].lo == 0 && ranges[0].hi == 0x10FFFF) return "any character";
  const bool single = ranges.size() == 1 && ranges[0].lo == ranges[0].hi;
  out.push_back(single ? '"' : '[');
  for (const auto& r : ranges) {
    out.append(describe_char(r.lo));
    if (r.hi != r.lo) {
      out.push_back('-');
      out.append(describe_char(r.hi));
    }
  }
  out.push_back(single ? '"' : ']');
  return out;
}

}  // namespace

void expand_stack(const Grammar& grammar, Stack stack, std::vector<Stack>& out) {
  const auto& elements = grammar.elements();
  std::vector<Stack> todo;
  todo.push_back(std::move(stack));
  // Before duplicates go, rules of several alternatives that each lead to another such rule
  // multiply the readings (2 alternatives, 20 deep: a million): bounded here, not after.
  size_t budget = 16 * GrammarMatcher::kMaxStacks;
  while (!todo.empty()) {
    if (budget-- == 0) too_ambiguous();
    Stack s = std::move(todo.back());
    todo.pop_back();
    if (s.empty()) {
      out.push_back(std::move(s));
      continue;
    }
    const uint32_t pos = s.back();
    const Grammar::Element e = elements[pos];
    if (e.kind == Grammar::Kind::End) {
      s.pop_back();  // the alternative is done: back to where its rule was referenced
      todo.push_back(std::move(s));
    } else if (e.kind == Grammar::Kind::Chars) {
      out.push_back(std::move(s));
    } else {
      // The reference's continuation stays below, unless the alternative ends there (a tail
      // call: repetitions then keep a stack of constant depth).
      s.pop_back();
      if (elements[pos + 1].kind != Grammar::Kind::End) s.push_back(pos + 1);
      for (const uint32_t start : grammar.rule_starts()[e.index]) {
        Stack t = s;
        t.push_back(start);
        todo.push_back(std::move(t));
      }
    }
  }
}

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar) : grammar_(std::move(grammar)) {
  for (const uint32_t start : grammar_->rule_starts()[grammar_->root()]) expand_stack(*grammar_, {start}, stacks_);
  dedupe(stacks_);
}

bool GrammarMatcher::step(const std::vector<Stack>& from, uint32_t cp, std::vector<Stack>& to) const {
  to.clear();
  const auto& elements = grammar_->elements();
  for (const Stack& s : from) {
    if (s.empty()) continue;
    const Grammar::Element e = elements[s.back()];
    if (!grammar_->set_has(e.index, cp)) continue;
    Stack t = s;
    ++t.back();
    expand_stack(*grammar_, std::move(t), to);
  }
  dedupe(to);
  return !to.empty();
}

bool GrammarMatcher::partial_fits(const std::vector<Stack>& stacks, std::string_view prefix) const {
  const auto lead = static_cast<unsigned char>(prefix[0]);
  const int len = utf8_length(lead);
  if (len == 0) return false;
  uint32_t v = lead & (0xFFu >> (len + 1));
  for (size_t i = 1; i < prefix.size(); ++i) {
    const auto c = static_cast<unsigned char>(prefix[i]);
    if ((c & 0xC0) != 0x80) return false;
    v = (v << 6) | (c & 0x3F);
  }
  const int missing = len - static_cast<int>(prefix.size());
  uint32_t lo = v << (6 * missing), hi = lo | ((1u << (6 * missing)) - 1);
  lo = std::max(lo, len == 2 ? 0x80u : len == 3 ? 0x800u : 0x10000u);
  hi = std::min(hi, len == 2 ? 0x7FFu : len == 3 ? 0xFFFFu : 0x10FFFFu);
  if (lo > hi || (lo >= 0xD800 && hi <= 0xDFFF)) return false;
  const auto& elements = grammar_->elements();
  return std::any_of(stacks.begin(), stacks.end(), [&](const Stack& s) {
    return !s.empty() && grammar_->set_meets(elements[s.back()].index, lo, hi);
  });
}

bool GrammarMatcher::run(std::string_view bytes, std::vector<Stack>* out, std::string* partial_out) const {
  std::string joined;
  if (!partial_.empty()) {
    joined = partial_;
    joined.append(bytes);
    bytes = joined;
  }
  std::vector<Stack> a, b;
  const std::vector<Stack>* cur = &stacks_;
  std::vector<Stack>* moved = nullptr;  // a or b, once a character has been read
  size_t i = 0;
  std::string_view tail;
  while (i < bytes.size()) {
    uint32_t cp;
    size_t len;
    const Utf8 kind = next_char(bytes, i, cp, len);
    if (kind == Utf8::Invalid) return false;
    if (kind == Utf8::Partial) {
      tail = bytes.substr(i);
      if (!partial_fits(*cur, tail)) return false;
      break;
    }
    std::vector<Stack>& next = moved == &a ? b : a;
    if (!step(*cur, cp, next)) return false;
    cur = moved = &next;
    i += len;
  }
  if (out) *out = moved ? std::move(*moved) : stacks_;
  if (partial_out) *partial_out = std::string(tail);
  return true;
}

bool GrammarMatcher::allows(std::string_view bytes) const { return run(bytes, nullptr, nullptr); }

void GrammarMatcher::allows_sorted(const std::vector<std::string_view>& texts, const std::vector<uint32_t>& shared,
                                   std::vector<uint8_t>& allowed) const {
  allowed.assign(texts.size(), 0);
  if (!partial_.empty()) {  // in the middle of a character (rare): one text at a time
    for (size_t i = 0; i < texts.size(); ++i) allowed[i] = allows(texts[i]);
    return;
  }
  // The readings after each whole character of the current text read so far.
  struct Frame {
    size_t bytes;
    std::vector<Stack> stacks;
  };
  std::vector<Frame> frames;
  frames.push_back({0, stacks_});
  // Any text whose first `dead` bytes are the current one's is refused.
  size_t dead = SIZE_MAX;
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string_view text = texts[i];
    const size_t common = i == 0 ? 0 : shared[i];
    if (dead <= common) continue;
    dead = SIZE_MAX;
    while (frames.back().bytes > common) frames.pop_back();
    size_t pos = frames.back().bytes;
    bool ok = true;
    while (pos < text.size()) {
      uint32_t cp;
      size_t len;
      const Utf8 kind = next_char(text, pos, cp, len);
      if (kind == Utf8::Partial) {
        // A character the text begins but does not finish; every longer text with these bytes
        // narrows the same range, so a refusal here refuses them too.
        ok = partial_fits(frames.back().stacks, text.substr(pos));
        if (!ok) dead = text.size();
        break;
      }
      if (kind == Utf8::Invalid) {
        // Every text with this malformed sequence (as many bytes as its lead announces) is refused.
        ok = false;
        dead = pos + std::min(text.size() - pos, text::utf8_sequence_length(static_cast<uint8_t>(text[pos])));
        break;
      }
      std::vector<Stack> next;
      if (!step(frames.back().stacks, cp, next)) {
        ok = false, dead = pos + len;
        break;
      }
      pos += len;
      frames.push_back({pos, std::move(next)});
    }
    allowed[i] = ok;
  }
}

bool GrammarMatcher::accept(std::string_view bytes) {
  std::vector<Stack> next;
  std::string partial;
  if (!run(bytes, &next, &partial)) return false;
  stacks_ = std::move(next);
  partial_ = std::move(partial);
  return true;
}

bool GrammarMatcher::accepting() const {
  return partial_.empty() && std::any_of(stacks_.begin(), stacks_.end(), [](const Stack& s) { return s.empty(); });
}

bool GrammarMatcher::complete() const {
  return partial_.empty() && !stacks_.empty() &&
         std::all_of(stacks_.begin(), stacks_.end(), [](const Stack& s) { return s.empty(); });
}

std::string GrammarMatcher::expected() const {
  std::vector<uint32_t> sets;
  for (const Stack& s : stacks_)
    if (!s.empty()) sets.push_back(grammar_->elements()[s.back()].index);
  std::sort(sets.begin(), sets.end());
  sets.erase(std::unique(sets.begin(), sets.end()), sets.end());
  std::string out;
  constexpr size_t kShown = 8;
  for (size_t i = 0; i < sets.size() && i < kShown; ++i) out += (i ? ", " : "") + describe_set(grammar_->sets()[sets[i]]);
  if (sets.size() > kShown) out += ", ... (" + std::to_string(sets.size() - kShown) + " more)";
  if (accepting()) out += out.empty() ? "the end of the text" : ", or the end of the text";
  if (!partial_.empty()) out = "the rest of a UTF-8 character, then " + out;
  return out.empty() ? "nothing" : out;
}

}  // namespace moevk::generate
