// MoeExperts: the routed expert FFN (shaders/moe/). Two paths, both reading the router's expert ids
// on the GPU (never read back):
//   decode  (n_tokens <= decode_max_tokens): moe_gate_up_mv (fused gate+up+SiLU per (token, slot))
//           then moe_down_mv (down projection, k slots weighted and summed in-kernel); their
//           subgroup-reduction variants where the device has subgroup arithmetic. With
//           dot_decode, gate+up is moe_gate_up_mv_dot on int8 x instead ("decode_dot"); with
//           wide_decode both float kernels take 32 elements a thread step ("decode_wide").
//   grouped (prefill, dropless): moe_group (counts, prefix offsets, row tiles and the stable
//           permutation by expert, in one dispatch), moe_mul_mm gate+up over each expert's rows
//           (x rows gathered through the permutation while loading tiles), moe_mul_mm down,
//           moe_combine back to token order with the weights applied.
//           On devices with the integer dot product, each product whose weight type is int8-affine
//           (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS, Q4_K, Q5_K; Q2_K, Q3_K, Q6_K per
//           16-element half; weight_has_int8_dot) runs moe_mul_mm_dot instead, on int8
//           activations from matmul/quantize_q8: x quantized once per token (rows gathered through
//           the permutation as above), h once per grouped row before the down product.
//           Where the NV cooperative-matrix kernels are on (MOEVK_ENABLE=coopmat, ops/coopmat.hpp)
//           every product runs moe_mul_mm_coopmat instead (fp16 operands, tensor cores), ahead
//           of the dot path.
// Scratch layout (each region starts at a multiple of 256 bytes, the largest storage-buffer
// offset alignment Vulkan allows), N = n_tokens * k, E = n_expert:
//   h              f32 [N][n_ff]     SiLU(gate) * up; decode: row t*k+j, grouped: grouped row p;
//                                    or (grouped dot path) h as int8 activations (h_int8 below)
//   y              f32 [N][n_embd]   grouped path: down output per grouped row
//   group_info     u32 [3E + 2]      counts, offsets (E+1), row-tile starts (E+1)
//   grouped_entry  u32 [N]           grouped row p -> entry t*k+j
//   grouped_row    u32 [N]           entry -> grouped row (0xFFFFFFFF: id >= n_expert, skipped)
//   act_q8         i8  [A]           int8 activations (x, later h) of the dot path, A = max(
//   act_scale      f32 [A / 32]        n_tokens * n_embd, N * n_ff); per 32 elements their scale
//   act_sum        f32 [A / 32]        and scaled sum (quantize_q8's xd, xs)
// The decode path only uses h. Entries with an id >= n_expert contribute nothing (no OOB reads).
// Expert tensors larger than one storage binding (lavapipe: 128 MiB, e.g. Mixtral-8x7B's
// 8 x 14336 x 4096 Q4_0 experts) are bound as windows of whole experts [first, end): each
// product runs once per window and skips the entries of experts outside it. Windows write
// disjoint rows of h and y; the decode down product adds every window after the first into out.
#include <algorithm>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "ops/coopmat.hpp"
#include "ops/moe.hpp"
#include "ops/quantize_q8.hpp"
#include "ops/weight_binding.hpp"

