// Constrained generation through the C API: moevk_generate_params.grammar / json_schema on the
// tiny Qwen2-MoE (random weights) with a byte-level vocabulary of every printable ASCII character
// and a few merged tokens, so that random weights write arbitrary text unless the grammar holds
// them.
#include <gtest/gtest.h>

#include <cstddef>
#include <filesystem>
#include <string>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "moevk.h"
#include "tiny_model_files.hpp"

namespace {

struct Generated {
  moevk_status status = MOEVK_OK;
  std::string text, error;
  moevk_generate_result result{};
};

class GrammarApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::string(::testing::TempDir()) + "/grammar-api-" + std::to_string(getpid());
    // Byte-level BPE: '!'..'~' are themselves, "Ġ" a space, "Ċ" a newline.
    nlohmann::json vocab = nlohmann::json::object();
    int id = 0;
    for (char c = '!'; c <= '~'; ++c) vocab[std::string(1, c)] = id++;
    vocab["\xC4\xA0"] = id++;
    vocab["\xC4\x8A"] = id++;
    const std::vector<std::pair<std::string, std::string>> merges = {
        {"{", "\""}, {"\"", ":"}, {"\"", ","}, {"t", "r"}, {"u", "e"}, {"tr", "ue"}, {"\xC4\xA0", "\""}};
    nlohmann::json merge_list = nlohmann::json::array();
    for (const auto& [a, b] : merges) {
      vocab[a + b] = id++;
      merge_list.push_back(a + " " + b);
    }
    eos_ = id;
    nlohmann::json tokenizer = {
        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}}},
        {"pre_tokenizer", {{"type", "ByteLevel"}}},
        {"added_tokens", {{{"id", eos_}, {"content", "<|endoftext|>"}, {"special", true}}}}};
    const std::string gguf = dir_ + "/ascii.gguf";
    ASSERT_EQ(moevk::test::convert_tiny_qwen2moe(dir_, tokenizer.dump(), R"({"eos_token": "<|endoftext|>"})", gguf),
              MOEVK_OK)
        << moevk_last_error();
    ASSERT_EQ(moevk_model_load(gguf.c_str(), nullptr, &model_), MOEVK_OK) << moevk_last_error();
  }
  static void TearDownTestSuite() {
    moevk_model_free(model_);
    model_ = nullptr;
    std::filesystem::remove_all(dir_);
  }
  void SetUp() override {
    moevk_context_params cp = moevk_context_default_params();
    cp.n_ctx = 512;
    ASSERT_EQ(moevk_context_create(model_, &cp, &ctx_), MOEVK_OK) << moevk_last_error();
  }
  void TearDown() override { moevk_context_free(ctx_); }

  Generated generate(moevk_generate_params g) {
    Generated out;
    g.on_token = [](const char* text, size_t len, int32_t, void* user) {
      static_cast<std::string*>(user)->append(text, len);
      return 0;
    };
    g.user_data = &out.text;
    out.result.struct_size = sizeof out.result;
    out.status = moevk_generate(ctx_, &g, &out.result);
    if (out.status != MOEVK_OK) out.error = moevk_context_last_error(ctx_);
    return out;
  }
  static moevk_generate_params sampled(uint64_t seed, const char* prompt = "Hi") {
    moevk_generate_params g = moevk_generate_default_params();
    g.prompt = prompt;
    g.max_tokens = 200;
    g.sampling.temperature = 1.0f;
    g.sampling.top_k = 0;
    g.sampling.top_p = 1.0f;
    g.sampling.min_p = 0.0f;
    g.sampling.seed = seed;
    return g;
  }

  static inline moevk_model* model_ = nullptr;
  static inline std::string dir_;
  static inline int eos_ = -1;
  moevk_context* ctx_ = nullptr;
};

