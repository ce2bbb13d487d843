// Quantize -> dequantize error within each format's bound on random data, the size table, and
// the fp16/bf16 conversions (exhaustive over all 65536 halves, against the compiler's _Float16).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "common/error.hpp"
#include "quant/half.hpp"
#include "quant/quantize_internal.hpp"
#include "quant/types.hpp"

namespace moevk::quant {
namespace {

std::vector<float> random_values(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  // A few outliers per row, as real weights have.
  for (size_t i = 0; i < n; i += 97) x[i] *= 6.0f;
  return x;
}

std::vector<float> round_trip(Type t, const std::vector<float>& x, ScaleSearch search = ScaleSearch::Full) {
  std::vector<uint8_t> packed(row_bytes(t, x.size()) + 1, 0xCD);
  packed.back() = 0x5A;  // canary: quantize must write exactly row_bytes
  quantize(t, x.data(), packed.data(), x.size(), search);
  EXPECT_EQ(packed.back(), 0x5A) << type_info(t).name << " wrote past row_bytes";
  std::vector<float> y(x.size(), std::nanf(""));
  dequantize(t, packed.data(), y.data(), x.size());
  return y;
}

// Per-block maximum error bounds from each format's scale rule (fp16 rounding of the scale adds
// at most 2^-11 relative per quant level).
TEST(QuantRoundTrip, BlockwiseBounds) {
  const size_t n = 32 * 40;
  const auto x = random_values(n, 1);
  struct Case { Type type; double levels_per_amax; double max_error_in_steps; };
  // step = amax / levels_per_amax (symmetric) or (max - min) / levels (asymmetric, below).
  for (const Case& c : {Case{Type::Q8_0, 127, 0.5}, Case{Type::Q4_0, 8, 1.0}, Case{Type::Q5_0, 16, 1.0}}) {
    const auto y = round_trip(c.type, x);
    for (size_t b = 0; b < n / 32; ++b) {
      double amax = 0;
      for (size_t i = 0; i < 32; ++i) amax = std::max(amax, double(std::fabs(x[32 * b + i])));
      const double step = amax / c.levels_per_amax;
      // Q4_0/Q5_0 map the extreme to -8/-16; the opposite extreme clamps one step short.
      const double bound = step * c.max_error_in_steps + amax * (1.0 / 1024) + 1e-7;
      for (size_t i = 0; i < 32; ++i) {
        ASSERT_LE(std::fabs(double(y[32 * b + i]) - x[32 * b + i]), bound)
            << type_info(c.type).name << " block " << b << " element " << i;
      }
    }
  }
  for (auto [type, levels] : {std::pair{Type::Q4_1, 15}, std::pair{Type::Q5_1, 31}}) {
    const auto y = round_trip(type, x);
    for (size_t b = 0; b < n / 32; ++b) {
      double lo = 1e30, hi = -1e30, amax = 0;
      for (size_t i = 0; i < 32; ++i) {
        lo = std::min(lo, double(x[32 * b + i]));
        hi = std::max(hi, double(x[32 * b + i]));
        amax = std::max(amax, double(std::fabs(x[32 * b + i])));
      }
      const double bound = (hi - lo) / levels * 0.5 + amax * (1.0 / 512) + 1e-7;
      for (size_t i = 0; i < 32; ++i) {
        ASSERT_LE(std::fabs(double(y[32 * b + i]) - x[32 * b + i]), bound)
            << type_info(type).name << " block " << b << " element " << i;
      }
    }
  }
}

double relative_rmse(const std::vector<float>& x, const std::vector<float>& y) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err += (double(y[i]) - x[i]) * (double(y[i]) - x[i]);
    ref += double(x[i]) * x[i];
  }
  return std::sqrt(err / ref);
}

