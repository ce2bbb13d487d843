// The GBNF parser (llama.cpp's grammar format, grammars/README.md there):
//   rule    ::= name "::=" alternates            one per line; a line may go on with "|"
//   item    ::= "literal" | [class] | [^class] | . | name | ( alternates )
//               followed by any of * + ? {m} {m,} {m,n} {,n}
// Escapes in literals and classes: \n \r \t \\ \" \[ \] \xHH \uHHHH \UHHHHHHHH; "#" starts a
// comment. Newlines end a rule except inside parentheses.
#include "generate/grammar.hpp"

#include <algorithm>
#include <map>
#include <optional>

#include "common/error.hpp"
#include "text/unicode.hpp"

namespace moevk::generate {

namespace {

constexpr uint32_t kMaxCodePoint = 0x10FFFF;
constexpr int kMaxNesting = 200;

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

std::vector<Grammar::Range> normalized(std::vector<Grammar::Range> ranges) {
  std::sort(ranges.begin(), ranges.end(), [](auto a, auto b) { return a.lo < b.lo; });
  std::vector<Grammar::Range> out;
  for (const auto& r : ranges) {
    if (!out.empty() && r.lo <= out.back().hi + 1) out.back().hi = std::max(out.back().hi, r.hi);
    else out.push_back(r);
  }
  return out;
}

std::vector<Grammar::Range> complement(const std::vector<Grammar::Range>& sorted) {
  std::vector<Grammar::Range> out;
  uint32_t next = 0;
  for (const auto& r : sorted) {
    if (r.lo > next) out.push_back({next, r.lo - 1});
    next = r.hi + 1;
  }
  if (next <= kMaxCodePoint) out.push_back({next, kMaxCodePoint});
  return out;
}

}  // namespace

bool Grammar::set_has(uint32_t set, uint32_t cp) const {
  const auto& ranges = sets_[set];
  auto it = std::upper_bound(ranges.begin(), ranges.end(), cp, [](uint32_t c, const Range& r) { return c < r.lo; });
  return it != ranges.begin() && cp <= std::prev(it)->hi;
}

bool Grammar::set_meets(uint32_t set, uint32_t lo, uint32_t hi) const {
  for (const auto& r : sets_[set])
    if (r.lo <= hi && lo <= r.hi) return true;
  return false;
}

class GrammarBuilder {
 public:
  explicit GrammarBuilder(std::string_view src) : src_(src) {}

  std::shared_ptr<const Grammar> build(std::string_view root) {
    skip_space(true);
    while (pos_ < src_.size()) {
      const size_t at = pos_;
      const std::string name = parse_name("a rule name");
      skip_space(false);
      if (src_.substr(pos_, 3) != "::=") fail_at(pos_, "expected \"::=\" after rule name \"" + name + "\"");
      pos_ += 3;
      skip_space(true);
      const uint32_t id = rule_id(name, at);
      if (rules_[id].defined) fail_at(at, "rule \"" + name + "\" is defined twice");
      rules_[id].defined = true;
      rules_[id].alts = parse_alternates(id, 0);
      if (pos_ < src_.size() && src_[pos_] != '\n' && src_[pos_] != '\r')
        fail_at(pos_, std::string("unexpected \"") + src_[pos_] + "\"");
      skip_space(true);
    }
    for (const auto& r : rules_)
      if (!r.defined) fail_at(r.first_use, "rule \"" + r.name + "\" is used but not defined");
    auto root_it = ids_.find(std::string(root));
    if (root_it == ids_.end())
      fail(MOEVK_ERROR_INVALID_ARGUMENT, "grammar: no rule \"" + std::string(root) + "\" (the start rule)");
    check_left_recursion();
    return flatten(root_it->second);
  }

 private:
  struct RuleDef {
    std::string name;
    std::vector<std::vector<Grammar::Element>> alts;
    bool defined = false;
    size_t first_use = 0;
  };
  using Sequence = std::vector<Grammar::Element>;

