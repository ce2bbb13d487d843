#version 450
// Grouped (prefill) path on the integer dot product: moe_mul_mm's tiles over each expert's rows,
// with activations quantized to int8 per 32 elements (matmul/quantize_q8.comp) and weights of
// the int8-affine types (quant.glsl's QUANT_HAS_INT8; Q3_K and Q6_K a scale per 16-element
// half), the algebra in common/int_dot.glsl.
// Each workgroup computes a TM x TN output tile: a row tile of one expert's grouped rows and a
// column tile of TN weight rows, numbered expert-major (moe_row_tiles.glsl; TM is moe_group's
// tile_rows). Workgroups past the real tile count leave at once (the grid is sized for the
// worst case).
// modes (push), a_p the int8 activation row of grouped row p:
//   0  h[p] = SiLU(Wa_e a_p) * (Wb_e a_p)   a_p = xq row grouped_entry[p] / k   (fused gate+up)
//   1  h[p] = SiLU(Wa_e a_p)                 (gate and up of different types: two passes)
//   2  h[p] *= Wa_e a_p                      (up bound at binding 0 here, unlike moe_mul_mm)
//   3  y[p] = Wa_e a_p                       (down; a_p = row p of the quantized h itself)
// Inputs:  binding 0 Wa, binding 1 Wb (read in mode 0 only; any bound buffer otherwise), uint
//          words in WEIGHT_<TYPE> layout, expert e at base + e * stride bytes;
//          binding 2 xq u32 [rows of activations][cols / 4] (4 int8 each), bindings 3 xd and
//          4 xs f32 [rows][cols / 32] (quantize_q8's scale and scaled block sum);
//          binding 5 grouped_entry, binding 6 group_info (moe_group).
// Output:  binding 7, [n_entries][rows] f32 in grouped order; or, with OUT_Q8 (mode 0 only),
//          h as the down product's int8 activations instead, exactly what matmul/quantize_q8.comp
//          makes of the f32 h (same values, same rule), so no quantization pass and barrier sit
//          between gate+up and down: bindings 8 hq u32 [n_entries][rows / 4], 9 hd and 10 hs
//          f32 [n_entries][rows / 32] (rows % 32 == 0; binding 7 is not written).
// Expert window: only experts [expert_first, expert_end) are bound (expert_first at base);
// a tensor larger than one binding runs as several dispatches (runtime/ops/moe_experts.cpp).
// Dispatch: (worst-case row tiles, div_up(rows, TN), 1). cols % 32 == 0.
// Specialization: 0 = WG, 1 = TM, 2 = TN, 3 = KB (32-column sub-blocks per step), 4 = OUT_Q8,
// WG == (TM / 4) * (TN / 4); with OUT_Q8 also TN % 32 == 0 and TM <= 32 KB (the output tile is
// staged in the weight tiles). Shared memory: 8 * KB * (10 TM + 20 TN) bytes (two copies), and
// 32 * KB * TN more for Q2_K's half mins.
#include "types.glsl"
#include "q8_block.glsl"

layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 1) const uint TM = 32;
layout(constant_id = 2) const uint TN = 64;
layout(constant_id = 3) const uint KB = 2;
layout(constant_id = 4) const bool OUT_Q8 = false;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer WeightsA { uint weights_a[]; };
layout(std430, binding = 0) readonly buffer WeightsAWide { uvec2 weights_a_wide[]; };
layout(std430, binding = 1) readonly buffer WeightsB { uint weights_b[]; };
layout(std430, binding = 1) readonly buffer WeightsBWide { uvec2 weights_b_wide[]; };
layout(std430, binding = 2) readonly buffer Xq { uint xq_words[]; };
layout(std430, binding = 3) readonly buffer Xd { float xd_values[]; };
layout(std430, binding = 4) readonly buffer Xs { float xs_values[]; };
layout(std430, binding = 5) readonly buffer GroupedEntry { uint grouped_entry[]; };
layout(std430, binding = 6) readonly buffer Group { uint group_info[]; };
layout(std430, binding = 7) buffer Out { float out_values[]; };
layout(std430, binding = 8) writeonly buffer Hq { uint hq_words[]; };
layout(std430, binding = 9) writeonly buffer Hd { float hd_values[]; };
layout(std430, binding = 10) writeonly buffer Hs { float hs_values[]; };
layout(push_constant) uniform Push {
  uint cols, rows, k, n_expert;
  uint stride_a, stride_b, row_bytes, mode;
  uint base_a, base_b;  // byte offset of expert expert_first inside the bound ranges
  uint expert_first, expert_end;  // the experts bound: tiles of others are another dispatch's
} pc;

