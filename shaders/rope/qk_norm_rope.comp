#version 450
// Qwen3's per-head q/k RMS norm and RoPE of a step in one dispatch (instead of two norms, a
// barrier and a RoPE pass), and with STORE_KV the step's K (after RoPE) and V appended to the
// layer's F16 caches in the same dispatch (no separate KV store pass and barrier; for every
// architecture, NORM off where there are no q/k norms). Per row (one head of one token):
//   n[d] = x[d] * inversesqrt(mean_d(x[d]^2) + eps) * weight[d]       (as norm/rms_norm.comp)
//   then pairs i < rot_dim / 2 of n rotate by pos * base^(-2i/rot_dim) (as rope/rope.comp),
//   NEOX == 0: (2i, 2i + 1), NEOX != 0: (i, i + rot_dim / 2); dims >= rot_dim stay normed.
// The sum of squares is reduced in the same tree as rms_norm.comp for the same WG.
// In place:  q (binding 0) f32 [n_tokens][n_head][head_dim], k (binding 1) f32
//            [n_tokens][n_head_k][head_dim] (k is left as it was with STORE_KV).
// Inputs:    q_weight (binding 2), k_weight (binding 3) f32 [head_dim] (read with NORM);
//            step (binding 4) StepParams {n_past, ...} (ops/tensor.hpp); with STORE_KV v
//            (binding 5) f32 [n_tokens][n_head_k][head_dim].
// Outputs (STORE_KV): k_cache (binding 6), v_cache (binding 7): packHalf2x16 words, layout
//            [n_head_k][n_ctx][head_dim / 2] as attention/kv_store.comp writes them; token t at
//            position n_past + t, positions >= n_ctx dropped (the host refuses such steps).
// Dispatch:  one workgroup per row, q's rows, then k's, then (STORE_KV) v's: R = n_tokens *
//            (n_head + n_head_k (* 2)) laid out as (min(R, 65535), div_up(R, 65535), 1).
//            head_dim <= MAX_DIM, even.
// Specialization: 0 = workgroup size WG (power of two), 1 = MAX_DIM, 2 = NORM, 3 = STORE_KV.
#include "types.glsl"

layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint MAX_DIM = 256;
layout(constant_id = 2) const bool NORM = true;
layout(constant_id = 3) const bool STORE_KV = false;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) buffer Q { float q_values[]; };
layout(std430, binding = 1) buffer K { float k_values[]; };
layout(std430, binding = 2) readonly buffer QWeight { float q_weight[]; };
layout(std430, binding = 3) readonly buffer KWeight { float k_weight[]; };
layout(std430, binding = 4) readonly buffer Step { uint n_past, step_n_tokens, step_reserved0, step_reserved1; };
layout(std430, binding = 5) readonly buffer V { float v_values[]; };
layout(std430, binding = 6) writeonly buffer KCache { uint k_cache[]; };
layout(std430, binding = 7) writeonly buffer VCache { uint v_cache[]; };
layout(push_constant) uniform Push {
  uint n_tokens, n_head, n_head_k, head_dim, half_rot, neox;
  float eps, scale_hi, scale_lo;  // scale: base^(-2/rot_dim) as a double-float
  uint n_ctx;                     // STORE_KV: positions in the caches
} pc;

#include "rope_angle.glsl"

shared float partial[WG];
shared float normed[MAX_DIM];

// Word `w` of a K or V row of kv head `head` of token t goes to position n_past + t.
uint cache_word(uint head, uint t, uint w) { return (head * pc.n_ctx + n_past + t) * (pc.head_dim / 2u) + w; }

void main() {
  const uint lid = gl_LocalInvocationID.x;
  uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  const uint q_rows = pc.n_tokens * pc.n_head, k_rows = pc.n_tokens * pc.n_head_k;
  // Uniform per workgroup: which tensor this row is of.
  const bool is_v = STORE_KV && row >= q_rows + k_rows;
  const bool is_k = !is_v && row >= q_rows;
  const uint n_head = is_k || is_v ? pc.n_head_k : pc.n_head;
  if (is_v) row -= q_rows + k_rows;
  else if (is_k) row -= q_rows;
  if (row >= pc.n_tokens * n_head) return;  // uniform per workgroup
  const uint base = row * pc.head_dim;
  const uint t = row / n_head;
  const bool cached = STORE_KV && n_past + t < pc.n_ctx;

  if (is_v) {  // V is stored as it is (no norm, no rotation)
    if (cached)
      for (uint w = lid; w < pc.head_dim / 2u; w += WG)
        v_cache[cache_word(row % n_head, t, w)] = packHalf2x16(vec2(v_values[base + 2u * w], v_values[base + 2u * w + 1u]));
    return;
  }

  float scale = 1.0;
  if (NORM) {
    float sum_sq = 0.0;
    for (uint i = lid; i < pc.head_dim; i += WG) {
      const float v = is_k ? k_values[base + i] : q_values[base + i];
      sum_sq += v * v;
    }
    partial[lid] = sum_sq;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
      if (lid < s) partial[lid] += partial[lid + s];
      barrier();
    }
    scale = inversesqrt(partial[0] / float(pc.head_dim) + pc.eps);
  }
  for (uint i = lid; i < pc.head_dim; i += WG) {
    const float x = is_k ? k_values[base + i] : q_values[base + i];
    normed[i] = NORM ? x * scale * (is_k ? k_weight[i] : q_weight[i]) : x;
  }
  barrier();

  const float pos = float(n_past + t);
  for (uint i = lid; i < pc.half_rot; i += WG) {
    const uint i0 = pc.neox != 0u ? i : 2u * i;
    const uint i1 = pc.neox != 0u ? i0 + pc.half_rot : i0 + 1u;
    const vec2 sc = rope_sin_cos(pos, i, pc.scale_hi, pc.scale_lo);
    const float x0 = normed[i0], x1 = normed[i1];
    const float y0 = x0 * sc.y - x1 * sc.x, y1 = x0 * sc.x + x1 * sc.y;
    if (is_k && STORE_KV) {  // each pair is this thread's alone: rotated in place for the store
      normed[i0] = y0;
      normed[i1] = y1;
    } else if (is_k) {
      k_values[base + i0] = y0;
      k_values[base + i1] = y1;
    } else {
      q_values[base + i0] = y0;
      q_values[base + i1] = y1;
    }
  }
  if (is_k && STORE_KV) {  // uniform: the whole rotated row, then whole words of it
    barrier();
    if (cached)
      for (uint w = lid; w < pc.head_dim / 2u; w += WG)
        k_cache[cache_word(row % n_head, t, w)] = packHalf2x16(vec2(normed[2u * w], normed[2u * w + 1u]));
    return;
  }
  for (uint d = 2u * pc.half_rot + lid; d < pc.head_dim; d += WG) {
    if (is_k) k_values[base + d] = normed[d];
    else q_values[base + d] = normed[d];
  }
}