// moevk_context_reset starts the seeded stream again, so a reset context writes what a new one
// does; without it the stream goes on (the draws of the next call are new ones). Both the GPU's
// chained sampling and the host's under a grammar.
TEST_F(GrammarApi, AResetContextSamplesAsANewOne) {
  for (const char* grammar : {static_cast<const char*>(nullptr), "root ::= [a-z ]+"}) {
    SCOPED_TRACE(grammar ? grammar : "no grammar");
    moevk_generate_params p = sampled(5);
    p.max_tokens = 24;
    p.ignore_eos = 1;
    p.grammar = grammar;
    const Generated first = generate(p);
    ASSERT_EQ(first.status, MOEVK_OK) << first.error;
    ASSERT_EQ(moevk_context_reset(ctx_), MOEVK_OK);
    const Generated again = generate(p);
    ASSERT_EQ(again.status, MOEVK_OK) << again.error;
    EXPECT_EQ(again.text, first.text);
    moevk_context_free(ctx_);
    moevk_context_params cp = moevk_context_default_params();
    cp.n_ctx = 512;
    ASSERT_EQ(moevk_context_create(model_, &cp, &ctx_), MOEVK_OK) << moevk_last_error();
    const Generated fresh = generate(p);
    ASSERT_EQ(fresh.status, MOEVK_OK) << fresh.error;
    EXPECT_EQ(fresh.text, first.text);
    ASSERT_EQ(moevk_context_reset(ctx_), MOEVK_OK);
  }
}

TEST_F(GrammarApi, UnconstrainedTextIsNotJson) {
  // The premise of the tests below: without a grammar these weights write no JSON.
  moevk_generate_params p = sampled(1);
  p.max_tokens = 40;
  p.ignore_eos = 1;
  const Generated g = generate(p);
  ASSERT_EQ(g.status, MOEVK_OK) << g.error;
  EXPECT_FALSE(nlohmann::json::accept(g.text)) << g.text;
}

TEST_F(GrammarApi, JsonSchemaOutputsMeetTheSchema) {
  const char* schema = R"({"type": "object", "properties": {
      "name": {"type": "string", "maxLength": 8},
      "ok": {"type": "boolean"},
      "n": {"type": "integer"},
      "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 3}},
    "required": ["name", "ok", "n"]})";
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    ASSERT_EQ(moevk_context_reset(ctx_), MOEVK_OK);
    moevk_generate_params p = sampled(seed);
    p.json_schema = schema;
    const Generated g = generate(p);
    ASSERT_EQ(g.status, MOEVK_OK) << g.error;
    EXPECT_EQ(g.result.stop_reason, MOEVK_STOP_GRAMMAR) << g.text;
    const auto doc = nlohmann::json::parse(g.text);
    ASSERT_TRUE(doc.is_object()) << g.text;
    ASSERT_TRUE(doc.contains("name") && doc["name"].is_string()) << g.text;
    EXPECT_LE(doc["name"].get<std::string>().size(), 8u);
    ASSERT_TRUE(doc.contains("ok") && doc["ok"].is_boolean()) << g.text;
    ASSERT_TRUE(doc.contains("n") && doc["n"].is_number_integer()) << g.text;
    for (const auto& [key, value] : doc.items()) {
      EXPECT_TRUE(key == "name" || key == "ok" || key == "n" || key == "tags") << key;
      if (key == "tags") {
        ASSERT_TRUE(value.is_array());
        EXPECT_LE(value.size(), 3u);
        for (const auto& t : value) EXPECT_TRUE(t == "a" || t == "b") << t;
      }
    }
  }
}

TEST_F(GrammarApi, GreedyGrammarStopsWhenCompleteAndTheContextGoesOn) {
  moevk_generate_params p = moevk_generate_default_params();
  p.prompt = "Answer:";
  p.max_tokens = 100;
  p.sampling.temperature = 0;
  p.grammar = R"(root ::= ("yes" | "no") " because " [a-z]{2,6} "."
)";
  const Generated g = generate(p);
  ASSERT_EQ(g.status, MOEVK_OK) << g.error;
  EXPECT_EQ(g.result.stop_reason, MOEVK_STOP_GRAMMAR);
  const bool yes = g.text.rfind("yes because ", 0) == 0, no = g.text.rfind("no because ", 0) == 0;
  EXPECT_TRUE(yes || no) << g.text;
  EXPECT_EQ(g.text.back(), '.');
  // The grammar held that call only; the text then goes on freely.
  moevk_generate_params more = moevk_generate_default_params();
  more.prompt = "";
  more.max_tokens = 5;
  more.ignore_eos = 1;
  more.sampling.temperature = 0;
  const Generated next = generate(more);
  ASSERT_EQ(next.status, MOEVK_OK) << next.error;
  EXPECT_EQ(next.result.n_generated, 5);
}

