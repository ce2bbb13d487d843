// `moevk make-model`: a GGUF file with random weights and the shapes of a real model, for
// benchmarks and memory tests without downloading anything.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "command.hpp"
#include "common.hpp"
#include "model_summary.hpp"
#include "moevk.h"

namespace {

void usage() {
  std::printf(
      "usage: moevk make-model [--preset NAME] [--type TYPE] -o OUT.gguf [shape options]\n"
      "       moevk make-model --preset NAME --dry-run [--json]\n\n"
      "Writes a model with random weights of realistic scale (matrices N(0, 0.02^2), norms near 1)\n"
      "and a placeholder vocabulary. Streamed: memory stays small whatever the size (a 26 GB\n"
      "Mixtral-8x7B Q4_0 file needs well under 100 MB of RAM). Deterministic for a given seed.\n"
      "Q4_K, Q5_K and Q6_K take each sub-block's range as its scale, without the scale search\n"
      "`moevk convert` does (ggml's): ~10x faster, the same bytes per weight.\n\n"
      "  --preset NAME     tiny (default; Mixtral-style, 2 layers, 64 wide, 8 experts),\n"
      "                    tiny-qwen2moe, tiny-qwen3moe, mixtral-8x7b, mixtral-8x22b,\n"
      "                    qwen1.5-moe-a2.7b, qwen3-30b-a3b; dense (no experts): tiny-llama,\n"
      "                    tiny-qwen2, tiny-qwen3 (2 layers, 64 wide, vocab 384)\n"
      "  --type TYPE       q4_0 (default), q4_1, q5_0, q5_1, q8_0, q2_k, q3_k, q4_k, q5_k, q6_k,\n"
      "                    iq4_nl, iq4_xs, iq3_s, iq3_xxs, iq2_s, iq2_xs, iq2_xxs, iq1_m, iq1_s,\n"
      "                    f16, bf16, f32 (the iq1..iq3 codebook types are slower to write: ~5 M\n"
      "                    (iq1, iq3_xxs) to 9 M (iq3_s) values/s per core, q4_k ~80 M; about\n"
      "                    10 minutes for mixtral-8x7b on 16 cores); and llama-quantize's mixes\n"
      "                    q4_k_m, q4_k_s, q5_k_m, q5_k_s, q3_k_m, q3_k_s, q3_k_l, with its types\n"
      "                    per tensor (`moevk convert --help`)\n"
      "  --tensor-type PATTERN=TYPE  (repeatable) matrices whose GGUF name matches PATTERN (a regular\n"
      "                    expression, e.g. ffn_down_exps, '^output\\.weight$', 'blk\\.(0|1)\\.attn_v')\n"
      "                    take TYPE instead; the first matching rule wins; a rule matching no\n"
      "                    matrix is an error; rules win over a mix's choice\n"
      "  -o, --output PATH the GGUF file to write\n"
      "  --seed N          random seed (default 1)\n"
      "  --dry-run         write nothing; print the summary of the file that would be written\n"
      "  --json            print the summary as JSON\n"
      "  --no-progress     no progress bar\n\n"
      "shape options (override the preset):\n"
      "  --arch A          llama, qwen2moe, qwen3moe (MoE presets); llama, qwen2, qwen3 (dense)\n"
      "  --layers N  --embd N  --ff N (expert FFN width for MoE models)  --shared-ff N (qwen2moe)\n"
      "  --experts N  --experts-used N  --heads N  --heads-kv N  --head-dim N  --vocab N  --ctx N\n\n"
      "Stored types as in `moevk convert`: norms, biases and routers f32; a matrix whose row is not a\n"
      "multiple of TYPE's block falls back to q8_0 or f16 (printed as a note).\n");
}

int run_make_model(int argc, char** argv) {
  moevk_make_model_params p = moevk_make_model_default_params();
  bool progress = true, json = false;
  std::vector<const char*> tensor_types;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = nullptr;
    auto need = [&]() {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "moevk make-model: %s needs a value\n", a.c_str());
        return false;
      }
      v = argv[++i];
      return true;
    };
    // Returns false (after saying why) for a value that is not an integer in [min, max].
    auto integer = [&](uint64_t& field, uint64_t min, uint64_t max) {
      if (!need()) return false;
      try {
        field = moevk_cli::unsigned_option(v, a.c_str(), min, max);
        return true;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "moevk make-model: %s\n", e.what());
        return false;
      }
    };
    auto number = [&](uint32_t& field) {
      uint64_t n = 0;
      if (!integer(n, 1, UINT32_MAX)) return false;
      field = uint32_t(n);
      return true;
    };
    bool ok = true;
    if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else if (a == "--preset") ok = need() && (p.preset = v);
    else if (a == "--type") ok = need() && (p.type = v);
    else if (a == "--tensor-type") {
      ok = need();
      if (ok) tensor_types.push_back(v);
    } else if (a == "-o" || a == "--output") ok = need() && (p.output_path = v);
    else if (a == "--arch") ok = need() && (p.arch = v);
    else if (a == "--seed") {
      uint64_t seed = 0;
      ok = integer(seed, 0, UINT64_MAX);
      p.seed = seed;
    } else if (a == "--dry-run") p.dry_run = 1;
    else if (a == "--json") json = true;
    else if (a == "--no-progress") progress = false;
    else if (a == "--layers") ok = number(p.n_layer);
    else if (a == "--embd") ok = number(p.n_embd);
    else if (a == "--ff") ok = number(p.n_ff);
    else if (a == "--shared-ff") ok = number(p.n_ff_shexp);
    else if (a == "--experts") ok = number(p.n_expert);
    else if (a == "--experts-used") ok = number(p.n_expert_used);
    else if (a == "--heads") ok = number(p.n_head);
    else if (a == "--heads-kv") ok = number(p.n_head_kv);
    else if (a == "--head-dim") ok = number(p.head_dim);
    else if (a == "--vocab") ok = number(p.n_vocab);
    else if (a == "--ctx") ok = number(p.n_ctx);
    else {
      std::fprintf(stderr, "moevk make-model: unknown argument '%s' (see moevk make-model --help)\n", a.c_str());
      return 2;
    }
    if (!ok) return 2;
  }
  if (!p.dry_run && !p.output_path) {
    std::fprintf(stderr, "moevk make-model: need -o OUT.gguf or --dry-run (see moevk make-model --help)\n");
    return 2;
  }
  p.tensor_types = tensor_types.data();
  p.n_tensor_types = tensor_types.size();
  if (progress && !p.dry_run) p.progress = moevk_cli::file_progress_bar;
  p.log = moevk_cli::file_log_line;
  char* text = nullptr;
  const moevk_status status = moevk_make_model(&p, &text);
  moevk_cli::file_progress_done();
  if (status != MOEVK_OK) {
    std::fprintf(stderr, "moevk make-model: %s\n", moevk_last_error());
    return 1;
  }
  const std::string info = text;
  moevk_free_string(text);
  if (json) {
    std::printf("%s\n", info.c_str());
    return 0;
  }
  const std::string title = p.dry_run ? std::string("dry run (nothing written): preset ") + p.preset
                                      : std::string("wrote ") + p.output_path;
  return moevk_cli::print_model_summary(info, title) ? 0 : 1;
}

moevk_cli::RegisterCommand reg("make-model", "write a GGUF model with random weights (benchmarks, tests)",
                               run_make_model);

}  // namespace
