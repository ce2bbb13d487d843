// Reading valid GGUF files laid out byte by byte the way llama.cpp writes them: metadata of every
// kind a MoE model carries, merged 3-D expert tensors and older per-expert tensors, v2 and v3,
// custom alignment, from memory and from disk (mmap).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "gguf/gguf.hpp"
#include "gguf/gguf_builder.hpp"

namespace moevk::gguf {
namespace {

using test::GgufBuilder;

struct ExpectedTensor {
  std::string name;
  std::vector<uint64_t> dims;
  uint32_t type;
  uint64_t size;
  uint64_t relative_offset;
};

// Sizes by hand: q8_0 34 bytes / 32, q4_K 144 bytes / 256, f16 2 bytes, f32 4 bytes.
const std::vector<ExpectedTensor> kTensors = {
    {"token_embd.weight", {64, 10}, 8, 2 * 34 * 10, 0},                    // 680 -> next at 704
    {"blk.0.ffn_gate_exps.weight", {256, 8, 4}, 12, 144 * 8 * 4, 704},     // 4608 -> 5312
    {"blk.0.ffn_gate.3.weight", {64, 16}, 1, 64 * 16 * 2, 5312},           // 2048 -> 7360
    {"output_norm.weight", {64}, 0, 256, 7360},                            // 256 -> 7616
};

std::vector<uint8_t> model_bytes(uint32_t version, uint64_t alignment, uint64_t* data_start) {
  GgufBuilder b;
  const bool custom_alignment = alignment != 32;
  b.header(kTensors.size(), 8 + (custom_alignment ? 1 : 0), version);
  b.kv_string("general.architecture", "qwen3moe");
  b.kv_u32("qwen3moe.block_count", 1);
  b.str("qwen3moe.rope.freq_base").u32(6).put<float>(1000000.0f);
  b.str("tokenizer.ggml.add_bos_token").u32(7).u8(1);
  b.str("tokenizer.ggml.tokens").u32(9).u32(8).u64(3).str("<s>").str("hello").str("\xc4\xa0world");
  b.str("tokenizer.ggml.scores").u32(9).u32(6).u64(2).put<float>(-1.5f).put<float>(2.25f);
  b.str("tokenizer.ggml.token_type").u32(9).u32(5).u64(2).put<int32_t>(-3).put<int32_t>(1);
  b.str("general.size").u32(10).u64(1ull << 40);
  if (custom_alignment) b.kv_u32("general.alignment", uint32_t(alignment));
  for (const ExpectedTensor& t : kTensors) {
    // llama.cpp pads every tensor's data to the alignment; with alignment 64 the offsets differ.
    const uint64_t offset = custom_alignment ? t.relative_offset * 2 : t.relative_offset;
    b.tensor(t.name, t.dims, t.type, offset);
  }
  b.pad(alignment);
  *data_start = b.size();
  const uint64_t end = custom_alignment ? 7616 * 2 : 7616;
  for (uint64_t k = 0; k < end; ++k) b.u8(uint8_t(k * 7 + 3));
  return b.bytes;
}

void check_model(const File& file, uint64_t alignment, uint64_t data_start) {
  EXPECT_EQ(file.alignment(), alignment);
  EXPECT_EQ(file.data_offset(), data_start);
  EXPECT_EQ(file.data_offset() % alignment, 0u);
  EXPECT_EQ(file.get_string("general.architecture"), "qwen3moe");
  EXPECT_EQ(file.get_uint("qwen3moe.block_count"), 1u);
  EXPECT_EQ(file.get_float("qwen3moe.rope.freq_base"), 1000000.0);
  EXPECT_EQ(file.get_float("qwen3moe.block_count"), 1.0);  // integers read as floats too
  EXPECT_EQ(file.get_bool("tokenizer.ggml.add_bos_token"), true);
  EXPECT_EQ(file.get_uint("general.size"), 1ull << 40);
  const Value* tokens = file.find("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  ASSERT_EQ(tokens->type, ValueType::ARRAY);
  EXPECT_EQ(tokens->element_type, ValueType::STRING);
  ASSERT_EQ(tokens->array_size(), 3u);
  EXPECT_EQ(tokens->strings[1], "hello");
  EXPECT_EQ(tokens->element(2).s, "\xc4\xa0world");
  const Value* scores = file.find("tokenizer.ggml.scores");
  ASSERT_NE(scores, nullptr);
  ASSERT_EQ(scores->array_size(), 2u);
  EXPECT_EQ(scores->packed.size(), 8u);  // stored as in the file: two float32
  EXPECT_EQ(scores->element(0).f, -1.5);
  EXPECT_EQ(scores->element(1).f, 2.25);
  const Value* token_type = file.find("tokenizer.ggml.token_type");
  ASSERT_NE(token_type, nullptr);
  EXPECT_EQ(token_type->element(0).type, ValueType::INT32);
  EXPECT_EQ(token_type->element(0).i, -3);
  EXPECT_EQ(token_type->element(0).as_uint(), std::nullopt);
  EXPECT_EQ(token_type->element(1).as_uint(), 1u);
  EXPECT_EQ(file.find("absent"), nullptr);

  ASSERT_EQ(file.tensors().size(), kTensors.size());
  const uint64_t scale = alignment == 32 ? 1 : 2;
  for (size_t i = 0; i < kTensors.size(); ++i) {
    const ExpectedTensor& want = kTensors[i];
    const TensorInfo& got = file.tensors()[i];
    EXPECT_EQ(got.name, want.name);
    EXPECT_EQ(got.dims, want.dims);
    EXPECT_EQ(uint32_t(got.type), want.type);
    EXPECT_EQ(got.size, want.size);
    EXPECT_EQ(got.offset, data_start + want.relative_offset * scale);
    EXPECT_EQ(file.find_tensor(want.name), &got);
    const auto data = file.tensor_data(got);
    ASSERT_EQ(data.size(), want.size);
    const uint64_t k = want.relative_offset * scale;
    EXPECT_EQ(data[0], uint8_t(k * 7 + 3));
    EXPECT_EQ(data[data.size() - 1], uint8_t((k + want.size - 1) * 7 + 3));
  }
  EXPECT_EQ(file.tensors()[1].elements(), 256u * 8 * 4);
  EXPECT_EQ(file.find_tensor("blk.0.ffn_up_exps.weight"), nullptr);
}

TEST(GgufReader, ReadsLlamaCppLayoutV3) {
  uint64_t data_start = 0;
  const auto bytes = model_bytes(3, 32, &data_start);
  auto file = File::from_memory(bytes, "model.gguf");
  EXPECT_EQ(file->version(), 3u);
  EXPECT_EQ(file->path(), "model.gguf");
  EXPECT_EQ(file->file_size(), bytes.size());
  check_model(*file, 32, data_start);
}

TEST(GgufReader, ReadsV2) {
  uint64_t data_start = 0;
  const auto bytes = model_bytes(2, 32, &data_start);
  auto file = File::from_memory(bytes);
  EXPECT_EQ(file->version(), 2u);
  check_model(*file, 32, data_start);
}

TEST(GgufReader, CustomAlignment) {
  uint64_t data_start = 0;
  const auto bytes = model_bytes(3, 64, &data_start);
  auto file = File::from_memory(bytes);
  check_model(*file, 64, data_start);
}

TEST(GgufReader, MetadataOnlyFile) {
  GgufBuilder b;
  b.header(0, 1).kv_string("general.name", "vocab only");
  auto file = File::from_memory(b.bytes);
  EXPECT_TRUE(file->tensors().empty());
  EXPECT_EQ(file->get_string("general.name"), "vocab only");
}

std::string temp_path(const char* stem) {
  return ::testing::TempDir() + "/" + stem + "_" + std::to_string(getpid()) + ".gguf";
}

TEST(GgufReader, OpensFromDisk) {
  uint64_t data_start = 0;
  const auto bytes = model_bytes(3, 32, &data_start);
  const std::string path = temp_path("reader_open");
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  }
  {
    auto file = File::open(path);
    EXPECT_EQ(file->path(), path);
    check_model(*file, 32, data_start);
  }
  std::remove(path.c_str());
}

TEST(GgufReader, OpenErrorsAreIo) {
  try {
    File::open("/nonexistent/dir/model.gguf");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_IO);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/model.gguf"), std::string::npos);
  }
  try {
    File::open(::testing::TempDir());
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_IO);
  }
}