// The k-quants search their scales, so the bound is statistical: the RMS error relative to the
// RMS of Gaussian data, against the step size of a 16-level (Q4_K) / 64-level (Q6_K) grid over a
// sub-block's range (about 5 sigma for 32 or 16 values): step/sqrt(12) ~= 0.1 and ~= 0.02.
TEST(QuantRoundTrip, KQuantsRelativeError) {
  const auto x = random_values(256 * 24, 2, 0.02f);
  const double q4k = relative_rmse(x, round_trip(Type::Q4_K, x));
  const double q5k = relative_rmse(x, round_trip(Type::Q5_K, x));
  const double q6k = relative_rmse(x, round_trip(Type::Q6_K, x));
  EXPECT_LT(q4k, 0.10);
  EXPECT_LT(q5k, 0.05);  // 32 levels: half Q4_K's step
  EXPECT_LT(q6k, 0.025);
  EXPECT_LT(q5k, q4k);
  EXPECT_LT(q6k, q5k);
  // IQ4_NL: 16 non-uniform levels over the block's range, a little better than Q4_0.
  EXPECT_LT(relative_rmse(x, round_trip(Type::IQ4_NL, x)), relative_rmse(x, round_trip(Type::Q4_0, x)));
  // Q8_0, for scale: better than both.
  EXPECT_LT(relative_rmse(x, round_trip(Type::Q8_0, x)), q6k);
  // The low-bit super-blocks: Q2_K's 4 levels over a 16-element group's range (~4.5 sigma, step
  // ~1.1 sigma: step / sqrt(12) ~= 0.33), Q3_K's 8 (~0.17), IQ4_XS as IQ4_NL's 16 with 6-bit
  // sub-scales; each between its neighbours. Measured (2026-12-02): 0.367, 0.175, 0.096 (Q4_K
  // 0.084, IQ4_NL 0.095).
  const double q2k = relative_rmse(x, round_trip(Type::Q2_K, x));
  const double q3k = relative_rmse(x, round_trip(Type::Q3_K, x));
  const double iq4xs = relative_rmse(x, round_trip(Type::IQ4_XS, x));
  EXPECT_LT(q2k, 0.40);
  EXPECT_LT(q3k, 0.20);
  EXPECT_LT(q3k, q2k);
  EXPECT_LT(q4k, q3k);
  EXPECT_LT(iq4xs, 0.12);
}

// Without the scale search (make-model's random weights) each sub-block keeps its range's own
// scale: the same grids, so the same statistical bounds as above with a little more error, and
// the search's choices measurably better (it starts from that scale and keeps only
// improvements). Measured (2026-12-03): Q4_K 0.0843 searched / 0.0906 not, Q5_K 0.0428 /
// 0.0445, Q6_K 0.0226 / 0.0231.
TEST(QuantRoundTrip, KQuantsWithoutTheScaleSearch) {
  const auto x = random_values(256 * 24, 2, 0.02f);
  for (auto [type, bound] : {std::pair{Type::Q4_K, 0.10}, std::pair{Type::Q5_K, 0.05}, std::pair{Type::Q6_K, 0.025}}) {
    const double searched = relative_rmse(x, round_trip(type, x, ScaleSearch::Full));
    const double plain = relative_rmse(x, round_trip(type, x, ScaleSearch::MinMax));
    EXPECT_LT(plain, bound) << type_info(type).name;
    EXPECT_LT(searched, plain) << type_info(type).name;
  }
  // The other types have one way to quantize.
  for (Type t : {Type::Q4_0, Type::Q8_0, Type::Q3_K, Type::IQ4_XS}) {
    EXPECT_EQ(round_trip(t, x, ScaleSearch::MinMax), round_trip(t, x, ScaleSearch::Full)) << type_info(t).name;
  }
}

