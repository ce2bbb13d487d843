// llama-quantize's K-quant mixes (--type q4_k_m, ...): the stored type of every matrix, against
// tables written out by hand from llama.cpp's rules (llama_tensor_get_type) for the real model
// shapes, the fallbacks for short rows, user rules over a mix, and the file it writes.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "convert/convert.hpp"
#include "gguf/convert_test_util.hpp"
#include "gguf/gguf.hpp"
#include "models/hparams.hpp"
#include "quant/file_type.hpp"

using namespace moevk;
using quant::FileType;
using quant::Mix;
using T = quant::Type;

namespace {

std::map<std::string, T> planned(const convert::ModelSpec& spec, const FileType& ft,
                                 std::vector<std::string>* notes = nullptr, const convert::TypeRules& rules = {}) {
  std::map<std::string, T> out;
  for (const model::TensorShape& t : convert::planned_shapes(spec, ft, notes, rules)) out[t.name] = t.type;
  return out;
}

FileType mix(const char* name) {
  FileType ft;
  EXPECT_TRUE(quant::parse_file_type(name, ft)) << name;
  return ft;
}

std::string blk(uint32_t l, const char* tensor) { return "blk." + std::to_string(l) + "." + tensor + ".weight"; }

}  // namespace

TEST(FileType, NamesAndIds) {
  FileType ft;
  ASSERT_TRUE(quant::parse_file_type("Q4_K_M", ft));
  EXPECT_EQ(ft, FileType(T::Q4_K, Mix::Q4_K_M));
  ASSERT_TRUE(quant::parse_file_type("q4_k", ft));
  EXPECT_EQ(ft, FileType(T::Q4_K));  // the pure file, as before
  EXPECT_FALSE(quant::parse_file_type("q4_k_x", ft));
  EXPECT_FALSE(quant::parse_file_type("q6_k_m", ft));  // llama.cpp has no such mix
  // llama_ftype values (llama.h).
  const std::vector<std::pair<const char*, uint32_t>> ids = {{"q3_k_s", 11}, {"q3_k_m", 12}, {"q3_k_l", 13},
                                                             {"q4_k_s", 14}, {"q4_k_m", 15}, {"q5_k_s", 16},
                                                             {"q5_k_m", 17}, {"q4_0", 2},    {"q6_k", 18}};
  for (const auto& [name, id] : ids) {
    ASSERT_TRUE(quant::parse_file_type(name, ft)) << name;
    EXPECT_EQ(quant::file_type_id(ft), id) << name;
    FileType back;  // the name given back parses to the same file type ("q6_K" as ggml spells it)
    ASSERT_TRUE(quant::parse_file_type(quant::file_type_name(ft), back)) << name;
    EXPECT_EQ(back, ft) << name;
  }
  EXPECT_STREQ(quant::file_type_id_name(15), "Q4_K_M");
  EXPECT_STREQ(quant::file_type_id_name(7), "Q8_0");
  EXPECT_STREQ(quant::file_type_id_name(1), "F16");
  EXPECT_EQ(quant::file_type_id_name(4), nullptr);  // removed from llama.cpp
  EXPECT_EQ(quant::file_type_id_name(1000), nullptr);
}

