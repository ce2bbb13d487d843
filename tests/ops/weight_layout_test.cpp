// ops::to_device_layout: the byte order the kernels read (quant.glsl's QUANT_SPLIT_BODY) against
// GGUF's blocks. The GPU suites (matmul, embedding, router, experts) upload through it and
// compare with the CPU dequantization of the GGUF bytes; this pins the order itself, byte by byte.
#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <vector>

#include "ops/weight_binding.hpp"
#include "quant/types.hpp"

using namespace moevk;
using quant::Type;

namespace {

std::vector<uint8_t> counting_bytes(size_t n) {
  std::vector<uint8_t> v(n);
  std::iota(v.begin(), v.end(), uint8_t(1));
  return v;
}

struct Split {
  Type type;
  uint32_t block_bytes, d_at;  // where the f16 d sits in the GGUF block
};

}  // namespace

// Each row: the blocks' bodies, then their d, rotated right so that the bodies start 8-aligned in
// the buffer (the d that pass the row's end wrap round to its start), where the row's d can
// fill the bytes up to the next multiple of 8. Rows of 5 blocks (an odd count, so they start at
// every even offset), and of 1 and 2 blocks (too few d to fill 6 or 4 bytes: not rotated), from
// buffer offsets 0 and 36 (not 8-aligned).
TEST(WeightLayout, SplitTypesHoldTheirBlocksBodiesThenTheirScalesRotatedToAlignTheBodies) {
  for (const Split& c : {Split{Type::Q4_0, 18, 0}, Split{Type::IQ4_NL, 18, 0}, Split{Type::Q8_0, 34, 0},
                         Split{Type::Q6_K, 210, 208}}) {
    ASSERT_TRUE(ops::weight_layout_differs(c.type));
    for (const uint32_t blocks : {5u, 1u, 2u}) {
      for (const uint64_t at : {uint64_t(0), uint64_t(36)}) {
        SCOPED_TRACE(std::string(quant::type_info(c.type).name) + " blocks=" + std::to_string(blocks) +
                     " at=" + std::to_string(at));
        const uint32_t rows = 4, qk = quant::type_info(c.type).block_size, cols = blocks * qk;
        const uint64_t row = quant::row_bytes(c.type, cols), body = c.block_bytes - 2;
        ASSERT_EQ(row, uint64_t(c.block_bytes) * blocks);
        const auto src = counting_bytes(row * rows);
        std::vector<uint8_t> dst(src.size(), 0xEE);
        ops::to_device_layout(c.type, cols, src.data(), dst.data(), rows, at);
        int rotated = 0;
        for (uint32_t r = 0; r < rows; ++r) {
          const uint64_t start = at + r * row, gap = (8 - start % 8) % 8;
          const uint64_t shift = ops::split_row_shift(start, blocks);
          EXPECT_EQ(shift, gap <= 2 * blocks ? gap : 0) << "row " << r;
          if (shift == gap) {
            EXPECT_EQ((start + shift) % 8, 0u) << "row " << r << ": its bodies start 8-aligned";
          }
          rotated += shift > 0;
          const uint8_t* in = src.data() + r * row;
          const uint8_t* out = dst.data() + r * row;
          for (uint32_t b = 0; b < blocks; ++b) {
            SCOPED_TRACE("row " + std::to_string(r) + " block " + std::to_string(b));
            const uint8_t* block = in + uint64_t(c.block_bytes) * b;
            for (uint32_t i = 0; i < body; ++i) {
              const uint32_t from = i < c.d_at ? i : i + 2;  // the body skips d's two bytes
              ASSERT_EQ(out[shift + body * b + i], block[from]) << "body byte " << i;
            }
            const uint64_t d_at = (shift + body * blocks + 2 * b) % row;
            EXPECT_EQ(out[d_at], block[c.d_at]);
            EXPECT_EQ(out[d_at + 1], block[c.d_at + 1]);
          }
        }
        // Rows of 5 blocks start at 4 different offsets mod 8: three rotate.
        if (blocks == 5) {
          EXPECT_EQ(rotated, 3);
        }
      }
    }
  }
}

TEST(WeightLayout, OtherTypesAreUploadedAsInTheFile) {
  for (Type t : {Type::F32, Type::F16, Type::BF16, Type::Q4_1, Type::Q5_0, Type::Q2_K, Type::Q4_K, Type::Q5_K,
                 Type::IQ4_XS, Type::IQ2_XXS}) {
    SCOPED_TRACE(quant::type_info(t).name);
    EXPECT_FALSE(ops::weight_layout_differs(t));
    const uint32_t cols = 512;
    const auto src = counting_bytes(quant::row_bytes(t, cols) * 2);
    std::vector<uint8_t> dst(src.size(), 0xEE);
    ops::to_device_layout(t, cols, src.data(), dst.data(), 2, 36);
    EXPECT_EQ(dst, src);
  }
}
