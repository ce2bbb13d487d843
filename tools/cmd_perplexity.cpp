// `moevk perplexity`: how well a model predicts a text, as llama-perplexity measures it (the
// method is in perplexity.hpp), to compare quantizations and runtimes on the same file and text.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "command.hpp"
#include "common.hpp"
#include "perplexity.hpp"

namespace moevk_cli {
namespace {

const char* kHelp =
    "usage: moevk perplexity -m model.gguf (-f TEXT_FILE | -p TEXT | --prompt-ids 1,2,3)\n"
    "                        [--chunk 512] [--chunks N] [--no-bos] [-b N] [--json]\n\n"
    "Perplexity of the model over a text, computed as llama-perplexity does, so the numbers\n"
    "compare: the tokenized text is cut into chunks of --chunk tokens (a shorter tail is\n"
    "dropped), each chunk is decoded in a fresh context with its first token replaced by BOS\n"
    "(where the vocabulary adds one; --no-bos keeps it), and every token of a chunk's second\n"
    "half is scored by -log p(token | the tokens before it in the chunk). Prints the running\n"
    "estimate after each chunk ([1]7.1234,[2]...) and PPL = exp(mean) +/- its standard error.\n"
    "Tokenized without special tokens: the text is data.\n\n"
    "  -m, --model FILE     GGUF model file (required)\n"
    "  -f, --file FILE      the text (e.g. wiki.test.raw)\n"
    "  -p, --prompt TEXT    the text itself\n"
    "  --prompt-ids 1,2,3   the text as token ids\n"
    "  --chunk N            tokens per chunk (default 512; at least 3)\n"
    "  --chunks N           score only the first N chunks (default: all)\n"
    "  --no-bos             keep each chunk's own first token\n"
    "  -b, --batch-size N   tokens per forward step (default: the chunk, at most 512)\n"
    "  --device INDEX|NAME  Vulkan device (see `moevk devices`)\n"
    "  --json               one JSON object at the end instead of text\n"
    "  --no-progress        no progress bar while loading\n"
    "  --validate           enable the Khronos validation layer\n";

// Whether the vocabulary puts BOS in front of a text: what tokenizing nothing with specials gives.
bool adds_bos(moevk_model* model) {
  int32_t ids[4];
  size_t n = 0;
  const int32_t bos = moevk_model_bos(model);
  return bos >= 0 && moevk_tokenize(model, "", 0, 1, 0, ids, 4, &n) == MOEVK_OK && n >= 1 && ids[0] == bos;
}

int perplexity_command(int argc, char** argv) {
  GenOptions o;
  PerplexityOptions po;
  bool batch_given = false, no_bos = false;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "-h" || a == "--help") {
        std::fputs(kHelp, stdout);
        return 0;
      }
      if (a == "--chunk" && i + 1 < argc) {
        po.chunk = uint32_t(unsigned_option(argv[++i], "--chunk", 3, 1u << 20));
      } else if (a == "--chunks" && i + 1 < argc) {
        po.max_chunks = uint32_t(unsigned_option(argv[++i], "--chunks", 1, UINT32_MAX));
      } else if (a == "--no-bos") {
        no_bos = true;
      } else {
        const bool batch = a == "-b" || a == "--batch-size";
        if (!parse_common(argc, argv, i, o, kModelOptions | kPromptOptions | kJsonOption)) throw std::runtime_error("unknown option " + a);
        batch_given = batch_given || batch;
      }
    }
    if (o.model.empty()) throw std::runtime_error("no model (-m FILE)");
    if (!o.prompt_given && o.prompt_ids.empty()) throw std::runtime_error("no text (-f FILE, -p TEXT or --prompt-ids)");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moevk perplexity: %s\n", e.what());
    return 2;
  }
  if (!batch_given) o.n_batch = std::min<uint32_t>(po.chunk, 512);
  if (o.n_ctx < po.chunk) o.n_ctx = po.chunk;

  moevk_model* model = load_model(o, nullptr);
  if (!model) return 1;
  std::vector<int32_t> ids = o.prompt_ids;
  // Without BOS/EOS or special-token parsing: the text is data.
  if (ids.empty() && !tokenize(model, o.prompt, ids, false, false)) {
    moevk_model_free(model);
    return 1;
  }
  po.add_bos = !no_bos && adds_bos(model);
  moevk_context* ctx = create_context(model, o);
  if (!ctx) {
    moevk_model_free(model);
    return 1;
  }
  const uint64_t available = ids.size() / po.chunk;
  const uint64_t n_chunks = po.max_chunks ? std::min<uint64_t>(available, po.max_chunks) : available;
  if (!o.json)
    std::fprintf(stderr, "perplexity: %zu tokens, %llu chunks of %u (%u scored each)%s\n", ids.size(),
                 static_cast<unsigned long long>(n_chunks), po.chunk, scored_per_chunk(po.chunk),
                 po.add_bos ? ", BOS first" : "");
  PerplexityResult result;
  std::string error;
  const bool ok = perplexity(ctx, moevk_model_n_vocab(model), moevk_model_bos(model), ids, po, result, error,
                             [&](const PerplexityResult& r) {
                               if (!o.json) {
                                 std::printf("[%zu]%.4f,", r.chunk_nll.size(), r.ppl);
                                 std::fflush(stdout);
                               }
                               return true;
                             });
  int rc = 0;
  if (!ok) {
    if (!o.json) std::printf("\n");
    std::fprintf(stderr, "moevk perplexity: %s\n", error.c_str());
    rc = 1;
  } else if (o.json) {
    std::printf("{\"model\": \"%s\", \"chunk\": %u, \"n_chunks\": %zu, \"n_scored\": %llu, \"add_bos\": %s, "
                "\"ppl\": %.6f, \"ppl_stderr\": %.6f, \"mean_nll\": %.8f, \"nll_stderr\": %.8f, "
                "\"seconds\": %.3f, \"tokens_per_s\": %.1f, \"chunk_nll\": [",
                o.model.c_str(), po.chunk, result.chunk_nll.size(), static_cast<unsigned long long>(result.n_scored),
                po.add_bos ? "true" : "false", result.ppl, result.ppl_stderr, result.mean_nll, result.nll_stderr,
                result.seconds, result.seconds > 0 ? result.chunk_nll.size() * double(po.chunk) / result.seconds : 0.0);
    for (size_t c = 0; c < result.chunk_nll.size(); ++c) std::printf("%s%.8f", c ? ", " : "", result.chunk_nll[c]);
    std::printf("]}\n");
  } else {
    std::printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", result.ppl, result.ppl_stderr);
    std::fprintf(stderr, "%.2f s, %.1f tokens/s\n", result.seconds,
                 result.seconds > 0 ? result.chunk_nll.size() * double(po.chunk) / result.seconds : 0.0);
  }
  moevk_context_free(ctx);
  moevk_model_free(model);
  return rc;
}

RegisterCommand reg("perplexity", "perplexity over a text, as llama-perplexity measures it", perplexity_command);

}  // namespace
}  // namespace moevk_cli
