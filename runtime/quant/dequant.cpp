// CPU reference dequantization, one function per block format, following ggml's scalar
// dequantize_row_* element order exactly (the GPU decoders in shaders/common are tested
// against these).
#include <cstring>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "quant/blocks.hpp"
#include "quant/half.hpp"
#include "quant/quantize_internal.hpp"
#include "quant/types.hpp"

namespace moevk::quant {
namespace {

template <typename Block>
const Block* blocks(const void* src) {
  return static_cast<const Block*>(src);
}

void dequant_q4_0(const void* src, float* y, uint64_t nb) {
  for (uint64_t i = 0; i < nb; ++i, y += QK4_0) {
    const BlockQ4_0& b = blocks<BlockQ4_0>(src)[i];
    const float d = fp16_to_fp32(b.d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      y[j] = float((b.qs[j] & 0xF) - 8) * d;
      y[j + QK4_0 / 2] = float((b.qs[j] >> 4) - 8) * d;
    }
  }
}

void dequant_q4_1(const void* src, float* y, uint64_t nb) {
  for (uint64_t i = 0; i < nb; ++i, y += QK4_1) {
    const BlockQ4_1& b = blocks<BlockQ4_1>(src)[i];
    const float d = fp16_to_fp32(b.d), m = fp16_to_fp32(b.m);
    for (int j = 0; j < QK4_1 / 2; ++j) {
      y[j] = float(b.qs[j] & 0xF) * d + m;
      y[j + QK4_1 / 2] = float(b.qs[j] >> 4) * d + m;
    }
  }
}

// Q5: bit j of the 32-bit qh word is the 5th bit of element j.
void dequant_q5_0(const void* src, float* y, uint64_t nb) {
  for (uint64_t i = 0; i < nb; ++i, y += QK5_0) {
    const BlockQ5_0& b = blocks<BlockQ5_0>(src)[i];
    const float d = fp16_to_fp32(b.d);
    uint32_t qh;
    std::memcpy(&qh, b.qh, sizeof qh);
    for (int j = 0; j < QK5_0 / 2; ++j) {
      const int high0 = int((qh >> j) & 1u) << 4;
      const int high1 = int((qh >> (j + 16)) & 1u) << 4;
      y[j] = float(((b.qs[j] & 0xF) | high0) - 16) * d;
      y[j + QK5_0 / 2] = float(((b.qs[j] >> 4) | high1) - 16) * d;
    }
  }
}

void dequant_q5_1(const void* src, float* y, uint64_t nb) {
  for (uint64_t i = 0; i < nb; ++i, y += QK5_1) {
    const BlockQ5_1& b = blocks<BlockQ5_1>(src)[i];
    const float d = fp16_to_fp32(b.d), m = fp16_to_fp32(b.m);
    uint32_t qh;
    std::memcpy(&qh, b.qh, sizeof qh);
    for (int j = 0; j < QK5_1 / 2; ++j) {
      const int high0 = int((qh >> j) & 1u) << 4;
      const int high1 = int((qh >> (j + 16)) & 1u) << 4;
      y[j] = float((b.qs[j] & 0xF) | high0) * d + m;
      y[j + QK5_1 / 2] = float((b.qs[j] >> 4) | high1) * d + m;
    }
  }
}

void dequant_q8_0(const void* src, float* y, uint64_t nb) {
  for (uint64_t i = 0; i < nb; ++i, y += QK8_0) {
    const BlockQ8_0& b = blocks<BlockQ8_0>(src)[i];
    const float d = fp16_to_fp32(b.d);
    for (int j = 0; j < QK8_0; ++j) y[j] = float(b.qs[j]) * d;
  }
}

void dequant_q8_1(const void* src, float* y, uint64_t nb) {
  for (uint64_t i = 0; i < nb; ++i, y += QK8_1) {
    const BlockQ8_1& b = blocks<BlockQ8_1>(src)[i];
    const float d = fp16_to_fp32(b.d);
    for (int j = 0; j < QK8_1; ++j) y[j] = float(b.qs[j]) * d;
  }
}

void dequant_q2_k(const void* src, float* y, uint64_t nb) {
  for (uint64_t i = 0; i < nb; ++i) {
    const BlockQ2_K& b = blocks<BlockQ2_K>(src)[i];
    const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
    const uint8_t* q = b.qs;
    int scale_index = 0;
    for (int n = 0; n < QK_K; n += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int half = 0; half < 2; ++half) {
          const uint8_t sc = b.scales[scale_index++];
          const float dl = d * float(sc & 0xF), ml = dmin * float(sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * float((q[l + 16 * half] >> shift) & 3) - ml;
        }
      }
    }
  }
}

void dequant_q3_k(const void* src, float* y, uint64_t nb) {
  for (uint64_t i = 0; i < nb; ++i) {
    const BlockQ3_K& b = blocks<BlockQ3_K>(src)[i];
    const float d_all = fp16_to_fp32(b.d);
    // 16 six-bit scales: low 4 bits in bytes 0..7 (two per byte), high 2 bits in bytes 8..11.
    int8_t scales[16];
    for (int j = 0; j < 16; ++j) {
      const int low = (j < 8) ? (b.scales[j] & 0xF) : (b.scales[j - 8] >> 4);
      const int high = (b.scales[8 + (j % 4)] >> (2 * (j / 4))) & 3;
      scales[j] = int8_t((low | (high << 4)) - 32);
    }
    const uint8_t* q = b.qs;
    uint8_t mask = 1;
    int scale_index = 0;
    for (int n = 0; n < QK_K; n += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, mask = uint8_t(mask << 1)) {
        for (int half = 0; half < 2; ++half) {
          const float dl = d_all * float(scales[scale_index++]);
          for (int l = 0; l < 16; ++l) {
            const int idx = l + 16 * half;
            const int value = int((q[idx] >> shift) & 3) - ((b.hmask[idx] & mask) ? 0 : 4);
            *y++ = dl * float(value);
          }
        }
      }
    }
  }
}

