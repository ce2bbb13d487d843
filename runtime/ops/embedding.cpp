// Embedding: dequantize rows of the token table (shaders/matmul/get_rows.comp), one variant per
// weight type; the pipeline for a type is created on first use and cached by the Context.
#include <string>

#include "common/error.hpp"
#include "ops/transformer.hpp"
#include "ops/weight_binding.hpp"

namespace moevk::ops {

namespace {
constexpr uint32_t kWorkgroup = 64;

struct GetRowsPush {
  uint32_t cols, n_rows, n_tokens, weight_base, row_bytes;
};
}  // namespace

Embedding::Embedding(vk::Context& ctx) : ctx_(ctx) {}

void Embedding::record(vk::Recorder& rec, const Matrix& table, const vk::BufferRange& token_ids,
                       const vk::BufferRange& out, uint32_t n_tokens) const {
  require_weight_type(table.type, "embedding");
  require(table.cols % weight_block_elements(table.type) == 0, MOEVK_ERROR_INVALID_ARGUMENT,
          "embedding: " + std::to_string(table.cols) + " columns is not a multiple of the " +
              quant::type_info(table.type).name + " block");
  if (n_tokens == 0) return;
  require(token_ids.size >= uint64_t(n_tokens) * 4 && out.size >= uint64_t(n_tokens) * table.cols * 4,
          MOEVK_ERROR_INVALID_ARGUMENT, "embedding: token id or output range too small");
  const WeightBinding w = bind_weights(ctx_, table.data, table.row_bytes() * table.rows);
  const vk::Pipeline& p = ctx_.pipeline({"get_rows_" + weight_variant(table.type), 3, sizeof(GetRowsPush), {kWorkgroup}});
  const GetRowsPush push{table.cols, table.rows, n_tokens, w.base, static_cast<uint32_t>(table.row_bytes())};
  const uint32_t groups = (table.cols / 8 + kWorkgroup - 1) / kWorkgroup;
  rec.dispatch(p, {w.range, token_ids, out}, push, groups, n_tokens);
}

}  // namespace moevk::ops
