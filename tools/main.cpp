// `moevk`: the command-line front end. Each subcommand lives in its own tools/cmd_*.cpp file.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "command.hpp"
#include "moevk.h"

namespace moevk_cli {
std::vector<Command>& commands() {
  static std::vector<Command> all;
  return all;
}
}  // namespace moevk_cli

static void print_help() {
  std::printf(
      "moevk %s: Mixture-of-Experts inference on Vulkan compute\n\n"
      "usage: moevk <command> [options]   (moevk <command> --help for its options)\n\n"
      "commands:\n",
      moevk_version());
  auto cmds = moevk_cli::commands();
  std::sort(cmds.begin(), cmds.end(),
            [](const auto& a, const auto& b) { return std::strcmp(a.name, b.name) < 0; });
  for (const auto& c : cmds) std::printf("  %-12s %s\n", c.name, c.summary);
  std::printf(
      "\nenvironment:\n"
      "  MOEVK_DEVICE=<index|name>  choose the Vulkan device (same as --device)\n"
      "  MOEVK_VALIDATE=1           enable the Khronos validation layer\n"
      "  MOEVK_DISABLE=<list>       turn off device features: fp16,int8,storage16,storage8,\n"
      "                             dot,coopmat,subgroup_size_control,subgroup (subgroup\n"
      "                             arithmetic); test the fallbacks. Also the decode step's\n"
      "                             fusions: fuse_norms, kv_append, rope_attention,\n"
      "                             merge_products, router_handoff,\n"
      "                             attention_handoff, chain_steps (steps submitted\n"
      "                             before the last one's token is read), and\n"
      "                             gpu_sampling (sample on the host from copied logits);\n"
      "                             measure what each is worth with moevk bench\n"
      "  MOEVK_ENABLE=<list>        opt in to kernels not yet validated on hardware: coopmat\n"
      "                             (cooperative-matrix prefill), dot_decode (the one-token\n"
      "                             experts' gate+up on the integer dot product), wide_decode\n"
      "                             (one-token products on 16-byte steps)\n"
      "  MOEVK_CACHE_DIR=<dir>      where the pipeline cache lives (default ~/.cache/moevk)\n");
}

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    print_help();
    return argc < 2 ? 1 : 0;
  }
  if (!std::strcmp(argv[1], "--version") || !std::strcmp(argv[1], "version")) {
    std::printf("moevk %s\n", moevk_version());
    return 0;
  }
  for (const auto& c : moevk_cli::commands())
    if (!std::strcmp(c.name, argv[1])) return c.run(argc - 1, argv + 1);
  std::fprintf(stderr, "moevk: unknown command '%s' (see moevk --help)\n", argv[1]);
  return 2;
}
