// Hyperparameters read from GGUF (converted fixtures and hand-made headers with one thing wrong),
// the model summary against hand computations, and random-weight model files.
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.hpp"
#include "convert/convert.hpp"
#include "gguf/convert_test_util.hpp"
#include "gguf/gguf.hpp"
#include "models/hparams.hpp"

namespace moevk {
namespace {

using model::HParams;
using test::ScratchDir;

HParams hparams_of_fixture(const std::string& fixture) {
  ScratchDir dir("hparams");
  const std::string out = dir.file("m.gguf");
  convert::convert_hf(test::hf_fixture(fixture), out, quant::Type::F16, {});
  return model::read_hparams(*gguf::File::open(out));
}

TEST(HParams, MixtralFixture) {
  const HParams hp = hparams_of_fixture("mixtral-tiny");
  EXPECT_EQ(hp.arch, "llama");
  EXPECT_EQ(hp.n_vocab, 384u);
  EXPECT_EQ(hp.n_ctx_train, 256u);
  EXPECT_EQ(hp.n_embd, 64u);
  EXPECT_EQ(hp.n_layer, 2u);
  EXPECT_EQ(hp.n_head, 4u);
  EXPECT_EQ(hp.n_head_kv, 2u);
  EXPECT_EQ(hp.head_dim, 16u);
  EXPECT_EQ(hp.n_rot, 16u);
  EXPECT_EQ(hp.n_ff_exp, 96u);
  EXPECT_EQ(hp.n_expert, 8u);
  EXPECT_EQ(hp.n_expert_used, 2u);
  EXPECT_FLOAT_EQ(hp.norm_eps, 1e-5f);
  EXPECT_FLOAT_EQ(hp.rope_freq_base, 1e6f);
  EXPECT_EQ(hp.rope_type, model::RopeType::NORM);
  EXPECT_TRUE(hp.expert_weights_norm);
  EXPECT_FALSE(hp.has_shared_expert);
  EXPECT_FALSE(hp.qkv_bias);
  EXPECT_FALSE(hp.qk_norm);
  EXPECT_FALSE(hp.tied_output);
  EXPECT_TRUE(hp.is_moe(0) && hp.is_moe(1) && !hp.is_moe(2));
}

TEST(HParams, Qwen2MoeFixture) {
  const HParams hp = hparams_of_fixture("qwen2moe-tiny");
  EXPECT_EQ(hp.arch, "qwen2moe");
  EXPECT_EQ(hp.rope_type, model::RopeType::NEOX);
  EXPECT_EQ(hp.n_ff_exp, 32u);
  EXPECT_EQ(hp.n_ff_shexp, 96u);
  EXPECT_EQ(hp.n_expert, 12u);
  EXPECT_EQ(hp.n_expert_used, 4u);
  EXPECT_FALSE(hp.expert_weights_norm);  // norm_topk_prob false
  EXPECT_TRUE(hp.has_shared_expert);
  EXPECT_TRUE(hp.qkv_bias);
  EXPECT_FALSE(hp.qk_norm);
  EXPECT_FLOAT_EQ(hp.norm_eps, 1e-6f);
}

TEST(HParams, Qwen3MoeFixture) {
  const HParams hp = hparams_of_fixture("qwen3moe-tiny");
  EXPECT_EQ(hp.arch, "qwen3moe");
  EXPECT_EQ(hp.n_layer, 3u);
  EXPECT_EQ(hp.head_dim, 32u);  // != n_embd / n_head = 16
  EXPECT_EQ(hp.n_embd_q(), 128u);
  EXPECT_EQ(hp.n_embd_k_gqa(), 64u);
  EXPECT_EQ(hp.n_expert, 16u);
  EXPECT_TRUE(hp.expert_weights_norm);
  EXPECT_TRUE(hp.qk_norm);
  EXPECT_FALSE(hp.qkv_bias);
  EXPECT_FALSE(hp.has_shared_expert);
  EXPECT_EQ(hp.rope_type, model::RopeType::NEOX);
}

// A header-only llama/Mixtral-style file; `edit` changes the metadata before writing.
struct HeaderSpec {
  std::string arch = "llama";
  std::map<std::string, uint32_t> u32 = {
      {"block_count", 1}, {"embedding_length", 64}, {"context_length", 128}, {"attention.head_count", 4},
      {"attention.head_count_kv", 2}, {"feed_forward_length", 96}, {"expert_count", 8}, {"expert_used_count", 2},
      {"vocab_size", 300}};
  std::optional<bool> weights_norm;
};

std::unique_ptr<gguf::File> write_header(const ScratchDir& dir, const HeaderSpec& h) {
  const std::string path = dir.file("h.gguf");
  {
    gguf::Writer w(path);
    w.set_string("general.architecture", h.arch);
    for (const auto& [k, v] : h.u32) w.set_uint32(h.arch + "." + k, v);
    if (h.weights_norm) w.set_bool(h.arch + ".expert_weights_norm", *h.weights_norm);
    w.add_tensor("blk.0.ffn_gate_inp.weight", {64, 8}, quant::Type::F32);
    w.begin_data();
    std::vector<float> zeros(64 * 8, 0.0f);
    w.write_data(zeros.data(), zeros.size() * 4);
    w.finish();
  }
  return gguf::File::open(path);
}

void expect_hparams_error(const HeaderSpec& h, moevk_status status, const std::string& fragment) {
  ScratchDir dir("hparams_bad");
  auto file = write_header(dir, h);
  try {
    model::read_hparams(*file);
    FAIL() << "accepted; expected '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), status) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(HParams, HandWrittenHeader) {
  ScratchDir dir("hparams_ok");
  HeaderSpec h;
  auto file = write_header(dir, h);
  const HParams hp = model::read_hparams(*file);
  EXPECT_EQ(hp.head_dim, 16u);
  EXPECT_EQ(hp.n_ff_exp, 96u);  // Mixtral: expert width in feed_forward_length
  EXPECT_FLOAT_EQ(hp.norm_eps, 1e-5f);
  EXPECT_FLOAT_EQ(hp.rope_freq_base, 10000.0f);
  EXPECT_TRUE(hp.expert_weights_norm);
  EXPECT_TRUE(hp.tied_output);
  h.weights_norm = false;
  EXPECT_FALSE(model::read_hparams(*write_header(dir, h)).expert_weights_norm);
  HeaderSpec q = h;
  q.arch = "qwen2moe";
  q.weights_norm.reset();
  q.u32["expert_feed_forward_length"] = 32;
  const HParams qp = model::read_hparams(*write_header(dir, q));
  EXPECT_FALSE(qp.expert_weights_norm);
  EXPECT_EQ(qp.n_ff_exp, 32u);
  q.arch = "qwen3moe";
  EXPECT_TRUE(model::read_hparams(*write_header(dir, q)).expert_weights_norm);
}

TEST(HParams, RejectsBadHeaders) {
  HeaderSpec h;
  h.u32.erase("block_count");
  expect_hparams_error(h, MOEVK_ERROR_INVALID_FILE, "llama.block_count");
  h = HeaderSpec{};
  h.u32["attention.head_count_kv"] = 3;
  expect_hparams_error(h, MOEVK_ERROR_INVALID_FILE, "head_count_kv");
  h = HeaderSpec{};
  h.u32["expert_used_count"] = 9;
  expect_hparams_error(h, MOEVK_ERROR_INVALID_FILE, "expert_used_count");
  h = HeaderSpec{};
  h.u32["block_count"] = 1000000;
  expect_hparams_error(h, MOEVK_ERROR_INVALID_FILE, "out of range");
  h = HeaderSpec{};
  h.u32["embedding_length"] = 0;
  expect_hparams_error(h, MOEVK_ERROR_INVALID_FILE, "embedding_length");
  h = HeaderSpec{};
  h.u32.erase("expert_count");
  expect_hparams_error(h, MOEVK_ERROR_INVALID_FILE, "expert_count");  // router present, no experts
  h = HeaderSpec{};
  h.arch = "gpt2";
  expect_hparams_error(h, MOEVK_ERROR_UNSUPPORTED, "gpt2");
}

TEST(ModelInfo, TinyQ8_0MatchesHandComputation) {
  // tiny: 2 layers, embd 64, 4 heads / 2 kv (head dim 16), 8 experts of width 128, top-2,
  // vocab 512, context 512. Q8_0 rows: 34 bytes per 32 values.
  const convert::ModelSpec spec = convert::make_model_spec("tiny", {});
  ScratchDir dir("info");
  const std::string out = dir.file("tiny.gguf");
  const model::ModelInfo planned = convert::make_model(spec, quant::Type::Q8_0, out, 3, false, {});
  const model::ModelInfo info = model::describe(*gguf::File::open(out));

  auto q8_bytes = [&](uint64_t n) { return n / 32 * 34; };
  const uint64_t embd_bytes = 512 * q8_bytes(64);
  const uint64_t attn_bytes = q8_bytes(64 * 64) * 2 + q8_bytes(64 * 32) * 2;  // q, o, k, v
  const uint64_t norms_bytes = 2 * 64 * 4;
  const uint64_t router_bytes = 64 * 8 * 4;
  const uint64_t experts_bytes = 3 * 8 * q8_bytes(64 * 128);
  EXPECT_EQ(info.weight_bytes, 2 * embd_bytes + 64 * 4 + 2 * (attn_bytes + norms_bytes + router_bytes + experts_bytes));
  EXPECT_EQ(info.active_bytes_per_token,
            q8_bytes(64) + embd_bytes + 64 * 4 + 2 * (attn_bytes + norms_bytes + router_bytes + experts_bytes / 4));
  const uint64_t layer_dense_params = 2 * 64 + 64 * 64 * 2 + 64 * 32 * 2 + 64 * 8;
  const uint64_t layer_expert_params = 3 * 8 * 64 * 128;
  EXPECT_EQ(info.total_params, 2 * 512 * 64 + 64 + 2 * (layer_dense_params + layer_expert_params));
  EXPECT_EQ(info.expert_params, 2 * layer_expert_params);
  EXPECT_EQ(info.active_params, 64 + 512 * 64 + 64 + 2 * (layer_dense_params + layer_expert_params / 4));
  EXPECT_EQ(info.kv_bytes_per_token, 2u * (2 * 16 + 2 * 16) * 2);
  EXPECT_EQ(info.kv_bytes_full_context, info.kv_bytes_per_token * 512);
  EXPECT_EQ(info.n_tensors, 3u + 2 * 10);
  ASSERT_EQ(info.by_type.size(), 2u);
  EXPECT_EQ(info.by_type[0].type, quant::Type::Q8_0);
  EXPECT_EQ(info.by_type[1].type, quant::Type::F32);
  EXPECT_EQ(info.by_type[1].tensors, 1u + 2 * 3);  // output_norm; per layer 2 norms + router
  // The dry-run plan and the written file agree.
  EXPECT_EQ(planned.weight_bytes, info.weight_bytes);
  EXPECT_EQ(planned.active_bytes_per_token, info.active_bytes_per_token);
  EXPECT_EQ(planned.total_params, info.total_params);
  // The JSON carries the same numbers.
  const auto j = nlohmann::json::parse(model::model_info_json(info));
  EXPECT_EQ(j["weight_bytes"].get<uint64_t>(), info.weight_bytes);
  EXPECT_EQ(j["hparams"]["n_expert"].get<uint32_t>(), 8u);
}

TEST(ModelInfo, Mixtral8x7bDryRun) {
  const convert::ModelSpec spec = convert::make_model_spec("mixtral-8x7b", {});
  const model::ModelInfo info = convert::make_model(spec, quant::Type::Q4_0, "", 1, true, {});
  const uint64_t e = 4096, v = 32000, ff = 14336, kv = 1024;
  const uint64_t layer_dense = 2 * e + 2 * e * e + 2 * e * kv + e * 8;
  EXPECT_EQ(info.total_params, 2 * v * e + e + 32 * (layer_dense + 3 * e * ff * 8));
  EXPECT_EQ(info.total_params, 46702792704ull);  // "46.7B"
  EXPECT_EQ(info.active_params, e + v * e + e + 32 * (layer_dense + 3 * e * ff * 2));
  EXPECT_EQ(info.kv_bytes_per_token, 32u * 2 * kv * 2);
  auto q4 = [](uint64_t n) { return n / 32 * 18; };
  EXPECT_EQ(info.weight_bytes,
            2 * q4(v * e) + e * 4 + 32 * (2 * e * 4 + 2 * q4(e * e) + 2 * q4(e * kv) + e * 8 * 4 + 3 * q4(e * ff * 8)));
}

TEST(MakeModel, TinyPresetsWriteValidDeterministicFiles) {
  ScratchDir dir("make_model");
  for (const char* preset : {"tiny", "tiny-qwen2moe", "tiny-qwen3moe"}) {
    SCOPED_TRACE(preset);
    const convert::ModelSpec spec = convert::make_model_spec(preset, {});
    const std::string a = dir.file("a.gguf"), b = dir.file("b.gguf"), c = dir.file("c.gguf");
    convert::make_model(spec, quant::Type::Q4_0, a, 42, false, {});
    convert::make_model(spec, quant::Type::Q4_0, b, 42, false, {});
    convert::make_model(spec, quant::Type::Q4_0, c, 43, false, {});
    EXPECT_EQ(test::read_bytes(a), test::read_bytes(b));
    EXPECT_NE(test::read_bytes(a), test::read_bytes(c));
    auto file = gguf::File::open(a);
    const HParams hp = model::read_hparams(*file);
    EXPECT_EQ(hp.arch, spec.arch);
    EXPECT_EQ(hp.n_layer, spec.n_layer);
    EXPECT_EQ(hp.n_expert, spec.n_expert);
    EXPECT_EQ(hp.has_shared_expert, spec.n_ff_shexp > 0);
    EXPECT_EQ(hp.qk_norm, spec.qk_norm);
    EXPECT_EQ(file->tensors().size(), convert::tensor_layout(spec).size());
    // Value laws: matrices ~ N(0, 0.02^2), norms around 1.
    const gguf::TensorInfo* q = file->find_tensor("blk.0.attn_q.weight");
    ASSERT_NE(q, nullptr);
    std::vector<float> all(q->elements());
    quant::dequantize(q->type, file->tensor_data(*q).data(), all.data(), all.size());
    double sum = 0, sq = 0;
    for (float x : all) sum += x, sq += double(x) * x;
    const double mean = sum / all.size(), sd = std::sqrt(sq / all.size() - mean * mean);
    EXPECT_NEAR(mean, 0.0, 0.003);
    EXPECT_NEAR(sd, 0.02, 0.003);
    const gguf::TensorInfo* norm = file->find_tensor("blk.1.ffn_norm.weight");
    const float* nv = reinterpret_cast<const float*>(file->tensor_data(*norm).data());
    double norm_mean = 0;
    for (uint64_t i = 0; i < norm->elements(); ++i) norm_mean += nv[i];
    EXPECT_NEAR(norm_mean / norm->elements(), 1.0, 0.05);
  }
}

// Every type convert and make-model accept (the CPU can quantize to it) has a general.file_type,
// so no write fails at the metadata after the type was accepted (q5_k and iq4_nl once did).
TEST(MakeModel, EveryWritableTypeHasALlamaCppFileType) {
  for (uint32_t id = 0; id < 64; ++id) {
    const quant::TypeInfo* info = quant::type_info(id);
    if (!info || !info->can_quantize) continue;
    EXPECT_NO_THROW(quant::file_type_id(info->type)) << info->name;
  }
  EXPECT_EQ(quant::file_type_id(quant::Type::Q5_K), 16u);    // LLAMA_FTYPE_MOSTLY_Q5_K_S
  EXPECT_EQ(quant::file_type_id(quant::Type::IQ4_NL), 25u);  // LLAMA_FTYPE_MOSTLY_IQ4_NL
  EXPECT_EQ(quant::file_type_id(quant::Type::Q2_K), 10u);    // LLAMA_FTYPE_MOSTLY_Q2_K
  EXPECT_EQ(quant::file_type_id(quant::Type::Q3_K), 11u);    // LLAMA_FTYPE_MOSTLY_Q3_K_S
  EXPECT_EQ(quant::file_type_id(quant::Type::IQ4_XS), 30u);  // LLAMA_FTYPE_MOSTLY_IQ4_XS
  EXPECT_EQ(quant::file_type_id(quant::Type::IQ2_XXS), 19u);  // LLAMA_FTYPE_MOSTLY_IQ2_XXS
  EXPECT_EQ(quant::file_type_id(quant::Type::IQ1_M), 31u);    // LLAMA_FTYPE_MOSTLY_IQ1_M
  EXPECT_THROW(quant::file_type_id(quant::Type::TQ2_0), Error);
}

TEST(MakeModel, OverridesAndBadShapes) {
  convert::MakeModelOverrides o;
  o.n_layer = 3;
  o.n_embd = 128;
  o.n_head = 8;
  o.n_ff = 64;
  const convert::ModelSpec s = convert::make_model_spec("tiny", o);
  EXPECT_EQ(s.n_layer, 3u);
  EXPECT_EQ(s.head_dim, 16u);  // derived: 128 / 8
  EXPECT_EQ(s.n_ff_exp, 64u);
  EXPECT_EQ(s.n_ff, 64u);  // Mixtral files keep the expert width in feed_forward_length
  o = {};
  o.n_head = 3;  // 3 heads over 2 kv heads
  EXPECT_THROW(convert::make_model_spec("tiny", o), Error);
  o = {};
  o.n_expert_used = 9;
  EXPECT_THROW(convert::make_model_spec("tiny", o), Error);
  EXPECT_THROW(convert::make_model_spec("no-such-preset", {}), Error);
  // A Q4_K file of tiny: every row (64 or 128) is short of the 256 block -> Q8_0, reported.
  ScratchDir dir("make_model_q4k");
  std::vector<std::string> notes;
  convert::WriteCallbacks cb;
  cb.log = [&](const std::string& n) { notes.push_back(n); };
  convert::make_model(convert::make_model_spec("tiny", {}), quant::Type::Q4_K, dir.file("k.gguf"), 1, false, cb);
  EXPECT_EQ(notes.size(), 2u + 2 * 7);  // token_embd, output; per layer q k v o gate up down
  auto file = gguf::File::open(dir.file("k.gguf"));
  EXPECT_EQ(file->find_tensor("blk.0.ffn_down_exps.weight")->type, quant::Type::Q8_0);
}

TEST(ModelInfo, ExpertTensorNamesAndTiedOutput) {
  EXPECT_TRUE(model::is_routed_expert_tensor("blk.3.ffn_gate_exps.weight"));
  EXPECT_TRUE(model::is_routed_expert_tensor("blk.3.ffn_down_exps.weight"));
  EXPECT_TRUE(model::is_routed_expert_tensor("blk.0.ffn_up.7.weight"));  // older per-expert Mixtral
  EXPECT_FALSE(model::is_routed_expert_tensor("blk.0.ffn_up.weight"));   // dense FFN
  EXPECT_FALSE(model::is_routed_expert_tensor("blk.0.ffn_up_shexp.weight"));
  EXPECT_FALSE(model::is_routed_expert_tensor("blk.0.ffn_gate_inp.weight"));
  EXPECT_FALSE(model::is_routed_expert_tensor("token_embd.weight"));
  // Tied output: the whole embedding is read per token (it is the output matrix).
  HParams hp;
  hp.n_layer = 1;
  hp.n_expert = 4;
  hp.n_expert_used = 1;
  hp.tied_output = true;
  const std::vector<model::TensorShape> shapes = {
      {"token_embd.weight", {8, 100}, quant::Type::F32, 8 * 100 * 4},
      {"blk.0.ffn_gate.0.weight", {8, 16}, quant::Type::F32, 8 * 16 * 4},
      {"blk.0.ffn_gate.1.weight", {8, 16}, quant::Type::F32, 8 * 16 * 4},
      {"blk.0.ffn_gate.2.weight", {8, 16}, quant::Type::F32, 8 * 16 * 4},
      {"blk.0.ffn_gate.3.weight", {8, 16}, quant::Type::F32, 8 * 16 * 4}};
  const model::ModelInfo info = model::describe(hp, shapes);
  EXPECT_EQ(info.total_params, 800u + 4 * 128);
  EXPECT_EQ(info.active_params, 800u + 128);
  EXPECT_EQ(info.active_bytes_per_token, (800u + 128) * 4);
  hp.tied_output = false;
  EXPECT_EQ(model::describe(hp, shapes).active_params, 8u + 128);
}

}  // namespace
}  // namespace moevk
