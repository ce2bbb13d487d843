// Mixture-of-Experts FFN on the GPU, with no host round trip:
//   1. Router: logits = Wr x (Wr F32/F16/quantized, rows = n_expert); probabilities by softmax
//      over all experts (or sigmoid); top-k ids and weights per token, lowest id wins ties;
//      optional renormalisation of the k weights (Mixtral/Qwen3 yes, Qwen1.5/Qwen2-MoE no).
//   2. Experts: for each token and each of its k experts, h = SiLU(Wg_e x) * (Wu_e x),
//      out[t] = sum_j weight[t][j] * Wd_e(j) h. Decode reads expert ids straight from the GPU
//      buffer (fused gate+up+SiLU matrix-vector, then down with the weights applied); prefill
//      groups token rows by expert (counts, prefix offsets, permutation; dropless) and runs tiled
//      products over the grouped rows, then combines back into token order.
//   3. Shared expert (Qwen2-MoE): out[t] += sigmoid(g[t]) * shared[t] (g = Wsg x), or += shared[t]
//      when there is no gate tensor.
#pragma once
#include "ops/quantize_q8.hpp"
#include "ops/tensor.hpp"
#include "vk/recorder.hpp"

namespace moevk::ops {

enum class Gating { Softmax, Sigmoid };

struct RouterShape {
  uint32_t n_tokens = 0, n_embd = 0, n_expert = 0, k = 0;
  Gating gating = Gating::Softmax;
  bool renormalize = true;
};

class MoeRouter {
 public:
  explicit MoeRouter(vk::Context& ctx);
  // Batches of up to split_max_tokens tokens with a large router (n_expert >= 32) spread the
  // logits over many workgroups: the "handoff" path (one dispatch over expert slices, the last
  // slice of each token group to finish ranks; handoff = false turns it off) or else the
  // "split" one (the matrix-vector kernel writes the logits, then the top-k kernel ranks).
  // Others take the "fused" one (one workgroup per 4 tokens does it all). Tests force a path:
  // 0 = always fused, UINT32_MAX = a many-workgroup path wherever it applies.
  MoeRouter(vk::Context& ctx, uint32_t split_max_tokens, bool handoff = true);
  // The scratch: kLogitsOffset bytes of arrival counters (the handoff path's), then the
  // router logits [n_tokens][n_expert] f32, which it holds after the dispatch.
  // The counters must be zero before the first replay of a recording; every dispatch leaves
  // them zero again, so a scratch zeroed once when it is allocated serves every batch size.
  static constexpr uint64_t kLogitsOffset = 256;
  static uint64_t scratch_bytes(const RouterShape& s);
  // Zeroes the scratch's counters (a transfer that waits): once, after allocating it.
  static void clear_counters(vk::Context& ctx, const vk::BufferRange& scratch);
  // x: [n_tokens][n_embd] f32. expert_ids: [n_tokens][k] u32. expert_weights: [n_tokens][k] f32.
  // norm: x is RMS-normed on the way in (every path takes it).
  void record(vk::Recorder& rec, const RouterShape& s, const Matrix& router, const vk::BufferRange& x,
              const vk::BufferRange& scratch, const vk::BufferRange& expert_ids,
              const vk::BufferRange& expert_weights, const InputNorm* norm = nullptr) const;
  std::string path_for(const RouterShape& s, const Matrix& router) const;  // "fused", "handoff" or "split"
  void set_handoff(bool on) { handoff_ = on; }

