// MoeRouter: one fused dispatch (shaders/moe/route_topk.comp) computes the router logits, the
// gating and the top-k per token; ids and weights stay on the GPU for the expert kernels.
#include <algorithm>

#include "common/error.hpp"
#include "ops/moe.hpp"
#include "ops/weight_binding.hpp"

namespace moevk::ops {

namespace {
struct RouterPush {
  uint32_t n_tokens, n_embd, n_expert, k;
  uint32_t sigmoid_gating, renormalize, weight_base, row_bytes;
};
constexpr uint32_t kWorkgroup = 256;
constexpr uint32_t kLanesPerRow = 32;  // 8 expert rows per pass: Mixtral's 8 experts in one pass
constexpr uint32_t kTokensPerGroup = 4;  // each router weight byte read once per 4 tokens
constexpr uint32_t kMaxExpert = 256, kMaxK = 8;  // the shader's shared arrays
uint32_t div_up(uint32_t a, uint32_t b) { return (a + b - 1) / b; }
}  // namespace

MoeRouter::MoeRouter(vk::Context& ctx) : ctx_(ctx) {}

uint64_t MoeRouter::scratch_bytes(const RouterShape& s) {
  return std::max<uint64_t>(uint64_t(s.n_tokens) * s.n_expert * 4, 4);
}

void MoeRouter::record(vk::Recorder& rec, const RouterShape& s, const Matrix& router, const vk::BufferRange& x,
                       const vk::BufferRange& scratch, const vk::BufferRange& expert_ids,
                       const vk::BufferRange& expert_weights) const {
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

  const uint64_t row_bytes = router.row_bytes();
  const WeightBinding wb = bind_weights(ctx_, router.data, row_bytes * router.rows);
  require(wb.range.size <= ctx_.caps().max_storage_buffer_range, MOEVK_ERROR_UNSUPPORTED,
          "moe router: router matrix exceeds the device's storage buffer range");
  // Decode gets its own specialization: no unused per-token accumulators.
  const uint32_t tokens_per_group = s.n_tokens == 1 ? 1u : kTokensPerGroup;
  const vk::Pipeline& pipeline = ctx_.pipeline({"route_topk_" + weight_variant(router.type), 5, sizeof(RouterPush),
                                                {kWorkgroup, kLanesPerRow, tokens_per_group}});
  const RouterPush push{s.n_tokens, s.n_embd, s.n_expert, s.k, s.gating == Gating::Sigmoid ? 1u : 0u,
                        s.renormalize ? 1u : 0u, wb.base, static_cast<uint32_t>(row_bytes)};
  const uint32_t groups = div_up(s.n_tokens, tokens_per_group);
  const uint32_t gx = std::min(groups, 65535u);
  rec.dispatch(pipeline, {wb.range, x, scratch, expert_ids, expert_weights}, push, gx, div_up(groups, gx));
}

}  // namespace moevk::ops
