// Model::load rejections (wrong shape, unsupported type) and the layouts the loader accepts
// beyond our converter's: the older per-expert Mixtral tensors (stacked at load) and mixed
// dense/MoE layer stacks, for every architecture family.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>

#include "common/error.hpp"
#include "convert/convert.hpp"
#include "e2e/cpu_reference.hpp"
#include "e2e/e2e_support.hpp"
#include "generate/session.hpp"
#include "gguf/gguf.hpp"
#include "models/model.hpp"
#include "moevk.h"
#include "support/weights.hpp"

using namespace moevk;
using generate::LogitsMode;
using generate::Session;
using generate::SessionOptions;

namespace {

// A tensor of the rewritten file: name, dims, type and bytes.
struct OutTensor {
  std::string name;
  std::vector<uint64_t> dims;
  quant::Type type;
  std::vector<uint8_t> data;
};

// Rewrites a GGUF: `edit` may replace, drop or add tensors (given all of the source's).
void rewrite(const std::string& from, const std::string& to,
             const std::function<void(std::vector<OutTensor>&)>& edit) {
  auto file = gguf::File::open(from);
  std::vector<OutTensor> tensors;
  for (const gguf::TensorInfo& t : file->tensors()) {
    auto d = file->tensor_data(t);
    tensors.push_back({t.name, t.dims, t.type, std::vector<uint8_t>(d.begin(), d.end())});
  }
  edit(tensors);
  gguf::Writer w(to, file->alignment());
  for (const gguf::KeyValue& kv : file->metadata())
    if (kv.key != "general.alignment") w.set_value(kv.key, kv.value);
  for (const OutTensor& t : tensors) w.add_tensor(t.name, t.dims, t.type);
  w.begin_data();
  for (const OutTensor& t : tensors) w.write_data(t.data.data(), t.data.size());
  w.finish();
}

// t's data replaced by random blocks of its (new) type, every bit pattern of the quants.
void randomize(OutTensor& t, uint32_t seed) {
  uint64_t rows = 1;
  for (size_t d = 1; d < t.dims.size(); ++d) rows *= t.dims[d];
  t.data = test::random_weights(t.type, uint32_t(rows), uint32_t(t.dims[0]), seed, test::WeightSource::RandomBytes);
  t.data.resize(quant::row_bytes(t.type, t.dims[0]) * rows);
}

moevk_status load_status(const std::string& path, std::string* message) {
  try {
    models::Model::load(path, test::e2e_load_options());
  } catch (const Error& e) {
    *message = e.what();
    return e.status();
  }
  return MOEVK_OK;
}

std::vector<float> prompt_logits(const models::Model& model, const std::vector<int32_t>& prompt, uint32_t n_batch) {
  Session s(model, SessionOptions{64, n_batch, false});
  s.decode(prompt, LogitsMode::All);
  std::vector<float> out;
  for (size_t i = 0; i < prompt.size(); ++i) {
    auto row = s.logits(int32_t(i));
    out.insert(out.end(), row.begin(), row.end());
  }
  return out;
}

const std::vector<int32_t> kPrompt = {1, 17, 300, 42, 5, 99, 250, 3, 77, 128, 64};

}  // namespace

TEST(ModelLoad, WrongShapeNamesTensorExpectedAndActual) {
  test::TempFile good("load-good.gguf"), bad("load-shape.gguf");
  convert::convert_hf(test::hf_fixture_dir("mixtral-tiny"), good.path(), quant::Type::F32, {});
  rewrite(good.path(), bad.path(), [](std::vector<OutTensor>& ts) {
    for (OutTensor& t : ts)
      if (t.name == "blk.0.attn_k.weight") {  // [64, 32] -> [64, 16]
        t.dims = {64, 16};
        t.data.resize(64 * 16 * 4);
      }
  });
  std::string message;
  EXPECT_EQ(load_status(bad.path(), &message), MOEVK_ERROR_INVALID_FILE);
  EXPECT_NE(message.find("blk.0.attn_k.weight"), std::string::npos) << message;
  EXPECT_NE(message.find("[64, 16]"), std::string::npos) << message;
  EXPECT_NE(message.find("[64, 32]"), std::string::npos) << message;
}

