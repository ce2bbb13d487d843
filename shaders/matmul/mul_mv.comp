#version 450
// Matrix-vector product for small batches: y[t][r] = sum_c W[r][c] * x[t][c] (+ bias[r]), for up
// to three matrices that read the same x (q, k and v; gate and up) in one dispatch.
// Each workgroup computes ROWS output rows of one matrix for every token of the batch, so a
// weight byte is read once per batch (decode is bandwidth bound); threads stride along the row
// in groups of 8 elements (quant.glsl's dequant8; 16 with dequant8x2 for the 4/5/6-bit types
// when MAX_TOKENS <= 4), keep per-(row, token) partial sums in registers, and fold them with a
// shared-memory tree (plain path) or subgroupAdd + shared memory (SUBGROUP variant).
// Matrices m < pc.n_mats (1..3) share the type, cols and row_bytes; each has its own rows,
// weights at byte weight_base[m] of binding 0, output and bias positions. Workgroups take the
// row groups of matrix 0, then of 1, then of 2 (div_up(rows[m], ROWS) each), so the choice of
// matrix is uniform per workgroup.
// Inputs:  weights (binding 0) rows of row_bytes bytes in their block layout;
//          x (binding 1) f32 [n_tokens][cols] read as vec4 (cols % 8 == 0);
//          bias (binding 3) f32, bias[bias_begin[m] + r], read when flags & 1 (else any buffer).
// Output:  y (binding 2) f32, y[y_begin[m] + t * y_stride[m] + r] (a matrix split into row
//          chunks, one dispatch each, because it exceeds one binding sets y_begin and
//          bias_begin to the chunk's first row); with flags & 2 the product is added to what y
//          holds (y += W x).
// With NORM (specialization 3) the input is RMS-normed on the way in, y = W (rmsnorm(x) * g):
//          norm_weight (binding 4) g f32 [cols], pc.norm_eps. Every workgroup reads all of x_t
//          anyway, so it sums x_t^2 in the same loop and scales its dot products at the end
//          (W (s x * g) = s W (x * g)): no separate norm pass, no barrier before the product.
// Dispatch: G = the row groups of all matrices, laid out as (min(G, 65535), div_up(G, 65535), 1).
// Specialization: 0 = workgroup size WG (power of two), 1 = ROWS, 2 = MAX_TOKENS (>= n_tokens),
// ROWS * MAX_TOKENS <= WG, 3 = NORM (0/1), 4 = SLOTS (SUBGROUP only): partial sums kept per sum,
// at least gl_NumSubgroups, i.e. WG / the smallest subgroup size the device may run the shader
// with (MatMul: div_up(WG, minSubgroupSize); 4 on NVIDIA at WG 128, 16 on lavapipe),
// 5 = WIDE (0/1; MAX_TOKENS 1, types with quant.glsl's QUANT_PAIR16: Q4_0, Q4_K, Q5_K, Q6_K):
// a thread takes two neighbouring pair runs a step, 32 elements whose quant bytes are 16
// contiguous bytes (one 128-bit load where 16-aligned; bindings start 16-aligned).
// Shared memory: (ROWS + NORM) * MAX_TOKENS floats per slot, WG slots (plain) or SLOTS
// (SUBGROUP): per token at WG 128, ROWS 4 and no norm 2 KiB plain, 64 bytes with subgroups of
// 32; MatMul caps MAX_TOKENS to fit the device's maxComputeSharedMemorySize (NVIDIA has
// 48 KiB, lavapipe 32).
#include "types.glsl"
#ifdef SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 1) const uint ROWS = 4;
layout(constant_id = 2) const uint MAX_TOKENS = 8;
layout(constant_id = 3) const bool NORM = false;
layout(constant_id = 4) const uint SLOTS = 128;
layout(constant_id = 5) const bool WIDE = false;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Weights { uint weight_words[]; };
layout(std430, binding = 0) readonly buffer WeightsWide { uvec2 weight_dwords[]; };  // the same buffer, 64-bit loads
layout(std430, binding = 0) readonly buffer WeightsQuad { uvec4 weight_quads[]; };   // and 128-bit loads
layout(std430, binding = 1) readonly buffer X { vec4 x_values[]; };
// Read too when ACCUMULATE is set (y += W x, e.g. a residual add fused into its producer).
layout(std430, binding = 2) buffer Y { float y_values[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias_values[]; };
layout(std430, binding = 4) readonly buffer NormWeight { vec4 norm_weight[]; };
const uint MAX_MATS = 3u;
layout(push_constant) uniform Push {
  uint cols, n_tokens, row_bytes, flags;  // flags: 1 bias, 2 accumulate
  uint n_mats;
  float norm_eps;
  uint rows[MAX_MATS], weight_base[MAX_MATS];
  uint y_begin[MAX_MATS], y_stride[MAX_MATS], bias_begin[MAX_MATS];  // in floats
} pc;

#define WEIGHT_WORD(i) weight_words[(i)]
#define WEIGHT_UVEC2(i) weight_dwords[(i)]
#define WEIGHT_UVEC4(i) weight_quads[(i)]
#define QUANT_ROW_COLS pc.cols
#include "quant.glsl"

// Sums k < ROWS * MAX_TOKENS are the products (row r, token t at r * MAX_TOKENS + t); with NORM,
// ROWS * MAX_TOKENS + t is token t's sum of squares.
const uint PRODUCTS = ROWS * MAX_TOKENS;
const uint SUMS = PRODUCTS + (NORM ? MAX_TOKENS : 0u);
#ifdef SUBGROUP
shared float partial[SUMS * SLOTS];  // one per (sum, subgroup)
#else
shared float partial[SUMS * WG];
#endif

// Activations as the product sees them: x * g with NORM (its square summed first), else x.
vec4 scaled_x(vec4 v, uint vec_index, inout float sum_sq) {
  if (!NORM) return v;
  sum_sq += dot(v, v);
  return v * norm_weight[vec_index];
}

void main() {
  const uint lid = gl_LocalInvocationID.x;
  // This workgroup's matrix m and its first row there.
  uint group = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x, m = 0u;
  for (; m + 1u < min(pc.n_mats, MAX_MATS); ++m) {
    const uint groups_m = (pc.rows[m] + ROWS - 1u) / ROWS;
    if (group < groups_m) break;
    group -= groups_m;
  }
  const uint n_rows = pc.rows[m], weight_base = pc.weight_base[m];
  const uint row0 = group * ROWS;
  if (row0 >= n_rows) return;  // uniform per workgroup: no barrier is skipped by part of it
  const uint n_tokens = min(pc.n_tokens, MAX_TOKENS);
  const uint groups = pc.cols / 8u;

  float acc[SUMS];
  [[unroll]] for (uint k = 0u; k < SUMS; ++k) acc[k] = 0.0;

#ifdef QUANT_PAIR_STRIDE
  // 4/5/6-bit types with few tokens: 16 elements per step whose quant bytes are shared (low and
  // high nibbles), so each weight byte is loaded once. Larger batches keep the 8-element loop,
  // whose activation registers are half as many.
#ifdef QUANT_PAIR16
  if (WIDE && MAX_TOKENS == 1u) {
    // One token, two neighbouring pair runs 2q and 2q + 1 a step: elements col..col+15 and
    // col+S..col+S+15 of block 2q / QUANT_PAIRS_PER_BLOCK (cols % 32 == 0: QK >= 32).
    const uint S = QUANT_PAIR_STRIDE;
    for (uint q = lid; q < pc.cols / 32u; q += WG) {
      const uint g = 2u * q, e = quant_pair_first(g);
      const uint col = (g / QUANT_PAIRS_PER_BLOCK) * QK + e, xi = col / 4u;
      vec4 xa[4], xb[4];
      float sq = 0.0;
      [[unroll]] for (uint i = 0u; i < 4u; ++i) {
        xa[i] = scaled_x(x_values[xi + i], xi + i, sq);
        xb[i] = scaled_x(x_values[xi + S / 4u + i], xi + S / 4u + i, sq);
      }
      if (NORM) acc[PRODUCTS] += sq;
      [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
        const uint row = row0 + r;
        if (row < n_rows) {
          vec4 a[4], b[4];
          dequant16x2(quant_block(weight_base + row * pc.row_bytes, g / QUANT_PAIRS_PER_BLOCK), e, a, b);
          acc[r * MAX_TOKENS] += dot16(a, xa) + dot16(b, xb);
        }
      }
    }
  } else
#endif
  if (MAX_TOKENS <= 4u) {
    const uint S = QUANT_PAIR_STRIDE;
    for (uint g = lid; g < pc.cols / 16u; g += WG) {
      const uint e = quant_pair_first(g);  // first element in the block
      const uint col = (g / QUANT_PAIRS_PER_BLOCK) * QK + e;
      vec4 xa0[MAX_TOKENS], xa1[MAX_TOKENS], xb0[MAX_TOKENS], xb1[MAX_TOKENS];
      [[unroll]] for (uint t = 0u; t < MAX_TOKENS; ++t) {
        if (t < n_tokens) {
          const uint xi = (t * pc.cols + col) / 4u, gi = col / 4u;
          float sq = 0.0;
          xa0[t] = scaled_x(x_values[xi], gi, sq);
          xa1[t] = scaled_x(x_values[xi + 1u], gi + 1u, sq);
          xb0[t] = scaled_x(x_values[xi + S / 4u], gi + S / 4u, sq);
          xb1[t] = scaled_x(x_values[xi + S / 4u + 1u], gi + S / 4u + 1u, sq);
          if (NORM) acc[PRODUCTS + t] += sq;
        }
      }
      [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
        const uint row = row0 + r;
        if (row < n_rows) {
          vec4 a0, a1, b0, b1;
          dequant8x2(quant_block(weight_base + row * pc.row_bytes, g / QUANT_PAIRS_PER_BLOCK), e, a0, a1, b0, b1);
          [[unroll]] for (uint t = 0u; t < MAX_TOKENS; ++t) {
            if (t < n_tokens)
              acc[r * MAX_TOKENS + t] += dot(a0, xa0[t]) + dot(a1, xa1[t]) + dot(b0, xb0[t]) + dot(b1, xb1[t]);
          }
        }
      }
    }
  } else
#endif
  {
    for (uint g = lid; g < groups; g += WG) {
      const uint e = g * 8u;
      vec4 xa[MAX_TOKENS], xb[MAX_TOKENS];
      [[unroll]] for (uint t = 0u; t < MAX_TOKENS; ++t) {
        if (t < n_tokens) {
          const uint xi = (t * pc.cols + e) / 4u, gi = e / 4u;
          float sq = 0.0;
          xa[t] = scaled_x(x_values[xi], gi, sq);
          xb[t] = scaled_x(x_values[xi + 1u], gi + 1u, sq);
          if (NORM) acc[PRODUCTS + t] += sq;
        }
      }
      [[unroll]] for (uint r = 0u; r < ROWS; ++r) {
        const uint row = row0 + r;
        if (row < n_rows) {
          vec4 w0, w1;
          dequant8(quant_block(weight_base + row * pc.row_bytes, e / QK), e % QK, w0, w1);
          [[unroll]] for (uint t = 0u; t < MAX_TOKENS; ++t) {
            if (t < n_tokens) acc[r * MAX_TOKENS + t] += dot(w0, xa[t]) + dot(w1, xb[t]);
          }
        }
      }
    }

  }

#ifdef SUBGROUP
  const uint n_subgroups = gl_NumSubgroups;
  [[unroll]] for (uint k = 0u; k < SUMS; ++k) {
    const float s = subgroupAdd(acc[k]);
    if (subgroupElect()) partial[k * SLOTS + gl_SubgroupID] = s;
  }
  barrier();
  if (lid < ROWS * n_tokens) {
    const uint r = lid / n_tokens, t = lid % n_tokens, k = r * MAX_TOKENS + t;
    float sum = 0.0;
    for (uint s = 0u; s < n_subgroups; ++s) sum += partial[k * SLOTS + s];
    if (NORM) {
      float sum_sq = 0.0;
      for (uint s = 0u; s < n_subgroups; ++s) sum_sq += partial[(PRODUCTS + t) * SLOTS + s];
      sum *= inversesqrt(sum_sq / float(pc.cols) + pc.norm_eps);
    }
#else
  [[unroll]] for (uint k = 0u; k < SUMS; ++k) partial[k * WG + lid] = acc[k];
  barrier();
  for (uint s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      [[unroll]] for (uint k = 0u; k < SUMS; ++k) partial[k * WG + lid] += partial[k * WG + lid + s];
    }
    barrier();
  }
  if (lid < ROWS * n_tokens) {
    const uint r = lid / n_tokens, t = lid % n_tokens, k = r * MAX_TOKENS + t;
    float sum = partial[k * WG];
    if (NORM) sum *= inversesqrt(partial[(PRODUCTS + t) * WG] / float(pc.cols) + pc.norm_eps);
#endif
    const uint row = row0 + r;
    if (row < n_rows) {
      const uint at = pc.y_begin[m] + t * pc.y_stride[m] + row;
      const float v = sum + ((pc.flags & 1u) != 0u ? bias_values[pc.bias_begin[m] + row] : 0.0);
      y_values[at] = (pc.flags & 2u) != 0u ? y_values[at] + v : v;
    }
  }
}
