#include "ops/weight_binding.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <vector>

#include "common/error.hpp"
#include "quant/iq_grids.hpp"

namespace moevk::ops {

bool weight_type_supported(quant::Type t) {
  using quant::Type;
  switch (t) {
    case Type::F32: case Type::F16: case Type::BF16: case Type::Q8_0: case Type::Q4_0:
    case Type::Q4_1: case Type::Q5_0: case Type::Q5_1: case Type::Q2_K: case Type::Q3_K:
    case Type::Q4_K: case Type::Q5_K: case Type::Q6_K: case Type::IQ4_NL: case Type::IQ4_XS:
    case Type::IQ2_XXS: case Type::IQ2_XS: case Type::IQ2_S: case Type::IQ3_XXS: case Type::IQ3_S:
    case Type::IQ1_S: case Type::IQ1_M:
      return true;
    default:
      return false;
  }
}

namespace {

// The types whose blocks' f16 d moves behind the row's other bytes on the device
// (shaders/common/quant.glsl's QUANT_SPLIT_BODY), by where d sits in the GGUF block; each row
// rotated by split_row_shift so that its bodies start 8-aligned.
template <uint32_t kBlockBytes, uint32_t kDAt>
void split_rows(uint64_t blocks, const uint8_t* src, uint8_t* dst, uint64_t n_rows, uint64_t dst_offset) {
  constexpr uint32_t kBody = kBlockBytes - 2;
  const uint64_t row = kBlockBytes * blocks;
  // Fixed-size copies, so they compile to a few moves: all 26 GB of a Mixtral-8x7B Q4_0 file pass here.
  for (uint64_t r = 0; r < n_rows; ++r, src += row, dst += row, dst_offset += row) {
    const uint64_t shift = split_row_shift(dst_offset, blocks);
    uint8_t* bodies = dst + shift;
    for (uint64_t b = 0; b < blocks; ++b) {
      const uint8_t* block = src + kBlockBytes * b;
      // The d: behind the bodies, the last shift / 2 of them wrapping round to the row's start.
      uint64_t d_at = kBody * blocks + shift + 2 * b;
      if (d_at >= row) d_at -= row;
      std::memcpy(dst + d_at, block + kDAt, 2);
      if constexpr (kDAt > 0) std::memcpy(bodies + kBody * b, block, kDAt);  // the bytes before d
      if constexpr (kDAt < kBody)  // and after it
        std::memcpy(bodies + kBody * b + kDAt, block + kDAt + 2, kBody - kDAt);
    }
  }
}

}  // namespace

bool weight_layout_differs(quant::Type t) {
  using quant::Type;
  return t == Type::Q4_0 || t == Type::IQ4_NL || t == Type::Q8_0 || t == Type::Q6_K;
}

uint64_t split_row_shift(uint64_t row_offset, uint64_t blocks) {
  const uint64_t shift = (8 - row_offset % 8) % 8;
  return shift <= 2 * blocks ? shift : 0;
}

void to_device_layout(quant::Type t, uint32_t cols, const uint8_t* src, uint8_t* dst, uint64_t n_rows,
                      uint64_t dst_offset) {
  using quant::Type;
  const uint64_t blocks = cols / quant::type_info(t).block_size;
  if (weight_layout_differs(t))
    require(dst_offset % 2 == 0, MOEVK_ERROR_INVALID_ARGUMENT,
            "weights must start at an even byte offset, got " + std::to_string(dst_offset));
  switch (t) {
    case Type::Q4_0: case Type::IQ4_NL:  // { f16 d; u8 qs[16]; }
      return split_rows<18, 0>(blocks, src, dst, n_rows, dst_offset);
    case Type::Q8_0:  // { f16 d; int8 qs[32]; }
      return split_rows<34, 0>(blocks, src, dst, n_rows, dst_offset);
    case Type::Q6_K:  // { u8 ql[128], qh[64]; int8 scales[16]; f16 d; }
      return split_rows<210, 208>(blocks, src, dst, n_rows, dst_offset);
    default: std::memcpy(dst, src, quant::row_bytes(t, cols) * n_rows);
  }
}

void require_weight_type(quant::Type t, const char* op) {
  if (!weight_type_supported(t))
    fail(MOEVK_ERROR_UNSUPPORTED, std::string(op) + ": no GPU kernel reads weights of type " +
                                      quant::type_info(t).name);
}

std::string weight_variant(quant::Type t) {
  std::string name = quant::type_info(t).name;  // "q4_K": the table's variant names are lower case
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

namespace {
template <size_t N>
std::vector<uint32_t> words_of(const uint64_t (&grid)[N]) {
  std::vector<uint32_t> w;
  w.reserve(2 * N);
  for (uint64_t e : grid) {
    w.push_back(uint32_t(e));
    w.push_back(uint32_t(e >> 32));
  }
  return w;
}
template <size_t N>
std::vector<uint32_t> words_of(const uint32_t (&grid)[N]) {
  return std::vector<uint32_t>(grid, grid + N);
}
}  // namespace

std::span<const uint32_t> weight_table(quant::Type t) {
  using quant::Type;
  // Built once; the vectors live for the program, so the spans (and the tables keyed by their
  // address in each Context) stay valid.
  static const std::vector<uint32_t> iq2xxs = words_of(quant::kIQ2XXSGrid), iq2xs = words_of(quant::kIQ2XSGrid),
                                     iq2s = words_of(quant::kIQ2SGrid), iq3xxs = words_of(quant::kIQ3XXSGrid),
                                     iq3s = words_of(quant::kIQ3SGrid), iq1s = words_of(quant::kIQ1SGrid);
  switch (t) {
    case Type::IQ2_XXS: return iq2xxs;
    case Type::IQ2_XS: return iq2xs;
    case Type::IQ2_S: return iq2s;
    case Type::IQ3_XXS: return iq3xxs;
    case Type::IQ3_S: return iq3s;
    case Type::IQ1_S: case Type::IQ1_M: return iq1s;
    default: return {};
  }
}

uint32_t weight_block_elements(quant::Type t) {
  const uint32_t b = quant::type_info(t).block_size;
  return b == 1 ? 8u : b;
}

bool weight_has_int8_dot(quant::Type t) {
  using quant::Type;
  return t == Type::Q8_0 || t == Type::Q4_0 || t == Type::Q4_1 || t == Type::Q5_0 || t == Type::Q5_1 ||
         t == Type::IQ4_NL || t == Type::IQ4_XS || t == Type::Q4_K || t == Type::Q5_K || t == Type::Q2_K ||
         t == Type::Q3_K || t == Type::Q6_K || t == Type::IQ2_XXS || t == Type::IQ2_XS || t == Type::IQ2_S ||
         t == Type::IQ3_XXS || t == Type::IQ3_S || t == Type::IQ1_S || t == Type::IQ1_M;
}

bool weight_has_wide_runs(quant::Type t) {
  using quant::Type;
  return t == Type::Q4_0 || t == Type::Q4_K || t == Type::Q5_K || t == Type::Q6_K;
}

uint64_t weight_binding_alignment(const vk::Context& ctx) {
  // 8: split rows rotate by their offset mod 8; 16: the wide decode kernels' 128-bit loads.
  return std::max<uint64_t>(ctx.caps().min_storage_buffer_offset_alignment, 16);
}

uint64_t weight_binding_slack(const vk::Context& ctx) { return weight_binding_alignment(ctx) + 4; }

WeightBinding bind_weights(const vk::Context& ctx, const vk::BufferRange& data, uint64_t bytes) {
  // Even is what quant.glsl needs (16-bit fields); f32 rows are whole words, so a 4-aligned matrix
  // (required by the ops) keeps every row chunk 4-aligned.
  require(data.offset % 2 == 0, MOEVK_ERROR_INVALID_ARGUMENT,
          "weights must start at an even byte offset, got " + std::to_string(data.offset));
  require(bytes <= data.size, MOEVK_ERROR_INVALID_ARGUMENT,
          "weight range of " + std::to_string(data.size) + " bytes is smaller than the matrix (" +
              std::to_string(bytes) + " bytes)");
  const uint64_t align = weight_binding_alignment(ctx);
  WeightBinding b;
  const uint64_t start = data.offset - data.offset % align;
  b.base = static_cast<uint32_t>(data.offset - start);
  b.range = {data.buffer, start, (b.base + bytes + 3) / 4 * 4};
  require(b.range.size < (1ull << 32), MOEVK_ERROR_UNSUPPORTED,
          "weight matrix of " + std::to_string(bytes) + " bytes exceeds the 4 GiB a shader can address");
  return b;
}

void require_decode_shape(const vk::Context& ctx, const char* op, uint32_t workgroup, uint32_t rows,
                          uint64_t shared_bytes) {
  const std::string shape = std::string(op) + ": decode workgroup " + std::to_string(workgroup) + " x " +
                            std::to_string(rows) + " rows";
  require(workgroup >= 32 && workgroup <= 1024 && (workgroup & (workgroup - 1)) == 0 &&
              workgroup <= ctx.caps().max_workgroup_invocations && rows >= 1 && rows <= 8,
          MOEVK_ERROR_INVALID_ARGUMENT, shape + " (a power of two in 32..1024 within the device's limit, 1..8 rows)");
  require(shared_bytes <= ctx.caps().max_shared_memory, MOEVK_ERROR_INVALID_ARGUMENT,
          shape + " needs " + std::to_string(shared_bytes) + " bytes of shared memory, the device has " +
              std::to_string(ctx.caps().max_shared_memory));
}

}  // namespace moevk::ops