// Mixtral-8x7B (32 layers, 8 experts) in Q4_K_M: the 8-expert rules put attn_v and attn_k in
// Q8_0 and attn_output in Q5_K; ffn_down is Q6_K where use_more_bits(layer, 32) holds: layers
// 0-3 and 28-31, and 6, 9, ..., 27 between.
TEST(FileType, Q4KMOnMixtral8x7b) {
  const convert::ModelSpec spec = convert::make_model_spec("mixtral-8x7b", {});
  const auto types = planned(spec, mix("q4_k_m"));
  const std::set<uint32_t> wide = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
  EXPECT_EQ(types.at("token_embd.weight"), T::Q4_K);
  EXPECT_EQ(types.at("output.weight"), T::Q6_K);
  EXPECT_EQ(types.at("output_norm.weight"), T::F32);
  for (uint32_t l = 0; l < 32; ++l) {
    SCOPED_TRACE("layer " + std::to_string(l));
    EXPECT_EQ(types.at(blk(l, "attn_q")), T::Q4_K);
    EXPECT_EQ(types.at(blk(l, "attn_k")), T::Q8_0);
    EXPECT_EQ(types.at(blk(l, "attn_v")), T::Q8_0);
    EXPECT_EQ(types.at(blk(l, "attn_output")), T::Q5_K);
    EXPECT_EQ(types.at(blk(l, "ffn_gate_exps")), T::Q4_K);
    EXPECT_EQ(types.at(blk(l, "ffn_up_exps")), T::Q4_K);
    EXPECT_EQ(types.at(blk(l, "ffn_down_exps")), wide.count(l) ? T::Q6_K : T::Q4_K);
    EXPECT_EQ(types.at(blk(l, "ffn_gate_inp")), T::F32);
  }
  // Q4_K_S: ffn_down Q5_K in the first eighth; the 8-expert attention rules as in Q4_K_M.
  const auto s = planned(spec, mix("q4_k_s"));
  for (uint32_t l = 0; l < 32; ++l) {
    EXPECT_EQ(s.at(blk(l, "ffn_down_exps")), l < 4 ? T::Q5_K : T::Q4_K) << l;
    EXPECT_EQ(s.at(blk(l, "attn_v")), T::Q8_0) << l;
    EXPECT_EQ(s.at(blk(l, "attn_output")), T::Q5_K) << l;
  }
  // Q3_K_L: downs Q5_K; attn_output is not among the 8-expert promotions for Q3_K_L.
  const auto l3 = planned(spec, mix("q3_k_l"));
  EXPECT_EQ(l3.at(blk(7, "ffn_down_exps")), T::Q5_K);
  EXPECT_EQ(l3.at(blk(7, "attn_output")), T::Q3_K);
  EXPECT_EQ(l3.at(blk(7, "ffn_up_exps")), T::Q3_K);
  EXPECT_EQ(l3.at(blk(7, "attn_v")), T::Q8_0);
}

// Qwen3-30B-A3B (48 layers, 128 experts): no 8-expert rules; attn_v and ffn_down Q6_K where
// use_more_bits(layer, 48): 0-5, 42-47 and 8, 11, ..., 41.
TEST(FileType, Q4KMAndQ3KMOnQwen3_30bA3b) {
  const convert::ModelSpec spec = convert::make_model_spec("qwen3-30b-a3b", {});
  const auto types = planned(spec, mix("q4_k_m"));
  std::set<uint32_t> wide = {0, 1, 2, 3, 4, 5, 42, 43, 44, 45, 46, 47};
  for (uint32_t l = 8; l <= 41; l += 3) wide.insert(l);
  EXPECT_EQ(wide.size(), 24u);
  EXPECT_EQ(types.at("output.weight"), T::Q6_K);
  for (uint32_t l = 0; l < 48; ++l) {
    SCOPED_TRACE("layer " + std::to_string(l));
    const T w = wide.count(l) ? T::Q6_K : T::Q4_K;
    EXPECT_EQ(types.at(blk(l, "attn_v")), w);
    EXPECT_EQ(types.at(blk(l, "ffn_down_exps")), w);
    EXPECT_EQ(types.at(blk(l, "attn_k")), T::Q4_K);
    EXPECT_EQ(types.at(blk(l, "attn_output")), T::Q4_K);
    EXPECT_EQ(types.at(blk(l, "ffn_gate_exps")), T::Q4_K);
    EXPECT_EQ(types.at(blk(l, "attn_q_norm")), T::F32);
  }
  // Q3_K_M: attn_v Q5_K in layers 0-1 then Q4_K; ffn_down Q5_K below 48/16 = 3 then Q4_K;
  // attn_output Q4_K; the rest Q3_K.
  const auto m3 = planned(spec, mix("q3_k_m"));
  for (uint32_t l = 0; l < 48; ++l) {
    EXPECT_EQ(m3.at(blk(l, "attn_v")), l < 2 ? T::Q5_K : T::Q4_K) << l;
    EXPECT_EQ(m3.at(blk(l, "ffn_down_exps")), l < 3 ? T::Q5_K : T::Q4_K) << l;
    EXPECT_EQ(m3.at(blk(l, "attn_output")), T::Q4_K) << l;
    EXPECT_EQ(m3.at(blk(l, "attn_q")), T::Q3_K) << l;
    EXPECT_EQ(m3.at(blk(l, "ffn_up_exps")), T::Q3_K) << l;
  }
  // Q5_K_S: every matrix Q5_K but the output head.
  for (const auto& [name, type] : planned(spec, mix("q5_k_s"))) {
    if (name != "output.weight" && type != T::F32) {
      EXPECT_EQ(type, T::Q5_K) << name;
    }
  }
}

