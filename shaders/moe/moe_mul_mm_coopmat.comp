#version 450
// Grouped (prefill) path on cooperative matrices (common/coopmat.glsl: GL_NV_cooperative_matrix,
// or its COOPMAT_EMULATE build in the tests): moe_mul_mm's products over each expert's row tiles,
// with fp16 operands and fp32 accumulation.
// Each workgroup computes a TM (32 grouped rows) x TN (64 weight rows) output tile: a row tile of
// one expert's grouped rows and a column tile of 64 weight rows, numbered expert-major
// (moe_row_tiles.glsl; TM is moe_group's tile_rows). Workgroups past the real tile count leave
// at once (the grid is sized for the worst case, so counts are never read back).
// 128 invocations = 4 subgroups of 32; subgroup s owns weight rows 16s..16s+15 of the tile and
// both 16-row halves of the grouped rows: C = A (activations, 32 x K) * B (weights^T, K x 64).
// Per 32-column step the weight tiles are dequantized (moe_weights.glsl's weight8) into shared
// fp16 and the activation rows gathered and converted to fp16; results go through shared memory
// so ragged tiles and the modes are plain bounds-checked stores.
// modes (push), as moe_mul_mm.comp:
//   0  h[p] = SiLU(Wg_e a_p) * (Wu_e a_p)   a_p = x[grouped_entry[p] / k]   (fused gate+up)
//   1  h[p] = SiLU(Wg_e a_p)                 (gate and up of different types: two passes)
//   2  h[p] *= Wu_e a_p                      (weights bound at binding 1)
//   3  y[p] = Wd_e h[p]                      (down; a_p = row p of h itself)
// Inputs:  binding 0 Wg or Wd, binding 1 Wu (any bound buffer in modes 1, 3), both uint words in
//          WEIGHT_<TYPE> layout, expert e at base + (e - expert_first) * stride bytes; binding 2
//          activations a (f32, rows of `cols`); binding 3 grouped_entry; binding 4 group_info.
// Output:  binding 5, [n_entries][rows] f32 in grouped order.
// Dispatch: (worst-case row tiles, div_up(rows, 64), 1). cols % 8 == 0 (the op checks).
// Shared memory: 2 KiB activations + 8 KiB weights + 16 KiB results.
#include "coopmat.glsl"
#include "types.glsl"

layout(local_size_x = 128) in;
const uint WG = 128u, TM = 32u, TN = 64u, TK = 32u, FRAG = 16u;

layout(std430, binding = 0) readonly buffer WeightsA { uint weights_a[]; };
layout(std430, binding = 1) readonly buffer WeightsB { uint weights_b[]; };
layout(std430, binding = 2) readonly buffer Act { float act[]; };
layout(std430, binding = 3) readonly buffer GroupedEntry { uint grouped_entry[]; };
layout(std430, binding = 4) readonly buffer Group { uint group_info[]; };
layout(std430, binding = 5) buffer Out { float out_values[]; };
layout(push_constant) uniform Push {
  uint cols, rows, k, n_expert;
  uint stride_a, stride_b, row_bytes, mode;
  uint base_a, base_b;  // byte offset of expert expert_first inside the bound ranges
  uint expert_first, expert_end;  // the experts bound: tiles of others are another dispatch's
} pc;

#include "moe_weights.glsl"
#include "moe_row_tiles.glsl"

shared float16_t act_tile[TM * TK];  // row-major [m][k]: the A operand
shared float16_t wa_tile[TN * TK];   // [n][k]: column-major K x N for the B operand
shared float16_t wb_tile[TN * TK];
shared float ca_tile[TM * TN];       // row-major [m][n]
shared float cb_tile[TM * TN];

float silu(float v) { return v / (1.0 + exp(-v)); }

