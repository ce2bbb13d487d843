// MatMul: picks the kernel family by batch size and device features, binds the weights
// (ops/weight_binding.hpp) and records the dispatches.
//   mv      shaders/matmul/mul_mv.comp (subgroup-reduction variant where subgroup arithmetic is on)
//   mm      shaders/matmul/mul_mm.comp
//   mm_dot  ops::QuantizeQ8 (shaders/matmul/quantize_q8.comp) then mul_mm_dot.comp (int8-affine types,
//           integer dot)
//   mm_coopmat  shaders/matmul/mul_mm_coopmat.comp (NV cooperative matrix 16x16x16 f16 -> f32)
#include "ops/matmul.hpp"

#include <algorithm>

#include "common/error.hpp"
#include "ops/coopmat.hpp"
#include "ops/quantize_q8.hpp"
#include "ops/weight_binding.hpp"

namespace moevk::ops {

namespace {
struct MatMulPush {
  uint32_t cols, rows, n_tokens, weight_base, row_bytes, flags;  // kFlagBias | kFlagAccumulate
  uint32_t y_stride, row_begin;
  float norm_eps;  // mul_mv with NORM only
};

// 4 rows per workgroup: each activation load (from cache) serves 4 weight rows, so cache traffic
// for x stays near the weight bytes streamed from memory (f32 x is 7x the bytes of q4_0 weights).
constexpr uint32_t kMvWorkgroup = 128, kMvRows = 4;
constexpr uint32_t kMmBM = 64, kMmBK = 32, kMmTM = 4, kMmTN = 4;
constexpr uint32_t kFlagBias = 1, kFlagAccumulate = 2;  // the shaders' pc.flags bits
constexpr uint64_t kScratchAlign = 256;  // >= every device's minStorageBufferOffsetAlignment

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
uint32_t div_up(uint32_t a, uint32_t b) { return (a + b - 1) / b; }
}  // namespace

MatMul::MatMul(vk::Context& ctx, MatMulOptions options) : ctx_(ctx), options_(options) {
  require(options_.mv_max_tokens * kMvRows <= kMvWorkgroup, MOEVK_ERROR_INVALID_ARGUMENT,
          "matmul: mv_max_tokens must be at most 32 (0: always matrix-matrix)");
  mv_subgroup_ = options_.allow_subgroup && ctx_.features().subgroup_arithmetic;
  mv_max_tokens_ = mv_token_cap(ctx_.caps(), mv_subgroup_, false, options_.mv_max_tokens);
  mv_max_norm_tokens_ = mv_token_cap(ctx_.caps(), mv_subgroup_, true, mv_max_tokens_);
}

uint32_t MatMul::mv_subgroup_slots(const vk::Capabilities& caps) { return caps.max_subgroups(kMvWorkgroup); }

uint32_t MatMul::mv_token_cap(const vk::Capabilities& caps, bool subgroup, bool norm, uint32_t requested) {
  // mul_mv.comp keeps ROWS partial sums per token (ROWS + 1 with a norm: the sums of squares) in
  // each slot: one slot per thread for the plain reduction, 2 KiB per token at WG 128 (32 tokens
  // would need 64 KiB, over NVIDIA's 48 and lavapipe's 32); one per subgroup for the subgroup
  // reduction, 64 bytes per token with subgroups of 32.
  const uint32_t slots = subgroup ? mv_subgroup_slots(caps) : kMvWorkgroup;
  const uint32_t bytes_per_token = (kMvRows + (norm ? 1 : 0)) * slots * 4;
  return std::min(requested, caps.max_shared_memory / bytes_per_token);
}

void MatMul::check_supported(quant::Type t) { require_weight_type(t, "matmul"); }

uint64_t MatMul::dot_scratch_bytes(uint32_t cols, uint32_t n_tokens) {
  // int8 activations, then the per-block dx and xs arrays, each at an aligned offset.
  const uint64_t blocks = uint64_t(cols / 32) * n_tokens * 4;
  return align_up(uint64_t(cols) * n_tokens, kScratchAlign) + align_up(blocks, kScratchAlign) + blocks;
}

std::string MatMul::path_for(const Matrix& w, uint32_t n_tokens) const {
  check_supported(w.type);
  if (n_tokens <= mv_max_tokens_) return "mv";
  if (options_.coopmat_emulation ? coopmat_emulation_usable(ctx_, w.type)
                                 : options_.allow_coopmat && coopmat_usable(ctx_))
    return "mm_coopmat";
  if (options_.allow_dot && ctx_.features().dot && weight_has_int8_dot(w.type)) return "mm_dot";
  return "mm";
}

vk::BufferRange MatMul::dot_scratch(uint64_t bytes) const {
  std::lock_guard<std::mutex> lock(scratch_->mutex);
  auto& buffers = scratch_->buffers;
  if (buffers.empty() || buffers.back().size() < bytes)
    buffers.push_back(ctx_.create_buffer(std::max<uint64_t>(bytes, 4096), vk::BufferKind::Device,
                                         "matmul int8 activations"));
  return buffers.back().range();
}

void MatMul::record(vk::Recorder& rec, const Matrix& w, const vk::BufferRange& x, const vk::BufferRange& y,
                    uint32_t n_tokens, const vk::BufferRange* bias, bool accumulate,
                    const InputNorm* norm) const {
  check_supported(w.type);
  const char* type_name = quant::type_info(w.type).name;
  require(w.cols > 0 && w.rows > 0 && w.cols % weight_block_elements(w.type) == 0, MOEVK_ERROR_INVALID_ARGUMENT,
          "matmul: " + std::to_string(w.rows) + "x" + std::to_string(w.cols) + " " + type_name +
              " matrix: columns must be a positive multiple of the block size");
  if (n_tokens == 0) return;
  require(x.size >= uint64_t(n_tokens) * w.cols * 4 && y.size >= uint64_t(n_tokens) * w.rows * 4,
          MOEVK_ERROR_INVALID_ARGUMENT, "matmul: activation range smaller than the batch");
  require(!bias || bias->size >= uint64_t(w.rows) * 4, MOEVK_ERROR_INVALID_ARGUMENT, "matmul: bias too small");
  require(w.data.size >= w.row_bytes() * w.rows, MOEVK_ERROR_INVALID_ARGUMENT, "matmul: weight range too small");
  require(w.data.offset % 4 == 0, MOEVK_ERROR_INVALID_ARGUMENT, "matmul: weights must start 4-byte aligned");
  const vk::BufferRange bias_range = bias ? *bias : y;  // never read when has_bias == 0
  const std::string variant = weight_variant(w.type);
  const std::string path = path_for(w, n_tokens);
  require(!norm || fuses_norm(w, n_tokens), MOEVK_ERROR_INTERNAL,
          "matmul: a fused input norm needs the mv path within its shared-memory limit, not " + path + " at " +
              std::to_string(n_tokens) + " tokens");
  require(!norm || norm->weight.size >= uint64_t(w.cols) * 4, MOEVK_ERROR_INVALID_ARGUMENT,
          "matmul: norm weight shorter than the row");

  // Rows per dispatch: as many as one binding can hold (alignment slack and word rounding aside).
  const uint64_t row_bytes = w.row_bytes();
  const uint64_t limit = options_.max_weight_binding_bytes ? options_.max_weight_binding_bytes
                                                           : ctx_.caps().max_storage_buffer_range;
  const uint64_t slack = std::max<uint64_t>(ctx_.caps().min_storage_buffer_offset_alignment, 4) + 4;
  require(limit >= slack + row_bytes, MOEVK_ERROR_UNSUPPORTED,
          std::string("matmul: one ") + type_name + " row of " + std::to_string(row_bytes) +
              " bytes exceeds the device's storage buffer range");
  const uint32_t chunk_rows = static_cast<uint32_t>(std::min<uint64_t>(w.rows, (limit - slack) / row_bytes));

  // The dot path quantizes the activations once for all chunks.
  vk::BufferRange xq, xd, xs;
  const vk::Pipeline* pipeline = nullptr;
  uint32_t bn = n_tokens <= 32 ? 32 : 64;
  // Decode (one token) gets its own specialization: 1 accumulator per row instead of
  // mv_max_tokens, so fewer registers and more workgroups in flight, and its own workgroup shape
  // (options.decode_*); batches share one pipeline.
  const bool one_token = n_tokens == 1;
  const uint32_t mv_wg = one_token ? options_.decode_workgroup : kMvWorkgroup;
  const uint32_t mv_rows = one_token ? options_.decode_rows : kMvRows;
  if (path == "mv") {
    const uint32_t max_tokens = one_token ? 1u : norm ? mv_max_norm_tokens_ : mv_max_tokens_;
    const uint32_t slots = mv_subgroup_ ? ctx_.caps().max_subgroups(mv_wg) : mv_wg;
    // Batches keep 128 x 4 and are capped to fit (mv_token_cap); the one-token shape comes from
    // the options. Shared sums: rows (+ 1 with a norm) per slot (per thread, or per subgroup).
    if (one_token) require_decode_shape(ctx_, "matmul", mv_wg, mv_rows, 4ull * (mv_rows + (norm ? 1 : 0)) * slots);
    std::vector<uint32_t> spec{mv_wg, mv_rows, max_tokens, norm ? 1u : 0u};
    if (mv_subgroup_) spec.push_back(slots);
    pipeline = &ctx_.pipeline({"mul_mv_" + variant + (mv_subgroup_ ? "_subgroup" : ""), 5, sizeof(MatMulPush),
                               std::move(spec)});
  } else if (path == "mm_dot") {
    const uint64_t q_bytes = align_up(uint64_t(w.cols) * n_tokens, kScratchAlign);
    const uint32_t n_blocks = n_tokens * (w.cols / 32);
    const vk::BufferRange s = dot_scratch(dot_scratch_bytes(w.cols, n_tokens));
    xq = {s.buffer, s.offset, uint64_t(w.cols) * n_tokens};
    xd = {s.buffer, s.offset + q_bytes, uint64_t(n_blocks) * 4};
    xs = {s.buffer, s.offset + q_bytes + align_up(uint64_t(n_blocks) * 4, kScratchAlign), uint64_t(n_blocks) * 4};
    rec.barrier();  // an earlier matmul of this op may still read the scratch
    QuantizeQ8(ctx_, options_.quantize_groups_per_dim).record(rec, x, xq, xd, xs, n_blocks);
    rec.barrier();
    const uint32_t wg = (kMmBM / kMmTM) * (bn / kMmTN);
    pipeline = &ctx_.pipeline({"mul_mm_dot_" + variant, 6, sizeof(MatMulPush), {wg, kMmBM, bn, kMmTM, kMmTN}});
  } else if (path == "mm_coopmat") {
    bn = 64;
    pipeline = &ctx_.pipeline(
        {coopmat_variant("mul_mm_coopmat", w.type, options_.coopmat_emulation), 4, sizeof(MatMulPush), {}});
  } else {
    const uint32_t wg = (kMmBM / kMmTM) * (bn / kMmTN);
    pipeline = &ctx_.pipeline({"mul_mm_" + variant, 4, sizeof(MatMulPush), {wg, kMmBM, bn, kMmBK, kMmTM, kMmTN}});
  }

  for (uint32_t row_begin = 0; row_begin < w.rows; row_begin += chunk_rows) {
    const uint32_t rows = std::min(chunk_rows, w.rows - row_begin);
    const vk::BufferRange chunk{w.data.buffer, w.data.offset + row_begin * row_bytes, rows * row_bytes};
    const WeightBinding wb = bind_weights(ctx_, chunk, rows * row_bytes);
    const MatMulPush push{w.cols, rows, n_tokens, wb.base, static_cast<uint32_t>(row_bytes),
                          (bias ? kFlagBias : 0u) | (accumulate ? kFlagAccumulate : 0u), w.rows, row_begin,
                          norm ? norm->eps : 0.0f};
    if (path == "mv") {
      const uint32_t groups = div_up(rows, mv_rows);
      const uint32_t gx = std::min(groups, 65535u);
      rec.dispatch(*pipeline, {wb.range, x, y, bias_range, norm ? norm->weight : x}, push, gx, div_up(groups, gx));
    } else if (path == "mm_dot") {
      rec.dispatch(*pipeline, {wb.range, xq, xd, xs, y, bias_range}, push, div_up(rows, kMmBM), div_up(n_tokens, bn));
    } else {
      rec.dispatch(*pipeline, {wb.range, x, y, bias_range}, push, div_up(rows, kMmBM), div_up(n_tokens, bn));
    }
  }
}

}  // namespace moevk::ops
