// RmsNorm (shaders/norm/rms_norm.comp): one workgroup per row; rms_norm_q8 also writes int8 rows.
#include <algorithm>

#include "common/error.hpp"
#include "ops/quantize_q8.hpp"
#include "ops/transformer.hpp"

namespace moevk::ops {

namespace {
struct NormPush {
  uint32_t n_rows, dim;
  float eps;
};
// Per-head norms (dim = head_dim, 64..256) get small workgroups, so few threads sit idle.
constexpr uint32_t kSmallDim = 512, kSmallWorkgroup = 64, kWorkgroup = 256;
uint32_t div_up(uint32_t a, uint32_t b) { return (a + b - 1) / b; }
}  // namespace

RmsNorm::RmsNorm(vk::Context& ctx) : ctx_(ctx) {}

void RmsNorm::record(vk::Recorder& rec, const vk::BufferRange& x, const vk::BufferRange& weight,
                     const vk::BufferRange& out, uint32_t n_rows, uint32_t dim, float eps,
                     const Q8Activations* q8) const {
  require(dim > 0, MOEVK_ERROR_INVALID_ARGUMENT, "rms_norm: dim must be positive");
  if (n_rows == 0) return;
  const uint64_t bytes = uint64_t(n_rows) * dim * 4;
  require(x.size >= bytes && out.size >= bytes && weight.size >= uint64_t(dim) * 4, MOEVK_ERROR_INVALID_ARGUMENT,
          "rms_norm: a buffer range is smaller than " + std::to_string(n_rows) + " rows of " + std::to_string(dim));
  const uint32_t wg = dim <= kSmallDim ? kSmallWorkgroup : kWorkgroup;
  const uint32_t gx = std::min(n_rows, 65535u);
  const NormPush push{n_rows, dim, eps};
  if (!q8) {
    rec.dispatch(ctx_.pipeline({"rms_norm", 3, sizeof(NormPush), {wg}}), {x, weight, out}, push, gx, div_up(n_rows, gx));
    return;
  }
  const uint64_t blocks = uint64_t(n_rows) * dim / 32;
  require(dim % 32 == 0 && q8->cols == dim && q8->n_tokens == n_rows, MOEVK_ERROR_INVALID_ARGUMENT,
          "rms_norm: int8 output of another shape, or dim " + std::to_string(dim) + " not a multiple of 32");
  require(q8->xq.size >= blocks * 32 && q8->xd.size >= blocks * 4 && q8->xs.size >= blocks * 4,
          MOEVK_ERROR_INVALID_ARGUMENT, "rms_norm: int8 output ranges smaller than " + std::to_string(n_rows) + " rows");
  rec.dispatch(ctx_.pipeline({"rms_norm_q8", 6, sizeof(NormPush), {wg}}), {x, weight, out, q8->xq, q8->xd, q8->xs},
               push, gx, div_up(n_rows, gx));
}

}  // namespace moevk::ops
