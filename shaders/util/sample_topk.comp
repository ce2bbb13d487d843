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

// ---- Whole-row sampling (params.all) ----

// The sum of every invocation's v, in a fixed order (the same row gives the same sum on every
// run). Ends with a barrier.
float workgroup_sum(float v) {
  const uint lid = gl_LocalInvocationID.x;
  fsum[lid] = v;
  barrier();
  for (uint s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) fsum[lid] += fsum[lid + s];
    barrier();
  }
  const float total = fsum[0];
  barrier();
  return total;
}

// A whole-row draw's top-k: params.k where it cuts the row (0: none). The session sends only
// k > KMAX here (a smaller one takes draw()), but any k gives the rule.
uint topk_cut() { return params.k > 0u && params.k < pc.n_cols ? params.k : 0u; }

// A whole-row draw whose rule keeps the whole row (no top-k, top-p or min-p: a temperature
// alone, as OpenAI-style clients send it by default): the draw's point is u times the row's
// weight at the temperature, which the slices' sums give without a pass over the row.
bool whole_row_uncut() {
  return params.all != 0u && params.temperature > 0.0 && topk_cut() == 0u && params.top_p >= 1.0 &&
         params.min_p <= 0.0;
}

// A slice's keys (penalised) to the scratch, and its (max key, sum of exp(l - max), and where
// whole_row_uncut() the sum at the temperature): the last workgroup's passes read the row from
// there, and the row's totals from the sums.
void store_slice(uint keys[PER], uint begin, uint n_here, uint top_key) {
  const uint lid = gl_LocalInvocationID.x;
  const float m = from_key(top_key);
  const bool tempered = whole_row_uncut();  // uniform
  float part = 0.0, part_tempered = 0.0;
  [[unroll]] for (uint t = 0u; t < PER; ++t) {
    const uint s = lid + t * WG;
    if (s < n_here) {
      scratch[pc.keys_base + begin + s] = keys[t];
      if (!isinf(m)) {
        const float d = from_key(keys[t]) - m;
        part += exp(d);
        if (tempered) part_tempered += exp(d / params.temperature);
      }
    }
  }
  const float total = workgroup_sum(part);
  const float total_tempered = tempered ? workgroup_sum(part_tempered) : 0.0;
  if (lid == 0u) {
    scratch[pc.sums_base + 3u * gl_WorkGroupID.x] = top_key;
    scratch[pc.sums_base + 3u * gl_WorkGroupID.x + 1u] = floatBitsToUint(total);
    scratch[pc.sums_base + 3u * gl_WorkGroupID.x + 2u] = floatBitsToUint(total_tempered);
  }
}

// An entry's place in the best-first order is its 64-bit composite (key, ~index), largest
// first. select_entry fixes it 4 bits at a time from the top: `depth` bits so far, the key's in
// ph (depth <= 32), then the inverted index's in pl.
bool prefix_matches(uint key, uint inv_index, uint ph, uint pl, uint depth) {
  if (depth == 0u) return true;
  if (depth <= 32u) return (key >> (32u - depth)) == ph;
  return key == ph && (inv_index >> (64u - depth)) == pl;
}
uint digit_at(uint key, uint inv_index, uint depth) {
  return depth < 32u ? (key >> (28u - depth)) & 15u : (inv_index >> (60u - depth)) & 15u;
}

// Whether an entry is a candidate: not after the entry (ck, ci) in the best-first order ((0,
// NONE): every entry; no key is 0) and, with_min_p, in min-p's set (exp(l - M) >= min_p, as the
// host's p >= p_max min_p).
bool candidate(uint key, uint index, float row_max, uint ck, uint ci, bool with_min_p) {
  if (key < ck || (key == ck && index > ci)) return false;
  return !with_min_p || params.min_p <= 0.0 || exp(from_key(key) - row_max) >= params.min_p;
}

shared float sel_above;  // the weight of the candidates before the prefix's entries
shared uint sel_above_count;  // and their number
shared uint sel_hi, sel_lo, sel_depth, sel_count, sel_key, sel_index;
shared uint sel_rank;  // the entry's place among the candidates (0: the first)
shared float sel_mass;  // the weight of the candidates up to it, itself included
shared uint bin_count[16];
shared float bin_weight[16];

// select_entry's modes: top-p's cut (weights exp(l - M), the first entry whose cumulative weight
// reaches the target), the draw (weights at the temperature, the first to exceed it), top-k's
// cut (the entry of place `rank`, min-p not applied; weights exp(l - M), for its sel_mass).
const uint SEL_TOP_P = 0u, SEL_DRAW = 1u, SEL_RANK = 2u;
// Whether a select of `mode` has got there with `mass` the candidates' weight and `through` their
// number, up to and including the entries just added.
bool reaches(uint mode, float mass, uint through, float target, uint rank) {
  return mode == SEL_RANK ? through > rank : mode == SEL_DRAW ? mass > target : mass >= target;
}

