// Argmax (shaders/util/argmax.comp): greedy decoding without copying logits to the host.
#include <algorithm>

#include "common/error.hpp"
#include "ops/transformer.hpp"

namespace moevk::ops {

namespace {
struct ArgmaxPush {
  uint32_t n_rows, n_cols;
};
constexpr uint32_t kWorkgroup = 256;
uint32_t div_up(uint32_t a, uint32_t b) { return (a + b - 1) / b; }
}  // namespace

Argmax::Argmax(vk::Context& ctx) : ctx_(ctx) {}

void Argmax::record(vk::Recorder& rec, const vk::BufferRange& logits, const vk::BufferRange& ids, uint32_t n_rows,
                    uint32_t n_cols) const {
  require(n_cols > 0, MOEVK_ERROR_INVALID_ARGUMENT, "argmax: rows must have at least one column");
  if (n_rows == 0) return;
  require(logits.size >= uint64_t(n_rows) * n_cols * 4 && ids.size >= uint64_t(n_rows) * 4,
          MOEVK_ERROR_INVALID_ARGUMENT, "argmax: a buffer range is smaller than the rows need");
  const vk::Pipeline& pipeline = ctx_.pipeline({"argmax", 2, sizeof(ArgmaxPush), {kWorkgroup}});
  const uint32_t gx = std::min(n_rows, 65535u);
  rec.dispatch(pipeline, {logits, ids}, ArgmaxPush{n_rows, n_cols}, gx, div_up(n_rows, gx));
}

}  // namespace moevk::ops
