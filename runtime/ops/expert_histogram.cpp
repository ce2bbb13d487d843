#include "ops/expert_histogram.hpp"

#include "common/error.hpp"

namespace moevk::ops {

ExpertHistogram::ExpertHistogram(vk::Context& ctx, uint32_t workgroup_size) : wg_(workgroup_size) {
  pipeline_ = &ctx.pipeline({"expert_histogram", 2, 12, {workgroup_size}});
}

void ExpertHistogram::record(vk::Recorder& rec, const vk::BufferRange& expert_ids, const vk::BufferRange& counts,
                             uint32_t n_ids, uint32_t n_expert, uint32_t base) const {
  if (n_ids == 0) return;
  if (uint64_t(base + n_expert) * 4 > counts.size)
    fail(MOEVK_ERROR_INTERNAL, "expert histogram: counters past the buffer range");
  struct {
    uint32_t n_ids, n_expert, base;
  } push{n_ids, n_expert, base};
  rec.dispatch(*pipeline_, {expert_ids, counts}, push, (n_ids + wg_ - 1) / wg_);
}

}  // namespace moevk::ops
