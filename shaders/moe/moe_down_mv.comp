#version 450
// Decode-path expert FFN, second half: out[t][r] = sum_j w[t][j] * (Wd_e(j) h[t*k+j])[r], the k
// experts of token t summed in slot order inside the kernel, so out is fully overwritten (no
// zero-fill, no float atomics) and the result is deterministic.
// Inputs:  down weights (uint words, WEIGHT_<TYPE>, expert e at e * stride bytes),
//          h [n_tokens*k][cols] f32 (from moe_gate_up_mv), expert_ids / expert_weights [n_tokens*k].
// Output:  out [n_tokens][rows] f32 (accumulate != 0: the sum is added to what out holds, a
//          residual add fused into the product). Slots with an id >= n_expert contribute nothing.
// Expert window: only experts [expert_first, expert_end) are bound (expert_first at base);
// a tensor larger than one binding runs as several dispatches (runtime/ops/moe_experts.cpp).
// Dispatch: (ceil(rows / ROWS), n_tokens, 1); WG threads split the columns in groups of 8 (16
// for the 4/5/6-bit types, quant.glsl's pair runs: shared quant bytes loaded once), then
// fold their sums in a shared-memory tree, or (SUBGROUP variant) with subgroupAdd and one sum
// over the subgroups.
// Specialization: 0 = WG (power of two), 1 = ROWS (rows per workgroup), 2 = SLOTS (SUBGROUP
// only): at least gl_NumSubgroups, i.e. WG / the smallest subgroup size, 3 = WIDE (0/1): two
// neighbouring pair runs a step, 16 contiguous quant bytes (moe_gate_up_mv.comp's WIDE).
#include "types.glsl"
#ifdef SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint ROWS = 2;
layout(constant_id = 2) const uint SLOTS = 64;
layout(constant_id = 3) const bool WIDE = false;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer DownWeights { uint weights_a[]; };
layout(std430, binding = 0) readonly buffer DownWeightsWide { uvec2 weights_a_wide[]; };
layout(std430, binding = 0) readonly buffer DownWeightsQuad { uvec4 weights_a_quad[]; };
#define weights_b weights_a  // moe_weights.glsl reads a second matrix; the down pass has one
#define weights_b_wide weights_a_wide
#define weights_b_quad weights_a_quad
layout(std430, binding = 1) readonly buffer H { vec4 h[]; };
layout(std430, binding = 2) readonly buffer Ids { uint expert_ids[]; };
layout(std430, binding = 3) readonly buffer Wts { float expert_weights[]; };
layout(std430, binding = 4) buffer Out { float out_values[]; };
layout(push_constant) uniform Push {
  uint cols, rows, k, n_expert;
  uint stride, row_bytes, base;  // base: byte offset of expert expert_first inside the bound range
  uint accumulate;
  uint expert_first, expert_end;  // the experts bound: slots of others contribute nothing here
} pc;

#define MOE_WEIGHTS_QUAD
#include "moe_weights.glsl"

#ifdef SUBGROUP
shared float partial[ROWS][SLOTS];  // [row][subgroup]
#else
shared float partial[ROWS][WG];
#endif

void main() {
  const uint lid = gl_LocalInvocationID.x;
  const uint token = gl_WorkGroupID.y;
  const uint row0 = gl_WorkGroupID.x * ROWS;

  float acc[ROWS];
  [[unroll]] for (uint r = 0u; r < ROWS; ++r) acc[r] = 0.0;
  for (uint j = 0u; j < pc.k; ++j) {
    const uint entry = token * pc.k + j;
    const uint e = expert_ids[entry];
    if (e < pc.expert_first || e >= pc.expert_end) continue;  // uniform across the workgroup
    const float weight = expert_weights[entry];
    const uint base = pc.base + (e - pc.expert_first) * pc.stride;
    float dots[ROWS];
    [[unroll]] for (uint r = 0u; r < ROWS; ++r) dots[r] = 0.0;
#ifdef QUANT_PAIR_STRIDE
    // 4/5/6-bit types: 16 elements a step whose quant bytes are shared, each loaded once.
    const uint S = QUANT_PAIR_STRIDE;
#ifdef QUANT_PAIR16
    // WIDE: runs 2q and 2q + 1, elements c..c+15 and c+S..c+S+15 (cols % 32 == 0: QK >= 32).
    for (uint quad = lid; WIDE && quad < pc.cols / 32u; quad += WG) {
      const uint run = 2u * quad;
      const uint hi = (entry * pc.cols + weight_pair_col(run)) / 4u;
      vec4 ha[4], hb[4];
      [[unroll]] for (uint i = 0u; i < 4u; ++i) {
        ha[i] = h[hi + i];
        hb[i] = h[hi + S / 4u + i];
      }
      [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
        if (row0 + r < pc.rows) {
          vec4 a[4], b[4];
          weight16x2(0u, base + (row0 + r) * pc.row_bytes, run, a, b);
          dots[r] += dot16(a, ha) + dot16(b, hb);
        }
      }
    }
    const bool narrow = !WIDE;
#else
    const bool narrow = true;
#endif
    for (uint run = lid; narrow && run < pc.cols / 16u; run += WG) {
      const uint hi = (entry * pc.cols + weight_pair_col(run)) / 4u;
      const vec4 ha0 = h[hi], ha1 = h[hi + 1u], hb0 = h[hi + S / 4u], hb1 = h[hi + S / 4u + 1u];
      [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
        if (row0 + r < pc.rows) {
          vec4 a0, a1, b0, b1;
          weight8x2(0u, base + (row0 + r) * pc.row_bytes, run, a0, a1, b0, b1);
          dots[r] += dot(a0, ha0) + dot(a1, ha1) + dot(b0, hb0) + dot(b1, hb1);
        }
      }
    }
#else
    for (uint c = lid * 8u; c < pc.cols; c += WG * 8u) {
      const uint hi = (entry * pc.cols + c) / 4u;
      const vec4 h0 = h[hi], h1 = h[hi + 1u];
      [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
        if (row0 + r < pc.rows) {
          vec4 w0, w1;
          weight8(0u, base + (row0 + r) * pc.row_bytes, c, w0, w1);
          dots[r] += dot(w0, h0) + dot(w1, h1);
        }
      }
    }
#endif
    [[unroll]] for (uint r = 0u; r < ROWS; ++r) acc[r] += weight * dots[r];
  }
#ifdef SUBGROUP
  [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
    const float s = subgroupAdd(acc[r]);
    if (subgroupElect()) partial[r][gl_SubgroupID] = s;
  }
  barrier();
  if (lid < ROWS && row0 + lid < pc.rows) {
    float sum = 0.0;
    for (uint s = 0u; s < gl_NumSubgroups; ++s) sum += partial[lid][s];
#else
  [[unroll]] for (uint r = 0u; r < ROWS; ++r) partial[r][lid] = acc[r];
  barrier();
  for (uint s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      [[unroll]] for (uint r = 0u; r < ROWS; ++r) partial[r][lid] += partial[r][lid + s];
    }
    barrier();
  }
  if (lid < ROWS && row0 + lid < pc.rows) {
    const float sum = partial[lid][0];
#endif
    const uint at = token * pc.rows + row0 + lid;
    out_values[at] = pc.accumulate != 0u ? out_values[at] + sum : sum;
  }
}
