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
  float norm_eps;  // unused by the mm kernels; kept so the layout matches their Push blocks
};
// mul_mv.comp's: up to kMaxMergedProducts matrices of one type and width, positions in floats.
struct MvPush {
  uint32_t cols, n_tokens, row_bytes, flags, n_mats;
  float norm_eps;
  uint32_t rows[MatMul::kMaxMergedProducts], weight_base[MatMul::kMaxMergedProducts];
  uint32_t y_begin[MatMul::kMaxMergedProducts], y_stride[MatMul::kMaxMergedProducts];
  uint32_t bias_begin[MatMul::kMaxMergedProducts];
};

// 4 rows per workgroup: each activation load (from cache) serves 4 weight rows, so cache traffic
// for x stays near the weight bytes streamed from memory (f32 x is 7x the bytes of q4_0 weights).
constexpr uint32_t kMvWorkgroup = 128, kMvRows = 4;
constexpr uint32_t kMmBM = 64, kMmBK = 32, kMmTM = 4, kMmTN = 4;
constexpr uint32_t kFlagBias = 1, kFlagAccumulate = 2;  // the shaders' pc.flags bits

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

uint64_t MatMul::dot_scratch_bytes(uint32_t cols, uint32_t n_tokens) { return q8_activation_bytes(cols, n_tokens); }

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

uint64_t MatMul::weight_binding_limit() const {
  const uint64_t limit = options_.max_weight_binding_bytes ? options_.max_weight_binding_bytes
                                                           : ctx_.caps().max_storage_buffer_range;
  const uint64_t slack = weight_binding_slack(ctx_);
  return limit > slack ? limit - slack : 0;
}

const vk::Pipeline& MatMul::mv_pipeline(uint32_t n_tokens, const InputNorm* norm, uint32_t& rows,
                                        quant::Type type) const {
  // Decode (one token) gets its own specialization: 1 accumulator per row instead of
  // mv_max_tokens, so fewer registers and more workgroups in flight, and its own workgroup shape
  // (options.decode_*); batches share one pipeline, 128 x 4, capped to fit (mv_token_cap).
  const bool one_token = n_tokens == 1;
  const uint32_t wg = one_token ? options_.decode_workgroup : kMvWorkgroup;
  rows = one_token ? options_.decode_rows : kMvRows;
  const uint32_t max_tokens = one_token ? 1u : norm ? mv_max_norm_tokens_ : mv_max_tokens_;
  const uint32_t slots = mv_subgroup_ ? ctx_.caps().max_subgroups(wg) : wg;
  // Shared sums: rows (+ 1 with a norm) per slot (per thread, or per subgroup).
  if (one_token) require_decode_shape(ctx_, "matmul", wg, rows, 4ull * (rows + (norm ? 1 : 0)) * slots);
  const bool wide = one_token && options_.wide_decode && weight_has_wide_runs(type);
  std::vector<uint32_t> spec{wg, rows, max_tokens, norm ? 1u : 0u, slots, wide ? 1u : 0u};
  vk::PipelineDesc desc{"mul_mv_" + weight_variant(type) + (mv_subgroup_ ? "_subgroup" : ""), 5, sizeof(MvPush),
                        std::move(spec)};
  desc.table = weight_table(type);
  return ctx_.pipeline(desc);
}

void MatMul::record(vk::Recorder& rec, const Matrix& w, const vk::BufferRange& x, const vk::BufferRange& y,
                    uint32_t n_tokens, const vk::BufferRange* bias, bool accumulate,
                    const InputNorm* norm, const Q8Activations* x_q8) const {
  record_impl(rec, w, x, y, n_tokens, bias, accumulate, norm, path_for(w, n_tokens) == "mm_dot" ? x_q8 : nullptr);
}

Q8Activations MatMul::quantize_input(vk::Recorder& rec, const vk::BufferRange& x, uint32_t cols,
                                        uint32_t n_tokens) const {
  const uint32_t n_blocks = n_tokens * (cols / 32);
  const Q8Activations in = q8_activations_in(dot_scratch(dot_scratch_bytes(cols, n_tokens)), cols, n_tokens);
  rec.barrier();  // an earlier matmul of this op may still read the scratch
  QuantizeQ8(ctx_, options_.quantize_groups_per_dim).record(rec, x, in.xq, in.xd, in.xs, n_blocks);
  rec.barrier();
  return in;
}

