// Every block format moevk decodes on the CPU against ggml's own decoder: random blocks (every
// byte random, so every codebook index, sign pattern, scale and f16 value occurs, NaN and inf
// included) through quant::dequantize and through dequantize_row_<type> of llama.cpp's
// libggml-base.so (node-llama-cpp's prebuilt in tests/data/npm, installed by
// scripts/install-deps.sh), loaded at run time. The results must be bit-identical: both follow the
// same arithmetic in the same order. The GPU decoders are tested against quant::dequantize
// (tests/ops), so this ties them to ggml too; for the codebook types (IQ1..IQ3) it also checks
// runtime/quant/iq_grids.inc, whose values scripts/gen-iq-grids.sh took from the same library.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "quant/types.hpp"

namespace moevk::quant {
namespace {

const char* kLibrary = MOEVK_TEST_DATA_DIR "/npm/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so";

using RowDecoder = void (*)(const void* blocks, float* y, int64_t n);

class GgmlDequant : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(kLibrary)) {
      error_ = "the file is missing";
      return;
    }
    handle_ = dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
    if (!handle_) error_ = dlerror();
  }
  static void TearDownTestSuite() {
    if (handle_) dlclose(handle_);
    handle_ = nullptr;
  }
  static RowDecoder decoder(const std::string& symbol) {
    return handle_ ? reinterpret_cast<RowDecoder>(dlsym(handle_, symbol.c_str())) : nullptr;
  }
  static void* handle_;
  static std::string error_;
};
void* GgmlDequant::handle_ = nullptr;
std::string GgmlDequant::error_;

// Types with a CPU decoder here and their ggml decoder's name.
struct Case {
  Type type;
  const char* symbol;
};
const Case kCases[] = {
    {Type::F16, "ggml_fp16_to_fp32_row"},    {Type::BF16, "ggml_bf16_to_fp32_row"},
    {Type::Q4_0, "dequantize_row_q4_0"},     {Type::Q4_1, "dequantize_row_q4_1"},
    {Type::Q5_0, "dequantize_row_q5_0"},     {Type::Q5_1, "dequantize_row_q5_1"},
    {Type::Q8_0, "dequantize_row_q8_0"},     {Type::Q2_K, "dequantize_row_q2_K"},
    {Type::Q3_K, "dequantize_row_q3_K"},     {Type::Q4_K, "dequantize_row_q4_K"},
    {Type::Q5_K, "dequantize_row_q5_K"},     {Type::Q6_K, "dequantize_row_q6_K"},
    {Type::Q8_K, "dequantize_row_q8_K"},     {Type::IQ4_NL, "dequantize_row_iq4_nl"},
    {Type::IQ4_XS, "dequantize_row_iq4_xs"}, {Type::IQ2_XXS, "dequantize_row_iq2_xxs"},
    {Type::IQ2_XS, "dequantize_row_iq2_xs"}, {Type::IQ2_S, "dequantize_row_iq2_s"},
    {Type::IQ3_XXS, "dequantize_row_iq3_xxs"}, {Type::IQ3_S, "dequantize_row_iq3_s"},
    {Type::IQ1_S, "dequantize_row_iq1_s"},   {Type::IQ1_M, "dequantize_row_iq1_m"},
};

TEST_F(GgmlDequant, EveryCpuDecoderMatchesGgmlBitForBit) {
  ASSERT_NE(handle_, nullptr) << kLibrary << " could not be loaded (" << error_
                              << "; run scripts/install-deps.sh, or cd tests/data/npm && npm ci)";
  std::mt19937 rng(20261203);
  for (const Case& c : kCases) {
    SCOPED_TRACE(type_info(c.type).name);
    const RowDecoder ggml = decoder(c.symbol);
    ASSERT_NE(ggml, nullptr) << c.symbol << " is not in " << kLibrary;
    const TypeInfo& info = type_info(c.type);
    ASSERT_TRUE(info.can_dequantize);
    // 2048 blocks: 8 to 32 index fields a block, so each of IQ1's 2048 codebook entries is drawn
    // ~32 times (IQ2_XXS's 256 ~256 times): a wrong entry cannot hide.
    const uint64_t blocks = 2048, n = blocks * info.block_size;
    std::vector<uint8_t> data(blocks * info.type_size);
    for (uint8_t& b : data) b = uint8_t(rng());
    std::vector<float> ours(n, std::nanf("1")), theirs(n, std::nanf("2"));
    dequantize(c.type, data.data(), ours.data(), n);
    ggml(data.data(), theirs.data(), int64_t(n));
    uint64_t mismatches = 0, finite = 0;
    for (uint64_t i = 0; i < n; ++i) {
      const bool both_nan = std::isnan(ours[i]) && std::isnan(theirs[i]);
      if (!both_nan && std::memcmp(&ours[i], &theirs[i], 4) != 0) {
        if (mismatches++ < 5)
          ADD_FAILURE() << "element " << i << " (block " << i / info.block_size << "): moevk " << ours[i]
                        << ", ggml " << theirs[i];
      }
      finite += std::isfinite(theirs[i]);
    }
    EXPECT_EQ(mismatches, 0u) << "of " << n;
    // Random f16 scales are NaN or inf 1/32 of the time: most values must still be ordinary numbers,
    // or the comparison would say little.
    EXPECT_GT(finite, n * 9 / 10);
  }
}

}  // namespace
}  // namespace moevk::quant
