#version 450
// Expert-choice histogram for `moevk run --expert-stats`: counts how often each expert is among a
// token's top-k, accumulated over every decoded token, per layer.
// Inputs:  expert_ids[n_ids] u32 (the router's [n_tokens][k] output, flattened).
// Output:  counts[base + e] u32, e < n_expert, incremented atomically (never cleared here).
//          Ids >= n_expert are ignored (they cannot come from the router; the guard keeps a
//          bad id from writing into the next layer's counts).
// Dispatch: (ceil(n_ids / WG), 1, 1).
// Specialization: constant 0 = workgroup size.

layout(constant_id = 0) const uint WG = 64;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer ExpertIds { uint expert_ids[]; };
layout(std430, binding = 1) buffer Counts { uint counts[]; };
layout(push_constant) uniform Push {
  uint n_ids;
  uint n_expert;
  uint base;  // first counter of this layer (layer * n_expert)
} pc;

void main() {
  const uint i = gl_GlobalInvocationID.x;
  if (i >= pc.n_ids) return;
  const uint e = expert_ids[i];
  if (e < pc.n_expert) atomicAdd(counts[pc.base + e], 1u);
}
