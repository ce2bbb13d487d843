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
#include "q8_block.glsl"

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
  float v[32];
  [[unroll]] for (uint i = 0u; i < 8u; ++i) {
    const vec4 x = x_values[b * 8u + i];
    v[4u * i] = x.x, v[4u * i + 1u] = x.y, v[4u * i + 2u] = x.z, v[4u * i + 3u] = x.w;
  }
  const Q8Block q = q8_block(v);
  [[unroll]] for (uint i = 0u; i < 8u; ++i) xq_words[b * 8u + i] = q.words[i];
  xd_values[b] = q.d;
  xs_values[b] = q.xs;
}