#include "moe_weights.glsl"
#include "int_dot.glsl"
#include "moe_row_tiles.glsl"

// One matrix's int8 words and sub-block affine through moe_weights.glsl's buffer selector.
uvec2 weight_int8x8(uint which, uint row_byte, uint col) {
  moe_weight_select = which;
  return row_int8x8(row_byte, col);
}
void weight_affine32(uint which, uint row_byte, uint col, out float scale, out float offset) {
  moe_weight_select = which;
  row_affine32(row_byte, col, scale, offset);
}
#ifdef QUANT_INT8_HALF_MINS
vec2 weight_mins32(uint which, uint row_byte, uint col) {
  moe_weight_select = which;
  vec2 m;
  row_mins32(row_byte, col, m.x, m.y);
  return m;
}
#endif

const uint MR = 4u, NR = 4u;  // per-thread micro-tile: WG == (TM / MR) * (TN / NR)
// Word-major tiles ([(s * 8 + u) * rows + i]): the inner loop reads consecutive rows across
// threads. Per sub-block s: activation scale/sum per row, weight scale/offset per row.
// Two copies of each (ping-pong, copy `buf` at offset buf * size): while the step in one is
// multiplied, the next step's words are fetched into registers (issued before the products, so
// their latency hides behind them) and stored into the other; one barrier per step.
const uint ACT_Q = 8u * KB * TM, ACT_F = KB * TM, W_Q = 8u * KB * TN, W_F = KB * TN;
shared uint act_q[2u * ACT_Q];
shared float act_d[2u * ACT_F], act_s[2u * ACT_F];
shared uint wa_q[2u * W_Q], wb_q[2u * W_Q];
shared float wa_d[2u * W_F], wa_o[2u * W_F], wb_d[2u * W_F], wb_o[2u * W_F];
#ifdef QUANT_INT8_HALF_MINS
shared vec2 wa_m[2u * W_F], wb_m[2u * W_F];  // Q2_K: each sub-block's two half mins
#endif

float acc_a[MR * NR], acc_b[MR * NR];
uint tm, tn;

