#include "support/weights.hpp"

#include <random>
#include <stdexcept>
#include <string>

#include "ops/weight_binding.hpp"
#include "quant/half.hpp"
#include "support/gpu.hpp"

namespace moevk::test {

namespace {
// Byte offsets of the fp16 scale fields (d, m / dmin) inside one block.
std::vector<uint32_t> scale_fields(quant::Type t) {
  using quant::Type;
  switch (t) {
    case Type::Q4_0: case Type::Q5_0: case Type::Q8_0: case Type::IQ4_NL: case Type::IQ4_XS: return {0};
    case Type::IQ2_XXS: case Type::IQ2_XS: case Type::IQ2_S: case Type::IQ3_XXS: case Type::IQ3_S:
    case Type::IQ1_S: return {0};
    case Type::Q4_1: case Type::Q5_1: case Type::Q4_K: case Type::Q5_K: return {0, 2};
    case Type::Q6_K: return {208};
    case Type::Q2_K: return {80, 82};
    case Type::Q3_K: return {108};
    default: return {};
  }
}
}  // namespace

std::vector<uint8_t> random_weights(quant::Type t, uint32_t rows, uint32_t cols, uint32_t seed,
                                    WeightSource source) {
  const quant::TypeInfo& info = quant::type_info(t);
  // Rows are whole blocks; quantizing rows * cols values of ragged rows would write past w.
  if (cols % info.block_size != 0)
    throw std::invalid_argument(std::string("random_weights: ") + std::to_string(cols) + " columns of " + info.name +
                                " are not whole blocks");
  const uint64_t bytes = quant::row_bytes(t, cols) * rows;
  std::vector<uint8_t> w((bytes + 3) / 4 * 4, 0);
  const bool floats = info.block_size == 1;
  if (floats || (source == WeightSource::Quantize && info.can_quantize)) {
    const auto values = random_normal(size_t(rows) * cols, seed, 0.5f);
    quant::quantize(t, values.data(), w.data(), values.size());
    return w;
  }
  std::mt19937 rng(seed);
  for (uint64_t i = 0; i < bytes; ++i) w[i] = static_cast<uint8_t>(rng() >> 13);
  // Scales of either sign and a few magnitudes; mins included (K-quants subtract dmin * m).
  std::uniform_real_distribution<float> scale(-0.02f, 0.02f);
  const auto fields = scale_fields(t);
  for (uint64_t b = 0; b < bytes / info.type_size; ++b) {
    for (uint32_t f : fields) {
      const uint16_t h = quant::fp32_to_fp16(scale(rng));
      w[b * info.type_size + f] = uint8_t(h & 0xFF);
      w[b * info.type_size + f + 1] = uint8_t(h >> 8);
    }
    if (t == quant::Type::IQ1_M) {
      // IQ1_M's d: the top nibbles of its four scale words (bytes 48..55), low bits first.
      const uint16_t h = quant::fp32_to_fp16(scale(rng));
      for (uint32_t k = 0; k < 4; ++k) {
        uint8_t& top = w[b * info.type_size + 49 + 2 * k];
        top = uint8_t((top & 0x0F) | (((h >> (4 * k)) & 0xF) << 4));
      }
    }
  }
  return w;
}

std::vector<float> dequantized(quant::Type t, const std::vector<uint8_t>& w, uint32_t rows, uint32_t cols) {
  std::vector<float> out(size_t(rows) * cols);
  quant::dequantize(t, w.data(), out.data(), out.size());
  return out;
}

std::vector<uint8_t> device_weights(quant::Type t, const std::vector<uint8_t>& w, uint32_t rows, uint32_t cols,
                                    uint64_t at) {
  std::vector<uint8_t> out = w;  // padding past the rows stays as it is
  ops::to_device_layout(t, cols, w.data(), out.data(), rows, at);
  return out;
}

}  // namespace moevk::test
