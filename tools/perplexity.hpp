// Perplexity of a token stream, llama-perplexity's way, so numbers compare with it: the tokens
// are cut into chunks of `chunk` tokens (a tail shorter than a chunk is dropped); each chunk runs
// in a fresh context with its first token replaced by BOS where the vocabulary adds one; the
// first half of a chunk is context only, and each later position j (j >= chunk / 2, j < chunk - 1)
// scores -log p(token j + 1 | tokens <= j) from the logits at j (log-softmax in double).
// PPL = exp(mean over every scored token), with the standard error of that mean carried through
// (PPL * stderr). Only the public C API is used.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "moevk.h"

namespace moevk_cli {

struct PerplexityOptions {
  uint32_t chunk = 512;     // at least 3
  uint32_t max_chunks = 0;  // 0: every whole chunk of the text
  bool add_bos = true;      // replace each chunk's first token by BOS (when the model has one)
};

struct PerplexityResult {
  std::vector<double> chunk_nll;  // mean NLL of each chunk's scored tokens
  uint64_t n_scored = 0;
  double mean_nll = 0, nll_stderr = 0;  // over every scored token
  double ppl = 0, ppl_stderr = 0;
  double seconds = 0;                   // decoding and scoring
};

// Tokens scored in one chunk of `chunk` tokens.
inline uint32_t scored_per_chunk(uint32_t chunk) { return chunk >= 3 ? chunk - 1 - chunk / 2 : 0; }

// Scores `tokens` on ctx (its n_ctx at least options.chunk; reset before each chunk). `bos` is
// the model's BOS id, or -1 for none. after_chunk (may be empty) is called after each chunk with
// the result so far (its running estimate), and returning false stops early. Returns false with
// `error` set when the context fails or the text holds no whole chunk.
bool perplexity(moevk_context* ctx, int32_t n_vocab, int32_t bos, const std::vector<int32_t>& tokens,
                const PerplexityOptions& options, PerplexityResult& result, std::string& error,
                const std::function<bool(const PerplexityResult&)>& after_chunk = {});

// -log softmax(logits)[target] in double.
double token_nll(const float* logits, int32_t n_vocab, int32_t target);

}  // namespace moevk_cli
