// The shared blocks of a decoder layer. Barriers go only between dispatches that depend on each
// other: independent products that read the same input (q/k/v; router and shared expert) are
// recorded back to back and fenced once. Each block ends in a product that adds into the
// residual stream in place (accumulate), so no block needs a separate residual add and barrier.
// Where every product that reads a block's normed input is a decode-sized kernel that can norm
// its input itself (ops::InputNorm), the block records no norm pass and no barrier for it: they
// read the residual stream directly. Prefill batches keep the norm pass (tiled kernels).
#include "models/layer_builder.hpp"

#include <algorithm>
#include <cmath>
#include <optional>

#include "common/error.hpp"
#include "common/mib.hpp"

namespace moevk::models {

namespace {

// Scratch requirements may depend on the token count in either direction (split-K decode
// kernels want more per token than tiled prefill): size for the worst count up to n_batch.
template <class F>
uint64_t max_over_tokens(uint32_t n_batch, F bytes_for) {
  uint64_t m = 4;
  for (uint32_t n = 1; n <= n_batch; ++n) m = std::max<uint64_t>(m, bytes_for(n));
  return m;
}

}  // namespace

LayerBuilder::LayerBuilder(vk::Context& ctx, const HParams& hp, const Weights& weights, uint32_t n_batch,
                           uint32_t n_ctx, bool expert_stats, const DecodeKernelShapes& decode_kernels)
    : ctx_(ctx),
      hp_(hp),
      w_(weights),
      n_batch_(n_batch),
      n_ctx_(n_ctx),
      expert_stats_(expert_stats),
      matmul_(ctx,
              [&] {
                ops::MatMulOptions o = decode_kernels.matmul_options();
                o.wide_decode = ctx.features().wide_decode;  // MOEVK_ENABLE=wide_decode
                return o;
              }()),
      rms_norm_(ctx),
      rope_(ctx),
      attention_(ctx),
      elementwise_(ctx),
      router_(ctx),
      experts_(ctx,
               [&] {
                 ops::MoeExpertsOptions o = decode_kernels.experts_options();
                 o.dot_decode = ctx.features().dot_decode;  // MOEVK_ENABLE=dot_decode
                 o.wide_decode = ctx.features().wide_decode;  // MOEVK_ENABLE=wide_decode
                 return o;
               }()),
      shared_combine_(ctx),
      histogram_(ctx) {
  const uint64_t B = n_batch, f = 4;
  auto make = [&](uint64_t bytes, const char* what) {
    return ctx.create_buffer(std::max<uint64_t>(bytes, 4), vk::BufferKind::Device, what);
  };
  // Regions of a shared buffer start 256-aligned, as any binding offset may need.
  auto aligned = [](uint64_t v) { return (v + 255) / 256 * 256; };
  act_.residual = make(B * hp.n_embd * f, "residual stream");
  act_.normed = make(B * hp.n_embd * f, "normed activations");
  if (ctx.features().dot && hp.n_embd % 32 == 0) {
    // Also the attention output's int8 activations for the output projection (n_embd_q columns,
    // Qwen3-30B-A3B's 4096 against n_embd 2048), between the q/k/v products and the FFN norm.
    const uint32_t cols = std::max(hp.n_embd, hp.n_embd_q());
    act_.normed_q8 = make(ops::q8_activation_bytes(cols, B), "normed activations, int8");
    const ops::Q8Activations whole = ops::q8_activations_in(act_.normed_q8.range(), cols, B);
    act_.normed_xq = whole.xq;
    act_.normed_xd = whole.xd;
    act_.normed_xs = whole.xs;
  }
  {
    // q, k and v in one buffer, so a decode step's attention can bind them together (its
    // prologue does the RoPE); each region starts 256-aligned, like any binding offset.
    const uint64_t q_bytes = B * hp.n_embd_q() * f, k_bytes = B * hp.n_embd_k_gqa() * f;
    const uint64_t v_bytes = B * hp.n_embd_v_gqa() * f;
    const uint64_t k_at = aligned(q_bytes), v_at = k_at + aligned(k_bytes);
    act_.qkv = make(v_at + v_bytes, "attention q, k, v");
    act_.q = act_.qkv.range(0, q_bytes);
    act_.k = act_.qkv.range(k_at, k_bytes);
    act_.v = act_.qkv.range(v_at, v_bytes);
  }
  act_.attn = make(B * hp.n_head * hp.head_dim_v * f, "attention output");
  // FFN buffers serve dense layers (n_ff) and the shared expert (n_ff_shexp); a model whose
  // layers are all MoE never uses n_ff (Qwen3-30B-A3B still declares 6144), so it costs nothing.
  bool any_dense = false;
  for (uint32_t l = 0; l < hp.n_layer; ++l) any_dense = any_dense || !hp.is_moe(l);
  const uint64_t ff = std::max({any_dense ? hp.n_ff : 0u, hp.n_ff_shexp, 1u});
  {
    // Gate and up in one buffer, so their products can share a dispatch (MatMul::record_products).
    const uint64_t bytes = B * ff * f, up_at = aligned(bytes);
    act_.ffn_gate_up = make(up_at + bytes, "ffn gate, up");
    act_.ffn_gate = act_.ffn_gate_up.range(0, bytes);
    act_.ffn_up = act_.ffn_gate_up.range(up_at, bytes);
  }
  act_.ffn_hidden = make(B * ff * f, "ffn hidden");
  act_.shared_out = make(B * hp.n_embd * f, "shared expert output");
  act_.shared_gate = make(B * f, "shared expert gate");
  const uint64_t k = std::max(hp.n_expert_used, 1u);
  act_.expert_ids = make(B * k * 4, "expert ids");
  act_.expert_weights = make(B * k * 4, "expert weights");
  const bool any_moe = std::any_of(hp.layer_is_moe.begin(), hp.layer_is_moe.end(), [](uint8_t m) { return m; });
  if (any_moe) {
    act_.router_scratch = make(max_over_tokens(n_batch, [&](uint32_t n) {
      return ops::MoeRouter::scratch_bytes({n, hp.n_embd, hp.n_expert, hp.n_expert_used});
    }), "router scratch");
    ops::MoeRouter::clear_counters(ctx, act_.router_scratch.range());  // each dispatch leaves them zero
    act_.experts_scratch = make(max_over_tokens(n_batch, [&](uint32_t n) {
      return ops::MoeExperts::scratch_bytes({n, hp.n_embd, hp.n_ff_exp, hp.n_expert, hp.n_expert_used});
    }), "experts scratch");
  }
  const ops::KvShape kv{n_ctx, hp.n_head, hp.n_head_kv, hp.head_dim};
  act_.attn_scratch = make(max_over_tokens(n_batch, [&](uint32_t n) { return ops::Attention::scratch_bytes(kv, n); }),
                           "attention scratch");
  ops::Attention::clear_counters(ctx, kv, act_.attn_scratch.range());  // each dispatch leaves them zero
  const uint64_t cache = ops::Attention::cache_bytes(kv);
  // A layer's K (and V) cache is one binding: a context past the device's binding range cannot
  // run at any batch size (the step's recording would fail naming a binding), so say so here.
  const uint64_t range = ctx.caps().max_storage_buffer_range;
  if (range && cache > range) {
    const uint64_t per_position = ops::Attention::cache_bytes({1, hp.n_head, hp.n_head_kv, hp.head_dim});
    fail(MOEVK_ERROR_UNSUPPORTED,
         "n_ctx " + std::to_string(n_ctx) + " needs a K cache of " + mib(cache) + " a layer (" +
             std::to_string(per_position) + " bytes a position), more than one binding can span on " +
             ctx.caps().name + " (maxStorageBufferRange " + mib(range) + "): at most " +
             std::to_string(range / per_position) + " positions fit; use a smaller n_ctx");
  }
  for (uint32_t l = 0; l < hp.n_layer; ++l) {
    act_.k_cache.push_back(make(cache, "K cache"));
    act_.v_cache.push_back(make(cache, "V cache"));
  }
  act_.step = make(sizeof(ops::StepParams), "step parameters");
  if (expert_stats && any_moe) act_.expert_counts = make(uint64_t(hp.n_layer) * hp.n_expert * 4, "expert counts");
}

uint64_t Activations::kv_cache_bytes() const {
  uint64_t bytes = 0;
  for (const vk::Buffer& b : k_cache) bytes += b.size();
  for (const vk::Buffer& b : v_cache) bytes += b.size();
  return bytes;
}

uint64_t Activations::device_bytes() const {
  uint64_t bytes = kv_cache_bytes();
  for (const vk::Buffer* b : {&residual, &normed, &normed_q8, &qkv, &attn, &ffn_gate_up, &ffn_hidden, &shared_out,
                              &shared_gate, &expert_ids, &expert_weights, &router_scratch, &experts_scratch,
                              &attn_scratch, &step, &expert_counts})
    bytes += b->size();
  return bytes;
}

LayerBuilder::BlockInput LayerBuilder::normed_input(vk::Recorder& rec, const vk::BufferRange& norm_weight,
                                                   uint32_t n, bool fuse, bool want_q8) {
  BlockInput in;
  if (fuse) {
    in.norm = ops::InputNorm{norm_weight, hp_.norm_eps};
    in.x = residual();
    return in;
  }
  if (want_q8 && quantize_in_norm_ && act_.normed_q8.valid()) in.q8 = normed_q8(n, hp_.n_embd);
  rms_norm_.record(rec, residual(), norm_weight, act_.normed.range(), n, hp_.n_embd, hp_.norm_eps, in.q8_ptr());
  rec.barrier();
  in.x = act_.normed.range();
  return in;
}

ops::Q8Activations LayerBuilder::normed_q8(uint32_t n, uint32_t cols) const {
  const uint64_t values = uint64_t(n) * cols, scales = values / 32 * 4;
  auto first = [](const vk::BufferRange& r, uint64_t bytes) { return vk::BufferRange{r.buffer, r.offset, bytes}; };
  return ops::Q8Activations{first(act_.normed_xq, values), first(act_.normed_xd, scales), first(act_.normed_xs, scales),
                            cols, n};
}

bool LayerBuilder::reads_q8(std::span<const ops::MatMul::Product> products, uint32_t n) const {
  return std::any_of(products.begin(), products.end(),
                     [&](const ops::MatMul::Product& p) { return matmul_.path_for(*p.w, n) == "mm_dot"; });
}

std::optional<ops::Q8Activations> LayerBuilder::hidden_q8(const ops::Matrix& down, uint32_t n, uint32_t cols) const {
  const ops::MatMul::Product p[] = {{&down, act_.ffn_hidden.range(), nullptr}};
  if (!quantize_in_norm_ || cols % 32 != 0 || !reads_q8(p, n)) return std::nullopt;
  if (ops::q8_activation_bytes(cols, n) > act_.ffn_hidden.size()) return std::nullopt;
  return ops::q8_activations_in(act_.ffn_hidden.range(), cols, n);
}

std::optional<ops::Q8Activations> LayerBuilder::swiglu_for(vk::Recorder& rec, const ops::Matrix& down, uint32_t n,
                                                           uint32_t cols) {
  const std::optional<ops::Q8Activations> q8 = hidden_q8(down, n, cols);
  if (q8) elementwise_.swiglu_q8(rec, act_.ffn_gate, act_.ffn_up, *q8);
  else elementwise_.swiglu(rec, act_.ffn_gate, act_.ffn_up, act_.ffn_hidden.range(), n * cols);
  rec.barrier();
  return q8;
}

void LayerBuilder::attention(vk::Recorder& rec, uint32_t layer, uint32_t n, const AttentionStyle& style) {
  const LayerWeights& L = w_.layers[layer];
  mark(rec, Stage::Other);
  const bool fuse = fuse_norms_ && matmul_.fuses_norm(L.wq, n) && matmul_.fuses_norm(L.wk, n) &&
                    matmul_.fuses_norm(L.wv, n);
  const bool bias = style.qkv_bias && L.bq.buffer != VK_NULL_HANDLE;
  const ops::MatMul::Product qkv[] = {{&L.wq, act_.q, bias ? &L.bq : nullptr},
                                      {&L.wk, act_.k, bias ? &L.bk : nullptr},
                                      {&L.wv, act_.v, bias ? &L.bv : nullptr}};
  const BlockInput in = normed_input(rec, L.attn_norm, n, fuse, reads_q8(qkv, n));
  matmul_.record_products(rec, qkv, in.x, n, in.norm_ptr(), in.q8_ptr());  // one dispatch where they can share it
  rec.barrier();
  const vk::BufferRange step = act_.step.range();
  const bool qk_norm = style.qk_norm && L.q_norm.buffer != VK_NULL_HANDLE;
  // The step's K/V go into the cache in the RoPE dispatch itself where it can (head_dim <= 256,
  // K and V of one width): no store pass and barrier before attention.
  const bool append = fuse_kv_append_ && hp_.head_dim <= ops::Rope::kMaxNormedHeadDim &&
                      hp_.head_dim_v == hp_.head_dim && hp_.head_dim % 2 == 0;
  // Decode: the attention dispatch does the norms, RoPE and the append itself (no RoPE
  // dispatch and barrier at all).
  const bool prologue = append && fuse_rope_attention_ && attention_.takes_prologue(n, act_.q, act_.k, act_.v);
  ops::Attention::Prologue prologue_params;
  if (prologue) {
    prologue_params.q_norm = qk_norm ? &L.q_norm : nullptr;
    prologue_params.k_norm = qk_norm ? &L.k_norm : nullptr;
    prologue_params.eps = hp_.norm_eps;
    prologue_params.rot_dim = hp_.n_rot;
    prologue_params.freq_base = hp_.rope_freq_base;
    prologue_params.layout = style.rope;
  } else if (append) {
    const ops::Rope::QkNorm norms{L.q_norm, L.k_norm, hp_.norm_eps};
    const ops::Rope::KvAppend kv{act_.v, act_.k_cache[layer].range(), act_.v_cache[layer].range(), n_ctx_};
    rope_.record_qk_append(rec, act_.q, act_.k, qk_norm ? &norms : nullptr, kv, step, n, hp_.n_head,
                           hp_.n_head_kv, hp_.head_dim, hp_.n_rot, hp_.rope_freq_base, style.rope);
  } else if (qk_norm && hp_.head_dim <= ops::Rope::kMaxNormedHeadDim) {
    rope_.record_qk_normed(rec, act_.q, act_.k, L.q_norm, L.k_norm, hp_.norm_eps, step, n, hp_.n_head,
                           hp_.n_head_kv, hp_.head_dim, hp_.n_rot, hp_.rope_freq_base, style.rope);
  } else {
    if (qk_norm) {
      rms_norm_.record(rec, act_.q, L.q_norm, act_.q, n * hp_.n_head, hp_.head_dim, hp_.norm_eps);
      rms_norm_.record(rec, act_.k, L.k_norm, act_.k, n * hp_.n_head_kv, hp_.head_dim, hp_.norm_eps);
      rec.barrier();
    }
    rope_.record_qk(rec, act_.q, act_.k, step, n, hp_.n_head, hp_.n_head_kv, hp_.head_dim, hp_.n_rot,
                    hp_.rope_freq_base, style.rope);
  }
  if (!prologue) rec.barrier();
  const ops::KvShape kv{n_ctx_, hp_.n_head, hp_.n_head_kv, hp_.head_dim};
  // Prefill on the integer-dot tiles: attention writes its output as the output projection's
  // int8 activations too (no quantization pass and barrier before it).
  const ops::MatMul::Product wo[] = {{&L.wo, residual(), nullptr}};
  std::optional<ops::Q8Activations> attn_q8;
  if (quantize_in_norm_ && act_.normed_q8.valid() && ops::Attention::writes_q8(kv, n) && reads_q8(wo, n))
    attn_q8 = normed_q8(n, hp_.n_head * hp_.head_dim);
  attention_.record(rec, kv, n, step, act_.q, act_.k, act_.v, act_.k_cache[layer].range(),
                    act_.v_cache[layer].range(), act_.attn_scratch.range(), act_.attn.range(),
                    1.0f / std::sqrt(float(hp_.head_dim)), append && !prologue, prologue ? &prologue_params : nullptr,
                    attn_q8 ? &*attn_q8 : nullptr);
  rec.barrier();
  matmul_.record(rec, L.wo, act_.attn.range(), residual(), n, nullptr, /*accumulate=*/true, nullptr,
                 attn_q8 ? &*attn_q8 : nullptr);
  rec.barrier();
  mark(rec, Stage::Attention);
}

void LayerBuilder::dense_ffn(vk::Recorder& rec, uint32_t layer, uint32_t n) {
  const LayerWeights& L = w_.layers[layer];
  mark(rec, Stage::Other);
  const bool fuse = fuse_norms_ && matmul_.fuses_norm(L.ffn_gate, n) && matmul_.fuses_norm(L.ffn_up, n);
  const ops::MatMul::Product gate_up[] = {{&L.ffn_gate, act_.ffn_gate}, {&L.ffn_up, act_.ffn_up}};
  const BlockInput in = normed_input(rec, L.ffn_norm, n, fuse, reads_q8(gate_up, n));
  matmul_.record_products(rec, gate_up, in.x, n, in.norm_ptr(), in.q8_ptr());
  rec.barrier();
  const std::optional<ops::Q8Activations> h_q8 = swiglu_for(rec, L.ffn_down, n, hp_.n_ff);
  matmul_.record(rec, L.ffn_down, act_.ffn_hidden.range(), residual(), n, nullptr, /*accumulate=*/true, nullptr,
                 h_q8 ? &*h_q8 : nullptr);
  rec.barrier();
  mark(rec, Stage::Experts);
}

void LayerBuilder::moe_ffn(vk::Recorder& rec, uint32_t layer, uint32_t n, const MoeStyle& style) {
  const LayerWeights& L = w_.layers[layer];
  const bool shared = style.shared_expert && L.has_shared_expert;
  mark(rec, Stage::Other);
  const ops::ExpertsShape es{n, hp_.n_embd, hp_.n_ff_exp, hp_.n_expert, hp_.n_expert_used};
  const bool fuse = fuse_norms_ && experts_.fuses_norm(es, L.gate_exps.type, L.up_exps.type) &&
                    (!shared || (matmul_.fuses_norm(L.gate_shexp, n) && matmul_.fuses_norm(L.up_shexp, n) &&
                                 (!L.has_shared_gate || matmul_.fuses_norm(L.gate_inp_shexp, n))));
  const ops::MatMul::Product shared_gate_up[] = {{&L.gate_shexp, act_.ffn_gate}, {&L.up_shexp, act_.ffn_up}};
  const bool want_q8 = experts_.reads_q8_input(es, L.gate_exps.type, L.up_exps.type) ||
                       (shared && reads_q8(shared_gate_up, n));
  const BlockInput in = normed_input(rec, L.ffn_norm, n, fuse, want_q8);
  const vk::BufferRange x = in.x;
  const ops::InputNorm* norm = in.norm_ptr();
  const ops::RouterShape rs{n, hp_.n_embd, hp_.n_expert, hp_.n_expert_used, style.gating, style.renormalize};
  router_.record(rec, rs, L.router, x, act_.router_scratch.range(), act_.expert_ids.range(),
                 act_.expert_weights.range(), norm);
  // The shared expert's first products overlap the router (no barrier between them): with
  // profiling the boundary timestamp waits for the router, so they count mostly as experts.
  mark(rec, Stage::Router);
  if (shared) {  // independent of the router: recorded before the same barrier
    matmul_.record_products(rec, shared_gate_up, x, n, norm, in.q8_ptr());
    if (L.has_shared_gate)
      matmul_.record(rec, L.gate_inp_shexp, x, act_.shared_gate.range(), n, nullptr, false, norm);
  }
  rec.barrier();
  experts_.record(rec, es, L.gate_exps, L.up_exps, L.down_exps, x, act_.expert_ids.range(),
                  act_.expert_weights.range(), act_.experts_scratch.range(), residual(), /*accumulate=*/true, norm,
                  in.q8_ptr());
  if (expert_stats_ && act_.expert_counts.valid())
    histogram_.record(rec, act_.expert_ids.range(), act_.expert_counts.range(), n * hp_.n_expert_used,
                      hp_.n_expert, layer * hp_.n_expert);
  if (shared) {
    const std::optional<ops::Q8Activations> h_q8 = swiglu_for(rec, L.down_shexp, n, hp_.n_ff_shexp);
    matmul_.record(rec, L.down_shexp, act_.ffn_hidden.range(), act_.shared_out.range(), n, nullptr, false, nullptr,
                   h_q8 ? &*h_q8 : nullptr);
  }
  rec.barrier();
  if (shared) {
    const vk::BufferRange gate = act_.shared_gate.range();
    shared_combine_.record(rec, residual(), act_.shared_out.range(), L.has_shared_gate ? &gate : nullptr, n,
                           hp_.n_embd);
    rec.barrier();
  }
  mark(rec, Stage::Experts);
}

LayerRecipe layer_recipe(const std::string& arch) {
  if (arch == "llama") return llama_layer;
  if (arch == "qwen2moe" || arch == "qwen2") return qwen2moe_layer;
  if (arch == "qwen3moe" || arch == "qwen3") return qwen3moe_layer;
  fail(MOEVK_ERROR_UNSUPPORTED, "no forward pass for architecture '" + arch + "'");
}

}  // namespace moevk::models