// Candidates under the prefix (ph, pl, depth) of select_entry (depth 0: all of them) gathered
// into the slots, at most N, and sorted best first; their number (picked counts them all). Ends
// with a barrier; the caller's reads of `picked` and the slots are done before.
uint gather_sorted(uint ph, uint pl, uint depth, float row_max, uint ck, uint ci, bool with_min_p) {
  const uint lid = gl_LocalInvocationID.x;
  if (lid == 0u) picked = 0u;
  barrier();
  for (uint q = lid; 4u * q < pc.n_cols; q += WG) {
    const uvec4 key4 = scratch_wide[pc.keys_base / 4u + q];
    [[unroll]] for (uint c = 0u; c < 4u; ++c) {
      const uint col = 4u * q + c, key = key4[c];
      if (col >= pc.n_cols || !prefix_matches(key, ~col, ph, pl, depth) ||
          !candidate(key, col, row_max, ck, ci, with_min_p))
        continue;
      const uint slot = atomicAdd(picked, 1u);
      if (slot < N) {  // the callers counted at most N
        skey[slot] = key;
        sidx[slot] = col;
      }
    }
  }
  barrier();
  const uint count = min(picked, N);
  const uint m = pow2_at_least(count);
  for (uint s = count + lid; s < m; s += WG) {
    skey[s] = 0u;
    sidx[s] = NONE;
  }
  barrier();
  sort(m, 2u);
  return count;
}

// All invocations: the first candidate (see candidate()) in best-first order at which the
// cumulative weight reaches `target` (SEL_TOP_P: >=) or exceeds it (SEL_DRAW: >), or the last
// candidate where none does, or (SEL_RANK) the entry at place `rank`; into (sel_key,
// sel_index), its place among the candidates into sel_rank, their weight up to it into
// sel_mass. Each pass bins the candidates under the
// prefix by their next 4 bits (weights and counts, per invocation, then summed in a fixed
// order), and the prefix takes the bin where the cumulative weight gets there; once that bin
// holds at most N entries, they are sorted in the slots and walked. A pass reads the row's keys
// once, 4 per 16-byte load (one workgroup's loop: 4 independent keys in flight per load): a
// vocabulary's typical 3-6 passes, at most 16. The slots are overwritten.
void select_entry(uint mode, float target, uint rank, float row_max, uint ck, uint ci) {
  const uint lid = gl_LocalInvocationID.x;
  const bool drawing = mode == SEL_DRAW, with_min_p = mode != SEL_RANK;
  if (lid == 0u) {
    sel_hi = 0u;
    sel_lo = 0u;
    sel_depth = 0u;
    sel_above = 0.0;
    sel_above_count = 0u;
  }
  barrier();
  for (;;) {
    const uint depth = sel_depth, ph = sel_hi, pl = sel_lo;  // uniform
    float weights[16];
    uint counts[16];
    [[unroll]] for (uint d = 0u; d < 16u; ++d) {
      weights[d] = 0.0;
      counts[d] = 0u;
    }
    for (uint q = lid; 4u * q < pc.n_cols; q += WG) {
      const uvec4 key4 = scratch_wide[pc.keys_base / 4u + q];
      [[unroll]] for (uint c = 0u; c < 4u; ++c) {
        const uint col = 4u * q + c, key = key4[c];
        if (col >= pc.n_cols || !prefix_matches(key, ~col, ph, pl, depth) || !candidate(key, col, row_max, ck, ci, with_min_p))
          continue;
        const uint d = digit_at(key, ~col, depth);
        weights[d] += weight_of(key, row_max, drawing);
        counts[d] += 1u;
      }
    }
    // Bin d of invocation i at slot d * WG + i of the 2 N slots (skey, then sidx).
    if (lid < 16u) bin_count[lid] = 0u;
    [[unroll]] for (uint d = 0u; d < 8u; ++d) {
      skey[d * WG + lid] = floatBitsToUint(weights[d]);
      sidx[d * WG + lid] = floatBitsToUint(weights[d + 8u]);
    }
    barrier();
    [[unroll]] for (uint d = 0u; d < 16u; ++d)
      if (counts[d] != 0u) atomicAdd(bin_count[d], counts[d]);
    {
      const uint bin = lid / 16u, first = (lid % 16u) * 16u;
      float s = 0.0;
      for (uint j = first; j < first + 16u; ++j)
        s += uintBitsToFloat(bin < 8u ? skey[bin * WG + j] : sidx[(bin - 8u) * WG + j]);
      fsum[lid] = s;
    }
    barrier();
    if (lid < 16u) {
      float s = 0.0;
      for (uint j = 0u; j < 16u; ++j) s += fsum[lid * 16u + j];
      bin_weight[lid] = s;
    }
    barrier();
    if (lid == 0u) {
      float above = sel_above;
      uint above_count = sel_above_count;
      uint chosen = 16u, lowest = 16u;
      for (uint b = 16u; b-- > 0u;) {
        if (bin_count[b] == 0u) continue;
        lowest = b;
        const float next = above + bin_weight[b];
        if (reaches(mode, next, above_count + bin_count[b], target, rank)) {
          chosen = b;
          break;
        }
        above = next;
        above_count += bin_count[b];
      }
      if (chosen == 16u) {  // not reached (rounding): the last candidate's bin
        chosen = lowest;
        above -= bin_weight[lowest];
        above_count -= bin_count[lowest];
      }
      if (depth < 32u) sel_hi = (ph << 4u) | chosen;
      else sel_lo = (pl << 4u) | chosen;
      sel_depth = depth + 4u;
      sel_above = above;
      sel_above_count = above_count;
      sel_count = bin_count[chosen];
    }
    barrier();
    if (sel_count <= N) break;  // uniform; at the latest at depth 64, where one entry matches
  }
  // sel_count of them (the same test as the pass's), >= 1
  const uint count = gather_sorted(sel_hi, sel_lo, sel_depth, row_max, ck, ci, with_min_p);
  if (lid == 0u) {
    float cum = sel_above;
    uint at = count - 1u;
    for (uint i = 0u; i < count; ++i) {
      cum += weight_of(skey[i], row_max, drawing);
      if (reaches(mode, cum, sel_above_count + i + 1u, target, rank)) {
        at = i;
        break;
      }
    }
    sel_key = skey[at];
    sel_index = sidx[at];
    sel_rank = sel_above_count + at;
    sel_mass = cum;
  }
  barrier();
}

