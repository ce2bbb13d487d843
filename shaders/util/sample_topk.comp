#version 450
// Sampling on the GPU from one row of logits: the row's KMAX (64) best (value, index) pairs,
// best first (the larger value; the lower index among equals; NaN counts as -inf), and, where
// params.k > 0, a token drawn from the first k of them the way generate::Sampler draws from its
// top-k candidates: softmax at temperature 1, top-p, min-p, softmax at the temperature, then
// the first candidate whose cumulative probability exceeds params.u (a uniform draw in [0, 1)
// the host made). A temperature <= 0 takes the best candidate. So only 64 pairs and one id
// leave the GPU, and a chained step can take its token from `ids` without the host.
// Penalties (params.window > 0) rewrite the logits of the tokens at the last `window` positions
// first, as generate::Sampler does, so the candidates and the draw are those of the penalised row.
// params.all != 0 (top-k off, or above KMAX): the draw is over the whole row instead, as
// generate::Sampler draws: a top-k keeps the row's first k, min-p the tokens whose exp(l - max)
// reaches min_p, top-p the shortest best-first prefix of those whose mass reaches top_p of the
// row's (of the k's, with a top-k), then the draw at the temperature in best-first order. Every
// slice stores its (penalised) keys and its sum of exp(l - its max) in the scratch; the last
// workgroup decides among the best KMAX where the cuts fall inside them (a peaked row), or
// where nothing cuts the row and the draw's point falls among them (the slices also sum their
// weights at the temperature then), and
// otherwise finds top-k's cut (by place) and top-p's by radix selects over the row
// (select_entry below), then the draw among the kept tokens gathered and sorted where they are
// at most N (draw_gathered), else by one more select: no sort of the vocabulary, still one
// dispatch.
// Bindings: 0 logits f32 [n_cols] (read); 1 params (SampleParams, read); 2 candidates u32
//           [2 KMAX]: (value bits, index) pairs, a missing one (n_cols < KMAX) as (-inf, NONE);
//           3 ids u32 [1]: the drawn token (written only where params.k > 0 or params.all);
//           4 scratch (pc.split > 1, or params.all): a counter at word 0 (zero before the
//           dispatch, zero after), then split lists of KMAX pairs from word pc.partial_base;
//           5 ring u32 [pc.ring]: tokens by position (read for penalties; the draw's token
//           stored at last_pos + 1).
//           Scratch for params.all: (max key, sum bits, sum at the temperature bits; the last
//           only where whole_row_uncut()) per slice from word pc.sums_base, the
//           row's keys from word pc.keys_base (ops::SampleTopK::scratch_bytes has room for both).
// pc.split = S: dispatch (S, 1, 1); workgroup s takes columns [s chunk, (s + 1) chunk)
//           (chunk = div_up(n_cols, S) <= N), keeps its KMAX best, stores them, fences and
//           counts itself in on the counter; the last to arrive merges the S lists, resets the
//           counter for the next replay and writes the outputs. S = 1: one workgroup, no
//           scratch. No second dispatch, no barrier.
// Both selections bound the best KMAX from below first (a slice: the smallest of 64 group
// maxima, typically the 200-400th of 2048; the merge: the largest list minimum), then count the
// entries above it in WG bins up to the largest key and keep the highest bins that hold KMAX
// (typically 64-100 entries), and rank only those (at most CAP) by counting, in shared memory. Where more reach it (many equal values), a bitonic network sorts the slice whole, and
// merges the lists up to N / KMAX at a time, the best so far among them: each list is sorted,
// so only the network's last log2(N / KMAX) levels run.
#include "types.glsl"
#extension GL_KHR_memory_scope_semantics : require

