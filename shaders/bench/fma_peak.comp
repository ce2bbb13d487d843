#version 450
// Arithmetic peak probe: each invocation runs `iters` x 16 independent fp32 FMA chains (2 flops
// each) and writes one value so the compiler cannot drop the work.
// Dispatch: (groups, 1, 1). Specialization: 0 = workgroup size.
layout(constant_id = 0) const uint WG = 256;
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) writeonly buffer Out { float result[]; };
layout(push_constant) uniform Push { uint iters; float a; float b; } pc;

void main() {
  vec4 x0 = vec4(gl_GlobalInvocationID.x) * 1e-7, x1 = x0 + 1.0, x2 = x0 + 2.0, x3 = x0 + 3.0;
  for (uint i = 0u; i < pc.iters; ++i) {
    x0 = fma(x0, vec4(pc.a), vec4(pc.b));
    x1 = fma(x1, vec4(pc.a), vec4(pc.b));
    x2 = fma(x2, vec4(pc.a), vec4(pc.b));
    x3 = fma(x3, vec4(pc.a), vec4(pc.b));
  }
  vec4 s = x0 + x1 + x2 + x3;
  result[gl_GlobalInvocationID.x] = s.x + s.y + s.z + s.w;
}
