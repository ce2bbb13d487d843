// Per-stage GPU profiling of a session (SessionOptions::profile, moevk_context_params.profile):
// timestamps change nothing but timing (logits bit-identical to an unprofiled session, same
// dispatch and barrier counts), stage times are non-negative and add up to the steps' GPU
// time, which a host-side clock around the same calls bounds from above. qwen2moe-tiny has
// every stage: q/k/v biases, router, routed experts, a gated shared expert.
#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "convert/convert.hpp"
#include "e2e/e2e_support.hpp"
#include "generate/session.hpp"
#include "models/model.hpp"
#include "moevk.h"

using namespace moevk;
using generate::LogitsMode;
using generate::Session;
using generate::SessionOptions;
using generate::StepProfile;

namespace {

class ProfileE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    gguf_ = new test::TempFile("profile-qwen2moe-f32.gguf");
    convert::convert_hf(test::hf_fixture_dir("qwen2moe-tiny"), gguf_->path(), quant::Type::F32, {});
  }
  static void TearDownTestSuite() {
    delete gguf_;
    gguf_ = nullptr;
  }
  static test::TempFile* gguf_;
};
test::TempFile* ProfileE2E::gguf_ = nullptr;

double stage_sum(const StepProfile& p) {
  double s = 0;
  for (double ms : p.stage_ms) s += ms;
  return s;
}

void expect_same_floats(std::span<const float> got, std::span<const float> want, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << what;
}

