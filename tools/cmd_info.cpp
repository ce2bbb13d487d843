// `moevk info`: what a GGUF model is and what it costs to run (reads only the header).
#include <cstdio>
#include <cstring>
#include <string>

#include "command.hpp"
#include "model_summary.hpp"
#include "moevk.h"

namespace {

int run_info(int argc, char** argv) {
  bool json = false;
  const char* path = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json")) {
      json = true;
    } else if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::printf(
          "usage: moevk info MODEL.gguf [--json]\n\n"
          "Describes a GGUF model from its header (no weights are read): architecture and\n"
          "hyperparameters, tensor types and their bytes, total parameters and parameters active per\n"
          "token, weight bytes, bytes of weights read to decode one token (attention, router, shared\n"
          "expert, the k chosen experts, norms, output matrix, one embedding row), and the F16 KV cache\n"
          "per token and at the training context.\n\n"
          "  --json   the same as one JSON object, for scripts\n");
      return 0;
    } else if (argv[i][0] == '-') {
      std::fprintf(stderr, "moevk info: unknown option '%s'\n", argv[i]);
      return 2;
    } else if (path) {
      std::fprintf(stderr, "moevk info: one model at a time\n");
      return 2;
    } else {
      path = argv[i];
    }
  }
  if (!path) {
    std::fprintf(stderr, "moevk info: missing MODEL.gguf (see moevk info --help)\n");
    return 2;
  }
  char* text = nullptr;
  if (moevk_inspect_json(path, &text) != MOEVK_OK) {
    std::fprintf(stderr, "moevk info: %s\n", moevk_last_error());
    return 1;
  }
  const std::string info = text;
  moevk_free_string(text);
  if (json) {
    std::printf("%s\n", info.c_str());
    return 0;
  }
  return moevk_cli::print_model_summary(info, path) ? 0 : 1;
}

moevk_cli::RegisterCommand reg("info", "describe a GGUF model: hyperparameters, sizes, bytes per token", run_info);

}  // namespace