TEST(ModelLoad, UnsupportedWeightTypeNamesTensorAndType) {
  test::TempFile good("load-good2.gguf"), bad("load-type.gguf");
  convert::convert_hf(test::hf_fixture_dir("mixtral-tiny"), good.path(), quant::Type::F32, {});
  // Block formats the reader knows (the file opens and is described) but no GPU kernel reads:
  // q8_1, and ggml types moevk had rejected as unknown before (mxfp4, i8, tq1_0 / tq2_0 below).
  for (quant::Type type : {quant::Type::Q8_1, quant::Type::MXFP4, quant::Type::I8}) {
    const char* type_name = quant::type_info(type).name;
    SCOPED_TRACE(type_name);
    rewrite(good.path(), bad.path(), [type](std::vector<OutTensor>& ts) {
      for (OutTensor& t : ts)
        if (t.name == "blk.1.attn_q.weight") {  // [64, 64]
          t.type = type;
          t.data.assign(quant::row_bytes(type, 64) * 64, 0);
        }
    });
    char* json = nullptr;
    ASSERT_EQ(moevk_inspect_json(bad.path().c_str(), &json), MOEVK_OK) << moevk_last_error();
    const auto info = nlohmann::json::parse(json);
    moevk_free_string(json);
    bool described = false;
    for (const auto& t : info["tensors"])
      if (t["name"] == "blk.1.attn_q.weight")
        described = t["type"] == type_name && t["bytes"] == quant::row_bytes(type, 64) * 64;
    EXPECT_TRUE(described) << info["tensors"].dump();
    std::string message;
    EXPECT_EQ(load_status(bad.path(), &message), MOEVK_ERROR_UNSUPPORTED);
    EXPECT_NE(message.find("blk.1.attn_q.weight"), std::string::npos) << message;
    EXPECT_NE(message.find(std::string("weight type ") + type_name), std::string::npos) << message;
  }
}

// A 256-wide model, so that the 256-element i-quant and ternary blocks fit its rows.
TEST(ModelLoad, UnsupportedSuperBlockTypesNameTensorAndType) {
  convert::MakeModelOverrides o;
  o.n_embd = 256;
  o.n_head = 4;
  o.n_head_kv = 2;
  test::TempFile good("load-good-256.gguf"), bad("load-type-256.gguf");
  convert::make_model(convert::make_model_spec("tiny-qwen3moe", o), quant::Type::Q8_0, good.path(), 1, false, {});
  for (quant::Type type : {quant::Type::TQ1_0, quant::Type::TQ2_0}) {
    const char* type_name = quant::type_info(type).name;
    SCOPED_TRACE(type_name);
    rewrite(good.path(), bad.path(), [type](std::vector<OutTensor>& ts) {
      for (OutTensor& t : ts)
        if (t.name == "blk.0.ffn_up_exps.weight") {
          t.type = type;
          t.data.assign(quant::row_bytes(type, t.dims[0]) * t.dims[1] * t.dims[2], 0);
        }
    });
    char* json = nullptr;
    ASSERT_EQ(moevk_inspect_json(bad.path().c_str(), &json), MOEVK_OK) << moevk_last_error();
    EXPECT_NE(std::string(json).find(std::string("\"") + type_name + "\""), std::string::npos);
    moevk_free_string(json);
    std::string message;
    EXPECT_EQ(load_status(bad.path(), &message), MOEVK_ERROR_UNSUPPORTED);
    EXPECT_NE(message.find("blk.0.ffn_up_exps.weight"), std::string::npos) << message;
    EXPECT_NE(message.find(std::string("weight type ") + type_name), std::string::npos) << message;
  }
}

