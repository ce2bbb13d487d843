#version 450
// Cooperative-matrix (GL_NV_cooperative_matrix, tensor cores) matrix-matrix product:
//   y[t][r] = sum_c W[r][c] * x[t][c] (+ bias[r]), fp16 operands, fp32 accumulation.
// A workgroup of 4 subgroups of 32 (the op checks the device's subgroup size) computes a
// 64 (rows) x 64 (tokens) tile: subgroup s owns rows 16s..16s+15 and all 4 token columns of 16x16
// fragments. Per 32-column step the weight tile is dequantized (quant.glsl's dequant8) into
// shared fp16 and the activation tile converted to fp16; the result goes through shared memory
// so ragged edges and the bias are handled with plain bounds checks.
// Only chosen when the device reports a 16x16x16 f16*f16+f32 subgroup shape (lavapipe has none);
// the COOPMAT_EMULATE build (common/coopmat.glsl) runs the same tiles without matrix units, so
// the tests check this kernel's layout on every device.
// Inputs/outputs, push constants and dispatch as mul_mm.comp with BM = BN = 64:
//   (div_up(rows, 64), div_up(n_tokens, 64), 1).
#include "coopmat.glsl"
#include "types.glsl"

layout(local_size_x = 128) in;
const uint BM = 64u, BN = 64u, BK = 32u, FRAG = 16u;

layout(std430, binding = 0) readonly buffer Weights { uint weight_words[]; };
layout(std430, binding = 1) readonly buffer X { vec4 x_values[]; };
// Read too when ACCUMULATE is set (y += W x, e.g. a residual add fused into its producer).
layout(std430, binding = 2) buffer Y { float y_values[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias_values[]; };
layout(push_constant) uniform Push {
  uint cols, rows, n_tokens, weight_base, row_bytes, flags;  // flags: 1 bias, 2 accumulate
  uint y_stride, row_begin;
} pc;

#define WEIGHT_WORD(i) weight_words[(i)]
#include "quant.glsl"

shared float16_t w_tile[BM * BK];  // row-major: [m][k]
shared float16_t x_tile[BN * BK];  // [n][k]: column-major K x N for the B operand
shared float c_tile[BM * BN];      // column-major M x N: [n][m]

void main() {
  const uint lid = gl_LocalInvocationID.x;
  const uint row0 = gl_WorkGroupID.x * BM, tok0 = gl_WorkGroupID.y * BN;
  const uint sg = COOP_SUBGROUP;  // 0..3: fragment row

  COOP_LOCALS(1, 4, 4);  // A: the subgroup's weight rows; B, C: the 4 token columns
  [[unroll]] for (uint j = 0u; j < 4u; ++j) { COOP_ZERO(j); }

  for (uint k0 = 0u; k0 < pc.cols; k0 += BK) {
    for (uint idx = lid; idx < BM * (BK / 8u); idx += 128u) {
      const uint m = idx / (BK / 8u), kg = (idx % (BK / 8u)) * 8u;
      const uint row = row0 + m, e = k0 + kg;
      vec4 w0 = vec4(0.0), w1 = vec4(0.0);
      if (row < pc.rows && e < pc.cols)
        dequant8(pc.weight_base + row * pc.row_bytes + (e / QK) * BLOCK_BYTES, e % QK, w0, w1);
      [[unroll]] for (uint q = 0u; q < 4u; ++q) {
        w_tile[m * BK + kg + q] = float16_t(w0[q]);
        w_tile[m * BK + kg + 4u + q] = float16_t(w1[q]);
      }
    }
    for (uint idx = lid; idx < BN * (BK / 4u); idx += 128u) {
      const uint n = idx / (BK / 4u), kq = (idx % (BK / 4u)) * 4u;
      const uint tok = tok0 + n, e = k0 + kq;
      vec4 v = vec4(0.0);
      if (tok < pc.n_tokens && e < pc.cols) v = x_values[(tok * pc.cols + e) / 4u];
      [[unroll]] for (uint q = 0u; q < 4u; ++q) x_tile[n * BK + kq + q] = float16_t(v[q]);
    }
    barrier();
    [[unroll]] for (uint kf = 0u; kf < BK; kf += FRAG) {
      COOP_LOAD_A(0, w_tile, sg * FRAG * BK + kf, BK, false);
      [[unroll]] for (uint j = 0u; j < 4u; ++j) {
        COOP_LOAD_B(j, x_tile, j * FRAG * BK + kf, BK, true);
        COOP_MMA(j, w_tile, 0, x_tile, j);
      }
    }
    barrier();
  }

  [[unroll]] for (uint j = 0u; j < 4u; ++j) { COOP_STORE(j, c_tile, j * FRAG * BM + sg * FRAG, BM, true); }
  barrier();
  for (uint idx = lid; idx < BM * BN; idx += 128u) {
    const uint n = idx / BM, m = idx % BM;
    const uint row = row0 + m, tok = tok0 + n;
    if (row < pc.rows && tok < pc.n_tokens) {
      const uint at = tok * pc.y_stride + pc.row_begin + row;
      const float v = c_tile[n * BM + m] + ((pc.flags & 1u) != 0u ? bias_values[pc.row_begin + row] : 0.0);
      y_values[at] = (pc.flags & 2u) != 0u ? y_values[at] + v : v;
    }
  }
}
