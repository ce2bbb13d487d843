#version 450
// Grouped (prefill) path, step 1: tokens_per_expert[e] = number of (token, slot) entries routed
// to expert e. One workgroup per expert scans all entries (no atomics: deterministic, and no
// zero-fill of the counters is needed). Ids >= n_expert are counted nowhere.
// Inputs:  expert_ids [n_entries] u32 (n_entries = n_tokens * k).
// Output:  group[e] = tokens_per_expert[e] (group is the u32 scratch described in moe_group_scatter).
// Dispatch: (n_expert, 1, 1). Specialization: 0 = WG (power of two).
#include "types.glsl"

layout(constant_id = 0) const uint WG = 128;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Ids { uint expert_ids[]; };
layout(std430, binding = 1) writeonly buffer Group { uint group_info[]; };
layout(push_constant) uniform Push { uint n_entries, n_expert; } pc;

shared uint partial[WG];

void main() {
  const uint lid = gl_LocalInvocationID.x;
  const uint e = gl_WorkGroupID.x;
  uint count = 0u;
  for (uint i = lid; i < pc.n_entries; i += WG) count += expert_ids[i] == e ? 1u : 0u;
  partial[lid] = count;
  barrier();
  for (uint s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) partial[lid] += partial[lid + s];
    barrier();
  }
  if (lid == 0u) group_info[e] = partial[0];
}