const uint WG = 256;
const uint N = 2048;          // shared sort slots
const uint KMAX = 64;         // candidates kept (ops::SampleTopK::kMaxK)
const uint NONE = 0xFFFFFFFFu;  // index of a missing entry: loses every tie
const uint PER = N / WG;      // slice entries per invocation
const uint CAP = 512;         // entries past the cut ranked alone (more: the whole slice sorted)
layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer Logits { float logit_values[]; };
layout(std430, binding = 1) readonly buffer Params {
  uint k;             // candidates to draw from (<= KMAX); 0: candidates only
  float temperature;  // <= 0: the best candidate
  float top_p;        // >= 1: off
  float min_p;        // <= 0: off
  float u;            // the draw, in [0, 1)
  // Penalties over the tokens at positions (last_pos - window, last_pos] (ring, binding 5), as
  // generate::Sampler applies them: a repeated logit l becomes l / repeat_penalty (l > 0) or
  // l * repeat_penalty, then less count * frequency + presence. window 0: none; any other
  // reads min(window, last_pos + 1, pc.ring) positions.
  float repeat_penalty, presence, frequency;
  uint window, last_pos;
  uint all;  // nonzero: draw from the whole row, k then its top-k (0: off; the op sends k > KMAX)
} params;
layout(std430, binding = 2) writeonly buffer Candidates { uint candidates[]; };
layout(std430, binding = 3) writeonly buffer Ids { uint ids[]; };
// coherent: the last workgroup reads what the others stored. The second view reads the row's
// keys 4 at a time (pc.keys_base is a multiple of 4, the region rounded up to 4 words).
layout(std430, binding = 4) coherent buffer Scratch { uint scratch[]; };
layout(std430, binding = 4) coherent buffer ScratchWide { uvec4 scratch_wide[]; };
// The row's tokens by position, position p at p % pc.ring (the host writes it before an
// unchained step; the draw writes the next position's token, the one a chained step then
// decodes). The window reads at most pc.ring positions, so distinct ones; the draw's write comes
// after every workgroup's reads (the last to arrive makes it).
layout(std430, binding = 5) buffer Ring { uint ring[]; };
layout(push_constant) uniform Push { uint n_cols, split, partial_base, sums_base, keys_base, ring; } pc;

// Entries as (key, index): key orders like the float (NaN as -inf, -0 as 0), 0 below every
// value (a missing entry). "a before b": the larger key, or the same key and the lower index.
// The shared arrays here and below add up to 18876 bytes: ops::SampleTopK::kSharedBytes.
shared uint skey[N];
shared uint sidx[N];
shared uint arrival;
shared uint group_max[KMAX];  // the threshold's group maxima
shared uint threshold, top, picked, cut;
shared uint hist[WG];  // entries per key bin between the bounds (bin_of)
shared float fsum[WG];  // workgroup_sum's tree; select_entry's bin partials

uint to_key(float v) {
  uint b = floatBitsToUint(isnan(v) ? uintBitsToFloat(0xFF800000u) : v);
  if (b == 0x80000000u) b = 0u;  // -0 is 0: equal values tie on the index
  return (b & 0x80000000u) != 0u ? ~b : b | 0x80000000u;
}
float from_key(uint key) {
  if (key == 0u) return uintBitsToFloat(0xFF800000u);
  return uintBitsToFloat((key & 0x80000000u) != 0u ? key & 0x7FFFFFFFu : ~key);
}
bool before(uint ka, uint ia, uint kb, uint ib) { return ka > kb || (ka == kb && ia < ib); }

// Bitonic network over slots [0, m) (m a power of two, m <= N), levels first_level..m: slot
// blocks of first_level / 2 must already be sorted, alternately best first and best last
// (first_level = 2: nothing sorted). Ends with [0, m) best first, and a barrier.
void sort(uint m, uint first_level) {
  for (uint level = first_level; level <= m; level <<= 1u) {
    for (uint j = level >> 1u; j > 0u; j >>= 1u) {
      for (uint p = gl_LocalInvocationID.x; p < m / 2u; p += WG) {
        const uint lo = (p / j) * 2u * j + p % j, hi = lo + j;
        const uint klo = skey[lo], ilo = sidx[lo], khi = skey[hi], ihi = sidx[hi];
        // Best first in blocks whose `level` bit is clear, best last in the others.
        const bool best_first = (lo & level) == 0u;
        if (best_first == before(khi, ihi, klo, ilo)) {
          skey[lo] = khi;
          sidx[lo] = ihi;
          skey[hi] = klo;
          sidx[hi] = ilo;
        }
      }
      barrier();
    }
  }
}

uint pow2_at_least(uint x) {
  uint m = KMAX;
  while (m < x) m <<= 1u;
  return m;
}

// An entry's weight: for top-p exp(l - M), for the draw exp((l - M) / temperature).
float weight_of(uint key, float row_max, bool drawing) {
  const float d = from_key(key) - row_max;
  return drawing ? exp(d / params.temperature) : exp(d);
}

