// One model shared by two contexts generating at the same time on two threads, as moevk.h
// allows: each context gets exactly the greedy tokens it gets alone, the validation layer (whose
// thread-safety checks report unsynchronized use of command pools, descriptor pools and queues)
// stays silent, and failures of the model's thread-safe calls keep one message per thread.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "convert/convert.hpp"
#include "e2e/e2e_support.hpp"
#include "moevk.h"
#include "vk/context.hpp"

using namespace moevk;

namespace {

constexpr int32_t kGenerated = 12;
constexpr int kRounds = 3;  // generations per context, each re-recorded after a reset


struct ThreadResult {
  std::vector<std::vector<int32_t>> rounds;
  std::string error;
  std::string tokenize_message;  // moevk_model_last_error after this thread's failing tokenize
  size_t tokenize_count = 0;
};

class ConcurrentContextsE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    gguf_ = new test::TempFile("concurrent-qwen2moe-q8_0.gguf");
    convert::convert_hf(test::hf_fixture_dir("qwen2moe-tiny"), gguf_->path(), quant::Type::Q8_0, {});
  }
  static void TearDownTestSuite() {
    delete gguf_;
    gguf_ = nullptr;
  }
  static test::TempFile* gguf_;
};
test::TempFile* ConcurrentContextsE2E::gguf_ = nullptr;

}  // namespace

TEST_F(ConcurrentContextsE2E, TwoThreadsGetTheTokensEachGetsAlone) {
  moevk_model_params mp = moevk_model_default_params();
  mp.validation = 1;
  moevk_model* model = nullptr;
  ASSERT_EQ(moevk_model_load(gguf_->path().c_str(), &mp, &model), MOEVK_OK) << moevk_last_error();

  const test::HfReference ref = test::load_hf_reference("qwen2moe-tiny");
  std::vector<int32_t> other(ref.prompt.rbegin(), ref.prompt.rend());  // a different prompt
  const std::vector<int32_t> prompts[2] = {ref.prompt, other};
  // Texts of different lengths, so each thread's tokenize failure names its own count.
  const std::string texts[2] = {"hello", "hello world, hello again, and hello once more"};

  moevk_context_params cp = moevk_context_default_params();
  cp.n_ctx = 64;
  cp.n_batch = 4;  // several prefill chunks: more recordings and submits to interleave

  // Concurrently first, while the model's pipelines are still being created.
  ThreadResult results[2];
  {
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        ThreadResult& r = results[t];
        moevk_context* ctx = nullptr;
        if (moevk_context_create(model, &cp, &ctx) != MOEVK_OK) {
          r.error = moevk_model_last_error(model);
          return;
        }
        for (int round = 0; round < kRounds && r.error.empty(); ++round) {
          if (round > 0 && moevk_context_reset(ctx) != MOEVK_OK) r.error = moevk_context_last_error(ctx);
          r.rounds.push_back(test::generate_greedy(ctx, prompts[t], kGenerated, &r.error));
          // A call documented thread-safe on the shared model, failing on purpose (no room).
          if (moevk_tokenize(model, texts[t].data(), texts[t].size(), 0, 0, nullptr, 0, &r.tokenize_count) ==
              MOEVK_ERROR_INVALID_ARGUMENT)
            r.tokenize_message = moevk_model_last_error(model);
        }
        moevk_context_free(ctx);
      });
    }
    for (auto& th : threads) th.join();
  }

  for (int t = 0; t < 2; ++t) {
    SCOPED_TRACE("thread " + std::to_string(t));
    ASSERT_TRUE(results[t].error.empty()) << results[t].error;
    moevk_context* ctx = nullptr;
    ASSERT_EQ(moevk_context_create(model, &cp, &ctx), MOEVK_OK) << moevk_model_last_error(model);
    std::string error;
    const std::vector<int32_t> alone = test::generate_greedy(ctx, prompts[t], kGenerated, &error);
    moevk_context_free(ctx);
    ASSERT_EQ(alone.size(), size_t(kGenerated)) << error;
    ASSERT_EQ(results[t].rounds.size(), size_t(kRounds));
    for (int round = 0; round < kRounds; ++round) EXPECT_EQ(results[t].rounds[round], alone) << "round " << round;
    // Each thread read its own failure, not the other thread's.
    EXPECT_NE(results[t].tokenize_message.find(std::to_string(results[t].tokenize_count) + " tokens do not fit"),
              std::string::npos)
        << results[t].tokenize_message;
  }
  EXPECT_NE(results[0].tokenize_count, results[1].tokenize_count);
  EXPECT_NE(results[0].rounds[0], results[1].rounds[0]) << "the two prompts should continue differently";
  moevk_model_free(model);
  const auto messages = vk::Instance::process_validation_messages();
  EXPECT_TRUE(messages.empty()) << messages.size() << " validation message(s); first: " << messages.front();
}
