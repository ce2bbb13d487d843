// Hand-built blocks decode to values computed here from the published layout (ggml-common.h):
// each test packs chosen quants and scales by the spec and states the expected value of every
// element independently of the decoder under test.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "quant/types.hpp"

namespace moevk::quant {
namespace {

// fp16 constants by hand: sign | exponent(5, bias 15) | mantissa(10).
constexpr uint16_t kHalf_1 = 0x3C00, kHalf_0_5 = 0x3800, kHalf_0_25 = 0x3400, kHalf_0_125 = 0x3000,
                   kHalf_minus_1 = 0xBC00, kHalf_2 = 0x4000;

void put16(std::vector<uint8_t>& block, size_t at, uint16_t v) {
  block[at] = uint8_t(v & 0xff);
  block[at + 1] = uint8_t(v >> 8);
}

std::vector<float> decode(Type t, const std::vector<uint8_t>& block) {
  const TypeInfo& info = type_info(t);
  EXPECT_EQ(block.size(), info.type_size);
  std::vector<float> out(info.block_size, std::nanf(""));
  dequantize(t, block.data(), out.data(), info.block_size);
  return out;
}

TEST(QuantBlocks, Q4_0) {
  std::vector<uint8_t> b(18);
  put16(b, 0, kHalf_0_5);
  for (int j = 0; j < 16; ++j) b[2 + j] = uint8_t((j & 15) | ((15 - j) << 4));
  const auto y = decode(Type::Q4_0, b);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], (j - 8) * 0.5f) << j;             // low nibbles: elements 0..15
    EXPECT_EQ(y[j + 16], (7 - j) * 0.5f) << j;        // high nibbles: elements 16..31
  }
}

TEST(QuantBlocks, Q4_1) {
  std::vector<uint8_t> b(20);
  put16(b, 0, kHalf_0_25);
  put16(b, 2, kHalf_minus_1);
  for (int j = 0; j < 16; ++j) b[4 + j] = uint8_t(j | ((j ^ 5) << 4));
  const auto y = decode(Type::Q4_1, b);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], j * 0.25f - 1.0f);
    EXPECT_EQ(y[j + 16], (j ^ 5) * 0.25f - 1.0f);
  }
}

// Q5_0 / Q5_1: qs as Q4, the fifth bit of element i is bit i of the little-endian word qh.
std::vector<int> q5_values() {
  std::vector<int> q(32);
  for (int i = 0; i < 32; ++i) q[i] = (i * 11 + 3) % 32;
  return q;
}
void pack_q5(std::vector<uint8_t>& b, size_t qh_at, size_t qs_at, const std::vector<int>& q) {
  uint32_t qh = 0;
  for (int i = 0; i < 32; ++i) qh |= uint32_t(q[i] >> 4) << i;
  b[qh_at + 0] = uint8_t(qh);
  b[qh_at + 1] = uint8_t(qh >> 8);
  b[qh_at + 2] = uint8_t(qh >> 16);
  b[qh_at + 3] = uint8_t(qh >> 24);
  for (int j = 0; j < 16; ++j) b[qs_at + j] = uint8_t((q[j] & 15) | ((q[j + 16] & 15) << 4));
}

TEST(QuantBlocks, Q5_0) {
  std::vector<uint8_t> b(22);
  put16(b, 0, kHalf_0_5);
  const auto q = q5_values();
  pack_q5(b, 2, 6, q);
  const auto y = decode(Type::Q5_0, b);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(y[i], (q[i] - 16) * 0.5f) << i;
}

TEST(QuantBlocks, Q5_1) {
  std::vector<uint8_t> b(24);
  put16(b, 0, kHalf_0_125);
  put16(b, 2, kHalf_2);
  const auto q = q5_values();
  pack_q5(b, 4, 8, q);
  const auto y = decode(Type::Q5_1, b);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(y[i], q[i] * 0.125f + 2.0f) << i;
}

TEST(QuantBlocks, Q8_0) {
  std::vector<uint8_t> b(34);
  put16(b, 0, kHalf_0_125);
  for (int i = 0; i < 32; ++i) b[2 + i] = uint8_t(int8_t(i * 8 - 128));
  const auto y = decode(Type::Q8_0, b);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(y[i], (i * 8 - 128) * 0.125f);
}

TEST(QuantBlocks, IQ4_NL) {
  const int levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  std::vector<uint8_t> b(18);
  put16(b, 0, kHalf_2);
  for (int j = 0; j < 16; ++j) b[2 + j] = uint8_t(j | ((15 - j) << 4));
  const auto y = decode(Type::IQ4_NL, b);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 2.0f * levels[j]);
    EXPECT_EQ(y[j + 16], 2.0f * levels[15 - j]);
  }
}

