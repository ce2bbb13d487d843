#version 450
// Grouped (prefill) path, the grouping in one dispatch: per-expert counts, exclusive prefix
// offsets, row-tile starts, and the stable permutation that groups the (token, slot) entries by
// expert, ascending entry order (= token order) within an expert.
// Workgroup e first counts every expert's entries into a shared histogram (each workgroup builds
// the whole histogram itself: n_entries reads from cache, and no second dispatch and barrier to
// hand the counts over), sums the counts and tiles of experts < e, then walks all entries in
// chunks of WG with a shared-memory prefix scan of "entry i goes to expert e".
// group (u32 scratch), for E = n_expert (<= MAX_EXPERTS):
//   [0, E)            tokens_per_expert
//   [E, 2E+1)         expert_offset: first grouped row of expert e; [2E] = rows in total
//   [2E+1, 3E+2)      tile_start: first row tile of expert e (tiles of TILE_ROWS rows); [3E+1] = tiles
// Input:   expert_ids [n_entries] u32 (n_entries = n_tokens * k); ids >= n_expert are grouped nowhere.
// Outputs: group; grouped_entry [n_entries] (grouped row p holds entry grouped_entry[p] = t*k+j);
//          grouped_row [n_entries] (inverse; 0xFFFFFFFF for an entry whose id >= n_expert).
// Dispatch: (n_expert, 1, 1). Specialization: 0 = WG (power of two).
#include "types.glsl"

layout(constant_id = 0) const uint WG = 128;
layout(local_size_x_id = 0) in;
const uint MAX_EXPERTS = 1024u;  // MoeExperts::kMaxGroupedExperts

layout(std430, binding = 0) readonly buffer Ids { uint expert_ids[]; };
layout(std430, binding = 1) writeonly buffer Group { uint group_info[]; };
layout(std430, binding = 2) writeonly buffer GroupedEntry { uint grouped_entry[]; };
layout(std430, binding = 3) writeonly buffer GroupedRow { uint grouped_row[]; };
layout(push_constant) uniform Push { uint n_entries, n_expert, tile_rows; } pc;

shared uint histogram[MAX_EXPERTS];
shared uint scan[2][WG];

void main() {
  const uint lid = gl_LocalInvocationID.x;
  const uint e = gl_WorkGroupID.x;
  const uint E = pc.n_expert;

  for (uint x = lid; x < E; x += WG) histogram[x] = 0u;
  barrier();
  // Integer atomics: the counts do not depend on the order they land in.
  for (uint i = lid; i < pc.n_entries; i += WG) {
    const uint id = expert_ids[i];
    if (id < E) atomicAdd(histogram[id], 1u);
  }
  barrier();

  uint rows_before = 0u, tiles_before = 0u;
  for (uint x = lid; x < e; x += WG) {
    const uint c = histogram[x];
    rows_before += c;
    tiles_before += div_up(c, pc.tile_rows);
  }
  scan[0][lid] = rows_before;
  scan[1][lid] = tiles_before;
  barrier();
  for (uint s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      scan[0][lid] += scan[0][lid + s];
      scan[1][lid] += scan[1][lid + s];
    }
    barrier();
  }
  const uint offset = scan[0][0], first_tile = scan[1][0];
  const uint count = histogram[e];
  if (lid == 0u) {
    group_info[e] = count;
    group_info[E + e] = offset;
    group_info[2u * E + 1u + e] = first_tile;
    if (e == E - 1u) {
      group_info[2u * E] = offset + count;
      group_info[3u * E + 1u] = first_tile + div_up(count, pc.tile_rows);
    }
  }
  barrier();  // scan[] is rewritten below

  // Stable ranks: inclusive Hillis-Steele scan over each chunk, ping-ponging between scan[0/1].
  // A workgroup stops after its expert's last entry (running and count are uniform), except
  // workgroup 0, which also marks every entry whose id is out of range.
  uint running = 0u;
  for (uint base = 0u; base < pc.n_entries && (running < count || e == 0u); base += WG) {
    const uint i = base + lid;
    const uint id = i < pc.n_entries ? expert_ids[i] : E;
    const uint flag = id == e ? 1u : 0u;
    if (e == 0u && i < pc.n_entries && id >= E) grouped_row[i] = 0xFFFFFFFFu;
    uint src = 0u;
    scan[0][lid] = flag;
    barrier();
    for (uint s = 1u; s < WG; s <<= 1u) {
      const uint v = scan[src][lid] + (lid >= s ? scan[src][lid - s] : 0u);
      scan[1u - src][lid] = v;
      src = 1u - src;
      barrier();
    }
    const uint inclusive = scan[src][lid], total = scan[src][WG - 1u];
    if (flag == 1u) {
      const uint p = offset + running + inclusive - 1u;
      grouped_entry[p] = i;
      grouped_row[i] = p;
    }
    running += total;
    barrier();  // scan[] is rewritten by the next chunk
  }
}
