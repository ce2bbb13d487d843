#version 450
// Grouped (prefill) path: tiled matrix-matrix products over each expert's group of rows.
// Each workgroup computes a TM x TN output tile: a row tile of one expert's grouped rows and a
// column tile of TN weight rows, numbered expert-major so the row tiles that read the same
// weights run together (moe_row_tiles.glsl; group_info's tile_start, found by binary search).
// Dispatch: (ceil(n_entries/TM) + min(n_expert, n_entries) row tiles, the worst case,
// div_up(rows, TN), 1); workgroups past the real tiles exit at once, so counts are never read
// back by the CPU.
// modes (push):
//   0  h[p] = SiLU(Wg_e a_p) * (Wu_e a_p)   a_p = x[grouped_entry[p] / k]   (fused gate+up)
//   1  h[p] = SiLU(Wg_e a_p)                 (gate and up of different types: two passes)
//   2  h[p] *= Wu_e a_p                      (weights bound at binding 1)
//   3  y[p] = Wd_e h[p]                      (down; a_p = row p of h itself)
// Inputs:  binding 0 Wg or Wd, binding 1 Wu (any bound buffer in modes 1, 3), both uint words in
//          WEIGHT_<TYPE> layout, expert e at e * stride bytes; binding 2 activations a (f32,
//          rows of `cols`); binding 3 grouped_entry; binding 4 group_info (moe_group).
// Output:  binding 5, [n_entries][rows] f32 in grouped order.
// Expert window: only experts [expert_first, expert_end) are bound (expert_first at base);
// a tensor larger than one binding runs as several dispatches (runtime/ops/moe_experts.cpp).
// Specialization: 0 = WG, 1 = TM, 2 = TN, 3 = TK (WG == (TM/4) * (TN/2), TK % 8 == 0).
// Shared memory: 8 * (TM + 2 TN) * (TK + 1) bytes (two copies of each tile).
#include "types.glsl"

layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 1) const uint TM = 32;
layout(constant_id = 2) const uint TN = 32;
layout(constant_id = 3) const uint TK = 32;
layout(local_size_x_id = 0) in;

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

const uint MR = 4u, NR = 2u;  // per-thread micro-tile: WG == (TM / MR) * (TN / NR)
const uint KS = TK + 1u;       // padded shared row stride
// Two copies of each tile (copy `buf` at offset buf * its size): while the step in one is
// multiplied, the next step's values are fetched into registers (issued before the products, so
// their latency hides behind them) and stored into the other; one barrier per step.
const uint ACT_TILE = TM * KS, W_TILE = TN * KS;
shared float tile_act[2u * ACT_TILE];
shared float tile_a[2u * W_TILE];
shared float tile_b[2u * W_TILE];

float silu(float v) { return v / (1.0 + exp(-v)); }

// The next step's operands, per invocation: TM x TK activations, TN x TK weights in runs of 8.
const uint ACT_LOADS = (TM * TK + WG - 1u) / WG, W_LOADS = (TN * (TK / 8u) + WG - 1u) / WG;
float next_act[ACT_LOADS];
vec4 next_a[W_LOADS][2], next_b[W_LOADS][2];

void fetch(uint k0, uint row_begin, uint rows_valid, uint n0, uint base_a, uint base_b, bool use_a, bool use_b) {
  const uint lid = gl_LocalInvocationID.x;
  [[unroll]] for (uint i = 0u; i < ACT_LOADS; ++i) {
    const uint idx = lid + i * WG;
    const uint m = idx / TK, kk = idx % TK;
    next_act[i] = 0.0;
    if (idx < TM * TK && m < rows_valid && k0 + kk < pc.cols) {
      const uint p = row_begin + m;
      const uint src = pc.mode == 3u ? p : grouped_entry[p] / pc.k;
      next_act[i] = act[src * pc.cols + k0 + kk];
    }
  }
  [[unroll]] for (uint i = 0u; i < W_LOADS; ++i) {
    const uint idx = lid + i * WG;
    const uint n = idx / (TK / 8u), q = (idx % (TK / 8u)) * 8u;
    const uint row = n0 + n, col = k0 + q;
    const bool inside = idx < TN * (TK / 8u) && row < pc.rows && col < pc.cols;
    next_a[i][0] = next_a[i][1] = next_b[i][0] = next_b[i][1] = vec4(0.0);
    if (inside && use_a) weight8(0u, base_a + row * pc.row_bytes, col, next_a[i][0], next_a[i][1]);
    if (inside && use_b) weight8(1u, base_b + row * pc.row_bytes, col, next_b[i][0], next_b[i][1]);
  }
}

