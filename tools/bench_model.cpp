#include "bench_model.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_plan.hpp"
#include "common.hpp"
#include "profile_report.hpp"

namespace moevk_cli {
namespace {

constexpr uint32_t kMaxTokens = 1u << 20;  // per -p, -n, -pg or -d value
constexpr uint32_t kMaxBatch = 1u << 16;   // per -b value (the shared -b's limit)

const char kUsage[] =
    "usage: moevk bench -m FILE [-m FILE]... [-p 512,...] [-n 128,...] [-pg P,N]... [-d 0,...]\n"
    "                   [-b 512,...] [-r 5] [-o md|csv|json|jsonl] [--profile] [--sampled]\n"
    "                   [--without LIST] [--decode-configs LIST] [--device D]\n"
    "       moevk bench ops --help\n\n"
    "End-to-end speed in the style of llama-bench (its lists, test names and JSON fields): pp<P>\n"
    "processes a P-token prompt in batches of -b tokens, tg<N> generates N tokens one at a time\n"
    "(greedy, argmax on the GPU). Each test runs -r times after one warm-up; tokens/s are mean +-\n"
    "standard deviation. tg rows also give the achieved weight bandwidth (bytes read per token from\n"
    "`moevk info` x tokens/s) and its share of the device's copy bandwidth, measured at start (the\n"
    "decode floor), and the host's own time per decoded token (not blocked on the GPU: submits,\n"
    "detokenizing, stop strings), which bounds tokens/s however fast the GPU is.\n\n"
    "tests:\n"
    "  -m, --model FILE          a GGUF file; repeat for several, run one after another (each\n"
    "                            loaded alone) into one table\n"
    "  -p LIST                   a pp test per prompt length (default 512; 0 = none)\n"
    "  -n LIST                   a tg test per generation length (default 128; 0 = none)\n"
    "  -pg P,N                   pp<P>+tg<N>: the prompt, then N tokens generated, tokens/s over\n"
    "                            both, (P + N) / time (repeatable)\n"
    "  -d, --n-depth LIST        every test again after that many tokens in the context (default 0):\n"
    "                            \"tg128 @ d4096\"; decoded once per depth, not timed, and each\n"
    "                            repetition goes back to them. Where attention over the KV cache\n"
    "                            shows: tg rows at a depth also count the KV cache read per token\n"
    "                            (--json: kv_bytes_per_token, floor_fraction_with_kv)\n"
    "  -b, --batch-size LIST     every test again on a context per batch size (default 512)\n"
    "  -r N                      repetitions (default 5)\n"
    "  -c, --ctx-size N          context length (default: what the tests need)\n"
    "  --device INDEX|NAME       Vulkan device (see `moevk devices`)\n"
    "  --validate, --no-progress the validation layer; no progress bar while loading\n"
    "output:\n"
    "  -o md|csv|json|jsonl      a markdown table (default; also --md, --csv, --json), CSV, one\n"
    "                            JSON array, or a JSON object per line. Rows print as their tests\n"
    "                            end (--json: at the end). JSON rows carry llama-bench's field\n"
    "                            names too (n_prompt, n_gen, n_depth, avg_ts, stddev_ts, samples_ts,\n"
    "                            avg_ns, samples_ns, model_type, model_size, model_n_params,\n"
    "                            gpu_info, test_time), and the shapes they ran with (decode_kernels)\n"
    "  --profile                 GPU timestamps at stage boundaries: GPU ms per stage (attention,\n"
    "                            router+top-k, experts, other) per decoded token and per prompt,\n"
    "                            dispatches and barriers per step, a table per depth and batch size\n"
    "                            (--json: a \"profile\" object per row, its timed repetitions' steps\n"
    "                            only; pp+tg rows have its \"prefill\" and \"decode\")\n"
    "variants (each tg test again, in a fresh context of the same loaded model, at the first -b):\n"
    "  --sampled                 at the CLI's default sampling (temperature 0.8, top-k 40, top-p\n"
    "                            0.95, min-p 0.05; drawn on the GPU): \"tg128 sampled\", and one per\n"
    "                            --without entry; also \"tg128 sampled top-k off\": top-p 0.95 alone,\n"
    "                            as OpenAI-style clients send it (the whole vocabulary)\n"
    "  --without A,B+C,...       with those decode fusions off (MOEVK_DISABLE's names: fuse_norms,\n"
    "                            kv_append, rope_attention, merge_products, router_handoff,\n"
    "                            attention_handoff, chain_steps, gpu_sampling; '+' joins several):\n"
    "                            \"tg128 -router_handoff\" (--json: \"without\"), what each is worth;\n"
    "                            gpu_sampling: the sampled rows sample on the host\n"
    "  --decode-configs LIST     on other one-token kernel shapes, as MOEVK_DECODE_CONFIG takes\n"
    "                            them: experts=WxR (the MoE experts' workgroup size W and weight\n"
    "                            rows per workgroup R), down=WxR (their down product alone, whose\n"
    "                            rows are n_ff wide), mv=WxR (the dense products'), '+' joins\n"
    "                            them: \"tg128 experts=128x2\" (--json: \"decode_config\"), the end\n"
    "                            to end check of `moevk bench ops --decode-configs`\n"
    "llama-bench's -ngl, -fa and -t are refused: every layer runs on the GPU, attention is always\n"
    "flash attention, and there are no CPU threads to set.\n";

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

struct Row {
  BenchTest test;
  std::string label;           // the test's name, and the variant's (" sampled", " -router_handoff")
  bool main = true;            // a row of the main context (not a --without/--sampled/--decode-configs one)
  uint32_t n_batch = 0;        // the context's (-b)
  std::vector<double> tps;
  std::string without;         // the fusions turned off ('+'-joined), empty for the main rows
  std::string decode_config;   // the --decode-configs entry, empty for the other rows
  nlohmann::json profile;      // the timed repetitions' profile (both kinds), with --profile
  std::string error;           // the test failed (the other rows still run and print)
  std::vector<double> host_ms;  // per repetition, the host's own ms per decoded token
};

struct Runner {
  const GenOptions& o;
  int reps;
  std::vector<int32_t> prompt;        // the pp and pg prompts are its first n_prompt tokens
  std::vector<int32_t> depth_tokens;  // the -d tokens: a depth of d is the first d

