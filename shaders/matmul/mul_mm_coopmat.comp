#version 450
// Cooperative-matrix (GL_NV_cooperative_matrix, tensor cores) matrix-matrix product:
//   y[t][r] = sum_c W[r][c] * x[t][c] (+ bias[r]), fp16 operands, fp32 accumulation.
// A workgroup of 4 subgroups of 32 (the op checks the device's subgroup size) computes a
// 64 (rows) x 64 (tokens) tile: subgroup s owns rows 16s..16s+15 and all 4 token columns of 16x16
// fragments. Per 32-column step the weight tile is dequantized (quant.glsl's dequant8) into
// shared fp16 and the activation tile converted to fp16, one step ahead of the products (two
// copies of each tile); the result goes through shared memory so ragged edges and the bias are
// handled with plain bounds checks. Shared memory: 2 x (4 + 4) KiB operands + 16 KiB results =
// 32 KiB, lavapipe's limit (it runs the emulated build in the tests; NVIDIA allows 48 KiB).
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
layout(std430, binding = 0) readonly buffer WeightsWide { uvec2 weight_dwords[]; };  // the same buffer, 64-bit loads
layout(std430, binding = 1) readonly buffer X { vec4 x_values[]; };
// Read too when ACCUMULATE is set (y += W x, e.g. a residual add fused into its producer).
layout(std430, binding = 2) buffer Y { float y_values[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias_values[]; };
layout(push_constant) uniform Push {
  uint cols, rows, n_tokens, weight_base, row_bytes, flags;  // flags: 1 bias, 2 accumulate
  uint y_stride, row_begin;
} pc;

#define WEIGHT_WORD(i) weight_words[(i)]
#define WEIGHT_UVEC2(i) weight_dwords[(i)]
#define QUANT_ROW_COLS pc.cols
#include "quant.glsl"

// Two of each operand tile (ping-pong): while the subgroups multiply step s's tiles, the next
// step's are fetched from memory into registers (issued before the products, so their latency
// hides behind them) and stored into the other copy; one barrier per 32-column step.
const uint W_TILE = BM * BK, X_TILE = BN * BK;
shared float16_t w_tile[2 * W_TILE];  // row-major: [m][k]
shared float16_t x_tile[2 * X_TILE];  // [n][k]: column-major K x N for the B operand
shared float c_tile[BM * BN];         // column-major M x N: [n][m]

// The next step's operands, per invocation: weights as runs of 8, activations as vec4s.
const uint W_LOADS = BM * (BK / 8u) / 128u, X_LOADS = BN * (BK / 4u) / 128u;
vec4 next_w[W_LOADS][2];
vec4 next_x[X_LOADS];

void fetch(uint k0, uint row0, uint tok0) {
  const uint lid = gl_LocalInvocationID.x;
  [[unroll]] for (uint i = 0u; i < W_LOADS; ++i) {
    const uint idx = lid + i * 128u;
    const uint m = idx / (BK / 8u), kg = (idx % (BK / 8u)) * 8u;
    const uint row = row0 + m, e = k0 + kg;
    next_w[i][0] = vec4(0.0);
    next_w[i][1] = vec4(0.0);
    if (row < pc.rows && e < pc.cols)
      dequant8(quant_block(pc.weight_base + row * pc.row_bytes, e / QK), e % QK, next_w[i][0], next_w[i][1]);
  }
  [[unroll]] for (uint i = 0u; i < X_LOADS; ++i) {
    const uint idx = lid + i * 128u;
    const uint n = idx / (BK / 4u), kq = (idx % (BK / 4u)) * 4u;
    const uint tok = tok0 + n, e = k0 + kq;
    next_x[i] = tok < pc.n_tokens && e < pc.cols ? x_values[(tok * pc.cols + e) / 4u] : vec4(0.0);
  }
}

void put(uint buf) {
  const uint lid = gl_LocalInvocationID.x;
  [[unroll]] for (uint i = 0u; i < W_LOADS; ++i) {
    const uint idx = lid + i * 128u;
    const uint m = idx / (BK / 8u), kg = (idx % (BK / 8u)) * 8u;
    [[unroll]] for (uint q = 0u; q < 8u; ++q)
      w_tile[buf * W_TILE + m * BK + kg + q] = float16_t(next_w[i][q / 4u][q % 4u]);
  }
  [[unroll]] for (uint i = 0u; i < X_LOADS; ++i) {
    const uint idx = lid + i * 128u;
    const uint n = idx / (BK / 4u), kq = (idx % (BK / 4u)) * 4u;
    [[unroll]] for (uint q = 0u; q < 4u; ++q) x_tile[buf * X_TILE + n * BK + kq + q] = float16_t(next_x[i][q]);
  }
}

void main() {
  const uint lid = gl_LocalInvocationID.x;
  const uint row0 = gl_WorkGroupID.x * BM, tok0 = gl_WorkGroupID.y * BN;
  const uint sg = COOP_SUBGROUP;  // 0..3: fragment row

  COOP_LOCALS(1, 4, 4);  // A: the subgroup's weight rows; B, C: the 4 token columns
  [[unroll]] for (uint j = 0u; j < 4u; ++j) { COOP_ZERO(j); }

  fetch(0u, row0, tok0);
  put(0u);
  barrier();
  uint buf = 0u;
  for (uint k0 = 0u; k0 < pc.cols; k0 += BK) {
    const bool more = k0 + BK < pc.cols;  // uniform
    if (more) fetch(k0 + BK, row0, tok0);
    const uint w_at = buf * W_TILE + sg * FRAG * BK, x_at = buf * X_TILE;
    [[unroll]] for (uint kf = 0u; kf < BK; kf += FRAG) {
      COOP_LOAD_A(0, w_tile, w_at + kf, BK, false);
      [[unroll]] for (uint j = 0u; j < 4u; ++j) {
        COOP_LOAD_B(j, x_tile, x_at + j * FRAG * BK + kf, BK, true);
        COOP_MMA(j, w_tile, 0, x_tile, j);
      }
    }
    // The other copy was last read by the previous step's products, which the previous barrier
    // ordered before this.
    if (more) put(buf ^ 1u);
    barrier();
    buf ^= 1u;
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