 private:
  static uint32_t tokens_per_group(uint32_t n_tokens, bool handoff);
  vk::Context& ctx_;
  uint32_t split_max_tokens_ = 8;
  bool handoff_ = true;
};

struct ExpertsShape {
  uint32_t n_tokens = 0, n_embd = 0, n_ff = 0, n_expert = 0, k = 0;
};

// Where MoeExperts::record keeps its intermediates inside the scratch: byte offsets, each a
// multiple of 256 (what moe_experts.cpp describes). Public so tests can read the grouping.
struct ExpertsScratchLayout {
  uint64_t h = 0, y = 0, group_info = 0, grouped_entry = 0, grouped_row = 0;
  uint64_t act_q8 = 0, act_scale = 0, act_sum = 0;  // int8 activations of the grouped_dot path
  uint64_t total = 0;
};

struct MoeExpertsOptions {
  // Batches of up to this many tokens take the "decode" path, larger ones the grouped one
  // (tests force either: 0 = always grouped, UINT32_MAX = always decode).
  uint32_t decode_max_tokens = 4;
  // The decode kernels' workgroup size and weight rows per workgroup (moe_gate_up_mv,
  // moe_down_mv): untuned guesses; `moevk bench ops --decode-configs` times others. Workgroup a
  // power of two in 32..1024 (and within the device's limit), rows 1..8.
  uint32_t decode_workgroup = 64, decode_rows = 2;
  // moe_down_mv's own shape, where it is not 0: its rows are n_ff wide where gate+up's are n_embd
  // (Qwen3-30B-A3B: 768 against 2048, so 64 threads a row leave a quarter of them idle).
  uint32_t down_workgroup = 0, down_rows = 0;
  // Grouped products on the integer dot product (activations quantized to int8 per 32
  // elements) where the device has it and the weight type has a kernel; MOEVK_DISABLE=dot
  // turns it off for the whole context.
  bool allow_dot = true;
  // Grouped products on the NV cooperative-matrix kernel where it is on (ops/coopmat.hpp),
  // ahead of the dot path.
  bool allow_coopmat = true;
  // Grouped dot path with gate and up of one type: the gate+up kernel writes h as the down
  // product's int8 activations (no quantization pass and barrier between them). Off, for tests.
  bool quantize_h_in_gate_up = true;
  // The one-token gate+up on the integer dot product (moe_gate_up_mv_dot, path "decode_dot"):
  // x as int8 per 32 elements (the caller's, e.g. rms_norm_q8's, else quantized here) where the
  // device has the integer dot product and subgroup arithmetic and gate and up share a type
  // with an int8 form; the down product stays on moe_down_mv. It cannot fold the input norm
  // (fuses_norm is false for it). Off by default until a GPU measures it against the float
  // kernel: MOEVK_ENABLE=dot_decode turns it on for models (vk::Features::dot_decode, which the
  // layer builder passes here), and `moevk bench ops` times both.
  bool dot_decode = false;
  // The float one-token kernels (moe_gate_up_mv, moe_down_mv) with WIDE on, path "decode_wide":
  // for Q4_0, Q4_K, Q5_K and Q6_K (weight_has_wide_runs) a thread takes 32 elements a step, two
  // neighbouring pair runs whose 16 quant bytes are one 128-bit load where 16-aligned, against
  // 16 elements and 8 bytes. The same sums in another order. Off by default until a GPU
  // measures it: MOEVK_ENABLE=wide_decode turns it on for models (vk::Features::wide_decode),
  // and `moevk bench ops` times both.
  bool wide_decode = false;
  // Decode kernels fold their sums with subgroupAdd where the device has subgroup arithmetic
  // (MOEVK_DISABLE=subgroup turns it off); off: the shared-memory tree, for tests.
  bool allow_subgroup = true;
  // Tests: the grouped products run the cooperative-matrix kernel's emulated build instead, on
  // any device with fp16, for the types it is built for (the others take dot or plain).
  bool coopmat_emulation = false;
  // Grouped rows per row tile when every product is on the cooperative-matrix kernel: 32 or 64;
  // 0 chooses by the batch (MoeExperts::coopmat_tile_rows). The other kernels take 32.
  uint32_t coopmat_tile_rows = 0;
  // Largest weight binding (0: the device's maxStorageBufferRange, 128 MiB on lavapipe). An
  // expert tensor larger than that is bound as windows of whole experts, one dispatch each.
  // Tests set it small.
  uint64_t max_weight_binding_bytes = 0;
  // Workgroups per grid dimension of the dot path's activation quantization (ops::QuantizeQ8;
  // 0: 65535, the guaranteed limit). Tests set it small to run batches on a 2-D grid.
  uint32_t quantize_groups_per_dim = 0;
};

class MoeExperts {
 public:
  // Rows per row tile of the grouped path (group_info's tile_start counts tiles of this many);
  // the cooperative-matrix kernel may take twice as many (coopmat_tile_rows).
  static constexpr uint32_t kGroupTileRows = 32;
  // Experts the grouped path takes (moe_group.comp's shared histogram; the router takes 256).
  static constexpr uint32_t kMaxGroupedExperts = 1024;
  explicit MoeExperts(vk::Context& ctx, MoeExpertsOptions options = {});
  MoeExperts(vk::Context& ctx, uint32_t decode_max_tokens);
  // Enough for either path (layout in moe_experts.cpp); offset aligned like any storage binding.
  static uint64_t scratch_bytes(const ExpertsShape& s);
  static ExpertsScratchLayout scratch_layout(const ExpertsShape& s);
  // gate/up: cols = n_embd, rows = n_ff; down: cols = n_ff, rows = n_embd.
  // out: [n_tokens][n_embd] f32, fully overwritten with the weighted sum of the k experts, or
  // with accumulate that sum added to it (a residual add fused in; out must not overlap x).
  void record(vk::Recorder& rec, const ExpertsShape& s, const ExpertMatrices& gate,
              const ExpertMatrices& up, const ExpertMatrices& down, const vk::BufferRange& x,
              const vk::BufferRange& expert_ids, const vk::BufferRange& expert_weights,
              const vk::BufferRange& scratch, const vk::BufferRange& out, bool accumulate = false,
              const InputNorm* norm = nullptr, const Q8Activations* x_q8 = nullptr) const;
  std::string path_for(const ExpertsShape& s) const;  // "decode" or "grouped"
  // norm (x RMS-normed on the way in) is taken by the decode path only, and not on its
  // integer-dot form (dot_decode).
  bool fuses_norm(const ExpertsShape& s, quant::Type gate, quant::Type up) const {
    return path_for(s) == "decode" && !decode_dot(gate, up);
  }
  // Whether record() would quantize x for an integer-dot kernel (grouped path with gate or up on
  // it, or decode_dot): then it takes x_q8, x already quantized (RmsNorm's q8 output), and
  // quantizes nothing.
  bool reads_q8_input(const ExpertsShape& s, quant::Type gate, quant::Type up) const {
    if (path_for(s) == "decode") return decode_dot(gate, up);
    return grouped_dot(gate) || grouped_dot(up);
  }
  // With the weight types: "decode", "decode_wide" (wide_decode, and a product's type has wide
  // steps) or "decode_dot"; or for the grouped path "grouped_coopmat" (every expert product on
  // the cooperative-matrix kernel), "grouped_dot" (every one on the integer-dot kernel),
  // "grouped" (all on the plain tiles) or "grouped_mixed" (e.g. Q4_K gate/up on the dot kernel
  // with an F16 down, which has no int8 form, on the plain one).
  std::string path_for(const ExpertsShape& s, quant::Type gate, quant::Type up, quant::Type down) const;
  // Rows per row tile on "grouped_coopmat": 64 where the batch gives the experts at least 48
  // rows each on average (Mixtral-8x7B at 512 tokens: 128), so each weight tile dequantized
  // into shared memory serves twice the rows; else 32 (Qwen3-30B-A3B at 512 tokens: 32). The
  // threshold is a guess until measured (bench ops times both).
  uint32_t coopmat_tile_rows(const ExpertsShape& s) const;

 private:
  bool grouped_dot(quant::Type t) const;
  bool grouped_coopmat(quant::Type t) const;
  bool decode_dot(quant::Type gate, quant::Type up) const;
  bool decode_wide(quant::Type t) const;  // the float decode kernels' WIDE for t

  vk::Context& ctx_;
  MoeExpertsOptions options_;
};

// out[t][i] += (gate ? sigmoid(gate_logit[t]) : 1) * shared[t][i]   (gate_logit: [n_tokens] f32)
class SharedExpertCombine {
 public:
  explicit SharedExpertCombine(vk::Context& ctx);
  void record(vk::Recorder& rec, const vk::BufferRange& out, const vk::BufferRange& shared,
              const vk::BufferRange* gate_logit, uint32_t n_tokens, uint32_t n_embd) const;

 private:
  vk::Context& ctx_;
};

}  // namespace moevk::ops