  // One warm-up and reps timed runs of t on h; false on an error (the context's message).
  // sampled: at the CLI's default temperature and filters (drawn on the GPU where they fit);
  // top_k_off: with top-k and min-p off (top-p alone).
  bool run(DepthHeld& h, const BenchTest& t, Row& r, bool sampled, bool top_k_off) const {
    nlohmann::json before;
    for (int rep = -1; rep < reps; ++rep) {
      if (go_to_depth(h, t.n_depth, depth_tokens) != MOEVK_OK) return false;
      if (rep == 0 && o.profile) before = context_profile(h.ctx);
      if (t.is_pp()) {
        const auto t0 = std::chrono::steady_clock::now();
        if (moevk_decode(h.ctx, prompt.data(), t.n_prompt, 0) != MOEVK_OK) {
          h.depth = 0;
          return false;
        }
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (rep >= 0) r.tps.push_back(t.n_prompt / s);
        continue;
      }
      moevk_generate_params gp = moevk_generate_default_params();
      gp.prompt_tokens = prompt.data();
      gp.n_prompt_tokens = std::max<uint32_t>(t.n_prompt, 1);  // tg starts from one prompt token
      gp.max_tokens = int32_t(t.n_gen) + 1;  // the first token comes from the prompt pass; n_gen decodes follow
      gp.ignore_eos = 1;
      if (!sampled) gp.sampling.temperature = 0;
      if (top_k_off) gp.sampling.top_k = 0, gp.sampling.min_p = 0.0f;
      moevk_generate_result res{};
      res.struct_size = sizeof res;
      if (moevk_generate(h.ctx, &gp, &res) != MOEVK_OK) {
        h.depth = 0;
        return false;
      }
      if (rep >= 0) {
        const int decoded = std::max(1, res.n_generated - 1);
        r.tps.push_back(t.is_tg() ? 1000.0 * decoded / res.generate_ms
                                  : 1000.0 * (t.n_prompt + decoded) / (res.prompt_ms + res.generate_ms));
        r.host_ms.push_back((res.generate_ms - res.generate_wait_ms) / decoded);
      }
    }
    if (o.profile) r.profile = profile_between(before, context_profile(h.ctx));
    return true;
  }
};

// The row's part of its profile: tg's decode steps, pp's prefill steps, both for pp+tg.
nlohmann::json row_profile(const Row& r) {
  if (r.profile.is_null() || !r.profile.contains("decode")) return nullptr;
  if (r.test.is_tg()) return r.profile["decode"];
  if (r.test.is_pp()) return r.profile["prefill"];
  return {{"prefill", r.profile["prefill"]}, {"decode", r.profile["decode"]}};
}

// What every file is benchmarked with.
struct BenchConfig {
  GenOptions o;  // o.model unused: the file is bench_file's; o.n_batch: n_batches' first
  std::vector<BenchTest> tests;
  std::vector<uint32_t> n_batches{512};     // -b: the tests again on a context per batch size
  int reps = 5;
  bool sampled = false;                     // tg rows at a temperature too
  std::vector<std::string> without;         // tg again per entry, with those decode fusions off
  std::vector<std::string> decode_configs;  // tg again per entry, with those decode kernel shapes
};

// One file's rows (JSON, one per test and variant) and the markdown lines printed under the
// table for it (bandwidth, host time, memory, profiles).
struct FileResult {
  nlohmann::json rows = nlohmann::json::array();
  std::string notes;
  bool failed = false;
};

std::string human(double v, const char* const* units, double step) {
  int u = 0;
  while (v >= step && units[u + 1]) {
    v /= step;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %s", v, units[u]);
  return std::string(buf);
}
// "2026-12-07T14:20:05Z", as llama-bench's test_time.
std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

const char* const kSizeUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", nullptr};
const char* const kCountUnits[] = {"", "K", "M", "B", "T", nullptr};

// Each row goes to on_row as soon as its test has run (so a run stopped at a time limit keeps
// the rows before), and into the result.
FileResult bench_file(const BenchConfig& cfg, const std::string& path, const nlohmann::json& rates,
                      const std::function<void(const nlohmann::json&)>& on_row) {
  FileResult result;
  GenOptions o = cfg.o;
  o.model = path;
  const std::vector<BenchTest>& tests = cfg.tests;
  char* info_text = nullptr;
  if (moevk_inspect_json(path.c_str(), &info_text) != MOEVK_OK) {
    std::fprintf(stderr, "error: %s\n", moevk_last_error());
    result.failed = true;
    return result;
  }
  auto info = nlohmann::json::parse(info_text);
  moevk_free_string(info_text);

  const auto load_start = std::chrono::steady_clock::now();
  moevk_model* model = load_model(o, nullptr);
  if (!model) {
    result.failed = true;
    return result;
  }
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  uint64_t positions = 0, max_prompt = 1, max_depth = 0;
  for (const BenchTest& t : tests) {
    positions = std::max(positions, t.positions());
    max_prompt = std::max<uint64_t>(max_prompt, t.n_prompt);
    max_depth = std::max<uint64_t>(max_depth, t.n_depth);
  }
  o.n_ctx = uint32_t(std::max<uint64_t>(o.n_ctx, positions + 8));
  const int32_t n_vocab = moevk_model_n_vocab(model);
  Runner runner{o, cfg.reps, std::vector<int32_t>(max_prompt), std::vector<int32_t>(max_depth)};
  std::mt19937 rng(1234);
  for (auto& t : runner.prompt) t = static_cast<int32_t>(rng() % n_vocab);
  for (auto& t : runner.depth_tokens) t = static_cast<int32_t>(rng() % n_vocab);

  char* minfo = nullptr;
  moevk_model_info_json(model, &minfo);
  const nlohmann::json mj = nlohmann::json::parse(minfo ? minfo : "{}");
  moevk_free_string(minfo);
  const uint32_t n_layer = info["hparams"].value("n_layer", 0u);
  const double bytes_per_token = info.value("active_bytes_per_token", 0.0);
  // F16 K and V bytes of one position over all layers: a decoded token reads every position
  // before it once per KV head (at least; GQA's query heads share each read).
  const double kv_bytes_per_position = info.value("kv_bytes_per_token", 0.0);
  const double copy_gbps = rates.value("copy_gbps", 0.0);
  // llama-bench's model_type: architecture, parameter count and file type ("qwen3moe 30.53B Q4_K_M").
  std::string n_params_text = human(info.value("total_params", 0.0), kCountUnits, 1000.0);
  n_params_text.erase(std::remove(n_params_text.begin(), n_params_text.end(), ' '), n_params_text.end());
  const std::string model_type = info["hparams"].value("architecture", std::string("?")) + " " + n_params_text + " " +
                                 info.value("file_type", nlohmann::json::object()).value("name", std::string());
  // Device memory as the row's context reports it when the row is done (the peak covers load,
  // prefill and decode so far): the budget is weights + KV cache + a few percent for
  // activations, scratch and logits.
  auto memory_of = [](const nlohmann::json& stats) {
    nlohmann::json memory = stats.value("memory", nlohmann::json::object());
    const double weights_kv = memory.value("weights_bytes", 0.0) + memory.value("kv_cache_bytes", 0.0);
    if (weights_kv > 0)
      memory["peak_over_weights_and_kv"] = memory.value("device_peak_bytes", 0.0) / weights_kv - 1.0;
    return memory;
  };
  // The row's JSON, from the stats of the context it ran on (where its test failed, the
  // context's stats may be empty).
  auto emit = [&](const Row& r, const nlohmann::json& ctx_stats) {
    const std::string features = ctx_stats.value("features", std::string());
    const nlohmann::json memory = memory_of(ctx_stats);
    const std::string kernels = ctx_stats.value("decode_kernels", std::string());
    Stat s = stat(r.tps);
    nlohmann::json j = {{"model", path},
                        {"architecture", info["hparams"].value("architecture", std::string("?"))},
                        {"size_gib", info.value("weight_bytes", 0.0) / (1024.0 * 1024 * 1024)},
                        {"params_b", info.value("total_params", 0.0) / 1e9},
                        {"device", mj.value("device", std::string("?"))},
                        {"n_batch", r.n_batch},
                        {"test", r.label},
                        {"n_prompt", r.test.n_prompt},
                        {"n_gen", r.test.n_gen},
                        {"n_depth", r.test.n_depth},
                        {"tokens_per_s", s.mean},
                        {"stddev", s.sd},
                        {"samples", r.tps}};
    if (r.test.is_tg() && bytes_per_token > 0 && r.error.empty()) {
      j["bytes_per_token"] = bytes_per_token;
      j["achieved_gbps"] = s.mean * bytes_per_token / 1e9;
      j["copy_gbps"] = copy_gbps;
      j["floor_tokens_per_s"] = copy_gbps > 0 ? copy_gbps * 1e9 / bytes_per_token : 0.0;
      j["floor_fraction"] = copy_gbps > 0 ? j["achieved_gbps"].get<double>() / copy_gbps : 0.0;
      // The weights are issue 6's floor; the KV cache adds the positions each timed step attends
      // to: the prompt token sits at position depth, so the i-th of the n_gen steps (i from 1)
      // decodes position depth + i and reads depth + i + 1 positions, depth + (n_gen + 3) / 2
      // on average.
      const double kv_bytes = kv_bytes_per_position * (r.test.n_depth + (r.test.n_gen + 3) / 2.0);
      j["kv_bytes_per_token"] = kv_bytes;
      j["floor_fraction_with_kv"] = copy_gbps > 0 ? s.mean * (bytes_per_token + kv_bytes) / 1e9 / copy_gbps : 0.0;
    }
    if (!r.host_ms.empty() && r.error.empty()) {
      // The host's own work per decoded token (not blocked on the GPU), and the tokens/s it allows.
      const double host_ms = stat(r.host_ms).mean;
      j["host_ms_per_token"] = host_ms;
      j["host_bound_tokens_per_s"] = host_ms > 0 ? 1000.0 / host_ms : 0.0;
    }
    // llama-bench's own names for the same facts, so scripts written for its JSON read these
    // rows too (its samples_ns: each repetition's time for the test's tokens).
    const double test_tokens = r.test.n_prompt + r.test.n_gen;
    std::vector<double> samples_ns;
    for (double tps : r.tps) samples_ns.push_back(tps > 0 ? std::round(test_tokens / tps * 1e9) : 0.0);
    const Stat ns = stat(samples_ns);
    j["model_filename"] = path;
    j["model_type"] = model_type;
    j["model_size"] = info.value("weight_bytes", uint64_t(0));
    j["model_n_params"] = info.value("total_params", uint64_t(0));
    j["gpu_info"] = j["device"];
    j["type_k"] = "f16";
    j["type_v"] = "f16";
    j["avg_ts"] = s.mean;
    j["stddev_ts"] = s.sd;
    j["samples_ts"] = r.tps;
    j["avg_ns"] = uint64_t(std::llround(ns.mean));
    j["stddev_ns"] = uint64_t(std::llround(ns.sd));
    std::vector<uint64_t> samples_ns_int(samples_ns.begin(), samples_ns.end());
    j["samples_ns"] = samples_ns_int;
    j["test_time"] = utc_now();
    j["moevk_version"] = moevk_version();
    if (!r.without.empty()) j["without"] = r.without;
    if (!r.decode_config.empty()) j["decode_config"] = r.decode_config;
    if (!kernels.empty()) j["decode_kernels"] = kernels;  // absent where no context was made
    if (!features.empty()) j["features"] = features;
    if (!r.error.empty()) j["error"] = r.error;
    if (const nlohmann::json p = row_profile(r); !p.is_null()) j["profile"] = p;
    j["memory"] = memory;
    j["load_s"] = load_s;  // the model's load (file read and upload), once for all rows
    result.rows.push_back(j);
    on_row(j);
  };

  std::vector<Row> rows;
  // The main tests on a context per batch size, one after another (each freed before the next,
  // so each runs alone). A test that fails is its row's error; the others still run and print (a
  // failure at a depth must not lose the rows before it), and the exit status says one failed.
  nlohmann::json stats;  // the first batch size's context's, at its end (its kernels and profile)
  std::vector<std::pair<uint32_t, nlohmann::json>> batch_memory;  // (n_batch, memory at its end)
  for (uint32_t n_batch : cfg.n_batches) {
    o.n_batch = n_batch;
    moevk_context* ctx = create_context(model, o);  // prints its error on failure
    if (!ctx) {
      result.failed = true;
      continue;
    }
    DepthHeld main{ctx};
    for (const BenchTest& t : tests) {
      Row r{t, t.name()};
      r.n_batch = n_batch;
      if (!runner.run(main, t, r, false, false)) {
        r.error = moevk_context_last_error(ctx);
        std::fprintf(stderr, "error: %s: %s: %s\n", path.c_str(), r.label.c_str(), r.error.c_str());
        result.failed = true;
      }
      emit(r, context_stats(ctx));
      rows.push_back(r);
    }
    const nlohmann::json end_stats = context_stats(ctx);
    if (stats.is_null()) stats = end_stats;
    batch_memory.emplace_back(n_batch, memory_of(end_stats));
    moevk_context_free(ctx);
  }
  if (batch_memory.empty()) {  // no context could be made (the error is printed): nothing to vary
    moevk_model_free(model);
    return result;
  }
  const std::string decode_kernels = stats.value("decode_kernels", std::string());  // the main rows'
  const nlohmann::json profile = o.profile ? stats.value("profile", nlohmann::json()) : nlohmann::json();
  // Variants on the first batch size (one-token steps: the batch size does not enter them), each
  // context alone, as the main ones.
  o.n_batch = cfg.n_batches.front();
  // The tg tests again on a fresh context (its own decode profile), made with environment
  // variable `var` set to `value` (both read when a context is created, moevk.h) and restored
  // afterwards, or as the main one where var is null. Each row is labelled test + suffix.
  auto variant_rows = [&](const Row& like, const std::string& suffix, const char* var, const std::string& value,
                          bool sample, bool top_k_off = false) {
    const char* env = var ? std::getenv(var) : nullptr;
    const std::string saved = env ? env : "";
    if (var) setenv(var, value.c_str(), 1);
    moevk_context* variant = create_context(model, o);  // prints its error on failure
    if (var && env) setenv(var, saved.c_str(), 1);
    else if (var) unsetenv(var);
    DepthHeld held{variant};
    for (const BenchTest& t : tests) {
      if (!t.is_tg()) continue;
      Row r = like;
      r.test = t;
      r.label = t.name() + suffix;
      r.main = false;
      r.n_batch = o.n_batch;
      if (!variant) {
        r.error = moevk_model_last_error(model);
      } else if (!runner.run(held, t, r, sample, top_k_off)) {
        r.error = moevk_context_last_error(variant);
        std::fprintf(stderr, "error: %s: %s: %s\n", path.c_str(), r.label.c_str(), r.error.c_str());
      }
      emit(r, variant ? context_stats(variant) : nlohmann::json::object());
      rows.push_back(r);
    }
    if (variant) moevk_context_free(variant);
  };
  // The sampled rows on contexts of their own, so the tg rows' profiles are the greedy steps' alone.
  if (cfg.sampled) {
    variant_rows(Row{}, " sampled", nullptr, "", true);
    variant_rows(Row{}, " sampled top-k off", nullptr, "", true, true);
  }
  const char* disabled = std::getenv("MOEVK_DISABLE");
  for (const std::string& entry : cfg.without)
    for (bool sample : {false, true}) {
      if (sample && !cfg.sampled) continue;
      std::string names = entry;
      std::replace(names.begin(), names.end(), '+', ',');
      Row like;
      like.without = entry;
      // The user's own list stays in force.
      variant_rows(like, (sample ? " sampled -" : " -") + entry, "MOEVK_DISABLE",
                   disabled && *disabled ? std::string(disabled) + "," + names : names, sample);
    }
  for (const std::string& entry : cfg.decode_configs) {
    std::string shapes = entry;
    std::replace(shapes.begin(), shapes.end(), '+', ',');
    Row like;
    like.decode_config = entry;
    variant_rows(like, " " + entry, "MOEVK_DECODE_CONFIG", shapes, false);
  }
  moevk_model_free(model);


  // The markdown notes, into a string: they print after the table of every file's rows.
  char* buf = nullptr;
  size_t len = 0;
  std::FILE* out = open_memstream(&buf, &len);
  if (!out) return result;
  std::fprintf(out, "copy bandwidth measured at start: %.1f GB/s; weight bytes read per decoded token: %.3f GB\n",
               copy_gbps, bytes_per_token / 1e9);
  std::string host_text, kv_text;
  for (const auto& j : result.rows) {
    // The test's name, and its batch size where there are several.
    const std::string test = j["test"].get<std::string>() +
                             (cfg.n_batches.size() > 1 ? " (n_batch " + j["n_batch"].dump() + ")" : std::string());
    if (j.contains("host_ms_per_token"))
      host_text += (host_text.empty() ? "" : ", ") + test + " " +
                   std::to_string(j["host_ms_per_token"].get<double>()).substr(0, 6) + " ms";
    if (j.contains("kv_bytes_per_token") && j.value("n_depth", 0u) > 0) {
      char kv[160];
      std::snprintf(kv, sizeof kv, "%s%s %.1f MB (weights + KV at %.1f%% of copy bw)", kv_text.empty() ? "" : ", ",
                    test.c_str(), j["kv_bytes_per_token"].get<double>() / 1e6,
                    100.0 * j["floor_fraction_with_kv"].get<double>());
      kv_text += kv;
    }
  }
  if (!host_text.empty())
    std::fprintf(out, "host time per decoded token, not waiting on the GPU (bounds t/s at 1000 / ms): %s\n",
                 host_text.c_str());
  if (!kv_text.empty())
    std::fprintf(out, "KV cache read per decoded token at depth (mean over the test's steps): %s\n", kv_text.c_str());
  if (!decode_kernels.empty())
    std::fprintf(out, "one-token kernel shapes (workgroup x rows): %s (MOEVK_DECODE_CONFIG, --decode-configs)\n",
                 decode_kernels.c_str());
  for (const auto& [n_batch, memory] : batch_memory)
    if (memory.contains("peak_over_weights_and_kv"))
      std::fprintf(out,
                   "device memory at peak: %s = weights %s + KV cache %s (n_ctx %u) %+.1f%% (activations %s, "
                   "n_batch %u)\n",
                   human(memory.value("device_peak_bytes", 0.0), kSizeUnits, 1024.0).c_str(),
                   human(memory.value("weights_bytes", 0.0), kSizeUnits, 1024.0).c_str(),
                   human(memory.value("kv_cache_bytes", 0.0), kSizeUnits, 1024.0).c_str(), o.n_ctx,
                   100.0 * memory.value("peak_over_weights_and_kv", 0.0),
                   human(memory.value("activations_bytes", 0.0), kSizeUnits, 1024.0).c_str(), n_batch);
  if (o.profile) {
    // A table per batch size and depth: the first pp and tg test there (the main contexts' timed
    // steps).
    std::vector<uint32_t> depths;
    for (const BenchTest& t : tests)
      if (std::find(depths.begin(), depths.end(), t.n_depth) == depths.end()) depths.push_back(t.n_depth);
    for (uint32_t n_batch : cfg.n_batches) {
      for (uint32_t d : depths) {
        const Row *pp = nullptr, *tg = nullptr;
        for (const Row& r : rows) {
          if (!r.main || r.n_batch != n_batch || r.test.n_depth != d || r.profile.is_null())
            continue;
          if (!pp && r.test.is_pp()) pp = &r;
          if (!tg && r.test.is_tg()) tg = &r;
        }
        if (!pp && !tg) continue;
        nlohmann::json table = profile;
        const nlohmann::json& either = tg ? tg->profile : pp->profile;
        table["decode"] = tg ? tg->profile["decode"] : empty_profile(either)["decode"];
        table["prefill"] = pp ? pp->profile["prefill"] : empty_profile(either)["prefill"];
        std::string heading = d ? "at depth " + std::to_string(d) : std::string();
        if (cfg.n_batches.size() > 1)
          heading += (heading.empty() ? "at " : ", ") + ("n_batch " + std::to_string(n_batch));
        print_profile(table, pp ? pp->test.n_prompt : 0, n_layer, out, heading);
      }
    }
    for (const auto& r : rows)
      if (!r.without.empty() && r.profile.contains("decode"))
        std::fprintf(out, "%s: %s dispatches, %s barriers per decode step\n", r.label.c_str(),
                     r.profile["decode"].value("dispatches_per_step", nlohmann::json()).dump().c_str(),
                     r.profile["decode"].value("barriers_per_step", nlohmann::json()).dump().c_str());
  }
  std::fclose(out);
  result.notes.assign(buf, len);
  std::free(buf);
  return result;
}

void print_markdown_header() {
  std::printf("| model | size | params | device | n_batch | test | t/s | GB/s | %% of copy bw |\n");
  std::printf("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |\n");
}

void print_markdown_row(const nlohmann::json& j) {
  const std::string size = human(j["size_gib"].get<double>() * 1024.0 * 1024 * 1024, kSizeUnits, 1024.0);
  const std::string params = human(j["params_b"].get<double>() * 1e9, kCountUnits, 1000.0);
  std::printf("| %s | %s | %s | %s | %u | %s | ", j["architecture"].get<std::string>().c_str(), size.c_str(),
              params.c_str(), j["device"].get<std::string>().c_str(), j["n_batch"].get<uint32_t>(),
              j["test"].get<std::string>().c_str());
  if (j.contains("error"))
    std::printf("error: %s | - | - |\n", j["error"].get<std::string>().c_str());
  else if (j.contains("achieved_gbps"))
    std::printf("%.2f ± %.2f | %.2f | %.1f%% |\n", j["tokens_per_s"].get<double>(), j["stddev"].get<double>(),
                j["achieved_gbps"].get<double>(), 100.0 * j["floor_fraction"].get<double>());
  else
    std::printf("%.2f ± %.2f | - | - |\n", j["tokens_per_s"].get<double>(), j["stddev"].get<double>());
}

void print_csv_header() {
  std::printf("model,architecture,size_gib,params_b,device,n_batch,test,n_prompt,n_gen,n_depth,tokens_per_s,stddev,"
              "achieved_gbps,floor_fraction\n");
}

void print_csv_row(const nlohmann::json& j) {
  std::printf("%s,%s,%.2f,%.2f,\"%s\",%u,%s,%u,%u,%u,%.2f,%.2f,%.1f,%.3f\n", j["model"].get<std::string>().c_str(),
              j["architecture"].get<std::string>().c_str(), j["size_gib"].get<double>(), j["params_b"].get<double>(),
              j["device"].get<std::string>().c_str(), j["n_batch"].get<uint32_t>(), j["test"].get<std::string>().c_str(),
              j["n_prompt"].get<uint32_t>(), j["n_gen"].get<uint32_t>(), j["n_depth"].get<uint32_t>(),
              j["tokens_per_s"].get<double>(), j["stddev"].get<double>(), j.value("achieved_gbps", 0.0),
              j.value("floor_fraction", 0.0));
}

}  // namespace

int bench_model(int argc, char** argv) {
  BenchConfig cfg;
  cfg.o.progress = true;
  BenchPlanOptions plan;
  std::string format = "md";
  std::vector<std::string> models;  // -m, repeatable as llama-bench's
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::printf("%s", kUsage);
      return 0;
    }
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) throw std::runtime_error("option " + a + " needs a value");
      return argv[++i];
    };
    if (a == "-m" || a == "--model") models.emplace_back(value());
    else if (a == "-b" || a == "--batch-size") cfg.n_batches = parse_uint_list(value(), "-b", 1, kMaxBatch);
    else if (a == "-p") plan.n_prompt = parse_uint_list(value(), "-p", 0, kMaxTokens);
    else if (a == "-n") plan.n_gen = parse_uint_list(value(), "-n", 0, kMaxTokens);
    else if (a == "-d" || a == "--n-depth") plan.n_depth = parse_uint_list(value(), "-d", 0, kMaxTokens);
    else if (a == "-pg") {
      const std::string v = value();
      const std::vector<uint32_t> pg = parse_uint_list(v, "-pg", 1, kMaxTokens);
      if (pg.size() != 2) throw std::runtime_error("option -pg: '" + v + "' is not PROMPT,GEN such as 512,128");
      plan.pg.emplace_back(pg[0], pg[1]);
    } else if (a == "-r") cfg.reps = int(unsigned_option(value(), "-r", 1, 1000000));
    else if (a == "-o" || a == "--output") {
      format = value();
      if (format != "md" && format != "csv" && format != "json" && format != "jsonl")
        throw std::runtime_error("option " + a + ": '" + format + "' is not md, csv, json or jsonl");
    } else if (a == "--md") format = "md";
    else if (a == "--json") format = "json";
    else if (a == "--csv") format = "csv";
    else if (a == "--sampled") cfg.sampled = true;
    else if (a == "--without") {
      cfg.without = split_list(value());
      if (cfg.without.empty()) throw std::runtime_error("--without needs a list of fusion names");
    } else if (a == "--decode-configs") {
      cfg.decode_configs = split_list(value());
      if (cfg.decode_configs.empty())
        throw std::runtime_error("--decode-configs needs a list such as experts=128x2,mv=256x4");
    } else if (!parse_common(argc, argv, i, cfg.o, kModelOptions | kProfileOption)) {
      // llama-bench's options that have no meaning here, named so a copied command is easy to fix.
      if (a == "-ngl" || a == "--n-gpu-layers")
        throw std::runtime_error(a + ": moevk runs every layer on the GPU; leave it out");
      if (a == "-fa" || a == "--flash-attn")
        throw std::runtime_error(a + ": moevk's attention is always flash attention; leave it out");
      if (a == "-t" || a == "--threads")
        throw std::runtime_error(a + ": moevk computes on the GPU only, with no CPU threads to set; leave it out");
      throw std::runtime_error("unknown option " + a);
    }
  }
  if (models.empty()) throw std::runtime_error("no model given (-m FILE)");
  cfg.o.n_batch = cfg.n_batches.front();
  cfg.tests = plan_bench(plan);
  if (cfg.tests.empty()) throw std::runtime_error("no test to run: -p and -n are 0 and no -pg is given");
  char* rates_text = nullptr;
  if (moevk_device_rates_json(cfg.o.device.empty() ? nullptr : cfg.o.device.c_str(), &rates_text) != MOEVK_OK) {
    std::fprintf(stderr, "error: %s\n", moevk_last_error());
    return 1;
  }
  const nlohmann::json rates = nlohmann::json::parse(rates_text);
  moevk_free_string(rates_text);

  // File by file, each loaded alone (freed before the next), all rows in one table. The table,
  // CSV and JSON lines print each row as its test ends (flushed: a run stopped at a time limit
  // keeps what it measured); --json's array prints at the end.
  if (format == "md") print_markdown_header();
  if (format == "csv") print_csv_header();
  std::fflush(stdout);
  auto on_row = [&](const nlohmann::json& j) {
    if (format == "md") print_markdown_row(j);
    else if (format == "csv") print_csv_row(j);
    else if (format == "jsonl") std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
  };
  nlohmann::json rows = nlohmann::json::array();
  std::vector<std::pair<std::string, std::string>> notes;  // (file, its markdown notes)
  bool failed = false;
  for (const std::string& path : models) {
    FileResult r = bench_file(cfg, path, rates, on_row);
    failed = failed || r.failed;
    for (auto& j : r.rows) rows.push_back(std::move(j));
    if (!r.notes.empty()) notes.emplace_back(path, r.notes);
  }
  if (format == "json") std::printf("%s\n", rows.dump(2).c_str());
  if (format == "md")
    for (const auto& [path, text] : notes)
      std::printf("\n%s%s", models.size() > 1 ? (path + ":\n").c_str() : "", text.c_str());
  return failed ? 1 : 0;
}

}  // namespace moevk_cli
