// C API: device probes and kernel benchmarks.
#include <nlohmann/json.hpp>

#include "api/api_internal.hpp"
#include "bench/ops_bench.hpp"
#include "bench/probe.hpp"

extern "C" {

moevk_status moevk_device_rates_json(const char* device, char** json_out) {
  if (!json_out) return moevk::api::invalid_argument("moevk_device_rates_json: json_out is NULL");
  *json_out = nullptr;
  return moevk::api::guard([&] {
    moevk::vk::ContextOptions o;
    if (device) o.device = device;
    auto ctx = moevk::vk::Context::create(o);
    auto rates = moevk::bench::measure_device(*ctx);
    nlohmann::json j = {{"device", ctx->caps()}, {"copy_gbps", rates.copy_gbps}, {"fma_gflops", rates.fma_gflops},
                        {"copy_bytes", rates.copy_bytes}};
    *json_out = moevk::api::to_c_string(j.dump());
  });
}

moevk_status moevk_bench_ops(const char* options_json, int markdown, char** result_out) {
  if (!result_out) return moevk::api::invalid_argument("moevk_bench_ops: result_out is NULL");
  *result_out = nullptr;
  return moevk::api::guard([&] {
    moevk::bench::OpsBenchOptions o;
    if (options_json && *options_json) {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(options_json);
        if (j.contains("device")) o.device = j["device"].get<std::string>();
        if (j.contains("shapes")) o.shapes = j["shapes"].get<std::vector<std::string>>();
        if (j.contains("types")) o.types = j["types"].get<std::vector<std::string>>();
        if (j.contains("tokens")) o.tokens = j["tokens"].get<std::vector<uint32_t>>();
        if (j.contains("kernels")) o.kernels = j["kernels"].get<std::vector<std::string>>();
        if (j.contains("repeats")) o.repeats = j["repeats"].get<int>();
        if (j.contains("kv_past")) o.kv_past = j["kv_past"].get<uint32_t>();
        if (j.contains("decode_configs"))
          for (const auto& c : j["decode_configs"]) o.decode_configs.emplace_back(c.at(0).get<uint32_t>(), c.at(1).get<uint32_t>());
      } catch (const nlohmann::json::exception& e) {
        throw moevk::Error(MOEVK_ERROR_INVALID_ARGUMENT, std::string("moevk_bench_ops: bad options: ") + e.what());
      }
    }
    if (o.tokens.empty() || o.repeats < 1)
      throw moevk::Error(MOEVK_ERROR_INVALID_ARGUMENT, "moevk_bench_ops: need at least one token count and one repeat");
    auto result = moevk::bench::run_ops_bench(o);
    *result_out = moevk::api::to_c_string(markdown ? moevk::bench::ops_bench_markdown(result) : result.dump(2));
  });
}

}  // extern "C"
