// GBNF grammars: the parser's errors, the matcher on hand-written cases, and random regular
// grammars checked against std::regex (an independent matcher) on random and generated strings.
#include <gtest/gtest.h>

#include <random>
#include <regex>

#include "common/error.hpp"
#include "generate/grammar.hpp"
#include "generate/token_grammar.hpp"

using moevk::generate::Grammar;
using moevk::generate::GrammarMatcher;
using moevk::generate::TokenGrammar;
using moevk::generate::TokenTexts;

namespace {

std::string parse_error(const std::string& text) {
  try {
    Grammar::parse(text);
  } catch (const moevk::Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_ARGUMENT);
    return e.what();
  }
  return "(parsed)";
}

// Whether the whole of `text` is a sentence, fed in one piece.
bool matches(const std::string& grammar, const std::string& text) {
  GrammarMatcher m(Grammar::parse(grammar));
  return m.accept(text) && m.accepting();
}

}  // namespace

TEST(GrammarParse, ErrorsNameWhatAndWhere) {
  EXPECT_EQ(parse_error("root ::= item\n"), "grammar: line 1, column 10: rule \"item\" is used but not defined");
  EXPECT_EQ(parse_error("start ::= \"a\"\n"), "grammar: no rule \"root\" (the start rule)");
  EXPECT_EQ(parse_error("root ::= \"a\"\nroot ::= \"b\"\n"), "grammar: line 2, column 1: rule \"root\" is defined twice");
  EXPECT_EQ(parse_error("root ::= \"abc\n"), "grammar: line 1, column 10: unterminated string literal");
  EXPECT_EQ(parse_error("root ::= [a-z\n"), "grammar: line 1, column 10: unterminated character class");
  EXPECT_EQ(parse_error("root ::= \"\\q\""), "grammar: line 1, column 11: unknown escape \"\\q\"");
  EXPECT_EQ(parse_error("root ::= [z-a]"), "grammar: line 1, column 10: character range with its end before its start");
  EXPECT_EQ(parse_error("root ::= \"a\"{3,2}"), "grammar: line 1, column 13: repetition {m,n} with n below m");
  EXPECT_EQ(parse_error("root ::= \"a\"{20000}"), "grammar: line 1, column 13: repetition bound above 10000");
  EXPECT_EQ(parse_error("root ::= * \"a\""), "grammar: line 1, column 10: \"*\" with nothing before it to repeat");
  EXPECT_EQ(parse_error("root ::= (\"a\" | \"b\""), "grammar: line 1, column 10: \"(\" without its \")\"");
  EXPECT_EQ(parse_error("root ::= \"a\")"), "grammar: line 1, column 13: unexpected \")\"");
  EXPECT_EQ(parse_error("root \"a\""), "grammar: line 1, column 6: expected \"::=\" after rule name \"root\"");
  EXPECT_EQ(parse_error("root ::= <think>"),
            "grammar: line 1, column 10: token references (<...>) are not supported; write the token's text as a literal");
  EXPECT_EQ(parse_error("root ::= [^\\x00-\\U0010FFFF]"), "grammar: line 1, column 10: character class that matches nothing");
  EXPECT_EQ(parse_error("root ::= \"\xC3\xA9\xFF\""), "grammar: line 1, column 13: invalid UTF-8");
  EXPECT_NE(parse_error("root ::= " + std::string(300, '(') + "\"a\"" + std::string(300, ')')).find("groups nested more than 200 deep"),
            std::string::npos);
}

TEST(GrammarParse, LeftRecursionIsRefusedWithItsCycle) {
  EXPECT_EQ(parse_error("root ::= root \"a\" | \"b\""),
            "grammar: left recursion (a rule reaching itself before any character): root -> root");
  EXPECT_EQ(parse_error("root ::= x \"a\"\nx ::= y | \"b\"\ny ::= root \"c\""),
            "grammar: left recursion (a rule reaching itself before any character): root -> x -> y -> root");
  // Through a rule that can match nothing.
  EXPECT_EQ(parse_error("root ::= ws root \"a\" | \"b\"\nws ::= \" \"*"),
            "grammar: left recursion (a rule reaching itself before any character): root -> root");
  // Right recursion is fine: the matcher reads it a character at a time.
  EXPECT_TRUE(matches("root ::= \"a\" root | \"\"", "aaaa"));
}

