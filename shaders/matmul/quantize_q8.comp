#version 450
// Activations to int8 for the integer-dot matmul: per 32-element block, d = max|x| / 127 and
// q = round(x / d) (ggml's Q8_0 rule, kept in f32 rather than rounded to f16).
// Input:   x (binding 0) f32 [n_blocks * 32] read as vec4 (a [n_tokens][cols] matrix, cols % 32 == 0).
// Outputs: xq (binding 1) u32 [n_blocks * 8], 4 signed int8 per word, element order;
//          xd (binding 2) f32 [n_blocks]; xs (binding 3) f32 [n_blocks] = d * sum(q), the block
//          sum for weights with an offset (y += offset_w * xs).
// Dispatch: one thread per block; workgroups G = div_up(n_blocks, WG) laid out as
// (min(G, M), div_up(G, min(G, M)), 1) for a per-dimension limit M (65535, Vulkan's guaranteed
// maxComputeWorkGroupCount: a 1-D grid would stop at 65535 * WG blocks, ~4.19M at WG 64, which
// 8192 tokens x 18432 columns exceed); threads past n_blocks in the last grid row do nothing.
// Specialization: 0 = workgroup size.
#include "types.glsl"

layout(constant_id = 0) const uint WG = 64;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer X { vec4 x_values[]; };
layout(std430, binding = 1) writeonly buffer Xq { uint xq_words[]; };
layout(std430, binding = 2) writeonly buffer Xd { float xd_values[]; };
layout(std430, binding = 3) writeonly buffer Xs { float xs_values[]; };
layout(push_constant) uniform Push { uint n_blocks; } pc;

void main() {
  const uint b = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * WG + gl_LocalInvocationID.x;
  if (b >= pc.n_blocks) return;
  vec4 v[8];
  float amax = 0.0;
  [[unroll]] for (uint i = 0u; i < 8u; ++i) {
    v[i] = x_values[b * 8u + i];
    const vec4 a = abs(v[i]);
    amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
  }
  const float d = amax / 127.0;
  const float id = d != 0.0 ? 1.0 / d : 0.0;
  int sum = 0;
  [[unroll]] for (uint i = 0u; i < 8u; ++i) {
    const ivec4 q = ivec4(round(v[i] * id));
    sum += q.x + q.y + q.z + q.w;
    const ivec4 b8 = q & 0xFF;
    xq_words[b * 8u + i] = uint(b8.x | (b8.y << 8) | (b8.z << 16) | (b8.w << 24));
  }
  xd_values[b] = d;
  xs_values[b] = d * float(sum);
}