shared uint whole_row_token;  // NONE: the best KMAX did not decide

// Thread 0: the whole-row rule decided among the row's best KMAX (slots [b, b + KMAX), best
// first, `row_max` the first's value, `row_sum` the row's sum of exp(l - row_max)) where both
// cuts fall inside them, or where nothing cuts the row (whole_row_uncut: `row_sum_tempered` its
// sum of exp((l - row_max) / temperature)) and the draw's point falls among them; NONE where
// min-p's set may go on past them and top-p's mass is not reached within them, or the uncut
// draw's point lies past them.
uint draw_whole_row_at_best(uint b, float row_max, float row_sum, float row_sum_tempered) {
  uint n = 0u;
  while (n < KMAX && sidx[b + n] != NONE) ++n;
  if (params.temperature <= 0.0 || isinf(row_max)) return sidx[b];  // greedy; or a row of no numbers
  // A top-k past the best KMAX: top-p's mass is that of its k, unknown here.
  const uint topk = topk_cut();
  if (topk > 0u && params.top_p < 1.0) return NONE;
  float w[KMAX];
  for (uint i = 0u; i < n; ++i) w[i] = exp(from_key(skey[b + i]) - row_max);
  uint kept = 0u;  // min-p's prefix (the best is always in it)
  while (kept < n && (params.min_p <= 0.0 || w[kept] >= params.min_p)) ++kept;
  kept = max(kept, 1u);
  bool open = kept == KMAX && pc.n_cols > KMAX;  // the rest of the row may hold more of the set
  if (topk > 0u && topk <= kept) {  // here only without top-p (above)
    kept = topk;
    open = false;
  }
  if (params.top_p < 1.0) {
    const float target = params.top_p * row_sum;
    float cum = 0.0;
    for (uint i = 0u; i < kept; ++i) {
      cum += w[i];
      if (cum >= target) {
        kept = i + 1u;
        open = false;
        break;
      }
    }
  }
  // kept is the best KMAX; the row's total is known
  if (open && whole_row_uncut()) return walk_tempered(b, kept, row_max, params.u * row_sum_tempered);
  return open ? NONE : draw_tempered(b, kept, row_max);
}

// All invocations: the draw among the candidates not after (ck, ci) (see candidate()) where
// they are at most N: gathered and sorted, then draw_tempered's walk. `fallback`: the token
// where none is a candidate (rounding). The slots are overwritten.
uint draw_gathered(uint ck, uint ci, float row_max, uint fallback) {
  barrier();  // every invocation has read `picked`, sel_index and the slots before
  const uint count = gather_sorted(0u, 0u, 0u, row_max, ck, ci, true);
  if (count == 0u) return fallback;  // uniform
  if (gl_LocalInvocationID.x == 0u) sel_index = draw_tempered(0u, count, row_max);
  barrier();
  return sel_index;
}

