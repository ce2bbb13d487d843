#version 450
// Causal grouped-query attention over one layer's F16 cache, flash-attention style: a workgroup
// owns BR query rows of one KV head (row = token * G + g for head hk * G + g, G = n_head /
// n_head_kv, so the G heads sharing a KV head share every K/V tile it loads), keeps Q (scaled) in
// shared memory and walks K/V tiles of BC positions with an online softmax (running max m and
// sum l per row, accumulator rescaled by exp(m_old - m_new)). All in f32.
// Inputs:  step[4] u32 (n_past at [0], read here so a recording replays at new positions);
//          q f32 [n_tokens][n_head][D]; k_cache, v_cache packHalf2x16 words [n_head_kv][n_ctx][D/2].
// Outputs, split == 0 (prefill): out f32 [n_tokens][n_head][D], normalised.
//          split == 1 (flash-decoding): workgroup z handles positions [z * len, +len), len the
//          step's chunk length (decode_chunks.glsl: pc.chunk_len is its quantum)
//          and writes partials (see attention_combine.comp), f32 bits from word partial_base of
//          the scratch binding: (m, l) pairs at [z][n_tokens * n_head], then unnormalised
//          accumulators at [z][n_tokens * n_head][D]. A chunk wholly past the causal limit writes
//          neutral (m, l) = (-1e30, 0) and returns.
//          split == 2 (flash-decoding with the combine handed off): as split == 1, and then each
//          workgroup counts itself in on the arrival counter of its (row tile, kv head), word
//          y * row_tiles + x of the scratch binding (zero before the dispatch, zero after it);
//          the last of the tile's live chunks to arrive folds every chunk's partials of its rows
//          into out, normalised, as attention_combine.comp would: no second dispatch and no
//          barrier between them. Chunks past the causal limit return at once (nobody reads them).
// Causality: row of token t sees positions j < n_past + t + 1 (and < n_ctx). Positions at or past
// n_past + n_tokens are never read (they may hold garbage: the cache is not cleared), so tiles
// load zeros there; masked scores get weight exactly 0.
// Dispatch: (ceil(n_tokens * G / BR), n_head_kv, n_chunks) with n_chunks = 1 when split == 0.
// Specialization: 0 = WG, 1 = D (head_dim, even), 2 = BR (query rows), 3 = BC (positions per tile).
//
// PROLOGUE (the attention_flash_rope variant; decode, split == 1, n_tokens <= MAX_NEW): the step's
// q/k RMS norms (spec 4 = NORM, Qwen3) and RoPE, and its K/V append, happen here instead of in a
// rope/qk_norm_rope dispatch and a barrier before this one. Binding 1 then holds the raw
// projections, q at q_off, k at k_off, v at v_off (floats), each [n_tokens][heads][D]; the
// arithmetic per row is qk_norm_rope.comp's (x * inversesqrt(mean(x^2) + eps) * weight, then
// pairs i < half_rot rotated by pos * scale^i, scale = scale_hi + scale_lo), summed in another
// order. A workgroup whose chunk holds new positions (n_past + t) builds those K rows (normed,
// rotated, F16) and V rows in shared memory and reads them from there: nobody reads the cache at
// a new position in this dispatch, so row tile 0 of that chunk writes them to the caches for
// later steps without racing any reader. Bindings: 4 q norm weight, 6 k norm weight (f32 [D],
// read with NORM); `out` is binding 7, written with split == 2 only.
#include "types.glsl"
#include "q8_block.glsl"
#include "decode_chunks.glsl"
#extension GL_KHR_memory_scope_semantics : require

layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 1) const uint D = 128;
layout(constant_id = 2) const uint BR = 32;
layout(constant_id = 3) const uint BC = 32;
layout(local_size_x_id = 0) in;