void put(uint buf) {
  const uint lid = gl_LocalInvocationID.x;
  [[unroll]] for (uint i = 0u; i < ACT_LOADS; ++i) {
    const uint idx = lid + i * WG;
    if (idx < TM * TK) tile_act[buf * ACT_TILE + (idx / TK) * KS + idx % TK] = next_act[i];
  }
  [[unroll]] for (uint i = 0u; i < W_LOADS; ++i) {
    const uint idx = lid + i * WG;
    if (idx >= TN * (TK / 8u)) continue;
    const uint n = idx / (TK / 8u), q = (idx % (TK / 8u)) * 8u;
    const uint at = buf * W_TILE + n * KS + q;
    [[unroll]] for (uint c = 0u; c < 8u; ++c) {
      tile_a[at + c] = next_a[i][c / 4u][c % 4u];
      tile_b[at + c] = next_b[i][c / 4u][c % 4u];
    }
  }
}

void main() {
  const uint lid = gl_LocalInvocationID.x;
  uint e, row_begin, rows_valid, col_tile;
  // Past the real tiles: the whole workgroup leaves (uniform, so no barrier is split).
  if (!moe_grid_tile(gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x, pc.n_expert, TM,
                     gl_NumWorkGroups.y, e, row_begin, rows_valid, col_tile))
    return;
  const uint n0 = col_tile * TN;
  if (e < pc.expert_first || e >= pc.expert_end) return;  // uniform per workgroup
  const uint base_a = pc.base_a + (e - pc.expert_first) * pc.stride_a;
  const uint base_b = pc.base_b + (e - pc.expert_first) * pc.stride_b;
  const bool use_a = pc.mode != 2u, use_b = pc.mode == 0u || pc.mode == 2u;

  // Each thread owns an MR x NR micro-tile of the output (rows tm*MR.., columns tn*NR..), so one
  // shared-memory read feeds several FMAs.
  const uint tm = lid / (TN / NR), tn = lid % (TN / NR);
  // Micro-tiles wholly past the tile's valid rows skip the products (their outputs are never
  // stored) but still load and pass the barriers: an expert's nearly empty tail tile costs its
  // loads and the warps of its few rows.
  const bool live = tm * MR < rows_valid;
  float acc_a[MR * NR], acc_b[MR * NR];
  [[unroll]] for (uint i = 0u; i < MR * NR; ++i) { acc_a[i] = 0.0; acc_b[i] = 0.0; }

  fetch(0u, row_begin, rows_valid, n0, base_a, base_b, use_a, use_b);
  put(0u);
  barrier();
  uint buf = 0u;
  for (uint k0 = 0u; k0 < pc.cols; k0 += TK) {
    const bool more = k0 + TK < pc.cols;  // uniform
    if (more) fetch(k0 + TK, row_begin, rows_valid, n0, base_a, base_b, use_a, use_b);
    const uint act_at = buf * ACT_TILE, w_at = buf * W_TILE;
    // Not unrolled: lavapipe's compile time of this shader grows ~10x when it is.
    [[dont_unroll]] for (uint kk = 0u; live && kk < TK; ++kk) {
      float av[MR];
      [[unroll]] for (uint r = 0u; r < MR; ++r) av[r] = tile_act[act_at + (tm * MR + r) * KS + kk];
      [[unroll]] for (uint c = 0u; c < NR; ++c) {
        const uint at = w_at + (tn * NR + c) * KS + kk;
        const float wa = tile_a[at], wb = tile_b[at];
        [[unroll]] for (uint r = 0u; r < MR; ++r) {
          acc_a[r * NR + c] += av[r] * wa;
          acc_b[r * NR + c] += av[r] * wb;
        }
      }
    }
    // The other copy was last read by the previous step's products, which the previous barrier
    // ordered before this.
    if (more) put(buf ^ 1u);
    barrier();
    buf ^= 1u;
  }

  [[unroll]] for (uint i = 0u; i < MR * NR; ++i) {
    const uint m = tm * MR + i / NR, n = tn * NR + i % NR;
    if (m >= rows_valid || n0 + n >= pc.rows) continue;
    const uint out_index = (row_begin + m) * pc.rows + n0 + n;
    if (pc.mode == 0u) out_values[out_index] = silu(acc_a[i]) * acc_b[i];
    else if (pc.mode == 1u) out_values[out_index] = silu(acc_a[i]);
    else if (pc.mode == 2u) out_values[out_index] *= acc_b[i];
    else out_values[out_index] = acc_a[i];
  }
}