// The codebook formats (quantize_iq.cpp; no importance matrix), 0.02-sigma Gaussian weights with
// outliers: fewer bits, more error, in the order of their bits per weight (IQ3_S 3.44, IQ3_XXS
// 3.06, IQ2_S 2.56, IQ2_XS 2.31, IQ2_XXS 2.06, IQ1_M 1.75, IQ1_S 1.56), and the scale search
// better than its single start. Measured (2026-12-03), searched / not: IQ3_S 0.159 / 0.164,
// IQ3_XXS 0.206 / 0.214, IQ2_S 0.302 / 0.339, IQ2_XS 0.333 / 0.368, IQ2_XXS 0.400 / 0.472, IQ1_M
// 0.467 / 0.550, IQ1_S 0.551 / 0.694 (Q3_K 0.183, Q2_K 0.375). The bounds are those plus ~5%.
TEST(QuantRoundTrip, CodebookTypes) {
  const auto x = random_values(256 * 64, 7, 0.02f);
  struct Case { Type type; double searched, plain; };
  const Case cases[] = {{Type::IQ3_S, 0.17, 0.175},   {Type::IQ3_XXS, 0.22, 0.225}, {Type::IQ2_S, 0.32, 0.36},
                        {Type::IQ2_XS, 0.35, 0.39},   {Type::IQ2_XXS, 0.42, 0.50},  {Type::IQ1_M, 0.49, 0.58},
                        {Type::IQ1_S, 0.58, 0.73}};
  double previous = 0;
  for (const Case& c : cases) {
    const double searched = relative_rmse(x, round_trip(c.type, x));
    const double plain = relative_rmse(x, round_trip(c.type, x, ScaleSearch::MinMax));
    EXPECT_LT(searched, c.searched) << type_info(c.type).name;
    EXPECT_LT(plain, c.plain) << type_info(c.type).name;
    EXPECT_LT(searched, plain) << type_info(c.type).name;
    EXPECT_GT(searched, previous) << type_info(c.type).name << " has fewer bits than the type before it";
    previous = searched;
  }
}

TEST(QuantRoundTrip, CodebookNeighbourListsFindTheNearestEntry) {
  // The quantizer looks a target up in a list of the entries that can be nearest to it (its
  // lattice cell's), not in the whole codebook (2048 entries for IQ1): on random targets over
  // each grid's level range and past its ends (where the lists give way to the full scan), the
  // entry it finds has the exhaustive scan's error.
  struct Range { Type type; float lo, hi; };
  const Range ranges[] = {{Type::IQ2_XXS, 8, 43}, {Type::IQ2_XS, 8, 43}, {Type::IQ2_S, 8, 43},
                          {Type::IQ3_XXS, 4, 62}, {Type::IQ3_S, 1, 15},  {Type::IQ1_S, -1, 1},
                          {Type::IQ1_M, -1.125f, 1.125f}};
  std::mt19937 rng(11);
  for (const Range& r : ranges) {
    const float span = r.hi - r.lo;
    std::uniform_real_distribution<float> u(r.lo - 0.4f * span, r.hi + 0.4f * span);
    int listed_differently = 0;
    for (int n = 0; n < 20000; ++n) {
      float t[8];
      for (float& v : t) v = u(rng);
      const int fast = quant::detail::iq_nearest_entry(r.type, t, false);
      const int full = quant::detail::iq_nearest_entry(r.type, t, true);
      ASSERT_GE(fast, 0) << type_info(r.type).name;
      ASSERT_EQ(quant::detail::iq_entry_error(r.type, fast, t), quant::detail::iq_entry_error(r.type, full, t))
          << type_info(r.type).name << " target " << n;
      listed_differently += fast != full;
    }
    EXPECT_LE(listed_differently, 20) << type_info(r.type).name << ": only exact ties may pick another entry";
  }
  EXPECT_EQ(quant::detail::iq_nearest_entry(Type::Q4_K, nullptr, false), -1);
}

TEST(QuantRoundTrip, ConstantAndZeroBlocks) {
  for (Type t : {Type::Q8_0, Type::Q4_0, Type::Q4_1, Type::Q5_0, Type::Q5_1, Type::Q2_K, Type::Q3_K, Type::Q4_K,
                 Type::Q5_K, Type::Q6_K, Type::IQ4_NL, Type::IQ4_XS, Type::IQ2_XXS, Type::IQ2_XS, Type::IQ2_S,
                 Type::IQ3_XXS, Type::IQ3_S, Type::IQ1_S, Type::IQ1_M}) {
    const std::vector<float> zeros(256, 0.0f);
    for (float v : round_trip(t, zeros)) ASSERT_EQ(v, 0.0f) << type_info(t).name;
    const std::vector<float> constant(256, 0.75f);
    for (float v : round_trip(t, constant)) ASSERT_NEAR(v, 0.75f, 0.75f / 30) << type_info(t).name;
  }
}

TEST(QuantRoundTrip, FloatFormats) {
  const auto x = random_values(1000, 3);
  const auto f16 = round_trip(Type::F16, x);
  const auto bf16 = round_trip(Type::BF16, x);
  const auto f32 = round_trip(Type::F32, x);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_LE(std::fabs(f16[i] - x[i]), std::fabs(x[i]) * (1.0f / 2048) + 3e-8f);
    EXPECT_LE(std::fabs(bf16[i] - x[i]), std::fabs(x[i]) * (1.0f / 256));
    EXPECT_EQ(f32[i], x[i]);
  }
}

