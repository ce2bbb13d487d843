// What the opaque C handles hold.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "api/api_internal.hpp"
#include "generate/sampler.hpp"
#include "generate/token_grammar.hpp"
#include "generate/session.hpp"
#include "models/model.hpp"
#include "moevk.h"
#include "text/chat_stream.hpp"
#include "text/tokenizer.hpp"

struct moevk_model {
  std::unique_ptr<moevk::models::Model> model;
  std::unique_ptr<moevk::text::Tokenizer> tokenizer;
  // Per thread: the model's calls may run on several threads at once (see moevk.h).
  mutable moevk::api::PerThreadMessage last_error;
  // Every token's text for grammars, made by the first constrained generation (moevk::api::
  // token_texts); contexts on several threads share it.
  mutable std::once_flag token_texts_once;
  mutable std::shared_ptr<const moevk::generate::TokenTexts> token_texts;
};

// An answer read as it streams (moevk_chat_stream_*).
struct moevk_chat_stream {
  std::unique_ptr<moevk::text::ResponseStream> stream;
  std::string last_error;
};

// A grammar over a model's vocabulary, for a caller's own decode/sample loop.
struct moevk_grammar {
  const moevk_model* model = nullptr;
  std::unique_ptr<moevk::generate::TokenGrammar> grammar;
  std::string last_error;
};

namespace moevk::api {
// The grammar of GBNF text or of a JSON Schema (exactly one given; INVALID_ARGUMENT naming
// `caller` otherwise), lazy with a trigger (NULL: none), over the model's token texts (made once
// per model).
moevk::generate::TokenGrammar make_token_grammar(const moevk_model& model, const char* gbnf, const char* json_schema,
                                                 const char* trigger, const char* caller);
}  // namespace moevk::api

struct moevk_context {
  moevk_model* model = nullptr;
  std::unique_ptr<moevk::generate::Session> session;
  std::vector<int32_t> history;       // every token in the KV cache, in order
  // The last token moevk_generate streamed: sampled but not run through the model (that step
  // is only needed if the conversation goes on). The next decode or generate feeds it first.
  int32_t pending_token = -1;
  uint32_t pending_rows = 0;          // 1 when the last decode began with the pending token
  int32_t last_argmax = -1;           // valid when the last decode ran ArgmaxOnly
  int32_t last_sampled = -1;          // the token the last decode drew on the GPU (Sample), until taken
  bool last_logits_on_host = false;   // the last decode copied logits
  uint32_t last_batch = 0;            // tokens of the last decode step, the pending one included
  bool all_logits = false;
  std::unique_ptr<moevk::generate::Sampler> sampler;  // kept so the seeded stream continues
  std::vector<double> chained_draws;  // the draws of chained Sample steps in flight, oldest first
  moevk_sampler_params sampler_params{};
  double prompt_ms_total = 0, generate_ms_total = 0, generate_wait_ms_total = 0;
  int64_t prompt_tokens_total = 0, generated_tokens_total = 0;
  std::string last_error;
};