TEST(QuantBlocks, IQ4_XS) {
  // { f16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128] }: sub-block s (32 elements) has the 6-bit
  // scale ls (stored + 32): low 4 bits in scales_l[s / 2] (high nibble for odd s), high 2 bits
  // at bit 2s of scales_h; element 32s + j (j < 16) is codebook[low nibble of qs[16s + j]],
  // 32s + 16 + j the high nibble; x = d * (ls - 32) * codebook[q].
  const int levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  std::vector<uint8_t> b(136);
  put16(b, 0, kHalf_0_25);
  const int ls[8] = {0, 63, 31, 32, 47, 16, 33, 5};
  uint16_t scales_h = 0;
  for (int s = 0; s < 8; ++s) {
    b[4 + s / 2] |= uint8_t((ls[s] & 15) << (4 * (s % 2)));
    scales_h |= uint16_t((ls[s] >> 4) << (2 * s));
  }
  put16(b, 2, scales_h);
  std::vector<int> q(256);
  for (int e = 0; e < 256; ++e) q[e] = (e * 7 + e / 16) % 16;
  for (int s = 0; s < 8; ++s)
    for (int j = 0; j < 16; ++j) b[8 + 16 * s + j] = uint8_t(q[32 * s + j] | (q[32 * s + 16 + j] << 4));
  const auto y = decode(Type::IQ4_XS, b);
  for (int e = 0; e < 256; ++e) EXPECT_EQ(y[e], 0.25f * (ls[e / 32] - 32) * levels[q[e]]) << e;
}

// Q4_K / Q5_K 12-byte scales: sub-block j < 4: scale = byte j & 63, min = byte j+4 & 63;
// j >= 4: scale = (byte j+4 & 15) | (byte j-4 >> 6) << 4, min = (byte j+4 >> 4) | (byte j >> 6) << 4.
void pack_k4_scales(uint8_t* s, const int* scale, const int* min) {
  std::memset(s, 0, 12);
  for (int j = 0; j < 4; ++j) {
    s[j] = uint8_t(scale[j] | ((scale[j + 4] >> 4) << 6));
    s[j + 4] = uint8_t(min[j] | ((min[j + 4] >> 4) << 6));
    s[j + 8] = uint8_t((scale[j + 4] & 15) | ((min[j + 4] & 15) << 4));
  }
}
const int kScales[8] = {1, 63, 17, 32, 5, 48, 60, 33};
const int kMins[8] = {0, 2, 63, 31, 16, 47, 9, 62};

TEST(QuantBlocks, Q4_K) {
  std::vector<uint8_t> b(144);
  put16(b, 0, kHalf_0_5);   // d
  put16(b, 2, kHalf_0_25);  // dmin
  pack_k4_scales(&b[4], kScales, kMins);
  // Element e: chunk c = e / 64 uses qs[32c..32c+31]; the first 32 in low nibbles (sub-block 2c),
  // the next 32 in high nibbles (sub-block 2c+1).
  std::vector<int> q(256);
  for (int e = 0; e < 256; ++e) q[e] = (e * 7 + e / 32) % 16;
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) b[16 + 32 * c + l] = uint8_t(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
  const auto y = decode(Type::Q4_K, b);
  for (int e = 0; e < 256; ++e) {
    const int sub = e / 32;
    EXPECT_EQ(y[e], 0.5f * kScales[sub] * q[e] - 0.25f * kMins[sub]) << e;
  }
}

TEST(QuantBlocks, Q5_K) {
  std::vector<uint8_t> b(176);
  put16(b, 0, kHalf_0_25);
  put16(b, 2, kHalf_0_5);
  pack_k4_scales(&b[4], kScales, kMins);
  // qh[l] bit (2c) is the fifth bit of element 64c + l, bit (2c+1) of element 64c + 32 + l.
  std::vector<int> q(256);
  for (int e = 0; e < 256; ++e) q[e] = (e * 13 + e / 64) % 32;
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      b[48 + 32 * c + l] = uint8_t((q[64 * c + l] & 15) | ((q[64 * c + 32 + l] & 15) << 4));
      b[16 + l] |= uint8_t(((q[64 * c + l] >> 4) << (2 * c)) | ((q[64 * c + 32 + l] >> 4) << (2 * c + 1)));
    }
  }
  const auto y = decode(Type::Q5_K, b);
  for (int e = 0; e < 256; ++e) {
    const int sub = e / 32;
    EXPECT_EQ(y[e], 0.25f * kScales[sub] * q[e] - 0.5f * kMins[sub]) << e;
  }
}

