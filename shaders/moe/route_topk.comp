#version 450
// MoE router, fused: logits = Wr x, gating (softmax over ALL experts, or sigmoid), top-k with the
// lowest expert id winning ties, optional renormalisation of the k weights. Nothing goes back to
// the host: the expert kernels read expert_ids straight from the GPU buffer.
// Inputs:  weights (binding 0) Wr: n_expert rows of row_bytes bytes in their block layout (quant.glsl)
//          from byte weight_base; x (binding 1) f32 [n_tokens][n_embd] read as vec4 (n_embd % 8 == 0).
//          logits (binding 2) f32 [n_tokens][n_expert], the op's scratch: written here, or read
//          when logits_mode == 1 (the "split" path: mul_mv computed them over many workgroups).
//          counters (binding 6) u32 [token groups], logits_mode 2 only: zero before the dispatch,
//          and zero again after it (the last workgroup of each token group resets its count).
// Outputs: expert_ids (binding 3) u32 [n_tokens][k], ids in descending order of probability;
//          expert_weights (binding 4) f32 [n_tokens][k].
// Dispatch: token groups G = div_up(n_tokens, TOKENS) as (min(G, 65535), div_up(G, 65535), S).
// logits_mode 0 (S = 1): each workgroup computes all logits of its tokens, then ranks them.
// logits_mode 2, the "handoff" path for large routers and few tokens (S expert slices of
// group_rows rows): workgroup z computes rows [z * group_rows, ..) of its tokens' logits and
// stores them; the last of the S workgroups of a token group to finish (an atomic count per
// group, after a buffer memory barrier) reads them all back and ranks: the split path's work in
// one dispatch, with no barrier between the logits and the top-k.
// Specialization: 0 = workgroup size WG (power of two), 1 = LANES threads per expert row (power of
//          two, <= WG), 2 = TOKENS per workgroup (each weight byte is read once per TOKENS tokens),
//          3 = NORM: x is RMS-normed on the way in (logits = Wr (rmsnorm(x) * g), g = norm_weight,
//          binding 5, f32 [n_embd], pc.norm_eps): a first pass sums x_t^2, the logits are scaled.
//          Not with logits_mode 1 (the split path's mul_mv applies the norm itself).
// Ranking uses the logits (softmax and sigmoid are monotonic, so this is the probability order
// without the rounding ties that saturated probabilities would create); a NaN logit ranks below
// every number, so the k ids are always distinct and in range. n_expert <= MAX_EXPERT, k <= 8.
#include "types.glsl"
#extension GL_KHR_memory_scope_semantics : require

layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 1) const uint LANES = 32;
layout(constant_id = 2) const uint TOKENS = 4;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Weights { uint weight_words[]; };
layout(std430, binding = 0) readonly buffer WeightsWide { uvec2 weight_dwords[]; };  // the same buffer, 64-bit loads
layout(std430, binding = 1) readonly buffer X { vec4 x_values[]; };
// coherent: the handoff's last workgroup reads what the others stored.
layout(std430, binding = 2) coherent buffer Logits { float logit_values[]; };
layout(std430, binding = 3) writeonly buffer Ids { uint expert_ids[]; };
layout(std430, binding = 4) writeonly buffer Wts { float expert_weights[]; };
layout(std430, binding = 5) readonly buffer NormWeight { vec4 norm_weight[]; };
layout(std430, binding = 6) coherent buffer Counters { uint arrivals[]; };
layout(constant_id = 3) const bool NORM = false;
layout(push_constant) uniform Push {
  uint n_tokens, n_embd, n_expert, k;
  uint sigmoid_gating, renormalize, weight_base, row_bytes;
  uint logits_mode;  // 0 computed here, 1 ready in the buffer, 2 handoff over expert slices
  float norm_eps;
  uint group_rows;  // logits_mode 2: expert rows per slice
} pc;

#define WEIGHT_WORD(i) weight_words[(i)]
#define WEIGHT_UVEC2(i) weight_dwords[(i)]
#define QUANT_ROW_COLS pc.n_embd
#include "quant.glsl"

const uint MAX_EXPERT = 256u;
const uint MAX_K = 8u;

