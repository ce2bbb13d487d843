#version 450
// Sampling on the GPU from one row of logits: the row's KMAX (64) best (value, index) pairs,
// best first (the larger value; the lower index among equals; NaN counts as -inf), and, where
// params.k > 0, a token drawn from the first k of them the way generate::Sampler draws from its
// top-k candidates: softmax at temperature 1, top-p, min-p, softmax at the temperature, then
// the first candidate whose cumulative probability exceeds params.u (a uniform draw in [0, 1)
// the host made). A temperature <= 0 takes the best candidate. So only 64 pairs and one id
// leave the GPU, and a chained step can take its token from `ids` without the host.
// Bindings: 0 logits f32 [n_cols] (read); 1 params (SampleParams, read); 2 candidates u32
//           [2 KMAX]: (value bits, index) pairs, a missing one (n_cols < KMAX) as (-inf, NONE);
//           3 ids u32 [1]: the drawn token (written only where params.k > 0); 4 scratch
//           (pc.split > 1): a counter at word 0 (zero before the dispatch, zero after), then
//           split lists of KMAX pairs from word pc.partial_base.
// pc.split = S: dispatch (S, 1, 1); workgroup s sorts columns [s chunk, (s + 1) chunk)
//           (chunk = div_up(n_cols, S) <= N) in shared memory with a bitonic network, keeps its
//           KMAX best, stores them, fences and counts itself in on the counter; the last to
//           arrive merges the S lists (up to N / KMAX at a time, the best so far among them: each
//           list already sorted, so only the network's last log2(N / KMAX) levels run), resets
//           the counter for the next replay and writes the outputs. S = 1: one workgroup, no
//           scratch. No second dispatch, no barrier.
#include "types.glsl"
#extension GL_KHR_memory_scope_semantics : require

const uint WG = 256;
const uint N = 2048;          // shared sort slots
const uint KMAX = 64;         // candidates kept (ops::SampleTopK::kMaxK)
const uint NONE = 0xFFFFFFFFu;  // index of a missing entry: loses every tie
layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer Logits { float logit_values[]; };
layout(std430, binding = 1) readonly buffer Params {
  uint k;             // candidates to draw from (<= KMAX); 0: candidates only
  float temperature;  // <= 0: the best candidate
  float top_p;        // >= 1: off
  float min_p;        // <= 0: off
  float u;            // the draw, in [0, 1)
} params;
layout(std430, binding = 2) writeonly buffer Candidates { uint candidates[]; };
layout(std430, binding = 3) writeonly buffer Ids { uint ids[]; };
// coherent: the last workgroup reads what the others stored.
layout(std430, binding = 4) coherent buffer Scratch { uint scratch[]; };
layout(push_constant) uniform Push { uint n_cols, split, partial_base; } pc;

// Entries as (key, index): key orders like the float (NaN as -inf, -0 as 0), 0 below every
// value (a missing entry). "a before b": the larger key, or the same key and the lower index.
shared uint skey[N];
shared uint sidx[N];
shared uint arrival;

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

// Thread 0: the draw from slots [0, KMAX) (sorted), as generate::Sampler does it.
uint draw() {
  uint n = 0u;  // the valid entries among the first k
  const uint k = min(params.k, KMAX);
  while (n < k && sidx[n] != NONE) ++n;
  if (n == 0u) return 0u;
  const float best = from_key(skey[0]);
  if (params.temperature <= 0.0 || isinf(best)) return sidx[0];  // greedy; or a row of no numbers
  // Probabilities at temperature 1 (for top-p and min-p).
  float p[KMAX];
  float sum = 0.0;
  for (uint i = 0u; i < n; ++i) {
    p[i] = exp(from_key(skey[i]) - best);
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
  // At the temperature: the first whose cumulative weight exceeds u times the total.
  sum = 0.0;
  for (uint i = 0u; i < n; ++i) {
    p[i] = exp((from_key(skey[i]) - best) / params.temperature);
    sum += p[i];
  }
  const float r = params.u * sum;
  float cum = 0.0;
  for (uint i = 0u; i < n; ++i) {
    cum += p[i];
    if (r < cum) return sidx[i];
  }
  return sidx[n - 1u];
}

void finish() {
  const uint lid = gl_LocalInvocationID.x;
  if (lid < KMAX) {
    candidates[2u * lid] = floatBitsToUint(from_key(skey[lid]));
    candidates[2u * lid + 1u] = sidx[lid];
  }
  if (lid == 0u && params.k > 0u) ids[0] = draw();
}

void main() {
  const uint lid = gl_LocalInvocationID.x;
  const uint chunk = div_up(pc.n_cols, pc.split);
  const uint begin = gl_WorkGroupID.x * chunk, end = min(begin + chunk, pc.n_cols);
  const uint m = pow2_at_least(end > begin ? end - begin : 1u);
  for (uint s = lid; s < m; s += WG) {
    const uint c = begin + s;
    skey[s] = c < end ? to_key(logit_values[c]) : 0u;
    sidx[s] = c < end ? c : NONE;
  }
  barrier();
  sort(m, 2u);
  if (pc.split <= 1u) {
    finish();
    return;
  }
  const uint at = pc.partial_base + 2u * KMAX * gl_WorkGroupID.x;
  if (lid < KMAX) {
    scratch[at + 2u * lid] = skey[lid];
    scratch[at + 2u * lid + 1u] = sidx[lid];
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
  finish();
}
