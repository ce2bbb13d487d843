// MoeRouter: one fused dispatch (shaders/moe/route_topk.comp) computes the router logits, the
// gating and the top-k per token; ids and weights stay on the GPU for the expert kernels.
// Decode of a large router (Qwen3's 128 x 2048, DeepSeek-size 256 x 7168) would leave one
// workgroup reading the whole matrix, so small batches there spread the logits over many
// workgroups. The "handoff" path (default) does it in one dispatch: route_topk over expert
// slices of kHandoffRows rows, the last slice of each token group to finish ranking them all
// (an atomic count in the scratch's head). The "split" path does it in two: MatMul's
// matrix-vector kernel writes the logits, a barrier, then route_topk ranks them.
// (The split threshold is untuned: check it on a real GPU with `moevk bench ops`, which times
// both many-workgroup paths.)
#include <algorithm>
#include <vector>

#include "common/error.hpp"
#include "ops/matmul.hpp"
#include "ops/moe.hpp"
#include "ops/weight_binding.hpp"

namespace moevk::ops {

namespace {
struct RouterPush {
  uint32_t n_tokens, n_embd, n_expert, k;
  uint32_t sigmoid_gating, renormalize, weight_base, row_bytes;
  uint32_t logits_mode;  // 0 computed in the kernel, 1 by mul_mv (split), 2 over slices (handoff)
  float norm_eps;
  uint32_t group_rows;
};
constexpr uint32_t kWorkgroup = 256;
constexpr uint32_t kLanesPerRow = 32;  // 8 expert rows per pass: Mixtral's 8 experts in one pass
constexpr uint32_t kTokensPerGroup = 4;  // each router weight byte read once per 4 tokens
constexpr uint32_t kMaxExpert = 256, kMaxK = 8;  // the shader's shared arrays
constexpr uint32_t kSplitMinExperts = 32;        // smaller routers: the fused path reads them fast
// Handoff: 128 threads, 4 rows of 32 lanes, one pass per slice: Qwen3's 128 experts in 32
// workgroups, as many as mul_mv's split takes.
constexpr uint32_t kHandoffWorkgroup = 128, kHandoffRows = kHandoffWorkgroup / kLanesPerRow;
constexpr uint32_t kHandoffTokensPerGroup = 8;
constexpr uint32_t kCounters = MoeRouter::kLogitsOffset / 4;  // token groups a handoff serves
uint32_t div_up(uint32_t a, uint32_t b) { return (a + b - 1) / b; }
}  // namespace

MoeRouter::MoeRouter(vk::Context& ctx) : ctx_(ctx) {}
MoeRouter::MoeRouter(vk::Context& ctx, uint32_t split_max_tokens, bool handoff)
    : ctx_(ctx), split_max_tokens_(split_max_tokens), handoff_(handoff) {}

std::string MoeRouter::path_for(const RouterShape& s, const Matrix& router) const {
  const bool small_batch = s.n_tokens <= split_max_tokens_;
  const bool large_router = s.n_expert >= kSplitMinExperts || split_max_tokens_ == UINT32_MAX;
  if (s.n_tokens == 0 || !small_batch || !large_router) return "fused";
  if (handoff_ && div_up(s.n_tokens, tokens_per_group(s.n_tokens, true)) <= kCounters) return "handoff";
  // Only MatMul's "mv" path: it keeps no scratch of its own, so a temporary MatMul is safe to
  // record with (the recording may be replayed after it is gone).
  if (MatMul(ctx_).path_for(router, s.n_tokens) == "mv") return "split";
  return "fused";
}

// Decode gets its own specialization (no unused per-token accumulators). The handoff's slices
// read their rows once per token group, so it takes up to 8 tokens a group: a split_max_tokens
// batch reads the router once, as the split path's mul_mv does.
uint32_t MoeRouter::tokens_per_group(uint32_t n_tokens, bool handoff) {
  if (n_tokens == 1) return 1u;
  return handoff && n_tokens > kTokensPerGroup ? kHandoffTokensPerGroup : kTokensPerGroup;
}

void MoeRouter::clear_counters(vk::Context& ctx, const vk::BufferRange& scratch) {
  require(scratch.size >= kLogitsOffset, MOEVK_ERROR_INVALID_ARGUMENT, "moe router: scratch smaller than its counters");
  const std::vector<uint8_t> zeros(kLogitsOffset, 0);
  ctx.upload({scratch.buffer, scratch.offset, kLogitsOffset}, zeros.data(), zeros.size());
}

uint64_t MoeRouter::scratch_bytes(const RouterShape& s) {
  return kLogitsOffset + std::max<uint64_t>(uint64_t(s.n_tokens) * s.n_expert * 4, 4);
}

void MoeRouter::record(vk::Recorder& rec, const RouterShape& s, const Matrix& router, const vk::BufferRange& x,
                       const vk::BufferRange& scratch, const vk::BufferRange& expert_ids,
                       const vk::BufferRange& expert_weights, const InputNorm* norm) const {
  require_weight_type(router.type, "moe router");
  require(s.n_expert >= 1 && s.n_expert <= kMaxExpert, MOEVK_ERROR_UNSUPPORTED,
          "moe router: " + std::to_string(s.n_expert) + " experts (1..256 supported)");
  require(s.k >= 1 && s.k <= kMaxK && s.k <= s.n_expert, MOEVK_ERROR_UNSUPPORTED,
          "moe router: top-" + std::to_string(s.k) + " of " + std::to_string(s.n_expert) +
              " experts (k must be 1..8 and at most n_expert)");
  require(router.rows == s.n_expert && router.cols == s.n_embd, MOEVK_ERROR_INVALID_ARGUMENT,
          "moe router: weight matrix is " + std::to_string(router.rows) + "x" + std::to_string(router.cols) +
              ", expected n_expert x n_embd = " + std::to_string(s.n_expert) + "x" + std::to_string(s.n_embd));
  require(s.n_embd > 0 && s.n_embd % weight_block_elements(router.type) == 0, MOEVK_ERROR_INVALID_ARGUMENT,
          "moe router: n_embd must be a positive multiple of the weight block size");
  require(router.data.offset % 4 == 0, MOEVK_ERROR_INVALID_ARGUMENT, "moe router: weights must start 4-byte aligned");
  if (s.n_tokens == 0) return;
  const uint64_t tk = uint64_t(s.n_tokens) * s.k * 4;
  require(x.size >= uint64_t(s.n_tokens) * s.n_embd * 4 && scratch.size >= scratch_bytes(s) &&
              expert_ids.size >= tk && expert_weights.size >= tk,
          MOEVK_ERROR_INVALID_ARGUMENT, "moe router: a buffer range is smaller than the batch needs");

  require(!norm || norm->weight.size >= uint64_t(s.n_embd) * 4, MOEVK_ERROR_INVALID_ARGUMENT,
          "moe router: norm weight shorter than n_embd");
  const uint64_t row_bytes = router.row_bytes();
  const WeightBinding wb = bind_weights(ctx_, router.data, row_bytes * router.rows);
  require(wb.range.size <= ctx_.caps().max_storage_buffer_range, MOEVK_ERROR_UNSUPPORTED,
          "moe router: router matrix exceeds the device's storage buffer range");
  const std::string path = path_for(s, router);
  // With a norm to fold in, the split path's mul_mv must take it (its batch limit with a norm is
  // smaller); else the fused kernel, which norms any batch, computes the logits itself.
  const bool split = path == "split" && (!norm || MatMul(ctx_).fuses_norm(router, s.n_tokens));
  const bool handoff = path == "handoff";
  const uint32_t tpg = tokens_per_group(s.n_tokens, handoff);
  // The split path's mul_mv applies the norm; route_topk does when it computes the logits.
  const bool fused_norm = norm && !split;
  const uint32_t wg = handoff ? kHandoffWorkgroup : kWorkgroup;
  vk::PipelineDesc desc{"route_topk_" + weight_variant(router.type), 7, sizeof(RouterPush),
                        {wg, kLanesPerRow, tpg, fused_norm ? 1u : 0u}};
  desc.table = weight_table(router.type);
  const vk::Pipeline& pipeline = ctx_.pipeline(desc);
  const vk::BufferRange counters{scratch.buffer, scratch.offset, kLogitsOffset};
  const vk::BufferRange logits{scratch.buffer, scratch.offset + kLogitsOffset, scratch.size - kLogitsOffset};
  if (split) {
    MatMul(ctx_).record(rec, router, x, logits, s.n_tokens, nullptr, false, norm);
    rec.barrier();
  }
  const RouterPush push{s.n_tokens, s.n_embd, s.n_expert, s.k, s.gating == Gating::Sigmoid ? 1u : 0u,
                        s.renormalize ? 1u : 0u, wb.base, static_cast<uint32_t>(row_bytes),
                        split ? 1u : handoff ? 2u : 0u, norm ? norm->eps : 0.0f, kHandoffRows};
  const uint32_t groups = div_up(s.n_tokens, tpg);
  const uint32_t gx = std::min(groups, 65535u);
  rec.dispatch(pipeline, {wb.range, x, logits, expert_ids, expert_weights, fused_norm ? norm->weight : x, counters},
               push, gx, div_up(groups, gx), handoff ? div_up(s.n_expert, kHandoffRows) : 1u);
}

}  // namespace moevk::ops