// --type q5_k and --type iq4_nl: the file carries llama.cpp's file type (LLAMA_FTYPE_MOSTLY_Q5_K_S
// = 16, _IQ4_NL = 25), every matrix of a 256-wide model takes the type, and the model loads and
// computes what the CPU reference computes from the same file.
TEST(ModelLoad, Q5_KAndIQ4_NLFilesWriteAndReload) {
  convert::MakeModelOverrides o;
  o.n_embd = 256;
  o.n_ff = 256;
  for (auto [type, file_type] : {std::pair{quant::Type::Q5_K, 16u}, std::pair{quant::Type::IQ4_NL, 25u}}) {
    SCOPED_TRACE(quant::type_info(type).name);
    test::TempFile path(std::string("write-") + quant::type_info(type).name + ".gguf");
    convert::make_model(convert::make_model_spec("tiny", o), type, path.path(), 5, false, {});
    {
      auto file = gguf::File::open(path.path());
      EXPECT_EQ(file->get_uint("general.file_type"), file_type);
      for (const gguf::TensorInfo& t : file->tensors()) {
        if (t.dims.size() >= 2 && t.name.find("gate_inp") == std::string::npos) {
          EXPECT_EQ(t.type, type) << t.name;
        }
      }
    }
    models::LoadOptions plain = test::e2e_load_options();
    plain.device.disable = "dot";
    auto model = models::Model::load(path.path(), plain);
    const std::vector<float> gpu = prompt_logits(*model, kPrompt, 16);
    const std::vector<double> cpu = test::CpuReference(path.path(), true).forward(kPrompt);
    const std::vector<float> cpu_f(cpu.begin(), cpu.end());
    EXPECT_LE(test::relative_l2_error(gpu.data(), cpu_f.data(), gpu.size()), 3e-4);
  }
}

// The super-block types of published Q2_K, Q3_K_M and IQ4_XS files: a 256-wide tiny-qwen3moe
// whose expert tensors and q/k/v are rewritten as Q3_K or Q2_K, and its attention output,
// embedding and output head as IQ4_XS (random blocks with small scales: moevk has readers for
// them, no quantizers), loads and computes what the CPU reference computes from the same file,
// in prefill chunks and one-token steps.
TEST(ModelLoad, Q2_KQ3_KAndIQ4_XSFilesMatchCpuReference) {
  convert::MakeModelOverrides o;
  o.n_embd = 256;
  o.n_ff = 256;
  o.n_head = 4;
  o.n_head_kv = 2;
  o.head_dim = 64;  // attn_output 256 wide: whole IQ4_XS blocks
  test::TempFile q8("load-q3k-source.gguf"), mixed("load-q3k.gguf");
  convert::make_model(convert::make_model_spec("tiny-qwen3moe", o), quant::Type::Q8_0, q8.path(), 13, false, {});
  uint32_t seed = 1, rewritten = 0;
  auto has = [](const std::string& name, const char* part) { return name.find(part) != std::string::npos; };
  rewrite(q8.path(), mixed.path(), [&](std::vector<OutTensor>& ts) {
    for (OutTensor& t : ts) {
      if (t.dims.size() < 2 || t.dims[0] % 256 != 0) continue;
      if (has(t.name, "ffn_down_exps") || has(t.name, "attn_v.weight")) t.type = quant::Type::Q2_K;
      else if (has(t.name, "_exps.weight") || has(t.name, "attn_q.weight") || has(t.name, "attn_k.weight"))
        t.type = quant::Type::Q3_K;
      else if (has(t.name, "attn_output") || t.name == "token_embd.weight" || t.name == "output.weight")
        t.type = quant::Type::IQ4_XS;
      else continue;
      randomize(t, seed++);
      ++rewritten;
    }
  });
  models::LoadOptions plain = test::e2e_load_options();
  plain.device.disable = "dot";  // f32 activations in prefill, as the reference
  auto model = models::Model::load(mixed.path(), plain);
  const models::HParams& hp = model->hparams();
  ASSERT_EQ(rewritten, 7 * hp.n_layer + (hp.tied_output ? 1 : 2));
  const std::vector<double> cpu = test::CpuReference(mixed.path(), true).forward(kPrompt);
  const std::vector<float> cpu_f(cpu.begin(), cpu.end());
  for (uint32_t n_batch : {1u, 4u, 16u}) {
    const std::vector<float> gpu = prompt_logits(*model, kPrompt, n_batch);
    EXPECT_LE(test::relative_l2_error(gpu.data(), cpu_f.data(), gpu.size()), 3e-4) << "n_batch " << n_batch;
  }
  EXPECT_TRUE(model->context().instance().validation_messages().empty());
}

