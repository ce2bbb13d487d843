#version 450
// Causal grouped-query attention over one layer's F16 cache, flash-attention style: a workgroup
// owns BR query rows of one KV head (row = token * G + g for head hk * G + g, G = n_head /
// n_head_kv, so the G heads sharing a KV head share every K/V tile it loads), keeps Q (scaled) in
// shared memory and walks K/V tiles of BC positions with an online softmax (running max m and
// sum l per row, accumulator rescaled by exp(m_old - m_new)). All in f32.
// Inputs:  step[4] u32 (n_past at [0], read here so a recording replays at new positions);
//          q f32 [n_tokens][n_head][D]; k_cache, v_cache packHalf2x16 words [n_head_kv][n_ctx][D/2].
// Outputs, split == 0 (prefill): out f32 [n_tokens][n_head][D], normalised.
//          split == 1 (flash-decoding): workgroup z handles positions [z * chunk_len, +chunk_len)
//          and writes partials (see attention_combine.comp): (m, l) pairs at
//          [z][n_tokens * n_head], then unnormalised accumulators at [z][n_tokens * n_head][D].
//          A chunk wholly past the causal limit writes neutral (m, l) = (-1e30, 0) and returns.
// Causality: row of token t sees positions j < n_past + t + 1 (and < n_ctx). Positions at or past
// n_past + n_tokens are never read (they may hold garbage: the cache is not cleared), so tiles
// load zeros there; masked scores get weight exactly 0.
// Dispatch: (ceil(n_tokens * G / BR), n_head_kv, n_chunks) with n_chunks = 1 when split == 0.
// Specialization: 0 = WG, 1 = D (head_dim, even), 2 = BR (query rows), 3 = BC (positions per tile).
#include "types.glsl"

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
layout(std430, binding = 2) readonly buffer KCache { uint k_cache[]; };
layout(std430, binding = 3) readonly buffer VCache { uint v_cache[]; };
layout(std430, binding = 4) writeonly buffer Out { float out_values[]; };
layout(std430, binding = 5) writeonly buffer Partials { float partials[]; };
layout(push_constant) uniform Push {
  uint n_tokens, n_head, n_head_kv, n_ctx, chunk_len, split;
  float scale;
} pc;

shared float q_sh[BR * D];
shared uint kv_sh[BC * KV_STRIDE];  // the K tile, then (after the scores) the V tile
shared float s_sh[BR * S_STRIDE];   // scores, then probabilities
shared float m_sh[BR], l_sh[BR], alpha_sh[BR];

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
  uint begin = 0u, end = tile_limit;
  if (pc.split != 0u) {
    begin = chunk * pc.chunk_len;
    end = min(begin + pc.chunk_len, tile_limit);
    if (begin >= end) {  // uniform over the workgroup
      if (tid < BR && row0 + tid < n_rows) {
        const uint row = row0 + tid;
        const uint out_row = (row / G) * pc.n_head + hk * G + row % G;
        partials[2u * (chunk * n_rows_all + out_row)] = NEG_BIG;
        partials[2u * (chunk * n_rows_all + out_row) + 1u] = 0.0;
      }
      return;
    }
  }

  for (uint e = tid; e < BR * D; e += WG) {
    const uint row = row0 + e / D;
    float v = 0.0;
    if (row < n_rows) v = q_values[((row / G) * pc.n_head + hk * G + row % G) * D + e % D] * pc.scale;
    q_sh[e] = v;
  }
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
      if (pc.split == 0u) {
        const float inv_l = 1.0 / l_sh[r];
        out_values[out_row * D + 2u * w] = acc[k].x * inv_l;
        out_values[out_row * D + 2u * w + 1u] = acc[k].y * inv_l;
      } else {
        const uint o = 2u * gl_NumWorkGroups.z * n_rows_all + (chunk * n_rows_all + out_row) * D + 2u * w;
        partials[o] = acc[k].x;
        partials[o + 1u] = acc[k].y;
      }
    }
  }
  if (pc.split != 0u && tid < BR && row0 + tid < n_rows) {
    const uint row = row0 + tid;
    const uint out_row = (row / G) * pc.n_head + hk * G + row % G;
    partials[2u * (chunk * n_rows_all + out_row)] = m_sh[tid];
    partials[2u * (chunk * n_rows_all + out_row) + 1u] = l_sh[tid];
  }
}
