// The fuzzer's seed corpus (tests/fuzz/corpus/gguf/; no .gguf suffix, which .gitignore skips):
// small valid files and files with one field broken. The seeds are generated here; this test checks the committed copies are current and
// that each is accepted (valid_*) or rejected as INVALID_FILE (bad_*). To regenerate:
//   MOEVK_WRITE_GGUF_CORPUS=tests/fuzz/corpus/gguf ./test_gguf --gtest_filter='GgufCorpus.*'
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "gguf/gguf.hpp"
#include "gguf/gguf_builder.hpp"

#ifndef MOEVK_TEST_DATA_DIR
#define MOEVK_TEST_DATA_DIR "tests/data"
#endif

namespace moevk::gguf {
namespace {

using test::GgufBuilder;

// A tiny model in llama.cpp's layout: metadata of every type, a merged expert tensor and a
// per-expert tensor, q4_0 and f32 data.
GgufBuilder tiny_model(uint32_t version, uint32_t alignment) {
  GgufBuilder b;
  b.header(3, alignment == 32 ? 9 : 10, version);
  b.kv_string("general.architecture", "qwen2moe");
  b.kv_u32("qwen2moe.expert_count", 2);
  b.str("qwen2moe.rope.freq_base").u32(6).put<float>(10000.0f);
  b.str("general.file_type").u32(5).put<int32_t>(2);
  b.str("general.size").u32(10).u64(123456789);
  b.str("general.offset").u32(11).put<int64_t>(-5);
  b.str("general.ratio").u32(12).put<double>(0.5);
  b.str("tokenizer.ggml.tokens").u32(9).u32(8).u64(3).str("<s>").str("a").str("bc");
  b.str("nested").u32(9).u32(9).u64(2).u32(0).u64(2).u8(1).u8(2).u32(7).u64(1).u8(1);
  if (alignment != 32) b.kv_u32("general.alignment", alignment);
  const uint64_t a = alignment;
  b.tensor("blk.0.ffn_gate_exps.weight", {32, 2, 2}, 2, 0);           // q4_0, 72 bytes
  b.tensor("blk.0.ffn_gate.1.weight", {32, 1}, 2, (72 + a - 1) / a * a);  // 18 bytes
  b.tensor("output_norm.weight", {4}, 0, (72 + a - 1) / a * a + a);      // 16 bytes
  b.pad(alignment);
  for (int k = 0; k < 72; ++k) b.u8(uint8_t(k * 5));
  b.pad(alignment);
  for (int k = 0; k < 18; ++k) b.u8(uint8_t(k * 3 + 1));
  b.pad(alignment);
  for (float v : {1.0f, -1.0f, 0.5f, 2.0f}) b.put<float>(v);
  return b;
}

std::vector<std::pair<std::string, std::vector<uint8_t>>> seeds() {
  std::vector<std::pair<std::string, std::vector<uint8_t>>> out;
  out.emplace_back("valid_model_v3", tiny_model(3, 32).bytes);
  out.emplace_back("valid_model_v2", tiny_model(2, 32).bytes);
  out.emplace_back("valid_model_align64", tiny_model(3, 64).bytes);
  {
    GgufBuilder b;
    b.header(0, 1).kv_string("general.name", "vocab");
    out.emplace_back("valid_metadata_only", b.bytes);
  }
  auto broken = [&](const char* name, auto&& edit) {
    GgufBuilder b = tiny_model(3, 32);
    edit(b.bytes);
    out.emplace_back(name, b.bytes);
  };
  broken("bad_truncated", [](auto& bytes) { bytes.resize(bytes.size() - 7); });
  broken("bad_version", [](auto& bytes) { bytes[4] = 9; });
  broken("bad_kv_count", [](auto& bytes) { bytes[23] = 0x10; });
  {
    GgufBuilder b;
    b.header(1, 1).kv_u32("general.alignment", 24).tensor("w", {32}, 0, 0).pad().fill(128);
    out.emplace_back("bad_alignment", b.bytes);
  }
  {
    GgufBuilder b;
    b.header(2, 0).tensor("w", {32}, 0, 0).tensor("w", {32}, 0, 128).pad().fill(256);
    out.emplace_back("bad_duplicate_tensor", b.bytes);
  }
  {
    GgufBuilder b;
    b.header(1, 0).tensor("w", {32, 3}, 14, 32).pad().fill(64);  // q6_K row of 32: not a block
    out.emplace_back("bad_block_multiple", b.bytes);
  }
  {
    GgufBuilder b;
    b.header(1, 0).tensor("w", {1ull << 40, 1ull << 30}, 0, 0).pad().fill(64);
    out.emplace_back("bad_dim_overflow", b.bytes);
  }
  {
    GgufBuilder b;
    b.header(0, 1).str("deep").u32(9);
    for (int level = 0; level < 12; ++level) b.u32(9).u64(1);
    b.u32(0).u64(0);
    out.emplace_back("bad_deep_array", b.bytes);
  }
  return out;
}

std::string corpus_dir() { return std::string(MOEVK_TEST_DATA_DIR) + "/../fuzz/corpus/gguf"; }

TEST(GgufCorpus, SeedsAreCurrentAndClassified) {
  const char* write_dir = std::getenv("MOEVK_WRITE_GGUF_CORPUS");
  for (const auto& [name, bytes] : seeds()) {
    if (write_dir) {
      std::ofstream out(std::string(write_dir) + "/" + name, std::ios::binary);
      out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    }
    EXPECT_LE(bytes.size(), 1024u) << name << ": keep seeds tiny";
    std::ifstream in(corpus_dir() + "/" + name, std::ios::binary);
    const std::vector<uint8_t> committed{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    EXPECT_EQ(committed, bytes) << name << " is missing or stale in " << corpus_dir();
    const bool valid = name.rfind("valid_", 0) == 0;
    try {
      auto file = File::from_memory(bytes, name);
      EXPECT_TRUE(valid) << name << " was accepted";
      if (name.find("model") != std::string::npos) {
        ASSERT_EQ(file->tensors().size(), 3u);
        EXPECT_EQ(file->find("nested")->arrays[1].element_type, ValueType::BOOL);
        EXPECT_EQ(file->tensor_data(file->tensors()[2]).size(), 16u);
      }
    } catch (const Error& e) {
      EXPECT_FALSE(valid) << name << ": " << e.what();
      EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_FILE);
      EXPECT_NE(std::string(e.what()).find(name + ": "), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(" at byte "), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace moevk::gguf