// Qwen1.5-MoE's shared expert: its down is an ffn_down too (llama.cpp matches the substring).
// Its routed experts are 1408 wide, not a multiple of 256: their downs take the fallbacks.
TEST(FileType, SharedExpertDownFollowsTheDownRule) {
  const convert::ModelSpec spec = convert::make_model_spec("qwen1.5-moe-a2.7b", {});  // 24 layers
  const auto types = planned(spec, mix("q5_k_m"));
  // use_more_bits(l, 24): 0-2, 21-23, and 5, 8, ..., 20.
  for (uint32_t l : {0u, 2u, 5u, 8u, 20u, 21u, 23u}) {
    EXPECT_EQ(types.at(blk(l, "ffn_down_shexp")), T::Q6_K) << l;
    EXPECT_EQ(types.at(blk(l, "ffn_down_exps")), T::Q8_0) << l;  // Q6_K -> Q8_0
  }
  for (uint32_t l : {3u, 4u, 6u, 19u}) {
    EXPECT_EQ(types.at(blk(l, "ffn_down_shexp")), T::Q5_K) << l;
    EXPECT_EQ(types.at(blk(l, "ffn_up_shexp")), T::Q5_K) << l;
    EXPECT_EQ(types.at(blk(l, "ffn_down_exps")), T::Q5_1) << l;  // Q5_K -> Q5_1
  }
  EXPECT_EQ(types.at(blk(0, "ffn_gate_inp_shexp")), T::F32);
}

// 70B dense models: attn_v in Q3_K or Q4_K goes to Q5_K (8 heads share it).
TEST(FileType, SeventyBAttnV) {
  convert::MakeModelOverrides o;
  o.n_layer = 80;
  o.n_embd = 256;
  o.n_ff = 256;
  o.n_head = 8;
  o.n_head_kv = 2;
  const convert::ModelSpec llama = convert::make_model_spec("tiny-llama", o);
  const auto types = planned(llama, mix("q4_k_m"));
  for (uint32_t l = 0; l < 80; ++l) EXPECT_EQ(types.at(blk(l, "attn_v")), l < 10 || l >= 70 || (l - 10) % 3 == 2 ? T::Q6_K : T::Q5_K) << l;
  o.n_head_kv = 8;  // as many KV heads as heads: the 65B, not a 70B
  const auto mha = planned(convert::make_model_spec("tiny-llama", o), mix("q4_k_m"));
  EXPECT_EQ(mha.at(blk(11, "attn_v")), T::Q4_K);
  o.n_layer = 79;
  o.n_head_kv = 2;
  EXPECT_EQ(planned(convert::make_model_spec("tiny-llama", o), mix("q3_k_s")).at(blk(11, "attn_v")), T::Q3_K);
}

// Rows that are not a multiple of the chosen type's block take llama-quantize's fallbacks.
TEST(FileType, ShortRowsTakeLlamaQuantizesFallbacks) {
  convert::MakeModelOverrides o;
  o.n_ff = 48;  // expert width: ffn_down rows of 48, not a multiple of 32
  const convert::ModelSpec spec = convert::make_model_spec("tiny-qwen3moe", o);  // 64 wide, 3 layers
  std::vector<std::string> notes;
  const auto types = planned(spec, mix("q4_k_m"), &notes);
  EXPECT_EQ(types.at("token_embd.weight"), T::Q5_0);  // Q4_K -> Q5_0
  EXPECT_EQ(types.at("output.weight"), T::Q8_0);      // the output rule itself for short rows
  EXPECT_EQ(types.at(blk(0, "attn_q")), T::Q5_0);
  EXPECT_EQ(types.at(blk(0, "attn_v")), T::Q5_0);
  EXPECT_EQ(types.at(blk(2, "attn_v")), T::Q8_0);     // Q6_K (use_more_bits(2, 3)) -> Q8_0
  EXPECT_EQ(types.at(blk(0, "attn_output")), T::Q5_0);  // rows of 128
  EXPECT_EQ(types.at(blk(0, "ffn_down_exps")), T::F16);  // rows of 48: neither Q4_K's nor Q5_0's block
  EXPECT_EQ(types.at(blk(2, "ffn_down_exps")), T::F16);  // nor Q6_K's or Q8_0's
  EXPECT_EQ(types.at(blk(0, "ffn_gate_exps")), T::Q5_0);
  bool noted = false;
  for (const std::string& n : notes) noted |= n.find("token_embd.weight") != std::string::npos && n.find("q5_0") != std::string::npos;
  EXPECT_TRUE(noted) << "the fallback is reported";
  const auto s3 = planned(spec, mix("q3_k_s"));
  EXPECT_EQ(s3.at(blk(0, "attn_q")), T::IQ4_NL);  // Q3_K -> IQ4_NL
  const auto k5 = planned(spec, mix("q5_k_s"));
  EXPECT_EQ(k5.at(blk(0, "attn_q")), T::Q5_1);  // Q5_K -> Q5_1
}

