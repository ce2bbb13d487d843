// `moevk run`: generate text from a prompt, streaming, then report speeds.
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "common.hpp"
#include "profile_report.hpp"

namespace moevk_cli {

// Prints per-layer expert choice counts (the load-balance view) from the context's stats.
void print_expert_stats(moevk_context* ctx) {
  char* text = nullptr;
  if (moevk_context_stats_json(ctx, &text) != MOEVK_OK) {
    std::fprintf(stderr, "error: %s\n", moevk_context_last_error(ctx));
    return;
  }
  auto stats = nlohmann::json::parse(text);
  moevk_free_string(text);
  const auto& layers = stats["expert_counts"];
  std::fprintf(stderr, "\nexpert choices per layer (per expert: count of top-k selections, share of the layer's total):\n");
  for (size_t l = 0; l < layers.size(); ++l) {
    const auto& counts = layers[l];
    if (counts.empty()) continue;  // a dense layer
    uint64_t total = 0, max = 0, min = UINT64_MAX;
    for (const auto& c : counts) {
      uint64_t v = c.get<uint64_t>();
      total += v;
      max = std::max(max, v);
      min = std::min(min, v);
    }
    std::fprintf(stderr, "layer %2zu:", l);
    for (size_t e = 0; e < counts.size(); ++e) {
      if (e && e % 8 == 0) std::fprintf(stderr, "\n         ");
      const uint64_t count = counts[e].get<uint64_t>();
      std::fprintf(stderr, " %6llu %5.1f%%", static_cast<unsigned long long>(count),
                   total ? 100.0 * double(count) / double(total) : 0.0);
    }
    double mean = counts.empty() ? 0 : double(total) / counts.size();
    std::fprintf(stderr, "\n          min %llu, max %llu, max/mean %.2f\n", static_cast<unsigned long long>(min),
                 static_cast<unsigned long long>(max), mean > 0 ? max / mean : 0.0);
  }
}

namespace {

struct StreamState {
  bool print_ids = false;
  bool first = true;
};

int on_token(const char* text, size_t len, int32_t token, void* user) {
  auto* s = static_cast<StreamState*>(user);
  if (s->print_ids) {
    if (token >= 0) {
      std::printf("%s%d", s->first ? "" : ",", token);
      s->first = false;
    }
  } else {
    std::fwrite(text, 1, len, stdout);
  }
  std::fflush(stdout);
  return 0;
}

int run(int argc, char** argv) {
  GenOptions o;
  const unsigned options = kModelOptions | kPromptOptions | kGenerationOptions | kSamplingOptions | kPrintIdsOption |
                           kExpertStatsOption | kProfileOption;
  try {
    for (int i = 1; i < argc; ++i) {
      if (!std::strcmp(argv[i], "-h") || !std::strcmp(argv[i], "--help")) {
        std::printf("usage: moevk run -m model.gguf -p \"prompt\" [-n 128] [options]\n\n"
                    "Generates text from a prompt, streaming it to stdout; then prints the load time,\n"
                    "prompt tokens/s and generation tokens/s to stderr.\n\n%s",
                    common_help(options).c_str());
        return 0;
      }
      if (!parse_common(argc, argv, i, o, options)) throw std::runtime_error(std::string("unknown option ") + argv[i]);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moevk run: %s (see moevk run --help)\n", e.what());
    return 2;
  }
  if (!o.prompt_given && o.prompt_ids.empty()) {
    std::fprintf(stderr, "moevk run: no prompt (-p TEXT, -f FILE or --prompt-ids)\n");
    return 2;
  }
  double load_ms = 0;
  moevk_model* model = load_model(o, &load_ms);
  if (!model) return 1;
  moevk_context* ctx = create_context(model, o);
  if (!ctx) {
    moevk_model_free(model);
    return 1;
  }
  std::vector<const char*> stops;
  moevk_generate_params gp = generate_params(o, stops);
  if (!o.prompt_ids.empty()) {
    gp.prompt_tokens = o.prompt_ids.data();
    gp.n_prompt_tokens = o.prompt_ids.size();
  } else {
    gp.prompt = o.prompt.c_str();
  }
  StreamState state;
  state.print_ids = o.print_ids;
  gp.on_token = on_token;
  gp.user_data = &state;
  if (!o.print_ids && o.prompt_ids.empty()) std::printf("%s", o.prompt.c_str());
  moevk_generate_result r{};
  r.struct_size = sizeof r;
  moevk_status st = moevk_generate(ctx, &gp, &r);
  std::printf("\n");
  int rc = 0;
  if (st != MOEVK_OK) {
    print_context_error(ctx, st);
    rc = 1;
  } else {
    const char* reasons[] = {"max tokens", "end of generation", "stop string", "callback", "context full",
                             "grammar complete"};
    std::fprintf(stderr,
                 "\nload: %.0f ms | prompt: %d tokens in %.1f ms, %.2f tokens/s | generation: %d tokens in "
                 "%.1f ms, %.2f tokens/s | stopped: %s\n",
                 load_ms, r.n_prompt_tokens, r.prompt_ms, r.prompt_ms > 0 ? 1000.0 * r.n_prompt_tokens / r.prompt_ms : 0.0,
                 r.n_generated, r.generate_ms,
                 r.generate_ms > 0 && r.n_generated > 1 ? 1000.0 * (r.n_generated - 1) / r.generate_ms : 0.0,
                 reasons[r.stop_reason]);
    if (o.expert_stats) print_expert_stats(ctx);
    if (o.profile) print_profile(context_profile(ctx), r.n_prompt_tokens, 0, stderr);
  }
  moevk_context_free(ctx);
  moevk_model_free(model);
  return rc;
}

RegisterCommand reg("run", "generate text from a prompt (streaming)", run);

}  // namespace
}  // namespace moevk_cli
