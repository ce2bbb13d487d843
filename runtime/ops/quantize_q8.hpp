// Activations to int8 for the integer-dot kernels (shaders/matmul/quantize_q8.comp), per block
// of 32 f32 values: scale d = max|x| / 127, q = round(x / d), and the scaled sum d * sum(q).
// Shared by MatMul's mm_dot path and MoeExperts' grouped dot products.
#pragma once
#include <cstdint>

#include "vk/context.hpp"
#include "vk/recorder.hpp"

namespace moevk::ops {

// int8 activations as QuantizeQ8 (or rms_norm_q8) writes them for a [n_tokens][cols] f32 matrix,
// cols % 32 == 0: xq int8 [n_tokens * cols] (4 per word), xd and xs f32 [n_tokens * cols / 32].
struct Q8Activations {
  vk::BufferRange xq, xd, xs;
  uint32_t cols = 0, n_tokens = 0;
};

// How the runtime keeps such activations in one range: the int8 values, then the scales, then
// the scaled sums, each at a 256-byte-aligned offset from the range's start (any binding
// offset's alignment). Bytes the layout needs, and the three ranges inside `r` (whose offset is
// itself 256-aligned and whose size is at least q8_activation_bytes).
uint64_t q8_activation_bytes(uint32_t cols, uint64_t n_tokens);
Q8Activations q8_activations_in(const vk::BufferRange& r, uint32_t cols, uint64_t n_tokens);

class QuantizeQ8 {
 public:
  static constexpr uint32_t kWorkgroup = 64;  // threads per workgroup, one per block
  // Workgroups per grid dimension when none is given: Vulkan's guaranteed maxComputeWorkGroupCount.
  static constexpr uint32_t kMaxGroupsPerDim = 65535;

  // max_groups_per_dim: the grid's limit per dimension (0: kMaxGroupsPerDim). Tests set it small
  // so that small batches already need the grid's second dimension.
  explicit QuantizeQ8(vk::Context& ctx, uint32_t max_groups_per_dim = 0);
  // x: f32 [n_blocks * 32]; xq: int8 [n_blocks * 32] (4 per word, element order);
  // xd: f32 [n_blocks] scales; xs: f32 [n_blocks] scaled block sums.
  void record(vk::Recorder& rec, const vk::BufferRange& x, const vk::BufferRange& xq, const vk::BufferRange& xd,
              const vk::BufferRange& xs, uint32_t n_blocks) const;

  struct Grid {
    uint32_t x = 0, y = 0;
  };
  // The workgroup grid record() dispatches for n_blocks: (min(G, max), div_up(G, that)) for
  // G = div_up(n_blocks, kWorkgroup); throws UNSUPPORTED when y would exceed the limit too
  // (never with the default: n_blocks < 2^32 needs at most 1025 rows of 65535).
  Grid grid(uint32_t n_blocks) const;

 private:
  vk::Context& ctx_;
  uint32_t max_groups_per_dim_ = kMaxGroupsPerDim;
};

}  // namespace moevk::ops
