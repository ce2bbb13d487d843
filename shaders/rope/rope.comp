#version 450
// Rotary position embedding, in place. Token t has position pos = step.n_past + t, read from the
// step buffer (not a push constant: recorded steps are replayed with new positions). Pair i
// (i < rot_dim / 2) of every head rotates by theta_i = pos * freq_i, freq_i = base^(-2i/rot_dim):
//   NEOX == 0 (llama/Mixtral, GGUF layout): elements (2i, 2i + 1)
//   NEOX != 0 (qwen2moe/qwen3moe):          elements (i, i + rot_dim / 2)
// Dims rot_dim..head_dim-1 are left as they are.
// Accuracy: theta reaches ~3e4 rad at position 3e4; fp32 alone would lose ~1e-3 rad there. So
// freq_i = scale^i is computed as a double-float (hi + lo, ~44 bits) by binary powering of
// scale = base^(-2/rot_dim), which the host passes as hi + lo of the double; pos * freq is formed
// as hi + lo with Dekker's exact products (no fma needed), reduced modulo pi/2 with Cody-Waite constants
// short enough that n * C is exact (quadrant counts n < 2^19: positions up to ~8e5 stay at ~1e-7
// rad), and sin/cos come from Taylor polynomials on [-pi/4, pi/4] (the built-ins only promise
// 2^-11 absolute error, and only inside [-pi, pi]). `precise` stops the compiler from
// reassociating or contracting the compensated arithmetic.
// Inputs:  x (binding 0) f32 [n_tokens][n_head][head_dim] (read and written);
//          step (binding 1) StepParams {n_past, n_tokens, reserved[2]} (ops/tensor.hpp);
// Dispatch: pairs P = n_tokens * n_head * rot_dim / 2, one thread each, as
//          (min(G, 65535), div_up(G, 65535), 1) workgroups with G = div_up(P, WG).
// ROPE_QK variant: q and k of a step in one dispatch (one fewer per layer): x is q with n_head
//          heads, y (binding 2) is k [n_tokens][n_head_k][head_dim]; P counts the pairs of both,
//          q's first. Same arithmetic per element as two plain dispatches.
// Specialization: 0 = workgroup size WG.
#include "types.glsl"

layout(constant_id = 0) const uint WG = 256;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) buffer X { float x_values[]; };
layout(std430, binding = 1) readonly buffer Step { uint n_past, step_n_tokens, step_reserved0, step_reserved1; };
#ifdef ROPE_QK
layout(std430, binding = 2) buffer Y { float y_values[]; };
#endif
layout(push_constant) uniform Push {
  uint n_tokens, n_head, head_dim, half_rot, neox;
  float scale_hi, scale_lo;  // base^(-2/rot_dim) as a double-float
#ifdef ROPE_QK
  uint n_head_k;
#endif
} pc;

#include "rope_angle.glsl"

void main() {
  uint pair = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * WG + gl_LocalInvocationID.x;
  uint n_head = pc.n_head;
#ifdef ROPE_QK
  const bool is_k = pair >= pc.n_tokens * pc.n_head * pc.half_rot;
  if (is_k) {
    pair -= pc.n_tokens * pc.n_head * pc.half_rot;
    n_head = pc.n_head_k;
  }
#endif
  const uint pairs_per_token = n_head * pc.half_rot;
  if (pair >= pc.n_tokens * pairs_per_token) return;
  const uint t = pair / pairs_per_token;
  const uint rem = pair % pairs_per_token;
  const uint head = rem / pc.half_rot, i = rem % pc.half_rot;
  const uint base = (t * n_head + head) * pc.head_dim;
  const uint i0 = base + (pc.neox != 0u ? i : 2u * i);
  const uint i1 = pc.neox != 0u ? i0 + pc.half_rot : i0 + 1u;

  const float pos = float(n_past + t);
  const vec2 sc = rope_sin_cos(pos, i, pc.scale_hi, pc.scale_lo);

#ifdef ROPE_QK
  if (is_k) {
    const float x0 = y_values[i0], x1 = y_values[i1];
    y_values[i0] = x0 * sc.y - x1 * sc.x;
    y_values[i1] = x0 * sc.x + x1 * sc.y;
    return;
  }
#endif
  const float x0 = x_values[i0], x1 = x_values[i1];
  x_values[i0] = x0 * sc.y - x1 * sc.x;
  x_values[i1] = x0 * sc.x + x1 * sc.y;
}