const uint HD = D / 2u;             // cache words per position
const uint KV_STRIDE = HD + 1u;     // padded row: a warp reading word w of BC rows hits BC banks
const uint S_STRIDE = BC + 1u;
const uint O_PER_THREAD = (BR * HD + WG - 1u) / WG;  // accumulator words per thread
const float NEG_BIG = -1.0e30;      // finite "minus infinity": exp(NEG_BIG - x) is 0, never NaN

layout(std430, binding = 0) readonly buffer Step { uint step_values[]; };
layout(std430, binding = 1) readonly buffer Q { float q_values[]; };
// coherent: with split == 2 the last workgroup of a tile reads what the others stored.
layout(std430, binding = 5) coherent buffer Partials { uint partials[]; };
#ifdef PROLOGUE
layout(constant_id = 4) const bool NORM = false;
layout(std430, binding = 2) buffer KCache { uint k_cache[]; };
layout(std430, binding = 3) buffer VCache { uint v_cache[]; };
layout(std430, binding = 4) readonly buffer QNorm { float q_norm_weight[]; };
layout(std430, binding = 6) readonly buffer KNorm { float k_norm_weight[]; };
layout(std430, binding = 7) writeonly buffer Out { float out_values[]; };
layout(push_constant) uniform Push {
  uint n_tokens, n_head, n_head_kv, n_ctx, chunk_len, split;
  float scale;
  uint partial_base;
  uint q_off, k_off, v_off, half_rot, neox;
  float eps, scale_hi, scale_lo;
} pc;
#include "rope_angle.glsl"
const uint MAX_NEW = 8u;  // the decode batch limit (runtime/ops/attention.cpp)
shared uint new_k_sh[MAX_NEW * HD], new_v_sh[MAX_NEW * HD];  // this step's rows, F16 pairs
shared float norm_sum_sh[WG];
#else
layout(std430, binding = 2) readonly buffer KCache { uint k_cache[]; };
layout(std430, binding = 3) readonly buffer VCache { uint v_cache[]; };
layout(std430, binding = 4) writeonly buffer Out { float out_values[]; };
// OUT_Q8 (prefill, D % 32 == 0): out also as the output projection's int8 activations, per
// 32-element block as quantize_q8.comp makes them (xq int8 x4 per word, xd scale, xs d * sum q).
layout(constant_id = 4) const bool OUT_Q8 = false;
layout(std430, binding = 6) writeonly buffer Xq { uint xq_words[]; };
layout(std430, binding = 7) writeonly buffer Xd { float xd_values[]; };
layout(std430, binding = 8) writeonly buffer Xs { float xs_values[]; };
layout(push_constant) uniform Push {
  uint n_tokens, n_head, n_head_kv, n_ctx, chunk_len, split;
  float scale;
  uint partial_base;
} pc;
#endif

shared float q_sh[BR * D];
shared uint kv_sh[BC * KV_STRIDE];  // the K tile, then (after the scores) the V tile
shared float s_sh[BR * S_STRIDE];   // scores, then probabilities
shared float m_sh[BR], l_sh[BR], alpha_sh[BR];
shared uint arrival_sh;

void store_partial(uint i, float v) { partials[pc.partial_base + i] = floatBitsToUint(v); }
float load_partial(uint i) { return uintBitsToFloat(partials[pc.partial_base + i]); }

