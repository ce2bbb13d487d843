// The safetensors reader on hostile headers, F16/BF16 decoding, and sharded checkpoints: a
// fixture split into two BF16 shards with an index converts to exactly the BF16-rounded values.
#include <gtest/gtest.h>

#include "common/error.hpp"
#include "convert/convert.hpp"
#include "convert/safetensors.hpp"
#include "gguf/convert_test_util.hpp"
#include "gguf/gguf.hpp"
#include "quant/half.hpp"

namespace moevk {
namespace {

using convert::SafetensorsFile;
using test::ScratchDir;

std::vector<uint8_t> f32_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

void expect_invalid(const std::vector<uint8_t>& bytes, const std::string& fragment) {
  try {
    SafetensorsFile::from_memory(bytes, "hostile.safetensors");
    FAIL() << "accepted; expected an error containing '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_FILE) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

std::vector<uint8_t> with_header(const std::string& json, size_t data_bytes) {
  std::vector<uint8_t> out = test::safetensors_framing(json, data_bytes);
  out.resize(out.size() + data_bytes, 0);
  return out;
}

TEST(Safetensors, ReadsF32F16Bf16) {
  const std::vector<float> values = {1.0f, -2.5f, 0.333333f, 65504.0f, 1e-6f, -0.0f};
  std::vector<uint8_t> f16(values.size() * 2), bf16(values.size() * 2);
  for (size_t i = 0; i < values.size(); ++i) {
    const uint16_t h = quant::fp32_to_fp16(values[i]), b = quant::fp32_to_bf16(values[i]);
    std::memcpy(&f16[i * 2], &h, 2);
    std::memcpy(&bf16[i * 2], &b, 2);
  }
  const auto bytes = test::safetensors_bytes({{"a", "F32", {2, 3}, f32_bytes(values)},
                                              {"b", "F16", {6}, f16},
                                              {"c", "BF16", {3, 2}, bf16},
                                              {"ids", "I64", {1}, std::vector<uint8_t>(8, 0)}});
  auto file = SafetensorsFile::from_memory(bytes, "ok");
  ASSERT_EQ(file->tensors().size(), 4u);
  std::map<std::string, const convert::StTensor*> by;
  for (const auto& t : file->tensors()) by[t.name] = &t;
  std::vector<float> out(6);
  by["a"]->read_f32(0, 6, out.data());
  EXPECT_EQ(out, values);
  EXPECT_EQ(by["a"]->shape, (std::vector<uint64_t>{2, 3}));
  by["b"]->read_f32(0, 6, out.data());
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(out[i], quant::fp16_to_fp32(quant::fp32_to_fp16(values[i])));
  by["c"]->read_f32(2, 3, out.data());
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(out[i], quant::bf16_to_fp32(quant::fp32_to_bf16(values[2 + i])));
  try {
    by["ids"]->read_f32(0, 1, out.data());
    FAIL() << "I64 read as float";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_UNSUPPORTED);
  }
}

TEST(Safetensors, RejectsHostileHeaders) {
  expect_invalid({1, 2, 3}, "shorter than");
  {
    std::vector<uint8_t> b(16, 0);
    b[0] = 0xff;  // header length 255 in a 16-byte file
    expect_invalid(b, "exceeds the file size");
  }
  {
    std::vector<uint8_t> b(16, 0);
    for (int i = 0; i < 8; ++i) b[i] = 0xff;  // 2^64 - 1: must not wrap around
    expect_invalid(b, "exceeds 100 MiB");
  }
  expect_invalid(with_header("{not json", 0), "header JSON");
  expect_invalid(with_header("[1,2]", 0), "not a JSON object");
  expect_invalid(with_header(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4), "outside the data section");
  expect_invalid(with_header(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "shape needs 12");
  expect_invalid(with_header(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8), "data_offsets");
  expect_invalid(with_header(R"({"t":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}})", 8), "unknown dtype");
  expect_invalid(with_header(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8), "non-negative");
  expect_invalid(with_header(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})", 8),
                 "overflows");
  expect_invalid(with_header(R"({"t":{"dtype":"F32","shape":[2]}})", 8), "data_offsets");
  expect_invalid(with_header(R"({"t":{"shape":[2],"data_offsets":[0,8]}})", 8), "dtype");
  expect_invalid(with_header(R"({"t":5})", 8), "not an object");
}

TEST(Safetensors, ShardedBf16CheckpointConverts) {
  const std::string fixture = test::hf_fixture("mixtral-tiny");
  const auto st = test::load_f32_safetensors(fixture + "/model.safetensors");
  ScratchDir dir("convert_shards");
  const std::string hf = dir.file("hf");
  std::filesystem::create_directories(hf);
  std::filesystem::copy_file(fixture + "/config.json", hf + "/config.json");
  // Two BF16 shards, split alphabetically, plus the index that lists them.
  std::vector<test::StEntry> shard[2];
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  size_t i = 0;
  for (const auto& [name, t] : st) {
    std::vector<uint8_t> bf16(t.values.size() * 2);
    for (size_t k = 0; k < t.values.size(); ++k) {
      const uint16_t b = quant::fp32_to_bf16(t.values[k]);
      std::memcpy(&bf16[k * 2], &b, 2);
    }
    const int s = i++ < st.size() / 2 ? 0 : 1;
    shard[s].push_back({name, "BF16", t.shape, bf16});
    index["weight_map"][name] = s == 0 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  test::write_bytes(hf + "/model-00001-of-00002.safetensors", test::safetensors_bytes(shard[0]));
  test::write_bytes(hf + "/model-00002-of-00002.safetensors", test::safetensors_bytes(shard[1]));
  const std::string index_text = index.dump();
  test::write_bytes(hf + "/model.safetensors.index.json", std::vector<uint8_t>(index_text.begin(), index_text.end()));

  convert::Checkpoint ckpt(hf);
  EXPECT_EQ(ckpt.size(), st.size());

  const std::string out = dir.file("m.gguf");
  convert::convert_hf(hf, out, quant::Type::F32, {});
  auto file = gguf::File::open(out);
  // Unpermuted tensors from both shards: exactly the BF16-rounded source values.
  for (const auto& [gguf_name, hf_name] : std::vector<std::pair<std::string, std::string>>{
           {"token_embd.weight", "model.embed_tokens.weight"},
           {"output.weight", "lm_head.weight"},
           {"blk.1.attn_v.weight", "model.layers.1.self_attn.v_proj.weight"},
           {"blk.0.ffn_gate_inp.weight", "model.layers.0.block_sparse_moe.gate.weight"}}) {
    const auto& src = st.at(hf_name).values;
    const float* got = reinterpret_cast<const float*>(file->tensor_data(*file->find_tensor(gguf_name)).data());
    for (size_t k = 0; k < src.size(); ++k)
      ASSERT_EQ(got[k], quant::bf16_to_fp32(quant::fp32_to_bf16(src[k]))) << gguf_name << " [" << k << "]";
  }
  // Expert 5's w2 (down) row 7 sits at [.., 7, 5] in the stacked tensor.
  const auto& w2 = st.at("model.layers.1.block_sparse_moe.experts.5.w2.weight");
  const uint64_t ne0 = w2.shape[1], rows = w2.shape[0];
  const float* down = reinterpret_cast<const float*>(file->tensor_data(*file->find_tensor("blk.1.ffn_down_exps.weight")).data());
  for (uint64_t c = 0; c < ne0; ++c)
    ASSERT_EQ(down[(5 * rows + 7) * ne0 + c], quant::bf16_to_fp32(quant::fp32_to_bf16(w2.values[7 * ne0 + c])));
}

TEST(Safetensors, IndexNamingAFileOutsideTheFolderIsRejected) {
  ScratchDir dir("convert_index");
  const std::string text = R"({"weight_map": {"a": "../etc/passwd"}})";
  test::write_bytes(dir.file("model.safetensors.index.json"), std::vector<uint8_t>(text.begin(), text.end()));
  try {
    convert::Checkpoint ckpt(dir.path.string());
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_FILE) << e.what();
  }
}

}  // namespace
}  // namespace moevk
