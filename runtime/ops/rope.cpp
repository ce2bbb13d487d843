// Rope (shaders/rope/rope.comp): positions come from the StepParams buffer at execution time,
// so one recording serves every step.
#include <algorithm>
#include <cmath>
#include <cstddef>

#include "common/error.hpp"
#include "ops/transformer.hpp"

namespace moevk::ops {

namespace {
// The plain kernel's push constants are the first kPlainPushBytes (without n_head_k).
struct RopePush {
  uint32_t n_tokens, n_head, head_dim, half_rot, neox;
  float scale_hi, scale_lo;  // freq_base^(-2/rot_dim) as a double-float: the shader powers it
  uint32_t n_head_k;         // rope_qk only
};
constexpr uint32_t kPlainPushBytes = offsetof(RopePush, n_head_k);
constexpr uint32_t kWorkgroup = 256;
uint32_t div_up(uint32_t a, uint32_t b) { return (a + b - 1) / b; }
}  // namespace

Rope::Rope(vk::Context& ctx) : ctx_(ctx) {}

namespace {
// Checks the shape and fills the push constants shared by both variants; false: nothing to do.
bool prepare(const vk::BufferRange& x, const vk::BufferRange& step, uint32_t n_tokens, uint32_t n_head,
             uint32_t head_dim, uint32_t rot_dim, float freq_base, RopeLayout layout, RopePush& push) {
  require(rot_dim > 0 && rot_dim % 2 == 0 && rot_dim <= head_dim, MOEVK_ERROR_INVALID_ARGUMENT,
          "rope: rot_dim " + std::to_string(rot_dim) + " must be even and in 1..head_dim (" +
              std::to_string(head_dim) + ")");
  require(std::isfinite(freq_base) && freq_base > 0.0f, MOEVK_ERROR_INVALID_ARGUMENT, "rope: freq_base must be positive");
  if (n_tokens == 0 || n_head == 0) return false;
  const uint64_t pairs = uint64_t(n_tokens) * n_head * (rot_dim / 2);
  require(pairs < (1ull << 32) - kWorkgroup, MOEVK_ERROR_UNSUPPORTED, "rope: too many elements for one dispatch");
  require(x.size >= uint64_t(n_tokens) * n_head * head_dim * 4 && step.size >= sizeof(StepParams),
          MOEVK_ERROR_INVALID_ARGUMENT, "rope: a buffer range is smaller than the batch needs");
  float scale_hi, scale_lo;
  Rope::frequency_scale(freq_base, rot_dim, scale_hi, scale_lo);
  push = RopePush{n_tokens, n_head, head_dim, rot_dim / 2, layout == RopeLayout::Neox ? 1u : 0u, scale_hi, scale_lo, 0};
  return true;
}
}  // namespace

void Rope::frequency_scale(float freq_base, uint32_t rot_dim, float& hi, float& lo) {
  const double scale = std::pow(double(freq_base), -2.0 / double(rot_dim));
  hi = static_cast<float>(scale);
  lo = static_cast<float>(scale - double(hi));
}

void Rope::record(vk::Recorder& rec, const vk::BufferRange& x, const vk::BufferRange& step, uint32_t n_tokens,
                  uint32_t n_head, uint32_t head_dim, uint32_t rot_dim, float freq_base, RopeLayout layout) const {
  RopePush push;
  if (!prepare(x, step, n_tokens, n_head, head_dim, rot_dim, freq_base, layout, push)) return;
  const vk::Pipeline& pipeline = ctx_.pipeline({"rope", 2, kPlainPushBytes, {kWorkgroup}});
  const uint32_t groups = div_up(n_tokens * n_head * (rot_dim / 2), kWorkgroup);
  const uint32_t gx = std::min(groups, 65535u);
  const vk::BufferRange bindings[] = {x, step};
  rec.dispatch(pipeline, bindings, &push, kPlainPushBytes, gx, div_up(groups, gx));
}

void Rope::record_qk(vk::Recorder& rec, const vk::BufferRange& q, const vk::BufferRange& k,
                     const vk::BufferRange& step, uint32_t n_tokens, uint32_t n_head, uint32_t n_head_k,
                     uint32_t head_dim, uint32_t rot_dim, float freq_base, RopeLayout layout) const {
  RopePush push, push_k;
  const bool has_q = prepare(q, step, n_tokens, n_head, head_dim, rot_dim, freq_base, layout, push);
  const bool has_k = prepare(k, step, n_tokens, n_head_k, head_dim, rot_dim, freq_base, layout, push_k);
  if (!has_q || !has_k) {  // one side empty: the plain kernel on the other
    if (has_q) record(rec, q, step, n_tokens, n_head, head_dim, rot_dim, freq_base, layout);
    if (has_k) record(rec, k, step, n_tokens, n_head_k, head_dim, rot_dim, freq_base, layout);
    return;
  }
  push.n_head_k = n_head_k;
  const uint64_t pairs = uint64_t(n_tokens) * (n_head + n_head_k) * (rot_dim / 2);
  require(pairs < (1ull << 32) - kWorkgroup, MOEVK_ERROR_UNSUPPORTED, "rope: too many elements for one dispatch");
  const vk::Pipeline& pipeline = ctx_.pipeline({"rope_qk", 3, sizeof(RopePush), {kWorkgroup}});
  const uint32_t groups = div_up(static_cast<uint32_t>(pairs), kWorkgroup);
  const uint32_t gx = std::min(groups, 65535u);
  rec.dispatch(pipeline, {q, step, k}, push, gx, div_up(groups, gx));
}

namespace {
struct QkNormRopePush {
  uint32_t n_tokens, n_head, n_head_k, head_dim, half_rot, neox;
  float eps, scale_hi, scale_lo;
  uint32_t n_ctx;  // with the KV append only
};
// As RmsNorm picks for per-head dims, so the sum of squares is reduced in the same tree.
constexpr uint32_t kNormWorkgroup = 64;
}  // namespace

void Rope::record_qk_normed(vk::Recorder& rec, const vk::BufferRange& q, const vk::BufferRange& k,
                            const vk::BufferRange& q_weight, const vk::BufferRange& k_weight, float eps,
                            const vk::BufferRange& step, uint32_t n_tokens, uint32_t n_head, uint32_t n_head_k,
                            uint32_t head_dim, uint32_t rot_dim, float freq_base, RopeLayout layout) const {
  require(head_dim <= kMaxNormedHeadDim, MOEVK_ERROR_UNSUPPORTED,
          "rope: fused q/k norm supports head_dim <= " + std::to_string(kMaxNormedHeadDim));
  RopePush push, push_k;
  const bool has_q = prepare(q, step, n_tokens, n_head, head_dim, rot_dim, freq_base, layout, push);
  const bool has_k = prepare(k, step, n_tokens, n_head_k, head_dim, rot_dim, freq_base, layout, push_k);
  if (!has_q && !has_k) return;
  require(q_weight.size >= uint64_t(head_dim) * 4 && k_weight.size >= uint64_t(head_dim) * 4,
          MOEVK_ERROR_INVALID_ARGUMENT, "rope: q/k norm weights shorter than head_dim");
  const uint64_t rows = uint64_t(n_tokens) * (n_head + n_head_k);
  require(rows <= 65535ull * 65535ull, MOEVK_ERROR_UNSUPPORTED, "rope: too many rows for one dispatch");
  const QkNormRopePush p{n_tokens, n_head, n_head_k, head_dim, rot_dim / 2, push.neox, eps, push.scale_hi,
                         push.scale_lo, 0};
  const vk::Pipeline& pipeline =
      ctx_.pipeline({"qk_norm_rope", 8, sizeof(QkNormRopePush), {kNormWorkgroup, kMaxNormedHeadDim, 1u, 0u}});
  const uint32_t r = static_cast<uint32_t>(rows);
  const uint32_t gx = std::min(r, 65535u);
  // An empty q or k (zero heads) still needs a bound range: the other stands in, never read;
  // so do the KV append's bindings (v and the caches), unused without it.
  const vk::BufferRange any = has_q ? q : k;
  rec.dispatch(pipeline, {any, has_k ? k : q, q_weight, k_weight, step, any, any, any}, p, gx, div_up(r, gx));
}

void Rope::record_qk_append(vk::Recorder& rec, const vk::BufferRange& q, const vk::BufferRange& k, const QkNorm* norm,
                            const KvAppend& append, const vk::BufferRange& step, uint32_t n_tokens, uint32_t n_head,
                            uint32_t n_head_k, uint32_t head_dim, uint32_t rot_dim, float freq_base,
                            RopeLayout layout) const {
  require(head_dim <= kMaxNormedHeadDim && head_dim % 2 == 0, MOEVK_ERROR_UNSUPPORTED,
          "rope: the fused KV append supports even head_dim <= " + std::to_string(kMaxNormedHeadDim));
  RopePush push, push_k;
  require(n_head > 0 && n_head_k > 0, MOEVK_ERROR_INVALID_ARGUMENT, "rope: the KV append needs q and k heads");
  if (!prepare(q, step, n_tokens, n_head, head_dim, rot_dim, freq_base, layout, push) ||
      !prepare(k, step, n_tokens, n_head_k, head_dim, rot_dim, freq_base, layout, push_k))
    return;
  require(!norm || (norm->q_weight.size >= uint64_t(head_dim) * 4 && norm->k_weight.size >= uint64_t(head_dim) * 4),
          MOEVK_ERROR_INVALID_ARGUMENT, "rope: q/k norm weights shorter than head_dim");
  const uint64_t kv_row_bytes = uint64_t(n_head_k) * head_dim * 4;
  require(append.v.size >= n_tokens * kv_row_bytes, MOEVK_ERROR_INVALID_ARGUMENT, "rope: v smaller than the batch");
  const uint64_t cache = uint64_t(n_head_k) * append.n_ctx * head_dim * 2;
  require(append.n_ctx > 0 && append.k_cache.size >= cache && append.v_cache.size >= cache,
          MOEVK_ERROR_INVALID_ARGUMENT, "rope: KV cache smaller than n_ctx positions");
  const uint64_t rows = uint64_t(n_tokens) * (n_head + 2ull * n_head_k);
  require(rows <= 65535ull * 65535ull, MOEVK_ERROR_UNSUPPORTED, "rope: too many rows for one dispatch");
  const QkNormRopePush p{n_tokens,      n_head,        n_head_k,     head_dim, rot_dim / 2, push.neox,
                         norm ? norm->eps : 0.0f, push.scale_hi, push.scale_lo, append.n_ctx};
  const vk::Pipeline& pipeline = ctx_.pipeline(
      {"qk_norm_rope", 8, sizeof(QkNormRopePush), {kNormWorkgroup, kMaxNormedHeadDim, norm ? 1u : 0u, 1u}});
  const uint32_t r = static_cast<uint32_t>(rows);
  const uint32_t gx = std::min(r, 65535u);
  // Without norms their bindings are never read: q stands in.
  rec.dispatch(pipeline,
               {q, k, norm ? norm->q_weight : q, norm ? norm->k_weight : q, step, append.v, append.k_cache,
                append.v_cache},
               p, gx, div_up(r, gx));
}

}  // namespace moevk::ops