// split == 2, in the last workgroup of a (row tile, kv head) to finish: out for the tile's rows
// from every live chunk's partials (attention_combine.comp's fold, for BR rows at once). The
// chunks' (m, l) of each row go to kv_sh ([BR][NZ] m, then [BR][NZ] l: Attention checks that
// 2 * BR * NZ words fit), one thread per row turns them into weights exp(m_c - m_all) and 1 / L,
// then every thread sums its (row, d) outputs over the chunks.
void combine_tile(uint row0, uint n_rows, uint n_rows_all, uint hk, uint G, uint n_past, uint chunk_len) {
  const uint tid = gl_LocalInvocationID.x;
  const uint NZ = gl_NumWorkGroups.z;
  for (uint e = tid; e < BR * NZ; e += WG) {
    const uint r = e / NZ, c = e % NZ, row = row0 + r;
    float m = NEG_BIG, l = 0.0;
    if (row < n_rows && c < div_up(min(n_past + row / G + 1u, pc.n_ctx), chunk_len)) {
      const uint out_row = (row / G) * pc.n_head + hk * G + row % G;
      m = load_partial(2u * (c * n_rows_all + out_row));
      l = load_partial(2u * (c * n_rows_all + out_row) + 1u);
    }
    kv_sh[e] = floatBitsToUint(l > 0.0 ? m : NEG_BIG);
    kv_sh[BR * NZ + e] = floatBitsToUint(l);
  }
  barrier();
  if (tid < BR && row0 + tid < n_rows) {
    const uint n_live = div_up(min(n_past + (row0 + tid) / G + 1u, pc.n_ctx), chunk_len);
    float m_all = NEG_BIG;
    for (uint c = 0u; c < n_live; ++c) m_all = max(m_all, uintBitsToFloat(kv_sh[tid * NZ + c]));
    float total = 0.0;
    for (uint c = 0u; c < n_live; ++c) {
      const float l = uintBitsToFloat(kv_sh[BR * NZ + tid * NZ + c]);
      const float w = l > 0.0 ? exp(uintBitsToFloat(kv_sh[tid * NZ + c]) - m_all) : 0.0;
      kv_sh[tid * NZ + c] = floatBitsToUint(w);
      total += w * l;
    }
    l_sh[tid] = 1.0 / total;
  }
  barrier();
  const uint acc_base = 2u * NZ * n_rows_all;
  for (uint e = tid; e < BR * D; e += WG) {
    const uint r = e / D, d = e % D, row = row0 + r;
    if (row >= n_rows) continue;
    const uint n_live = div_up(min(n_past + row / G + 1u, pc.n_ctx), chunk_len);
    const uint out_row = (row / G) * pc.n_head + hk * G + row % G;
    float acc = 0.0;
    for (uint c = 0u; c < n_live; ++c) {
      const float w = uintBitsToFloat(kv_sh[r * NZ + c]);
      if (w != 0.0) acc += w * load_partial(acc_base + (c * n_rows_all + out_row) * D + d);
    }
    out_values[out_row * D + d] = acc * l_sh[r];
  }
}

#ifdef PROLOGUE
// Rows r < count of q_sh (D floats each) normed (NORM: norm_sum_sh[r] holds the row's sum of
// squares; the q or k weight) and rotated in place at position base + (offset + r) / div.
// Ends with a barrier.
void norm_rope_rows(uint count, uint base, uint offset, uint div, bool is_k) {
  const uint tid = gl_LocalInvocationID.x;
  for (uint e = tid; e < count * D; e += WG) {
    const uint r = e / D, d = e % D;
    const float inv = NORM ? inversesqrt(norm_sum_sh[r] / float(D) + pc.eps) : 1.0;
    if (NORM) q_sh[e] = q_sh[e] * inv * (is_k ? k_norm_weight[d] : q_norm_weight[d]);
  }
  barrier();
  for (uint e = tid; e < count * pc.half_rot; e += WG) {
    const uint r = e / pc.half_rot, i = e % pc.half_rot;
    const uint i0 = pc.neox != 0u ? i : 2u * i;
    const uint i1 = pc.neox != 0u ? i0 + pc.half_rot : i0 + 1u;
    const vec2 sc = rope_sin_cos(float(base + (offset + r) / div), i, pc.scale_hi, pc.scale_lo);
    const float x0 = q_sh[r * D + i0], x1 = q_sh[r * D + i1];
    q_sh[r * D + i0] = x0 * sc.y - x1 * sc.x;
    q_sh[r * D + i1] = x0 * sc.x + x1 * sc.y;
  }
  barrier();
}