// GGUF data may sit at any byte offset (general.alignment 1): results must not depend on it.
TEST(QuantRoundTrip, MisalignedBuffers) {
  const auto x = random_values(512, 5);
  for (Type t : {Type::F16, Type::BF16, Type::Q8_0, Type::Q4_0, Type::Q4_1, Type::Q5_0, Type::Q5_1,
                 Type::Q4_K, Type::Q5_K, Type::Q6_K, Type::IQ4_NL, Type::IQ2_XXS, Type::IQ1_M}) {
    const uint64_t bytes = row_bytes(t, x.size());
    std::vector<uint8_t> aligned(bytes), shifted(bytes + 1);
    quantize(t, x.data(), aligned.data(), x.size());
    quantize(t, x.data(), shifted.data() + 1, x.size());
    ASSERT_TRUE(std::equal(aligned.begin(), aligned.end(), shifted.begin() + 1)) << type_info(t).name;
    std::vector<float> from_aligned(x.size()), from_shifted(x.size());
    dequantize(t, aligned.data(), from_aligned.data(), x.size());
    dequantize(t, shifted.data() + 1, from_shifted.data(), x.size());
    ASSERT_EQ(from_aligned, from_shifted) << type_info(t).name;
  }
}

TEST(QuantTypes, SizesAndRowBytes) {
  struct Row { Type type; const char* name; uint32_t block; uint32_t bytes; };
  const Row table[] = {
      {Type::F32, "f32", 1, 4},        {Type::F16, "f16", 1, 2},       {Type::BF16, "bf16", 1, 2},
      {Type::Q4_0, "q4_0", 32, 18},    {Type::Q4_1, "q4_1", 32, 20},   {Type::Q5_0, "q5_0", 32, 22},
      {Type::Q5_1, "q5_1", 32, 24},    {Type::Q8_0, "q8_0", 32, 34},   {Type::Q8_1, "q8_1", 32, 36},
      {Type::Q2_K, "q2_K", 256, 84},   {Type::Q3_K, "q3_K", 256, 110}, {Type::Q4_K, "q4_K", 256, 144},
      {Type::Q5_K, "q5_K", 256, 176},  {Type::Q6_K, "q6_K", 256, 210}, {Type::Q8_K, "q8_K", 256, 292},
      {Type::IQ4_NL, "iq4_nl", 32, 18},
  };
  for (const Row& r : table) {
    const TypeInfo* info = type_info(uint32_t(r.type));
    ASSERT_NE(info, nullptr) << r.name;
    EXPECT_STREQ(info->name, r.name);
    EXPECT_EQ(info->block_size, r.block);
    EXPECT_EQ(info->type_size, r.bytes);
    EXPECT_EQ(row_bytes(r.type, 4096), 4096 / r.block * r.bytes);
    EXPECT_TRUE(info->can_dequantize) << r.name;
    Type parsed;
    ASSERT_TRUE(parse_type(r.name, parsed));
    EXPECT_EQ(parsed, r.type);
  }
  EXPECT_EQ(row_bytes(Type::Q4_K, 5632), 22u * 144);  // a Mixtral-like ffn width
  // Ids ggml removed (Q4_2, Q4_3, the Q4_0_4_4 / IQ4_NL_4_4 repacks) and ids past its enum.
  for (uint32_t unknown : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 42u, 1000u, 0xffffffffu})
    EXPECT_EQ(type_info(unknown), nullptr) << unknown;
  Type parsed;
  EXPECT_TRUE(parse_type("Q4_K", parsed));
  EXPECT_EQ(parsed, Type::Q4_K);
  EXPECT_TRUE(parse_type("IQ4_NL", parsed));
  EXPECT_FALSE(parse_type("q4_9", parsed));
  for (Type t : {Type::F16, Type::BF16, Type::Q8_0, Type::Q4_0, Type::Q4_1, Type::Q5_0, Type::Q5_1,
                 Type::Q4_K, Type::Q5_K, Type::Q6_K, Type::IQ4_NL}) {
    EXPECT_TRUE(type_info(t).can_quantize) << type_info(t).name;
  }
}

