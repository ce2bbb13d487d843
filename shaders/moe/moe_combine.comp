#version 450
// Grouped (prefill) path, last step: back to token order with the routing weights applied,
//   out[t][r] = sum_j w[t][j] * y[grouped_row[t*k+j]][r]   (slots summed in order: deterministic)
// Inputs:  y [n_entries][n_embd] f32 (grouped order), grouped_row [n_entries] u32 (0xFFFFFFFF:
//          entry skipped, its id was >= n_expert), expert_weights [n_tokens*k] f32.
// Output:  out [n_tokens][n_embd] f32, fully overwritten (accumulate != 0: added to).
// Dispatch: (ceil(n_embd / WG), n_tokens, 1). Specialization: 0 = WG.
#include "types.glsl"

layout(constant_id = 0) const uint WG = 128;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer GroupedRow { uint grouped_row[]; };
layout(std430, binding = 2) readonly buffer Wts { float expert_weights[]; };
layout(std430, binding = 3) buffer Out { float out_values[]; };
layout(push_constant) uniform Push { uint n_embd, k, accumulate; } pc;

void main() {
  const uint r = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
  if (r >= pc.n_embd) return;
  float acc = 0.0;
  for (uint j = 0u; j < pc.k; ++j) {
    const uint p = grouped_row[t * pc.k + j];
    if (p != 0xFFFFFFFFu) acc += expert_weights[t * pc.k + j] * y[p * pc.n_embd + r];
  }
  const uint at = t * pc.n_embd + r;
  out_values[at] = pc.accumulate != 0u ? out_values[at] + acc : acc;
}
