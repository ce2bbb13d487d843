#version 450
// RMS norm fused with its weight: out[r][i] = x[r][i] / sqrt(mean_i(x[r][i]^2) + eps) * weight[i].
// Also the per-head q/k norm (rows = n_tokens * n_head, dim = head_dim). In place is fine (x and
// out the same range): every thread writes only elements it alone read, after the reduction.
// Inputs:  x (binding 0) f32 [n_rows][dim]; weight (binding 1) f32 [dim].
// Output:  out (binding 2) f32 [n_rows][dim].
// OUT_Q8 (rms_norm_q8): the normed rows also as the integer-dot kernels' int8 activations,
// exactly what matmul/quantize_q8.comp makes of `out` (same f32 values, same rule), so a prefill
// product reads them without a quantization pass and its barrier. dim % 32 == 0 (the op checks).
//   xq (binding 3) u32 [n_rows * dim / 4]; xd, xs (bindings 4, 5) f32 [n_rows * dim / 32].
// Dispatch: one workgroup per row, rows laid out as (min(n_rows, 65535), div_up(n_rows, 65535), 1).
// Specialization: 0 = workgroup size WG (power of two).
#include "types.glsl"
#include "q8_block.glsl"

layout(constant_id = 0) const uint WG = 256;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer X { float x_values[]; };
layout(std430, binding = 1) readonly buffer Weight { float weight_values[]; };
layout(std430, binding = 2) writeonly buffer Out { float out_values[]; };
#ifdef OUT_Q8
layout(std430, binding = 3) writeonly buffer Xq { uint xq_words[]; };
layout(std430, binding = 4) writeonly buffer Xd { float xd_values[]; };
layout(std430, binding = 5) writeonly buffer Xs { float xs_values[]; };
#endif
layout(push_constant) uniform Push { uint n_rows, dim; float eps; } pc;

shared float partial[WG];

void main() {
  const uint lid = gl_LocalInvocationID.x;
  const uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (row >= pc.n_rows) return;  // uniform per workgroup
  const uint base = row * pc.dim;
  float sum_sq = 0.0;
  for (uint i = lid; i < pc.dim; i += WG) {
    const float v = x_values[base + i];
    sum_sq += v * v;
  }
  partial[lid] = sum_sq;
  barrier();
  for (uint s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) partial[lid] += partial[lid + s];
    barrier();
  }
  const float scale = inversesqrt(partial[0] / float(pc.dim) + pc.eps);
#ifndef OUT_Q8
  for (uint i = lid; i < pc.dim; i += WG) out_values[base + i] = x_values[base + i] * scale * weight_values[i];
#else
  // One thread per block of 32 (quantize_q8's rule: d = max|v| / 127, q = round(v / d)).
  for (uint b = lid; b < pc.dim / 32u; b += WG) {
    float v[32];
    [[unroll]] for (uint j = 0u; j < 32u; ++j) {
      const uint i = b * 32u + j;
      v[j] = x_values[base + i] * scale * weight_values[i];
      out_values[base + i] = v[j];
    }
    const uint block = base / 32u + b;
    const Q8Block q = q8_block(v);
    [[unroll]] for (uint w = 0u; w < 8u; ++w) xq_words[block * 8u + w] = q.words[w];
    xd_values[block] = q.d;
    xs_values[block] = q.xs;
  }
#endif
}