// Sub-block s of the staged step in copy `buf` into the accumulators; `with_b` is a constant at
// both call sites, so the second matrix's work folds away where it is not used.
void accumulate_sub_block(uint buf, uint s, bool with_b) {
  int isum_a[MR * NR], isum_b[MR * NR];
  [[unroll]] for (uint i = 0u; i < MR * NR; ++i) { isum_a[i] = 0; isum_b[i] = 0; }
#ifdef QUANT_INT8_HALF_MINS
  int qsum[MR];  // each activation row's int8 sum over the part (Q2_K's mins)
  [[unroll]] for (uint r = 0u; r < MR; ++r) qsum[r] = 0;
#endif
  const uint aq = buf * ACT_Q, wq = buf * W_Q;
  [[unroll]] for (uint u = 0u; u < 8u; ++u) {
    const uint w = s * 8u + u;
    uint av[MR], wa[NR], wb[NR];
    [[unroll]] for (uint r = 0u; r < MR; ++r) av[r] = act_q[aq + w * TM + tm * MR + r];
    [[unroll]] for (uint c = 0u; c < NR; ++c) {
      wa[c] = wa_q[wq + w * TN + tn * NR + c];
      wb[c] = with_b ? wb_q[wq + w * TN + tn * NR + c] : 0u;
    }
    [[unroll]] for (uint r = 0u; r < MR; ++r)
      [[unroll]] for (uint c = 0u; c < NR; ++c) {
        isum_a[r * NR + c] += sdot_4x8_packed(av[r], wa[c], 0);
        if (with_b) isum_b[r * NR + c] += sdot_4x8_packed(av[r], wb[c], 0);
      }
#ifdef QUANT_INT8_HALF_MINS
    [[unroll]] for (uint r = 0u; r < MR; ++r) qsum[r] += sdot_4x8_packed(av[r], INT8_ONES, 0);
#endif
    // The end of a part of words sharing one weight scale (int_dot.glsl: the whole sub-block,
    // or each half for the 16-element-scale types); constant per unrolled u.
    if ((u + 1u) % INT8_PART_WORDS == 0u) {
      const uint part = u / INT8_PART_WORDS;
      [[unroll]] for (uint r = 0u; r < MR; ++r) {
        const uint m = buf * ACT_F + s * TM + tm * MR + r;
        [[unroll]] for (uint c = 0u; c < NR; ++c) {
          const uint n = buf * W_F + s * TN + tn * NR + c, i = r * NR + c;
#ifdef QUANT_INT8_HALF_MINS
          const float ma = part == 0u ? wa_m[n].x : wa_m[n].y, mb = part == 0u ? wb_m[n].x : wb_m[n].y;
          acc_a[i] += int_dot_part_min(isum_a[i], qsum[r], part == 0u ? wa_d[n] : wa_o[n], ma, act_d[m]);
          if (with_b) acc_b[i] += int_dot_part_min(isum_b[i], qsum[r], part == 0u ? wb_d[n] : wb_o[n], mb, act_d[m]);
#else
          acc_a[i] += int_dot_part(isum_a[i], wa_d[n], wa_o[n], act_d[m], act_s[m], part);
          if (with_b) acc_b[i] += int_dot_part(isum_b[i], wb_d[n], wb_o[n], act_d[m], act_s[m], part);
#endif
          isum_a[i] = 0;
          isum_b[i] = 0;
        }
#ifdef QUANT_INT8_HALF_MINS
        qsum[r] = 0;
#endif
      }
    }
  }
}

float silu(float v) { return v / (1.0 + exp(-v)); }

// The next step's words, per invocation: activations TM rows x KB sub-blocks x 8 words (with each
// sub-block's scale and sum), weights TN rows x KB sub-blocks x 4 groups of 8 int8 per matrix
// (with each sub-block's scale and offset).
const uint ACT_LOADS = (TM * KB * 8u + WG - 1u) / WG, W_LOADS = (TN * KB * 4u + WG - 1u) / WG;
uint next_act_q[ACT_LOADS];
float next_act_d[ACT_LOADS], next_act_s[ACT_LOADS];
uvec2 next_wa_q[W_LOADS], next_wb_q[W_LOADS];
float next_wa_d[W_LOADS], next_wa_o[W_LOADS], next_wb_d[W_LOADS], next_wb_o[W_LOADS];
#ifdef QUANT_INT8_HALF_MINS
vec2 next_wa_m[W_LOADS], next_wb_m[W_LOADS];
#endif

