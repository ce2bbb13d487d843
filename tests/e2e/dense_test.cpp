// Dense models end to end: the dense architectures (llama without experts, qwen2, qwen3) and a
// hybrid qwen2moe whose first layer is dense (Qwen's mlp_only_layers), written by make-model,
// loaded and run on the GPU against the double-precision CPU reference over the same file.
//
// As in hf_reference_test.cpp (part 2), the runtime alone is measured: the int8-activation path
// is off so every kernel sees f32 activations, and the reference rounds K (after RoPE) and V to
// fp16 like our KV cache. What remains is f32 summation order and an occasional K/V element
// rounding to the neighbouring fp16 value: 3e-4 relative L2 per position as there, plus twice
// what such flips do to this model at that position, measured by re-running the reference with
// K/V perturbed by 1e-6 relative (f32 rounding is ~1e-7; the worst of 3 draws). That term
// matters at late positions of sharp models: tiny-llama F16 at position 15 moves by up to 3.9e-4
// under 1e-6 noise, and the GPU there is 3.3e-4 from the reference; elsewhere it is ~1e-5.
// Each file is checked for: prefill of 12 tokens with every position's logits (LogitsMode::All,
// in chunks of 5), then 4 one-token decode steps (Last) that continue it; the reference runs the
// 16-token sequence once, so decode position p must match row p.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "convert/convert.hpp"
#include "e2e/cpu_reference.hpp"
#include "e2e/e2e_support.hpp"
#include "generate/session.hpp"
#include "models/model.hpp"

using namespace moevk;
using generate::LogitsMode;
using generate::Session;
using generate::SessionOptions;

