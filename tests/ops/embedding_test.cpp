// Embedding (get_rows): every weight type decoded on the GPU against quant::dequantize.
#include <gtest/gtest.h>

#include <cstring>

#include "common/error.hpp"
#include "ops/transformer.hpp"
#include "ops/weight_binding.hpp"
#include "support/gpu.hpp"
#include "support/weights.hpp"

using namespace moevk;
using moevk::test::GpuTest;
using quant::Type;

namespace {

const Type kTypes[] = {Type::F32,  Type::F16,  Type::BF16, Type::Q8_0, Type::Q4_0, Type::Q4_1,
                       Type::Q5_0, Type::Q5_1, Type::Q2_K, Type::Q3_K, Type::Q4_K, Type::Q5_K,
                       Type::Q6_K, Type::IQ4_NL, Type::IQ4_XS, Type::IQ2_XXS, Type::IQ2_XS, Type::IQ2_S,
                       Type::IQ3_XXS, Type::IQ3_S, Type::IQ1_S, Type::IQ1_M};

uint32_t block_of(Type t) { return std::max(8u, quant::type_info(t).block_size); }

// Gathers rows of a table stored `lead` bytes into its buffer (not a binding-aligned offset, as an
// expert slice or a packed GGUF tensor may be), including out-of-range ids (zeros).
// rows_per_binding > 0 limits the table binding to that many rows (gathered in chunks).
void check_embedding(vk::Context& ctx, Type t, test::WeightSource source, uint32_t cols, uint32_t seed,
                     uint32_t rows_per_binding = 0) {
  const uint32_t rows = 7, lead = 20;
  const auto w = test::random_weights(t, rows, cols, seed, source);
  const auto table = test::dequantized(t, w, rows, cols);
  std::vector<uint8_t> padded(lead, 0xAB);
  const auto on_device = test::device_weights(t, w, rows, cols, lead);
  padded.insert(padded.end(), on_device.begin(), on_device.end());
  auto wbuf = test::upload(ctx, padded, "embedding table");
  const std::vector<uint32_t> ids = {3, 0, 6, 6, 7, 1000000, 2, 5, 1};
  const uint32_t n = static_cast<uint32_t>(ids.size());
  auto idbuf = test::upload(ctx, ids, "token ids");
  auto out = test::poisoned(ctx, uint64_t(n) * cols * 4);
  ops::Matrix m{wbuf.range(lead, w.size()), t, cols, rows};
  const uint64_t slack = ops::weight_binding_slack(ctx);
  ops::Embedding op(ctx, rows_per_binding ? slack + rows_per_binding * quant::row_bytes(t, cols) : 0);
  test::run_once(ctx, [&](vk::Recorder& r) { op.record(r, m, idbuf.range(), out.range(), n); });
  std::vector<double> want(size_t(n) * cols, 0.0);
  for (uint32_t i = 0; i < n; ++i)
    if (ids[i] < rows)
      for (uint32_t c = 0; c < cols; ++c) want[size_t(i) * cols + c] = table[size_t(ids[i]) * cols + c];
  // The same products as the CPU; only q * d + m may be fused into one fma on the GPU (one
  // rounding fewer): at most an ulp of terms below 64, so 1e-5 absolute.
  EXPECT_TRUE(test::all_close(test::download<float>(ctx, out, want.size()), want, 1e-5, 1e-6))
      << quant::type_info(t).name << " cols=" << cols << " source=" << int(source)
      << " rows_per_binding=" << rows_per_binding;
}

}  // namespace

TEST_F(GpuTest, EmbeddingDecodesEveryTypeLikeTheCpuReference) {
  uint32_t seed = 1;
  for (Type t : kTypes) {
    const uint32_t block = block_of(t);
    for (uint32_t blocks : {1u, 3u}) {
      check_embedding(*ctx, t, test::WeightSource::Quantize, block * blocks, seed++);
      check_embedding(*ctx, t, test::WeightSource::RandomBytes, block * blocks, seed++);
    }
  }
}

TEST_F(GpuTest, EmbeddingRejectsTypesWithoutAKernel) {
  std::vector<uint8_t> w(110 * 2, 0);
  auto wbuf = test::upload(*ctx, w);
  auto ids = test::upload(*ctx, std::vector<uint32_t>{0});
  auto out = test::poisoned(*ctx, 256 * 4);
  ops::Embedding op(*ctx);
  ops::Matrix m{wbuf.range(), Type::TQ1_0, 256, 2};
  vk::Recorder rec(*ctx);
  rec.begin();
  try {
    op.record(rec, m, ids.range(), out.range(), 1);
    ADD_FAILURE() << "tq1_0 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_UNSUPPORTED);
    EXPECT_NE(std::string(e.what()).find(quant::type_info(Type::TQ1_0).name), std::string::npos) << e.what();
  }
  rec.end();
}

TEST_F(GpuTest, EmbeddingGathersTablesLargerThanOneBindingInChunks) {
  // 2 rows per binding: 4 chunks for 7 rows, chunk starts 2 mod 4 for q4_0 (54-byte rows).
  check_embedding(*ctx, Type::Q4_0, test::WeightSource::RandomBytes, 96, 77, 2);
  check_embedding(*ctx, Type::Q6_K, test::WeightSource::Quantize, 256, 78, 3);
  check_embedding(*ctx, Type::F32, test::WeightSource::Quantize, 40, 79, 1);
}
