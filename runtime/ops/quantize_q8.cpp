// QuantizeQ8: one thread per 32-element block, in a 2-D grid of workgroups (the 1-D limit of
// 65535 x 64 blocks is reached by long prefills of wide matrices).
#include "ops/quantize_q8.hpp"

#include <algorithm>
#include <string>

#include "common/error.hpp"

namespace moevk::ops {

namespace {
constexpr uint64_t kAlign = 256;  // >= every device's minStorageBufferOffsetAlignment
uint64_t aligned(uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }
}  // namespace

uint64_t q8_activation_bytes(uint32_t cols, uint64_t n_tokens) {
  const uint64_t values = cols * n_tokens, scales = values / 32 * 4;
  return aligned(values) + aligned(scales) + scales;
}

Q8Activations q8_activations_in(const vk::BufferRange& r, uint32_t cols, uint64_t n_tokens) {
  const uint64_t values = cols * n_tokens, scales = values / 32 * 4;
  const uint64_t xd_at = aligned(values), xs_at = xd_at + aligned(scales);
  require(xs_at + scales <= r.size, MOEVK_ERROR_INTERNAL, "int8 activations: range too small for their layout");
  Q8Activations q;
  q.xq = {r.buffer, r.offset, values};
  q.xd = {r.buffer, r.offset + xd_at, scales};
  q.xs = {r.buffer, r.offset + xs_at, scales};
  q.cols = cols;
  q.n_tokens = static_cast<uint32_t>(n_tokens);
  return q;
}

QuantizeQ8::QuantizeQ8(vk::Context& ctx, uint32_t max_groups_per_dim)
    : ctx_(ctx), max_groups_per_dim_(max_groups_per_dim ? max_groups_per_dim : kMaxGroupsPerDim) {}

QuantizeQ8::Grid QuantizeQ8::grid(uint32_t n_blocks) const {
  const uint32_t groups = n_blocks / kWorkgroup + (n_blocks % kWorkgroup != 0);
  Grid g;
  g.x = std::min(groups, max_groups_per_dim_);
  g.y = g.x ? groups / g.x + (groups % g.x != 0) : 0;
  require(g.y <= max_groups_per_dim_, MOEVK_ERROR_UNSUPPORTED,
          "quantize_q8: " + std::to_string(n_blocks) + " blocks need more than " +
              std::to_string(max_groups_per_dim_) + " x " + std::to_string(max_groups_per_dim_) + " workgroups");
  return g;
}

void QuantizeQ8::record(vk::Recorder& rec, const vk::BufferRange& x, const vk::BufferRange& xq,
                        const vk::BufferRange& xd, const vk::BufferRange& xs, uint32_t n_blocks) const {
  if (n_blocks == 0) return;
  require(x.size >= uint64_t(n_blocks) * 32 * 4 && xq.size >= uint64_t(n_blocks) * 32 &&
              xd.size >= uint64_t(n_blocks) * 4 && xs.size >= uint64_t(n_blocks) * 4,
          MOEVK_ERROR_INVALID_ARGUMENT, "quantize_q8: a buffer range is smaller than " + std::to_string(n_blocks) + " blocks");
  const Grid g = grid(n_blocks);
  rec.dispatch(ctx_.pipeline({"quantize_q8", 4, 4, {kWorkgroup}}), {x, xq, xd, xs}, n_blocks, g.x, g.y);
}

}  // namespace moevk::ops