TEST_F(GrammarApi, TheEndOfGenerationWaitsForAWholeSentence) {
  // Digits may go on after the first, so the grammar never completes by itself: the model ends
  // (its end-of-generation token is allowed once a digit is there) or max_tokens does.
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    ASSERT_EQ(moevk_context_reset(ctx_), MOEVK_OK);
    moevk_generate_params p = sampled(seed);
    p.max_tokens = 12;
    p.grammar = "root ::= [0-9]+";
    const Generated g = generate(p);
    ASSERT_EQ(g.status, MOEVK_OK) << g.error;
    ASSERT_FALSE(g.text.empty());
    EXPECT_EQ(g.text.find_first_not_of("0123456789"), std::string::npos) << g.text;
    EXPECT_TRUE(g.result.stop_reason == MOEVK_STOP_EOG || g.result.stop_reason == MOEVK_STOP_MAX_TOKENS);
  }
}

TEST_F(GrammarApi, BadGrammarsAreNamedBeforeAnythingRuns) {
  const uint32_t before = moevk_context_n_past(ctx_);
  moevk_generate_params p = sampled(1);
  p.grammar = "root ::= item";
  Generated g = generate(p);
  EXPECT_EQ(g.status, MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(g.error, "grammar: line 1, column 10: rule \"item\" is used but not defined");
  EXPECT_EQ(moevk_context_n_past(ctx_), before);

  p.grammar = nullptr;
  p.json_schema = R"({"type": "strng"})";
  g = generate(p);
  EXPECT_EQ(g.status, MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(g.error.find("json_schema: /type: unknown type \"strng\""), std::string::npos) << g.error;

  p.json_schema = "{";
  g = generate(p);
  EXPECT_EQ(g.status, MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(g.error.find("json_schema is not JSON"), std::string::npos) << g.error;

  p.grammar = "root ::= \"a\"";
  p.json_schema = "{}";
  g = generate(p);
  EXPECT_EQ(g.status, MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(g.error, "moevk_generate: grammar and json_schema are both set; give one");
  EXPECT_EQ(moevk_context_n_past(ctx_), before);
}

TEST_F(GrammarApi, AGrammarNoTokenCanFollowIsAnErrorAndTheContextStaysUsable) {
  // "é" is in no token of this vocabulary.
  moevk_generate_params p = sampled(1);
  p.grammar = "root ::= \"ok\" \"\\u00e9\"";
  Generated g = generate(p);
  EXPECT_EQ(g.status, MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(g.error, "grammar: no token of the vocabulary continues the text; the grammar expects \"\xC3\xA9\"");
  moevk_generate_params plain = sampled(2);
  plain.max_tokens = 4;
  plain.ignore_eos = 1;
  g = generate(plain);
  ASSERT_EQ(g.status, MOEVK_OK) << g.error;
  EXPECT_EQ(g.result.n_generated, 4);
}

TEST_F(GrammarApi, OlderParamsLeaveTheGrammarUnread) {
  moevk_generate_params p = sampled(3);
  p.struct_size = offsetof(moevk_generate_params, user_data) + sizeof p.user_data;
  p.grammar = "this is not a grammar";
  p.json_schema = "nor a schema";
  p.max_tokens = 3;
  p.ignore_eos = 1;
  const Generated g = generate(p);
  ASSERT_EQ(g.status, MOEVK_OK) << g.error;
  EXPECT_EQ(g.result.n_generated, 3);
}

TEST_F(GrammarApi, SchemaToGrammarIsReadable) {
  char* gbnf = nullptr;
  ASSERT_EQ(moevk_json_schema_to_grammar(R"({"type": "object", "properties": {"a": {"type": "integer"}}})", &gbnf),
            MOEVK_OK)
      << moevk_last_error();
  const std::string text = gbnf;
  moevk_free_string(gbnf);
  EXPECT_NE(text.find("root ::="), std::string::npos) << text;
  // The same grammar given as GBNF holds generation as the schema does.
  moevk_generate_params p = sampled(5);
  p.grammar = text.c_str();
  const Generated g = generate(p);
  ASSERT_EQ(g.status, MOEVK_OK) << g.error;
  const auto doc = nlohmann::json::parse(g.text);
  EXPECT_TRUE(doc.is_object() && (doc.empty() || doc["a"].is_number_integer())) << g.text;

  EXPECT_EQ(moevk_json_schema_to_grammar(nullptr, &gbnf), MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(moevk_json_schema_to_grammar("{\"pattern\": \"a+\"}", &gbnf), MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(moevk_last_error()).find("pattern"), std::string::npos) << moevk_last_error();
}

// A caller's own loop: moevk_decode, moevk_sample_grammar, moevk_grammar_accept.
TEST_F(GrammarApi, OwnLoopWithAGrammarHandle) {
  moevk_grammar* grammar = nullptr;
  ASSERT_EQ(moevk_grammar_create(model_, nullptr, R"({"type": "array", "items": {"type": "integer"}, "minItems": 2,
      "maxItems": 4})", nullptr, &grammar), MOEVK_OK) << moevk_model_last_error(model_);
  std::vector<int32_t> prompt(8);
  size_t n_prompt = 0;
  ASSERT_EQ(moevk_tokenize(model_, "List:", 5, 0, 0, prompt.data(), prompt.size(), &n_prompt), MOEVK_OK)
      << moevk_last_error();
  ASSERT_EQ(moevk_decode(ctx_, prompt.data(), n_prompt, 0), MOEVK_OK) << moevk_context_last_error(ctx_);
  moevk_sampler_params sp = moevk_sampler_default_params();
  sp.temperature = 1.0f;
  sp.top_k = 0;
  sp.seed = 11;
  std::vector<int32_t> tokens;
  while (!moevk_grammar_is_complete(grammar) && tokens.size() < 200) {
    int32_t token = -1;
    ASSERT_EQ(moevk_sample_grammar(ctx_, &sp, grammar, &token), MOEVK_OK) << moevk_context_last_error(ctx_);
    ASSERT_TRUE(moevk_grammar_allows(grammar, token));
    ASSERT_EQ(moevk_grammar_accept(grammar, token), MOEVK_OK) << moevk_grammar_last_error(grammar);
    tokens.push_back(token);
    ASSERT_EQ(moevk_decode(ctx_, &token, 1, 0), MOEVK_OK) << moevk_context_last_error(ctx_);
  }
  ASSERT_TRUE(moevk_grammar_is_complete(grammar));
  char* text = nullptr;
  ASSERT_EQ(moevk_detokenize(model_, tokens.data(), tokens.size(), &text), MOEVK_OK) << moevk_last_error();
  const std::string out = text;
  moevk_free_string(text);
  const auto doc = nlohmann::json::parse(out);
  ASSERT_TRUE(doc.is_array()) << out;
  EXPECT_GE(doc.size(), 2u);
  EXPECT_LE(doc.size(), 4u);
  for (const auto& v : doc) EXPECT_TRUE(v.is_number_integer()) << out;

  // Done: nothing more is allowed, the end of generation is.
  EXPECT_FALSE(moevk_grammar_allows(grammar, 0));
  EXPECT_TRUE(moevk_grammar_allows(grammar, eos_));
  EXPECT_EQ(moevk_grammar_accept(grammar, 0), MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(moevk_grammar_last_error(grammar),
               "grammar: token 0 does not continue the text; the grammar expects the end of the text");
  moevk_grammar_free(grammar);
}

TEST_F(GrammarApi, GrammarHandlesRefuseBadArguments) {
  moevk_grammar* grammar = nullptr;
  EXPECT_EQ(moevk_grammar_create(model_, nullptr, nullptr, nullptr, &grammar), MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(moevk_model_last_error(model_), "moevk_grammar_create: neither a grammar nor a json_schema");
  EXPECT_EQ(moevk_grammar_create(model_, "root ::= \"a\"", "{}", nullptr, &grammar), MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(moevk_grammar_create(model_, "root ::= (", nullptr, nullptr, &grammar), MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(grammar, nullptr);
  EXPECT_EQ(moevk_grammar_create(nullptr, "root ::= \"a\"", nullptr, nullptr, &grammar), MOEVK_ERROR_INVALID_ARGUMENT);
  moevk_grammar_free(nullptr);
  EXPECT_EQ(moevk_grammar_allows(nullptr, 0), 0);
  EXPECT_EQ(moevk_grammar_accept(nullptr, 0), MOEVK_ERROR_INVALID_ARGUMENT);

  ASSERT_EQ(moevk_grammar_create(model_, "root ::= \"a\"+", nullptr, nullptr, &grammar), MOEVK_OK);
  int32_t token = -1;
  // No logits yet.
  EXPECT_EQ(moevk_sample_grammar(ctx_, nullptr, grammar, &token), MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(moevk_context_last_error(ctx_), "no logits to sample from: decode tokens first");
  EXPECT_FALSE(moevk_grammar_allows(grammar, -5));
  EXPECT_FALSE(moevk_grammar_allows(grammar, 1 << 20));
  EXPECT_FALSE(moevk_grammar_allows(grammar, eos_));  // no sentence yet
  moevk_grammar_free(grammar);
}

// A lazy grammar: tokens are the sampler's own until the trigger, here taken from what these
// weights write with the same seed while a trigger that never comes holds nothing; after it,
// the grammar holds the text.
TEST_F(GrammarApi, ALazyGrammarHoldsOnlyWhatFollowsItsTrigger) {
  moevk_generate_params free_run = sampled(7);
  free_run.max_tokens = 30;
  free_run.ignore_eos = 1;
  free_run.grammar = "root ::= \"a\"";
  free_run.grammar_trigger = "\x01";  // in no token: the grammar never starts
  const Generated plain = generate(free_run);
  ASSERT_EQ(plain.status, MOEVK_OK) << plain.error;
  ASSERT_GE(plain.text.size(), 4u) << plain.text;
  const std::string trigger = plain.text.substr(2, 2);
  const size_t first = plain.text.find(trigger);

  // A fresh context: a context's sampler keeps its seeded stream going across calls.
  moevk_context_free(ctx_);
  moevk_context_params cp = moevk_context_default_params();
  cp.n_ctx = 512;
  ASSERT_EQ(moevk_context_create(model_, &cp, &ctx_), MOEVK_OK) << moevk_last_error();
  moevk_generate_params lazy = sampled(7);
  lazy.max_tokens = 80;
  lazy.grammar = "root ::= \"=\" [0-9]{1,3} \";\"";
  lazy.grammar_trigger = trigger.c_str();
  const Generated g = generate(lazy);
  ASSERT_EQ(g.status, MOEVK_OK) << g.error;
  EXPECT_EQ(g.result.stop_reason, MOEVK_STOP_GRAMMAR) << g.text;
  const size_t at = g.text.find(trigger);
  ASSERT_EQ(at, first) << g.text;
  EXPECT_EQ(g.text.substr(0, at), plain.text.substr(0, at));  // before it: free, the same draws
  const std::string rest = g.text.substr(at + trigger.size());
  ASSERT_GE(rest.size(), 3u) << g.text;
  EXPECT_EQ(rest.front(), '=');
  EXPECT_EQ(rest.back(), ';');
  EXPECT_EQ(rest.substr(1, rest.size() - 2).find_first_not_of("0123456789"), std::string::npos) << rest;

  moevk_generate_params bad = lazy;
  bad.grammar = nullptr;
  EXPECT_EQ(generate(bad).error, "moevk_generate: a grammar_trigger without a grammar or json_schema");
  bad.grammar = "root ::= \"a\"";
  bad.grammar_trigger = "";
  EXPECT_EQ(generate(bad).error, "moevk_generate: grammar_trigger is empty");
}

}  // namespace
