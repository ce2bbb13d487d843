#include "perplexity.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace moevk_cli {

double token_nll(const float* logits, int32_t n_vocab, int32_t target) {
  double max = logits[0];
  for (int32_t v = 1; v < n_vocab; ++v) max = std::max(max, double(logits[v]));
  double sum = 0;
  for (int32_t v = 0; v < n_vocab; ++v) sum += std::exp(double(logits[v]) - max);
  return std::log(sum) + max - double(logits[target]);
}

bool perplexity(moevk_context* ctx, int32_t n_vocab, int32_t bos, const std::vector<int32_t>& tokens,
                const PerplexityOptions& options, PerplexityResult& result, std::string& error,
                const std::function<bool(const PerplexityResult&)>& after_chunk) {
  result = {};
  const uint32_t n = options.chunk;
  if (n < 3) {
    error = "a chunk needs at least 3 tokens (one of them scored)";
    return false;
  }
  uint64_t n_chunks = tokens.size() / n;
  if (options.max_chunks) n_chunks = std::min<uint64_t>(n_chunks, options.max_chunks);
  if (n_chunks == 0) {
    error = "the text is " + std::to_string(tokens.size()) + " tokens, less than one chunk of " + std::to_string(n) +
            " (give a shorter chunk with --chunk N, or more text)";
    return false;
  }
  if (moevk_context_n_ctx(ctx) < n) {
    error = "the context holds " + std::to_string(moevk_context_n_ctx(ctx)) + " tokens, less than a chunk of " +
            std::to_string(n);
    return false;
  }
  const auto t0 = std::chrono::steady_clock::now();
  double sum = 0, sum_sq = 0;
  std::vector<int32_t> chunk(n);
  for (uint64_t c = 0; c < n_chunks; ++c) {
    std::copy(tokens.begin() + c * n, tokens.begin() + (c + 1) * n, chunk.begin());
    if (options.add_bos && bos >= 0) chunk[0] = bos;
    if (moevk_context_reset(ctx) != MOEVK_OK || moevk_decode(ctx, chunk.data(), n, 1) != MOEVK_OK) {
      error = std::string("chunk ") + std::to_string(c + 1) + ": " + moevk_context_last_error(ctx);
      return false;
    }
    double chunk_sum = 0;
    for (uint32_t j = n / 2; j + 1 < n; ++j) {
      const float* logits = nullptr;
      if (moevk_get_logits(ctx, static_cast<int32_t>(j), &logits) != MOEVK_OK) {
        error = std::string("chunk ") + std::to_string(c + 1) + ": " + moevk_context_last_error(ctx);
        return false;
      }
      // The target is the text's own token (chunk[j + 1]; only position 0 was replaced).
      const double nll = token_nll(logits, n_vocab, chunk[j + 1]);
      chunk_sum += nll;
      sum += nll;
      sum_sq += nll * nll;
    }
    result.chunk_nll.push_back(chunk_sum / scored_per_chunk(n));
    result.n_scored += scored_per_chunk(n);
    const double count = double(result.n_scored);
    result.mean_nll = sum / count;
    // Standard error of the mean: sample variance / count (0 for a single scored token).
    const double var = count > 1 ? std::max(0.0, (sum_sq / count - result.mean_nll * result.mean_nll)) * count / (count - 1) : 0;
    result.nll_stderr = std::sqrt(var / count);
    result.ppl = std::exp(result.mean_nll);
    result.ppl_stderr = result.ppl * result.nll_stderr;
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (after_chunk && !after_chunk(result)) break;
  }
  return true;
}

}  // namespace moevk_cli