void main() {
  const uint lid = gl_LocalInvocationID.x;
  uint e, row_begin, rows_valid, col_tile;
  // Past the real tiles, or an expert outside this window: the whole workgroup leaves (uniform,
  // so no barrier or cooperative operation is split).
  if (!moe_grid_tile(gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x, pc.n_expert, TM,
                     gl_NumWorkGroups.y, e, row_begin, rows_valid, col_tile))
    return;
  if (e < pc.expert_first || e >= pc.expert_end) return;
  const uint n0 = col_tile * TN;
  const uint base_a = pc.base_a + (e - pc.expert_first) * pc.stride_a;
  const uint base_b = pc.base_b + (e - pc.expert_first) * pc.stride_b;
  const bool use_a = pc.mode != 2u, use_b = pc.mode == 0u || pc.mode == 2u;  // uniform
  const uint sg = COOP_SUBGROUP;  // 0..3: the tile's weight rows 16 sg..

  COOP_LOCALS(2, 2, 4);  // A: the two 16-row halves; B: a, b weights; C: [half] a, [2 + half] b
  [[unroll]] for (uint c = 0u; c < 4u; ++c) { COOP_ZERO(c); }

  for (uint k0 = 0u; k0 < pc.cols; k0 += TK) {
    for (uint idx = lid; idx < TM * (TK / 4u); idx += WG) {
      const uint m = idx / (TK / 4u), kq = (idx % (TK / 4u)) * 4u;
      vec4 v = vec4(0.0);
      if (m < rows_valid) {
        const uint p = row_begin + m;
        const uint src = pc.mode == 3u ? p : grouped_entry[p] / pc.k;
        const uint at = src * pc.cols + k0 + kq;  // cols % 8 == 0: all 4 inside the row or none
        if (k0 + kq < pc.cols) v = vec4(act[at], act[at + 1u], act[at + 2u], act[at + 3u]);
      }
      [[unroll]] for (uint q = 0u; q < 4u; ++q) act_tile[m * TK + kq + q] = float16_t(v[q]);
    }
    for (uint idx = lid; idx < TN * (TK / 8u); idx += WG) {
      const uint n = idx / (TK / 8u), kg = (idx % (TK / 8u)) * 8u;
      const uint row = n0 + n, col = k0 + kg;
      const bool inside = row < pc.rows && col < pc.cols;
      vec4 a0 = vec4(0.0), a1 = vec4(0.0), b0 = vec4(0.0), b1 = vec4(0.0);
      if (inside && use_a) weight8(0u, base_a + row * pc.row_bytes, col, a0, a1);
      if (inside && use_b) weight8(1u, base_b + row * pc.row_bytes, col, b0, b1);
      [[unroll]] for (uint q = 0u; q < 4u; ++q) {
        wa_tile[n * TK + kg + q] = float16_t(a0[q]);
        wa_tile[n * TK + kg + 4u + q] = float16_t(a1[q]);
        wb_tile[n * TK + kg + q] = float16_t(b0[q]);
        wb_tile[n * TK + kg + 4u + q] = float16_t(b1[q]);
      }
    }
    barrier();
    [[unroll]] for (uint kf = 0u; kf < TK; kf += FRAG) {
      COOP_LOAD_A(0, act_tile, kf, TK, false);
      COOP_LOAD_A(1, act_tile, FRAG * TK + kf, TK, false);
      if (use_a) {
        COOP_LOAD_B(0, wa_tile, sg * FRAG * TK + kf, TK, true);
        COOP_MMA(0, act_tile, 0, wa_tile, 0);
        COOP_MMA(1, act_tile, 1, wa_tile, 0);
      }
      if (use_b) {
        COOP_LOAD_B(1, wb_tile, sg * FRAG * TK + kf, TK, true);
        COOP_MMA(2, act_tile, 0, wb_tile, 1);
        COOP_MMA(3, act_tile, 1, wb_tile, 1);
      }
    }
    barrier();
  }

  [[unroll]] for (uint half_m = 0u; half_m < 2u; ++half_m) {
    COOP_STORE(half_m, ca_tile, half_m * FRAG * TN + sg * FRAG, TN, false);
    COOP_STORE(2u + half_m, cb_tile, half_m * FRAG * TN + sg * FRAG, TN, false);
  }
  barrier();
  for (uint idx = lid; idx < TM * TN; idx += WG) {
    const uint m = idx / TN, n = idx % TN;
    if (m >= rows_valid || n0 + n >= pc.rows) continue;
    const uint out_index = (row_begin + m) * pc.rows + n0 + n;
    const float a = ca_tile[idx], b = cb_tile[idx];
    if (pc.mode == 0u) out_values[out_index] = silu(a) * b;
    else if (pc.mode == 1u) out_values[out_index] = silu(a);
    else if (pc.mode == 2u) out_values[out_index] *= b;
    else out_values[out_index] = a;
  }
}
