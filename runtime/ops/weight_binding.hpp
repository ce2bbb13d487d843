// How the matmul-family ops (MatMul, Embedding) hand quantized weights to shaders/common/quant.glsl:
// the shader variant for a type, and the bound range of a matrix. A storage-buffer binding must
// start at minStorageBufferOffsetAlignment, but a matrix (an expert slice, a tensor in a packed
// GGUF upload) may start anywhere 4-aligned, so the binding starts at the aligned-down offset and
// the shader adds `base` bytes. Ops require matrices at 4-aligned offsets; row chunks of a matrix
// (split when it exceeds one binding) are then at least 2-aligned, which quant.glsl needs.
#pragma once
#include <cstdint>
#include <span>
#include <string>

#include "quant/types.hpp"
#include "vk/context.hpp"

namespace moevk::ops {

// True for the types quant.glsl decodes.
bool weight_type_supported(quant::Type t);
// Throws UNSUPPORTED naming the type (and `op`) when quant.glsl has no decoder for it.
void require_weight_type(quant::Type t, const char* op);
// The shader variant suffix of a type: "q4_0", "f16", "iq4_nl".
std::string weight_variant(quant::Type t);
// The constant table a type's decoders read (vk::PipelineDesc::table): the codebook of the
// IQ1/IQ2/IQ3 formats, as 32-bit words; empty for every other type.
std::span<const uint32_t> weight_table(quant::Type t);
// Elements per decode block in quant.glsl (8 for the float types); cols must be a multiple.
uint32_t weight_block_elements(quant::Type t);
// True for the types with integer-dot kernels (mul_mm_dot, moe_mul_mm_dot): 32-element
// sub-blocks of scale * int8 + offset, or (Q3_K, Q6_K, IQ2_XS, IQ2_S, IQ1_M) scale * int8 per
// 16-element half, or (Q2_K) scale * int8 - min per half; the codebook types' int8 is the
// signed grid level (quant.glsl's QUANT_HAS_INT8).
bool weight_has_int8_dot(quant::Type t);
// True for the types with quant.glsl's 16-byte decoder (QUANT_PAIR16: Q4_0, Q4_K, Q5_K, Q6_K),
// which the matrix-vector kernels' wide steps (WIDE) take.
bool weight_has_wide_runs(quant::Type t);

// The one-token matrix-vector kernels' workgroup shape from the ops' options
// (MatMulOptions / MoeExpertsOptions::decode_workgroup, decode_rows): a power of two in 32..1024
// within the device's limit, 1..8 rows, and `shared_bytes` of shared memory within the device's.
// Throws INVALID_ARGUMENT naming `op`, the shape and the limit.
void require_decode_shape(const vk::Context& ctx, const char* op, uint32_t workgroup, uint32_t rows,
                          uint64_t shared_bytes);

// The order of a weight matrix's bytes on the device, where quant.glsl reads them differently
// from GGUF's blocks: a Q4_0, IQ4_NL, Q8_0 or Q6_K row holds each block's bytes but its f16 d
// first, then the blocks' d (quant.glsl's QUANT_SPLIT_BODY: the quants load as 64-bit words),
// and the row is rotated right by split_row_shift bytes (the last d wrapping round to its
// start), so that the bodies start 8-aligned wherever the row does. Same size as the GGUF rows;
// other types are uploaded as they are in the file.
bool weight_layout_differs(quant::Type t);
// The rotation of a split row of `blocks` blocks that starts at row_offset (even) in its buffer:
// the bytes up to the next multiple of 8, where its d (2 bytes a block) can fill them; else 0.
// quant.glsl's quant_block computes the same from the row's offset in its binding, which
// bind_weights starts 8-aligned, so both agree.
uint64_t split_row_shift(uint64_t row_offset, uint64_t blocks);
// Writes n_rows whole rows of type t (cols elements each) from GGUF order at src into the
// device order at dst (src and dst do not overlap), for rows that start at byte dst_offset of
// their device buffer (even). A plain copy for the other types.
void to_device_layout(quant::Type t, uint32_t cols, const uint8_t* src, uint8_t* dst, uint64_t n_rows,
                      uint64_t dst_offset);

struct WeightBinding {
  vk::BufferRange range;  // starts aligned; covers base + bytes rounded up to whole words
  uint32_t base = 0;      // byte offset of the matrix inside `range`
};
// `bytes` of weights at `data.offset`. The rounding up to a whole word may reach up to 3 bytes
// past data.size: the buffer must have them (device buffers are allocated in whole words). The
// binding starts at a multiple of weight_binding_alignment: the device's
// minStorageBufferOffsetAlignment, and at least 16 (split rows rotate by their offset mod 8;
// the wide decode kernels load 16 bytes where a quant run's offset in the binding is 16-aligned).
WeightBinding bind_weights(const vk::Context& ctx, const vk::BufferRange& data, uint64_t bytes);
uint64_t weight_binding_alignment(const vk::Context& ctx);
// What bind_weights may add to a binding's size: its alignment's base and the word rounding.
uint64_t weight_binding_slack(const vk::Context& ctx);

}  // namespace moevk::ops
