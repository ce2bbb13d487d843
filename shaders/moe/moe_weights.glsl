// Two weight matrices (gate and up) through quant.glsl, which reads one buffer via WEIGHT_WORD:
// the macro picks the buffer with a private selector that is a constant at every call site, so
// after inlining the compiler folds the choice away (no per-word branch remains).
// The includer declares `readonly buffer { uint weights_a[]; }` and `{ uint weights_b[]; }`,
// the same two buffers as `{ uvec2 weights_a_wide[]; }` and `{ uvec2 weights_b_wide[]; }` (at
// the same bindings: quant.glsl's 64-bit loads), and defines one WEIGHT_<TYPE>; pc.cols is the
// rows' length (QUANT_ROW_COLS) unless the includer defines QUANT_ROW_COLS. Provides
//   void weight8(uint which, uint row_byte, uint c, out vec4 v0, out vec4 v1)
// elements c..c+7 (c % 8 == 0) of the row starting at byte row_byte of matrix `which` (0 = a, 1 = b),
// and for the 4/5/6-bit types weight8x2 / weight_pair_col (16 elements whose bytes are shared)
// and, with QUANT_PAIR16, weight16x2 (two neighbouring pair runs; 128-bit loads where the
// includer defines MOE_WEIGHTS_QUAD and declares the uvec4 views).
#ifndef MOEVK_MOE_WEIGHTS_GLSL
#define MOEVK_MOE_WEIGHTS_GLSL

uint moe_weight_select = 0u;
#define WEIGHT_WORD(i) (moe_weight_select == 0u ? weights_a[(i)] : weights_b[(i)])
#define WEIGHT_UVEC2(i) (moe_weight_select == 0u ? weights_a_wide[(i)] : weights_b_wide[(i)])
#ifdef MOE_WEIGHTS_QUAD  // the includer also declares { uvec4 weights_a_quad[]; } and weights_b_quad
#define WEIGHT_UVEC4(i) (moe_weight_select == 0u ? weights_a_quad[(i)] : weights_b_quad[(i)])
#endif
#ifndef QUANT_ROW_COLS
#define QUANT_ROW_COLS pc.cols
#endif
#include "quant.glsl"

void weight8(uint which, uint row_byte, uint c, out vec4 v0, out vec4 v1) {
  moe_weight_select = which;
  dequant8(quant_block(row_byte, c / QK), c % QK, v0, v1);
}

#ifdef QUANT_PAIR_STRIDE
// The g-th pair run of the row (quant.glsl's quant_pair_first): elements c..c+7 -> a0, a1 and
// c+QUANT_PAIR_STRIDE..+7 -> b0, b1, with c = weight_pair_col(g); the shared bytes read once.
uint weight_pair_col(uint g) { return (g / QUANT_PAIRS_PER_BLOCK) * QK + quant_pair_first(g); }
void weight8x2(uint which, uint row_byte, uint g, out vec4 a0, out vec4 a1, out vec4 b0, out vec4 b1) {
  moe_weight_select = which;
  dequant8x2(quant_block(row_byte, g / QUANT_PAIRS_PER_BLOCK), quant_pair_first(g), a0, a1, b0, b1);
}
#ifdef QUANT_PAIR16
// Pair runs g and g + 1 (g even): elements c..c+15 -> a, c+QUANT_PAIR_STRIDE..+15 -> b.
void weight16x2(uint which, uint row_byte, uint g, out vec4 a[4], out vec4 b[4]) {
  moe_weight_select = which;
  dequant16x2(quant_block(row_byte, g / QUANT_PAIRS_PER_BLOCK), quant_pair_first(g), a, b);
}
#endif
#endif

#endif