// Thread 0: the draw among slots [b, b + n) (best first, 1 <= n <= N, `best` the row's largest
// value) at the temperature: the first whose cumulative weight exceeds u times the total. The
// weights are computed again for the walk (n may be N: no array of them).
uint walk_tempered(uint b, uint n, float best, float r);
uint draw_tempered(uint b, uint n, float best) {
  float sum = 0.0;
  for (uint i = 0u; i < n; ++i) sum += weight_of(skey[b + i], best, true);
  const uint token = walk_tempered(b, n, best, params.u * sum);
  return token != NONE ? token : sidx[b + n - 1u];
}
// Thread 0: the first of slots [b, b + n) whose cumulative weight at the temperature exceeds r;
// NONE where none does.
uint walk_tempered(uint b, uint n, float best, float r) {
  float cum = 0.0;
  for (uint i = 0u; i < n; ++i) {
    cum += weight_of(skey[b + i], best, true);
    if (r < cum) return sidx[b + i];
  }
  return NONE;
}

// Thread 0: the draw from slots [b, b + KMAX) (best first), as generate::Sampler does it.
uint draw(uint b) {
  uint n = 0u;  // the valid entries among the first k
  const uint k = min(params.k, KMAX);
  while (n < k && sidx[b + n] != NONE) ++n;
  if (n == 0u) return 0u;
  const float best = from_key(skey[b]);
  if (params.temperature <= 0.0 || isinf(best)) return sidx[b];  // greedy; or a row of no numbers
  // Probabilities at temperature 1 (for top-p and min-p).
  float p[KMAX];
  float sum = 0.0;
  for (uint i = 0u; i < n; ++i) {
    p[i] = exp(from_key(skey[b + i]) - best);
    sum += p[i];
  }
  for (uint i = 0u; i < n; ++i) p[i] /= sum;
  if (params.top_p < 1.0) {
    float cum = 0.0;
    uint kept = 0u;
    while (kept < n) {
      cum += p[kept++];
      if (cum >= params.top_p) break;
    }
    n = max(kept, 1u);
  }
  if (params.min_p > 0.0) {
    const float threshold = p[0] * params.min_p;
    uint kept = 1u;
    while (kept < n && p[kept] >= threshold) ++kept;
    n = kept;
  }
  return draw_tempered(b, n, best);
}

// A key's bin among WG bins from lo to hi: non-decreasing in the key, so the keys of the bins
// from any one up are all those above some key, ties included.
uint bin_of(uint key, uint lo, uint hi) {
  if (hi <= lo) return 0u;
  return min(WG - 1u, uint(float(key - lo) / float(hi - lo) * float(WG)));
}

// Thread 0: the highest bin whose bins from it up hold at least KMAX entries (0 where all of
// them hold fewer), into `cut`. Ends with a barrier.
void find_cut() {
  if (gl_LocalInvocationID.x == 0u) {
    uint held = 0u, b = WG - 1u;
    for (;; --b) {
      held += hist[b];
      if (held >= KMAX || b == 0u) break;
    }
    cut = b;
  }
  barrier();
}

// Slots [0, n) (n <= CAP, unsorted) to their KMAX best, best first, at slots [CAP, CAP + KMAX):
// each entry's rank is the count of entries before it (the order is total: indices differ), a
// pass over the n entries that every invocation makes in step (broadcast loads), and one
// barrier, where a sort would take dozens. Slots of ranks nobody has (n < KMAX) are missing
// entries. Ends with a barrier.
void rank_select(uint n) {
  const uint lid = gl_LocalInvocationID.x;
  for (uint i = lid; i < n; i += WG) {
    const uint key = skey[i], index = sidx[i];
    uint rank = 0u;
    for (uint j = 0u; j < n; ++j) rank += before(skey[j], sidx[j], key, index) ? 1u : 0u;
    if (rank < KMAX) {
      skey[CAP + rank] = key;
      sidx[CAP + rank] = index;
    }
  }
  barrier();
}

// Whole-row sampling (params.all): store_slice, select_entry, draw_whole_row.
#include "sample_whole_row.glsl"

void finish(uint b) {
  const uint lid = gl_LocalInvocationID.x;
  if (lid < KMAX) {
    candidates[2u * lid] = floatBitsToUint(from_key(skey[b + lid]));
    candidates[2u * lid + 1u] = sidx[b + lid];
  }
  if (params.all != 0u) {  // uniform
    draw_whole_row(b);
    return;
  }
  if (lid == 0u && params.k > 0u) {
    const uint token = draw(b);
    ids[0] = token;
    ring[(params.last_pos + 1u) % pc.ring] = token;
  }
}

