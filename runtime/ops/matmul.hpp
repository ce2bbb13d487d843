// Dense products with quantized weights, dequantized in registers.
//   y[t][r] (+)= sum_c W[r][c] * x[t][c] (+ bias[r])   for t < n_tokens, r < W.rows
// Small n_tokens use the matrix-vector kernels (shaders/matmul/mul_mv.comp); larger batches the
// tiled matrix-matrix kernels (shaders/matmul/mul_mm.comp), on the integer-dot or cooperative-
// matrix paths where the device has them and the plain path everywhere.
#pragma once
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "ops/quantize_q8.hpp"
#include "ops/tensor.hpp"
#include "vk/recorder.hpp"

namespace moevk::ops {

struct MatMulOptions {
  bool allow_dot = true;      // integer-dot path where the device supports it
  bool allow_coopmat = true;  // cooperative-matrix path where supported
  // Tests: batches the cooperative-matrix path would take run its kernel's emulated build
  // (ops/coopmat.hpp) instead, on any device with fp16 and for the types it is built for.
  bool coopmat_emulation = false;
  // Batches up to this use matrix-vector kernels (<= 32; 0: never), capped where the kernel's
  // shared memory would exceed the device's maxComputeSharedMemorySize (mv_token_cap).
  uint32_t mv_max_tokens = 8;
  bool allow_subgroup = true; // subgroupAdd reduction in mul_mv where the device has it
  // One-token batches (decode) run their own mul_mv specialization: its workgroup size and rows
  // per workgroup (batches keep 128 x 4). Untuned guesses; `moevk bench ops --decode-configs`
  // times others. Workgroup a power of two in 32..1024 within the device's limit, rows 1..8.
  uint32_t decode_workgroup = 128, decode_rows = 4;
  // One-token products of Q4_0, Q4_K, Q5_K and Q6_K (weight_has_wide_runs) take 32 elements a
  // thread step, 16 quant bytes (mul_mv.comp's WIDE), against 16 and 8: opt-in until a GPU
  // measures it (MOEVK_ENABLE=wide_decode, vk::Features::wide_decode; bench ops' "mv_wide" rows).
  bool wide_decode = false;
  // Products of one input recorded together (record_products) share one mul_mv dispatch where
  // they can (merges()); off: a dispatch each, for comparisons.
  bool merge_products = true;
  // Largest weight binding; a bigger matrix is split into row chunks, one dispatch each.
  // 0: the device's maxStorageBufferRange (128 MiB on lavapipe). Tests set it small.
  uint64_t max_weight_binding_bytes = 0;
  // Workgroups per grid dimension of the mm_dot path's activation quantization (ops::QuantizeQ8;
  // 0: 65535, the guaranteed limit). Tests set it small to run batches on a 2-D grid.
  uint32_t quantize_groups_per_dim = 0;
};

class MatMul {
 public:
  explicit MatMul(vk::Context& ctx, MatMulOptions options = {});
  // x: [n_tokens][W.cols] f32; y: [n_tokens][W.rows] f32; bias: [W.rows] f32 or nullptr.
  // accumulate: y += W x (+ bias) instead of y = ...: a residual add fused into its producer
  // (y must not overlap x).
  // norm: x is RMS-normed with norm->weight on the way in (only where fuses_norm() says so;
  // else INTERNAL): the caller records no separate norm pass and no barrier for it.
  // x_q8: x already quantized (Q8Activations of [n_tokens][w.cols], fenced by the caller): read
  // on the integer-dot tiles instead of quantizing x; ignored on the other paths.
  void record(vk::Recorder& rec, const Matrix& w, const vk::BufferRange& x, const vk::BufferRange& y,
              uint32_t n_tokens, const vk::BufferRange* bias = nullptr, bool accumulate = false,
              const InputNorm* norm = nullptr, const Q8Activations* x_q8 = nullptr) const;
  // One of the products record_products() records.
  struct Product {
    const Matrix* w = nullptr;
    vk::BufferRange y;                      // [n_tokens][w->rows] f32
    const vk::BufferRange* bias = nullptr;  // [w->rows] f32, or nullptr
  };
  static constexpr size_t kMaxMergedProducts = 3;  // mul_mv.comp's MAX_MATS
  // Products that read the same x (q, k and v; gate and up), each as record() would record it
  // (no accumulate): those of one type and width in one mul_mv dispatch where merges() says they
  // can share it (one dispatch where there were two or three, so a decode step launches fewer);
  // batches on the integer-dot tiles quantize x once for all of them (one quantization pass and
  // its two barriers instead of one each); the others with one record() each. Both sharings
  // follow options.merge_products.
  // x_q8: x already quantized (RmsNorm's q8 output, fenced by the caller): products on the
  // integer-dot tiles read it and x is not quantized at all; the others read x.
  void record_products(vk::Recorder& rec, std::span<const Product> products, const vk::BufferRange& x,
                       uint32_t n_tokens, const InputNorm* norm = nullptr,
                       const Q8Activations* x_q8 = nullptr) const;
  // Whether record_products() merges these: options.merge_products on, 2 to 3 products, all on
  // the mv path at this batch, of one type and column count, their weights in one buffer and
  // within one binding (the loader places each layer's q/k/v, gate/up that way), outputs in one
  // buffer, and biases all absent or all in one buffer.
  bool merges(std::span<const Product> products, uint32_t n_tokens) const;
  void set_merge_products(bool on) { options_.merge_products = on; }
  // Whether record() can take an InputNorm for this batch: the matrix-vector path can, up to
  // the batch whose extra shared memory (a quarter more per token) still fits.
  bool fuses_norm(const Matrix& w, uint32_t n_tokens) const {
    return n_tokens <= mv_max_norm_tokens_ && path_for(w, n_tokens) == "mv";
  }
  // Which path record() would take, for tests and `moevk bench ops` ("mv", "mm", "mm_dot", "mm_coopmat").
  std::string path_for(const Matrix& w, uint32_t n_tokens) const;
  // Throws UNSUPPORTED naming the type when no kernel reads it.
  static void check_supported(quant::Type t);
  // Bytes of the int8 activations the mm_dot path writes (record() keeps its own scratch,
  // grown as needed and kept for the op's life, since recordings may be replayed).
  static uint64_t dot_scratch_bytes(uint32_t cols, uint32_t n_tokens);
  // The matrix-vector batch limit in effect: options.mv_max_tokens, capped by shared memory.
  uint32_t mv_max_tokens() const { return mv_max_tokens_; }
  // The largest batch mul_mv can run on a device: `requested` capped so that its partial sums
  // fit maxComputeSharedMemorySize. Per token they take (4 + norm) floats per slot: one slot per
  // thread (128) with the plain reduction, one per subgroup with the subgroup one
  // (mv_subgroup_slots), so 2 KiB plain, 64 bytes with subgroups of 32.
  static uint32_t mv_token_cap(const vk::Capabilities& caps, bool subgroup, bool norm, uint32_t requested);
  // The subgroup reduction's slots per sum (mul_mv's SLOTS): one per subgroup of a 128-thread
  // workgroup at the device's smallest subgroup size, which a driver free to choose may use.
  static uint32_t mv_subgroup_slots(const vk::Capabilities& caps);