// All invocations, after the candidates are written: the whole row's draw (slots [b, b + KMAX)
// hold its best KMAX, best first) into ids and the ring.
void draw_whole_row(uint b) {
  const uint lid = gl_LocalInvocationID.x;
  // The slices' key and sum stores (this workgroup's own where split is 1) are visible.
  controlBarrier(gl_ScopeWorkgroup, gl_ScopeWorkgroup, gl_StorageSemanticsBuffer, gl_SemanticsAcquireRelease);
  const float row_max = from_key(skey[b]);
  const bool tempered = whole_row_uncut();  // uniform
  float part = 0.0, part_tempered = 0.0;
  if (!isinf(row_max)) {
    for (uint l = lid; l < pc.split; l += WG) {
      const float s = uintBitsToFloat(scratch[pc.sums_base + 3u * l + 1u]);
      const float d = from_key(scratch[pc.sums_base + 3u * l]) - row_max;
      if (s > 0.0) part += s * exp(d);
      if (tempered) part_tempered += uintBitsToFloat(scratch[pc.sums_base + 3u * l + 2u]) * exp(d / params.temperature);
    }
  }
  const float row_sum = workgroup_sum(part);
  const float row_sum_tempered = tempered ? workgroup_sum(part_tempered) : 0.0;
  if (lid == 0u) whole_row_token = draw_whole_row_at_best(b, row_max, row_sum, row_sum_tempered);
  barrier();
  uint token = whole_row_token;  // uniform
  const uint best_index = sidx[b];  // read before the selections overwrite the slots
  if (token == NONE) {
    // In stages, each select from one call site (the shader stays one copy of it): with a top-k
    // (past the best KMAX) its cut first, the entry of place k - 1 (min-p not applied), whose
    // weight up to it is the mass top-p takes a share of; top-p's cut (the last entry it keeps)
    // and the number of candidates up to it; then the draw: among them gathered where they are
    // few (a model's row: usually), else by a select on their weight at the temperature.
    const uint GATHER_OR_DRAW = 3u, DONE = 4u;
    const uint topk = topk_cut();
    // Where nothing cuts the row, its weight at the temperature is known from the slices'
    // sums: the draw's select directly, without the pass that sums the kept set (beyond N
    // entries, which the gather cannot take).
    uint ck = 0u, ci = NONE, n_kept = NONE;
    float mass = row_sum, kept_sum = row_sum_tempered;
    uint stage = topk > 0u                     ? SEL_RANK
                 : params.top_p < 1.0          ? SEL_TOP_P
                 : tempered && pc.n_cols > N   ? SEL_DRAW
                                               : GATHER_OR_DRAW;
    while (stage != DONE) {  // uniform
      if (stage == GATHER_OR_DRAW) {
        bool gather = n_kept <= N;
        if (!gather) {
          // Many candidates, or min-p's set alone (not counted yet): their weight and number.
          float kept_part = 0.0;
          uint kept_count = 0u;
          for (uint q = lid; 4u * q < pc.n_cols; q += WG) {
            const uvec4 key4 = scratch_wide[pc.keys_base / 4u + q];
            [[unroll]] for (uint c = 0u; c < 4u; ++c) {
              const uint col = 4u * q + c;
              if (col < pc.n_cols && candidate(key4[c], col, row_max, ck, ci, true)) {
                kept_part += weight_of(key4[c], row_max, true);
                ++kept_count;
              }
            }
          }
          if (lid == 0u) picked = 0u;
          kept_sum = workgroup_sum(kept_part);  // its barriers order picked's reset
          atomicAdd(picked, kept_count);
          barrier();
          gather = picked <= N;
        }
        if (gather) {
          token = draw_gathered(ck, ci, row_max, best_index);
          stage = DONE;
        } else {
          stage = SEL_DRAW;
        }
        continue;
      }
      const float target = stage == SEL_TOP_P ? params.top_p * mass : params.u * kept_sum;
      select_entry(stage, target, topk - 1u, row_max, ck, ci);
      if (stage == SEL_DRAW) {
        token = sel_index;
        stage = DONE;
        continue;
      }
      ck = sel_key;
      ci = sel_index;
      if (stage == SEL_RANK) {
        n_kept = topk;  // at most: min-p may keep fewer
        mass = sel_mass;
        stage = params.top_p < 1.0 ? SEL_TOP_P : GATHER_OR_DRAW;
      } else {
        n_kept = sel_rank + 1u;
        stage = GATHER_OR_DRAW;
      }
    }
  }
  if (lid == 0u) {
    ids[0] = token;
    ring[(params.last_pos + 1u) % pc.ring] = token;
  }
}

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
