#version 450
// Decode-path expert FFN, first half: for each (token t, slot j) the expert e = expert_ids[t*k+j]
// is read from the GPU buffer and ROWS rows of Wg_e x_t and Wu_e x_t are computed together
// (x read once, both weight matrices streamed), then h = SiLU(g) * u.
// Inputs:  gate/up weights (uint words, WEIGHT_<TYPE> layout, expert e at e * stride bytes),
//          x [n_tokens][cols] f32, expert_ids [n_tokens*k] u32.
// Output:  h [n_tokens*k][rows] f32 (row t*k+j). An id >= n_expert gives h = 0 (never read OOB).
// mode: 0 fused gate+up; 1 gate only, h = SiLU(g) (gate/up types differ); 2 h *= (Wu x).
// With NORM (specialization 2), x is RMS-normed on the way in: h from Wg (rmsnorm(x) * g) and
// Wu (rmsnorm(x) * g), g = norm_weight (binding 5) f32 [cols], pc.norm_eps; each workgroup sums
// x_t^2 in its pass over x and scales both products (no separate norm pass or barrier).
// Expert window: only experts [expert_first, expert_end) are bound (expert_first at base);
// a tensor larger than one binding runs as several dispatches (runtime/ops/moe_experts.cpp).
// Dispatch: (ceil(rows / ROWS), n_tokens * k, 1). Workgroup WG threads split the columns in
// groups of 8 (16 for the 4/5/6-bit types: quant.glsl's pair runs, whose shared quant bytes are
// loaded once; adjacent threads read adjacent bytes), then a shared-memory tree reduction, or in
// the SUBGROUP variant subgroupAdd and one sum over the subgroups (2 barriers instead of
// log2(WG) + 1).
// Specialization: 0 = WG (power of two), 1 = ROWS (rows per workgroup), 2 = NORM (0/1),
// 3 = SLOTS (SUBGROUP only): at least gl_NumSubgroups, i.e. WG / the smallest subgroup size,
// 4 = WIDE (0/1; Q4_0, Q4_K, Q5_K, Q6_K: QUANT_PAIR16): a thread takes two neighbouring pair
// runs a step, 32 elements whose quant bytes are 16 contiguous bytes (one 128-bit load where
// 16-aligned: bindings start 16-aligned; quant.glsl's dequant16x2), half the steps.
#include "types.glsl"
#ifdef SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint ROWS = 2;
layout(constant_id = 2) const bool NORM = false;
layout(constant_id = 3) const uint SLOTS = 64;
layout(constant_id = 4) const bool WIDE = false;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer GateWeights { uint weights_a[]; };
layout(std430, binding = 0) readonly buffer GateWeightsWide { uvec2 weights_a_wide[]; };
layout(std430, binding = 1) readonly buffer UpWeights { uint weights_b[]; };
layout(std430, binding = 1) readonly buffer UpWeightsWide { uvec2 weights_b_wide[]; };
layout(std430, binding = 0) readonly buffer GateWeightsQuad { uvec4 weights_a_quad[]; };
layout(std430, binding = 1) readonly buffer UpWeightsQuad { uvec4 weights_b_quad[]; };
layout(std430, binding = 2) readonly buffer X { vec4 x[]; };
layout(std430, binding = 3) readonly buffer Ids { uint expert_ids[]; };
layout(std430, binding = 4) buffer H { float h[]; };
layout(std430, binding = 5) readonly buffer NormWeight { vec4 norm_weight[]; };
layout(push_constant) uniform Push {
  uint cols, rows, k, n_expert;
  uint gate_stride, up_stride, row_bytes, mode;
  uint gate_base, up_base;  // byte offset of expert expert_first inside the bound ranges
  float norm_eps;
  uint expert_first, expert_end;  // the experts bound: entries of others are left alone
} pc;

#define MOE_WEIGHTS_QUAD
#include "moe_weights.glsl"

// Rows 2r, 2r + 1: gate and up products of row r; with NORM, row 2 * ROWS: the sum of squares.
const uint SUM_ROWS = 2u * ROWS + (NORM ? 1u : 0u);
#ifdef SUBGROUP
shared float partial[SUM_ROWS][SLOTS];  // [sum][subgroup]
shared float total[SUM_ROWS];
#define SUM(i) total[i]
#else
shared float partial[SUM_ROWS][WG];
#define SUM(i) partial[i][0]
#endif

float silu(float v) { return v / (1.0 + exp(-v)); }

