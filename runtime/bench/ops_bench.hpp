// `moevk bench ops`: times each kernel family on realistic layer shapes (Mixtral-8x7B,
// Qwen3-30B-A3B, ...) with GPU timestamps and reports time, GB/s, GFLOP/s and the fraction of
// the device's measured copy bandwidth and FMA peak.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moevk::bench {

struct OpsBenchOptions {
  std::string device;
  std::vector<std::string> shapes = {"mixtral-8x7b", "qwen3-30b-a3b"};  // or "tiny"
  std::vector<std::string> types = {"q4_0", "q4_k"};
  std::vector<uint32_t> tokens = {1, 8, 32, 128, 512};
  std::vector<std::string> kernels;  // empty: all of attn_qkv, router_topk, moe_experts, attention, output, rms_norm
  int repeats = 10;
  uint32_t kv_past = 512;  // positions already in the KV cache for the attention kernel
  // The one-token moe_experts, attn_qkv and output products again per (workgroup, rows)
  // configuration of their kernels (rows "decode 128x4", "mv 128x4"): a sweep for tuning
  // MoeExpertsOptions / MatMulOptions::decode_workgroup and decode_rows.
  std::vector<std::pair<uint32_t, uint32_t>> decode_configs;
};

// {"device": {...}, "rates": {"copy_gbps", "fma_gflops"}, "results": [{...}, ...]}
nlohmann::json run_ops_bench(const OpsBenchOptions& options);
// Markdown table of run_ops_bench's result.
std::string ops_bench_markdown(const nlohmann::json& result);

}  // namespace moevk::bench