shared float partial[WG * TOKENS];
shared float norm_scale[TOKENS];
shared float logits_sh[TOKENS * MAX_EXPERT];
shared uint top_id[TOKENS * MAX_K];
shared float top_logit[TOKENS * MAX_K];
shared uint arrival;

// The ranking key: a NaN counts as -inf and the id breaks the tie, so the order stays total.
float rank_key(float l) { return isnan(l) ? uintBitsToFloat(0xFF800000u) : l; }

void main() {
  const uint lid = gl_LocalInvocationID.x;
  const uint token_group = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  const uint token0 = token_group * TOKENS;
  if (token0 >= pc.n_tokens) return;  // uniform per workgroup
  const uint n_tok = min(TOKENS, pc.n_tokens - token0);
  const uint n_expert = pc.n_expert;
  const uint groups = pc.n_embd / 8u;

  // 1. Logits: LANES threads per expert row, WG / LANES rows at a time; lanes read consecutive
  //    8-element groups (coalesced), partial sums fold in a shared-memory tree per row.
  const uint row_slots = WG / LANES;
  const uint slot = lid / LANES, lane = lid % LANES;
  const bool compute = pc.logits_mode != 1u;
  const bool handoff = pc.logits_mode == 2u;
  // The expert rows this workgroup computes: all, or its slice.
  const uint first_row = handoff ? gl_WorkGroupID.z * pc.group_rows : 0u;
  const uint end_row = handoff ? min(first_row + pc.group_rows, n_expert) : n_expert;
  if (!compute) {
    for (uint i = lid; i < n_tok * n_expert; i += WG)
      logits_sh[(i / n_expert) * MAX_EXPERT + i % n_expert] = logit_values[token0 * n_expert + i];
  }
  if (NORM && compute) {  // uniform: a push constant and a specialization
    for (uint t = 0u; t < TOKENS; ++t) {
      float sum_sq = 0.0;
      if (t < n_tok) {
        for (uint i = lid; i < pc.n_embd / 4u; i += WG) {
          const vec4 v = x_values[(token0 + t) * (pc.n_embd / 4u) + i];
          sum_sq += dot(v, v);
        }
      }
      partial[t * WG + lid] = sum_sq;
    }
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
      if (lid < s) {
        [[unroll]] for (uint t = 0u; t < TOKENS; ++t) partial[t * WG + lid] += partial[t * WG + lid + s];
      }
      barrier();
    }
    if (lid < TOKENS) norm_scale[lid] = inversesqrt(partial[lid * WG] / float(pc.n_embd) + pc.norm_eps);
    barrier();
  }
  for (uint base = first_row; compute && base < end_row; base += row_slots) {
    const uint e = base + slot;
    float acc[TOKENS];
    [[unroll]] for (uint t = 0u; t < TOKENS; ++t) acc[t] = 0.0;
    if (e < end_row) {
      for (uint g = lane; g < groups; g += LANES) {
        const uint c = g * 8u;
        vec4 w0, w1;
        dequant8(quant_block(pc.weight_base + e * pc.row_bytes, c / QK), c % QK, w0, w1);
        [[unroll]] for (uint t = 0u; t < TOKENS; ++t) {
          if (t < n_tok) {
            const uint xi = ((token0 + t) * pc.n_embd + c) / 4u;
            vec4 x0 = x_values[xi], x1 = x_values[xi + 1u];
            if (NORM) {
              x0 *= norm_weight[c / 4u];
              x1 *= norm_weight[c / 4u + 1u];
            }
            acc[t] += dot(w0, x0) + dot(w1, x1);
          }
        }
      }
    }
    [[unroll]] for (uint t = 0u; t < TOKENS; ++t) partial[t * WG + lid] = acc[t];
    barrier();
    for (uint s = LANES / 2u; s > 0u; s >>= 1u) {
      if (lane < s) {
        [[unroll]] for (uint t = 0u; t < TOKENS; ++t) partial[t * WG + lid] += partial[t * WG + lid + s];
      }
      barrier();
    }
    // Lane 0 reads only its own slot, which no thread writes before the next tree's barrier.
    if (lane == 0u && e < end_row) {
      for (uint t = 0u; t < n_tok; ++t) {
        const float l = partial[t * WG + lid] * (NORM ? norm_scale[t] : 1.0);
        logits_sh[t * MAX_EXPERT + e] = l;
        logit_values[(token0 + t) * n_expert + e] = l;
      }
    }
  }
  if (handoff) {
    // Release: a device-scope barrier over buffer memory orders every invocation's logit stores
    // before the count, which is itself a device-scope acquire-release atomic. The last to count
    // acquires the others' releases, and the second barrier passes that on to all its
    // invocations, whose coherent loads then see every slice's logits.
    controlBarrier(gl_ScopeWorkgroup, gl_ScopeDevice, gl_StorageSemanticsBuffer | gl_StorageSemanticsShared,
                   gl_SemanticsAcquireRelease);
    if (lid == 0u)
      arrival = atomicAdd(arrivals[token_group], 1u, gl_ScopeDevice, gl_StorageSemanticsBuffer, gl_SemanticsAcquireRelease);
    controlBarrier(gl_ScopeWorkgroup, gl_ScopeDevice, gl_StorageSemanticsBuffer | gl_StorageSemanticsShared,
                   gl_SemanticsAcquireRelease);
    if (arrival != gl_NumWorkGroups.z - 1u) return;  // uniform: one shared value
    // The last slice to arrive: reset the count for the next replay (a later dispatch, after a
    // pipeline barrier), then read every slice's logits.
    if (lid == 0u) arrivals[token_group] = 0u;
    for (uint i = lid; i < n_tok * n_expert; i += WG)
      logits_sh[(i / n_expert) * MAX_EXPERT + i % n_expert] = logit_values[token0 * n_expert + i];
  }
  barrier();

  // 2. Rank of each expert = how many experts beat it (higher key, or equal key and lower id);
  //    a total order, so ranks 0..k-1 land in distinct slots.
  for (uint i = lid; i < n_tok * n_expert; i += WG) {
    const uint t = i / n_expert, e = i % n_expert;
    const float key = rank_key(logits_sh[t * MAX_EXPERT + e]);
    uint rank = 0u;
    for (uint f = 0u; f < n_expert && rank < pc.k; ++f) {
      const float other = rank_key(logits_sh[t * MAX_EXPERT + f]);
      if (other > key || (other == key && f < e)) ++rank;
    }
    if (rank < pc.k) {
      top_id[t * MAX_K + rank] = e;
      top_logit[t * MAX_K + rank] = logits_sh[t * MAX_EXPERT + e];
    }
  }
  barrier();

  // 3. Softmax denominator over all experts, relative to the largest logit (the rank-0 one).
  if (pc.sigmoid_gating == 0u) {
    [[unroll]] for (uint t = 0u; t < TOKENS; ++t) {
      float s = 0.0;
      if (t < n_tok) {
        const float m = top_logit[t * MAX_K];
        for (uint e = lid; e < n_expert; e += WG) s += exp(logits_sh[t * MAX_EXPERT + e] - m);
      }
      partial[t * WG + lid] = s;
    }
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
      if (lid < s) {
        [[unroll]] for (uint t = 0u; t < TOKENS; ++t) partial[t * WG + lid] += partial[t * WG + lid + s];
      }
      barrier();
    }
  }

  // 4. The k probabilities, renormalised to sum 1 when asked.
  for (uint i = lid; i < n_tok * pc.k; i += WG) {
    const uint t = i / pc.k, j = i % pc.k;
    const float m = top_logit[t * MAX_K];
    const float denominator = pc.sigmoid_gating == 0u ? partial[t * WG] : 1.0;
    float p = 0.0, kept = 0.0;
    for (uint jj = 0u; jj < pc.k; ++jj) {
      const float l = top_logit[t * MAX_K + jj];
      const float pj = pc.sigmoid_gating == 0u ? exp(l - m) / denominator : 1.0 / (1.0 + exp(-l));
      kept += pj;
      if (jj == j) p = pj;
    }
    const uint dst = (token0 + t) * pc.k + j;
    expert_ids[dst] = top_id[t * MAX_K + j];
    expert_weights[dst] = pc.renormalize != 0u ? p / kept : p;
  }
}
