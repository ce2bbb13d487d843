// Embedding: dequantize rows of the token table (shaders/matmul/get_rows.comp), one variant per
// weight type; the pipeline for a type is created on first use and cached by the Context.
#include <algorithm>
#include <string>

#include "common/error.hpp"
#include "ops/transformer.hpp"
#include "ops/weight_binding.hpp"

namespace moevk::ops {

namespace {
constexpr uint32_t kWorkgroup = 64;

struct GetRowsPush {
  uint32_t cols, n_rows, n_tokens, weight_base, row_bytes, row_begin, total_rows;
};
}  // namespace

Embedding::Embedding(vk::Context& ctx, uint64_t max_weight_binding_bytes)
    : ctx_(ctx), max_weight_binding_bytes_(max_weight_binding_bytes) {}

void Embedding::record(vk::Recorder& rec, const Matrix& table, const vk::BufferRange& token_ids,
                       const vk::BufferRange& out, uint32_t n_tokens) const {
  require_weight_type(table.type, "embedding");
  require(table.cols % weight_block_elements(table.type) == 0, MOEVK_ERROR_INVALID_ARGUMENT,
          "embedding: " + std::to_string(table.cols) + " columns is not a multiple of the " +
              quant::type_info(table.type).name + " block");
  if (n_tokens == 0) return;
  require(token_ids.size >= uint64_t(n_tokens) * 4 && out.size >= uint64_t(n_tokens) * table.cols * 4,
          MOEVK_ERROR_INVALID_ARGUMENT, "embedding: token id or output range too small");
  require(table.data.offset % 4 == 0, MOEVK_ERROR_INVALID_ARGUMENT, "embedding: table must start 4-byte aligned");
  require(table.data.size >= table.row_bytes() * table.rows, MOEVK_ERROR_INVALID_ARGUMENT,
          "embedding: table range too small");
  const uint64_t row_bytes = table.row_bytes();
  const uint64_t limit = max_weight_binding_bytes_ ? max_weight_binding_bytes_ : ctx_.caps().max_storage_buffer_range;
  const uint64_t slack = weight_binding_slack(ctx_);
  require(limit >= slack + row_bytes, MOEVK_ERROR_UNSUPPORTED, "embedding: one row exceeds the storage buffer range");
  const uint32_t chunk_rows = static_cast<uint32_t>(std::min<uint64_t>(table.rows, (limit - slack) / row_bytes));
  vk::PipelineDesc desc{"get_rows_" + weight_variant(table.type), 3, sizeof(GetRowsPush), {kWorkgroup}};
  desc.table = weight_table(table.type);
  const vk::Pipeline& p = ctx_.pipeline(desc);
  const uint32_t groups = (table.cols / 8 + kWorkgroup - 1) / kWorkgroup;
  for (uint32_t row_begin = 0; row_begin < table.rows; row_begin += chunk_rows) {
    const uint32_t rows = std::min(chunk_rows, table.rows - row_begin);
    const vk::BufferRange chunk{table.data.buffer, table.data.offset + row_begin * row_bytes, rows * row_bytes};
    const WeightBinding w = bind_weights(ctx_, chunk, rows * row_bytes);
    const GetRowsPush push{table.cols, rows, n_tokens, w.base, static_cast<uint32_t>(row_bytes), row_begin, table.rows};
    const uint32_t gy = std::min(n_tokens, 65535u);  // the grid's guaranteed limit per dimension
    rec.dispatch(p, {w.range, token_ids, out}, push, groups, gy, (n_tokens + gy - 1) / gy);
  }
}

}  // namespace moevk::ops
