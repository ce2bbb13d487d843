#version 450
// Row-wise argmax: ids[r] = the index of the largest logits[r][c], c < n_cols; the lowest index
// wins ties. A NaN counts as -inf (it never wins over a number; a row of only NaN/-inf gives 0),
// so a broken row still yields a valid token id. Vocabularies of 152k columns: one workgroup per
// row, a strided (coalesced) scan per thread, then a shared-memory (value, index) tree.
// Inputs:  logits (binding 0) f32 [n_rows][n_cols].  Output: ids (binding 1) u32 [n_rows].
// Dispatch: one workgroup per row, rows laid out as (min(n_rows, 65535), div_up(n_rows, 65535), 1).
// Specialization: 0 = workgroup size WG (power of two).
#include "types.glsl"

layout(constant_id = 0) const uint WG = 256;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Logits { float logit_values[]; };
layout(std430, binding = 1) writeonly buffer Ids { uint ids[]; };
layout(push_constant) uniform Push { uint n_rows, n_cols; } pc;

shared float best_value[WG];
shared uint best_index[WG];

float key(float v) { return isnan(v) ? uintBitsToFloat(0xFF800000u) : v; }

void main() {
  const uint lid = gl_LocalInvocationID.x;
  const uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (row >= pc.n_rows) return;  // uniform per workgroup
  const uint base = row * pc.n_cols;
  // Each thread visits increasing indices, so a strict > keeps its lowest index among equals.
  float value = uintBitsToFloat(0xFF800000u);
  uint index = 0xFFFFFFFFu;  // "none yet": loses every tie below
  for (uint c = lid; c < pc.n_cols; c += WG) {
    const float v = key(logit_values[base + c]);
    if (index == 0xFFFFFFFFu || v > value) {
      value = v;
      index = c;
    }
  }
  best_value[lid] = value;
  best_index[lid] = index;
  barrier();
  for (uint s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      const float v = best_value[lid + s];
      const uint i = best_index[lid + s];
      if (v > best_value[lid] || (v == best_value[lid] && i < best_index[lid])) {
        best_value[lid] = v;
        best_index[lid] = i;
      }
    }
    barrier();
  }
  if (lid == 0u) ids[row] = best_index[0] == 0xFFFFFFFFu ? 0u : best_index[0];
}
