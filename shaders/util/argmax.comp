#version 450
// Row-wise argmax: ids[r] = the index of the largest logits[r][c], c < n_cols; the lowest index
// wins ties. A NaN counts as -inf (it never wins over a number; a row of only NaN/-inf gives 0),
// so a broken row still yields a valid token id. A strided (coalesced) scan per thread, then a
// shared-memory (value, index) tree.
// Inputs:  logits (binding 0) f32 [n_rows][n_cols].  Output: ids (binding 1) u32 [n_rows].
// pc.split <= 1: one workgroup per row, rows laid out as (min(n_rows, 65535), div_up(n_rows, 65535), 1).
// pc.split = S > 1, for vocabulary-sized rows (one workgroup would scan 152k columns alone):
//          dispatch (S, n_rows, 1); workgroup (s, r) scans columns [s * chunk, (s + 1) * chunk)
//          of row r (chunk = div_up(n_cols, S)), stores its (value, index) in scratch (binding 2)
//          at word pc.partial_base + 2 (r S + s), fences, and counts itself in on scratch[r]
//          (zero before the dispatch); the last of the row's S to arrive folds the S partials
//          into ids[r] and resets scratch[r] to zero for the next replay. No second dispatch,
//          no barrier.
// Specialization: 0 = workgroup size WG (power of two, >= S).
#include "types.glsl"
#extension GL_KHR_memory_scope_semantics : require

layout(constant_id = 0) const uint WG = 256;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Logits { float logit_values[]; };
layout(std430, binding = 1) writeonly buffer Ids { uint ids[]; };
// coherent: the last workgroup of a row reads what the others stored.
layout(std430, binding = 2) coherent buffer Scratch { uint scratch[]; };
layout(push_constant) uniform Push { uint n_rows, n_cols, split, partial_base; } pc;

const uint NONE = 0xFFFFFFFFu;  // "no index yet": loses every tie
shared float best_value[WG];
shared uint best_index[WG];
shared uint arrival;

float key(float v) { return isnan(v) ? uintBitsToFloat(0xFF800000u) : v; }

// Folds every thread's (value, index) into best_*[0]: the larger value, the lower index on ties.
void tree(uint lid, float value, uint index) {
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
}

void main() {
  const uint lid = gl_LocalInvocationID.x;
  const bool split = pc.split > 1u;
  const uint row = split ? gl_WorkGroupID.y : gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (row >= pc.n_rows) return;  // uniform per workgroup
  const uint base = row * pc.n_cols;
  const uint chunk = split ? (pc.n_cols + pc.split - 1u) / pc.split : pc.n_cols;
  const uint begin = split ? gl_WorkGroupID.x * chunk : 0u, end = min(begin + chunk, pc.n_cols);
  // Each thread visits increasing indices, so a strict > keeps its lowest index among equals.
  float value = uintBitsToFloat(0xFF800000u);
  uint index = NONE;
  for (uint c = begin + lid; c < end; c += WG) {
    const float v = key(logit_values[base + c]);
    if (index == NONE || v > value) {
      value = v;
      index = c;
    }
  }
  tree(lid, value, index);
  if (!split) {
    if (lid == 0u) ids[row] = best_index[0] == NONE ? 0u : best_index[0];
    return;
  }
  const uint at = pc.partial_base + 2u * (row * pc.split + gl_WorkGroupID.x);
  if (lid == 0u) {
    scratch[at] = floatBitsToUint(best_value[0]);
    scratch[at + 1u] = best_index[0];
  }
  // Release: a device-scope barrier over buffer memory orders the partial's stores before the
  // count, itself a device-scope acquire-release atomic; the last to count acquires every
  // other's release, and the second barrier passes that on to its invocations, whose coherent
  // loads then see all partials.
  controlBarrier(gl_ScopeWorkgroup, gl_ScopeDevice, gl_StorageSemanticsBuffer | gl_StorageSemanticsShared,
                 gl_SemanticsAcquireRelease);
  if (lid == 0u) arrival = atomicAdd(scratch[row], 1u, gl_ScopeDevice, gl_StorageSemanticsBuffer, gl_SemanticsAcquireRelease);
  controlBarrier(gl_ScopeWorkgroup, gl_ScopeDevice, gl_StorageSemanticsBuffer | gl_StorageSemanticsShared,
                 gl_SemanticsAcquireRelease);
  if (arrival != pc.split - 1u) return;  // uniform: one shared value
  if (lid == 0u) scratch[row] = 0u;  // for the next replay (a later dispatch, after a barrier)
  value = uintBitsToFloat(0xFF800000u);
  index = NONE;
  for (uint s = lid; s < pc.split; s += WG) {  // increasing slices: increasing indices
    const uint p = pc.partial_base + 2u * (row * pc.split + s);
    const float v = uintBitsToFloat(scratch[p]);
    const uint i = scratch[p + 1u];
    if (v > value || (v == value && i < index)) {
      value = v;
      index = i;
    }
  }
  tree(lid, value, index);
  if (lid == 0u) ids[row] = best_index[0] == NONE ? 0u : best_index[0];
}