// The types the loader rewrites on the way to the device (ops::to_device_layout: Q4_0, IQ4_NL,
// Q8_0, Q6_K rows with their scales behind their quants), with expert tensors past 1 MiB so
// a staging chunk's rows are rewritten by several threads: the logits match the CPU reference
// of the file's own bytes.
TEST(ModelLoad, RewrittenLayoutsMatchCpuReference) {
  convert::MakeModelOverrides o;
  o.n_embd = 512;
  o.n_ff = 512;  // 8 experts x 512 x 512 Q4_0: 1.18 MB per expert tensor
  o.n_head = 4;
  o.n_head_kv = 2;
  o.head_dim = 128;
  test::TempFile q4("load-split-scales-source.gguf"), mixed("load-split-scales.gguf");
  convert::make_model(convert::make_model_spec("tiny-qwen3moe", o), quant::Type::Q4_0, q4.path(), 17, false, {});
  uint32_t seed = 40, big = 0;
  auto has = [](const std::string& name, const char* part) { return name.find(part) != std::string::npos; };
  rewrite(q4.path(), mixed.path(), [&](std::vector<OutTensor>& ts) {
    for (OutTensor& t : ts) {
      if (t.dims.size() < 2) continue;
      if (has(t.name, "ffn_down_exps")) t.type = quant::Type::Q6_K;
      else if (has(t.name, "attn_v.weight") || has(t.name, "attn_output")) t.type = quant::Type::Q8_0;
      else if (t.name == "token_embd.weight") t.type = quant::Type::IQ4_NL;
      if (t.type == quant::Type::Q4_0 && t.data.size() > (1u << 20)) ++big;
      if (t.type == quant::Type::Q4_0) continue;
      randomize(t, seed++);
      if (t.data.size() > (1u << 20)) ++big;
    }
  });
  models::LoadOptions plain = test::e2e_load_options();
  plain.device.disable = "dot";  // f32 activations in prefill, as the reference
  auto model = models::Model::load(mixed.path(), plain);
  ASSERT_GE(big, 3 * model->hparams().n_layer) << "expert tensors past one threaded rewrite's threshold";
  const std::vector<double> cpu = test::CpuReference(mixed.path(), true).forward(kPrompt);
  const std::vector<float> cpu_f(cpu.begin(), cpu.end());
  for (uint32_t n_batch : {1u, 16u}) {
    const std::vector<float> gpu = prompt_logits(*model, kPrompt, n_batch);
    EXPECT_LE(test::relative_l2_error(gpu.data(), cpu_f.data(), gpu.size()), 3e-4) << "n_batch " << n_batch;
  }
  EXPECT_TRUE(model->context().instance().validation_messages().empty());
}

// Older Mixtral GGUFs store blk.N.ffn_{gate,up,down}.E.weight per expert: stacked at load, the
// model must compute exactly what the merged layout computes.
TEST(ModelLoad, PerExpertTensorsEqualMergedLayout) {
  test::TempFile merged("load-merged.gguf"), split("load-split.gguf");
  convert::convert_hf(test::hf_fixture_dir("mixtral-tiny"), merged.path(), quant::Type::Q8_0, {});
  rewrite(merged.path(), split.path(), [](std::vector<OutTensor>& ts) {
    std::vector<OutTensor> out;
    for (OutTensor& t : ts) {
      const auto pos = t.name.find("_exps.weight");
      if (pos == std::string::npos) {
        out.push_back(std::move(t));
        continue;
      }
      const uint64_t n_expert = t.dims[2], bytes = t.data.size() / n_expert;
      for (uint64_t e = 0; e < n_expert; ++e)
        out.push_back({t.name.substr(0, pos) + "." + std::to_string(e) + ".weight", {t.dims[0], t.dims[1]}, t.type,
                       std::vector<uint8_t>(t.data.begin() + e * bytes, t.data.begin() + (e + 1) * bytes)});
    }
    ts = std::move(out);
  });
  auto a = models::Model::load(merged.path(), test::e2e_load_options());
  auto b = models::Model::load(split.path(), test::e2e_load_options());
  EXPECT_EQ(prompt_logits(*a, kPrompt, 16), prompt_logits(*b, kPrompt, 16));
}