// Sum of squares of each of `count` rows of q_sh into norm_sum_sh[r] (one thread per row).
void row_sums(uint count) {
  const uint tid = gl_LocalInvocationID.x;
  if (NORM && tid < count) {
    float s = 0.0;
    for (uint d = 0u; d < D; ++d) s += q_sh[tid * D + d] * q_sh[tid * D + d];
    norm_sum_sh[tid] = s;
  }
  barrier();
}
#endif

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint G = pc.n_head / pc.n_head_kv;
  const uint n_rows = pc.n_tokens * G;
  const uint row0 = gl_WorkGroupID.x * BR;
  const uint hk = gl_WorkGroupID.y;
  const uint chunk = gl_WorkGroupID.z;
  const uint n_past = step_values[0];
  const uint n_rows_all = pc.n_tokens * pc.n_head;
  // The tile's last row has the latest token and so the longest causal range.
  const uint last_row = min(row0 + BR, n_rows) - 1u;
  const uint tile_limit = min(n_past + last_row / G + 1u, pc.n_ctx);
  // Decode: this step's chunk length (uniform: push constants, the step buffer, the grid).
  const uint chunk_len =
      pc.split != 0u ? decode_chunk_len(n_past, pc.n_tokens, pc.n_ctx, pc.chunk_len, gl_NumWorkGroups.z) : pc.n_ctx;
#ifdef PROLOGUE
  // This chunk's new positions [new_begin, new_end): their K/V rows, built one at a time in
  // q_sh (free until Q is loaded below), kept as F16 words; row tile 0 appends them to the caches.
  const uint chunk_begin = chunk * chunk_len;
  const uint new_begin = max(chunk_begin, n_past);
  const uint new_end = min(min(chunk_begin + chunk_len, n_past + pc.n_tokens), pc.n_ctx);
  for (uint p = new_begin; p < new_end; ++p) {  // uniform
    const uint t = p - n_past;
    const uint k_row = pc.k_off + (t * pc.n_head_kv + hk) * D, v_row = pc.v_off + (t * pc.n_head_kv + hk) * D;
    for (uint d = tid; d < D; d += WG) q_sh[d] = q_values[k_row + d];
    barrier();
    row_sums(1u);
    norm_rope_rows(1u, p, 0u, 1u, true);
    for (uint w = tid; w < HD; w += WG) {
      const uint k_word = packHalf2x16(vec2(q_sh[2u * w], q_sh[2u * w + 1u]));
      const uint v_word = packHalf2x16(vec2(q_values[v_row + 2u * w], q_values[v_row + 2u * w + 1u]));
      new_k_sh[t * HD + w] = k_word;
      new_v_sh[t * HD + w] = v_word;
      if (gl_WorkGroupID.x == 0u) {
        k_cache[(hk * pc.n_ctx + p) * HD + w] = k_word;
        v_cache[(hk * pc.n_ctx + p) * HD + w] = v_word;
      }
    }
    barrier();
  }
#endif
  uint begin = 0u, end = tile_limit;
  if (pc.split != 0u) {
    begin = chunk * chunk_len;
    end = min(begin + chunk_len, tile_limit);
    if (begin >= end) {  // uniform over the workgroup
      if (pc.split == 1u && tid < BR && row0 + tid < n_rows) {
        const uint row = row0 + tid;
        const uint out_row = (row / G) * pc.n_head + hk * G + row % G;
        store_partial(2u * (chunk * n_rows_all + out_row), NEG_BIG);
        store_partial(2u * (chunk * n_rows_all + out_row) + 1u, 0.0);
      }
      return;
    }
  }

#ifdef PROLOGUE
  // Raw q rows, then normed and rotated (row r is token (row0 + r) / G), then scaled.
  const uint q_rows = min(BR, n_rows - row0);
  for (uint e = tid; e < BR * D; e += WG) {
    const uint row = row0 + e / D;
    q_sh[e] = row < n_rows ? q_values[pc.q_off + ((row / G) * pc.n_head + hk * G + row % G) * D + e % D] : 0.0;
  }
  barrier();
  row_sums(q_rows);
  norm_rope_rows(q_rows, n_past, row0, G, false);
  for (uint e = tid; e < BR * D; e += WG) q_sh[e] *= pc.scale;