TEST(GrammarParse, TooLargeExpansionsAreRefused) {
  // Groups become rules, so nested bounds stay small; many bounded items in a row do not.
  EXPECT_EQ(parse_error("root ::= (((\"a\"{10000}){10000}){10000})"), "(parsed)");
  std::string wide = "root ::=";
  for (int i = 0; i < 110; ++i) wide += " \"a\"{10000}";
  EXPECT_EQ(parse_error(wide), "grammar: more than 1048576 elements once repetitions are expanded");
}

TEST(GrammarMatch, LiteralsClassesAndRepetitions) {
  const std::string g = R"(# a comment
root   ::= "id=" digits ("," digits)* suffix?   # trailing comment
digits ::= [0-9]+
suffix ::= ";" [^;\n]{1,3}
)";
  EXPECT_TRUE(matches(g, "id=1"));
  EXPECT_TRUE(matches(g, "id=12,3,456"));
  EXPECT_TRUE(matches(g, "id=7;abc"));
  EXPECT_TRUE(matches(g, "id=7;\xC3\xA9"));  // é is one character
  EXPECT_FALSE(matches(g, "id="));
  EXPECT_FALSE(matches(g, "id=1,"));
  EXPECT_FALSE(matches(g, "id=7;abcd"));
  EXPECT_FALSE(matches(g, "id=7;"));
  EXPECT_FALSE(matches(g, "id=7;a;"));
  EXPECT_FALSE(matches(g, "ID=7"));
  EXPECT_TRUE(matches("root ::= . . \"\\n\"", "x\xE2\x82\xAC\n"));  // any character, € included
  EXPECT_TRUE(matches("root ::= [\\x41-\\x43\\u00e9] \"\\U0001F600\"", "\xC3\xA9\xF0\x9F\x98\x80"));
  EXPECT_TRUE(matches("root ::= \"a\"{2} \"b\"{1,} \"c\"{,2}", "aabbbcc"));
  EXPECT_FALSE(matches("root ::= \"a\"{2} \"b\"{1,} \"c\"{,2}", "aabccc"));
  EXPECT_TRUE(matches("root ::= \"ab\"* \"c\"", "ababc"));  // a literal repeats as a whole
  EXPECT_FALSE(matches("root ::= \"ab\"* \"c\"", "abbc"));
}

TEST(GrammarMatch, RulesGoOnAcrossLinesWithABar) {
  const std::string g = "root ::=\n  \"yes\"\n  | \"no\"\n\n  | \"maybe\"\nother ::= \"x\"\n";
  EXPECT_TRUE(matches(g, "no"));
  EXPECT_TRUE(matches(g, "maybe"));
  EXPECT_FALSE(matches(g, "x"));
  const std::string nested = "root ::= (\n  \"a\"\n  \"b\"\n)";
  EXPECT_TRUE(matches(nested, "ab"));
}

TEST(GrammarMatch, PrefixesAcceptingAndComplete) {
  GrammarMatcher m(Grammar::parse(R"(root ::= "{" [0-9]+ "}" | "x" [0-9]*)"));
  EXPECT_FALSE(m.accepting());
  EXPECT_TRUE(m.allows(""));
  EXPECT_TRUE(m.allows("{1"));
  EXPECT_FALSE(m.allows("{}"));
  EXPECT_FALSE(m.accept("y"));  // refused: nothing changes
  EXPECT_EQ(m.expected(), "\"{\", \"x\"");
  ASSERT_TRUE(m.accept("{1"));
  EXPECT_FALSE(m.accepting());
  EXPECT_EQ(m.expected(), "[0-9], \"}\"");
  ASSERT_TRUE(m.accept("2}"));
  EXPECT_TRUE(m.accepting());
  EXPECT_TRUE(m.complete());
  EXPECT_EQ(m.expected(), "the end of the text");
  EXPECT_FALSE(m.allows("3"));

  GrammarMatcher open(Grammar::parse(R"(root ::= "x" [0-9]*)"));
  ASSERT_TRUE(open.accept("x"));
  EXPECT_TRUE(open.accepting());
  EXPECT_FALSE(open.complete());  // digits may follow
}

