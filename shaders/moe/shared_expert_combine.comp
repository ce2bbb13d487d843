#version 450
// Shared expert (Qwen2-MoE): out[t][i] += (has_gate ? sigmoid(gate_logit[t]) : 1) * shared[t][i].
// Inputs:  shared [n_tokens][n_embd] f32, gate_logit [n_tokens] f32 (any buffer when has_gate = 0).
// In/out:  out [n_tokens][n_embd] f32.
// Dispatch: (ceil(n_embd / WG), n_tokens, 1). Specialization: 0 = WG.
#include "types.glsl"

layout(constant_id = 0) const uint WG = 128;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) buffer Out { float out_values[]; };
layout(std430, binding = 1) readonly buffer Shared { float shared_values[]; };
layout(std430, binding = 2) readonly buffer Gate { float gate_logit[]; };
layout(push_constant) uniform Push { uint n_embd, n_tokens, has_gate; } pc;

void main() {
  const uint i = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
  if (i >= pc.n_embd || t >= pc.n_tokens) return;
  const float scale = pc.has_gate != 0u ? 1.0 / (1.0 + exp(-gate_logit[t])) : 1.0;
  out_values[t * pc.n_embd + i] += scale * shared_values[t * pc.n_embd + i];
}
