#version 450
// SwiGLU straight into int8 activations: h = silu(gate) * up (elementwise.comp's OP_SWIGLU
// expression), each 32-element block then quantized as quantize_q8.comp does (d = max|h| / 127,
// q = round(h / d), xs = d * sum(q)), so a down product on the integer-dot tiles reads the same
// values as after swiglu and a quantization pass, without the f32 h, that pass or its barrier.
// Inputs:  gate (binding 0), up (binding 1) f32 [n_blocks * 32] read as vec4.
// Outputs: xq (binding 2) u32 [n_blocks * 8], 4 signed int8 per word; xd (binding 3), xs
//          (binding 4) f32 [n_blocks].
// Dispatch: (min(div_up(n_blocks, WG), 65535), 1, 1), one block per thread, striding by the grid.
// Specialization: 0 = workgroup size WG.
#include "types.glsl"
#include "q8_block.glsl"

layout(constant_id = 0) const uint WG = 64;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Gate { vec4 gate_values[]; };
layout(std430, binding = 1) readonly buffer Up { vec4 up_values[]; };
layout(std430, binding = 2) writeonly buffer Xq { uint xq_words[]; };
layout(std430, binding = 3) writeonly buffer Xd { float xd_values[]; };
layout(std430, binding = 4) writeonly buffer Xs { float xs_values[]; };
layout(push_constant) uniform Push { uint n_blocks; } pc;

void main() {
  const uint stride = gl_NumWorkGroups.x * WG;
  for (uint b = gl_GlobalInvocationID.x; b < pc.n_blocks; b += stride) {
    float h[32];
    [[unroll]] for (uint i = 0u; i < 8u; ++i) {
      const vec4 g = gate_values[b * 8u + i], u = up_values[b * 8u + i];
      // exp(-g) overflows to inf for g < -88: g / inf = -0, the right limit.
      [[unroll]] for (uint c = 0u; c < 4u; ++c) {
        precise float v = g[c] / (1.0 + exp(-g[c])) * u[c];
        h[4u * i + c] = v;
      }
    }
    const Q8Block q = q8_block(h);
    [[unroll]] for (uint i = 0u; i < 8u; ++i) xq_words[b * 8u + i] = q.words[i];
    xd_values[b] = q.d;
    xs_values[b] = q.xs;
  }
}
