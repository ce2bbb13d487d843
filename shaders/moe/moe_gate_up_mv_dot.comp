#version 450
// Decode-path expert FFN, first half, on the integer dot product: as moe_gate_up_mv's fused mode
// (for each (token t, slot j) the expert e = expert_ids[t*k+j] read on the GPU, ROWS rows of
// Wg_e x_t and Wu_e x_t together, h = SiLU(g) * u), but with x as int8 per 32 elements and the
// weights in their int8 form (quant.glsl's QUANT_HAS_INT8, int_dot.glsl): a 32-element
// sub-block is 8 packed dot products and one affine combine per row instead of 32 dequantized
// multiply-adds and the unpacking before them. At one token the float kernel spends ~5 times as
// many instructions per weight byte, which on a GPU's memory bandwidth can make it issue-bound
// (docs/PERFORMANCE.md); this one is for measuring that against it.
// Inputs:  gate/up weights (uint words, one WEIGHT_<TYPE> for both, expert e at e * stride bytes),
//          x as ops::Q8Activations for [n_tokens][cols]: xq int8 (16 per uvec4, element order),
//          xd scales and xs scaled sums f32 [n_tokens][cols / 32]; expert_ids [n_tokens*k] u32.
// Output:  h [n_tokens*k][rows] f32 (row t*k+j). An id >= n_expert gives h = 0 (never read OOB).
// Expert window: as moe_gate_up_mv (experts [expert_first, expert_end) bound, at base).
// Dispatch: (ceil(rows / ROWS), n_tokens * k, 1). Workgroup WG threads take the row's 32-element
// sub-blocks in turn (adjacent threads, adjacent sub-blocks), then subgroupAdd and one sum over
// the subgroups. cols % 32 == 0.
// Specialization: 0 = WG (power of two), 1 = ROWS (rows per workgroup), 2 = SLOTS: at least
// gl_NumSubgroups, i.e. WG / the smallest subgroup size.
#include "types.glsl"
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint ROWS = 2;
layout(constant_id = 2) const uint SLOTS = 64;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer GateWeights { uint weights_a[]; };
layout(std430, binding = 0) readonly buffer GateWeightsWide { uvec2 weights_a_wide[]; };
layout(std430, binding = 1) readonly buffer UpWeights { uint weights_b[]; };
layout(std430, binding = 1) readonly buffer UpWeightsWide { uvec2 weights_b_wide[]; };
layout(std430, binding = 2) readonly buffer XQ { uvec4 x_q8[]; };
layout(std430, binding = 3) readonly buffer Ids { uint expert_ids[]; };
layout(std430, binding = 4) writeonly buffer H { float h[]; };
layout(std430, binding = 5) readonly buffer XD { float x_scale[]; };
layout(std430, binding = 6) readonly buffer XS { float x_sum[]; };
layout(push_constant) uniform Push {  // moe_gate_up_mv's (mode and norm_eps unused: fused, no norm)
  uint cols, rows, k, n_expert;
  uint gate_stride, up_stride, row_bytes, mode;
  uint gate_base, up_base;
  float norm_eps;
  uint expert_first, expert_end;
} pc;

#include "moe_weights.glsl"
#include "int_dot.glsl"

shared float partial[2u * ROWS][SLOTS];  // [sum][subgroup]
shared float total[2u * ROWS];

float silu(float v) { return v / (1.0 + exp(-v)); }

