// Integer-dot matmul pieces shared by the dense (matmul/mul_mm_dot.comp) and expert
// (moe/moe_mul_mm_dot.comp) kernels: the packed 4x8 dot product, int8 words of a weight row, and
// the affine combine of one 32-element sub-block.
//
// With weights w = scale * qw + offset per 32-element sub-block (quant.glsl's QUANT_HAS_INT8
// types) and activations x = dx * qx per 32 elements (matmul/quantize_q8.comp; xs = dx * sum qx):
//   sum_{i<32} w_i x_i = scale * dx * sum_i qw_i qx_i + offset * xs
// so the inner sum is 8 packed OpSDot on int8 and the rest is two multiply-adds per sub-block.
// The symmetric types with a scale per 16 elements (Q3_K, Q6_K) sum each half on its own:
//   sum_{i<32} w_i x_i = dx * (scale_lo * sum_{i<16} qw_i qx_i + scale_hi * sum_{i>=16} qw_i qx_i)
// and Q2_K's half mins take the half's activation sum: per half, dx * (scale * sum qw qx -
// min * sum qx).
//
// Interface: include after quant.glsl (which must define QUANT_HAS_INT8). Provides
//   int   sdot_4x8_packed(uint a, uint b, 0)   OpSDot of the 4 signed bytes of a and b
//   uvec2 row_int8x8(uint row_byte, uint col)  elements col..col+7 (col % 8 == 0) of the row
//                                              starting at byte row_byte, 4 signed int8 per uint
//   void  row_affine32(uint row_byte, uint col, out float scale, out float offset)
//                                              the sub-block holding col (col % 32 == 0)
//   float int_dot_affine(int isum, float scale, float offset, float dx, float xs)
//   INT8_PART_WORDS, int_dot_part(int isum, float scale, float offset, float dx, float xs, uint part)
//     the words of a sub-block that share one weight scale: 8, or 4 for QUANT_INT8_HALVES types
//     (Q2_K, Q3_K, Q6_K: a scale per 16 elements, row_affine32's scale for words 0..3 and offset
//     for 4..7, no offset term). A kernel sums sdot over INT8_PART_WORDS words at a time and
//     folds each part with int_dot_part (part = word / INT8_PART_WORDS); with 8 that is
//     int_dot_affine.
//   With QUANT_INT8_HALF_MINS (Q2_K: w = scale * q - min per half) a part also needs the
//   activations' own sum over it, qsum = sum qx (sdot with INT8_ONES over the part's words):
//   void  row_mins32(uint row_byte, uint col, out float min_lo, out float min_hi)
//   float int_dot_part_min(int isum, int qsum, float scale, float min_value, float dx)
// Debian's glslang lacks GL_EXT_integer_dot_product, so OpSDot comes through
// GL_EXT_spirv_intrinsics; devices without the feature never get these pipelines (the ops check
// the integer dot product feature first).
#ifndef MOEVK_INT_DOT_GLSL
#define MOEVK_INT_DOT_GLSL

#extension GL_EXT_spirv_intrinsics : require

#ifndef QUANT_HAS_INT8
#error "int_dot.glsl needs a weight type with quant_int8x8 (include quant.glsl first)"
#endif

// OpSDot (SPV_KHR_integer_dot_product, opcode 4450) on two 4x8-bit packed words; capabilities
// DotProduct (6019) and DotProductInput4x8BitPacked (6018); the literal 0 is
// PackedVectorFormat4x8Bit.
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot_4x8_packed(uint a, uint b, spirv_literal int packed_format);

uvec2 row_int8x8(uint row_byte, uint col) {
  return quant_int8x8(quant_block(row_byte, col / QK), col % QK);
}

void row_affine32(uint row_byte, uint col, out float scale, out float offset) {
  quant_affine32(quant_block(row_byte, col / QK), (col % QK) / 32u, scale, offset);
}

float int_dot_affine(int isum, float scale, float offset, float dx, float xs) {
  return float(isum) * scale * dx + offset * xs;
}

#ifdef QUANT_INT8_HALVES
const uint INT8_PART_WORDS = 4u;
float int_dot_part(int isum, float scale, float offset, float dx, float xs, uint part) {
  return float(isum) * (part == 0u ? scale : offset) * dx;
}
#else
const uint INT8_PART_WORDS = 8u;
float int_dot_part(int isum, float scale, float offset, float dx, float xs, uint part) {
  return int_dot_affine(isum, scale, offset, dx, xs);
}
#endif

#ifdef QUANT_INT8_HALF_MINS
const uint INT8_ONES = 0x01010101u;
void row_mins32(uint row_byte, uint col, out float min_lo, out float min_hi) {
  quant_mins32(quant_block(row_byte, col / QK), (col % QK) / 32u, min_lo, min_hi);
}
float int_dot_part_min(int isum, int qsum, float scale, float min_value, float dx) {
  return (float(isum) * scale - float(qsum) * min_value) * dx;
}
#endif

#endif
