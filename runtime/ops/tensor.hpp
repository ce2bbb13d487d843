// How ops see their operands. Activations are f32, row-major [rows][cols] with no padding.
// Weights keep their GGUF block layout (but for where a row's block scales sit in Q4_0, IQ4_NL,
// Q8_0 and Q6_K rows: ops::to_device_layout): a matrix of `rows` rows (ne1) of `cols` elements
// (ne0, contiguous), rows of quant::row_bytes(type, cols) bytes; y[r] = sum_c W[r][c] * x[c].
#pragma once
#include <cstdint>

#include "quant/types.hpp"
#include "vk/context.hpp"

namespace moevk::ops {

struct Matrix {
  vk::BufferRange data;
  quant::Type type = quant::Type::F32;
  uint32_t cols = 0;  // K, the input dimension (ne0)
  uint32_t rows = 0;  // N, the output dimension (ne1)
  uint64_t row_bytes() const { return quant::row_bytes(type, cols); }
};

// n_expert matrices of the same shape, expert e starting at byte e * expert_stride (GGUF's merged
// 3-D expert tensors: ne = [cols, rows, n_expert]).
struct ExpertMatrices {
  vk::BufferRange data;
  quant::Type type = quant::Type::F32;
  uint32_t cols = 0, rows = 0, n_expert = 0;
  uint64_t expert_stride = 0;  // bytes; normally rows * row_bytes
  uint64_t row_bytes() const { return quant::row_bytes(type, cols); }
};

// An RMS norm applied by a product to its input on the way in: the product computes
// W (x / rms(x) * weight) without a separate norm pass (weight f32 [cols]; rms over the row,
// sqrt(mean(x^2) + eps)). Only the decode-sized kernels take it (MatMul::fuses_norm & co.).
struct InputNorm {
  vk::BufferRange weight;
  float eps = 0.0f;
};

// Per-step values read by shaders from a small device buffer, so a recorded step is replayed
// without re-recording: the host writes it (vkCmdUpdateBuffer or upload) before each submit.
struct StepParams {
  uint32_t n_past = 0;    // tokens already in the KV cache; token t of the batch has position n_past + t
  uint32_t n_tokens = 0;  // tokens in this step (== the recorded batch size)
  uint32_t reserved[2] = {};
};
static_assert(sizeof(StepParams) == 16);

}  // namespace moevk::ops