// The 32 elements of sub-block `col / 32` of the row at row_byte of matrix `which`, dotted with
// the activation words xw (scale dx, scaled sum sx; qs_lo / qs_hi: the halves' int8 sums, for
// Q2_K's mins).
float sub_block_dot(uint which, uint row_byte, uint col, const uint xw[8], float dx, float sx, int qs_lo, int qs_hi) {
  moe_weight_select = which;
  float scale, offset;
  row_affine32(row_byte, col, scale, offset);
  int isum[2] = int[2](0, 0);
  [[unroll]] for (uint i = 0u; i < 4u; ++i) {
    const uvec2 w = row_int8x8(row_byte, col + 8u * i);
    // The part of words sharing one weight scale: the whole sub-block, or (16-element scales)
    // words 0..3 and 4..7.
    const uint part = (2u * i) / INT8_PART_WORDS;
    isum[part] += sdot_4x8_packed(xw[2u * i], w.x, 0) + sdot_4x8_packed(xw[2u * i + 1u], w.y, 0);
  }
#ifdef QUANT_INT8_HALF_MINS
  float min_lo, min_hi;
  row_mins32(row_byte, col, min_lo, min_hi);
  return int_dot_part_min(isum[0], qs_lo, scale, min_lo, dx) + int_dot_part_min(isum[1], qs_hi, offset, min_hi, dx);
#else
  float sum = int_dot_part(isum[0], scale, offset, dx, sx, 0u);
  if (INT8_PART_WORDS == 4u) sum += int_dot_part(isum[1], scale, offset, dx, sx, 1u);
  return sum;
#endif
}

void main() {
  const uint lid = gl_LocalInvocationID.x;
  const uint entry = gl_WorkGroupID.y;  // t * k + j
  const uint row0 = gl_WorkGroupID.x * ROWS;
  const uint e = expert_ids[entry];
  const bool valid = e < pc.n_expert;
  const bool in_window = e >= pc.expert_first && e < pc.expert_end;
  const bool writes = in_window || (!valid && pc.expert_first == 0u);
  const uint token = entry / pc.k;

  float g[ROWS], u[ROWS];
  [[unroll]] for (uint r = 0u; r < ROWS; ++r) { g[r] = 0.0; u[r] = 0.0; }
  if (in_window) {
    const uint slot = e - pc.expert_first;
    const uint gate_base = pc.gate_base + slot * pc.gate_stride, up_base = pc.up_base + slot * pc.up_stride;
    const uint n_sub = pc.cols / 32u;
    for (uint sb = lid; sb < n_sub; sb += WG) {
      const uint xb = token * n_sub + sb;
      const uvec4 x0 = x_q8[2u * xb], x1 = x_q8[2u * xb + 1u];
      const uint xw[8] = uint[8](x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w);
      const float dx = x_scale[xb], sx = x_sum[xb];
      int qs_lo = 0, qs_hi = 0;
#ifdef QUANT_INT8_HALF_MINS
      [[unroll]] for (uint w = 0u; w < 4u; ++w) {
        qs_lo += sdot_4x8_packed(xw[w], INT8_ONES, 0);
        qs_hi += sdot_4x8_packed(xw[w + 4u], INT8_ONES, 0);
      }
#endif
      [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
        const uint row = row0 + r;
        if (row < pc.rows) {
          g[r] += sub_block_dot(0u, gate_base + row * pc.row_bytes, 32u * sb, xw, dx, sx, qs_lo, qs_hi);
          u[r] += sub_block_dot(1u, up_base + row * pc.row_bytes, 32u * sb, xw, dx, sx, qs_lo, qs_hi);
        }
      }
    }
  }
  [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
    const float gs = subgroupAdd(g[r]), us = subgroupAdd(u[r]);
    if (subgroupElect()) {
      partial[2u * r][gl_SubgroupID] = gs;
      partial[2u * r + 1u][gl_SubgroupID] = us;
    }
  }
  barrier();
  if (lid < 2u * ROWS) {
    float t = 0.0;
    for (uint s = 0u; s < gl_NumSubgroups; ++s) t += partial[lid][s];
    total[lid] = t;
  }
  barrier();
  if (writes && lid < ROWS && row0 + lid < pc.rows)
    h[entry * pc.rows + row0 + lid] = valid ? silu(total[2u * lid]) * total[2u * lid + 1u] : 0.0;
}