TEST(GrammarMatch, CharactersSplitAcrossPieces) {
  GrammarMatcher m(Grammar::parse(R"(root ::= "\u00e9" [\u4e00-\u9fff] "!")"));
  ASSERT_TRUE(m.accept("\xC3"));  // the first byte of é
  EXPECT_FALSE(m.accepting());
  EXPECT_EQ(m.partial(), "\xC3");
  EXPECT_FALSE(m.allows("\xA8"));  // è, not é
  ASSERT_TRUE(m.accept("\xA9\xE4"));
  EXPECT_FALSE(m.allows("\x80\x80"));  // U+4000: below the class
  EXPECT_TRUE(m.allows("\xB8"));       // could still become U+4E00..U+4E3F
  ASSERT_TRUE(m.accept("\xB8\x80!"));
  EXPECT_TRUE(m.complete());

  GrammarMatcher any(Grammar::parse("root ::= .*"));
  EXPECT_FALSE(any.allows("\xFF"));          // never UTF-8
  EXPECT_FALSE(any.allows("\xC0\x80"));      // overlong
  EXPECT_FALSE(any.allows("\xED\xA0"));      // a surrogate, whatever follows
  EXPECT_FALSE(any.allows("\xE2\x28"));      // a lead byte without its continuation
  EXPECT_TRUE(any.allows("\xF0\x9F"));
}

TEST(GrammarMatch, StacksStayFlatOverLongRepetitions) {
  GrammarMatcher m(Grammar::parse(R"(root ::= ("a" | "b")* "c")"));
  for (int i = 0; i < 20000; ++i) ASSERT_TRUE(m.accept(i % 3 ? "a" : "b"));
  ASSERT_TRUE(m.accept("c"));
  EXPECT_TRUE(m.complete());
}

TEST(GrammarMatch, AmbiguityPastTheLimitIsAnError) {
  // Every split of a run of a's into words: the number of readings doubles per character.
  GrammarMatcher m(Grammar::parse(R"(root ::= w+
w ::= "a" | "a" w "b"? | "a" w "c"?)"));
  try {
    for (int i = 0; i < 64; ++i) m.accept("a");
    FAIL() << "no error";
  } catch (const moevk::Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("make the grammar less ambiguous"), std::string::npos);
  }
}

// Random regular grammars over {a, b, c}, written both as GBNF and as an ECMAScript regex.
namespace {

struct Rendered {
  std::string gbnf, regex;
  bool nullable;
};

std::string join(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (const auto p : parts) out.append(p);
  return out;
}

class RandomGrammar {
 public:
  explicit RandomGrammar(uint32_t seed) : rng_(seed) {}

  Rendered expr(int depth) {
    std::uniform_int_distribution<int> pick(0, depth <= 0 ? 1 : 6);
    switch (pick(rng_)) {
      case 0: {
        std::string s;
        for (int n = 1 + int(rng_() % 3); n > 0; --n) s += char('a' + rng_() % 3);
        return {join({"\"", s, "\""}), join({"(?:", s, ")"}), false};
      }
      case 1: {
        static const char* classes[] = {"[ab]", "[^a]", "[a-b]", "[c]"};  // the same in both
        const char* c = classes[rng_() % 4];
        return {c, c, false};
      }
      case 2: {
        Rendered a = expr(depth - 1), b = expr(depth - 1);
        return {join({"(", a.gbnf, " | ", b.gbnf, ")"}), join({"(?:", a.regex, "|", b.regex, ")"}),
                a.nullable || b.nullable};
      }
      case 3: {
        Rendered a = expr(depth - 1), b = expr(depth - 1);
        return {join({"(", a.gbnf, " ", b.gbnf, ")"}), join({"(?:", a.regex, b.regex, ")"}), a.nullable && b.nullable};
      }
      case 4: {
        Rendered a = expr(depth - 1);
        if (a.nullable) return a;  // a repeated nullable item is left recursion to the parser
        const char* op = rng_() % 2 ? "*" : "+";
        return {join({"(", a.gbnf, ")", op}), join({"(?:", a.regex, ")", op}), op[0] == '*'};
      }
      case 5: {
        Rendered a = expr(depth - 1);
        return {join({"(", a.gbnf, ")?"}), join({"(?:", a.regex, ")?"}), true};
      }
      default: {
        Rendered a = expr(depth - 1);
        const int m = int(rng_() % 3), n = m + int(rng_() % 3);
        const std::string bounds = join({"{", std::to_string(m), ",", std::to_string(n), "}"});
        return {join({"(", a.gbnf, ")", bounds}), join({"(?:", a.regex, ")", bounds}), a.nullable || m == 0};
      }
    }
  }

  std::string random_string() {
    std::string s;
    for (int n = int(rng_() % 9); n > 0; --n) s += char('a' + rng_() % 4);  // 'd' is never allowed
    return s;
  }

  std::mt19937 rng_;
};

}  // namespace