  [[noreturn]] void fail_at(size_t at, const std::string& what) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < src_.size(); ++i) {
      if (src_[i] == '\n') ++line, col = 1;
      else ++col;
    }
    fail(MOEVK_ERROR_INVALID_ARGUMENT,
         "grammar: line " + std::to_string(line) + ", column " + std::to_string(col) + ": " + what);
  }

  // Spaces, tabs and comments; newlines too where `newlines` (inside parentheses, after "::="
  // and "|").
  void skip_space(bool newlines) {
    while (pos_ < src_.size()) {
      const char c = src_[pos_];
      if (c == ' ' || c == '\t') ++pos_;
      else if (c == '#') {
        while (pos_ < src_.size() && src_[pos_] != '\n') ++pos_;
      } else if (newlines && (c == '\n' || c == '\r')) ++pos_;
      else break;
    }
  }

  // At a newline that ends a sequence at the top level: whether the rule goes on with "|" on a
  // later line (then pos_ moves to the "|").
  bool continues_on_next_line() {
    const size_t saved = pos_;
    skip_space(true);
    if (pos_ < src_.size() && src_[pos_] == '|') return true;
    pos_ = saved;
    return false;
  }

  std::string parse_name(const char* what) {
    const size_t start = pos_;
    while (pos_ < src_.size() && is_name_char(src_[pos_])) ++pos_;
    if (pos_ == start) fail_at(start, std::string("expected ") + what);
    return std::string(src_.substr(start, pos_ - start));
  }

  uint32_t rule_id(const std::string& name, size_t at) {
    auto [it, added] = ids_.emplace(name, static_cast<uint32_t>(rules_.size()));
    if (added) {
      rules_.push_back({name, {}, false, at});
    }
    return it->second;
  }

  // A rule made for a group or a repetition inside rule `parent`.
  uint32_t synthesized(uint32_t parent, std::vector<Sequence> alts) {
    std::string name;
    do name = rules_[parent].name + "_" + std::to_string(++synth_count_);
    while (ids_.count(name));
    const uint32_t id = rule_id(name, pos_);
    rules_[id].defined = true;
    rules_[id].alts = std::move(alts);
    return id;
  }

  uint32_t set_id(std::vector<Grammar::Range> ranges) {
    ranges = normalized(std::move(ranges));
    std::vector<std::pair<uint32_t, uint32_t>> key;
    for (const auto& r : ranges) key.emplace_back(r.lo, r.hi);
    auto [it, added] = set_ids_.emplace(std::move(key), static_cast<uint32_t>(sets_.size()));
    if (added) sets_.push_back(std::move(ranges));
    return it->second;
  }

  void count(size_t n) {
    elements_ += n;
    if (elements_ > Grammar::kMaxElements)
      fail(MOEVK_ERROR_INVALID_ARGUMENT, "grammar: more than " + std::to_string(Grammar::kMaxElements) +
                                             " elements once repetitions are expanded");
  }

  uint32_t parse_hex(size_t digits) {
    uint32_t v = 0;
    for (size_t i = 0; i < digits; ++i, ++pos_) {
      if (pos_ >= src_.size()) fail_at(pos_, "unfinished escape");
      const char c = src_[pos_];
      uint32_t d;
      if (c >= '0' && c <= '9') d = uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f') d = uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') d = uint32_t(c - 'A' + 10);
      else fail_at(pos_, "expected a hex digit in an escape");
      v = v * 16 + d;
    }
    return v;
  }

  // One character of a literal or class, escapes resolved, UTF-8 decoded.
  uint32_t parse_char() {
    if (pos_ >= src_.size()) fail_at(pos_, "unexpected end of grammar");
    const size_t at = pos_;
    const auto b = static_cast<unsigned char>(src_[pos_]);
    if (b == '\\') {
      ++pos_;
      if (pos_ >= src_.size()) fail_at(at, "unfinished escape");
      const char e = src_[pos_++];
      uint32_t cp;
      switch (e) {
        case 'n': return '\n';
        case 'r': return '\r';
        case 't': return '\t';
        case '\\': case '"': case '[': case ']': case '-': case '^': return static_cast<uint32_t>(e);
        case 'x': cp = parse_hex(2); break;
        case 'u': cp = parse_hex(4); break;
        case 'U': cp = parse_hex(8); break;
        default: fail_at(at, std::string("unknown escape \"\\") + e + "\"");
      }
      if (cp > kMaxCodePoint || (cp >= 0xD800 && cp <= 0xDFFF)) fail_at(at, "escape is not a Unicode scalar value");
      return cp;
    }
    // One byte that is no character on its own is a malformed or cut sequence.
    if (b >= 0x80 && text::utf8_valid_length(src_, pos_) == 1) fail_at(at, "invalid UTF-8");
    return text::utf8_next(src_, pos_);
  }

  std::vector<Sequence> parse_alternates(uint32_t rule, int depth) {
    if (depth > kMaxNesting) fail_at(pos_, "groups nested more than " + std::to_string(kMaxNesting) + " deep");
    std::vector<Sequence> alts;
    alts.push_back(parse_sequence(rule, depth));
    for (;;) {
      // At the top level a newline ends the rule, unless the next line goes on with "|".
      if (depth == 0 && pos_ < src_.size() && (src_[pos_] == '\n' || src_[pos_] == '\r')) continues_on_next_line();
      if (pos_ >= src_.size() || src_[pos_] != '|') break;
      ++pos_;
      skip_space(true);
      alts.push_back(parse_sequence(rule, depth));
    }
    return alts;
  }

  Sequence parse_sequence(uint32_t rule, int depth) {
    Sequence seq;
    size_t last_start = 0;  // where the last item's elements begin in seq
    bool have_item = false;
    const bool nested = depth > 0;
    while (pos_ < src_.size()) {
      const size_t at = pos_;
      const char c = src_[pos_];
      if (c == '|' || c == ')' || c == '\n' || c == '\r') break;
      if (c == '"') {
        ++pos_;
        last_start = seq.size();
        while (pos_ < src_.size() && src_[pos_] != '"') {
          if (src_[pos_] == '\n') fail_at(at, "unterminated string literal");
          const uint32_t cp = parse_char();
          seq.push_back({Grammar::Kind::Chars, set_id({{cp, cp}})});
        }
        if (pos_ >= src_.size()) fail_at(at, "unterminated string literal");
        ++pos_;
        count(seq.size() - last_start);
        have_item = true;
      } else if (c == '[') {
        ++pos_;
        const bool negated = pos_ < src_.size() && src_[pos_] == '^';
        if (negated) ++pos_;
        std::vector<Grammar::Range> ranges;
        while (pos_ < src_.size() && src_[pos_] != ']') {
          if (src_[pos_] == '\n') fail_at(at, "unterminated character class");
          const uint32_t lo = parse_char();
          uint32_t hi = lo;
          if (pos_ + 1 < src_.size() && src_[pos_] == '-' && src_[pos_ + 1] != ']') {
            ++pos_;
            hi = parse_char();
            if (hi < lo) fail_at(at, "character range with its end before its start");
          }
          ranges.push_back({lo, hi});
        }
        if (pos_ >= src_.size()) fail_at(at, "unterminated character class");
        ++pos_;
        if (ranges.empty()) fail_at(at, "empty character class");
        auto set = normalized(std::move(ranges));
        if (negated) set = complement(set);
        if (set.empty()) fail_at(at, "character class that matches nothing");
        last_start = seq.size();
        seq.push_back({Grammar::Kind::Chars, set_id(std::move(set))});
        count(1);
        have_item = true;
      } else if (c == '.') {
        ++pos_;
        last_start = seq.size();
        seq.push_back({Grammar::Kind::Chars, set_id({{0, kMaxCodePoint}})});
        count(1);
        have_item = true;
      } else if (c == '(') {
        ++pos_;
        skip_space(true);
        auto alts = parse_alternates(rule, depth + 1);
        if (pos_ >= src_.size() || src_[pos_] != ')') fail_at(at, "\"(\" without its \")\"");
        ++pos_;
        last_start = seq.size();
        seq.push_back({Grammar::Kind::Rule, synthesized(rule, std::move(alts))});
        count(1);
        have_item = true;
      } else if (is_name_char(c)) {
        const std::string name = parse_name("a rule name");
        last_start = seq.size();
        seq.push_back({Grammar::Kind::Rule, rule_id(name, at)});
        count(1);
        have_item = true;
      } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        if (!have_item) fail_at(at, std::string("\"") + c + "\" with nothing before it to repeat");
        ++pos_;
        uint32_t min = 0;
        std::optional<uint32_t> max;
        if (c == '+') min = 1;
        else if (c == '?') max = 1;
        else if (c == '{') parse_bounds(at, min, max);
        Sequence item(seq.begin() + static_cast<std::ptrdiff_t>(last_start), seq.end());
        seq.resize(last_start);
        repeat(rule, std::move(item), min, max, seq);
      } else if (c == '<') {
        fail_at(at, "token references (<...>) are not supported; write the token's text as a literal");
      } else {
        fail_at(at, std::string("unexpected \"") + c + "\"");
      }
      skip_space(nested);
    }
    return seq;
  }

  void parse_bounds(size_t at, uint32_t& min, std::optional<uint32_t>& max) {
    auto number = [&]() -> std::optional<uint32_t> {
      skip_space(false);
      const size_t start = pos_;
      uint64_t v = 0;
      while (pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '9') {
        v = v * 10 + uint64_t(src_[pos_++] - '0');
        if (v > Grammar::kMaxRepeat)
          fail_at(at, "repetition bound above " + std::to_string(Grammar::kMaxRepeat));
      }
      skip_space(false);
      if (pos_ == start) return std::nullopt;
      return static_cast<uint32_t>(v);
    };
    const auto first = number();
    if (pos_ < src_.size() && src_[pos_] == '}') {
      if (!first) fail_at(at, "expected a number in {}");
      min = *first;
      max = *first;
    } else if (pos_ < src_.size() && src_[pos_] == ',') {
      ++pos_;
      min = first.value_or(0);
      max = number();
      if (pos_ >= src_.size() || src_[pos_] != '}') fail_at(at, "expected \"}\"");
      if (max && *max < min) fail_at(at, "repetition {m,n} with n below m");
    } else {
      fail_at(at, "expected \"}\" or \",\" in a repetition");
    }
    ++pos_;
  }

  // Appends `item` repeated min..max times (max none: unbounded) to seq.
  void repeat(uint32_t rule, Sequence item, uint32_t min, std::optional<uint32_t> max, Sequence& seq) {
    if (item.size() != 1) item = {{Grammar::Kind::Rule, synthesized(rule, {item})}};
    const Grammar::Element x = item[0];
    count(min + 1);
    for (uint32_t i = 0; i < min; ++i) seq.push_back(x);
    if (!max) {
      // star ::= x star | ""
      const uint32_t star = synthesized(rule, {});
      rules_[star].alts = {{x, {Grammar::Kind::Rule, star}}, {}};
      count(3);
      seq.push_back({Grammar::Kind::Rule, star});
      return;
    }
    // Up to n more: opt_1 ::= x | "", opt_k ::= x opt_(k-1) | "".
    std::optional<uint32_t> inner;
    for (uint32_t k = min; k < *max; ++k) {
      Sequence with{x};
      if (inner) with.push_back({Grammar::Kind::Rule, *inner});
      count(with.size() + 2);
      inner = synthesized(rule, {with, {}});
    }
    if (inner) seq.push_back({Grammar::Kind::Rule, *inner});
  }

  void check_left_recursion() const {
    const size_t n = rules_.size();
    std::vector<bool> nullable(n, false);
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t r = 0; r < n; ++r) {
        if (nullable[r]) continue;
        for (const auto& alt : rules_[r].alts) {
          const bool all = std::all_of(alt.begin(), alt.end(), [&](const Grammar::Element& e) {
            return e.kind == Grammar::Kind::Rule && nullable[e.index];
          });
          if (all) {
            nullable[r] = changed = true;
            break;
          }
        }
      }
    }
    // Edges r -> s where s can come first in r; a cycle is left recursion.
    std::vector<std::vector<uint32_t>> first(n);
    for (size_t r = 0; r < n; ++r)
      for (const auto& alt : rules_[r].alts)
        for (const auto& e : alt) {
          if (e.kind != Grammar::Kind::Rule) break;
          first[r].push_back(e.index);
          if (!nullable[e.index]) break;
        }
    std::vector<uint8_t> state(n, 0);  // 0 unseen, 1 on the path, 2 done
    std::vector<uint32_t> path;
    std::vector<std::pair<uint32_t, size_t>> todo;
    for (uint32_t start = 0; start < n; ++start) {
      if (state[start]) continue;
      todo.push_back({start, 0});
      state[start] = 1;
      path.push_back(start);
      while (!todo.empty()) {
        auto& [r, next] = todo.back();
        if (next < first[r].size()) {
          const uint32_t s = first[r][next++];
          if (state[s] == 1) {
            std::string cycle;
            auto from = std::find(path.begin(), path.end(), s);
            for (auto it = from; it != path.end(); ++it) cycle += rules_[*it].name + " -> ";
            cycle += rules_[s].name;
            fail(MOEVK_ERROR_INVALID_ARGUMENT,
                 "grammar: left recursion (a rule reaching itself before any character): " + cycle);
          }
          if (state[s] == 0) {
            state[s] = 1;
            path.push_back(s);
            todo.push_back({s, 0});
          }
        } else {
          state[r] = 2;
          path.pop_back();
          todo.pop_back();
        }
      }
    }
  }

  std::shared_ptr<const Grammar> flatten(uint32_t root) {
    auto g = std::make_shared<Grammar>();
    g->rule_starts_.resize(rules_.size());
    for (size_t r = 0; r < rules_.size(); ++r) {
      g->rule_names_.push_back(rules_[r].name);
      for (const auto& alt : rules_[r].alts) {
        g->rule_starts_[r].push_back(static_cast<uint32_t>(g->elements_.size()));
        g->elements_.insert(g->elements_.end(), alt.begin(), alt.end());
        g->elements_.push_back({Grammar::Kind::End, 0});
      }
    }
    g->sets_ = std::move(sets_);
    g->root_ = root;
    return g;
  }

  std::string_view src_;
  size_t pos_ = 0;
  std::map<std::string, uint32_t> ids_;
  std::vector<RuleDef> rules_;
  std::map<std::vector<std::pair<uint32_t, uint32_t>>, uint32_t> set_ids_;
  std::vector<std::vector<Grammar::Range>> sets_;
  size_t elements_ = 0;
  uint32_t synth_count_ = 0;
};

std::shared_ptr<const Grammar> Grammar::parse(std::string_view text, std::string_view root) {
  return GrammarBuilder(text).build(root);
}

}  // namespace moevk::generate