#else
  for (uint e = tid; e < BR * D; e += WG) {
    const uint row = row0 + e / D;
    float v = 0.0;
    if (row < n_rows) v = q_values[((row / G) * pc.n_head + hk * G + row % G) * D + e % D] * pc.scale;
    q_sh[e] = v;
  }
#endif
  if (tid < BR) {
    m_sh[tid] = NEG_BIG;
    l_sh[tid] = 0.0;
  }
  vec2 acc[O_PER_THREAD];
  [[unroll]] for (uint k = 0u; k < O_PER_THREAD; ++k) acc[k] = vec2(0.0);
  barrier();

  const uint kv_base = hk * pc.n_ctx;
  for (uint j0 = begin; j0 < end; j0 += BC) {
    for (uint e = tid; e < BC * HD; e += WG) {
      const uint c = e / HD, w = e % HD;
#ifdef PROLOGUE
      if (j0 + c >= n_past && j0 + c < end) {  // this step's row: built above, not in the cache yet
        kv_sh[c * KV_STRIDE + w] = new_k_sh[(j0 + c - n_past) * HD + w];
        continue;
      }
#endif
      kv_sh[c * KV_STRIDE + w] = j0 + c < end ? k_cache[(kv_base + j0 + c) * HD + w] : 0u;
    }
    barrier();
    for (uint e = tid; e < BR * BC; e += WG) {
      const uint r = e / BC, c = e % BC;
      float s = 0.0;
      for (uint w = 0u; w < HD; ++w) {
        const vec2 k = unpackHalf2x16(kv_sh[c * KV_STRIDE + w]);
        s = fma(q_sh[r * D + 2u * w], k.x, s);
        s = fma(q_sh[r * D + 2u * w + 1u], k.y, s);
      }
      s_sh[r * S_STRIDE + c] = s;
    }
    barrier();
    // One thread per row updates its softmax state (BC serial steps: cheap next to the dots)
    // while the others bring in the V tile over the K tile nobody reads any more.
    if (tid < BR) {
      const uint row = row0 + tid;
      const uint row_limit = row < n_rows ? min(n_past + row / G + 1u, end) : 0u;
      const uint n_valid = row_limit > j0 ? min(row_limit - j0, BC) : 0u;
      const float m_old = m_sh[tid];
      float m_new = m_old;
      for (uint c = 0u; c < n_valid; ++c) m_new = max(m_new, s_sh[tid * S_STRIDE + c]);
      float sum = 0.0;
      for (uint c = 0u; c < BC; ++c) {
        const float p = c < n_valid ? exp(s_sh[tid * S_STRIDE + c] - m_new) : 0.0;
        s_sh[tid * S_STRIDE + c] = p;
        sum += p;
      }
      const float alpha = exp(m_old - m_new);
      alpha_sh[tid] = alpha;
      m_sh[tid] = m_new;
      l_sh[tid] = l_sh[tid] * alpha + sum;
    }
    for (uint e = tid; e < BC * HD; e += WG) {
      const uint c = e / HD, w = e % HD;
#ifdef PROLOGUE
      if (j0 + c >= n_past && j0 + c < end) {
        kv_sh[c * KV_STRIDE + w] = new_v_sh[(j0 + c - n_past) * HD + w];
        continue;
      }
#endif
      kv_sh[c * KV_STRIDE + w] = j0 + c < end ? v_cache[(kv_base + j0 + c) * HD + w] : 0u;
    }
    barrier();
    [[unroll]] for (uint k = 0u; k < O_PER_THREAD; ++k) {
      const uint e = tid + k * WG;
      if (e < BR * HD) {
        const uint r = e / HD, w = e % HD;
        vec2 a = acc[k] * alpha_sh[r];
        for (uint c = 0u; c < BC; ++c) a += s_sh[r * S_STRIDE + c] * unpackHalf2x16(kv_sh[c * KV_STRIDE + w]);
        acc[k] = a;
      }
    }
    barrier();
  }

  [[unroll]] for (uint k = 0u; k < O_PER_THREAD; ++k) {
    const uint e = tid + k * WG;
    const uint r = e / HD, w = e % HD;
    const uint row = row0 + r;
    if (e < BR * HD && row < n_rows) {
      const uint out_row = (row / G) * pc.n_head + hk * G + row % G;
#ifndef PROLOGUE
      if (pc.split == 0u) {
        const float inv_l = 1.0 / l_sh[r];
        const float o0 = acc[k].x * inv_l, o1 = acc[k].y * inv_l;
        out_values[out_row * D + 2u * w] = o0;
        out_values[out_row * D + 2u * w + 1u] = o1;
        if (OUT_Q8) {  // Q is no longer needed: its tile holds the outputs for the blocks below
          q_sh[r * D + 2u * w] = o0;
          q_sh[r * D + 2u * w + 1u] = o1;
        }
      } else
#endif
      {
        const uint o = 2u * gl_NumWorkGroups.z * n_rows_all + (chunk * n_rows_all + out_row) * D + 2u * w;
        store_partial(o, acc[k].x);
        store_partial(o + 1u, acc[k].y);
      }
    }
  }
