#include "bench/ops_bench.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "bench/probe.hpp"
#include "common/error.hpp"
#include "generate/sampler.hpp"
#include "ops/matmul.hpp"
#include "ops/moe.hpp"
#include "ops/sample_topk.hpp"
#include "ops/transformer.hpp"
#include "ops/weight_binding.hpp"

namespace moevk::bench {

namespace {

struct LayerShape {
  uint32_t n_embd, n_ff_exp, n_expert, k, n_head, n_head_kv, head_dim, n_vocab;
};

const std::map<std::string, LayerShape>& shapes() {
  static const std::map<std::string, LayerShape> all = {
      {"mixtral-8x7b", {4096, 14336, 8, 2, 32, 8, 128, 32000}},
      {"mixtral-8x22b", {6144, 16384, 8, 2, 48, 8, 128, 32768}},
      {"qwen1.5-moe-a2.7b", {2048, 1408, 60, 4, 16, 16, 128, 151936}},
      {"qwen3-30b-a3b", {2048, 768, 128, 8, 32, 4, 128, 151936}},
      {"tiny", {256, 512, 8, 2, 4, 2, 64, 1000}},
  };
  return all;
}

// A device buffer of `bytes` holding valid blocks of `type`: one quantized chunk of random
// normal values (scaled like real weights), repeated. Timing only needs plausible contents.
vk::Buffer weights(vk::Context& ctx, quant::Type type, uint32_t cols, uint64_t rows, const std::string& what) {
  const uint64_t row_bytes = quant::row_bytes(type, cols);
  const uint64_t bytes = row_bytes * rows;
  auto b = ctx.create_buffer(bytes, vk::BufferKind::Device, what);
  const uint64_t chunk_rows = std::max<uint64_t>(1, std::min<uint64_t>(rows, (4u << 20) / row_bytes));
  std::vector<float> values(static_cast<size_t>(chunk_rows) * cols);
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  for (auto& v : values) v = dist(rng);
  std::vector<uint8_t> chunk(chunk_rows * row_bytes);
  if (quant::type_info(type).can_quantize) {
    // Without the K-quants' scale search (make-model's choice too): it only refines rounding.
    quant::quantize(type, values.data(), chunk.data(), values.size(), quant::ScaleSearch::MinMax);
  } else {
    // A type moevk reads but cannot quantize on the CPU. The timing does not depend on the
    // values: random bytes, with each 16-bit field a small finite half (0x2000-0x23FF).
    for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<uint8_t>(i % 2 ? 0x20 | (rng() & 3) : rng());
  }
  const std::vector<uint8_t> packed = chunk;
  for (uint64_t r = 0; r < rows; r += chunk_rows) {
    uint64_t n = std::min(chunk_rows, rows - r);
    // In the order the kernels read it, as the loader does (split rows rotate by their offset).
    if (ops::weight_layout_differs(type)) ops::to_device_layout(type, cols, packed.data(), chunk.data(), n, r * row_bytes);
    ctx.upload(b.range(r * row_bytes, n * row_bytes), chunk.data(), n * row_bytes);
  }
  return b;
}

vk::Buffer activations(vk::Context& ctx, uint64_t count, const std::string& what) {
  std::vector<float> v(count);
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (auto& x : v) x = dist(rng);
  auto b = ctx.create_buffer(count * 4, vk::BufferKind::Device, what);
  ctx.upload(b.range(), v.data(), count * 4);
  return b;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

nlohmann::json run_ops_bench(const OpsBenchOptions& o) {
  vk::ContextOptions copt;
  copt.device = o.device;
  auto ctx_ptr = vk::Context::create(copt);
  vk::Context& ctx = *ctx_ptr;
  const DeviceRates rates = measure_device(ctx);
  nlohmann::json out;
  out["device"] = ctx.caps();
  out["features"] = ctx.features().describe();
  out["rates"] = {{"copy_gbps", rates.copy_gbps}, {"fma_gflops", rates.fma_gflops}, {"copy_bytes", rates.copy_bytes}};
  nlohmann::json results = nlohmann::json::array();
  auto want = [&](const char* k) {
    return o.kernels.empty() || std::find(o.kernels.begin(), o.kernels.end(), k) != o.kernels.end();
  };

  for (const auto& shape_name : o.shapes) {
    auto it = shapes().find(shape_name);
    if (it == shapes().end()) throw Error(MOEVK_ERROR_INVALID_ARGUMENT, "unknown bench shape '" + shape_name + "'");
    const LayerShape& s = it->second;
    const uint32_t max_tokens = *std::max_element(o.tokens.begin(), o.tokens.end());
    for (const auto& type_name : o.types) {
      quant::Type type;
      if (!quant::parse_type(type_name, type)) throw Error(MOEVK_ERROR_INVALID_ARGUMENT, "unknown type '" + type_name + "'");
      auto report = [&](const std::string& kernel, uint32_t tokens, const std::string& path, std::vector<double> ms,
                        double bytes, double flops, const std::string& error = "") {
        nlohmann::json r = {{"shape", shape_name}, {"type", type_name}, {"kernel", kernel}, {"tokens", tokens},
                            {"path", path}};
        if (!error.empty()) {
          r["error"] = error;
        } else {
          const double t = median(ms);
          r["time_us"] = t * 1e3;
          r["gbps"] = bytes / (t * 1e-3) / 1e9;
          r["gflops"] = flops / (t * 1e-3) / 1e9;
          r["bw_fraction"] = rates.copy_gbps > 0 ? r["gbps"].get<double>() / rates.copy_gbps : 0.0;
          r["peak_fraction"] = rates.fma_gflops > 0 ? r["gflops"].get<double>() / rates.fma_gflops : 0.0;
          r["bytes"] = bytes;
          r["flops"] = flops;
        }
        results.push_back(r);
      };
      auto guarded = [&](const std::string& kernel, uint32_t tokens, const std::function<void()>& body) {
        try {
          body();
        } catch (const Error& e) {
          report(kernel, tokens, "-", {}, 0, 0, e.what());
          if (e.status() == MOEVK_ERROR_DEVICE_LOST) throw;
        }
      };
      // One --decode-configs row: the op built for that shape, timed; a shape the op refuses
      // gets a row with its message, and the sweep goes on.
      auto config_row = [&](const std::string& kernel, uint32_t tokens, const std::string& path,
                            const std::function<void(vk::Recorder&)>& record, double bytes, double flops) {
        try {
          report(kernel, tokens, path, time_recording(ctx, o.repeats, record), bytes, flops);
        } catch (const Error& e) {
          if (e.status() == MOEVK_ERROR_DEVICE_LOST) throw;
          report(kernel, tokens, path, {}, 0, 0, e.what());
        }
      };
      auto x = activations(ctx, uint64_t(max_tokens) * std::max(s.n_embd, s.n_ff_exp), "bench input");

      if (want("attn_qkv") || want("output")) {
        ops::MatMul mm(ctx);
        const uint32_t qkv_rows = (s.n_head + 2 * s.n_head_kv) * s.head_dim;
        for (const auto& kernel_rows : {std::pair<const char*, uint32_t>{"attn_qkv", qkv_rows}, {"output", s.n_vocab}}) {
          const char* kernel = kernel_rows.first;  // plain variables: lambdas below capture them
          const uint32_t rows = kernel_rows.second;
          if (!want(kernel)) continue;
          guarded(kernel, 0, [&] {
            auto w = weights(ctx, type, s.n_embd, rows, std::string(kernel) + " weights");
            auto y = ctx.create_buffer(uint64_t(max_tokens) * rows * 4, vk::BufferKind::Device, "bench output");
            auto g = activations(ctx, s.n_embd, "norm weight");
            ops::Matrix m{w.range(), type, s.n_embd, rows};
            // attn_qkv as the model records it: q, k and v matrices in one buffer (as the loader
            // places them), their products through record_products (one dispatch where they
            // merge; a "separate" row times the three dispatches), outputs at aligned offsets.
            const bool qkv = std::string(kernel) == "attn_qkv";
            const uint64_t rb = m.row_bytes();
            const uint32_t q_rows = s.n_head * s.head_dim, kv_rows = s.n_head_kv * s.head_dim;
            const ops::Matrix mq{w.range(0, q_rows * rb), type, s.n_embd, q_rows};
            const ops::Matrix mk{w.range(q_rows * rb, kv_rows * rb), type, s.n_embd, kv_rows};
            const ops::Matrix mv{w.range((q_rows + kv_rows) * rb, kv_rows * rb), type, s.n_embd, kv_rows};
            auto y_qkv = ctx.create_buffer(uint64_t(max_tokens) * rows * 4 + 512, vk::BufferKind::Device, "bench q, k, v");
            auto aligned = [](uint64_t v) { return (v + 255) / 256 * 256; };
            const uint64_t k_at = aligned(uint64_t(max_tokens) * q_rows * 4);
            const uint64_t v_at = k_at + aligned(uint64_t(max_tokens) * kv_rows * 4);
            const ops::MatMul::Product products[] = {
                {&mq, y_qkv.range(0, k_at)}, {&mk, y_qkv.range(k_at, v_at - k_at)},
                {&mv, y_qkv.range(v_at, uint64_t(max_tokens) * kv_rows * 4)}};
            ops::MatMulOptions separate_options;
            separate_options.merge_products = false;
            const ops::MatMul separate(ctx, separate_options);
            // As the model records them: the RMS norm folded in where the path takes it (decode).
            const ops::InputNorm norm{g.range(), 1e-6f};
            auto recorder = [&](const ops::MatMul& op, uint32_t t, bool fused) {
              return [&op, &m, &x, &y, &products, &norm, qkv, t, fused](vk::Recorder& r) {
                if (qkv) op.record_products(r, products, x.range(), t, fused ? &norm : nullptr);
                else op.record(r, m, x.range(), y.range(), t, nullptr, false, fused ? &norm : nullptr);
              };
            };
            for (uint32_t t : o.tokens) {
              guarded(kernel, t, [&] {
                const bool fused = mm.fuses_norm(m, t);
                const std::string suffix = fused ? "+norm" : "";
                auto ms = time_recording(ctx, o.repeats, recorder(mm, t, fused));
                const double bytes = double(w.size()) + 4.0 * t * (s.n_embd + rows), flops = 2.0 * rows * s.n_embd * t;
                report(kernel, t, mm.path_for(m, t) + suffix, ms, bytes, flops);
                if (qkv && mm.merges(products, t))
                  report(kernel, t, mm.path_for(m, t) + suffix + " separate",
                         time_recording(ctx, o.repeats, recorder(separate, t, fused)), bytes, flops);
                if (t != 1 || mm.path_for(m, t) != "mv") return;
                // The one-token kernel on 16-byte steps where the type has them (opt-in for models).
                const bool has_wide = ops::weight_has_wide_runs(type);
                if (has_wide) {
                  ops::MatMulOptions wide_options;
                  wide_options.wide_decode = true;
                  const ops::MatMul wide_mm(ctx, wide_options);
                  report(kernel, t, "mv_wide" + suffix, time_recording(ctx, o.repeats, recorder(wide_mm, t, fused)), bytes,
                         flops);
                }
                for (const bool wide : {false, true}) {
                  if (wide && !has_wide) continue;
                  for (const auto& [wg_size, mv_rows] : o.decode_configs) {  // the one-token kernel's shapes
                    ops::MatMulOptions tuned_options;
                    tuned_options.decode_workgroup = wg_size;
                    tuned_options.decode_rows = mv_rows;
                    tuned_options.wide_decode = wide;
                    const ops::MatMul tuned(ctx, tuned_options);
                    config_row(kernel, t,
                               std::string(wide ? "mv_wide " : "mv ") + std::to_string(wg_size) + "x" +
                                   std::to_string(mv_rows) + suffix,
                               recorder(tuned, t, fused), bytes, flops);
                  }
                }
              });
            }
          });
        }
      }

      if (want("router_topk") || want("moe_experts")) {
        guarded("router_topk", 0, [&] {
          ops::MoeRouter router(ctx);
          // Where the router takes the one-dispatch handoff, the two-dispatch split too, to compare.
          ops::MoeRouter split_router(ctx, 8, false);
          ops::MoeExperts experts(ctx);
          // The prefill products on the other kernels too, to compare: without cooperative
          // matrices (the integer-dot tiles where the device has dot), and on the plain tiles;
          // and decode on the integer dot product (decode_dot, opt-in for models) and with two
          // pair runs a thread step (decode_wide, opt-in too) as well as on the float kernels.
          // The decode_dot row includes quantizing x (a model's FFN norm would write it instead).
          ops::MoeExpertsOptions dot_options, plain_options, wide_options;
          dot_options.allow_coopmat = plain_options.allow_coopmat = false;
          dot_options.dot_decode = true;
          plain_options.allow_dot = false;
          wide_options.wide_decode = true;
          ops::MoeExperts dot_experts(ctx, dot_options), plain_experts(ctx, plain_options);
          ops::MoeExperts wide_experts(ctx, wide_options);
          auto wr = weights(ctx, quant::Type::F32, s.n_embd, s.n_expert, "router weights");
          ops::Matrix mr{wr.range(), quant::Type::F32, s.n_embd, s.n_expert};
          std::unique_ptr<vk::Buffer> wg, wu, wd;
          if (want("moe_experts")) {
            wg = std::make_unique<vk::Buffer>(weights(ctx, type, s.n_embd, uint64_t(s.n_ff_exp) * s.n_expert, "expert gate"));
            wu = std::make_unique<vk::Buffer>(weights(ctx, type, s.n_embd, uint64_t(s.n_ff_exp) * s.n_expert, "expert up"));
            wd = std::make_unique<vk::Buffer>(weights(ctx, type, s.n_ff_exp, uint64_t(s.n_embd) * s.n_expert, "expert down"));
          }
          for (uint32_t t : o.tokens) {
            ops::RouterShape rs{t, s.n_embd, s.n_expert, s.k, ops::Gating::Softmax, true};
            auto scratch = ctx.create_buffer(ops::MoeRouter::scratch_bytes(rs), vk::BufferKind::Device, "router scratch");
            ops::MoeRouter::clear_counters(ctx, scratch.range());
            auto ids = ctx.create_buffer(uint64_t(t) * s.k * 4, vk::BufferKind::Device, "expert ids");
            auto wts = ctx.create_buffer(uint64_t(t) * s.k * 4, vk::BufferKind::Device, "expert weights");
            auto route = [&](vk::Recorder& r) {
              router.record(r, rs, mr, x.range(), scratch.range(), ids.range(), wts.range());
            };
            if (want("router_topk"))
              guarded("router_topk", t, [&] {
                const double bytes = 4.0 * s.n_expert * s.n_embd + 4.0 * t * s.n_embd;
                const double flops = 2.0 * s.n_expert * s.n_embd * t;
                report("router_topk", t, router.path_for(rs, mr), time_recording(ctx, o.repeats, route), bytes, flops);
                if (split_router.path_for(rs, mr) == router.path_for(rs, mr)) return;
                report("router_topk", t, split_router.path_for(rs, mr), time_recording(ctx, o.repeats, [&](vk::Recorder& r) {
                         split_router.record(r, rs, mr, x.range(), scratch.range(), ids.range(), wts.range());
                       }), bytes, flops);
              });
            if (!want("moe_experts")) continue;
            guarded("moe_experts", t, [&] {
              vk::Recorder once(ctx);
              once.begin();
              route(once);
              once.end();
              once.submit();
              std::vector<uint32_t> chosen(uint64_t(t) * s.k);
              ctx.download(ids.range(), chosen.data(), chosen.size() * 4);
              const double unique = static_cast<double>(std::set<uint32_t>(chosen.begin(), chosen.end()).size());
              ops::ExpertsShape es{t, s.n_embd, s.n_ff_exp, s.n_expert, s.k};
              auto escratch = ctx.create_buffer(ops::MoeExperts::scratch_bytes(es), vk::BufferKind::Device, "experts scratch");
              auto y = ctx.create_buffer(uint64_t(t) * s.n_embd * 4, vk::BufferKind::Device, "experts output");
              const uint64_t gu_stride = quant::row_bytes(type, s.n_embd) * s.n_ff_exp;
              const uint64_t d_stride = quant::row_bytes(type, s.n_ff_exp) * s.n_embd;
              ops::ExpertMatrices g{wg->range(), type, s.n_embd, s.n_ff_exp, s.n_expert, gu_stride};
              ops::ExpertMatrices u{wu->range(), type, s.n_embd, s.n_ff_exp, s.n_expert, gu_stride};
              ops::ExpertMatrices d{wd->range(), type, s.n_ff_exp, s.n_embd, s.n_expert, d_stride};
              const double bytes = unique * (2.0 * gu_stride + d_stride) + 8.0 * t * s.n_embd;
              const double flops = 2.0 * 3.0 * s.n_ff_exp * s.n_embd * t * s.k;
              std::set<std::string> paths;
              for (const ops::MoeExperts* op : {&experts, &dot_experts, &plain_experts, &wide_experts}) {
                // One row per distinct path (grouped_coopmat, grouped_dot, grouped where they differ).
                const std::string path = op->path_for(es, type, type, type);
                if (!paths.insert(path).second) continue;
                auto time_op = [&](const ops::MoeExperts& timed) {
                  return time_recording(ctx, o.repeats, [&](vk::Recorder& r) {
                    timed.record(r, es, g, u, d, x.range(), ids.range(), wts.range(), escratch.range(), y.range());
                  });
                };
                if (path != "grouped_coopmat") {
                  report("moe_experts", t, path, time_op(*op), bytes, flops);
                  continue;
                }
                // The cooperative-matrix kernel on both row tiles (its 32/64 choice is a guess):
                // "grouped_coopmat tm64" and "... tm32", the op's own choice first.
                const uint32_t chosen_rows = op->coopmat_tile_rows(es);
                for (uint32_t rows : {chosen_rows, chosen_rows == 64u ? 32u : 64u}) {
                  ops::MoeExpertsOptions tiled;
                  tiled.coopmat_tile_rows = rows;
                  report("moe_experts", t, path + " tm" + std::to_string(rows), time_op(ops::MoeExperts(ctx, tiled)),
                         bytes, flops);
                }
              }
              if (experts.path_for(es) != "decode") return;
              // Each shape on the wide steps too where the type has them ("decode_wide 64x2").
              for (const bool wide : {false, true}) {
                if (wide && !ops::weight_has_wide_runs(type)) continue;
                for (const auto& [wg_size, rows] : o.decode_configs) {
                  ops::MoeExpertsOptions tuned_options;
                  tuned_options.decode_workgroup = wg_size;
                  tuned_options.decode_rows = rows;
                  tuned_options.wide_decode = wide;
                  const ops::MoeExperts tuned(ctx, tuned_options);
                  config_row("moe_experts", t,
                             std::string(wide ? "decode_wide " : "decode ") + std::to_string(wg_size) + "x" +
                                 std::to_string(rows),
                             [&](vk::Recorder& r) {
                               tuned.record(r, es, g, u, d, x.range(), ids.range(), wts.range(), escratch.range(),
                                            y.range());
                             },
                             bytes, flops);
                  if (wide) continue;
                  // The down product alone on the shape, gate+up on the default ("decode down
                  // 32x4"): its rows are n_ff wide, gate+up's n_embd (MOEVK_DECODE_CONFIG down=).
                  ops::MoeExpertsOptions down_options;
                  down_options.down_workgroup = wg_size;
                  down_options.down_rows = rows;
                  const ops::MoeExperts down_tuned(ctx, down_options);
                  config_row("moe_experts", t, "decode down " + std::to_string(wg_size) + "x" + std::to_string(rows),
                             [&](vk::Recorder& r) {
                               down_tuned.record(r, es, g, u, d, x.range(), ids.range(), wts.range(), escratch.range(),
                                                 y.range());
                             },
                             bytes, flops);
                }
              }
            });
          }
        });
      }

      if (want("attention") && type_name == o.types.front()) {  // attention does not depend on the weight type
        guarded("attention", 0, [&] {
          ops::Attention attn(ctx);
          // Where decode folds the chunks in the flash dispatch (the handoff), the combine pass too.
          ops::Attention attn_combine(ctx);
          attn_combine.set_combine_handoff(false);
          ops::KvShape ks{o.kv_past + max_tokens, s.n_head, s.n_head_kv, s.head_dim};
          auto kc = ctx.create_buffer(ops::Attention::cache_bytes(ks), vk::BufferKind::Device, "k cache");
          auto vc = ctx.create_buffer(ops::Attention::cache_bytes(ks), vk::BufferKind::Device, "v cache");
          auto q = activations(ctx, uint64_t(max_tokens) * s.n_head * s.head_dim, "q");
          auto kv = activations(ctx, uint64_t(max_tokens) * s.n_head_kv * s.head_dim, "k/v new");
          auto y = ctx.create_buffer(uint64_t(max_tokens) * s.n_head * s.head_dim * 4, vk::BufferKind::Device, "attn out");
          ops::StepParams sp{o.kv_past, 0, {}};
          auto step = ctx.create_buffer(sizeof sp, vk::BufferKind::Device, "step");
          // The decode step's own form: raw q, k, v in one buffer, the attention dispatch doing
          // the RoPE (and Qwen3's q/k norms) and the KV append itself.
          const uint64_t q_floats = uint64_t(max_tokens) * s.n_head * s.head_dim;
          const uint64_t kv_floats = uint64_t(max_tokens) * s.n_head_kv * s.head_dim;
          const uint64_t k_at = (q_floats + 63) / 64 * 64, v_at = k_at + (kv_floats + 63) / 64 * 64;
          auto qkv = activations(ctx, v_at + kv_floats, "q, k, v");
          auto qk_w = activations(ctx, s.head_dim, "q/k norm weight");
          const vk::BufferRange qkv_q = qkv.range(0, q_floats * 4), qkv_k = qkv.range(k_at * 4, kv_floats * 4),
                                qkv_v = qkv.range(v_at * 4, kv_floats * 4), qk_w_range = qk_w.range();
          const bool qk_norm = shape_name.rfind("qwen3", 0) == 0;
          ops::Attention::Prologue prologue;
          prologue.q_norm = qk_norm ? &qk_w_range : nullptr;
          prologue.k_norm = qk_norm ? &qk_w_range : nullptr;
          prologue.eps = 1e-6f;
          prologue.rot_dim = s.head_dim;
          prologue.freq_base = 1e6f;
          prologue.layout = ops::RopeLayout::Neox;
          for (uint32_t t : o.tokens) {
            guarded("attention", t, [&] {
              sp.n_tokens = t;
              ctx.upload(step.range(), &sp, sizeof sp);
              auto scratch = ctx.create_buffer(ops::Attention::scratch_bytes(ks, t), vk::BufferKind::Device, "attn scratch");
              ops::Attention::clear_counters(ctx, ks, scratch.range());
              const double ctx_len = o.kv_past + t;
              const double kv_bytes = ctx_len * s.n_head_kv * s.head_dim * 2.0 * 2.0;
              double pairs = 0;
              for (uint32_t i = 0; i < t; ++i) pairs += o.kv_past + i + 1;
              const double flops = 4.0 * s.n_head * s.head_dim * pairs;
              const float scale = 1.0f / std::sqrt(float(s.head_dim));
              // Each form with the handoff where it applies ("+handoff"), then with the combine pass.
              for (const ops::Attention* a : {&attn, &attn_combine}) {
                const bool handoff = a->hands_off_combine(ks, t, false);
                if (a == &attn_combine && !attn.hands_off_combine(ks, t, false)) break;  // same as above
                auto ms = time_recording(ctx, o.repeats, [&](vk::Recorder& r) {
                  a->record(r, ks, t, step.range(), q.range(), kv.range(), kv.range(), kc.range(), vc.range(),
                            scratch.range(), y.range(), scale);
                });
                report("attention", t, std::string(t <= 8 ? "decode" : "prefill") + (handoff ? "+handoff" : ""), ms,
                       kv_bytes, flops);
                if (!a->takes_prologue(t, qkv_q, qkv_k, qkv_v)) continue;
                auto ms_rope = time_recording(ctx, o.repeats, [&](vk::Recorder& r) {
                  a->record(r, ks, t, step.range(), qkv_q, qkv_k, qkv_v, kc.range(), vc.range(), scratch.range(),
                            y.range(), scale, false, &prologue);
                });
                report("attention", t,
                       std::string(qk_norm ? "decode+norm+rope+append" : "decode+rope+append") +
                           (a->hands_off_combine(ks, t, true) ? "+handoff" : ""),
                       ms_rope, kv_bytes, flops);
              }
            });
          }
        });
      }

      if (want("rms_norm") && type_name == o.types.front()) {
        ops::RmsNorm norm(ctx);
        auto w = activations(ctx, s.n_embd, "norm weight");
        auto y = ctx.create_buffer(uint64_t(max_tokens) * s.n_embd * 4, vk::BufferKind::Device, "norm out");
        for (uint32_t t : o.tokens)
          guarded("rms_norm", t, [&] {
            auto ms = time_recording(ctx, o.repeats,
                                     [&](vk::Recorder& r) { norm.record(r, x.range(), w.range(), y.range(), t, s.n_embd, 1e-5f); });
            report("rms_norm", t, "fused", ms, 8.0 * t * s.n_embd + 4.0 * s.n_embd, 4.0 * t * s.n_embd);
          });
      }

      if (want("rope_kv") && type_name == o.types.front()) {  // RoPE (+ q/k norms for Qwen3) + KV append
        guarded("rope_kv", 0, [&] {
          ops::Rope rope(ctx);
          const uint32_t n_ctx = o.kv_past + max_tokens;
          const ops::KvShape ks{n_ctx, s.n_head, s.n_head_kv, s.head_dim};
          auto kc = ctx.create_buffer(ops::Attention::cache_bytes(ks), vk::BufferKind::Device, "k cache");
          auto vc = ctx.create_buffer(ops::Attention::cache_bytes(ks), vk::BufferKind::Device, "v cache");
          auto q = activations(ctx, uint64_t(max_tokens) * s.n_head * s.head_dim, "q");
          auto k = activations(ctx, uint64_t(max_tokens) * s.n_head_kv * s.head_dim, "k");
          auto v = activations(ctx, uint64_t(max_tokens) * s.n_head_kv * s.head_dim, "v");
          auto qk_w = activations(ctx, s.head_dim, "q/k norm weight");
          ops::StepParams sp{o.kv_past, 0, {}};
          auto step = ctx.create_buffer(sizeof sp, vk::BufferKind::Device, "step");
          const bool qk_norm = shape_name.rfind("qwen3", 0) == 0;
          const ops::Rope::QkNorm norms{qk_w.range(), qk_w.range(), 1e-6f};
          const ops::Rope::KvAppend append{v.range(), kc.range(), vc.range(), n_ctx};
          for (uint32_t t : o.tokens)
            guarded("rope_kv", t, [&] {
              sp.n_tokens = t;
              ctx.upload(step.range(), &sp, sizeof sp);
              auto ms = time_recording(ctx, o.repeats, [&](vk::Recorder& r) {
                rope.record_qk_append(r, q.range(), k.range(), qk_norm ? &norms : nullptr, append, step.range(), t,
                                      s.n_head, s.n_head_kv, s.head_dim, s.head_dim, 1e6f,
                                      ops::RopeLayout::Neox);
              });
              // q read + written, k and v read (f32), K and V written (f16).
              const double elems_q = double(t) * s.n_head * s.head_dim, elems_kv = double(t) * s.n_head_kv * s.head_dim;
              report("rope_kv", t, qk_norm ? "norm+rope+append" : "rope+append", ms,
                     8.0 * elems_q + 8.0 * elems_kv + 4.0 * elems_kv, 6.0 * (elems_q + elems_kv));
            });
        });
      }

      if (want("embedding")) {
        guarded("embedding", 0, [&] {
          ops::Embedding embedding(ctx);
          auto table = weights(ctx, type, s.n_embd, s.n_vocab, "embedding table");
          const ops::Matrix m{table.range(), type, s.n_embd, s.n_vocab};
          std::vector<uint32_t> id_values(max_tokens);
          for (uint32_t i = 0; i < max_tokens; ++i) id_values[i] = (i * 7919u) % s.n_vocab;
          auto ids = ctx.create_buffer(uint64_t(max_tokens) * 4, vk::BufferKind::Device, "token ids");
          ctx.upload(ids.range(), id_values.data(), id_values.size() * 4);
          auto y = ctx.create_buffer(uint64_t(max_tokens) * s.n_embd * 4, vk::BufferKind::Device, "embeddings");
          for (uint32_t t : o.tokens)
            guarded("embedding", t, [&] {
              auto ms = time_recording(ctx, o.repeats,
                                       [&](vk::Recorder& r) { embedding.record(r, m, ids.range(), y.range(), t); });
              report("embedding", t, "get_rows", ms, double(t) * (m.row_bytes() + 4.0 * s.n_embd), 0);
            });
        });
      }

      if (want("sampler") && type_name == o.types.front()) {
        // Not a kernel: what sampling at a temperature costs the host per token (the logits are
        // copied back and ranked on the CPU), with the CLI's default filters. Host time, median
        // over repetitions of 20 draws.
        // Then with top-k off (the host's rule then: top-p and min-p over the whole vocabulary),
        // with and without min-p: what the GPU's whole-row draw replaces.
        std::mt19937 gen(5);
        std::normal_distribution<float> normal(0.0f, 3.0f);
        std::vector<float> logits(s.n_vocab);
        for (float& l : logits) l = normal(gen);
        // And with penalties over a whole 32768-token context of random ids (sample_topk's row
        // of that name).
        std::vector<int32_t> history(32768);
        for (int32_t& t : history) t = int32_t(gen() % s.n_vocab);
        auto time_sampler = [&](const char* what, int32_t top_k, float min_p, bool penalties = false) {
          generate::SamplerParams params;  // temperature 0.8, top-k 40, top-p 0.95, min-p 0.05
          params.top_k = top_k;
          params.min_p = min_p;
          if (penalties) params.repeat_penalty = 1.1f, params.frequency_penalty = 0.1f, params.repeat_last_n = -1;
          generate::Sampler sampler(params);
          std::vector<double> ms;
          for (int r = 0; r < std::max(o.repeats, 1); ++r) {
            const auto t0 = std::chrono::steady_clock::now();
            for (int i = 0; i < 20; ++i) sampler.sample(logits, history);  // advances its generator: not elided
            ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / 20);
          }
          report("sampler", 1, what, ms, 0, 0);  // host work: no device bandwidth
        };
        time_sampler("host, top-k 40", 40, 0.05f);
        time_sampler("host, top-k off", 0, 0.05f);
        time_sampler("host, top-k off, min-p off", 0, 0.0f);
        time_sampler("host, top-k 40, penalties over 32768", 40, 0.05f, true);
      }

      if (want("sample_topk") && type_name == o.types.front()) {  // sampling on the GPU (LogitsMode::Sample)
        guarded("sample_topk", 1, [&] {
          ops::SampleTopK sample(ctx);
          // Logits spread like a model's, so the draw's filters keep several candidates.
          std::mt19937 gen(7);
          std::normal_distribution<float> normal(0.0f, 3.0f);
          std::vector<float> row(s.n_vocab);
          for (float& l : row) l = normal(gen);
          auto logits = ctx.create_buffer(uint64_t(s.n_vocab) * 4, vk::BufferKind::Device, "logits");
          ctx.upload(logits.range(), row.data(), row.size() * 4);
          ops::SampleParams p;  // the CLI's defaults
          p.k = 40, p.temperature = 0.8f, p.top_p = 0.95f, p.min_p = 0.05f, p.u = 0.5f;
          auto params = ctx.create_buffer(sizeof p, vk::BufferKind::Device, "sample params");
          auto candidates = ctx.create_buffer(ops::SampleTopK::kCandidateBytes, vk::BufferKind::Device, "candidates");
          auto id = ctx.create_buffer(4, vk::BufferKind::Device, "sampled");
          auto scratch =
              ctx.create_buffer(ops::SampleTopK::scratch_bytes(s.n_vocab), vk::BufferKind::Device, "sample scratch");
          ops::SampleTopK::clear_counters(ctx, scratch.range());
          // The penalties' tokens by position over a 32768-token context (random ids).
          constexpr uint32_t kContext = 32768;
          std::vector<uint32_t> history(kContext + 1);
          for (uint32_t& t : history) t = uint32_t(gen() % s.n_vocab);
          auto ring = ctx.create_buffer(ops::SampleTopK::ring_bytes(kContext + 1), vk::BufferKind::Device, "sample ring");
          ctx.upload(ring.range(), history.data(), history.size() * 4);
          // One row: the dispatch with p as it stands, named after the slices and `what`.
          auto time_sample = [&](const std::string& what) {
            ctx.upload(params.range(), &p, sizeof p);
            const auto ms = time_recording(ctx, o.repeats, [&](vk::Recorder& r) {
              sample.record(r, logits.range(), s.n_vocab, params.range(), candidates.range(), id.range(),
                            scratch.range(), ring.range());
            });
            report("sample_topk", 1, std::to_string(ops::SampleTopK::slices(s.n_vocab)) + " slices," + what, ms,
                   4.0 * s.n_vocab, 0);
          };
          time_sample(" top-k 40");
          // Penalties (repetition 1.1, frequency 0.1) over the last 64 tokens (the CLI's default
          // window) and over a whole 32768-token context (repeat_last_n -1): every slice reads
          // the window's tokens.
          for (const uint32_t window : {64u, kContext}) {
            p.repeat_penalty = 1.1f, p.frequency = 0.1f, p.window = window, p.last_pos = kContext - 1;
            time_sample(" top-k 40, penalties over " + std::to_string(window));
          }
          p.repeat_penalty = 1.0f, p.frequency = 0.0f, p.window = 0, p.last_pos = 0;
          // Top-k off (OpenAI-style clients), as the host sampler's rows: min-p 0.05's set here is
          // about the best 50 (decided among the best 64); with min-p off, top-p 0.95's runs far
          // past them (~14000 of 151936), so the last workgroup selects the cut and then the draw
          // over the row; top-p 0.5's holds ~200 (of 151936), gathered once the cut is found. And
          // a top-k of 100 (past the best 64): its cut by place first, then as top-k off. And a
          // temperature alone (top-k, top-p and min-p off: OpenAI-style defaults): the draw among
          // the best 64 where its point falls there (the u of 0.5 here), else over the row (u 0.999).
          struct Whole {
            uint32_t k;
            float min_p, top_p, u;
            const char* name;
          };
          for (const Whole w : {Whole{0, 0.05f, 0.95f, 0.5f, " top-k off"},
                                Whole{0, 0.0f, 0.95f, 0.5f, " top-k off, min-p off"},
                                Whole{0, 0.0f, 0.5f, 0.5f, " top-k off, min-p off, top-p 0.5"},
                                Whole{100, 0.05f, 0.95f, 0.5f, " top-k 100"},
                                Whole{0, 0.0f, 1.0f, 0.5f, " temperature alone"},
                                Whole{0, 0.0f, 1.0f, 0.999f, " temperature alone, u 0.999"}}) {
            p.k = w.k, p.all = 1, p.min_p = w.min_p, p.top_p = w.top_p, p.u = w.u;
            time_sample(w.name);
          }
        });
      }

      if (want("argmax") && type_name == o.types.front()) {  // greedy decoding over the vocabulary
        guarded("argmax", 1, [&] {
          ops::Argmax argmax(ctx);
          auto logits = activations(ctx, s.n_vocab, "logits");
          auto id = ctx.create_buffer(4, vk::BufferKind::Device, "argmax");
          auto scratch = ctx.create_buffer(ops::Argmax::scratch_bytes(1, s.n_vocab), vk::BufferKind::Device, "argmax scratch");
          ops::Argmax::clear_counters(ctx, scratch.range());
          const vk::BufferRange sr = scratch.range();
          // As the model records it (slices of the vocabulary, when long enough), and in one workgroup.
          const uint32_t slices = argmax.slices(1, s.n_vocab, true);
          auto ms = time_recording(ctx, o.repeats,
                                   [&](vk::Recorder& r) { argmax.record(r, logits.range(), id.range(), 1, s.n_vocab, &sr); });
          report("argmax", 1, slices > 1 ? std::to_string(slices) + " slices" : "one workgroup", ms, 4.0 * s.n_vocab, 0);
          if (slices > 1) {
            ms = time_recording(ctx, o.repeats,
                                [&](vk::Recorder& r) { argmax.record(r, logits.range(), id.range(), 1, s.n_vocab); });
            report("argmax", 1, "one workgroup", ms, 4.0 * s.n_vocab, 0);
          }
        });
      }
    }
  }
  out["results"] = results;
  return out;
}

std::string ops_bench_markdown(const nlohmann::json& r) {
  std::ostringstream s;
  char line[512];
  s << "device: " << r["device"]["name"].get<std::string>() << " (" << r["device"]["driver_name"].get<std::string>()
    << " " << r["device"]["driver_version"].get<std::string>() << ", Vulkan " << r["device"]["vulkan_version"].get<std::string>()
    << "), features: " << r["features"].get<std::string>() << "\n";
  std::snprintf(line, sizeof line, "measured copy bandwidth: %.1f GB/s (read + write), fp32 FMA peak: %.0f GFLOP/s\n\n",
                r["rates"]["copy_gbps"].get<double>(), r["rates"]["fma_gflops"].get<double>());
  s << line;
  s << "| shape | type | kernel | tokens | path | time (us) | GB/s | % of copy bw | GFLOP/s | % of FMA peak |\n";
  s << "|---|---|---|---:|---|---:|---:|---:|---:|---:|\n";
  for (const auto& x : r["results"]) {
    if (x.contains("error")) {
      std::snprintf(line, sizeof line, "| %s | %s | %s | %u | - | error: %s | | | | |\n", x["shape"].get<std::string>().c_str(),
                    x["type"].get<std::string>().c_str(), x["kernel"].get<std::string>().c_str(), x["tokens"].get<unsigned>(),
                    x["error"].get<std::string>().substr(0, 120).c_str());
    } else {
      std::snprintf(line, sizeof line, "| %s | %s | %s | %u | %s | %.1f | %.1f | %.1f%% | %.1f | %.1f%% |\n",
                    x["shape"].get<std::string>().c_str(), x["type"].get<std::string>().c_str(),
                    x["kernel"].get<std::string>().c_str(), x["tokens"].get<unsigned>(), x["path"].get<std::string>().c_str(),
                    x["time_us"].get<double>(), x["gbps"].get<double>(), 100 * x["bw_fraction"].get<double>(),
                    x["gflops"].get<double>(), 100 * x["peak_fraction"].get<double>());
    }
    s << line;
  }
  return s.str();
}

}  // namespace moevk::bench