// Zeros past the rows or columns (a zero scale and sum make their products vanish).
void fetch(uint b0, uint row_begin, uint rows_valid, uint n0, uint base_a, uint base_b, bool fused) {
  const uint lid = gl_LocalInvocationID.x, n_blocks = pc.cols / 32u;
  [[unroll]] for (uint i = 0u; i < ACT_LOADS; ++i) {
    const uint idx = lid + i * WG;
    const uint m = idx / (KB * 8u), w = idx % (KB * 8u), blk = b0 + w / 8u;
    next_act_q[i] = 0u;
    next_act_d[i] = 0.0;
    next_act_s[i] = 0.0;
    if (idx < TM * KB * 8u && m < rows_valid && blk < n_blocks) {
      const uint p = row_begin + m;
      const uint src = pc.mode == 3u ? p : grouped_entry[p] / pc.k;
      next_act_q[i] = xq_words[src * (pc.cols / 4u) + b0 * 8u + w];
      if (w % 8u == 0u) {
        next_act_d[i] = xd_values[src * n_blocks + blk];
        next_act_s[i] = xs_values[src * n_blocks + blk];
      }
    }
  }
  [[unroll]] for (uint i = 0u; i < W_LOADS; ++i) {
    const uint idx = lid + i * WG;
    const uint n = idx / (KB * 4u), s = (idx / 4u) % KB, g = idx % 4u;
    const uint row = n0 + n, blk = b0 + s, col = blk * 32u + g * 8u;
    next_wa_q[i] = uvec2(0u);
    next_wb_q[i] = uvec2(0u);
    next_wa_d[i] = next_wa_o[i] = next_wb_d[i] = next_wb_o[i] = 0.0;
#ifdef QUANT_INT8_HALF_MINS
    next_wa_m[i] = next_wb_m[i] = vec2(0.0);
#endif
    if (idx < TN * KB * 4u && row < pc.rows && blk < n_blocks) {
      next_wa_q[i] = weight_int8x8(0u, base_a + row * pc.row_bytes, col);
      if (g == 0u) weight_affine32(0u, base_a + row * pc.row_bytes, col, next_wa_d[i], next_wa_o[i]);
#ifdef QUANT_INT8_HALF_MINS
      if (g == 0u) next_wa_m[i] = weight_mins32(0u, base_a + row * pc.row_bytes, col);
#endif
      if (fused) {
        next_wb_q[i] = weight_int8x8(1u, base_b + row * pc.row_bytes, col);
        if (g == 0u) weight_affine32(1u, base_b + row * pc.row_bytes, col, next_wb_d[i], next_wb_o[i]);
#ifdef QUANT_INT8_HALF_MINS
        if (g == 0u) next_wb_m[i] = weight_mins32(1u, base_b + row * pc.row_bytes, col);
#endif
      }
    }
  }
}