namespace {

constexpr double kGpuVsCpu = 3e-4;
constexpr size_t kPrefill = 12, kDecodeSteps = 4;

// Token ids spread over the vocabulary (placeholder vocab of 384: byte tokens and tok_N), with
// a repeat so attention sees equal keys at two positions.
const std::vector<int32_t> kTokens = {1, 17, 300, 5, 383, 42, 260, 99, 17, 128, 7, 311, 64, 200, 3, 350};

struct Case {
  std::string label;
  std::string preset;
  quant::Type type;
  bool first_layer_dense = false;  // hybrid: layer 0 dense in a MoE preset
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.label; }

// make-model's weights are N(0, 0.02^2) as at initialisation: in a 2-layer 64-wide model the
// attention and FFN then barely move the residual stream, and an error there would hide below
// the bound. These weights are N(0, 0.15^2) like the Hugging Face fixtures' (initializer_range
// 0.15), norms 1 +- 0.1, so every block changes the logits well beyond the bound (checked below).
void write_random_model(const convert::ModelSpec& spec, quant::Type type, const std::string& path) {
  auto source = [](const convert::TensorDecl& d) -> convert::RowSource {
    const bool is_norm = d.name.find("norm") != std::string::npos;
    const uint64_t seed = std::hash<std::string>{}(d.name);
    const uint64_t ne0 = d.dims[0];
    return [=](uint64_t first, uint64_t n, float* out) {
      for (uint64_t r = first; r < first + n; ++r) {
        std::mt19937_64 rng(seed ^ (r * 0x9E3779B97F4A7C15ull));
        std::normal_distribution<float> normal(is_norm ? 1.0f : 0.0f, is_norm ? 0.1f : 0.15f);
        for (uint64_t i = 0; i < ne0; ++i) out[(r - first) * ne0 + i] = normal(rng);
      }
    };
  };
  convert::write_model(path, spec, convert::placeholder_vocab(spec.n_vocab), type, quant::ScaleSearch::Full, source,
                       {});
}

class DenseModel : public ::testing::TestWithParam<Case> {};

TEST_P(DenseModel, PrefillAndDecodeMatchCpuReference) {
  const Case& c = GetParam();
  convert::ModelSpec spec = convert::make_model_spec(c.preset, {});
  if (c.first_layer_dense) {
    spec.layer_is_moe.assign(spec.n_layer, 1);
    spec.layer_is_moe[0] = 0;
    if (spec.n_ff == 0) spec.n_ff = 96;
  }
  test::TempFile path("dense-" + c.label + ".gguf");
  write_random_model(spec, c.type, path.path());

  models::LoadOptions plain = test::e2e_load_options();
  plain.device.disable = "dot";
  auto model = models::Model::load(path.path(), plain);
  const model::HParams& hp = model->hparams();
  ASSERT_EQ(hp.arch, spec.arch);
  for (uint32_t l = 0; l < hp.n_layer; ++l) ASSERT_EQ(hp.is_moe(l), spec.layer_is_moe[l] != 0) << "layer " << l;
  const size_t n_vocab = hp.n_vocab;
  ASSERT_LT(size_t(*std::max_element(kTokens.begin(), kTokens.end())), n_vocab);

  const std::vector<double> cpu = test::CpuReference(path.path(), true).forward(kTokens);
  const std::vector<float> want(cpu.begin(), cpu.end());
  ASSERT_EQ(want.size(), kTokens.size() * n_vocab);

  // The test can see context: the same token at positions 1 and 8 gets clearly different
  // logits from the reference (attention and RoPE matter far beyond the bound).
  const double context_effect = test::relative_l2_error(&want[8 * n_vocab], &want[1 * n_vocab], n_vocab);
  ASSERT_EQ(kTokens[1], kTokens[8]);
  EXPECT_GT(context_effect, 100 * kGpuVsCpu) << "the model is too weak to test the runtime";

  // Per-position bound: the fixed part plus the measured fp16-flip sensitivity.
  std::vector<double> bound(kTokens.size(), 0.0);
  for (uint32_t draw = 0; draw < 3; ++draw) {
    test::CpuReference perturbed(path.path(), true);
    perturbed.perturb_kv(1e-6, 100 + draw);
    const std::vector<double> moved = perturbed.forward(kTokens);
    const std::vector<float> moved_f(moved.begin(), moved.end());
    for (size_t p = 0; p < kTokens.size(); ++p)
      bound[p] = std::max(bound[p], test::relative_l2_error(&moved_f[p * n_vocab], &want[p * n_vocab], n_vocab));
  }
  for (double& b : bound) b = kGpuVsCpu + 2 * b;

  // Output rows poisoned: the session's logits buffer is its own, so poison what we copy into.
  std::vector<float> got(kTokens.size() * n_vocab, std::nanf(""));
  // n_batch 5: prefill runs in chunks of 5, 5, 2 (a partial chunk and a chunk count > 1).
  Session session(*model, SessionOptions{64, 5, false});
  session.decode(std::span<const int32_t>(kTokens.data(), kPrefill), LogitsMode::All);
  for (size_t p = 0; p < kPrefill; ++p) {
    const std::span<const float> row = session.logits(int32_t(p));
    ASSERT_EQ(row.size(), n_vocab);
    std::copy(row.begin(), row.end(), got.begin() + p * n_vocab);
  }
  for (size_t p = kPrefill; p < kTokens.size(); ++p) {
    session.decode(std::span<const int32_t>(&kTokens[p], 1), LogitsMode::Last);
    const std::span<const float> row = session.logits(-1);
    ASSERT_EQ(row.size(), n_vocab);
    std::copy(row.begin(), row.end(), got.begin() + p * n_vocab);
  }
  double worst = 0, worst_bound = 0;
  for (size_t p = 0; p < kTokens.size(); ++p) {
    const double err = test::relative_l2_error(&got[p * n_vocab], &want[p * n_vocab], n_vocab);
    EXPECT_LE(err, bound[p]) << (p < kPrefill ? "prefill" : "decode") << " position " << p;
    worst = std::max(worst, err);
    worst_bound = std::max(worst_bound, bound[p]);
  }
  std::printf("%-26s worst relative L2 vs CPU reference %.2e (largest bound %.2e, context effect %.2e)\n",
              c.label.c_str(), worst, worst_bound, context_effect);
  const auto messages = model->context().instance().validation_messages();
  EXPECT_TRUE(messages.empty()) << messages.size() << " validation messages, first: " << messages.front();
}

INSTANTIATE_TEST_SUITE_P(
    Archs, DenseModel,
    ::testing::Values(Case{"llama_f16", "tiny-llama", quant::Type::F16},
                      Case{"llama_q4_0", "tiny-llama", quant::Type::Q4_0},
                      Case{"qwen2_f16", "tiny-qwen2", quant::Type::F16},
                      Case{"qwen2_q8_0", "tiny-qwen2", quant::Type::Q8_0},
                      Case{"qwen3_f16", "tiny-qwen3", quant::Type::F16},
                      Case{"qwen3_q4_0", "tiny-qwen3", quant::Type::Q4_0},
                      Case{"qwen2moe_mlp_only_layer0", "tiny-qwen2moe", quant::Type::Q8_0, true}),
    [](const auto& info) { return info.param.label; });

// The dense presets are what they claim: no expert tensors or keys, the architecture's own
// structure (q/k/v biases for qwen2, q/k norms for qwen3), and --experts on them is refused.
TEST(DensePresets, HaveNoExpertsAndTheirArchitectureStructure) {
  for (const char* preset : {"tiny-llama", "tiny-qwen2", "tiny-qwen3"}) {
    SCOPED_TRACE(preset);
    const convert::ModelSpec spec = convert::make_model_spec(preset, {});
    const model::HParams hp = spec.hparams();
    EXPECT_EQ(hp.n_expert, 0u);
    EXPECT_EQ(hp.n_layer, 2u);
    EXPECT_EQ(hp.n_embd, 64u);
    EXPECT_EQ(hp.n_vocab, 384u);
    for (uint32_t l = 0; l < hp.n_layer; ++l) EXPECT_FALSE(hp.is_moe(l));
    EXPECT_EQ(hp.qkv_bias, spec.arch == "qwen2");
    EXPECT_EQ(hp.qk_norm, spec.arch == "qwen3");
    for (const convert::TensorDecl& d : convert::tensor_layout(spec))
      EXPECT_EQ(d.name.find("exps"), std::string::npos) << d.name;

    convert::MakeModelOverrides with_experts;
    with_experts.n_expert = 4;
    try {
      convert::make_model_spec(preset, with_experts);
      ADD_FAILURE() << "--experts on a dense preset was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_ARGUMENT);
      EXPECT_NE(std::string(e.what()).find("dense"), std::string::npos) << e.what();
    }
  }
  // --arch switches among the dense architectures only.
  convert::MakeModelOverrides to_qwen3;
  to_qwen3.arch = "qwen3";
  const convert::ModelSpec q3 = convert::make_model_spec("tiny-llama", to_qwen3);
  EXPECT_EQ(q3.arch, "qwen3");
  EXPECT_TRUE(q3.qk_norm);
  convert::MakeModelOverrides to_moe;
  to_moe.arch = "qwen3moe";
  EXPECT_THROW(convert::make_model_spec("tiny-llama", to_moe), Error);
}

}  // namespace