void MatMul::record_impl(vk::Recorder& rec, const Matrix& w, const vk::BufferRange& x, const vk::BufferRange& y,
                         uint32_t n_tokens, const vk::BufferRange* bias, bool accumulate, const InputNorm* norm,
                         const Q8Activations* quantized) const {
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
  const uint64_t limit = weight_binding_limit();
  require(limit >= row_bytes, MOEVK_ERROR_UNSUPPORTED,
          std::string("matmul: one ") + type_name + " row of " + std::to_string(row_bytes) +
              " bytes exceeds the device's storage buffer range");
  const uint32_t chunk_rows = static_cast<uint32_t>(std::min<uint64_t>(w.rows, limit / row_bytes));

  // The dot path quantizes the activations once for all chunks (or takes them quantized: the
  // products of one input share one quantization, record_products).
  vk::BufferRange xq, xd, xs;
  const vk::Pipeline* pipeline = nullptr;
  uint32_t bn = n_tokens <= 32 ? 32 : 64;
  uint32_t mv_rows = 0;
  if (path == "mv") {
    pipeline = &mv_pipeline(n_tokens, norm, mv_rows, w.type);
  } else if (path == "mm_dot") {
    require(!quantized || (quantized->cols == w.cols && quantized->n_tokens == n_tokens), MOEVK_ERROR_INTERNAL,
            "matmul: quantized activations of another shape");
    const Q8Activations in = quantized ? *quantized : quantize_input(rec, x, w.cols, n_tokens);
    xq = in.xq;
    xd = in.xd;
    xs = in.xs;
    const uint32_t wg = (kMmBM / kMmTM) * (bn / kMmTN);
    vk::PipelineDesc desc{"mul_mm_dot_" + variant, 6, sizeof(MatMulPush), {wg, kMmBM, bn, kMmTM, kMmTN}};
    desc.table = weight_table(w.type);
    pipeline = &ctx_.pipeline(desc);
  } else if (path == "mm_coopmat") {
    bn = 64;
    vk::PipelineDesc desc{coopmat_variant("mul_mm_coopmat", w.type, options_.coopmat_emulation), 4, sizeof(MatMulPush), {}};
    desc.table = weight_table(w.type);
    pipeline = &ctx_.pipeline(desc);
  } else {
    const uint32_t wg = (kMmBM / kMmTM) * (bn / kMmTN);
    vk::PipelineDesc desc{"mul_mm_" + variant, 4, sizeof(MatMulPush), {wg, kMmBM, bn, kMmBK, kMmTM, kMmTN}};
    desc.table = weight_table(w.type);
    pipeline = &ctx_.pipeline(desc);
  }

  for (uint32_t row_begin = 0; row_begin < w.rows; row_begin += chunk_rows) {
    const uint32_t rows = std::min(chunk_rows, w.rows - row_begin);
    const vk::BufferRange chunk{w.data.buffer, w.data.offset + row_begin * row_bytes, rows * row_bytes};
    const WeightBinding wb = bind_weights(ctx_, chunk, rows * row_bytes);
    const uint32_t flags = (bias ? kFlagBias : 0u) | (accumulate ? kFlagAccumulate : 0u);
    const MatMulPush push{w.cols, rows, n_tokens, wb.base, static_cast<uint32_t>(row_bytes), flags, w.rows,
                          row_begin, 0.0f};
    if (path == "mv") {
      MvPush mv{w.cols, n_tokens, static_cast<uint32_t>(row_bytes), flags, 1, norm ? norm->eps : 0.0f,
                {rows}, {wb.base}, {row_begin}, {w.rows}, {row_begin}};
      const uint32_t groups = div_up(rows, mv_rows);
      const uint32_t gx = std::min(groups, 65535u);
      rec.dispatch(*pipeline, {wb.range, x, y, bias_range, norm ? norm->weight : x}, mv, gx, div_up(groups, gx));
    } else if (path == "mm_dot") {
      rec.dispatch(*pipeline, {wb.range, xq, xd, xs, y, bias_range}, push, div_up(rows, kMmBM), div_up(n_tokens, bn));
    } else {
      rec.dispatch(*pipeline, {wb.range, x, y, bias_range}, push, div_up(rows, kMmBM), div_up(n_tokens, bn));
    }
  }
}

