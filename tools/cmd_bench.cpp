// `moevk bench`: llama-bench-style end-to-end speed (prompt processing and generation), and
// `moevk bench ops`: per-kernel timings on realistic shapes.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "common.hpp"
#include "profile_report.hpp"

namespace moevk_cli {
namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

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
                  "rows per workgroup: moe_experts (rows \"decode 128x4\"; default 64x2) and the dense\n"
                  "attn_qkv/output products (rows \"mv 128x4\"; default 128x4).\n");
      return 0;
    } else if (a == "--shapes") opt["shapes"] = split(next());
    else if (a == "--types") opt["types"] = split(next());
    else if (a == "--kernels") opt["kernels"] = split(next());
    else if (a == "--tokens") {
      std::vector<uint32_t> t;
      for (auto& x : split(next())) t.push_back(uint32_t(unsigned_option(x.c_str(), "--tokens", 1, 1u << 16)));
      opt["tokens"] = t;
    } else if (a == "-r" || a == "--repetitions") opt["repeats"] = unsigned_option(next().c_str(), "-r", 1, 1000000);
    else if (a == "--device") opt["device"] = next();
    else if (a == "--json") json = true;
    else if (a == "--decode-configs") {
      nlohmann::json configs = nlohmann::json::array();
      for (const std::string& c : split(next())) {
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

struct Stat {
  double mean = 0, sd = 0;
};
Stat stat(const std::vector<double>& v) {
  Stat s;
  for (double x : v) s.mean += x;
  s.mean /= std::max<size_t>(1, v.size());
  for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(s.sd / (v.size() - 1)) : 0;
  return s;
}

int bench_model(int argc, char** argv) {
  GenOptions o;
  o.progress = true;
  o.n_batch = 512;
  int n_prompt = 512, n_gen = 128, reps = 5;
  std::string format = "md";
  std::vector<std::string> without;  // tg again per entry, with those decode fusions off
  std::vector<std::string> decode_configs;  // tg again per entry, with those decode kernel shapes
  bool sampled = false;              // a tg row at a temperature too
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::printf("usage: moevk bench -m FILE [-p 512] [-n 128] [-r 5] [-b 512] [--md|--json|--csv] [--device D]\n"
                  "                   [--profile] [--sampled] [--without A,B+C,...]\n"
                  "                   [--decode-configs experts=WxR,mv=WxR,experts=WxR+mv=WxR,...]\n"
                  "       moevk bench ops --help\n\n"
                  "End-to-end speed in the style of llama-bench: pp<P> processes a P-token prompt in batches of\n"
                  "-b tokens, tg<N> generates N tokens one at a time (greedy, argmax on the GPU). Each test runs\n"
                  "-r times after one warm-up; tokens/s are mean +- standard deviation. For tg also the achieved\n"
                  "weight bandwidth (bytes read per token from `moevk info` x tokens/s) and its share of the\n"
                  "device's copy bandwidth measured at start (the decode floor); and the host's own time per\n"
                  "decoded token (the loop's time not blocked on the GPU: submits, detokenizing, stop strings),\n"
                  "which bounds tokens/s however fast the GPU is (in --json: host_ms_per_token).\n"
                  "--profile adds GPU timestamps at stage boundaries and prints GPU ms per stage (attention,\n"
                  "router+top-k, experts, other) per decoded token and per prompt, with dispatches and\n"
                  "barriers per step (in --json: a \"profile\" object per test).\n"
                  "--without A,B+C,...  runs tg again for each entry with those decode fusions off (names as\n"
                  "in MOEVK_DISABLE: fuse_norms, kv_append, rope_attention, merge_products,\n"
                  "router_handoff, attention_handoff, chain_steps; '+' joins several), each in a fresh\n"
                  "context of the same loaded model:\n"
                  "rows \"tg128 -router_handoff\" (in --json: \"without\"), what each fusion is worth.\n"
                  "--sampled  adds a tg row at the CLI's default sampling (temperature 0.8, top-k 40, top-p\n"
                  "0.95, min-p 0.05; drawn on the GPU), \"tg128 sampled\", and one per --without entry;\n"
                  "--without gpu_sampling then times the same sampling on the host. Also \"tg128 sampled\n"
                  "top-k off\": top-p 0.95 alone, as OpenAI-style clients send it (the whole vocabulary).\n"
                  "--decode-configs LIST  runs tg (greedy) again for each entry with the one-token kernels\n"
                  "on other workgroup shapes, as MOEVK_DECODE_CONFIG takes them: experts=WxR (the MoE\n"
                  "experts' workgroup size W and weight rows per workgroup R), mv=WxR (the dense products'),\n"
                  "'+' joins both; rows \"tg128 experts=128x2\" (in --json: \"decode_config\"), so the best\n"
                  "shape of `moevk bench ops --decode-configs` is checked end to end. Every --json row\n"
                  "names the shapes it ran with (\"decode_kernels\").\n");
      return 0;
    }
    if (a == "-p" && i + 1 < argc) n_prompt = int(unsigned_option(argv[++i], "-p", 0, 1u << 20));
    else if (a == "-n" && i + 1 < argc) n_gen = int(unsigned_option(argv[++i], "-n", 0, 1u << 20));
    else if (a == "-r" && i + 1 < argc) reps = int(unsigned_option(argv[++i], "-r", 1, 1000000));
    else if (a == "--md") format = "md";
    else if (a == "--json") format = "json";
    else if (a == "--csv") format = "csv";
    else if (a == "--sampled") sampled = true;
    else if (a == "--without" && i + 1 < argc) {
      without = split(argv[++i]);
      if (without.empty()) throw std::runtime_error("--without needs a list of fusion names");
    } else if (a == "--decode-configs" && i + 1 < argc) {
      decode_configs = split(argv[++i]);
      if (decode_configs.empty()) throw std::runtime_error("--decode-configs needs a list such as experts=128x2,mv=256x4");
    } else if (!parse_common(argc, argv, i, o, kModelOptions | kProfileOption)) throw std::runtime_error("unknown option " + a);
  }
  if (o.model.empty()) throw std::runtime_error("no model given (-m FILE)");
  char* info_text = nullptr;
  if (moevk_inspect_json(o.model.c_str(), &info_text) != MOEVK_OK) {
    std::fprintf(stderr, "error: %s\n", moevk_last_error());
    return 1;
  }
  auto info = nlohmann::json::parse(info_text);
  moevk_free_string(info_text);
  char* rates_text = nullptr;
  if (moevk_device_rates_json(o.device.empty() ? nullptr : o.device.c_str(), &rates_text) != MOEVK_OK) {
    std::fprintf(stderr, "error: %s\n", moevk_last_error());
    return 1;
  }
  auto rates = nlohmann::json::parse(rates_text);
  moevk_free_string(rates_text);

  const auto load_start = std::chrono::steady_clock::now();
  moevk_model* model = load_model(o, nullptr);
  if (!model) return 1;
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  o.n_ctx = std::max<uint32_t>(o.n_ctx, static_cast<uint32_t>(n_prompt + n_gen + 8));
  moevk_context* ctx = create_context(model, o);
  if (!ctx) {
    moevk_model_free(model);
    return 1;
  }
  const int32_t n_vocab = moevk_model_n_vocab(model);
  std::mt19937 rng(1234);
  std::vector<int32_t> prompt(std::max(n_prompt, 1));  // tg starts from one prompt token even with -p 0
  for (auto& t : prompt) t = static_cast<int32_t>(rng() % n_vocab);

  struct Row {
    std::string test;
    std::vector<double> tps;
    std::string without;      // the fusions turned off ('+'-joined), empty for the main rows
    std::string decode_config;  // the --decode-configs entry, empty for the other rows
    std::string decode_kernels;  // the shapes the context ran ("experts=64x2,mv=128x4")
    nlohmann::json profile;   // the context's decode or prefill profile, with --profile
    std::string error;        // a variant (--without, --decode-configs) that failed (the other rows still print)
    std::vector<double> host_ms;  // tg: per repetition, the host's own ms per decoded token
  };
  std::vector<Row> rows;
  auto fail = [&]() {
    std::fprintf(stderr, "error: %s\n", moevk_context_last_error(ctx));
    moevk_context_free(ctx);
    moevk_model_free(model);
    return 1;
  };
  if (n_prompt > 0) {
    Row r{"pp" + std::to_string(n_prompt), {}};
    for (int rep = -1; rep < reps; ++rep) {
      moevk_context_reset(ctx);
      auto t0 = std::chrono::steady_clock::now();
      if (moevk_decode(ctx, prompt.data(), n_prompt, 0) != MOEVK_OK) return fail();
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (rep >= 0) r.tps.push_back(n_prompt / s);
    }
    rows.push_back(r);
  }
  // tg on `c`: one warm-up and reps timed runs; false on an error (the context's message).
  // sampled: at the CLI's default temperature and filters (drawn on the GPU where they fit);
  // top_k_off: with top-k and min-p off (top-p alone).
  auto run_tg = [&](moevk_context* c, Row& r, bool sampled, bool top_k_off = false) {
    for (int rep = -1; rep < reps; ++rep) {
      moevk_context_reset(c);
      moevk_generate_params gp = moevk_generate_default_params();
      gp.prompt_tokens = prompt.data();
      gp.n_prompt_tokens = 1;
      gp.max_tokens = n_gen + 1;  // the first token comes from the prompt pass; n_gen decodes follow
      gp.ignore_eos = 1;
      if (!sampled) gp.sampling.temperature = 0;
      if (top_k_off) gp.sampling.top_k = 0, gp.sampling.min_p = 0.0f;
      moevk_generate_result res{};
      res.struct_size = sizeof res;
      if (moevk_generate(c, &gp, &res) != MOEVK_OK) return false;
      if (rep >= 0) {
        r.tps.push_back(1000.0 * (res.n_generated - 1) / res.generate_ms);
        r.host_ms.push_back((res.generate_ms - res.generate_wait_ms) / std::max(1, res.n_generated - 1));
      }
    }
    return true;
  };
  if (n_gen > 0) {
    Row r{"tg" + std::to_string(n_gen), {}};
    if (!run_tg(ctx, r, false)) return fail();
    rows.push_back(r);
  }

  char* minfo = nullptr;
  moevk_model_info_json(model, &minfo);
  auto mj = nlohmann::json::parse(minfo ? minfo : "{}");
  moevk_free_string(minfo);
  const nlohmann::json stats = context_stats(ctx);
  const std::string decode_kernels = stats.value("decode_kernels", std::string());  // the main rows'
  const std::string features = stats.value("features", std::string());
  const nlohmann::json profile = o.profile ? stats.value("profile", nlohmann::json()) : nlohmann::json();
  for (Row& r : rows)
    if (profile.contains("decode")) r.profile = profile[r.test[0] == 't' ? "decode" : "prefill"];
  // Variants: the main context is freed first, so each variant's context runs alone and the
  // memory figures above stay those of one context.
  moevk_context_free(ctx);
  ctx = nullptr;
  // One tg row on a fresh context (its own decode profile), made with environment variable `var`
  // set to `value` (both read when a context is created, moevk.h) and restored afterwards, or
  // as the main one where var is null.
  auto variant_row = [&](Row r, const char* var, const std::string& value, bool sample, bool top_k_off = false) {
    const char* env = var ? std::getenv(var) : nullptr;
    const std::string saved = env ? env : "";
    if (var) setenv(var, value.c_str(), 1);
    moevk_context* variant = create_context(model, o);  // prints its error on failure
    if (var && env) setenv(var, saved.c_str(), 1);
    else if (var) unsetenv(var);
    if (!variant) {
      r.error = moevk_model_last_error(model);
    } else if (!run_tg(variant, r, sample, top_k_off)) {
      r.error = moevk_context_last_error(variant);
      std::fprintf(stderr, "error: %s: %s\n", r.test.c_str(), r.error.c_str());
    } else {
      const nlohmann::json vs = context_stats(variant);
      r.decode_kernels = vs.value("decode_kernels", std::string());
      if (o.profile) r.profile = vs.value("profile", nlohmann::json()).value("decode", nlohmann::json());
    }
    if (variant) moevk_context_free(variant);
    rows.push_back(r);
  };
  if (n_gen > 0) {
    // The sampled row on a context of its own, so the tg row's profile is the greedy steps' alone.
    if (sampled) {
      variant_row(Row{"tg" + std::to_string(n_gen) + " sampled", {}}, nullptr, "", true);
      variant_row(Row{"tg" + std::to_string(n_gen) + " sampled top-k off", {}}, nullptr, "", true, true);
    }
    const char* disabled = std::getenv("MOEVK_DISABLE");
    for (const std::string& entry : without)
      for (bool sample : {false, true}) {
        if (sample && !sampled) continue;
        std::string names = entry;
        std::replace(names.begin(), names.end(), '+', ',');
        Row r{"tg" + std::to_string(n_gen) + (sample ? " sampled -" : " -") + entry, {}, entry};
        // The user's own list stays in force.
        variant_row(r, "MOEVK_DISABLE", disabled && *disabled ? std::string(disabled) + "," + names : names, sample);
      }
    for (const std::string& entry : decode_configs) {
      std::string shapes = entry;
      std::replace(shapes.begin(), shapes.end(), '+', ',');
      Row r{"tg" + std::to_string(n_gen) + " " + entry, {}};
      r.decode_config = entry;
      variant_row(r, "MOEVK_DECODE_CONFIG", shapes, false);
    }
  }
  // Device memory at the end (its peak covers load, prefill and decode): the budget is weights +
  // KV cache + a few percent for activations, scratch and logits.
  nlohmann::json memory = stats.value("memory", nlohmann::json::object());
  const double weights_kv = memory.value("weights_bytes", 0.0) + memory.value("kv_cache_bytes", 0.0);
  if (weights_kv > 0) memory["peak_over_weights_and_kv"] = memory.value("device_peak_bytes", 0.0) / weights_kv - 1.0;
  const uint32_t n_layer = info["hparams"].value("n_layer", 0u);
  const double bytes_per_token = info.value("active_bytes_per_token", 0.0);
  const double copy_gbps = rates.value("copy_gbps", 0.0);
  const std::string arch = info["hparams"].value("architecture", std::string("?"));
  const double size_gib = info.value("weight_bytes", 0.0) / (1024.0 * 1024 * 1024);
  const double params_b = info.value("total_params", 0.0) / 1e9;
  const std::string device = mj.value("device", std::string("?"));
  nlohmann::json results = nlohmann::json::array();
  for (const auto& r : rows) {
    Stat s = stat(r.tps);
    nlohmann::json j = {{"model", o.model}, {"architecture", arch}, {"size_gib", size_gib}, {"params_b", params_b},
                        {"device", device}, {"n_batch", o.n_batch}, {"test", r.test}, {"tokens_per_s", s.mean},
                        {"stddev", s.sd}, {"samples", r.tps}};
    if (r.test[0] == 't' && bytes_per_token > 0 && r.error.empty()) {
      j["bytes_per_token"] = bytes_per_token;
      j["achieved_gbps"] = s.mean * bytes_per_token / 1e9;
      j["copy_gbps"] = copy_gbps;
      j["floor_tokens_per_s"] = copy_gbps > 0 ? copy_gbps * 1e9 / bytes_per_token : 0.0;
      j["floor_fraction"] = copy_gbps > 0 ? j["achieved_gbps"].get<double>() / copy_gbps : 0.0;
    }
    if (!r.host_ms.empty() && r.error.empty()) {
      // The host's own work per decoded token (not blocked on the GPU), and the tokens/s it allows.
      const double host_ms = stat(r.host_ms).mean;
      j["host_ms_per_token"] = host_ms;
      j["host_bound_tokens_per_s"] = host_ms > 0 ? 1000.0 / host_ms : 0.0;
    }
    if (!r.without.empty()) j["without"] = r.without;
    if (!r.decode_config.empty()) j["decode_config"] = r.decode_config;
    j["decode_kernels"] = r.decode_kernels.empty() ? decode_kernels : r.decode_kernels;
    if (!features.empty()) j["features"] = features;  // one model load: the same for every row
    if (!r.error.empty()) j["error"] = r.error;
    if (!r.profile.is_null()) j["profile"] = r.profile;
    j["memory"] = memory;
    j["load_s"] = load_s;  // the model's load (file read and upload), once for all rows
    results.push_back(j);
  }
  if (format == "json") {
    std::printf("%s\n", results.dump(2).c_str());
  } else if (format == "csv") {
    std::printf("model,architecture,size_gib,params_b,device,n_batch,test,tokens_per_s,stddev,achieved_gbps,floor_fraction\n");
    for (const auto& j : results)
      std::printf("%s,%s,%.2f,%.2f,\"%s\",%u,%s,%.2f,%.2f,%.1f,%.3f\n", o.model.c_str(), arch.c_str(), size_gib, params_b,
                  device.c_str(), o.n_batch, j["test"].get<std::string>().c_str(), j["tokens_per_s"].get<double>(),
                  j["stddev"].get<double>(), j.value("achieved_gbps", 0.0), j.value("floor_fraction", 0.0));
  } else {
    auto human = [](double v, const char* const* units, double step) {
      int u = 0;
      while (v >= step && units[u + 1]) {
        v /= step;
        ++u;
      }
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2f %s", v, units[u]);
      return std::string(buf);
    };
    auto percent = [](double f) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * f);
      return std::string(buf);
    };
    static const char* const size_units[] = {"B", "KiB", "MiB", "GiB", "TiB", nullptr};
    static const char* const count_units[] = {"", "K", "M", "B", "T", nullptr};
    const std::string size_text = human(info.value("weight_bytes", 0.0), size_units, 1024.0);
    const std::string params_text = human(info.value("total_params", 0.0), count_units, 1000.0);
    std::printf("| model | size | params | device | n_batch | test | t/s | GB/s | %% of copy bw |\n");
    std::printf("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |\n");
    for (const auto& j : results) {
      if (j.contains("error")) {
        std::printf("| %s | %s | %s | %s | %u | %s | error: %s | - | - |\n", arch.c_str(), size_text.c_str(),
                    params_text.c_str(), device.c_str(), o.n_batch, j["test"].get<std::string>().c_str(),
                    j["error"].get<std::string>().c_str());
        continue;
      }
      std::printf("| %s | %s | %s | %s | %u | %s | %.2f ± %.2f | %s | %s |\n", arch.c_str(), size_text.c_str(),
                  params_text.c_str(),
                  device.c_str(), o.n_batch, j["test"].get<std::string>().c_str(), j["tokens_per_s"].get<double>(),
                  j["stddev"].get<double>(),
                  j.contains("achieved_gbps") ? std::to_string(j["achieved_gbps"].get<double>()).substr(0, 6).c_str() : "-",
                  j.contains("floor_fraction") ? percent(j["floor_fraction"].get<double>()).c_str() : "-");
    }
    std::printf("\ncopy bandwidth measured at start: %.1f GB/s; weight bytes read per decoded token: %.3f GB\n",
                copy_gbps, bytes_per_token / 1e9);
    std::string host_text;
    for (const auto& j : results)
      if (j.contains("host_ms_per_token"))
        host_text += (host_text.empty() ? "" : ", ") + j["test"].get<std::string>() + " " +
                     std::to_string(j["host_ms_per_token"].get<double>()).substr(0, 6) + " ms";
    if (!host_text.empty())
      std::printf("host time per decoded token, not waiting on the GPU (bounds t/s at 1000 / ms): %s\n",
                  host_text.c_str());
    if (!decode_kernels.empty())
      std::printf("one-token kernel shapes (workgroup x rows): %s (MOEVK_DECODE_CONFIG, --decode-configs)\n",
                  decode_kernels.c_str());
    if (weights_kv > 0)
      std::printf("device memory at peak: %s = weights %s + KV cache %s (n_ctx %u) %+.1f%% (activations %s)\n",
                  human(memory.value("device_peak_bytes", 0.0), size_units, 1024.0).c_str(),
                  human(memory.value("weights_bytes", 0.0), size_units, 1024.0).c_str(),
                  human(memory.value("kv_cache_bytes", 0.0), size_units, 1024.0).c_str(), o.n_ctx,
                  100.0 * memory.value("peak_over_weights_and_kv", 0.0),
                  human(memory.value("activations_bytes", 0.0), size_units, 1024.0).c_str());
    if (o.profile) print_profile(profile, n_prompt, n_layer, stdout);
    if (o.profile)
      for (const auto& r : rows)
        if (!r.without.empty() && r.profile.contains("dispatches_per_step"))
          std::printf("%s: %s dispatches, %s barriers per decode step\n", r.test.c_str(),
                      r.profile["dispatches_per_step"].dump().c_str(), r.profile.value("barriers_per_step", nlohmann::json()).dump().c_str());
  }
  moevk_model_free(model);
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