TEST(GrammarMatch, AgreesWithStdRegexOnRandomRegularGrammars) {
  int positives = 0, checked = 0;
  for (uint32_t seed = 1; seed <= 300; ++seed) {
    RandomGrammar gen(seed);
    const Rendered r = gen.expr(4);
    const std::string grammar = "root ::= " + r.gbnf + "\n";
    const std::regex re(r.regex, std::regex::ECMAScript);
    auto grammar_ptr = Grammar::parse(grammar);
    for (int i = 0; i < 60; ++i) {
      const std::string s = gen.random_string();
      const bool expected = std::regex_match(s, re);
      // Fed a character at a time: each prefix must be allowed exactly while a sentence
      // still extends it, which a full match implies for every prefix of s.
      GrammarMatcher m(grammar_ptr);
      bool fed = true;
      for (char c : s)
        if (!m.accept(std::string(1, c))) {
          fed = false;
          break;
        }
      const bool got = fed && m.accepting();
      ASSERT_EQ(got, expected) << "grammar " << grammar << "regex " << r.regex << "\ntext \"" << s << "\"";
      positives += expected;
      ++checked;
    }
  }
  EXPECT_GT(positives, checked / 20);  // the random strings do reach sentences
}

TEST(TokenGrammar, TokensPartialCharactersAndTheEnd) {
  auto tokens = TokenTexts::make({"", "{", "\"a\"", ":", "1", "}", "\xC3", "\xA9", "1}", "x", ""},
                                 {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  TokenGrammar g(Grammar::parse(R"(root ::= "{" "\"a\"" ":" ([0-9]+ | "\u00e9") "}")"), tokens);
  EXPECT_FALSE(g.allows(0));   // a control token: no text
  EXPECT_FALSE(g.allows(10));  // the end: not yet
  EXPECT_TRUE(g.allows(1));
  EXPECT_FALSE(g.allows(-1));
  EXPECT_FALSE(g.allows(11));
  g.accept(1);
  g.accept(2);
  g.accept(3);
  std::vector<float> logits(12, 1.0f);
  EXPECT_EQ(g.mask(logits), 3u);  // "1", "\xC3" and "1}"
  for (int i = 0; i < 12; ++i) EXPECT_EQ(std::isinf(logits[i]), !(i == 4 || i == 6 || i == 8)) << i;
  g.accept(6);
  EXPECT_TRUE(g.allows(7));
  EXPECT_FALSE(g.allows(4));
  g.accept(7);
  EXPECT_FALSE(g.complete());
  g.accept(5);
  EXPECT_TRUE(g.complete());
  EXPECT_TRUE(g.allows(10));  // the end of generation, now the text is whole
  try {
    g.accept(9);
    FAIL() << "accepted";
  } catch (const moevk::Error& e) {
    EXPECT_STREQ(e.what(), "grammar: token 9 does not continue the text; the grammar expects the end of the text");
  }
}

TEST(TokenGrammar, ALazyGrammarWaitsForItsTrigger) {
  auto tokens = TokenTexts::make({"a", "<t", "ool>", "<tool>{", "<tool>x", "{", "}", "x", ""},
                                 {0, 0, 0, 0, 0, 0, 0, 0, 1});
  const auto grammar = Grammar::parse(R"(root ::= "{" "x"* "}")");
  TokenGrammar g(grammar, tokens, "<tool>");
  EXPECT_TRUE(g.waiting());
  for (int t : {0, 1, 3, 5, 6, 7, 8}) EXPECT_TRUE(g.allows(t)) << t;  // free text, the end included
  EXPECT_FALSE(g.allows(4));  // completes the trigger, then "x": not the grammar's start
  std::vector<float> logits(9, 0.0f);
  EXPECT_EQ(g.mask(logits), 8u);
  EXPECT_TRUE(std::isinf(logits[4]));
  g.accept(0);
  g.accept(1);  // "<t": the trigger's start, kept across tokens
  EXPECT_TRUE(g.waiting());
  EXPECT_FALSE(g.complete());
  g.accept(2);  // "ool>" completes it
  EXPECT_FALSE(g.waiting());
  EXPECT_FALSE(g.allows(8));  // now the end waits for a sentence
  EXPECT_FALSE(g.allows(0));
  g.accept(5);
  g.accept(7);
  g.accept(6);
  EXPECT_TRUE(g.complete());

  // A token that completes the trigger and begins the grammar's text at once.
  TokenGrammar h(grammar, tokens, "<tool>");
  h.accept(3);
  EXPECT_FALSE(h.waiting());
  EXPECT_TRUE(h.allows(6));
  EXPECT_FALSE(h.allows(5));
}