// Tied output: token_embd is the output head and takes its rule.
TEST(FileType, TiedEmbeddingTakesTheOutputRule) {
  convert::MakeModelOverrides o;
  o.n_embd = 256;
  o.n_ff = 256;
  convert::ModelSpec spec = convert::make_model_spec("tiny-qwen3", o);
  spec.tied_output = true;
  const auto types = planned(spec, mix("q4_k_m"));
  EXPECT_EQ(types.count("output.weight"), 0u);
  EXPECT_EQ(types.at("token_embd.weight"), T::Q6_K);
  EXPECT_EQ(types.at(blk(0, "ffn_down")), T::Q4_K);  // dense downs: use_more_bits(l, 2) for l = 1
  EXPECT_EQ(types.at(blk(1, "ffn_down")), T::Q6_K);
  EXPECT_EQ(types.at(blk(1, "ffn_gate")), T::Q4_K);
}

// `--tensor-type` rules win over the mix's choice.
TEST(FileType, RulesOverrideTheMix) {
  const convert::ModelSpec spec = convert::make_model_spec("qwen3-30b-a3b", {});
  const auto types = planned(spec, mix("q4_k_m"), nullptr,
                             convert::TypeRules::parse({"ffn_down_exps=q8_0", "^output\\.weight$=q5_k"}));
  EXPECT_EQ(types.at(blk(0, "ffn_down_exps")), T::Q8_0);
  EXPECT_EQ(types.at(blk(7, "ffn_down_exps")), T::Q8_0);
  EXPECT_EQ(types.at("output.weight"), T::Q5_K);
  EXPECT_EQ(types.at(blk(0, "attn_v")), T::Q6_K);  // untouched by the rules
}

// The written file: general.file_type 15, the planned types, and `moevk info`'s name for it.
TEST(FileType, WrittenFileCarriesTheMix) {
  test::ScratchDir dir("type_mix");
  const std::string path = dir.file("q4km.gguf");
  convert::MakeModelOverrides o;
  o.n_embd = 256;
  o.n_ff = 256;
  const convert::ModelSpec spec = convert::make_model_spec("tiny-qwen3moe", o);
  convert::make_model(spec, mix("q4_k_m"), path, 5, false, {});
  const auto file = gguf::File::open(path);
  EXPECT_EQ(file->get_uint("general.file_type"), 15u);
  const auto types = planned(spec, mix("q4_k_m"));
  for (const gguf::TensorInfo& t : file->tensors()) EXPECT_EQ(t.type, types.at(t.name)) << t.name;
  // use_more_bits(l, 3) holds for the last layer only (3 / 8 = 0, 7 * 3 / 8 = 2).
  EXPECT_EQ(file->find_tensor("blk.0.ffn_down_exps.weight")->type, T::Q4_K);
  EXPECT_EQ(file->find_tensor("blk.2.ffn_down_exps.weight")->type, T::Q6_K);
  EXPECT_EQ(file->find_tensor("blk.2.attn_v.weight")->type, T::Q6_K);
  const std::string json = model::file_info_json(*file);
  EXPECT_NE(json.find("\"name\": \"Q4_K_M\""), std::string::npos) << json.substr(0, 400);
}
