// Constrained generation: grammars in llama.cpp's GBNF form, and the matcher that says which
// text may come next.
//
// A grammar compiles to rules whose alternatives are sequences of elements: a character set
// (ranges of code points) or a reference to a rule. Repetitions (*, +, ?, {m,n}) and groups
// become rules of their own. The matcher keeps every way the text so far can be read as a set
// of stacks (llama.cpp's model): a stack's top is the next character set to match, the entries
// below it the places to return to when a rule is done. A character moves every stack whose set
// holds it, and the rule references it reaches expand into their alternatives; no stack left
// means the text is rejected, an empty stack that it is a whole sentence of the grammar.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace moevk::generate {

class Grammar {
 public:
  // Parses GBNF text; the sentence is rule `root`. Throws moevk::Error(INVALID_ARGUMENT) naming
  // the line and column of a syntax error, a rule used but not defined or defined twice, a
  // missing root, left recursion (a rule that can reach itself before reading a character, which
  // no stack machine can expand), or a grammar past the size limits.
  static std::shared_ptr<const Grammar> parse(std::string_view text, std::string_view root = "root");

  struct Range {
    uint32_t lo, hi;  // code points, inclusive
  };
  enum class Kind : uint8_t { End, Chars, Rule };
  struct Element {
    Kind kind;
    uint32_t index;  // Chars: into sets(); Rule: into rule_starts()
  };

  // Every alternative of every rule laid end to end, each closed by an End element.
  const std::vector<Element>& elements() const { return elements_; }
  // Per rule, the positions in elements() where its alternatives begin.
  const std::vector<std::vector<uint32_t>>& rule_starts() const { return rule_starts_; }
  const std::vector<std::vector<Range>>& sets() const { return sets_; }  // sorted, disjoint
  const std::vector<std::string>& rule_names() const { return rule_names_; }
  uint32_t root() const { return root_; }

  bool set_has(uint32_t set, uint32_t cp) const;
  bool set_meets(uint32_t set, uint32_t lo, uint32_t hi) const;  // holds a code point in [lo, hi]

  // The limits a parsed grammar keeps: elements after repetitions are expanded, and the bound
  // of one {m,n}.
  static constexpr size_t kMaxElements = 1u << 20;
  static constexpr uint32_t kMaxRepeat = 10000;

 private:
  friend class GrammarBuilder;
  std::vector<Element> elements_;
  std::vector<std::vector<uint32_t>> rule_starts_;
  std::vector<std::vector<Range>> sets_;
  std::vector<std::string> rule_names_;
  uint32_t root_ = 0;
};

// Where a text stands in a grammar. Text comes as bytes, which may end inside a UTF-8 character
// (tokens often do): the matcher keeps those bytes and admits them while some character they can
// begin is allowed.
class GrammarMatcher {
 public:
  explicit GrammarMatcher(std::shared_ptr<const Grammar> grammar);

  // Whether `bytes` can follow the text so far (the empty string can).
  bool allows(std::string_view bytes) const;
  // Appends `bytes` when allowed (returns true); otherwise returns false and changes nothing.
  bool accept(std::string_view bytes);
  // The text so far is a sentence of the grammar (it may also go on).
  bool accepting() const;
  // The text is a sentence and nothing can follow it.
  bool complete() const;
  // The bytes of a UTF-8 character begun but not finished.
  const std::string& partial() const { return partial_; }
  // A readable account of what may come next ("one of [0-9], \"}\""), for error messages.
  std::string expected() const;
  // allows() for many texts at once: `texts` sorted bytewise, `shared[i]` the length of the prefix
  // texts[i] shares with texts[i - 1] (0 for the first). A prefix is read once for every text
  // that begins with it, and a refused one refuses them all, so a vocabulary costs about the
  // characters of the distinct prefixes still allowed, not of every token. allowed[i] is set.
  void allows_sorted(const std::vector<std::string_view>& texts, const std::vector<uint32_t>& shared,
                     std::vector<uint8_t>& allowed) const;

  // The limit on readings kept at once; a grammar that needs more (a text read in that many ways
  // at one point) fails with INVALID_ARGUMENT rather than slowing generation to a crawl.
  static constexpr size_t kMaxStacks = 4096;

  using Stack = std::vector<uint32_t>;  // positions in Grammar::elements(), top last

 private:
  bool step(const std::vector<Stack>& from, uint32_t cp, std::vector<Stack>& to) const;
  bool partial_fits(const std::vector<Stack>& stacks, std::string_view prefix) const;
  bool run(std::string_view bytes, std::vector<Stack>* out, std::string* partial_out) const;

  std::shared_ptr<const Grammar> grammar_;
  std::vector<Stack> stacks_;
  std::string partial_;
};

// Code points and the expansion of stacks, shared by the matcher and its tests.
void expand_stack(const Grammar& grammar, GrammarMatcher::Stack stack, std::vector<GrammarMatcher::Stack>& out);

}  // namespace moevk::generate