// A split set (gguf-split's NAME-0000i-of-0000N.gguf, as Mixtral-8x22B's published files come)
// loads from its first file and computes exactly what the single file computes; `moevk info`'s
// JSON lists its files; a later file of the set is refused through the C API with the first
// one's name, and a missing one names itself; the process then loads the set again.
TEST(ModelLoad, SplitSetComputesWhatTheSingleFileDoes) {
  test::TempFile single("load-single.gguf");
  convert::convert_hf(test::hf_fixture_dir("mixtral-tiny"), single.path(), quant::Type::Q8_0, {});
  // TempFile names: "<tmp>/moevk-e2e-<pid>-" + name; the set's files are removed at exit.
  const std::string prefix = test::TempFile("load-set").path();
  std::vector<std::unique_ptr<test::TempFile>> files;
  for (uint32_t i = 0; i < 3; ++i)
    files.push_back(std::make_unique<test::TempFile>("load-set" + gguf::split_path("", i, 3)));
  uint64_t n_tensors = 0;
  {
    auto file = gguf::File::open(single.path());
    n_tensors = file->tensors().size();
    const std::vector<std::string> written = gguf::write_split(*file, prefix, {0, n_tensors / 3 + 1});
    ASSERT_EQ(written.size(), 3u);
    for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(written[i], files[i]->path());
  }
  const std::string first = files[0]->path();
  {
    auto a = models::Model::load(single.path(), test::e2e_load_options());
    auto b = models::Model::load(first, test::e2e_load_options());
    EXPECT_EQ(a->weight_bytes(), b->weight_bytes());
    EXPECT_EQ(prompt_logits(*a, kPrompt, 16), prompt_logits(*b, kPrompt, 16));
    EXPECT_TRUE(b->context().instance().validation_messages().empty());
  }
  char* json = nullptr;
  ASSERT_EQ(moevk_inspect_json(first.c_str(), &json), MOEVK_OK) << moevk_last_error();
  const auto info = nlohmann::json::parse(json);
  moevk_free_string(json);
  ASSERT_EQ(info["gguf"]["files"].size(), 3u);
  uint64_t listed = 0, bytes = 0;
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(info["gguf"]["files"][i]["path"], files[i]->path());
    listed += info["gguf"]["files"][i]["n_tensors"].get<uint64_t>();
    bytes += std::filesystem::file_size(files[i]->path());
  }
  EXPECT_EQ(listed, n_tensors);
  EXPECT_EQ(info["gguf"]["file_size"], bytes);
  EXPECT_EQ(info["tensors"].back()["file"], 2);

  moevk_model* model = nullptr;
  EXPECT_EQ(moevk_model_load(files[1]->path().c_str(), nullptr, &model), MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(model, nullptr);
  EXPECT_NE(std::string(moevk_last_error()).find("open the first file, " + first), std::string::npos)
      << moevk_last_error();
  std::filesystem::rename(files[2]->path(), files[2]->path() + ".moved");
  EXPECT_EQ(moevk_model_load(first.c_str(), nullptr, &model), MOEVK_ERROR_IO);
  EXPECT_NE(std::string(moevk_last_error()).find(files[2]->path() + ": cannot open"), std::string::npos)
      << moevk_last_error();
  std::filesystem::rename(files[2]->path() + ".moved", files[2]->path());
  ASSERT_EQ(moevk_model_load(first.c_str(), nullptr, &model), MOEVK_OK) << moevk_last_error();
  moevk_model_free(model);
}

