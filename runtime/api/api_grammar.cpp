// C API: grammars for constrained generation (moevk_grammar_*, moevk_json_schema_to_grammar);
// moevk_sample_grammar lives with the sampler, in api_context.cpp.
#include "api/api_internal.hpp"
#include "api/handles.hpp"
#include "generate/json_schema.hpp"

using moevk::api::guard;
using moevk::api::invalid_argument;

moevk::generate::TokenGrammar moevk::api::make_token_grammar(const moevk_model& model, const char* gbnf,
                                                             const char* json_schema, const char* trigger,
                                                             const char* caller) {
  if (gbnf && json_schema)
    throw moevk::Error(MOEVK_ERROR_INVALID_ARGUMENT, std::string(caller) + ": grammar and json_schema are both set; give one");
  if (!gbnf && !json_schema)
    throw moevk::Error(MOEVK_ERROR_INVALID_ARGUMENT,
                       std::string(caller) + (trigger ? ": a grammar_trigger without a grammar or json_schema"
                                                      : ": neither a grammar nor a json_schema"));
  if (trigger && !*trigger)
    throw moevk::Error(MOEVK_ERROR_INVALID_ARGUMENT, std::string(caller) + ": grammar_trigger is empty");
  auto grammar = moevk::generate::Grammar::parse(gbnf ? std::string(gbnf) : moevk::generate::json_schema_to_grammar(json_schema));
  std::call_once(model.token_texts_once, [&] { model.token_texts = moevk::generate::TokenTexts::of(*model.tokenizer); });
  return moevk::generate::TokenGrammar(std::move(grammar), model.token_texts, trigger ? trigger : "");
}

extern "C" {

moevk_status moevk_json_schema_to_grammar(const char* schema_json, char** grammar_out) {
  if (!schema_json || !grammar_out) return invalid_argument("moevk_json_schema_to_grammar: NULL argument");
  return guard([&] { *grammar_out = moevk::api::to_c_string(moevk::generate::json_schema_to_grammar(schema_json)); });
}

moevk_status moevk_grammar_create(const moevk_model* model, const char* grammar, const char* json_schema,
                                  const char* trigger, moevk_grammar** grammar_out) {
  if (!model || !grammar_out) return invalid_argument("moevk_grammar_create: NULL argument");
  *grammar_out = nullptr;
  return guard(
      [&] {
        auto g = std::make_unique<moevk_grammar>();
        g->model = model;
        g->grammar = std::make_unique<moevk::generate::TokenGrammar>(
            moevk::api::make_token_grammar(*model, grammar, json_schema, trigger, "moevk_grammar_create"));
        *grammar_out = g.release();
      },
      model->last_error);
}

void moevk_grammar_free(moevk_grammar* grammar) { delete grammar; }

const char* moevk_grammar_last_error(const moevk_grammar* grammar) {
  return grammar ? grammar->last_error.c_str() : "";
}

int moevk_grammar_allows(const moevk_grammar* grammar, int32_t token) {
  if (!grammar) return 0;
  bool allows = false;
  // A grammar too ambiguous to follow further allows nothing (moevk_grammar_accept says why).
  const moevk_status status = guard([&] { allows = grammar->grammar->allows(token); });
  return status == MOEVK_OK && allows ? 1 : 0;
}

moevk_status moevk_grammar_accept(moevk_grammar* grammar, int32_t token) {
  if (!grammar) return invalid_argument("moevk_grammar_accept: grammar is NULL");
  return guard([&] { grammar->grammar->accept(token); }, &grammar->last_error);
}

int moevk_grammar_is_complete(const moevk_grammar* grammar) {
  return grammar && grammar->grammar->complete() ? 1 : 0;
}

}  // extern "C"
