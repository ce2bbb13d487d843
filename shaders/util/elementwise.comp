#version 450
// Element-wise ops on f32 vectors, one define per op:
//   OP_ADD     out[i] = a[i] + b[i]                (residual adds)
//   OP_SWIGLU  out[i] = silu(a[i]) * b[i]          (a = gate, b = up; silu(g) = g / (1 + e^-g))
// In place is fine (out may alias a or b: each element is read and written by one thread).
// Inputs:  a (binding 0), b (binding 1) f32 [n].  Output: out (binding 2) f32 [n].
// Dispatch: (min(div_up(n, WG), 65535), 1, 1); threads stride by the whole grid, so any n works.
// Specialization: 0 = workgroup size WG.
#include "types.glsl"

layout(constant_id = 0) const uint WG = 256;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer A { float a_values[]; };
layout(std430, binding = 1) readonly buffer B { float b_values[]; };
layout(std430, binding = 2) writeonly buffer Out { float out_values[]; };
layout(push_constant) uniform Push { uint n; } pc;

void main() {
  const uint stride = gl_NumWorkGroups.x * WG;
  for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride) {
#if defined(OP_ADD)
    out_values[i] = a_values[i] + b_values[i];
#elif defined(OP_SWIGLU)
    const float g = a_values[i];
    // exp(-g) overflows to inf for g < -88: g / inf = -0, the right limit. precise: swiglu_q8.comp
    // computes the same expression and must get the same bits.
    precise float h = g / (1.0 + exp(-g)) * b_values[i];
    out_values[i] = h;
#else
#error "define OP_ADD or OP_SWIGLU"
#endif
  }
}