#ifndef PROLOGUE
  if (OUT_Q8 && pc.split == 0u) {  // uniform
    // Every block of 32 outputs of the tile's rows, one per thread: d = max|x| / 127,
    // q = round(x / d), as quantize_q8.comp does with the same f32 values.
    barrier();
    for (uint b = tid; b < BR * (D / 32u); b += WG) {
      const uint r = b / (D / 32u), blk = b % (D / 32u), row = row0 + r;
      if (row >= n_rows) continue;
      const uint out_row = (row / G) * pc.n_head + hk * G + row % G;
      float v[32];
      [[unroll]] for (uint i = 0u; i < 32u; ++i) v[i] = q_sh[r * D + blk * 32u + i];
      const uint block = out_row * (D / 32u) + blk;
      const Q8Block q = q8_block(v);
      [[unroll]] for (uint i = 0u; i < 8u; ++i) xq_words[block * 8u + i] = q.words[i];
      xd_values[block] = q.d;
      xs_values[block] = q.xs;
    }
  }
#endif
  if (pc.split != 0u && tid < BR && row0 + tid < n_rows) {
    const uint row = row0 + tid;
    const uint out_row = (row / G) * pc.n_head + hk * G + row % G;
    store_partial(2u * (chunk * n_rows_all + out_row), m_sh[tid]);
    store_partial(2u * (chunk * n_rows_all + out_row) + 1u, l_sh[tid]);
  }
  if (pc.split == 2u) {
    // Release: a device-scope barrier over buffer memory orders every invocation's partial
    // stores before the count, a device-scope acquire-release atomic; the last to count acquires
    // the others' releases and the second barrier passes that on to all its invocations.
    controlBarrier(gl_ScopeWorkgroup, gl_ScopeDevice, gl_StorageSemanticsBuffer | gl_StorageSemanticsShared,
                   gl_SemanticsAcquireRelease);
    const uint tile = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    const uint n_live = div_up(tile_limit, chunk_len);  // the chunks that did not return early
    if (tid == 0u)
      arrival_sh = atomicAdd(partials[tile], 1u, gl_ScopeDevice, gl_StorageSemanticsBuffer, gl_SemanticsAcquireRelease);
    controlBarrier(gl_ScopeWorkgroup, gl_ScopeDevice, gl_StorageSemanticsBuffer | gl_StorageSemanticsShared,
                   gl_SemanticsAcquireRelease);
    if (arrival_sh != n_live - 1u) return;  // uniform: one shared value
    // The last: reset the count for the next replay (a later dispatch), then fold.
    if (tid == 0u) partials[tile] = 0u;
    combine_tile(row0, n_rows, n_rows_all, hk, G, n_past, chunk_len);
  }
}