TEST(GgufReader, EmptyFileOnDiskIsInvalid) {
  const std::string path = temp_path("reader_empty");
  { std::ofstream out(path, std::ios::binary); }
  try {
    File::open(path);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_FILE);
    EXPECT_NE(std::string(e.what()).find(path + ": header at byte 0"), std::string::npos) << e.what();
  }
  std::remove(path.c_str());
}

// Files of types moevk cannot compute (i-quants, ternary, MXFP4, integer tensors...) still open,
// with every tensor sized as ggml sizes it, so that `moevk info` can describe them. Bytes per
// block by hand from ggml.c's type_traits.
TEST(GgufReader, OpensTensorsOfEveryGgmlType) {
  const std::vector<std::pair<uint32_t, std::pair<uint64_t, uint64_t>>> types = {
      {16, {256, 66}}, {17, {256, 74}}, {18, {256, 98}}, {19, {256, 50}}, {21, {256, 110}},
      {22, {256, 82}}, {23, {256, 136}}, {24, {1, 1}},   {25, {1, 2}},    {26, {1, 4}},
      {27, {1, 8}},    {28, {1, 8}},    {29, {256, 56}}, {34, {256, 54}}, {35, {256, 66}},
      {39, {32, 17}},  {40, {64, 36}},  {41, {128, 18}}, {10, {256, 84}}, {11, {256, 110}},
      {15, {256, 292}},
  };
  GgufBuilder b;
  b.header(types.size(), 0);
  uint64_t offset = 0;
  std::vector<uint64_t> sizes;
  for (const auto& [id, layout] : types) {
    const auto [block, bytes] = layout;
    std::string name = "t";  // not "t" + to_string: GCC 12 warns falsely (-Wrestrict) on that
    name += std::to_string(id);
    b.tensor(name, {block * 2, 3}, id, offset);  // 2 blocks per row, 3 rows
    sizes.push_back(2 * bytes * 3);
    offset += (sizes.back() + 31) / 32 * 32;
  }
  b.pad().fill(size_t(offset));
  auto file = File::from_memory(b.bytes);
  ASSERT_EQ(file->tensors().size(), types.size());
  for (size_t k = 0; k < types.size(); ++k) {
    const TensorInfo& t = file->tensors()[k];
    EXPECT_EQ(uint32_t(t.type), types[k].first);
    EXPECT_EQ(t.size, sizes[k]) << t.name << " (" << quant::type_info(t.type).name << ")";
  }
}

}  // namespace
}  // namespace moevk::gguf