TEST(QuantBlocks, Q6_K) {
  std::vector<uint8_t> b(210);  // ql[128] qh[64] scales[16] d
  put16(b, 208, kHalf_0_125);
  int8_t scales[16];
  for (int s = 0; s < 16; ++s) scales[s] = int8_t(s * 17 - 128 + 3);
  std::memcpy(&b[192], scales, 16);
  // Element e = 128h + 32k + l: low 4 bits in ql[64h + 32(k&1) + l] (low nibble for k < 2),
  // high 2 bits in qh[32h + l] bits 2k..2k+1, scale scales[8h + 2k + l/16].
  std::vector<int> q(256);
  for (int e = 0; e < 256; ++e) q[e] = (e * 29 + 5) % 64;
  for (int h = 0; h < 2; ++h)
    for (int k = 0; k < 4; ++k)
      for (int l = 0; l < 32; ++l) {
        const int v = q[128 * h + 32 * k + l];
        b[64 * h + 32 * (k & 1) + l] |= uint8_t((v & 15) << (k < 2 ? 0 : 4));
        b[128 + 32 * h + l] |= uint8_t((v >> 4) << (2 * k));
      }
  const auto y = decode(Type::Q6_K, b);
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, k = (e % 128) / 32, l = e % 32;
    EXPECT_EQ(y[e], 0.125f * scales[8 * h + 2 * k + l / 16] * (q[e] - 32)) << e;
  }
}

TEST(QuantBlocks, Q2_K) {
  std::vector<uint8_t> b(84);  // scales[16] qs[64] d dmin
  put16(b, 80, kHalf_0_5);
  put16(b, 82, kHalf_0_25);
  for (int s = 0; s < 16; ++s) b[s] = uint8_t(((s * 5) % 16) | (((s * 3) % 16) << 4));
  // Element e = 128h + 32j + 16g + l: 2 bits at shift 2j of qs[32h + 16g + l], sub-block 8h+2j+g
  // with scale (byte & 15) and min (byte >> 4).
  std::vector<int> q(256);
  for (int e = 0; e < 256; ++e) q[e] = (e * 3 + e / 16) % 4;
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, j = (e % 128) / 32, g = (e % 32) / 16, l = e % 16;
    b[16 + 32 * h + 16 * g + l] |= uint8_t(q[e] << (2 * j));
  }
  const auto y = decode(Type::Q2_K, b);
  for (int e = 0; e < 256; ++e) {
    const int sub = e / 16;
    EXPECT_EQ(y[e], 0.5f * ((sub * 5) % 16) * q[e] - 0.25f * ((sub * 3) % 16)) << e;
  }
}

TEST(QuantBlocks, Q3_K) {
  std::vector<uint8_t> b(110);  // hmask[32] qs[64] scales[12] d
  put16(b, 108, kHalf_0_5);
  // 16 six-bit scales (stored + 32): low 4 bits of scale s in byte s % 8 (low nibble for s < 8),
  // high 2 bits in byte 8 + s % 4 at shift 2 * (s / 4).
  int scale[16];
  for (int s = 0; s < 16; ++s) {
    scale[s] = (s * 9 + 4) % 64;
    b[96 + s % 8] |= uint8_t((scale[s] & 15) << (s < 8 ? 0 : 4));
    b[96 + 8 + s % 4] |= uint8_t((scale[s] >> 4) << (2 * (s / 4)));
  }
  // Element e = 128h + 32j + 16g + l: low 2 bits as Q2_K, high bit in hmask[16g + l] bit 4h + j;
  // value = low - (high ? 0 : 4).
  std::vector<int> q(256);
  for (int e = 0; e < 256; ++e) q[e] = (e * 5 + e / 8) % 8;
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, j = (e % 128) / 32, g = (e % 32) / 16, l = e % 16;
    b[32 + 32 * h + 16 * g + l] |= uint8_t((q[e] & 3) << (2 * j));
    b[16 * g + l] |= uint8_t((q[e] >> 2) << (4 * h + j));
  }
  const auto y = decode(Type::Q3_K, b);
  for (int e = 0; e < 256; ++e) {
    const int value = (q[e] & 3) - ((q[e] >> 2) ? 0 : 4);
    EXPECT_EQ(y[e], 0.5f * (scale[e / 16] - 32) * value) << e;
  }
}

TEST(QuantBlocks, Q8_K) {
  std::vector<uint8_t> b(292);
  const float d = -0.375f;
  std::memcpy(&b[0], &d, 4);
  for (int i = 0; i < 256; ++i) b[4 + i] = uint8_t(int8_t(i - 128));
  const auto y = decode(Type::Q8_K, b);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(y[i], d * (i - 128));
}

TEST(QuantBlocks, FloatFormats) {
  const uint8_t f16[8] = {0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00, 0x00, 0x7C};  // 1, -2, 2^-24, inf
  float y[4];
  dequantize(Type::F16, f16, y, 4);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], -2.0f);
  EXPECT_EQ(y[2], std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isinf(y[3]) && y[3] > 0);
  const uint8_t bf16[4] = {0x80, 0x3F, 0x40, 0xC0};  // 1, -3
  dequantize(Type::BF16, bf16, y, 2);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], -3.0f);
}

}  // namespace
}  // namespace moevk::quant
