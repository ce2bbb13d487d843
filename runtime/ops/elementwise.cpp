// Elementwise add / swiglu (shaders/util/elementwise.comp): grid-stride loops, any n.
#include <algorithm>

#include "common/error.hpp"
#include "ops/transformer.hpp"

namespace moevk::ops {

namespace {
constexpr uint32_t kWorkgroup = 256;

void record_binary(vk::Context& ctx, vk::Recorder& rec, const char* variant, const vk::BufferRange& a,
                   const vk::BufferRange& b, const vk::BufferRange& out, uint32_t n) {
  if (n == 0) return;
  const uint64_t bytes = uint64_t(n) * 4;
  require(a.size >= bytes && b.size >= bytes && out.size >= bytes, MOEVK_ERROR_INVALID_ARGUMENT,
          std::string(variant) + ": a buffer range is smaller than " + std::to_string(n) + " floats");
  const vk::Pipeline& pipeline = ctx.pipeline({variant, 3, 4, {kWorkgroup}});
  const uint32_t groups = std::min((n + kWorkgroup - 1) / kWorkgroup, 65535u);
  rec.dispatch(pipeline, {a, b, out}, n, groups);
}
}  // namespace

Elementwise::Elementwise(vk::Context& ctx) : ctx_(ctx) {}

void Elementwise::add(vk::Recorder& rec, const vk::BufferRange& a, const vk::BufferRange& b,
                      const vk::BufferRange& out, uint32_t n) const {
  record_binary(ctx_, rec, "elementwise_add", a, b, out, n);
}

void Elementwise::swiglu(vk::Recorder& rec, const vk::BufferRange& gate, const vk::BufferRange& up,
                         const vk::BufferRange& out, uint32_t n) const {
  record_binary(ctx_, rec, "elementwise_swiglu", gate, up, out, n);
}

void Elementwise::swiglu_q8(vk::Recorder& rec, const vk::BufferRange& gate, const vk::BufferRange& up,
                            const Q8Activations& out) const {
  require(out.cols % 32 == 0, MOEVK_ERROR_INVALID_ARGUMENT, "swiglu_q8: columns must be a multiple of 32");
  const uint64_t n = uint64_t(out.cols) * out.n_tokens, blocks = n / 32;
  if (n == 0) return;
  require(n < (uint64_t(1) << 32), MOEVK_ERROR_INVALID_ARGUMENT, "swiglu_q8: more than 2^32 values");
  require(gate.size >= n * 4 && up.size >= n * 4 && out.xq.size >= n && out.xd.size >= blocks * 4 &&
              out.xs.size >= blocks * 4,
          MOEVK_ERROR_INVALID_ARGUMENT, "swiglu_q8: a buffer range is smaller than " + std::to_string(n) + " values");
  constexpr uint32_t kQ8Workgroup = 64;
  const vk::Pipeline& pipeline = ctx_.pipeline({"swiglu_q8", 5, 4, {kQ8Workgroup}});
  const uint32_t groups = uint32_t(std::min<uint64_t>((blocks + kQ8Workgroup - 1) / kQ8Workgroup, 65535));
  rec.dispatch(pipeline, {gate, up, out.xq, out.xd, out.xs}, uint32_t(blocks), groups);
}

}  // namespace moevk::ops
