// quant::quantize(): dispatch to the per-format reference quantizers.
#include <cstring>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "quant/quantize_internal.hpp"
#include "quant/types.hpp"

namespace moevk::quant {

void quantize(Type t, const float* src, void* dst, uint64_t n, ScaleSearch search) {
  const TypeInfo& info = type_info(t);
  require(n % info.block_size == 0, MOEVK_ERROR_INVALID_ARGUMENT,
          std::string("quantize ") + info.name + ": " + std::to_string(n) +
              " elements is not a multiple of the block size " + std::to_string(info.block_size));
  // The quantizers write blocks as structs; misaligned output goes through an aligned buffer.
  if (reinterpret_cast<uintptr_t>(dst) % alignof(uint32_t) != 0) {
    const uint64_t bytes_total = row_bytes(t, n);
    std::vector<uint32_t> aligned((bytes_total + 3) / 4);
    quantize(t, src, aligned.data(), n, search);
    std::memcpy(dst, aligned.data(), size_t(bytes_total));
    return;
  }
  switch (t) {
    case Type::F32: std::memcpy(dst, src, n * sizeof(float)); return;
    case Type::F16: return detail::quantize_f16(src, dst, n);
    case Type::BF16: return detail::quantize_bf16(src, dst, n);
    case Type::Q4_0: return detail::quantize_q4_0(src, dst, n);
    case Type::Q4_1: return detail::quantize_q4_1(src, dst, n);
    case Type::Q5_0: return detail::quantize_q5_0(src, dst, n);
    case Type::Q5_1: return detail::quantize_q5_1(src, dst, n);
    case Type::Q8_0: return detail::quantize_q8_0(src, dst, n);
    case Type::Q4_K: return detail::quantize_q4_k(src, dst, n, search == ScaleSearch::Full);
    case Type::Q5_K: return detail::quantize_q5_k(src, dst, n, search == ScaleSearch::Full);
    case Type::Q6_K: return detail::quantize_q6_k(src, dst, n, search == ScaleSearch::Full);
    case Type::IQ4_NL: return detail::quantize_iq4_nl(src, dst, n);
    case Type::Q2_K: return detail::quantize_q2_k(src, dst, n);
    case Type::Q3_K: return detail::quantize_q3_k(src, dst, n);
    case Type::IQ4_XS: return detail::quantize_iq4_xs(src, dst, n);
    default:
      if (detail::quantize_iq(t, src, dst, n, search == ScaleSearch::Full)) return;
      break;
  }
  fail(MOEVK_ERROR_UNSUPPORTED, std::string("quantize: no CPU conversion to type ") + info.name);
}

}  // namespace moevk::quant
