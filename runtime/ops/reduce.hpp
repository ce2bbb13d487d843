// Sum reduction: the smallest kernel that proves the path GLSL -> SPIR-V -> pipeline -> result.
// Also used by the bench to check a copy of memory was read in full.
#pragma once
#include "vk/context.hpp"
#include "vk/recorder.hpp"

namespace moevk::ops {

class ReduceSum {
 public:
  explicit ReduceSum(vk::Context& ctx, uint32_t workgroup_size = 256);
  // Bytes of scratch the op needs for n inputs (partials).
  static uint64_t scratch_bytes(uint32_t n);
  // out[0] = sum(input[0..n)); scratch holds the per-workgroup partials.
  void record(vk::Recorder& rec, const vk::BufferRange& input, const vk::BufferRange& scratch,
              const vk::BufferRange& out, uint32_t n) const;

 private:
  const vk::Pipeline* pipeline_;
  uint32_t wg_;
};

}  // namespace moevk::ops
