// `moevk convert`: a Hugging Face checkpoint folder -> one GGUF file.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "command.hpp"
#include "model_summary.hpp"
#include "moevk.h"

namespace {

void usage() {
  std::printf(
      "usage: moevk convert HF_DIR -o OUT.gguf [--type TYPE] [--tensor-type PATTERN=TYPE ...]\n"
      "                    [--no-progress] [--quiet]\n\n"
      "Converts a Hugging Face checkpoint (config.json + model.safetensors or shards listed in\n"
      "model.safetensors.index.json; F32, F16 or BF16 tensors) of MixtralForCausalLM,\n"
      "Qwen2MoeForCausalLM or Qwen3MoeForCausalLM (dense Llama, Mistral, Qwen2, Qwen3 too) into\n"
      "GGUF with llama.cpp's tensor names and metadata. Experts are stacked into one 3-D tensor\n"
      "per projection; for Llama/Mixtral the q and k rows are permuted as llama.cpp does.\n\n"
      "  -o, --output PATH   the GGUF file to write (required)\n"
      "  --type TYPE         f32, f16 (default), bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k,\n"
      "                      q4_k, q5_k, q6_k, iq4_nl, iq4_xs, iq3_s, iq3_xxs, iq2_s, iq2_xs,\n"
      "                      iq2_xxs, iq1_m, iq1_s (no importance matrix: prefer 3 bits or more);\n"
      "                      or llama-quantize's mixes q4_k_m, q4_k_s, q5_k_m, q5_k_s, q3_k_m,\n"
      "                      q3_k_s, q3_k_l: the same types per tensor as llama-quantize gives\n"
      "                      (output q6_k; attn_v and ffn_down wider in some layers; Mixtral's\n"
      "                      attn_v/attn_k q8_0), the published Q4_K_M etc. files\n"
      "  --tensor-type PATTERN=TYPE  (repeatable) matrices whose GGUF name matches PATTERN (a\n"
      "                      regular expression, e.g. ffn_down_exps, '^output\\.weight$',\n"
      "                      'blk\\.(0|1)\\.attn_v') take TYPE instead, as llama-quantize's\n"
      "                      --tensor-type; the first matching rule wins; a rule that matches no\n"
      "                      matrix is an error\n"
      "  --no-progress       no progress bar\n"
      "  --quiet             no summary of the written model\n\n"
      "Stored types: norms, biases, routers (ffn_gate_inp) and the shared-expert gate stay f32.\n"
      "Every matrix, token_embd and output included, takes TYPE, except a matrix whose row length\n"
      "is not a multiple of TYPE's block: K-quants (block 256) fall back to q8_0 when the row is a\n"
      "multiple of 32, anything else to f16; each fallback is printed as a note. The mixes choose\n"
      "per matrix and fall back as llama-quantize does (q4_k to q5_0, q5_k to q5_1, q6_k to q8_0,\n"
      "q3_k to iq4_nl, then f16).\n"
      "Tokenizer: tokenizer.json (+ tokenizer_config.json) when present, otherwise a placeholder\n"
      "vocabulary (<unk>, <s>, </s>, 256 byte tokens, tok_N) so the file is self-contained.\n");
}

int run_convert(int argc, char** argv) {
  moevk_convert_params p = moevk_convert_default_params();
  bool progress = true, quiet = false;
  std::vector<const char*> tensor_types;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "moevk convert: %s needs a value\n", a.c_str());
        return nullptr;
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else if (a == "-o" || a == "--output") {
      if (!(p.output_path = value())) return 2;
    } else if (a == "--type") {
      if (!(p.type = value())) return 2;
    } else if (a == "--tensor-type") {
      const char* rule = value();
      if (!rule) return 2;
      tensor_types.push_back(rule);
    } else if (a == "--no-progress") {
      progress = false;
    } else if (a == "--quiet") {
      quiet = true;
    } else if (a[0] == '-') {
      std::fprintf(stderr, "moevk convert: unknown option '%s'\n", a.c_str());
      return 2;
    } else if (p.hf_dir) {
      std::fprintf(stderr, "moevk convert: one HF_DIR at a time\n");
      return 2;
    } else {
      p.hf_dir = argv[i];
    }
  }
  if (!p.hf_dir || !p.output_path) {
    std::fprintf(stderr, "moevk convert: need HF_DIR and -o OUT.gguf (see moevk convert --help)\n");
    return 2;
  }
  p.tensor_types = tensor_types.data();
  p.n_tensor_types = tensor_types.size();
  if (progress) p.progress = moevk_cli::file_progress_bar;
  p.log = moevk_cli::file_log_line;
  const moevk_status status = moevk_convert(&p);
  moevk_cli::file_progress_done();
  if (status != MOEVK_OK) {
    std::fprintf(stderr, "moevk convert: %s\n", moevk_last_error());
    return 1;
  }
  if (quiet) return 0;
  char* text = nullptr;
  if (moevk_inspect_json(p.output_path, &text) != MOEVK_OK) {
    std::fprintf(stderr, "moevk convert: wrote %s but cannot read it back: %s\n", p.output_path, moevk_last_error());
    return 1;
  }
  const std::string info = text;
  moevk_free_string(text);
  return moevk_cli::print_model_summary(info, std::string("wrote ") + p.output_path) ? 0 : 1;
}

moevk_cli::RegisterCommand reg("convert", "convert a Hugging Face checkpoint to GGUF", run_convert);

}  // namespace
