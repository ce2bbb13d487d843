#version 450
// Grouped (prefill) path on cooperative matrices (common/coopmat.glsl: GL_NV_cooperative_matrix,
// or its COOPMAT_EMULATE build in the tests): moe_mul_mm's products over each expert's row tiles,
// with fp16 operands and fp32 accumulation.
// Each workgroup computes a TM (grouped rows) x TN (64 weight rows) output tile: a row tile of
// one expert's grouped rows and a column tile of 64 weight rows, numbered expert-major
// (moe_row_tiles.glsl; TM is moe_group's tile_rows, 16 x M_FRAGS: 32, or 64 where experts have
// many rows, Mixtral's ~128 at 512 tokens, so each dequantized weight tile serves twice the
// rows). Workgroups past the real tile count leave at once (the grid is sized for the worst
// case, so counts are never read back).
// 128 invocations = 4 subgroups of 32; subgroup s owns weight rows 16s..16s+15 of the tile and
// all M_FRAGS 16-row fragments of the grouped rows: C = A (activations, TM x K) * B (weights^T,
// K x 64). Fragments wholly past the tile's valid rows skip their products (uniform).
// Per 32-column step the weight tiles are dequantized (moe_weights.glsl's weight8) into shared
// fp16 and the activation rows gathered and converted to fp16, one step ahead of the products
// (two copies of each tile); results go through shared memory 32 rows at a time, so ragged
// tiles and the modes are plain bounds-checked stores.
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
// Specialization: 0 = M_FRAGS (2 or 4).
// Shared memory: 2 x (TM x 64 B activations + 8 KiB weights) + 8 KiB results: 28 KiB at
// TM 32, 32 KiB at TM 64 (lavapipe, which runs the emulated build in the tests, allows 32 KiB;
// NVIDIA 48 KiB).
#include "coopmat.glsl"
#include "types.glsl"

layout(constant_id = 0) const uint M_FRAGS = 2;
layout(local_size_x = 128) in;
const uint WG = 128u, TN = 64u, TK = 32u, FRAG = 16u;
const uint TM = FRAG * M_FRAGS, MAX_FRAGS = 4u;
const uint OUT_ROWS = 32u;  // rows of results staged through c_tile at a time

layout(std430, binding = 0) readonly buffer WeightsA { uint weights_a[]; };
layout(std430, binding = 0) readonly buffer WeightsAWide { uvec2 weights_a_wide[]; };
layout(std430, binding = 1) readonly buffer WeightsB { uint weights_b[]; };
layout(std430, binding = 1) readonly buffer WeightsBWide { uvec2 weights_b_wide[]; };
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

// Two of each operand tile (ping-pong): while the subgroups multiply step s's tiles, the next
// step's are fetched from memory into registers (issued before the products, so their latency
// hides behind them) and stored into the other copy; one barrier per 32-column step.
const uint ACT_TILE = TM * TK, W_TILE = TN * TK;
shared float16_t act_tile[2 * ACT_TILE];  // row-major [m][k]: the A operand
shared float16_t wa_tile[2 * W_TILE];     // [n][k]: column-major K x N for the B operand
shared float16_t wb_tile[2 * W_TILE];
shared float c_tile[OUT_ROWS * TN];       // row-major [m][n]: one product's results, 32 rows

float silu(float v) { return v / (1.0 + exp(-v)); }

// The next step's operands, per invocation: activations TM x TK as vec4s, weights TN x TK as
// runs of 8 (a and b).
const uint ACT_LOADS = TM * (TK / 4u) / WG, W_LOADS = TN * (TK / 8u) / WG;
vec4 next_act[ACT_LOADS];
vec4 next_wa[W_LOADS][2], next_wb[W_LOADS][2];

void fetch(uint k0, uint row_begin, uint rows_valid, uint n0, uint base_a, uint base_b, bool use_a, bool use_b) {
  const uint lid = gl_LocalInvocationID.x;
  [[unroll]] for (uint i = 0u; i < ACT_LOADS; ++i) {
    const uint idx = lid + i * WG;
    const uint m = idx / (TK / 4u), kq = (idx % (TK / 4u)) * 4u;
    vec4 v = vec4(0.0);
    if (m < rows_valid && k0 + kq < pc.cols) {  // cols % 8 == 0: all 4 inside the row or none
      const uint p = row_begin + m;
      const uint src = pc.mode == 3u ? p : grouped_entry[p] / pc.k;
      const uint at = src * pc.cols + k0 + kq;
      v = vec4(act[at], act[at + 1u], act[at + 2u], act[at + 3u]);
    }
    next_act[i] = v;
  }
  [[unroll]] for (uint i = 0u; i < W_LOADS; ++i) {
    const uint idx = lid + i * WG;
    const uint n = idx / (TK / 8u), kg = (idx % (TK / 8u)) * 8u;
    const uint row = n0 + n, col = k0 + kg;
    const bool inside = row < pc.rows && col < pc.cols;
    next_wa[i][0] = vec4(0.0);
    next_wa[i][1] = vec4(0.0);
    next_wb[i][0] = vec4(0.0);
    next_wb[i][1] = vec4(0.0);
    if (inside && use_a) weight8(0u, base_a + row * pc.row_bytes, col, next_wa[i][0], next_wa[i][1]);
    if (inside && use_b) weight8(1u, base_b + row * pc.row_bytes, col, next_wb[i][0], next_wb[i][1]);
  }
}

