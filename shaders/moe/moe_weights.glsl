// Two weight matrices (gate and up) through quant.glsl, which reads one buffer via WEIGHT_WORD:
// the macro picks the buffer with a private selector that is a constant at every call site, so
// after inlining the compiler folds the choice away (no per-word branch remains).
// The includer declares `readonly buffer { uint weights_a[]; }` and `{ uint weights_b[]; }`
// and defines one WEIGHT_<TYPE>. Provides
//   void weight8(uint which, uint row_byte, uint c, out vec4 v0, out vec4 v1)
// elements c..c+7 (c % 8 == 0) of the row starting at byte row_byte of matrix `which` (0 = a, 1 = b).
#ifndef MOEVK_MOE_WEIGHTS_GLSL
#define MOEVK_MOE_WEIGHTS_GLSL

uint moe_weight_select = 0u;
#define WEIGHT_WORD(i) (moe_weight_select == 0u ? weights_a[(i)] : weights_b[(i)])
#include "quant.glsl"

void weight8(uint which, uint row_byte, uint c, out vec4 v0, out vec4 v1) {
  moe_weight_select = which;
  dequant8(row_byte + (c / QK) * BLOCK_BYTES, c % QK, v0, v1);
}

#endif
