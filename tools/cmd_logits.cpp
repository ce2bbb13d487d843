// `moevk logits`: the logits of every prompt position, for checking against references.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "command.hpp"
#include "common.hpp"

namespace moevk_cli {
namespace {

int logits(int argc, char** argv) {
  GenOptions o;
  o.progress = false;
  const unsigned options = kModelOptions | kPromptOptions | kJsonOption;
  int top = 5;
  try {
    for (int i = 1; i < argc; ++i) {
      if (!std::strcmp(argv[i], "-h") || !std::strcmp(argv[i], "--help")) {
        std::printf("usage: moevk logits -m model.gguf (--prompt-ids 1,2,3 | -p TEXT) [--json] [--top N]\n\n"
                    "Runs one forward pass over the prompt and prints the logits of every position:\n"
                    "the top N (default 5) per position as a table, or all of them with --json\n"
                    "({\"prompt_ids\": [...], \"logits\": [[...], ...]}).\n\n%s",
                    common_help(options).c_str());
        return 0;
      }
      if (!std::strcmp(argv[i], "--top") && i + 1 < argc) {
        top = int(unsigned_option(argv[++i], "--top", 1, 1000));
        continue;
      }
      if (!parse_common(argc, argv, i, o, options)) throw std::runtime_error(std::string("unknown option ") + argv[i]);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moevk logits: %s\n", e.what());
    return 2;
  }
  // Without a prompt the pass would run over BOS alone: not what anyone checking logits meant.
  if (!o.prompt_given && o.prompt_ids.empty()) {
    std::fprintf(stderr, "moevk logits: no prompt (-p TEXT, -f FILE or --prompt-ids)\n");
    return 2;
  }
  moevk_model* model = load_model(o, nullptr);
  if (!model) return 1;
  std::vector<int32_t> ids = o.prompt_ids;
  if (ids.empty() && !tokenize(model, o.prompt, ids)) {
    moevk_model_free(model);
    return 1;
  }
  moevk_context* ctx = create_context(model, o);
  int rc = 0;
  moevk_status status = MOEVK_OK;
  if (!ctx || (status = moevk_decode(ctx, ids.data(), ids.size(), 1)) != MOEVK_OK) {
    if (ctx) print_context_error(ctx, status);
    rc = 1;
  } else {
    const int32_t n_vocab = moevk_model_n_vocab(model);
    if (o.json) std::printf("{\"prompt_ids\": [");
    for (size_t i = 0; o.json && i < ids.size(); ++i) std::printf("%s%d", i ? ", " : "", ids[i]);
    if (o.json) std::printf("], \"n_vocab\": %d, \"logits\": [", n_vocab);
    for (size_t p = 0; p < ids.size(); ++p) {
      const float* l = nullptr;
      moevk_get_logits(ctx, static_cast<int32_t>(p), &l);
      if (o.json) {
        std::printf("%s[", p ? ", " : "");
        for (int32_t v = 0; v < n_vocab; ++v) std::printf("%s%.7g", v ? ", " : "", l[v]);
        std::printf("]");
      } else {
        std::vector<int32_t> best;
        for (int k = 0; k < top && k < n_vocab; ++k) {
          int32_t arg = -1;
          for (int32_t v = 0; v < n_vocab; ++v)
            if (std::find(best.begin(), best.end(), v) == best.end() && (arg < 0 || l[v] > l[arg])) arg = v;
          best.push_back(arg);
        }
        std::printf("pos %3zu token %6d:", p, ids[p]);
        for (auto b : best) std::printf("  %6d (%.4f)", b, l[b]);
        std::printf("\n");
      }
    }
    if (o.json) std::printf("]}\n");
  }
  moevk_context_free(ctx);
  moevk_model_free(model);
  return rc;
}

RegisterCommand reg("logits", "print the logits of every prompt position (reference checks)", logits);

}  // namespace
}  // namespace moevk_cli
