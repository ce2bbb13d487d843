#version 450
// Appends this step's K and V rows to one layer's F16 caches.
// Inputs:  step[4] u32 (StepParams: n_past at [0]; read here, never pushed, so a recorded step
//          replays at new positions); k_new, v_new f32 [n_tokens][n_head_kv][head_dim].
// Outputs: k_cache, v_cache: packHalf2x16 words, layout [n_head_kv][n_ctx][head_dim / 2] (one
//          head's positions are contiguous, so decode reads a chunk of positions as one block).
//          Token t goes to position n_past + t; positions >= n_ctx are dropped (never written
//          out of bounds; the host refuses such steps before they get here).
// Dispatch: (groups, 1, 1), groups * WG threads stride over n_tokens * n_head_kv * head_dim / 2
//          word pairs (any group count works).
// Specialization: constant 0 = workgroup size.
#include "types.glsl"

layout(constant_id = 0) const uint WG = 256;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Step { uint step_values[]; };
layout(std430, binding = 1) readonly buffer KNew { vec2 k_new[]; };
layout(std430, binding = 2) readonly buffer VNew { vec2 v_new[]; };
layout(std430, binding = 3) writeonly buffer KCache { uint k_cache[]; };
layout(std430, binding = 4) writeonly buffer VCache { uint v_cache[]; };
layout(push_constant) uniform Push { uint n_tokens, n_head_kv, half_dim, n_ctx; } pc;

void main() {
  const uint n_past = step_values[0];
  const uint total = pc.n_tokens * pc.n_head_kv * pc.half_dim;
  for (uint i = gl_GlobalInvocationID.x; i < total; i += gl_NumWorkGroups.x * WG) {
    const uint word = i % pc.half_dim;
    const uint head = (i / pc.half_dim) % pc.n_head_kv;
    const uint pos = n_past + i / (pc.half_dim * pc.n_head_kv);
    if (pos >= pc.n_ctx) continue;
    const uint dst = (head * pc.n_ctx + pos) * pc.half_dim + word;
    k_cache[dst] = packHalf2x16(k_new[i]);
    v_cache[dst] = packHalf2x16(v_new[i]);
  }
}
