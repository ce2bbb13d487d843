// Whole-row sampling for sample_topk.comp (params.all: top-k off or above KMAX): the slices'
// stores to the scratch, the radix selects over the row (select_entry) and the draws from them.
// Not a shader of its own: it reads sample_topk.comp's bindings, push constants and shared
// slots (skey, sidx, fsum, ...) and calls its helpers (sort, weight_of, walk_tempered,
// draw_tempered, to_key/from_key, before), so sample_topk.comp includes it after those.
#ifndef MOEVK_SAMPLE_WHOLE_ROW_GLSL
#define MOEVK_SAMPLE_WHOLE_ROW_GLSL

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

#endif