namespace moevk::ops {

namespace {
constexpr uint32_t kGroupWorkgroup = 128;          // count / scatter / combine
constexpr uint32_t kMmWorkgroup = 128, kTileM = MoeExperts::kGroupTileRows, kTileN = 32, kTileK = 32;
static_assert(kMmWorkgroup == (kTileM / 4) * (kTileN / 2), "moe_mul_mm: one 4x2 micro-tile per thread");
// moe_mul_mm_dot: the same row tiles (they are group_info's), 64 weight rows per tile so each
// gathered int8 activation row serves twice the rows, two 32-column sub-blocks per barrier pair.
constexpr uint32_t kDotWorkgroup = 128, kDotTileN = 64, kDotSubBlocks = 2;
static_assert(kDotWorkgroup == (kTileM / 4) * (kDotTileN / 4), "moe_mul_mm_dot: one 4x4 micro-tile per thread");
static_assert(kDotTileN % 32 == 0 && kTileM <= 16 * kDotSubBlocks,
              "moe_mul_mm_dot's OUT_Q8: whole 32-column blocks per tile, staged in its two weight tiles");
// moe_mul_mm_coopmat: row tiles of 32 or 64 rows (2 or 4 fragments of 16, coopmat_tile_rows),
// 64 weight rows per tile (4 subgroups x 16).
constexpr uint32_t kCoopTileN = 64, kCoopFragRows = 16;
static_assert(kTileM % (2 * kCoopFragRows) == 0, "moe_mul_mm_coopmat stages its results 32 rows at a time");
constexpr uint64_t kAlign = 256;
constexpr uint32_t kMaxGroupsPerDim = 65535;  // guaranteed maxComputeWorkGroupCount

enum Mode : uint32_t { kFused = 0, kGateOnly = 1, kTimesUp = 2, kDown = 3 };

struct GateUpMvPush {
  uint32_t cols, rows, k, n_expert, gate_stride, up_stride, row_bytes, mode, gate_base, up_base;
  float norm_eps;
  uint32_t expert_first, expert_end;  // the window of experts bound (base is expert_first's)
};
struct DownMvPush {
  uint32_t cols, rows, k, n_expert, stride, row_bytes, base, accumulate;
  uint32_t expert_first, expert_end;
};
struct MmPush {
  uint32_t cols, rows, k, n_expert, stride_a, stride_b, row_bytes, mode, base_a, base_b;
  uint32_t expert_first, expert_end;
};
struct GroupPush {
  uint32_t n_entries, n_expert, tile_rows;
};
struct CombinePush {
  uint32_t n_embd, k, accumulate;
};

uint64_t align_up(uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }
uint32_t div_up(uint64_t a, uint64_t b) { return static_cast<uint32_t>((a + b - 1) / b); }


ExpertsScratchLayout layout_for(const ExpertsShape& s) {
  const uint64_t n = uint64_t(s.n_tokens) * s.k;
  ExpertsScratchLayout l;
  l.h = 0;
  // h's region holds h, or (moe_mul_mm_dot's OUT_Q8) h as int8 activations, q8_activations_in's
  // layout from its start: the f32 h is then never written.
  l.y = align_up(l.h + std::max(n * s.n_ff * 4, q8_activation_bytes(s.n_ff, n)));
  l.group_info = align_up(l.y + n * s.n_embd * 4);
  l.grouped_entry = align_up(l.group_info + (3ull * s.n_expert + 2) * 4);
  l.grouped_row = align_up(l.grouped_entry + n * 4);
  const uint64_t act = std::max(uint64_t(s.n_tokens) * s.n_embd, n * s.n_ff), act_blocks = (act + 31) / 32;
  l.act_q8 = align_up(l.grouped_row + n * 4);
  l.act_scale = align_up(l.act_q8 + act);
  l.act_sum = align_up(l.act_scale + act_blocks * 4);
  l.total = align_up(l.act_sum + act_blocks * 4);
  return l;
}

vk::BufferRange sub(const vk::BufferRange& r, uint64_t offset, uint64_t size) {
  return {r.buffer, r.offset + offset, size};
}

// The scratch's int8 activations (act_q8, act_scale, act_sum): x quantized here, later h.
Q8Activations scratch_activations(const vk::BufferRange& scratch, const ExpertsScratchLayout& l) {
  Q8Activations q;
  q.xq = sub(scratch, l.act_q8, l.act_scale - l.act_q8);
  q.xd = sub(scratch, l.act_scale, l.act_sum - l.act_scale);
  q.xs = sub(scratch, l.act_sum, l.total - l.act_sum);
  return q;
}

// A caller's quantized x (record's x_q8), when given, must be x's shape with whole ranges.
void check_x_q8(const Q8Activations* x_q8, const ExpertsShape& s) {
  const uint64_t x_elements = uint64_t(s.n_tokens) * s.n_embd;
  require(!x_q8 || (x_q8->cols == s.n_embd && x_q8->n_tokens == s.n_tokens && x_q8->xq.size >= x_elements &&
                    x_q8->xd.size >= x_elements / 8 && x_q8->xs.size >= x_elements / 8),
          MOEVK_ERROR_INVALID_ARGUMENT, "moe experts: quantized x of another shape, or its ranges too small");
}

// Checks one expert tensor against the shape (throws naming what is wrong).
void check_experts(const ExpertMatrices& m, const char* name, uint32_t cols, uint32_t rows, uint32_t n_expert) {
  const std::string what = std::string("moe experts: ") + name;
  require_weight_type(m.type, what.c_str());
  require(m.cols == cols && m.rows == rows, MOEVK_ERROR_INVALID_ARGUMENT,
          what + " is " + std::to_string(m.cols) + "x" + std::to_string(m.rows) + ", expected " +
              std::to_string(cols) + "x" + std::to_string(rows));
  require(m.n_expert >= n_expert, MOEVK_ERROR_INVALID_ARGUMENT,
          what + " holds " + std::to_string(m.n_expert) + " experts, fewer than " + std::to_string(n_expert));
  // Activations are read 8 at a time (vec4 pairs), and a row must be whole decode blocks.
  const uint32_t block = std::max(weight_block_elements(m.type), 8u);
  require(cols % block == 0, MOEVK_ERROR_INVALID_ARGUMENT,
          what + ": " + std::to_string(cols) + " columns is not a multiple of " + std::to_string(block) +
              " (" + quant::type_info(m.type).name + ")");
  // As MatMul: the F32/F16/BF16 decoders read whole words, so every expert starts 4-byte aligned
  // (the quant decoders alone would need only even offsets).
  require(m.data.offset % 4 == 0 && m.expert_stride % 4 == 0, MOEVK_ERROR_INVALID_ARGUMENT,
          what + ": weights must start 4-byte aligned (offset " + std::to_string(m.data.offset) +
              ", expert stride " + std::to_string(m.expert_stride) + ")");
  const uint64_t matrix_bytes = uint64_t(rows) * m.row_bytes();
  require(m.expert_stride >= matrix_bytes, MOEVK_ERROR_INVALID_ARGUMENT,
          what + ": expert stride " + std::to_string(m.expert_stride) + " is smaller than one matrix");
  require(m.expert_stride < (1ull << 32), MOEVK_ERROR_UNSUPPORTED, what + ": expert stride exceeds 4 GiB");
  require(m.data.size >= uint64_t(n_expert - 1) * m.expert_stride + matrix_bytes, MOEVK_ERROR_INVALID_ARGUMENT,
          what + ": weight range smaller than " + std::to_string(n_expert) + " experts");
}

// Experts [first, end) of one tensor bound (expert `first` at base bytes of the range).
WeightBinding bind_window(const vk::Context& ctx, const ExpertMatrices& m, uint32_t first, uint32_t end) {
  const vk::BufferRange window{m.data.buffer, m.data.offset + uint64_t(first) * m.expert_stride,
                               m.data.size - uint64_t(first) * m.expert_stride};
  return bind_weights(ctx, window, uint64_t(end - first - 1) * m.expert_stride + m.rows * m.row_bytes());
}

// Experts per binding window: as many as fit one binding for every tensor (alignment slack and
// word rounding aside), at least one; n_expert when the whole tensors fit.
uint32_t experts_per_window(uint64_t limit, uint64_t slack, uint32_t n_expert,
                            std::initializer_list<const ExpertMatrices*> tensors) {
  uint32_t per = n_expert;
  for (const ExpertMatrices* m : tensors) {
    const uint64_t matrix = uint64_t(m->rows) * m->row_bytes();
    require(limit >= slack + matrix, MOEVK_ERROR_UNSUPPORTED,
            "moe experts: one expert matrix of " + std::to_string(matrix) +
                " bytes exceeds the device's storage buffer range of " + std::to_string(limit) + " bytes");
    per = static_cast<uint32_t>(std::min<uint64_t>(per, (limit - slack - matrix) / m->expert_stride + 1));
  }
  return per;
}

const vk::Pipeline& typed_pipeline(vk::Context& ctx, const char* kernel, quant::Type t, uint32_t bindings,
                                   uint32_t push_bytes, std::vector<uint32_t> spec, const char* suffix = "") {
  vk::PipelineDesc desc{std::string(kernel) + "_" + weight_variant(t) + suffix, bindings, push_bytes, std::move(spec)};
  desc.table = weight_table(t);
  return ctx.pipeline(desc);
}
}  // namespace

MoeExperts::MoeExperts(vk::Context& ctx, MoeExpertsOptions options) : ctx_(ctx), options_(options) {}
MoeExperts::MoeExperts(vk::Context& ctx, uint32_t decode_max_tokens)
    : MoeExperts(ctx, MoeExpertsOptions{decode_max_tokens}) {}

uint64_t MoeExperts::scratch_bytes(const ExpertsShape& s) { return layout_for(s).total; }
ExpertsScratchLayout MoeExperts::scratch_layout(const ExpertsShape& s) { return layout_for(s); }

std::string MoeExperts::path_for(const ExpertsShape& s) const {
  return s.n_tokens <= options_.decode_max_tokens ? "decode" : "grouped";
}

bool MoeExperts::grouped_coopmat(quant::Type t) const {
  return options_.coopmat_emulation ? coopmat_emulation_usable(ctx_, t)
                                    : options_.allow_coopmat && coopmat_usable(ctx_);
}

bool MoeExperts::grouped_dot(quant::Type t) const {
  // Any batch record() accepts: quantize_q8's 2-D grid covers every activation count below 2^32.
  return !grouped_coopmat(t) && options_.allow_dot && ctx_.features().dot && weight_has_int8_dot(t);
}

bool MoeExperts::decode_dot(quant::Type gate, quant::Type up) const {
  const vk::Features& f = ctx_.features();
  return options_.dot_decode && options_.allow_dot && f.dot && options_.allow_subgroup &&
         f.subgroup_arithmetic && gate == up && weight_has_int8_dot(gate);
}

bool MoeExperts::decode_wide(quant::Type t) const { return options_.wide_decode && weight_has_wide_runs(t); }

uint32_t MoeExperts::coopmat_tile_rows(const ExpertsShape& s) const {
  if (options_.coopmat_tile_rows != 0) return options_.coopmat_tile_rows;
  return uint64_t(s.n_tokens) * s.k >= 48ull * s.n_expert ? 2 * kTileM : kTileM;
}

std::string MoeExperts::path_for(const ExpertsShape& s, quant::Type gate, quant::Type up, quant::Type down) const {
  if (path_for(s) == "decode") {
    if (decode_dot(gate, up)) return "decode_dot";
    return decode_wide(gate) || decode_wide(up) || decode_wide(down) ? "decode_wide" : "decode";
  }
  const int coops = int(grouped_coopmat(gate)) + int(grouped_coopmat(up)) + int(grouped_coopmat(down));
  const int dots = int(grouped_dot(gate)) + int(grouped_dot(up)) + int(grouped_dot(down));
  if (coops == 3) return "grouped_coopmat";
  if (dots == 3) return "grouped_dot";
  return coops + dots == 0 ? "grouped" : "grouped_mixed";
}

void MoeExperts::record(vk::Recorder& rec, const ExpertsShape& s, const ExpertMatrices& gate,
                        const ExpertMatrices& up, const ExpertMatrices& down, const vk::BufferRange& x,
                        const vk::BufferRange& expert_ids, const vk::BufferRange& expert_weights,
                        const vk::BufferRange& scratch, const vk::BufferRange& out, bool accumulate,
                        const InputNorm* norm, const Q8Activations* x_q8) const {
  require(s.k >= 1 && s.n_expert >= 1 && s.k <= s.n_expert, MOEVK_ERROR_INVALID_ARGUMENT,
          "moe experts: need 1 <= k <= n_expert, got k=" + std::to_string(s.k) + " n_expert=" +
              std::to_string(s.n_expert));
  require(s.n_embd > 0 && s.n_ff > 0, MOEVK_ERROR_INVALID_ARGUMENT, "moe experts: empty n_embd or n_ff");
  check_experts(gate, "gate", s.n_embd, s.n_ff, s.n_expert);
  check_experts(up, "up", s.n_embd, s.n_ff, s.n_expert);
  check_experts(down, "down", s.n_ff, s.n_embd, s.n_expert);
  const uint64_t limit = options_.max_weight_binding_bytes ? options_.max_weight_binding_bytes
                                                           : ctx_.caps().max_storage_buffer_range;
  const uint64_t slack = weight_binding_slack(ctx_);
  const uint32_t per_window = experts_per_window(limit, slack, s.n_expert, {&gate, &up, &down});
  struct Window {
    uint32_t first, end;
    WeightBinding gate, up, down;
  };
  std::vector<Window> windows;
  for (uint32_t first = 0; first < s.n_expert; first += per_window) {
    const uint32_t end = std::min(s.n_expert, first + per_window);
    windows.push_back({first, end, bind_window(ctx_, gate, first, end), bind_window(ctx_, up, first, end),
                       bind_window(ctx_, down, first, end)});
  }
  if (s.n_tokens == 0) return;

  const uint64_t n_entries = uint64_t(s.n_tokens) * s.k;
  const ExpertsScratchLayout l = layout_for(s);
  require(x.size >= uint64_t(s.n_tokens) * s.n_embd * 4 && out.size >= uint64_t(s.n_tokens) * s.n_embd * 4,
          MOEVK_ERROR_INVALID_ARGUMENT, "moe experts: x or out range smaller than n_tokens x n_embd");
  require(expert_ids.size >= n_entries * 4 && expert_weights.size >= n_entries * 4,
          MOEVK_ERROR_INVALID_ARGUMENT, "moe experts: expert id/weight ranges smaller than n_tokens x k");
  require(scratch.size >= l.total, MOEVK_ERROR_INVALID_ARGUMENT,
          "moe experts: scratch of " + std::to_string(scratch.size) + " bytes, need " + std::to_string(l.total));
  require(s.n_tokens <= kMaxGroupsPerDim && n_entries < (1ull << 31) &&
              n_entries * std::max(s.n_ff, s.n_embd) < (1ull << 32),
          MOEVK_ERROR_UNSUPPORTED,
          "moe experts: a batch of " + std::to_string(s.n_tokens) + " tokens is more than one dispatch takes (at most " +
              std::to_string(kMaxGroupsPerDim) + ", and tokens x k x max(n_ff, n_embd) under 2^32)");

  const bool fused = gate.type == up.type;  // else gate and up run as two passes
  const uint32_t up_row_bytes = static_cast<uint32_t>(up.row_bytes());
  const vk::BufferRange h = sub(scratch, l.h, n_entries * s.n_ff * 4);

  require(!norm || fuses_norm(s, gate.type, up.type), MOEVK_ERROR_INTERNAL,
          "moe experts: a fused input norm needs the decode path on the float kernels");
  require(!norm || norm->weight.size >= uint64_t(s.n_embd) * 4, MOEVK_ERROR_INVALID_ARGUMENT,
          "moe experts: norm weight shorter than n_embd");
  if (path_for(s) == "decode") {
    require(n_entries <= kMaxGroupsPerDim, MOEVK_ERROR_UNSUPPORTED, "moe experts: decode batch too large");
    const uint32_t wg = options_.decode_workgroup, mv_rows = options_.decode_rows;
    // Subgroup reductions: one shared slot per subgroup.
    const bool subgroup = options_.allow_subgroup && ctx_.features().subgroup_arithmetic;
    const uint32_t slots = ctx_.caps().max_subgroups(wg);
    // moe_gate_up_mv's shared sums, the larger kernel's: 2 * rows + 1 per slot (per thread, or
    // per subgroup), bounded here by 2 * rows + 2 for the subgroup variant's totals.
    require_decode_shape(ctx_, "moe experts", wg, mv_rows, 4ull * (2 * mv_rows + 2) * (subgroup ? slots : wg));
    // moe_down_mv on its own shape where one is set (its shared sums: rows per slot).
    const uint32_t down_wg = options_.down_workgroup ? options_.down_workgroup : wg;
    const uint32_t down_rows = options_.down_workgroup ? options_.down_rows : mv_rows;
    const uint32_t down_slots = ctx_.caps().max_subgroups(down_wg);
    if (options_.down_workgroup)
      require_decode_shape(ctx_, "moe experts (down)", down_wg, down_rows,
                           4ull * down_rows * (subgroup ? down_slots : down_wg));
    const uint32_t ff_groups = div_up(s.n_ff, mv_rows);  // rows >= 1 from here
    const char* suffix = subgroup ? "_subgroup" : "";
    // One dispatch per window; windows write disjoint entries of h (no barrier between them).
    auto gate_up = [&](quant::Type t, uint32_t mode, bool a_is_up, bool b_is_up, uint32_t row_bytes) {
      const std::vector<uint32_t> spec{wg, mv_rows, norm ? 1u : 0u, slots, decode_wide(t) ? 1u : 0u};
      const vk::Pipeline& p = typed_pipeline(ctx_, "moe_gate_up_mv", t, 6, sizeof(GateUpMvPush), spec, suffix);
      for (const Window& w : windows) {
        const WeightBinding& a = a_is_up ? w.up : w.gate;
        const WeightBinding& b = b_is_up ? w.up : w.gate;
        const GateUpMvPush push{s.n_embd, s.n_ff, s.k, s.n_expert,
                                static_cast<uint32_t>(gate.expert_stride), static_cast<uint32_t>(up.expert_stride),
                                row_bytes, mode, w.gate.base, w.up.base, norm ? norm->eps : 0.0f, w.first, w.end};
        rec.dispatch(p, {a.range, b.range, x, expert_ids, h, norm ? norm->weight : x}, push, ff_groups,
                     static_cast<uint32_t>(n_entries));
      }
    };
    if (decode_dot(gate.type, up.type)) {
      const uint64_t x_elements = uint64_t(s.n_tokens) * s.n_embd;
      require(s.n_embd % 32 == 0, MOEVK_ERROR_INVALID_ARGUMENT, "moe experts: dot decode needs n_embd % 32 == 0");
      check_x_q8(x_q8, s);
      const Q8Activations x_int8 = x_q8 ? *x_q8 : scratch_activations(scratch, l);
      if (!x_q8) {  // into the scratch's int8 activations, then a barrier before the products read it
        QuantizeQ8(ctx_, options_.quantize_groups_per_dim)
            .record(rec, x, x_int8.xq, x_int8.xd, x_int8.xs, static_cast<uint32_t>(x_elements / 32));
        rec.barrier();
      }
      const vk::Pipeline& p =
          typed_pipeline(ctx_, "moe_gate_up_mv_dot", gate.type, 7, sizeof(GateUpMvPush), {wg, mv_rows, slots});
      for (const Window& w : windows) {
        const GateUpMvPush push{s.n_embd, s.n_ff, s.k, s.n_expert,
                                static_cast<uint32_t>(gate.expert_stride), static_cast<uint32_t>(up.expert_stride),
                                static_cast<uint32_t>(gate.row_bytes()), kFused, w.gate.base, w.up.base, 0.0f,
                                w.first, w.end};
        rec.dispatch(p, {w.gate.range, w.up.range, x_int8.xq, expert_ids, h, x_int8.xd, x_int8.xs}, push, ff_groups,
                     static_cast<uint32_t>(n_entries));
      }
    } else if (fused) {
      gate_up(gate.type, kFused, false, true, static_cast<uint32_t>(gate.row_bytes()));
    } else {
      gate_up(gate.type, kGateOnly, false, false, static_cast<uint32_t>(gate.row_bytes()));
      rec.barrier();
      gate_up(up.type, kTimesUp, true, true, up_row_bytes);
    }
    rec.barrier();
    const std::vector<uint32_t> down_spec{down_wg, down_rows, down_slots, decode_wide(down.type) ? 1u : 0u};
    const vk::Pipeline& p = typed_pipeline(ctx_, "moe_down_mv", down.type, 5, sizeof(DownMvPush), down_spec, suffix);
    for (size_t i = 0; i < windows.size(); ++i) {
      const Window& w = windows[i];
      // Windows after the first add to what the earlier ones wrote (the same rows of out).
      if (i > 0) rec.barrier();
      const DownMvPush push{s.n_ff, s.n_embd, s.k, s.n_expert, static_cast<uint32_t>(down.expert_stride),
                            static_cast<uint32_t>(down.row_bytes()), w.down.base, (accumulate || i > 0) ? 1u : 0u,
                            w.first, w.end};
      rec.dispatch(p, {w.down.range, h, expert_ids, expert_weights, out}, push, div_up(s.n_embd, down_rows),
                   s.n_tokens);
    }
    return;
  }

  // Grouped path.
  const vk::BufferRange y = sub(scratch, l.y, n_entries * s.n_embd * 4);
  const vk::BufferRange group_info = sub(scratch, l.group_info, (3ull * s.n_expert + 2) * 4);
  const vk::BufferRange grouped_entry = sub(scratch, l.grouped_entry, n_entries * 4);
  const vk::BufferRange grouped_row = sub(scratch, l.grouped_row, n_entries * 4);
  // x (unless the caller quantized it), later h.
  const Q8Activations scratch_q8 = scratch_activations(scratch, l);
  const uint32_t n = static_cast<uint32_t>(n_entries);
  const bool coop_gate = grouped_coopmat(gate.type), coop_up = grouped_coopmat(up.type);
  const bool coop_down = grouped_coopmat(down.type);
  // Row tiles of every product alike (they are group_info's): the cooperative-matrix kernel's
  // own size where it runs them all, else the others' 32.
  const uint32_t tile_m = coop_gate && coop_up && coop_down ? coopmat_tile_rows(s) : kTileM;
  require(tile_m == kTileM || tile_m == 2 * kTileM, MOEVK_ERROR_INVALID_ARGUMENT,
          "moe experts: cooperative-matrix row tiles of 32 or 64 rows, not " + std::to_string(tile_m));
  // Worst case of sum over experts of ceil(count_e / TM): every non-empty expert wastes < 1 tile.
  const uint32_t max_tiles = div_up(n, tile_m) + std::min(s.n_expert, n);
  require(max_tiles <= kMaxGroupsPerDim, MOEVK_ERROR_UNSUPPORTED, "moe experts: prefill batch too large");
  // The products' grids are (max_tiles, column tiles) with workgroups numbered y * max_tiles + x
  // in a uint (moe_row_tiles.glsl): the narrowest column tile is kTileN.
  require(div_up(std::max(s.n_ff, s.n_embd), kTileN) <= kMaxGroupsPerDim &&
              uint64_t(max_tiles) * div_up(std::max(s.n_ff, s.n_embd), kTileN) < (1ull << 32),
          MOEVK_ERROR_UNSUPPORTED, "moe experts: prefill batch x expert width too large for one dispatch");
  require(s.n_expert <= kMaxGroupedExperts, MOEVK_ERROR_UNSUPPORTED,
          "moe experts: the grouped (prefill) path takes at most " + std::to_string(kMaxGroupedExperts) +
              " experts (moe_group's histogram), not " + std::to_string(s.n_expert));

  const bool dot_gate = grouped_dot(gate.type), dot_up = grouped_dot(up.type);
  const bool dot_down = grouped_dot(down.type);
  const uint64_t x_elements = uint64_t(s.n_tokens) * s.n_embd;
  check_x_q8(x_q8, s);
  // int8 activations (quantize_q8) into the scratch's: `elements` values of `src`, 32 at a time.
  const QuantizeQ8 quantize_q8(ctx_, options_.quantize_groups_per_dim);
  auto quantize = [&](const vk::BufferRange& src, uint64_t elements) {
    quantize_q8.record(rec, src, scratch_q8.xq, scratch_q8.xd, scratch_q8.xs, static_cast<uint32_t>(elements / 32));
  };
  const Q8Activations& x_int8 = x_q8 ? *x_q8 : scratch_q8;

  const GroupPush group_push{n, s.n_expert, tile_m};
  rec.dispatch(ctx_.pipeline({"moe_group", 4, sizeof(GroupPush), {kGroupWorkgroup}}),
               {expert_ids, group_info, grouped_entry, grouped_row}, group_push, s.n_expert);
  // x per token, once for all its slots (the dot kernel gathers rows through grouped_entry);
  // independent of the grouping, so it shares its barrier.
  if ((dot_gate || dot_up) && !x_q8) quantize(x, x_elements);
  rec.barrier();

  // dot: moe_mul_mm_dot on the int8 activations (act is then unused); its mode 2 reads the up
  // weights at binding 0, which is where kTimesUp binds them for every kernel anyway.
  // coop: moe_mul_mm_coopmat, moe_mul_mm's bindings and modes on 64-row weight tiles.
  // One dispatch per window: a row tile belongs to one expert, so windows write disjoint rows
  // of the output (no barrier between them). which: 0 gate, 1 up, 2 down.
  // act_int8: the dot kernel's activations (act quantized); dst_int8: the dot kernel writes its
  // (mode 0) output as int8 activations there instead of f32 to dst.
  auto mm = [&](quant::Type t, uint32_t mode, int a_which, const ExpertMatrices& ma, int b_which,
                const ExpertMatrices& mb, const vk::BufferRange& act, const Q8Activations& act_int8,
                const vk::BufferRange& dst, uint32_t cols, uint32_t rows, bool dot, bool coop,
                const Q8Activations* dst_int8 = nullptr) {
    const uint32_t row_bytes = static_cast<uint32_t>(mode == kTimesUp ? mb.row_bytes() : ma.row_bytes());
    auto pick = [](const Window& w, int which) -> const WeightBinding& {
      return which == 0 ? w.gate : which == 1 ? w.up : w.down;
    };
    for (const Window& w : windows) {
      const WeightBinding& a = pick(w, a_which);
      const WeightBinding& b = pick(w, b_which);
      const MmPush push{cols, rows, s.k, s.n_expert, static_cast<uint32_t>(ma.expert_stride),
                        static_cast<uint32_t>(mb.expert_stride), row_bytes, mode, a.base, b.base, w.first, w.end};
      if (coop) {
        vk::PipelineDesc desc{coopmat_variant("moe_mul_mm_coopmat", t, options_.coopmat_emulation), 6, sizeof(MmPush),
                              {tile_m / kCoopFragRows}};
        desc.table = weight_table(t);
        const vk::Pipeline& p = ctx_.pipeline(desc);
        rec.dispatch(p, {a.range, b.range, act, grouped_entry, group_info, dst}, push, max_tiles,
                     div_up(rows, kCoopTileN));
      } else if (dot) {
        const vk::Pipeline& p = typed_pipeline(ctx_, "moe_mul_mm_dot", t, 11, sizeof(MmPush),
                                               {kDotWorkgroup, kTileM, kDotTileN, kDotSubBlocks, dst_int8 ? 1u : 0u});
        const Q8Activations& q = dst_int8 ? *dst_int8 : Q8Activations{dst, dst, dst};  // unused without
        rec.dispatch(p, {a.range, b.range, act_int8.xq, act_int8.xd, act_int8.xs, grouped_entry, group_info, dst,
                         q.xq, q.xd, q.xs},
                     push, max_tiles, div_up(rows, kDotTileN));
      } else {
        const vk::Pipeline& p = typed_pipeline(ctx_, "moe_mul_mm", t, 6, sizeof(MmPush),
                                               {kMmWorkgroup, kTileM, kTileN, kTileK});
        rec.dispatch(p, {a.range, b.range, act, grouped_entry, group_info, dst}, push, max_tiles,
                     div_up(rows, kTileN));
      }
    }
  };
  // Fused gate+up and down both on the dot kernel: gate+up writes h as int8 activations (in h's
  // region), so no quantization pass and barrier before down.
  const bool h_in_epilogue = fused && dot_gate && dot_down && !coop_gate && options_.quantize_h_in_gate_up;
  const Q8Activations h_q8 =
      q8_activations_in(sub(scratch, l.h, q8_activation_bytes(s.n_ff, n_entries)), s.n_ff, n_entries);
  if (fused) {
    mm(gate.type, kFused, 0, gate, 1, up, x, x_int8, h, s.n_embd, s.n_ff, dot_gate, coop_gate,
       h_in_epilogue ? &h_q8 : nullptr);
  } else {
    mm(gate.type, kGateOnly, 0, gate, 0, gate, x, x_int8, h, s.n_embd, s.n_ff, dot_gate, coop_gate);
    rec.barrier();
    mm(up.type, kTimesUp, 1, up, 1, up, x, x_int8, h, s.n_embd, s.n_ff, dot_up, coop_up);
  }
  rec.barrier();
  if (dot_down && !h_in_epilogue) {
    // h (f32 SiLU(g) * u) to int8 per 32 elements, over the x activations gate/up have read.
    quantize(h, n_entries * s.n_ff);
    rec.barrier();
  }
  mm(down.type, kDown, 2, down, 2, down, h, h_in_epilogue ? h_q8 : scratch_q8, y, s.n_ff, s.n_embd, dot_down,
     coop_down);
  rec.barrier();
  const CombinePush combine_push{s.n_embd, s.k, accumulate ? 1u : 0u};
  rec.dispatch(ctx_.pipeline({"moe_combine", 4, sizeof(CombinePush), {kGroupWorkgroup}}),
               {y, grouped_row, expert_weights, out}, combine_push, div_up(s.n_embd, kGroupWorkgroup), s.n_tokens);
}

}  // namespace moevk::ops
