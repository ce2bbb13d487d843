// SampleTopK (shaders/util/sample_topk.comp).
#include "ops/sample_topk.hpp"

#include <vector>

#include "common/error.hpp"

namespace moevk::ops {

namespace {
struct SamplePush {
  uint32_t n_cols, split, partial_base, sums_base, keys_base, ring;
};

// The scratch in words: the counter, the slices' lists (split > 1), the slices' (max key, sum,
// sum at the temperature) triples and the row's keys (a whole-row draw's; 4-word aligned and
// rounded up to 4 words, for the shader's 16-byte loads).
struct ScratchLayout {
  uint32_t partial_base, sums_base, keys_base, words;
};
ScratchLayout scratch_layout(uint32_t n_cols) {
  const uint32_t s = SampleTopK::slices(n_cols);
  ScratchLayout l;
  l.partial_base = uint32_t(SampleTopK::kCounterBytes / 4);
  l.sums_base = l.partial_base + (s > 1 ? s * uint32_t(SampleTopK::kCandidateBytes / 4) : 0);
  l.keys_base = (l.sums_base + 3 * s + 3) / 4 * 4;
  l.words = l.keys_base + (n_cols + 3) / 4 * 4;
  return l;
}
}  // namespace

SampleTopK::SampleTopK(vk::Context& ctx) : ctx_(ctx) {}

uint32_t SampleTopK::slices(uint32_t n_cols) { return n_cols <= kSliceCols ? 1 : (n_cols + kSliceCols - 1) / kSliceCols; }

uint64_t SampleTopK::scratch_bytes(uint32_t n_cols) { return uint64_t(scratch_layout(n_cols).words) * 4; }

void SampleTopK::clear_counters(vk::Context& ctx, const vk::BufferRange& scratch) {
  require(scratch.size >= kCounterBytes, MOEVK_ERROR_INVALID_ARGUMENT, "sample_topk: scratch smaller than its counter");
  const std::vector<uint8_t> zeros(kCounterBytes, 0);
  ctx.upload({scratch.buffer, scratch.offset, kCounterBytes}, zeros.data(), zeros.size());
}

void SampleTopK::record(vk::Recorder& rec, const vk::BufferRange& logits, uint32_t n_cols, const vk::BufferRange& params,
                        const vk::BufferRange& candidates, const vk::BufferRange& id,
                        const vk::BufferRange& scratch, const vk::BufferRange& ring) const {
  require(n_cols > 0, MOEVK_ERROR_INVALID_ARGUMENT, "sample_topk: the row must have at least one column");
  require(logits.size >= uint64_t(n_cols) * 4 && params.size >= sizeof(SampleParams) &&
              candidates.size >= kCandidateBytes && id.size >= 4 && scratch.size >= scratch_bytes(n_cols) &&
              ring.size >= ring_bytes(1),
          MOEVK_ERROR_INVALID_ARGUMENT, "sample_topk: a buffer range is smaller than the row needs");
  require(ring.size / 4 <= UINT32_MAX, MOEVK_ERROR_INVALID_ARGUMENT, "sample_topk: a ring of more than 2^32 positions");
  require(scratch.offset % 16 == 0, MOEVK_ERROR_INVALID_ARGUMENT,
          "sample_topk: the scratch must start 16-byte aligned (the row's keys are read 16 bytes at a time)");
  const uint32_t split = slices(n_cols);
  const vk::Pipeline& pipeline = ctx_.pipeline({"sample_topk", 6, sizeof(SamplePush), {}});
  const ScratchLayout l = scratch_layout(n_cols);
  rec.dispatch(pipeline, {logits, params, candidates, id, scratch, ring},
               SamplePush{n_cols, split, l.partial_base, l.sums_base, l.keys_base, uint32_t(ring.size / 4)}, split, 1);
}

}  // namespace moevk::ops