 private:
  vk::BufferRange dot_scratch(uint64_t bytes) const;
  // Records the quantization of x into the op's scratch, fenced by barriers on both sides.
  Q8Activations quantize_input(vk::Recorder& rec, const vk::BufferRange& x, uint32_t cols, uint32_t n_tokens) const;
  void record_impl(vk::Recorder& rec, const Matrix& w, const vk::BufferRange& x, const vk::BufferRange& y,
                   uint32_t n_tokens, const vk::BufferRange* bias, bool accumulate, const InputNorm* norm,
                   const Q8Activations* quantized) const;
  // One dispatch for products merges() accepts.
  void record_merged(vk::Recorder& rec, std::span<const Product> products, const vk::BufferRange& x,
                     uint32_t n_tokens, const InputNorm* norm) const;
  // The mul_mv pipeline for a batch (its workgroup's row count in `rows`).
  const vk::Pipeline& mv_pipeline(uint32_t n_tokens, const InputNorm* norm, uint32_t& rows, quant::Type type) const;
  // Largest weight binding in bytes, less the alignment slack bind_weights() may add.
  uint64_t weight_binding_limit() const;

  // Shared by copies of the op (it stays copyable and movable); the last buffer is the largest,
  // older ones stay alive for recordings that still use them.
  struct Scratch {
    std::mutex mutex;
    std::vector<vk::Buffer> buffers;
  };

  vk::Context& ctx_;
  MatMulOptions options_;
  bool mv_subgroup_ = false;  // mul_mv's subgroup reduction (options and device allowing)
  uint32_t mv_max_tokens_ = 0, mv_max_norm_tokens_ = 0;
  std::shared_ptr<Scratch> scratch_ = std::make_shared<Scratch>();
};

}  // namespace moevk::ops