// The penalties on the slice's keys (columns [begin, end), in registers as main() loads them):
// the window's tokens counted per column of the slice in the sort slots (the threads take its
// positions in turn: any window, window / WG passes), then each column counted rewrites its key.
void penalise(inout uint keys[PER], uint begin, uint end) {
  const uint lid = gl_LocalInvocationID.x;
  [[unroll]] for (uint t = 0u; t < PER; ++t) skey[lid + t * WG] = 0u;
  barrier();
  const uint w = min(min(params.window, params.last_pos + 1u), pc.ring);
  for (uint j = lid; j < w; j += WG) {
    const uint id = ring[(params.last_pos - j) % pc.ring];
    if (id >= begin && id < end) atomicAdd(skey[id - begin], 1u);
  }
  barrier();
  [[unroll]] for (uint t = 0u; t < PER; ++t) {
    const uint count = skey[lid + t * WG];
    if (count > 0u) {
      precise float l = from_key(keys[t]);  // the logit (NaN already -inf, -0 already 0)
      if (params.repeat_penalty != 1.0) l = l > 0.0 ? l / params.repeat_penalty : l * params.repeat_penalty;
      precise float less = float(count) * params.frequency + params.presence;
      keys[t] = to_key(l - less);
    }
  }
  barrier();  // the slots are free for the selection
}

