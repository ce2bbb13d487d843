// CPU reference dequantization of the codebook formats IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S,
// IQ3_XXS and IQ3_S, in ggml's element order (dequantize_row_iq*); checked against ggml's own
// decoders on random blocks by tests/quant/ggml_dequant_test.cpp.
#include <cstring>

#include "quant/blocks.hpp"
#include "quant/half.hpp"
#include "quant/iq_grids.hpp"
#include "quant/quantize_internal.hpp"

namespace moevk::quant::detail {
namespace {

float sign_of(uint32_t signs, int j) { return (signs >> j) & 1u ? -1.0f : 1.0f; }

uint32_t load_u32(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

void dequant_iq2_xxs(const BlockIQ2_XXS& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int s = 0; s < QK_K / 32; ++s) {
    const uint32_t idx = uint32_t(b.qs[4 * s]) | uint32_t(b.qs[4 * s + 1]) << 16;
    const uint32_t aux = uint32_t(b.qs[4 * s + 2]) | uint32_t(b.qs[4 * s + 3]) << 16;
    const float db = d * (0.5f + float(aux >> 28)) * 0.25f;
    for (int l = 0; l < 4; ++l, y += 8) {
      const uint64_t g = kIQ2XXSGrid[(idx >> (8 * l)) & 0xFF];
      const uint32_t signs = iq_signs8(aux >> (7 * l));
      for (int j = 0; j < 8; ++j) y[j] = db * float(grid_level(g, j)) * sign_of(signs, j);
    }
  }
}

void dequant_iq2_xs(const BlockIQ2_XS& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int s = 0; s < QK_K / 32; ++s) {
    const float db[2] = {d * (0.5f + float(b.scales[s] & 0xF)) * 0.25f,
                         d * (0.5f + float(b.scales[s] >> 4)) * 0.25f};
    for (int l = 0; l < 4; ++l, y += 8) {
      const uint16_t q = b.qs[4 * s + l];
      const uint64_t g = kIQ2XSGrid[q & 511];
      const uint32_t signs = iq_signs8(q >> 9);
      for (int j = 0; j < 8; ++j) y[j] = db[l / 2] * float(grid_level(g, j)) * sign_of(signs, j);
    }
  }
}

void dequant_iq2_s(const BlockIQ2_S& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  const uint8_t* signs = b.qs + QK_K / 8;
  for (int s = 0; s < QK_K / 32; ++s) {
    const float db[2] = {d * (0.5f + float(b.scales[s] & 0xF)) * 0.25f,
                         d * (0.5f + float(b.scales[s] >> 4)) * 0.25f};
    for (int l = 0; l < 4; ++l, y += 8) {
      const uint32_t index = b.qs[4 * s + l] | ((uint32_t(b.qh[s]) << (8 - 2 * l)) & 0x300u);
      const uint64_t g = kIQ2SGrid[index];
      for (int j = 0; j < 8; ++j) y[j] = db[l / 2] * float(grid_level(g, j)) * sign_of(signs[4 * s + l], j);
    }
  }
}

void dequant_iq3_xxs(const BlockIQ3_XXS& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  const uint8_t* scales_and_signs = b.qs + QK_K / 4;
  for (int s = 0; s < QK_K / 32; ++s) {
    const uint32_t aux = load_u32(scales_and_signs + 4 * s);
    const float db = d * (0.5f + float(aux >> 28)) * 0.5f;
    for (int l = 0; l < 4; ++l, y += 8) {
      const uint32_t signs = iq_signs8(aux >> (7 * l));
      const uint32_t g1 = kIQ3XXSGrid[b.qs[8 * s + 2 * l]], g2 = kIQ3XXSGrid[b.qs[8 * s + 2 * l + 1]];
      for (int j = 0; j < 4; ++j) {
        y[j] = db * float((g1 >> (8 * j)) & 0xFF) * sign_of(signs, j);
        y[j + 4] = db * float((g2 >> (8 * j)) & 0xFF) * sign_of(signs, j + 4);
      }
    }
  }
}

void dequant_iq3_s(const BlockIQ3_S& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int s = 0; s < QK_K / 32; ++s) {
    const float db = d * float(1 + 2 * ((b.scales[s / 2] >> (4 * (s % 2))) & 0xF));
    for (int l = 0; l < 4; ++l, y += 8) {
      const uint32_t qh = b.qh[s];
      const uint32_t i1 = b.qs[8 * s + 2 * l] | ((qh << (8 - 2 * l)) & 256u);
      const uint32_t i2 = b.qs[8 * s + 2 * l + 1] | ((qh << (7 - 2 * l)) & 256u);
      const uint32_t g1 = kIQ3SGrid[i1], g2 = kIQ3SGrid[i2];
      const uint32_t signs = b.signs[4 * s + l];
      for (int j = 0; j < 4; ++j) {
        y[j] = db * float((g1 >> (8 * j)) & 0xFF) * sign_of(signs, j);
        y[j + 4] = db * float((g2 >> (8 * j)) & 0xFF) * sign_of(signs, j + 4);
      }
    }
  }
}