void put(uint buf) {
  const uint lid = gl_LocalInvocationID.x;
  [[unroll]] for (uint i = 0u; i < ACT_LOADS; ++i) {
    const uint idx = lid + i * WG;
    if (idx >= TM * KB * 8u) continue;
    const uint m = idx / (KB * 8u), w = idx % (KB * 8u), s = w / 8u;
    act_q[buf * ACT_Q + w * TM + m] = next_act_q[i];
    if (w % 8u == 0u) {
      act_d[buf * ACT_F + s * TM + m] = next_act_d[i];
      act_s[buf * ACT_F + s * TM + m] = next_act_s[i];
    }
  }
  [[unroll]] for (uint i = 0u; i < W_LOADS; ++i) {
    const uint idx = lid + i * WG;
    if (idx >= TN * KB * 4u) continue;
    const uint n = idx / (KB * 4u), s = (idx / 4u) % KB, g = idx % 4u;
    const uint w = buf * W_Q + (s * 8u + 2u * g) * TN + n;
    wa_q[w] = next_wa_q[i].x;
    wa_q[w + TN] = next_wa_q[i].y;
    wb_q[w] = next_wb_q[i].x;
    wb_q[w + TN] = next_wb_q[i].y;
    if (g == 0u) {
      const uint f = buf * W_F + s * TN + n;
      wa_d[f] = next_wa_d[i];
      wa_o[f] = next_wa_o[i];
      wb_d[f] = next_wb_d[i];
      wb_o[f] = next_wb_o[i];
#ifdef QUANT_INT8_HALF_MINS
      wa_m[f] = next_wa_m[i];
      wb_m[f] = next_wb_m[i];
#endif
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
  const bool fused = pc.mode == 0u;
  const uint n_blocks = pc.cols / 32u;
  tm = lid / (TN / NR);
  tn = lid % (TN / NR);
  // Micro-tiles wholly past the tile's valid rows skip the products (their outputs are never
  // stored); they still load and pass the barriers. A warp spans few row groups (32 threads:
  // rows 8 w..8 w+7), so a nearly empty tile, an expert's tail (Qwen3-30B-A3B at 512 tokens:
  // ~32 rows an expert, half of them spilling a few rows into a second tile), costs its loads
  // and one warp's products instead of all of them.
  const bool live = tm * MR < rows_valid;
  [[unroll]] for (uint i = 0u; i < MR * NR; ++i) { acc_a[i] = 0.0; acc_b[i] = 0.0; }

  fetch(0u, row_begin, rows_valid, n0, base_a, base_b, fused);
  put(0u);
  barrier();
  uint buf = 0u;
  for (uint b0 = 0u; b0 < n_blocks; b0 += KB) {
    const bool more = b0 + KB < n_blocks;  // uniform
    if (more) fetch(b0 + KB, row_begin, rows_valid, n0, base_a, base_b, fused);
    // Not unrolled over s: the body is already 8 x MR x NR (x 2) dot products.
    if (live && fused) {
      [[dont_unroll]] for (uint s = 0u; s < KB; ++s) accumulate_sub_block(buf, s, true);
    } else if (live) {
      [[dont_unroll]] for (uint s = 0u; s < KB; ++s) accumulate_sub_block(buf, s, false);
    }
    // The other copy was last read by the previous step's products, which the previous barrier
    // ordered before this.
    if (more) put(buf ^ 1u);
    barrier();
    buf ^= 1u;
  }

  if (OUT_Q8) {
    // The TM x TN tile of h, row-major, into the weight tiles (both copies free after the last
    // barrier), then one thread per (row, 32-column block): quantize_q8's rule.
    const uint half_tile = 2u * W_Q;
    [[unroll]] for (uint i = 0u; i < MR * NR; ++i) {
      const uint t = (tm * MR + i / NR) * TN + tn * NR + i % NR;
      const uint bits = floatBitsToUint(silu(acc_a[i]) * acc_b[i]);
      if (t < half_tile) wa_q[t] = bits; else wb_q[t - half_tile] = bits;
    }
    barrier();
    for (uint task = lid; task < TM * (TN / 32u); task += WG) {
      const uint m = task / (TN / 32u), blk = task % (TN / 32u), col = n0 + blk * 32u;
      if (m >= rows_valid || col >= pc.rows) continue;
      float v[32];
      [[unroll]] for (uint j = 0u; j < 32u; ++j) {
        const uint t = m * TN + blk * 32u + j;
        v[j] = uintBitsToFloat(t < half_tile ? wa_q[t] : wb_q[t - half_tile]);
      }
      const uint block = ((row_begin + m) * pc.rows + col) / 32u;
      const Q8Block q = q8_block(v);
      [[unroll]] for (uint w = 0u; w < 8u; ++w) hq_words[block * 8u + w] = q.words[w];
      hd_values[block] = q.d;
      hs_values[block] = q.xs;
    }
    return;
  }
  [[unroll]] for (uint i = 0u; i < MR * NR; ++i) {
    const uint m = tm * MR + i / NR, n = tn * NR + i % NR;
    if (m >= rows_valid || n0 + n >= pc.rows) continue;
    const uint out_index = (row_begin + m) * pc.rows + n0 + n;
    if (pc.mode == 0u) out_values[out_index] = silu(acc_a[i]) * acc_b[i];
    else if (pc.mode == 1u) out_values[out_index] = silu(acc_a[i]);
    else if (pc.mode == 2u) out_values[out_index] *= acc_a[i];
    else out_values[out_index] = acc_a[i];
  }
}
