// `moevk bench`: llama-bench-style end-to-end speed (prompt processing and generation), and
// `moevk bench ops`: per-kernel timings on realistic shapes.
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_model.hpp"
#include "command.hpp"
#include "common.hpp"

namespace moevk_cli {
namespace {

int bench_ops(int argc, char** argv) {
  nlohmann::json opt = nlohmann::json::object();
  bool json = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("option " + a + " needs a value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::printf("usage: moevk bench ops [--shapes mixtral-8x7b,qwen3-30b-a3b] [--types q4_0,q4_k]\n"
                  "                       [--tokens 1,8,32,128,512] [--kernels K,...] [-r 10] [--device D] [--json]\n"
                  "                       [--decode-configs 64x2,128x4,...]\n\n"
                  "Times each kernel family with GPU timestamps on the layer shapes of real models and reports\n"
                  "time, GB/s, GFLOP/s, and the fraction of the device's copy bandwidth and FMA peak, both\n"
                  "measured at start. Kernels: attn_qkv, router_topk, moe_experts, attention, rope_kv, output,\n"
                  "rms_norm, embedding, argmax, sample_topk (sampling on the GPU: the best 64 logits and a\n"
                  "draw), and sampler (host time per token of sampling at a temperature, the CLI's default\n"
                  "filters, on a vocabulary-sized row: what moevk_generate does when gpu_sampling is off).\n"
                  "Shapes: mixtral-8x7b, mixtral-8x22b, qwen1.5-moe-a2.7b, qwen3-30b-a3b, tiny (for CPU drivers).\n"
                  "The path column names the variant each op took; prefill moe_experts get a row per kernel the\n"
                  "device runs: grouped_coopmat (NV cooperative matrix, with MOEVK_ENABLE=coopmat; rows\n"
                  "\"tm64\" and \"tm32\" for its 64- and 32-row tiles, the op's choice first),\n"
                  "grouped_dot (integer dot product) and grouped (plain tiles); the router's handoff and split\n"
                  "paths, and attention with and without its combine handoff, get a row each too.\n"
                  "--decode-configs WGxROWS,...  times the one-token kernels again per workgroup size and weight\n"
                  "rows per workgroup: moe_experts (rows \"decode 128x4\"; default 64x2, and \"decode down 128x4\"\n"
                  "with the down product alone on the shape, as MOEVK_DECODE_CONFIG's down=) and the dense\n"
                  "attn_qkv/output products (rows \"mv 128x4\"; default 128x4).\n");
      return 0;
    } else if (a == "--shapes") opt["shapes"] = split_list(next());
    else if (a == "--types") opt["types"] = split_list(next());
    else if (a == "--kernels") opt["kernels"] = split_list(next());
    else if (a == "--tokens") {
      std::vector<uint32_t> t;
      for (auto& x : split_list(next())) t.push_back(uint32_t(unsigned_option(x.c_str(), "--tokens", 1, 1u << 16)));
      opt["tokens"] = t;
    } else if (a == "-r" || a == "--repetitions") opt["repeats"] = unsigned_option(next().c_str(), "-r", 1, 1000000);
    else if (a == "--device") opt["device"] = next();
    else if (a == "--json") json = true;
    else if (a == "--decode-configs") {
      nlohmann::json configs = nlohmann::json::array();
      for (const std::string& c : split_list(next())) {
        const size_t x = c.find('x');
        if (x == std::string::npos) throw std::runtime_error("--decode-configs: '" + c + "' is not WGxROWS");
        configs.push_back({unsigned_option(c.substr(0, x).c_str(), "--decode-configs", 1, 1024),
                           unsigned_option(c.substr(x + 1).c_str(), "--decode-configs", 1, 64)});
      }
      opt["decode_configs"] = configs;
    } else throw std::runtime_error("unknown option " + a);
  }
  char* out = nullptr;
  if (moevk_bench_ops(opt.dump().c_str(), !json, &out) != MOEVK_OK) {
    std::fprintf(stderr, "moevk bench ops: %s\n", moevk_last_error());
    return 1;
  }
  std::printf("%s\n", out);
  moevk_free_string(out);
  return 0;
}

int bench(int argc, char** argv) {
  try {
    if (argc >= 2 && !std::strcmp(argv[1], "ops")) return bench_ops(argc, argv);
    return bench_model(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moevk bench: %s (see moevk bench --help)\n", e.what());
    return 2;
  }
}

RegisterCommand reg("bench", "speed: end to end (llama-bench style) or per kernel (bench ops)", bench);

}  // namespace
}  // namespace moevk_cli