namespace {
// The byte spans products' weights, outputs and biases take in their buffers, [lo, hi) each.
struct Extents {
  uint64_t w_lo = UINT64_MAX, w_hi = 0, y_lo = UINT64_MAX, y_hi = 0, b_lo = UINT64_MAX, b_hi = 0;
};
Extents extents_of(std::span<const MatMul::Product> products, uint32_t n_tokens) {
  Extents e;
  for (const MatMul::Product& p : products) {
    e.w_lo = std::min(e.w_lo, p.w->data.offset);
    e.w_hi = std::max(e.w_hi, p.w->data.offset + p.w->row_bytes() * p.w->rows);
    e.y_lo = std::min(e.y_lo, p.y.offset);
    e.y_hi = std::max(e.y_hi, p.y.offset + uint64_t(n_tokens) * p.w->rows * 4);
    if (p.bias) {
      e.b_lo = std::min(e.b_lo, p.bias->offset);
      e.b_hi = std::max(e.b_hi, p.bias->offset + uint64_t(p.w->rows) * 4);
    }
  }
  return e;
}
}  // namespace

bool MatMul::merges(std::span<const Product> products, uint32_t n_tokens) const {
  if (!options_.merge_products || products.size() < 2 || products.size() > kMaxMergedProducts || n_tokens == 0)
    return false;
  const Product& first = products[0];
  if (!first.w || path_for(*first.w, n_tokens) != "mv") return false;
  for (const Product& p : products) {
    if (!p.w || p.w->type != first.w->type || p.w->cols != first.w->cols || p.w->data.buffer != first.w->data.buffer ||
        p.w->data.offset % 4 != 0 || p.y.buffer != first.y.buffer || p.y.offset % 4 != 0 ||
        (p.bias != nullptr) != (first.bias != nullptr) || (p.bias && (p.bias->buffer != first.bias->buffer ||
                                                                      p.bias->offset % 4 != 0)))
      return false;
  }
  // One binding for the weights, one for the outputs (a bias range is far smaller than those).
  const Extents e = extents_of(products, n_tokens);
  const uint64_t slack = weight_binding_slack(ctx_);
  return e.w_hi - e.w_lo <= weight_binding_limit() && e.y_hi - e.y_lo + slack <= ctx_.caps().max_storage_buffer_range;
}

void MatMul::record_products(vk::Recorder& rec, std::span<const Product> products, const vk::BufferRange& x,
                             uint32_t n_tokens, const InputNorm* norm, const Q8Activations* x_q8) const {
  for (const Product& p : products)
    require(p.w != nullptr, MOEVK_ERROR_INVALID_ARGUMENT, "matmul: a product without a matrix");
  // Batches on the integer-dot tiles: the activations are quantized once for all of them (one
  // pass and two barriers, instead of one each), or not at all where the caller has them
  // quantized; then each product's tiles run back to back.
  std::vector<bool> done(products.size(), false);
  std::vector<size_t> dot;
  for (size_t i = 0; i < products.size(); ++i)
    if (path_for(*products[i].w, n_tokens) == "mm_dot" && products[i].w->cols == products[0].w->cols) dot.push_back(i);
  if (n_tokens > 0 && !dot.empty() && (x_q8 || (options_.merge_products && dot.size() >= 2))) {
    require(x.size >= uint64_t(n_tokens) * products[0].w->cols * 4, MOEVK_ERROR_INVALID_ARGUMENT,
            "matmul: activation range smaller than the batch");
    const Q8Activations in = x_q8 ? *x_q8 : quantize_input(rec, x, products[0].w->cols, n_tokens);
    for (size_t i : dot) {
      record_impl(rec, *products[i].w, x, products[i].y, n_tokens, products[i].bias, false, norm, &in);
      done[i] = true;
    }
  }
  // Products of one type and width go together (a Q4_K_M file's Q6_K attn_v beside Q4_K q and k:
  // q and k share a dispatch, v has its own), in the order their first member comes.
  for (size_t i = 0; i < products.size(); ++i) {
    if (done[i]) continue;
    std::vector<Product> set;
    for (size_t j = i; j < products.size(); ++j) {
      if (!done[j] && products[j].w->type == products[i].w->type && products[j].w->cols == products[i].w->cols) {
        set.push_back(products[j]);
        done[j] = true;
      }
    }
    if (merges(set, n_tokens)) {
      record_merged(rec, set, x, n_tokens, norm);
    } else {
      for (const Product& p : set) record(rec, *p.w, x, p.y, n_tokens, p.bias, false, norm);
    }
  }
}