void put(uint buf) {
  const uint lid = gl_LocalInvocationID.x;
  [[unroll]] for (uint i = 0u; i < ACT_LOADS; ++i) {
    const uint idx = lid + i * WG;
    const uint m = idx / (TK / 4u), kq = (idx % (TK / 4u)) * 4u;
    [[unroll]] for (uint q = 0u; q < 4u; ++q) act_tile[buf * ACT_TILE + m * TK + kq + q] = float16_t(next_act[i][q]);
  }
  [[unroll]] for (uint i = 0u; i < W_LOADS; ++i) {
    const uint idx = lid + i * WG;
    const uint n = idx / (TK / 8u), kg = (idx % (TK / 8u)) * 8u;
    const uint at = buf * W_TILE + n * TK + kg;
    [[unroll]] for (uint q = 0u; q < 8u; ++q) {
      wa_tile[at + q] = float16_t(next_wa[i][q / 4u][q % 4u]);
      wb_tile[at + q] = float16_t(next_wb[i][q / 4u][q % 4u]);
    }
  }
}

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

  // Fragments wholly past the tile's valid rows (an expert's tail: Qwen3-30B-A3B at 512 tokens
  // has ~32 rows an expert) skip their products, whose rows are never stored; uniform over the
  // workgroup, as every COOP_* use must be.
  const uint live_frags = min(M_FRAGS, (rows_valid + FRAG - 1u) / FRAG);
  // A: the fragment being multiplied; B: a, b weights; C: [f] a's, [M_FRAGS + f] b's. Sized for
  // the largest M_FRAGS (a constant length, the form drivers know best); with 2 the last four
  // are never touched.
  COOP_LOCALS(1, 2, 2u * MAX_FRAGS);
  [[unroll]] for (uint c = 0u; c < 2u * M_FRAGS; ++c) { COOP_ZERO(c); }

  fetch(0u, row_begin, rows_valid, n0, base_a, base_b, use_a, use_b);
  put(0u);
  barrier();
  uint buf = 0u;
  for (uint k0 = 0u; k0 < pc.cols; k0 += TK) {
    const bool more = k0 + TK < pc.cols;  // uniform
    if (more) fetch(k0 + TK, row_begin, rows_valid, n0, base_a, base_b, use_a, use_b);
    const uint act_at = buf * ACT_TILE, w_at = buf * W_TILE + sg * FRAG * TK;
    [[unroll]] for (uint kf = 0u; kf < TK; kf += FRAG) {
      if (use_a) COOP_LOAD_B(0, wa_tile, w_at + kf, TK, true);
      if (use_b) COOP_LOAD_B(1, wb_tile, w_at + kf, TK, true);
      [[unroll]] for (uint f = 0u; f < M_FRAGS; ++f) {
        if (f < live_frags) {
          COOP_LOAD_A(0, act_tile, act_at + f * FRAG * TK + kf, TK, false);
          if (use_a) COOP_MMA(f, act_tile, 0, wa_tile, 0);
          if (use_b) COOP_MMA(M_FRAGS + f, act_tile, 0, wb_tile, 1);
        }
      }
    }
    // The other copy was last read by the previous step's products, which the previous barrier
    // ordered before this.
    if (more) put(buf ^ 1u);
    barrier();
    buf ^= 1u;
  }

  // Per 32 rows, one product's results at a time through c_tile: a's into registers, then b's.
  const uint OUT_PER = OUT_ROWS * TN / WG;
  [[unroll]] for (uint chunk = 0u; chunk < M_FRAGS / 2u; ++chunk) {
    const uint m0 = chunk * OUT_ROWS;
    if (m0 >= rows_valid) break;  // uniform
    float a_values[OUT_PER];
    [[unroll]] for (uint i = 0u; i < OUT_PER; ++i) a_values[i] = 0.0;
    if (use_a) {
      [[unroll]] for (uint half_m = 0u; half_m < 2u; ++half_m) {
        COOP_STORE(2u * chunk + half_m, c_tile, half_m * FRAG * TN + sg * FRAG, TN, false);
      }
      barrier();
      [[unroll]] for (uint i = 0u; i < OUT_PER; ++i) a_values[i] = c_tile[lid + i * WG];
      barrier();
    }
    if (use_b) {
      [[unroll]] for (uint half_m = 0u; half_m < 2u; ++half_m) {
        COOP_STORE(M_FRAGS + 2u * chunk + half_m, c_tile, half_m * FRAG * TN + sg * FRAG, TN, false);
      }
      barrier();
    }
    [[unroll]] for (uint i = 0u; i < OUT_PER; ++i) {
      const uint idx = lid + i * WG;
      const uint m = m0 + idx / TN, n = idx % TN;
      if (m >= rows_valid || n0 + n >= pc.rows) continue;
      const uint out_index = (row_begin + m) * pc.rows + n0 + n;
      const float a = a_values[i], b = use_b ? c_tile[idx] : 0.0;
      if (pc.mode == 0u) out_values[out_index] = silu(a) * b;
      else if (pc.mode == 1u) out_values[out_index] = silu(a);
      else if (pc.mode == 2u) out_values[out_index] *= b;
      else out_values[out_index] = a;
    }
    barrier();  // the next chunk's stores into c_tile after these reads
  }
}