// Every id of ggml's enum ggml_type with the block size and bytes per block of ggml.c's
// type_traits (numbers written out here, not derived from our structs), so that a file of any
// type opens and its tensors are sized exactly as llama.cpp sizes them.
TEST(QuantTypes, EveryGgmlTypeIdIsKnownWithGgmlSizes) {
  struct Expected {
    uint32_t id;
    const char* name;
    uint32_t block_size, type_size;
  };
  const Expected ggml[] = {
      {0, "f32", 1, 4},        {1, "f16", 1, 2},         {2, "q4_0", 32, 18},      {3, "q4_1", 32, 20},
      {6, "q5_0", 32, 22},     {7, "q5_1", 32, 24},      {8, "q8_0", 32, 34},      {9, "q8_1", 32, 36},
      {10, "q2_K", 256, 84},   {11, "q3_K", 256, 110},   {12, "q4_K", 256, 144},   {13, "q5_K", 256, 176},
      {14, "q6_K", 256, 210},  {15, "q8_K", 256, 292},   {16, "iq2_xxs", 256, 66}, {17, "iq2_xs", 256, 74},
      {18, "iq3_xxs", 256, 98}, {19, "iq1_s", 256, 50},  {20, "iq4_nl", 32, 18},   {21, "iq3_s", 256, 110},
      {22, "iq2_s", 256, 82},  {23, "iq4_xs", 256, 136}, {24, "i8", 1, 1},         {25, "i16", 1, 2},
      {26, "i32", 1, 4},       {27, "i64", 1, 8},        {28, "f64", 1, 8},        {29, "iq1_m", 256, 56},
      {30, "bf16", 1, 2},      {34, "tq1_0", 256, 54},   {35, "tq2_0", 256, 66},   {39, "mxfp4", 32, 17},
      {40, "nvfp4", 64, 36},   {41, "q1_0", 128, 18},
  };
  for (const Expected& e : ggml) {
    const TypeInfo* info = type_info(e.id);
    ASSERT_NE(info, nullptr) << "type id " << e.id;
    EXPECT_EQ(uint32_t(info->type), e.id);
    EXPECT_STREQ(info->name, e.name);
    EXPECT_EQ(info->block_size, e.block_size) << e.name;
    EXPECT_EQ(info->type_size, e.type_size) << e.name;
    Type parsed;
    EXPECT_TRUE(parse_type(e.name, parsed) && parsed == info->type) << e.name;
    if (!info->can_dequantize) {
      // Known but not computable: a clear UNSUPPORTED, never a wrong decode.
      std::vector<uint8_t> block(info->type_size);
      std::vector<float> out(info->block_size);
      try {
        dequantize(info->type, block.data(), out.data(), out.size());
        ADD_FAILURE() << e.name << " decoded";
      } catch (const Error& err) {
        EXPECT_EQ(err.status(), MOEVK_ERROR_UNSUPPORTED);
        EXPECT_NE(std::string(err.what()).find(e.name), std::string::npos) << err.what();
      }
    }
  }
}

TEST(QuantTypes, BadLengthsAndUnsupported) {
  std::vector<float> x(64, 1.0f);
  std::vector<uint8_t> out(1024);
  try {
    quantize(Type::Q4_0, x.data(), out.data(), 33);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_ARGUMENT);
  }
  try {
    dequantize(Type::Q4_K, out.data(), x.data(), 64);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_ARGUMENT);
  }
  try {
    quantize(Type::Q8_K, x.data(), out.data(), 0);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_UNSUPPORTED);
  }
}

