#version 450
// Flash-decoding second pass: folds the per-chunk partials of attention_flash.comp (split mode)
// into the softmax-weighted output of one (token, head) row.
// Inputs:  step[4] u32 (n_past at [0]); partials f32: [n_chunks][n_tokens * n_head] (max, sum)
//          pairs, then [n_chunks][n_tokens * n_head][D] unnormalised accumulators.
// Output:  out f32 [n_tokens][n_head][D].
// Only chunks that start below the row's causal length (n_past + t + 1) are read: later ones
// were skipped by the first pass, so one recording serves every step. The chunk length is the
// step's (decode_chunks.glsl, pc.chunk_len its quantum), as the first pass computed it.
// Dispatch: (n_tokens * n_head, 1, 1).
// Specialization: 0 = workgroup size (power of two), 1 = D (head_dim), 2 = MAX_CHUNKS (>= n_chunks).
#include "types.glsl"
#include "decode_chunks.glsl"

layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint D = 128;
layout(constant_id = 2) const uint MAX_CHUNKS = 256;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Step { uint step_values[]; };
layout(std430, binding = 1) readonly buffer Partials { float partials[]; };
layout(std430, binding = 2) writeonly buffer Out { float out_values[]; };
layout(push_constant) uniform Push { uint n_tokens, n_head, n_ctx, chunk_len, n_chunks; } pc;

const float NEG_BIG = -1.0e30;  // finite "minus infinity": exp(NEG_BIG - x) is 0, never NaN

shared float chunk_weight[MAX_CHUNKS];
shared float reduce_sh[WG];

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint row = gl_WorkGroupID.x;
  const uint n_rows = pc.n_tokens * pc.n_head;
  const uint token = row / pc.n_head;
  const uint n_past = step_values[0];
  const uint limit = min(n_past + token + 1u, pc.n_ctx);
  const uint chunk_len = decode_chunk_len(n_past, pc.n_tokens, pc.n_ctx, pc.chunk_len, pc.n_chunks);
  const uint n_active = min(div_up(limit, chunk_len), min(pc.n_chunks, MAX_CHUNKS));

  float m = NEG_BIG;
  for (uint c = tid; c < n_active; c += WG) {
    const uint ml = 2u * (c * n_rows + row);
    if (partials[ml + 1u] > 0.0) m = max(m, partials[ml]);
  }
  reduce_sh[tid] = m;
  barrier();
  [[unroll]] for (uint s = WG / 2u; s > 0u; s >>= 1u) {
    if (tid < s) reduce_sh[tid] = max(reduce_sh[tid], reduce_sh[tid + s]);
    barrier();
  }
  const float m_all = reduce_sh[0];
  barrier();

  float l = 0.0;
  for (uint c = tid; c < n_active; c += WG) {
    const uint ml = 2u * (c * n_rows + row);
    const float sum = partials[ml + 1u];
    const float w = sum > 0.0 ? exp(partials[ml] - m_all) : 0.0;
    chunk_weight[c] = w;
    l += w * sum;
  }
  reduce_sh[tid] = l;
  barrier();
  [[unroll]] for (uint s = WG / 2u; s > 0u; s >>= 1u) {
    if (tid < s) reduce_sh[tid] += reduce_sh[tid + s];
    barrier();
  }
  const float inv_l = 1.0 / reduce_sh[0];

  const uint o_base = 2u * pc.n_chunks * n_rows;
  for (uint d = tid; d < D; d += WG) {
    float acc = 0.0;
    for (uint c = 0u; c < n_active; ++c) {
      const float w = chunk_weight[c];
      if (w != 0.0) acc += w * partials[o_base + (c * n_rows + row) * D + d];
    }
    out_values[row * D + d] = acc * inv_l;
  }
}
