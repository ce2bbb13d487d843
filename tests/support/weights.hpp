// Random weight matrices in any block format, for the matmul-family GPU tests.
#pragma once
#include <cstdint>
#include <vector>

#include "quant/types.hpp"

namespace moevk::test {

enum class WeightSource {
  Quantize,     // random normal floats through quant::quantize (float types always use this)
  RandomBytes,  // random block bytes with sane fp16 scales: every bit pattern of the quants
};

// rows x cols weights of type t (cols a multiple of the block size), padded with zero bytes to a
// whole number of 32-bit words. Types without a quantizer always use RandomBytes.
std::vector<uint8_t> random_weights(quant::Type t, uint32_t rows, uint32_t cols, uint32_t seed,
                                    WeightSource source = WeightSource::Quantize);
// quant::dequantize of the rows x cols matrix.
std::vector<float> dequantized(quant::Type t, const std::vector<uint8_t>& w, uint32_t rows, uint32_t cols);

// w (rows x cols of type t, as random_weights gives them) in the order the kernels read on the
// device (ops::to_device_layout, as the model loader uploads them) for a matrix that will start
// at byte `at` of its buffer (split rows rotate by their offset): what a test uploads there.
std::vector<uint8_t> device_weights(quant::Type t, const std::vector<uint8_t>& w, uint32_t rows, uint32_t cols,
                                    uint64_t at);

}  // namespace moevk::test