void main() {
  const uint lid = gl_LocalInvocationID.x;
  const uint chunk = div_up(pc.n_cols, pc.split);
  const uint begin = gl_WorkGroupID.x * chunk, end = min(begin + chunk, pc.n_cols);
  const uint n_here = end > begin ? end - begin : 0u;
  // The slice in registers, PER a thread, coalesced; then the threshold: each group of 4
  // threads' largest key, and the smallest of those 64 maxima. At least KMAX entries (those
  // maxima) are >= it, so the KMAX best are among the entries >= it: usually a few hundred of
  // the 2048, which are compacted and sorted in place of the whole slice.
  uint keys[PER];
  [[unroll]] for (uint t = 0u; t < PER; ++t) {
    const uint s = lid + t * WG;
    keys[t] = s < n_here ? to_key(logit_values[begin + s]) : 0u;
  }
  if (params.window > 0u) penalise(keys, begin, end);  // uniform
  uint thread_max = 0u;
  [[unroll]] for (uint t = 0u; t < PER; ++t) thread_max = max(thread_max, keys[t]);
  if (lid < KMAX) group_max[lid] = 0u;
  hist[lid] = 0u;
  if (lid == 0u) {
    threshold = 0xFFFFFFFFu;
    top = 0u;
    picked = 0u;
  }
  barrier();
  atomicMax(group_max[lid / (WG / KMAX)], thread_max);
  atomicMax(top, thread_max);
  barrier();
  if (lid < KMAX) atomicMin(threshold, group_max[lid]);
  barrier();
  const uint lo = threshold, hi = top;
  if (params.all != 0u) store_slice(keys, begin, n_here, hi);  // uniform
  [[unroll]] for (uint t = 0u; t < PER; ++t)
    if (lid + t * WG < n_here && keys[t] >= lo) atomicAdd(hist[bin_of(keys[t], lo, hi)], 1u);
  barrier();
  find_cut();
  const uint cut_bin = cut;
  [[unroll]] for (uint t = 0u; t < PER; ++t) {
    const uint s = lid + t * WG;
    if (s < n_here && keys[t] >= lo && bin_of(keys[t], lo, hi) >= cut_bin) {
      const uint slot = atomicAdd(picked, 1u);
      if (slot < CAP) {
        skey[slot] = keys[t];
        sidx[slot] = begin + s;
      }
    }
  }
  barrier();
  const uint n_picked = picked;  // uniform
  uint best_at = 0u;  // where the slice's best KMAX are, best first
  if (n_picked <= CAP) {
    if (lid < KMAX) {  // ranks past n_picked stay missing
      skey[CAP + lid] = 0u;
      sidx[CAP + lid] = NONE;
    }
    barrier();
    rank_select(n_picked);
    best_at = CAP;
  } else {
    // Too many at the threshold (many equal values: a masked or constant row): the whole slice.
    const uint m = pow2_at_least(n_here);
    [[unroll]] for (uint t = 0u; t < PER; ++t) {
      const uint s = lid + t * WG;
      if (s < m) {
        skey[s] = keys[t];
        sidx[s] = s < n_here ? begin + s : NONE;
      }
    }
    barrier();
    sort(m, 2u);
  }
  if (pc.split <= 1u) {
    finish(best_at);
    return;
  }
  const uint at = pc.partial_base + 2u * KMAX * gl_WorkGroupID.x;
  if (lid < KMAX) {
    scratch[at + 2u * lid] = skey[best_at + lid];
    scratch[at + 2u * lid + 1u] = sidx[best_at + lid];
  }
  // Release: a device-scope barrier over buffer memory orders the list's stores before the
  // count, itself a device-scope acquire-release atomic; the last to count acquires every
  // other's release, and the second barrier passes that on to its invocations, whose coherent
  // loads then see all lists (as argmax.comp).
  controlBarrier(gl_ScopeWorkgroup, gl_ScopeDevice, gl_StorageSemanticsBuffer | gl_StorageSemanticsShared,
                 gl_SemanticsAcquireRelease);
  if (lid == 0u) arrival = atomicAdd(scratch[0], 1u, gl_ScopeDevice, gl_StorageSemanticsBuffer, gl_SemanticsAcquireRelease);
  controlBarrier(gl_ScopeWorkgroup, gl_ScopeDevice, gl_StorageSemanticsBuffer | gl_StorageSemanticsShared,
                 gl_SemanticsAcquireRelease);
  if (arrival != pc.split - 1u) return;  // uniform: one shared value
  if (lid == 0u) scratch[0] = 0u;  // for the next replay (a later dispatch, after a barrier)
  // The merge. Each list's last (KMAX-th) entry bounds the best KMAX from below, so the largest
  // of those bounds does too, and the lists' first entries bound everything from above: the
  // same histogram cut as for a slice, over the entries >= the lower bound (each list's prefix).
  // Where too many pass it, the rounds below.
  barrier();  // every invocation has read `picked`, `cut` and the bounds of the slice above
  hist[lid] = 0u;
  if (lid == 0u) {
    threshold = 0u;
    top = 0u;
    picked = 0u;
  }
  barrier();
  for (uint l = lid; l < pc.split; l += WG) {
    atomicMax(threshold, scratch[pc.partial_base + 2u * KMAX * l + 2u * (KMAX - 1u)]);
    atomicMax(top, scratch[pc.partial_base + 2u * KMAX * l]);
  }
  barrier();
  const uint bound = threshold, head = top;
  for (uint e = lid; e < pc.split * KMAX; e += WG) {
    const uint from = pc.partial_base + 2u * e;
    const uint key = scratch[from], index = scratch[from + 1u];
    if (index != NONE && key >= bound) atomicAdd(hist[bin_of(key, bound, head)], 1u);
  }
  barrier();
  find_cut();
  const uint merge_cut = cut;
  for (uint e = lid; e < pc.split * KMAX; e += WG) {
    const uint from = pc.partial_base + 2u * e;
    const uint key = scratch[from], index = scratch[from + 1u];
    if (index != NONE && key >= bound && bin_of(key, bound, head) >= merge_cut) {
      const uint slot = atomicAdd(picked, 1u);
      if (slot < CAP) {
        skey[slot] = key;
        sidx[slot] = index;
      }
    }
  }
  barrier();
  const uint n_merged = picked;  // uniform
  if (n_merged <= CAP) {
    if (lid < KMAX) {
      skey[CAP + lid] = 0u;
      sidx[CAP + lid] = NONE;
    }
    barrier();
    rank_select(n_merged);
    finish(CAP);
    return;
  }
  // Merge rounds. Block 0 holds the best KMAX so far (after the first round); blocks 1.. take
  // the next lists. Odd blocks are loaded reversed (best last), so every pair of blocks is a
  // bitonic sequence and the network starts at level 2 KMAX.
  const uint blocks = N / KMAX;
  uint next = 0u;
  bool first = true;
  while (next < pc.split) {
    const uint first_block = first ? 0u : 1u;
    const uint take = min(blocks - first_block, pc.split - next);
    const uint used = pow2_at_least((first_block + take) * KMAX);
    barrier();  // the last round's reads of the slots are done
    for (uint s = first_block * KMAX + lid; s < used; s += WG) {
      const uint b = s / KMAX, e = s % KMAX;
      const uint list = next + b - first_block;
      if (list < next + take) {
        const uint from = pc.partial_base + 2u * KMAX * list + 2u * ((b & 1u) != 0u ? KMAX - 1u - e : e);
        skey[s] = scratch[from];
        sidx[s] = scratch[from + 1u];
      } else {
        skey[s] = 0u;
        sidx[s] = NONE;
      }
    }
    barrier();
    sort(used, 2u * KMAX);
    next += take;
    first = false;
  }
  finish(0u);
}
