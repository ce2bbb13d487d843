#include "ops/reduce.hpp"

#include <algorithm>

namespace moevk::ops {

namespace {
constexpr uint32_t kMaxGroups = 256;  // partials fold in one workgroup of the second pass
uint32_t groups_for(uint32_t n, uint32_t wg) { return std::clamp((n + wg - 1) / wg, 1u, kMaxGroups); }
}  // namespace

ReduceSum::ReduceSum(vk::Context& ctx, uint32_t workgroup_size) : wg_(workgroup_size) {
  pipeline_ = &ctx.pipeline({"reduce_sum_f32", 2, 4, {workgroup_size}});
}

uint64_t ReduceSum::scratch_bytes(uint32_t n) { return kMaxGroups * 4; }

void ReduceSum::record(vk::Recorder& rec, const vk::BufferRange& input, const vk::BufferRange& scratch,
                       const vk::BufferRange& out, uint32_t n) const {
  const uint32_t groups = groups_for(n, wg_);
  rec.dispatch(*pipeline_, {input, scratch}, n, groups);
  rec.barrier();
  rec.dispatch(*pipeline_, {scratch, out}, groups, 1);
}

}  // namespace moevk::ops
