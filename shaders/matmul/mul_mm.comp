#version 450
// Tiled matrix-matrix product for larger batches: y[t][r] = sum_c W[r][c] * x[t][c] (+ bias[r]).
// A workgroup computes a BM (weight rows) x BN (tokens) tile of y. Per step of BK columns it
// dequantizes the BM x BK weight tile into shared memory once (quant.glsl's dequant8) and copies
// the BN x BK activation tile, then each thread accumulates TM x TN outputs from shared memory.
// Ragged shapes: rows, tokens and columns past the matrix are zero-filled in the tiles.
// Inputs:  weights (binding 0) rows of row_bytes bytes from byte weight_base; x (binding 1) f32
//          [n_tokens][cols] read as vec4 (cols % 8 == 0); bias (binding 3) f32 [rows] if flags & 1; flags & 2: y += product instead of y =.
// Output:  y (binding 2) f32 [n_tokens][y_stride], rows row_begin.. of it (the weight binding
//          holds rows row_begin..row_begin+rows-1 when a matrix exceeds one binding).
// Dispatch: (div_up(rows, BM), div_up(n_tokens, BN), 1).
// Specialization: 0 = WG, 1 = BM, 2 = BN, 3 = BK (multiple of 8), 4 = TM, 5 = TN, with
// WG == (BM / TM) * (BN / TN). Shared memory: 8 * BK * (BM + BN) bytes (two copies of each
// tile; 32 KiB at 64 x 64 x 32, lavapipe's limit).
#include "types.glsl"

layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 1) const uint BM = 64;
layout(constant_id = 2) const uint BN = 64;
layout(constant_id = 3) const uint BK = 32;
layout(constant_id = 4) const uint TM = 4;
layout(constant_id = 5) const uint TN = 4;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Weights { uint weight_words[]; };
layout(std430, binding = 0) readonly buffer WeightsWide { uvec2 weight_dwords[]; };  // the same buffer, 64-bit loads
layout(std430, binding = 1) readonly buffer X { vec4 x_values[]; };
// Read too when ACCUMULATE is set (y += W x, e.g. a residual add fused into its producer).
layout(std430, binding = 2) buffer Y { float y_values[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias_values[]; };
layout(push_constant) uniform Push {
  uint cols, rows, n_tokens, weight_base, row_bytes, flags;  // flags: 1 bias, 2 accumulate
  uint y_stride, row_begin;  // rows of y; first row of this dispatch (matrices split by binding range)
} pc;

#define WEIGHT_WORD(i) weight_words[(i)]
#define WEIGHT_UVEC2(i) weight_dwords[(i)]
#define QUANT_ROW_COLS pc.cols
#include "quant.glsl"

// k-major so the inner product loop reads consecutive rows / tokens across threads. Two copies
// of each (copy `buf` at offset buf * its size): while the step in one is multiplied, the next
// step's values are fetched into registers (issued before the products, so their latency hides
// behind them) and stored into the other; one barrier per step.
const uint W_TILE = BK * BM, X_TILE = BK * BN;
shared float w_tile[2u * W_TILE];
shared float x_tile[2u * X_TILE];

// The next step's operands, per invocation: BM rows x BK/8 runs of 8 weights, BN tokens x BK/4
// vec4 activations.
const uint W_LOADS = (BM * (BK / 8u) + WG - 1u) / WG, X_LOADS = (BN * (BK / 4u) + WG - 1u) / WG;
vec4 next_w[W_LOADS][2];
vec4 next_x[X_LOADS];

void fetch(uint k0, uint row0, uint tok0) {
  const uint lid = gl_LocalInvocationID.x;
  [[unroll]] for (uint i = 0u; i < W_LOADS; ++i) {
    const uint idx = lid + i * WG;
    const uint m = idx / (BK / 8u), kg = (idx % (BK / 8u)) * 8u;
    const uint row = row0 + m, e = k0 + kg;
    next_w[i][0] = next_w[i][1] = vec4(0.0);
    if (idx < BM * (BK / 8u) && row < pc.rows && e < pc.cols)
      dequant8(quant_block(pc.weight_base + row * pc.row_bytes, e / QK), e % QK, next_w[i][0], next_w[i][1]);
  }
  [[unroll]] for (uint i = 0u; i < X_LOADS; ++i) {
    const uint idx = lid + i * WG;
    const uint n = idx / (BK / 4u), kq = (idx % (BK / 4u)) * 4u;
    const uint tok = tok0 + n, e = k0 + kq;
    next_x[i] = idx < BN * (BK / 4u) && tok < pc.n_tokens && e < pc.cols ? x_values[(tok * pc.cols + e) / 4u]
                                                                        : vec4(0.0);
  }
}

void put(uint buf) {
  const uint lid = gl_LocalInvocationID.x;
  [[unroll]] for (uint i = 0u; i < W_LOADS; ++i) {
    const uint idx = lid + i * WG;
    if (idx >= BM * (BK / 8u)) continue;
    const uint m = idx / (BK / 8u), kg = (idx % (BK / 8u)) * 8u;
    [[unroll]] for (uint q = 0u; q < 8u; ++q) w_tile[buf * W_TILE + (kg + q) * BM + m] = next_w[i][q / 4u][q % 4u];
  }
  [[unroll]] for (uint i = 0u; i < X_LOADS; ++i) {
    const uint idx = lid + i * WG;
    if (idx >= BN * (BK / 4u)) continue;
    const uint n = idx / (BK / 4u), kq = (idx % (BK / 4u)) * 4u;
    [[unroll]] for (uint q = 0u; q < 4u; ++q) x_tile[buf * X_TILE + (kq + q) * BN + n] = next_x[i][q];
  }
}

void main() {
  const uint lid = gl_LocalInvocationID.x;
  const uint row0 = gl_WorkGroupID.x * BM, tok0 = gl_WorkGroupID.y * BN;
  const uint threads_m = BM / TM;
  const uint tm = lid % threads_m, tn = lid / threads_m;

  float acc[TM * TN];
  [[unroll]] for (uint i = 0u; i < TM * TN; ++i) acc[i] = 0.0;

  fetch(0u, row0, tok0);
  put(0u);
  barrier();
  uint buf = 0u;
  for (uint k0 = 0u; k0 < pc.cols; k0 += BK) {
    const bool more = k0 + BK < pc.cols;  // uniform
    if (more) fetch(k0 + BK, row0, tok0);
    const uint w_at = buf * W_TILE, x_at = buf * X_TILE;
    for (uint k = 0u; k < BK; ++k) {
      float a[TM], b[TN];
      [[unroll]] for (uint i = 0u; i < TM; ++i) a[i] = w_tile[w_at + k * BM + tm + i * threads_m];
      [[unroll]] for (uint j = 0u; j < TN; ++j) b[j] = x_tile[x_at + k * BN + tn + j * (BN / TN)];
      [[unroll]] for (uint i = 0u; i < TM; ++i)
        [[unroll]] for (uint j = 0u; j < TN; ++j) acc[i * TN + j] += a[i] * b[j];
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
