// Byte layouts of the ggml block formats (ggml-common.h). Every field is a byte array or a
// little-endian 16-bit word, so the structs have no padding and sizeof() equals the on-disk size.
#pragma once
#include <cstdint>

namespace moevk::quant {

inline constexpr int QK4_0 = 32, QK4_1 = 32, QK5_0 = 32, QK5_1 = 32, QK8_0 = 32, QK8_1 = 32;
inline constexpr int QK_K = 256;  // super-block size of the k-quants
inline constexpr int K_SCALE_SIZE = 12;
inline constexpr int QK4_NL = 32;

struct BlockQ4_0 { uint16_t d; uint8_t qs[QK4_0 / 2]; };
struct BlockQ4_1 { uint16_t d, m; uint8_t qs[QK4_1 / 2]; };
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; };
struct BlockQ5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; };
struct BlockQ8_0 { uint16_t d; int8_t qs[QK8_0]; };
struct BlockQ8_1 { uint16_t d, s; int8_t qs[QK8_1]; };
struct BlockQ2_K { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; uint16_t d, dmin; };
struct BlockQ3_K { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; uint16_t d; };
struct BlockQ4_K { uint16_t d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; };
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qh[QK_K / 8];
  uint8_t qs[QK_K / 2];
};
struct BlockQ6_K { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; };
// Q8_K's d is a float: the struct is 4-byte aligned but still has no padding (4+256+32).
struct BlockQ8_K { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; };
struct BlockIQ4_NL { uint16_t d; uint8_t qs[QK4_NL / 2]; };
// Eight 32-element sub-blocks of IQ4_NL codes with 6-bit scales: low 4 bits in scales_l (two per
// byte), high 2 bits in scales_h (two per sub-block).
struct BlockIQ4_XS { uint16_t d, scales_h; uint8_t scales_l[QK_K / 64]; uint8_t qs[QK_K / 2]; };

// The IQ1/IQ2/IQ3 super-blocks: indices into the codebooks of quant/iq_grids.hpp.
// IQ2_XXS: per 32 elements two words of qs: 4 grid indices (a byte each, 8 elements each), then
// 4 x 7 sign bits and a 4-bit scale in the top nibble.
struct BlockIQ2_XXS { uint16_t d; uint16_t qs[QK_K / 8]; };
// IQ2_XS: per 8 elements a 9-bit grid index and a 7-bit sign index; a 4-bit scale per 16.
struct BlockIQ2_XS { uint16_t d; uint16_t qs[QK_K / 8]; uint8_t scales[QK_K / 32]; };
// IQ2_S: qs holds 32 index bytes then 32 sign bytes; qh 2 more index bits per 8 elements.
struct BlockIQ2_S { uint16_t d; uint8_t qs[QK_K / 4]; uint8_t qh[QK_K / 32]; uint8_t scales[QK_K / 32]; };
// IQ3_XXS: 64 index bytes (4 elements each), then per 32 elements a word of signs and scale.
struct BlockIQ3_XXS { uint16_t d; uint8_t qs[3 * QK_K / 8]; };
// IQ3_S: 9-bit indices (qs + a qh bit), explicit sign bits, a 4-bit scale per 32 elements.
struct BlockIQ3_S {
  uint16_t d;
  uint8_t qs[QK_K / 4];
  uint8_t qh[QK_K / 32];
  uint8_t signs[QK_K / 8];
  uint8_t scales[QK_K / 64];
};
// IQ1_S: 11-bit indices (qs + 3 bits of qh each); qh's top 4 bits: scale, delta sign per 32.
struct BlockIQ1_S { uint16_t d; uint8_t qs[QK_K / 8]; uint16_t qh[QK_K / 32]; };
// IQ1_M: no d field: its f16 bits are the top nibbles of the four scale words.
struct BlockIQ1_M { uint8_t qs[QK_K / 8]; uint8_t qh[QK_K / 16]; uint8_t scales[QK_K / 32]; };

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22 && sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);
static_assert(sizeof(BlockIQ4_NL) == 18 && sizeof(BlockIQ4_XS) == 136);
static_assert(sizeof(BlockIQ2_XXS) == 66 && sizeof(BlockIQ2_XS) == 74 && sizeof(BlockIQ2_S) == 82);
static_assert(sizeof(BlockIQ3_XXS) == 98 && sizeof(BlockIQ3_S) == 110);
static_assert(sizeof(BlockIQ1_S) == 50 && sizeof(BlockIQ1_M) == 56);

// The IQ4_NL codebook (non-linear 4-bit levels).
inline constexpr int8_t kIQ4NLValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

// Q4_K / Q5_K pack 8 six-bit scales and 8 six-bit mins into 12 bytes: sub-blocks 0..3 sit in the
// low 6 bits of bytes 0..3 (scales) and 4..7 (mins); sub-blocks 4..7 keep their low 4 bits in
// bytes 8..11 and their top 2 bits in the high 2 bits of bytes 0..7.
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t& scale, uint8_t& min) {
  if (j < 4) {
    scale = q[j] & 63;
    min = q[j + 4] & 63;
  } else {
    scale = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    min = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

}  // namespace moevk::quant