TEST(Half, KnownValues) {
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3C00);
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xC000);
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7BFF);
  EXPECT_EQ(fp32_to_fp16(65519.0f), 0x7BFF);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);  // halfway to 2^16 rounds to even: inf
  EXPECT_EQ(fp32_to_fp16(INFINITY), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(-INFINITY), 0xFC00);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -24)), 0x0001);   // smallest subnormal
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);   // tie: to even (zero)
  EXPECT_EQ(fp32_to_fp16(std::ldexp(3.0f, -26)), 0x0001);   // above the tie
  EXPECT_EQ(fp32_to_fp16(std::ldexp(3.0f, -25)), 0x0002);   // tie between 1 and 2: to even
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie: to even
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(3.0f, -11)), 0x3C02);  // tie: to even
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -14) * (1.0f - std::ldexp(1.0f, -12))), 0x0400);  // rounds up to normal
  const uint16_t nan16 = fp32_to_fp16(std::nanf(""));
  EXPECT_EQ(nan16 & 0x7C00, 0x7C00);
  EXPECT_NE(nan16 & 0x03FF, 0);
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(fp32_to_bf16(bits_float(0x3F808000u)), 0x3F80);  // tie: to even
  EXPECT_EQ(fp32_to_bf16(bits_float(0x3F818000u)), 0x3F82);  // tie: to even
  EXPECT_EQ(fp32_to_bf16(bits_float(0x3F808001u)), 0x3F81);
  EXPECT_EQ(fp32_to_bf16(bits_float(0x7F7FFFFFu)), 0x7F80);  // max float rounds to inf
  const uint16_t nan_b = fp32_to_bf16(bits_float(0x7F800001u));  // NaN must not become inf
  EXPECT_EQ(nan_b & 0x7F80, 0x7F80);
  EXPECT_NE(nan_b & 0x007F, 0);
  EXPECT_EQ(bf16_to_fp32(0xC040), -3.0f);
}

TEST(Half, ExhaustiveRoundTrip) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_fp32(uint16_t(h));
    if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) {
      ASSERT_TRUE(std::isnan(f)) << h;
      continue;
    }
    ASSERT_EQ(fp32_to_fp16(f), h) << h;
#if defined(__FLT16_MAX__)
    ASSERT_EQ(f, float(std::bit_cast<_Float16>(uint16_t(h)))) << h;
#endif
  }
}

#if defined(__FLT16_MAX__)
TEST(Half, MatchesCompilerConversionOnRandomFloats) {
  std::mt19937 rng(4);
  std::uniform_int_distribution<uint32_t> bits;
  for (int k = 0; k < 200000; ++k) {
    uint32_t u = bits(rng);
    // Concentrate on the fp16 range, including subnormals and the overflow edge.
    u = (u & 0x807FFFFFu) | ((100u + (u >> 23) % 50u) << 23);
    const float f = bits_float(u);
    ASSERT_EQ(fp32_to_fp16(f), std::bit_cast<uint16_t>(_Float16(f))) << std::hex << u;
  }
}
#endif

}  // namespace
}  // namespace moevk::quant

namespace moevk::quant {
namespace {

// Deterministic input (no std::normal_distribution: its output is not specified by the
// standard): uniform values, outliers every 61st, a constant 32-element sub-block every 7th.
std::vector<float> pinned_input(size_t n) {
  std::vector<float> x(n);
  uint64_t s = 0x243F6A8885A308D3ull;
  for (size_t i = 0; i < n; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    float v = float(int32_t(s >> 40) - (1 << 23)) / float(1 << 23);
    if (i % 61 == 0) v *= 8.0f;
    if ((i / 32) % 7 == 3) v = 0.25f;
    x[i] = v * 0.02f;
  }
  return x;
}

uint64_t fnv1a(const std::vector<uint8_t>& bytes) {
  uint64_t h = 1469598103934665603ull;
  for (uint8_t b : bytes) h = (h ^ b) * 1099511628211ull;
  return h;
}

// The k-quant scale searches are ggml's, choice for choice: these hashes were produced by the
// plain one-candidate-at-a-time loop with lrintf rounding (ggml's order), before the search was
// interleaved for speed. Any change to which scale or quant is chosen changes them.
TEST(QuantPinned, KQuantizersMatchTheSequentialSearch) {
  const size_t n = 256 * 64;
  const std::vector<float> x = pinned_input(n);
  const std::pair<Type, uint64_t> expected[] = {
      {Type::Q4_K, 0x8047efd481b519b9ull}, {Type::Q5_K, 0x1ae004239cd878f5ull}, {Type::Q6_K, 0x642ae9d7576f9d40ull}};
  for (const auto& [type, hash] : expected) {
    std::vector<uint8_t> packed(row_bytes(type, n));
    quantize(type, x.data(), packed.data(), n);
    EXPECT_EQ(fnv1a(packed), hash) << type_info(type).name;
  }
}

}  // namespace
}  // namespace moevk::quant
