// counts[base + e] += number of entries equal to e in expert_ids[0..n_ids): the per-layer
// expert-choice statistics of a session, accumulated on the GPU (no readback per step).
#pragma once
#include "ops/tensor.hpp"
#include "vk/recorder.hpp"

namespace moevk::ops {

class ExpertHistogram {
 public:
  explicit ExpertHistogram(vk::Context& ctx, uint32_t workgroup_size = 64);
  // expert_ids: n_ids u32; counts: u32 counters, base + n_expert of them in range.
  void record(vk::Recorder& rec, const vk::BufferRange& expert_ids, const vk::BufferRange& counts, uint32_t n_ids,
              uint32_t n_expert, uint32_t base) const;

 private:
  const vk::Pipeline* pipeline_;
  uint32_t wg_;
};

}  // namespace moevk::ops
