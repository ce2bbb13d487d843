#version 450
// Integer-dot matrix-matrix product for weights whose 32-element sub-blocks are scale * int8 +
// offset (quant.glsl's QUANT_HAS_INT8 types; Q3_K and Q6_K a scale per 16-element half). With activations x = dx * qx per 32 elements
// (quantize_q8.comp, xs = dx * sum qx; the algebra in common/int_dot.glsl):
//   y[t][r] = sum_b scale[r][b] * dx[t][b] * sum_{i<32} qw[r][32b+i] * qx[t][32b+i]
//             + offset[r][b] * xs[t][b]                                            (+ bias[r])
// Per 32-column step the workgroup stages BM x 8 packed weight words + scale/offset and BN x 8
// activation words + dx/xs in shared memory, one step ahead (two copies: the next step is read
// into registers before this step's products and stored into the other copy after them, one
// barrier per step); each thread does TM x TN outputs with 8 packed 4x8 dot products (OpSDot)
// each.
// Inputs:  weights (binding 0) as mul_mm; xq (binding 1) u32 [n_tokens][cols / 4];
//          xd (binding 2), xs (binding 3) f32 [n_tokens][cols / 32]; bias (binding 5) f32 [rows]
//          if flags & 1; flags & 2: y += product instead of y =.
// Output:  y (binding 4) f32 [n_tokens][y_stride], rows row_begin.. of it (the weight binding
//          holds rows row_begin..row_begin+rows-1 when a matrix exceeds one binding).
// Dispatch: (div_up(rows, BM), div_up(n_tokens, BN), 1). cols % 32 == 0.
// Specialization: 0 = WG, 1 = BM, 2 = BN, 3 = TM, 4 = TN, WG == (BM / TM) * (BN / TN).
#include "types.glsl"

layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 1) const uint BM = 64;
layout(constant_id = 2) const uint BN = 64;
layout(constant_id = 3) const uint TM = 4;
layout(constant_id = 4) const uint TN = 4;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Weights { uint weight_words[]; };
layout(std430, binding = 0) readonly buffer WeightsWide { uvec2 weight_dwords[]; };  // the same buffer, 64-bit loads
layout(std430, binding = 1) readonly buffer Xq { uint xq_words[]; };
layout(std430, binding = 2) readonly buffer Xd { float xd_values[]; };
layout(std430, binding = 3) readonly buffer Xs { float xs_values[]; };
// Read too when ACCUMULATE is set (y += W x, e.g. a residual add fused into its producer).
layout(std430, binding = 4) buffer Y { float y_values[]; };
layout(std430, binding = 5) readonly buffer Bias { float bias_values[]; };
layout(push_constant) uniform Push {
  uint cols, rows, n_tokens, weight_base, row_bytes, flags;  // flags: 1 bias, 2 accumulate
  uint y_stride, row_begin;  // rows of y; first row of this dispatch (matrices split by binding range)
} pc;

#define WEIGHT_WORD(i) weight_words[(i)]
#define WEIGHT_UVEC2(i) weight_dwords[(i)]
#define QUANT_ROW_COLS pc.cols
#include "quant.glsl"
#include "int_dot.glsl"

// Copy `buf` of each tile at offset buf * its size.
shared uint wq_tile[2 * 8 * BM];  // word-major: wq_tile[u * BM + m]
shared float wd_tile[2 * BM];
shared float wo_tile[2 * BM];
#ifdef QUANT_INT8_HALF_MINS
shared vec2 wm_tile[2 * BM];  // Q2_K: the sub-block's two half mins
#endif
shared uint xq_tile[2 * 8 * BN];
shared float xd_tile[2 * BN];
shared float xs_tile[2 * BN];

// The next step's words, per invocation: weights BM rows x 4 groups of 8 int8 (two words each,
// with the sub-block's scale/offset), activations BN tokens x 8 words (with dx/xs).
const uint W_LOADS = (BM * 4u + WG - 1u) / WG, X_LOADS = (BN * 8u + WG - 1u) / WG;
uvec2 next_wq[W_LOADS];
float next_wd[W_LOADS], next_wo[W_LOADS];
#ifdef QUANT_INT8_HALF_MINS
vec2 next_wm[W_LOADS];
#endif
uint next_xq[X_LOADS];
float next_xd[X_LOADS], next_xs[X_LOADS];

void fetch(uint blk, uint row0, uint tok0) {
  const uint lid = gl_LocalInvocationID.x, n_blocks = pc.cols / 32u;
  [[unroll]] for (uint i = 0u; i < W_LOADS; ++i) {
    const uint idx = lid + i * WG;
    const uint m = idx / 4u, g = idx % 4u, row = row0 + m;
    next_wq[i] = uvec2(0u);
    next_wd[i] = next_wo[i] = 0.0;
#ifdef QUANT_INT8_HALF_MINS
    next_wm[i] = vec2(0.0);
#endif
    if (idx < BM * 4u && row < pc.rows) {
      const uint row_byte = pc.weight_base + row * pc.row_bytes;
      next_wq[i] = row_int8x8(row_byte, blk * 32u + g * 8u);
      if (g == 0u) row_affine32(row_byte, blk * 32u, next_wd[i], next_wo[i]);
#ifdef QUANT_INT8_HALF_MINS
      if (g == 0u) row_mins32(row_byte, blk * 32u, next_wm[i].x, next_wm[i].y);
#endif
    }
  }
  [[unroll]] for (uint i = 0u; i < X_LOADS; ++i) {
    const uint idx = lid + i * WG;
    const uint n = idx / 8u, u = idx % 8u, tok = tok0 + n;
    const bool valid = idx < BN * 8u && tok < pc.n_tokens;
    next_xq[i] = valid ? xq_words[(tok * pc.cols) / 4u + blk * 8u + u] : 0u;
    next_xd[i] = valid && u == 0u ? xd_values[tok * n_blocks + blk] : 0.0;
    next_xs[i] = valid && u == 0u ? xs_values[tok * n_blocks + blk] : 0.0;
  }
}