void dequant_q4_k(const void* src, float* y, uint64_t nb) {
  for (uint64_t i = 0; i < nb; ++i) {
    const BlockQ4_K& b = blocks<BlockQ4_K>(src)[i];
    const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
    const uint8_t* q = b.qs;
    for (int j = 0; j < QK_K / 64; ++j, q += 32) {
      uint8_t sc, m;
      get_scale_min_k4(2 * j, b.scales, sc, m);
      const float d1 = d * float(sc), m1 = dmin * float(m);
      get_scale_min_k4(2 * j + 1, b.scales, sc, m);
      const float d2 = d * float(sc), m2 = dmin * float(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * float(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * float(q[l] >> 4) - m2;
    }
  }
}

void dequant_q5_k(const void* src, float* y, uint64_t nb) {
  for (uint64_t i = 0; i < nb; ++i) {
    const BlockQ5_K& b = blocks<BlockQ5_K>(src)[i];
    const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
    const uint8_t* ql = b.qs;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < QK_K / 64; ++j, ql += 32) {
      uint8_t sc, m;
      get_scale_min_k4(2 * j, b.scales, sc, m);
      const float d1 = d * float(sc), m1 = dmin * float(m);
      get_scale_min_k4(2 * j + 1, b.scales, sc, m);
      const float d2 = d * float(sc), m2 = dmin * float(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * float((ql[l] & 0xF) + ((b.qh[l] & u1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * float((ql[l] >> 4) + ((b.qh[l] & u2) ? 16 : 0)) - m2;
      u1 = uint8_t(u1 << 2);
      u2 = uint8_t(u2 << 2);
    }
  }
}

void dequant_q6_k(const void* src, float* y, uint64_t nb) {
  for (uint64_t i = 0; i < nb; ++i) {
    const BlockQ6_K& b = blocks<BlockQ6_K>(src)[i];
    const float d = fp16_to_fp32(b.d);
    const uint8_t* ql = b.ql;
    const uint8_t* qh = b.qh;
    const int8_t* sc = b.scales;
    for (int n = 0; n < QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = int((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * float(sc[is + 0]) * float(q1);
        y[l + 32] = d * float(sc[is + 2]) * float(q2);
        y[l + 64] = d * float(sc[is + 4]) * float(q3);
        y[l + 96] = d * float(sc[is + 6]) * float(q4);
      }
    }
  }
}

void dequant_q8_k(const void* src, float* y, uint64_t nb) {
  for (uint64_t i = 0; i < nb; ++i, y += QK_K) {
    BlockQ8_K b;  // copied: the source may not be 4-byte aligned
    std::memcpy(&b, static_cast<const uint8_t*>(src) + i * sizeof(BlockQ8_K), sizeof b);
    for (int j = 0; j < QK_K; ++j) y[j] = b.d * float(b.qs[j]);
  }
}

void dequant_iq4_nl(const void* src, float* y, uint64_t nb) {
  for (uint64_t i = 0; i < nb; ++i, y += QK4_NL) {
    const BlockIQ4_NL& b = blocks<BlockIQ4_NL>(src)[i];
    const float d = fp16_to_fp32(b.d);
    for (int j = 0; j < QK4_NL / 2; ++j) {
      y[j] = d * float(kIQ4NLValues[b.qs[j] & 0xF]);
      y[j + QK4_NL / 2] = d * float(kIQ4NLValues[b.qs[j] >> 4]);
    }
  }
}

void dequant_iq4_xs(const void* src, float* y, uint64_t nb) {
  for (uint64_t i = 0; i < nb; ++i) {
    const BlockIQ4_XS& b = blocks<BlockIQ4_XS>(src)[i];
    const float d = fp16_to_fp32(b.d);
    for (int s = 0; s < QK_K / 32; ++s, y += 32) {
      const int ls = ((b.scales_l[s / 2] >> (4 * (s % 2))) & 0xF) | (((b.scales_h >> (2 * s)) & 3) << 4);
      const float dl = d * float(ls - 32);
      const uint8_t* q = b.qs + 16 * s;
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * float(kIQ4NLValues[q[j] & 0xF]);
        y[j + 16] = dl * float(kIQ4NLValues[q[j] >> 4]);
      }
    }
  }
}

}  // namespace

void dequantize(Type t, const void* src, float* dst, uint64_t n) {
  const TypeInfo& info = type_info(t);
  require(n % info.block_size == 0, MOEVK_ERROR_INVALID_ARGUMENT,
          std::string("dequantize ") + info.name + ": " + std::to_string(n) +
              " elements is not a multiple of the block size " + std::to_string(info.block_size));
  const uint64_t nb = n / info.block_size;
  // The decoders read blocks as structs (2- or 4-byte aligned); a file with general.alignment 1
  // can place data anywhere, so misaligned input is first copied to aligned memory.
  std::vector<uint32_t> aligned_copy;
  if (reinterpret_cast<uintptr_t>(src) % alignof(uint32_t) != 0) {
    const uint64_t bytes_total = nb * info.type_size;
    aligned_copy.resize(size_t((bytes_total + 3) / 4));
    std::memcpy(aligned_copy.data(), src, size_t(bytes_total));
    src = aligned_copy.data();
  }
  const auto* bytes = static_cast<const uint8_t*>(src);
  switch (t) {
    case Type::F32: std::memcpy(dst, src, n * sizeof(float)); return;
    case Type::F16:
      for (uint64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        dst[i] = fp16_to_fp32(h);
      }
      return;
    case Type::BF16:
      for (uint64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        dst[i] = bf16_to_fp32(h);
      }
      return;
    case Type::Q4_0: return dequant_q4_0(src, dst, nb);
    case Type::Q4_1: return dequant_q4_1(src, dst, nb);
    case Type::Q5_0: return dequant_q5_0(src, dst, nb);
    case Type::Q5_1: return dequant_q5_1(src, dst, nb);
    case Type::Q8_0: return dequant_q8_0(src, dst, nb);
    case Type::Q8_1: return dequant_q8_1(src, dst, nb);
    case Type::Q2_K: return dequant_q2_k(src, dst, nb);
    case Type::Q3_K: return dequant_q3_k(src, dst, nb);
    case Type::Q4_K: return dequant_q4_k(src, dst, nb);
    case Type::Q5_K: return dequant_q5_k(src, dst, nb);
    case Type::Q6_K: return dequant_q6_k(src, dst, nb);
    case Type::Q8_K: return dequant_q8_k(src, dst, nb);
    case Type::IQ4_NL: return dequant_iq4_nl(src, dst, nb);
    case Type::IQ4_XS: return dequant_iq4_xs(src, dst, nb);
    default:
      if (detail::dequantize_iq(t, src, dst, nb)) return;
      break;
  }
  fail(MOEVK_ERROR_UNSUPPORTED, std::string("dequantize: no CPU conversion for type ") + info.name);
}

}  // namespace moevk::quant