void dequant_iq1_s(const BlockIQ1_S& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int s = 0; s < QK_K / 32; ++s) {
    const uint32_t qh = b.qh[s];
    const float dl = d * float(2 * ((qh >> 12) & 7) + 1);
    const float delta = qh & 0x8000u ? -kIQ1Delta : kIQ1Delta;
    for (int l = 0; l < 4; ++l, y += 8) {
      const uint64_t g = kIQ1SGrid[b.qs[4 * s + l] | (((qh >> (3 * l)) & 7u) << 8)];
      for (int j = 0; j < 8; ++j) y[j] = dl * (float(grid_level_signed(g, j)) + delta);
    }
  }
}

float iq1_m_scale(const BlockIQ1_M& b) {
  uint16_t sc[4];
  std::memcpy(sc, b.scales, sizeof sc);
  const uint16_t bits = uint16_t((sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) | ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000));
  return fp16_to_fp32(bits);
}

void dequant_iq1_m(const BlockIQ1_M& b, float* y) {
  uint16_t sc[4];
  std::memcpy(sc, b.scales, sizeof sc);
  const float d = iq1_m_scale(b);
  for (int s = 0; s < QK_K / 32; ++s) {
    // Each 16 elements: a 3-bit scale; each 8: an 11-bit index and the delta's sign.
    const uint32_t scales = sc[s / 2] >> (6 * (s % 2));
    const float dl[2] = {d * float(2 * (scales & 7) + 1), d * float(2 * ((scales >> 3) & 7) + 1)};
    for (int l = 0; l < 4; ++l, y += 8) {
      const uint32_t qh = b.qh[2 * s + l / 2] >> (4 * (l % 2));  // bits 0-2: index, bit 3: delta
      const uint64_t g = kIQ1SGrid[b.qs[4 * s + l] | ((qh & 7u) << 8)];
      const float delta = qh & 8u ? -kIQ1Delta : kIQ1Delta;
      for (int j = 0; j < 8; ++j) y[j] = dl[l / 2] * (float(grid_level_signed(g, j)) + delta);
    }
  }
}

template <typename Block, void (*Decode)(const Block&, float*)>
void rows(const void* src, float* y, uint64_t nb) {
  for (uint64_t i = 0; i < nb; ++i) {
    Block b;
    std::memcpy(&b, static_cast<const uint8_t*>(src) + i * sizeof(Block), sizeof b);
    Decode(b, y + i * QK_K);
  }
}

}  // namespace

bool dequantize_iq(Type t, const void* src, float* y, uint64_t nb) {
  switch (t) {
    case Type::IQ2_XXS: rows<BlockIQ2_XXS, dequant_iq2_xxs>(src, y, nb); return true;
    case Type::IQ2_XS: rows<BlockIQ2_XS, dequant_iq2_xs>(src, y, nb); return true;
    case Type::IQ2_S: rows<BlockIQ2_S, dequant_iq2_s>(src, y, nb); return true;
    case Type::IQ3_XXS: rows<BlockIQ3_XXS, dequant_iq3_xxs>(src, y, nb); return true;
    case Type::IQ3_S: rows<BlockIQ3_S, dequant_iq3_s>(src, y, nb); return true;
    case Type::IQ1_S: rows<BlockIQ1_S, dequant_iq1_s>(src, y, nb); return true;
    case Type::IQ1_M: rows<BlockIQ1_M, dequant_iq1_m>(src, y, nb); return true;
    default: return false;
  }
}

}  // namespace moevk::quant::detail