TEST_F(ProfileE2E, StagesSumToStepTimeAndLogitsAreUnchanged) {
  auto model = models::Model::load(gguf_->path(), test::e2e_load_options());
  if (!model->context().caps().timestamps) GTEST_SKIP() << "device without timestamps";
  const test::HfReference ref = test::load_hf_reference("qwen2moe-tiny");
  // n_batch 8: the 20-token prompt is prefilled in chunks of 8, 8 and 4.
  Session plain(*model, SessionOptions{64, 8, false, false});
  Session profiled(*model, SessionOptions{64, 8, false, true});

  auto timed = [](auto&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  plain.decode(ref.prompt, LogitsMode::All);
  double prefill_wall_ms = timed([&] { profiled.decode(ref.prompt, LogitsMode::All); });
  for (int32_t i = 0; i < int32_t(ref.prompt.size()); ++i)
    expect_same_floats(profiled.logits(i), plain.logits(i), "prompt logits");

  double decode_wall_ms = 0;
  for (size_t i = 0; i < 4; ++i) {
    const int32_t one[1] = {ref.greedy[i]};
    plain.decode(one, LogitsMode::Last);
    decode_wall_ms += timed([&] { profiled.decode(one, LogitsMode::Last); });
    expect_same_floats(profiled.logits(-1), plain.logits(-1), "decode logits");
  }

  const generate::Profile& p = profiled.profile();
  ASSERT_TRUE(p.enabled);
  EXPECT_EQ(p.prefill.steps, 3u);
  EXPECT_EQ(p.prefill.tokens, 20u);
  EXPECT_EQ(p.decode.steps, 4u);
  EXPECT_EQ(p.decode.tokens, 4u);
  for (const StepProfile* step : {&p.prefill, &p.decode}) {
    for (uint32_t s = 0; s < models::kStageCount; ++s) EXPECT_GE(step->stage_ms[s], 0.0) << s;
    // Every stage does real work in every step: none may come out empty.
    for (models::Stage s : {models::Stage::Attention, models::Stage::Router, models::Stage::Experts})
      EXPECT_GT(step->stage_ms[uint32_t(s)], 0.0) << models::stage_name(s);
    // The stages tile the step (each interval between consecutive timestamps has one stage).
    EXPECT_GT(step->gpu_ms, 0.0);
    EXPECT_NEAR(stage_sum(*step), step->gpu_ms, 1e-9 * step->gpu_ms);
    EXPECT_GT(step->dispatches_per_step, 0u);
    EXPECT_GT(step->barriers_per_step, 0u);
  }
  // The GPU cannot have worked longer than the host waited for it.
  EXPECT_LE(p.prefill.gpu_ms, prefill_wall_ms);
  EXPECT_LE(p.decode.gpu_ms, decode_wall_ms);

  // Timestamps add no dispatches or barriers; without profiling the counts are still there.
  const generate::Profile& q = plain.profile();
  EXPECT_FALSE(q.enabled);
  EXPECT_EQ(q.decode.steps, 4u);
  EXPECT_EQ(stage_sum(q.decode), 0.0);
  EXPECT_EQ(q.decode.dispatches_per_step, p.decode.dispatches_per_step);
  EXPECT_EQ(q.decode.barriers_per_step, p.decode.barriers_per_step);
  EXPECT_EQ(q.prefill.dispatches_per_step, p.prefill.dispatches_per_step);
  EXPECT_EQ(q.prefill.barriers_per_step, p.prefill.barriers_per_step);
  EXPECT_TRUE(model->context().instance().validation_messages().empty());
}

// The C API: an older, smaller moevk_context_params (without `profile`) is accepted and what
// lies past its struct_size is not read; one smaller than the first layout is refused; the
// stats JSON carries the profile object.
TEST_F(ProfileE2E, CApiParamsBySizeAndStatsJson) {
  moevk_model_params mp = moevk_model_default_params();
  mp.validation = 1;
  moevk_model* model = nullptr;
  ASSERT_EQ(moevk_model_load(gguf_->path().c_str(), &mp, &model), MOEVK_OK) << moevk_last_error();

  moevk_context_params old = moevk_context_default_params();
  old.struct_size = offsetof(moevk_context_params, profile);
  old.n_ctx = 32;
  old.profile = 12345;  // past struct_size: must be ignored (profile stays off)
  moevk_context* ctx = nullptr;
  ASSERT_EQ(moevk_context_create(model, &old, &ctx), MOEVK_OK) << moevk_model_last_error(model);
  const int32_t tokens[3] = {1, 2, 3};
  ASSERT_EQ(moevk_decode(ctx, tokens, 3, 0), MOEVK_OK);
  char* text = nullptr;
  ASSERT_EQ(moevk_context_stats_json(ctx, &text), MOEVK_OK);
  nlohmann::json stats = nlohmann::json::parse(text);
  moevk_free_string(text);
  EXPECT_FALSE(stats["profile"]["enabled"].get<bool>());
  EXPECT_EQ(moevk_context_n_ctx(ctx), 32u);
  moevk_context_free(ctx);

  moevk_context_params tiny = moevk_context_default_params();
  tiny.struct_size = offsetof(moevk_context_params, n_batch);
  ctx = nullptr;
  EXPECT_EQ(moevk_context_create(model, &tiny, &ctx), MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(ctx, nullptr);

  moevk_context_params p = moevk_context_default_params();
  p.n_ctx = 32;
  p.profile = 1;
  ASSERT_EQ(moevk_context_create(model, &p, &ctx), MOEVK_OK) << moevk_model_last_error(model);
  ASSERT_EQ(moevk_decode(ctx, tokens, 3, 0), MOEVK_OK);
  ASSERT_EQ(moevk_decode(ctx, tokens, 1, 0), MOEVK_OK);
  ASSERT_EQ(moevk_context_stats_json(ctx, &text), MOEVK_OK);
  stats = nlohmann::json::parse(text);
  moevk_free_string(text);
  const nlohmann::json& prof = stats.at("profile");
  EXPECT_EQ(prof.at("stages"), nlohmann::json({"attention", "router", "experts", "other"}));
  EXPECT_EQ(prof.at("enabled").get<bool>(), true);
  for (const char* kind : {"decode", "prefill"}) {
    const nlohmann::json& k = prof.at(kind);
    EXPECT_EQ(k.at("steps").get<uint64_t>(), 1u) << kind;
    EXPECT_GT(k.at("dispatches_per_step").get<uint32_t>(), 0u) << kind;
    EXPECT_GT(k.at("barriers_per_step").get<uint32_t>(), 0u) << kind;
    double sum = 0;
    for (const auto& [name, ms] : k.at("stage_ms").items()) sum += ms.get<double>();
    EXPECT_NEAR(sum, k.at("gpu_ms").get<double>(), 1e-9 * sum) << kind;
    EXPECT_GT(k.at("stage_ms_per_token").at("experts").get<double>(), 0.0) << kind;
  }
  EXPECT_EQ(prof["prefill"]["tokens"].get<uint64_t>(), 3u);
  // moevk_generate's totals: of the generation's time, the part blocked on the GPU's steps.
  moevk_generate_params gp = moevk_generate_default_params();
  gp.prompt_tokens = tokens;
  gp.n_prompt_tokens = 1;
  gp.max_tokens = 4;
  gp.ignore_eos = 1;
  gp.sampling.temperature = 0;
  ASSERT_EQ(moevk_generate(ctx, &gp, nullptr), MOEVK_OK) << moevk_context_last_error(ctx);
  ASSERT_EQ(moevk_context_stats_json(ctx, &text), MOEVK_OK);
  stats = nlohmann::json::parse(text);
  moevk_free_string(text);
  EXPECT_EQ(stats.at("generated_tokens").get<int64_t>(), 4);
  EXPECT_GT(stats.at("generate_wait_ms").get<double>(), 0.0);
  EXPECT_LE(stats.at("generate_wait_ms").get<double>(), stats.at("generate_ms").get<double>());
  moevk_context_free(ctx);
  moevk_model_free(model);
}

}  // namespace
