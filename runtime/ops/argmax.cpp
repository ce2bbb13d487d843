// Argmax (shaders/util/argmax.comp): greedy decoding without copying logits to the host.
#include <algorithm>
#include <vector>

#include "common/error.hpp"
#include "ops/transformer.hpp"

namespace moevk::ops {

namespace {
struct ArgmaxPush {
  uint32_t n_rows, n_cols, split, partial_base;
};
constexpr uint32_t kWorkgroup = 256;
static_assert(Argmax::kMaxSlices <= kWorkgroup, "argmax.comp folds the slices one per thread at most");
uint32_t div_up(uint32_t a, uint32_t b) { return (a + b - 1) / b; }
// Workgroups per row of a split argmax (slices of kSliceCols columns, at most kMaxSlices).
uint32_t split_slices(uint32_t n_cols) { return std::min(div_up(n_cols, Argmax::kSliceCols), Argmax::kMaxSlices); }
}  // namespace

Argmax::Argmax(vk::Context& ctx, bool allow_split) : ctx_(ctx), allow_split_(allow_split) {}

uint32_t Argmax::slices(uint32_t n_rows, uint32_t n_cols, bool has_scratch) const {
  if (!allow_split_ || !has_scratch || n_rows == 0 || n_rows > kMaxSplitRows || n_cols < kSplitMinCols) return 1;
  return split_slices(n_cols);
}

uint64_t Argmax::scratch_bytes(uint32_t n_rows, uint32_t n_cols) {
  const uint64_t rows = std::min(n_rows, kMaxSplitRows);
  return kCounterBytes + std::max<uint64_t>(rows * split_slices(n_cols) * 8, 8);
}

void Argmax::clear_counters(vk::Context& ctx, const vk::BufferRange& scratch) {
  require(scratch.size >= kCounterBytes, MOEVK_ERROR_INVALID_ARGUMENT, "argmax: scratch smaller than its counters");
  const std::vector<uint8_t> zeros(kCounterBytes, 0);
  ctx.upload({scratch.buffer, scratch.offset, kCounterBytes}, zeros.data(), zeros.size());
}

void Argmax::record(vk::Recorder& rec, const vk::BufferRange& logits, const vk::BufferRange& ids, uint32_t n_rows,
                    uint32_t n_cols, const vk::BufferRange* scratch) const {
  require(n_cols > 0, MOEVK_ERROR_INVALID_ARGUMENT, "argmax: rows must have at least one column");
  if (n_rows == 0) return;
  require(logits.size >= uint64_t(n_rows) * n_cols * 4 && ids.size >= uint64_t(n_rows) * 4,
          MOEVK_ERROR_INVALID_ARGUMENT, "argmax: a buffer range is smaller than the rows need");
  const uint32_t split = slices(n_rows, n_cols, scratch != nullptr);
  require(split == 1 || scratch->size >= scratch_bytes(n_rows, n_cols), MOEVK_ERROR_INVALID_ARGUMENT,
          "argmax: scratch smaller than scratch_bytes()");
  const vk::Pipeline& pipeline = ctx_.pipeline({"argmax", 3, sizeof(ArgmaxPush), {kWorkgroup}});
  if (split > 1) {
    rec.dispatch(pipeline, {logits, ids, *scratch},
                 ArgmaxPush{n_rows, n_cols, split, static_cast<uint32_t>(kCounterBytes / 4)}, split, n_rows);
    return;
  }
  const uint32_t gx = std::min(n_rows, 65535u);
  rec.dispatch(pipeline, {logits, ids, ids}, ArgmaxPush{n_rows, n_cols, 1, 0}, gx, div_up(n_rows, gx));
}

}  // namespace moevk::ops