void MatMul::record_merged(vk::Recorder& rec, std::span<const Product> products, const vk::BufferRange& x,
                           uint32_t n_tokens, const InputNorm* norm) const {
  const Matrix& w0 = *products[0].w;
  require(w0.cols % weight_block_elements(w0.type) == 0 && x.size >= uint64_t(n_tokens) * w0.cols * 4,
          MOEVK_ERROR_INVALID_ARGUMENT, "matmul: activation range smaller than the batch, or ragged columns");
  require(!norm || fuses_norm(w0, n_tokens), MOEVK_ERROR_INTERNAL,
          "matmul: a fused input norm needs the mv path within its shared-memory limit");
  require(!norm || norm->weight.size >= uint64_t(w0.cols) * 4, MOEVK_ERROR_INVALID_ARGUMENT,
          "matmul: norm weight shorter than the row");
  for (const Product& p : products) {
    const Matrix& w = *p.w;
    require(w.rows > 0 && w.data.size >= w.row_bytes() * w.rows && p.y.size >= uint64_t(n_tokens) * w.rows * 4 &&
                (!p.bias || p.bias->size >= uint64_t(w.rows) * 4),
            MOEVK_ERROR_INVALID_ARGUMENT, "matmul: weight, output or bias range smaller than its matrix");
  }
  const Extents e = extents_of(products, n_tokens);
  uint32_t rows_per_group = 0;
  const vk::Pipeline& pipeline = mv_pipeline(n_tokens, norm, rows_per_group, w0.type);
  // Each span bound from its aligned-down start (bind_weights serves outputs and biases as well:
  // any 4-aligned range, with the offset of its first byte in `base`).
  const WeightBinding wb = bind_weights(ctx_, {w0.data.buffer, e.w_lo, e.w_hi - e.w_lo}, e.w_hi - e.w_lo);
  const vk::BufferRange y =
      bind_weights(ctx_, {products[0].y.buffer, e.y_lo, e.y_hi - e.y_lo}, e.y_hi - e.y_lo).range;
  const bool has_bias = products[0].bias != nullptr;
  const vk::BufferRange bias =
      has_bias ? bind_weights(ctx_, {products[0].bias->buffer, e.b_lo, e.b_hi - e.b_lo}, e.b_hi - e.b_lo).range : y;
  MvPush push{w0.cols, n_tokens, static_cast<uint32_t>(w0.row_bytes()), has_bias ? kFlagBias : 0u,
              static_cast<uint32_t>(products.size()), norm ? norm->eps : 0.0f, {}, {}, {}, {}, {}};
  uint32_t groups = 0;
  for (size_t m = 0; m < products.size(); ++m) {
    const Product& p = products[m];
    push.rows[m] = p.w->rows;
    push.weight_base[m] = static_cast<uint32_t>(wb.base + (p.w->data.offset - e.w_lo));
    push.y_begin[m] = static_cast<uint32_t>((p.y.offset - y.offset) / 4);
    push.y_stride[m] = p.w->rows;
    push.bias_begin[m] = has_bias ? static_cast<uint32_t>((p.bias->offset - bias.offset) / 4) : 0u;
    groups += div_up(p.w->rows, rows_per_group);
  }
  const uint32_t gx = std::min(groups, 65535u);
  rec.dispatch(pipeline, {wb.range, x, y, bias, norm ? norm->weight : x}, push, gx, div_up(groups, gx));
}

}  // namespace moevk::ops
