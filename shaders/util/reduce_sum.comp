#version 450
// Sum of n floats, in two levels: each workgroup reduces a strided slice into partial[group];
// a second dispatch with one workgroup (n = number of partials) folds those into out[0].
// Inputs:  input[n] f32.  Output: output[gl_WorkGroupID.x] f32 (one per workgroup).
// Dispatch: (groups, 1, 1); each workgroup walks input with stride groups * WG.
// Specialization: constant 0 = workgroup size (power of two).
#include "types.glsl"

layout(constant_id = 0) const uint WG = 256;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Input { float input_values[]; };
layout(std430, binding = 1) writeonly buffer Output { float output_values[]; };
layout(push_constant) uniform Push { uint n; } pc;

shared float partial[WG];

void main() {
  const uint lid = gl_LocalInvocationID.x;
  const uint stride = gl_NumWorkGroups.x * WG;
  float acc = 0.0;
  for (uint i = gl_WorkGroupID.x * WG + lid; i < pc.n; i += stride) acc += input_values[i];
  partial[lid] = acc;
  barrier();
  [[unroll]] for (uint s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) partial[lid] += partial[lid + s];
    barrier();
  }
  if (lid == 0u) output_values[gl_WorkGroupID.x] = partial[0];
}