void put(uint buf) {
  const uint lid = gl_LocalInvocationID.x;
  [[unroll]] for (uint i = 0u; i < W_LOADS; ++i) {
    const uint idx = lid + i * WG;
    if (idx >= BM * 4u) continue;
    const uint m = idx / 4u, g = idx % 4u;
    wq_tile[buf * 8u * BM + (2u * g) * BM + m] = next_wq[i].x;
    wq_tile[buf * 8u * BM + (2u * g + 1u) * BM + m] = next_wq[i].y;
    if (g == 0u) {
      wd_tile[buf * BM + m] = next_wd[i];
      wo_tile[buf * BM + m] = next_wo[i];
#ifdef QUANT_INT8_HALF_MINS
      wm_tile[buf * BM + m] = next_wm[i];
#endif
    }
  }
  [[unroll]] for (uint i = 0u; i < X_LOADS; ++i) {
    const uint idx = lid + i * WG;
    if (idx >= BN * 8u) continue;
    const uint n = idx / 8u, u = idx % 8u;
    xq_tile[buf * 8u * BN + u * BN + n] = next_xq[i];
    if (u == 0u) {
      xd_tile[buf * BN + n] = next_xd[i];
      xs_tile[buf * BN + n] = next_xs[i];
    }
  }
}

void main() {
  const uint lid = gl_LocalInvocationID.x;
  const uint row0 = gl_WorkGroupID.x * BM, tok0 = gl_WorkGroupID.y * BN;
  const uint threads_m = BM / TM;
  const uint tm = lid % threads_m, tn = lid / threads_m;
  const uint n_blocks = pc.cols / 32u;

  float acc[TM * TN];
  [[unroll]] for (uint i = 0u; i < TM * TN; ++i) acc[i] = 0.0;

  fetch(0u, row0, tok0);
  put(0u);
  barrier();
  uint buf = 0u;
  for (uint blk = 0u; blk < n_blocks; ++blk) {
    const bool more = blk + 1u < n_blocks;  // uniform
    if (more) fetch(blk + 1u, row0, tok0);
    const uint wq = buf * 8u * BM, xq = buf * 8u * BN;
    int isum[TM * TN];
    [[unroll]] for (uint i = 0u; i < TM * TN; ++i) isum[i] = 0;
#ifdef QUANT_INT8_HALF_MINS
    int qsum[TN];  // each token's int8 sum over the part (Q2_K's mins)
    [[unroll]] for (uint j = 0u; j < TN; ++j) qsum[j] = 0;
#endif
    [[unroll]] for (uint u = 0u; u < 8u; ++u) {
      uint a[TM], b[TN];
      [[unroll]] for (uint i = 0u; i < TM; ++i) a[i] = wq_tile[wq + u * BM + tm + i * threads_m];
      [[unroll]] for (uint j = 0u; j < TN; ++j) b[j] = xq_tile[xq + u * BN + tn + j * (BN / TN)];
      [[unroll]] for (uint i = 0u; i < TM; ++i)
        [[unroll]] for (uint j = 0u; j < TN; ++j) isum[i * TN + j] += sdot_4x8_packed(a[i], b[j], 0);
#ifdef QUANT_INT8_HALF_MINS
      [[unroll]] for (uint j = 0u; j < TN; ++j) qsum[j] += sdot_4x8_packed(b[j], INT8_ONES, 0);
#endif
      // The end of a part of words sharing one weight scale (int_dot.glsl: the whole sub-block,
      // or each half for the 16-element-scale types); constant per unrolled u.
      if ((u + 1u) % INT8_PART_WORDS == 0u) {
        const uint part = u / INT8_PART_WORDS;
        [[unroll]] for (uint i = 0u; i < TM; ++i) {
          const uint m = buf * BM + tm + i * threads_m;
          const float dw = wd_tile[m], ow = wo_tile[m];
          [[unroll]] for (uint j = 0u; j < TN; ++j) {
            const uint n = buf * BN + tn + j * (BN / TN);
#ifdef QUANT_INT8_HALF_MINS
            acc[i * TN + j] += int_dot_part_min(isum[i * TN + j], qsum[j], part == 0u ? dw : ow,
                                                part == 0u ? wm_tile[m].x : wm_tile[m].y, xd_tile[n]);
#else
            acc[i * TN + j] += int_dot_part(isum[i * TN + j], dw, ow, xd_tile[n], xs_tile[n], part);
#endif
            isum[i * TN + j] = 0;
          }
        }
#ifdef QUANT_INT8_HALF_MINS
        [[unroll]] for (uint j = 0u; j < TN; ++j) qsum[j] = 0;
#endif
      }
    }
    // The other copy was last read by the previous step's products, which the previous barrier
    // ordered before this.
    if (more) put(buf ^ 1u);
    barrier();
    buf ^= 1u;
  }

  [[unroll]] for (uint i = 0u; i < TM; ++i) {
    const uint row = row0 + tm + i * threads_m;
    if (row >= pc.rows) continue;
    const float bias = (pc.flags & 1u) != 0u ? bias_values[pc.row_begin + row] : 0.0;
    [[unroll]] for (uint j = 0u; j < TN; ++j) {
      const uint tok = tok0 + tn + j * (BN / TN);
      if (tok < pc.n_tokens) {
        const uint at = tok * pc.y_stride + pc.row_begin + row;
        const float v = acc[i * TN + j] + bias;
        y_values[at] = (pc.flags & 2u) != 0u ? y_values[at] + v : v;
      }
    }
  }
}