void main() {
  const uint lid = gl_LocalInvocationID.x;
  const uint entry = gl_WorkGroupID.y;  // t * k + j
  const uint row0 = gl_WorkGroupID.x * ROWS;
  const uint e = expert_ids[entry];
  const bool valid = e < pc.n_expert;
  // Experts outside the bound window are another dispatch's; an invalid id's zeros are written
  // by the first window's dispatch.
  const bool in_window = e >= pc.expert_first && e < pc.expert_end;
  const bool writes = in_window || (!valid && pc.expert_first == 0u);
  const uint token = entry / pc.k;

  float g[ROWS], u[ROWS];
  [[unroll]] for (uint r = 0u; r < ROWS; ++r) { g[r] = 0.0; u[r] = 0.0; }
  float sum_sq = 0.0;
  if (in_window) {
    const uint slot = e - pc.expert_first;
    const uint gate_base = pc.gate_base + slot * pc.gate_stride, up_base = pc.up_base + slot * pc.up_stride;
#ifdef QUANT_PAIR_STRIDE
    // 4/5/6-bit types: 16 elements a step, two runs of 8 that share their quant bytes (low and
    // high nibbles), so each weight byte is loaded once.
    const uint S = QUANT_PAIR_STRIDE;
#ifdef QUANT_PAIR16
    // WIDE: runs 2q and 2q + 1, elements c..c+15 and c+S..c+S+15 (cols % 32 == 0: QK >= 32).
    for (uint quad = lid; WIDE && quad < pc.cols / 32u; quad += WG) {
      const uint run = 2u * quad, c = weight_pair_col(run);
      const uint xi = (token * pc.cols + c) / 4u;
      vec4 xa[4], xb[4];
      [[unroll]] for (uint i = 0u; i < 4u; ++i) {
        xa[i] = x[xi + i];
        xb[i] = x[xi + S / 4u + i];
        if (NORM) {
          sum_sq += dot(xa[i], xa[i]) + dot(xb[i], xb[i]);
          xa[i] *= norm_weight[c / 4u + i];
          xb[i] *= norm_weight[(c + S) / 4u + i];
        }
      }
      [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
        const uint row = row0 + r;
        if (row < pc.rows) {
          vec4 a[4], b[4];
          if (pc.mode != 2u) {
            weight16x2(0u, gate_base + row * pc.row_bytes, run, a, b);
            g[r] += dot16(a, xa) + dot16(b, xb);
          }
          if (pc.mode != 1u) {
            weight16x2(1u, up_base + row * pc.row_bytes, run, a, b);
            u[r] += dot16(a, xa) + dot16(b, xb);
          }
        }
      }
    }
    const bool narrow = !WIDE;
#else
    const bool narrow = true;
#endif
    for (uint run = lid; narrow && run < pc.cols / 16u; run += WG) {
      const uint c = weight_pair_col(run);
      const uint xi = (token * pc.cols + c) / 4u;
      vec4 xa0 = x[xi], xa1 = x[xi + 1u], xb0 = x[xi + S / 4u], xb1 = x[xi + S / 4u + 1u];
      if (NORM) {
        sum_sq += dot(xa0, xa0) + dot(xa1, xa1) + dot(xb0, xb0) + dot(xb1, xb1);
        xa0 *= norm_weight[c / 4u];
        xa1 *= norm_weight[c / 4u + 1u];
        xb0 *= norm_weight[(c + S) / 4u];
        xb1 *= norm_weight[(c + S) / 4u + 1u];
      }
      [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
        const uint row = row0 + r;
        if (row < pc.rows) {
          vec4 a0, a1, b0, b1;
          if (pc.mode != 2u) {
            weight8x2(0u, gate_base + row * pc.row_bytes, run, a0, a1, b0, b1);
            g[r] += dot(a0, xa0) + dot(a1, xa1) + dot(b0, xb0) + dot(b1, xb1);
          }
          if (pc.mode != 1u) {
            weight8x2(1u, up_base + row * pc.row_bytes, run, a0, a1, b0, b1);
            u[r] += dot(a0, xa0) + dot(a1, xa1) + dot(b0, xb0) + dot(b1, xb1);
          }
        }
      }
    }
#else
    for (uint c = lid * 8u; c < pc.cols; c += WG * 8u) {
      const uint xi = (token * pc.cols + c) / 4u;
      vec4 x0 = x[xi], x1 = x[xi + 1u];
      if (NORM) {
        sum_sq += dot(x0, x0) + dot(x1, x1);
        x0 *= norm_weight[c / 4u];
        x1 *= norm_weight[c / 4u + 1u];
      }
      [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
        const uint row = row0 + r;
        if (row < pc.rows) {
          vec4 w0, w1;
          if (pc.mode != 2u) {
            weight8(0u, gate_base + row * pc.row_bytes, c, w0, w1);
            g[r] += dot(w0, x0) + dot(w1, x1);
          }
          if (pc.mode != 1u) {
            weight8(1u, up_base + row * pc.row_bytes, c, w0, w1);
            u[r] += dot(w0, x0) + dot(w1, x1);
          }
        }
      }
    }
#endif
  }
#ifdef SUBGROUP
  [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
    const float gs = subgroupAdd(g[r]), us = subgroupAdd(u[r]);
    if (subgroupElect()) {
      partial[2u * r][gl_SubgroupID] = gs;
      partial[2u * r + 1u][gl_SubgroupID] = us;
    }
  }
  if (NORM) {
    const float ss = subgroupAdd(sum_sq);
    if (subgroupElect()) partial[2u * ROWS][gl_SubgroupID] = ss;
  }
  barrier();
  if (lid < SUM_ROWS) {
    float t = 0.0;
    for (uint s = 0u; s < gl_NumSubgroups; ++s) t += partial[lid][s];
    total[lid] = t;
  }
  barrier();
#else
  [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
    partial[2u * r][lid] = g[r];
    partial[2u * r + 1u][lid] = u[r];
  }
  if (NORM) partial[2u * ROWS][lid] = sum_sq;
  barrier();
  for (uint s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      [[unroll]] for (uint r = 0u; r < SUM_ROWS; ++r) partial[r][lid] += partial[r][lid + s];
    }
    barrier();
  }
#endif
  if (writes && lid < ROWS && row0 + lid < pc.rows) {
    const uint out_index = entry * pc.rows + row0 + lid;
    const float norm_scale = NORM ? inversesqrt(SUM(2u * ROWS) / float(pc.cols) + pc.norm_eps) : 1.0;
    const float gv = SUM(2u * lid) * norm_scale, uv = SUM(2u * lid + 1u) * norm_scale;
    float result;
    if (pc.mode == 0u) result = silu(gv) * uv;
    else if (pc.mode == 1u) result = silu(gv);
    else result = h[out_index] * uv;
    h[out_index] = valid ? result : 0.0;
  }
}
