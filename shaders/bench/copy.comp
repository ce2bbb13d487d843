#version 450
// Memory bandwidth probe: dst[i] = src[i] over n uvec4 (16-byte) elements, grid-stride loop so a
// fixed number of workgroups covers any size. Bytes moved = 2 * 16 * n (read + write), the same
// convention as a device-to-device copy.
// Dispatch: (groups, 1, 1). Specialization: 0 = workgroup size.
layout(constant_id = 0) const uint WG = 256;
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer Src { uvec4 src[]; };
layout(std430, binding = 1) writeonly buffer Dst { uvec4 dst[]; };
layout(push_constant) uniform Push { uint n; } pc;

void main() {
  const uint stride = gl_NumWorkGroups.x * WG;
  for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride) dst[i] = src[i];
}