// A Q4_K_M-style file stores attn_v in another type than attn_q/attn_k (Q6_K beside Q4_K): the
// loader still puts a layer's q/k/v and biases in one buffer, and MatMul merges q and k while v
// gets its own dispatch. tiny-qwen2moe (q/k/v biases, a shared expert) with every attn_v
// rewritten to F16: prefill chunks and one-token steps agree with the CPU reference of that file.
TEST(ModelLoad, AttentionProjectionsOfDifferentTypesMatchCpuReference) {
  test::TempFile q8("load-qkv-q8.gguf"), mixed("load-qkv-mixed.gguf");
  convert::make_model(convert::make_model_spec("tiny-qwen2moe", {}), quant::Type::Q8_0, q8.path(), 9, false, {});
  uint32_t rewritten = 0;
  rewrite(q8.path(), mixed.path(), [&](std::vector<OutTensor>& ts) {
    for (OutTensor& t : ts) {
      if (t.name.find("attn_v.weight") == std::string::npos || t.type != quant::Type::Q8_0) continue;
      const uint64_t n = t.dims[0] * t.dims[1];
      std::vector<float> values(n);
      quant::dequantize(t.type, t.data.data(), values.data(), n);
      t.data.assign(n * 2, 0);
      quant::quantize(quant::Type::F16, values.data(), t.data.data(), n);
      t.type = quant::Type::F16;
      ++rewritten;
    }
  });
  auto model = models::Model::load(mixed.path(), test::e2e_load_options());
  ASSERT_EQ(rewritten, model->hparams().n_layer);
  const std::vector<double> cpu = test::CpuReference(mixed.path(), true).forward(kPrompt);
  const std::vector<float> cpu_f(cpu.begin(), cpu.end());
  for (uint32_t n_batch : {1u, 4u}) {
    const std::vector<float> gpu = prompt_logits(*model, kPrompt, n_batch);
    EXPECT_LE(test::relative_l2_error(gpu.data(), cpu_f.data(), gpu.size()), 3e-4) << "n_batch " << n_batch;
  }
  // One dispatch fewer per layer for q and k (v alone), one for the shared expert's gate and up.
  const models::HParams& hp = model->hparams();
  ASSERT_TRUE(hp.qkv_bias && hp.has_shared_expert);
  SessionOptions separate{64, 4, false};
  separate.merge_products = false;
  Session merged(*model, SessionOptions{64, 4, false}), plain(*model, separate);
  const std::vector<int32_t> prompt{1, 17, 300}, next{42};
  for (Session* s : {&merged, &plain}) {
    s->decode(prompt, LogitsMode::Last);
    s->decode(next, LogitsMode::Last);
  }
  EXPECT_EQ(merged.profile().decode.dispatches_per_step + 2 * hp.n_layer, plain.profile().decode.dispatches_per_step);
  EXPECT_TRUE(model->context().instance().validation_messages().empty());
}

// A dense first layer and a MoE second layer, per family: the dense FFN path agrees with the CPU
// reference (f32 activations: int8-activation path off; K/V rounded to fp16 in the reference),
// and chunked prefill agrees with one-shot. Bounds as in hf_reference_test.cpp (fp16-neighbour
// rounding of K/V, measured below 1.2e-4).
class MixedLayers : public ::testing::TestWithParam<std::string> {};

TEST_P(MixedLayers, DenseAndMoeLayersMatchCpuReference) {
  convert::ModelSpec spec = convert::make_model_spec(GetParam(), {});
  spec.layer_is_moe.assign(spec.n_layer, 1);
  spec.layer_is_moe[0] = 0;
  if (spec.n_ff == 0) spec.n_ff = 96;
  test::TempFile path("mixed-" + GetParam() + ".gguf");
  convert::make_model(spec, quant::Type::Q4_0, path.path(), 7, false, {});
  models::LoadOptions plain = test::e2e_load_options();
  plain.device.disable = "dot";
  auto model = models::Model::load(path.path(), plain);
  ASSERT_FALSE(model->hparams().is_moe(0));
  ASSERT_TRUE(model->hparams().is_moe(1));
  const std::vector<float> one_shot = prompt_logits(*model, kPrompt, 32);
  const std::vector<double> cpu = test::CpuReference(path.path(), true).forward(kPrompt);
  const std::vector<float> cpu_f(cpu.begin(), cpu.end());
  const size_t n_vocab = model->hparams().n_vocab;
  for (size_t p = 0; p < kPrompt.size(); ++p)
    EXPECT_LE(test::relative_l2_error(&one_shot[p * n_vocab], &cpu_f[p * n_vocab], n_vocab), 3e-4) << "position " << p;
  const std::vector<float> chunked = prompt_logits(*model, kPrompt, 4);
  EXPECT_LE(test::relative_l2_error(chunked.data(), one_shot.data(), one_shot.size()), 3e-4);
  EXPECT_TRUE(model->context().instance().validation_messages().empty());
}

INSTANTIATE_TEST_SUITE_P(Families, MixedLayers, ::testing::Values("tiny", "tiny-qwen2moe", "tiny-qwen3moe"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });
