// Model loading and session behaviour on a converted tiny checkpoint: a missing tensor is named,
// a prompt longer than the context is refused without touching the session, bad ids are
// rejected, expert statistics count every top-k choice, a lost device, a model or context too
// big for the device and the memory report. The decode fusions: session_fusions_test.cpp.
#include <gtest/gtest.h>

#include <functional>
#include <numeric>

#include "common/error.hpp"
#include "convert/convert.hpp"
#include "e2e/e2e_support.hpp"
#include "generate/session.hpp"
#include "gguf/gguf.hpp"
#include "models/model.hpp"

using namespace moevk;
using generate::LogitsMode;
using generate::Session;
using generate::SessionOptions;

namespace {

// Copies a GGUF file without one tensor.
void copy_without_tensor(const std::string& from, const std::string& to, const std::string& dropped) {
  auto file = gguf::File::open(from);
  gguf::Writer w(to, file->alignment());
  for (const gguf::KeyValue& kv : file->metadata())
    if (kv.key != "general.alignment") w.set_value(kv.key, kv.value);
  for (const gguf::TensorInfo& t : file->tensors())
    if (t.name != dropped) w.add_tensor(t.name, t.dims, t.type);
  w.begin_data();
  for (const gguf::TensorInfo& t : file->tensors()) {
    if (t.name == dropped) continue;
    auto data = file->tensor_data(t);
    w.write_data(data.data(), data.size());
  }
  w.finish();
}

class SessionE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    gguf_ = new test::TempFile("session-mixtral-f32.gguf");
    convert::convert_hf(test::hf_fixture_dir("mixtral-tiny"), gguf_->path(), quant::Type::F32, {});
  }
  static void TearDownTestSuite() {
    delete gguf_;
    gguf_ = nullptr;
  }
  static test::TempFile* gguf_;
};
test::TempFile* SessionE2E::gguf_ = nullptr;

moevk_status status_of(const std::function<void()>& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.status();
  }
  return MOEVK_OK;
}

}  // namespace

TEST_F(SessionE2E, MissingTensorIsNamed) {
  test::TempFile broken("session-missing.gguf");
  copy_without_tensor(gguf_->path(), broken.path(), "blk.1.ffn_up_exps.weight");
  std::string message;
  EXPECT_EQ(status_of([&] { models::Model::load(broken.path(), test::e2e_load_options()); }, &message),
            MOEVK_ERROR_MISSING_TENSOR);
  EXPECT_NE(message.find("blk.1.ffn_up_exps.weight"), std::string::npos) << message;
}

TEST_F(SessionE2E, LoadReportsProgressAndCancels) {
  int calls = 0;
  models::LoadOptions o = test::e2e_load_options();
  o.progress = [&](float fraction, const char*) {
    EXPECT_GE(fraction, 0.0f);
    EXPECT_LE(fraction, 1.0f);
    return ++calls < 5;  // cancel at the fifth call
  };
  EXPECT_EQ(status_of([&] { models::Model::load(gguf_->path(), o); }), MOEVK_ERROR_CANCELLED);
  EXPECT_EQ(calls, 5);
}

TEST_F(SessionE2E, ContextFullLeavesSessionUsable) {
  auto model = models::Model::load(gguf_->path(), test::e2e_load_options());
  const test::HfReference ref = test::load_hf_reference("mixtral-tiny");
  Session s(*model, SessionOptions{16, 8, false});
  // 20 prompt tokens > n_ctx 16: refused, nothing appended.
  EXPECT_EQ(status_of([&] { s.decode(ref.prompt, LogitsMode::Last); }), MOEVK_ERROR_CONTEXT_FULL);
  EXPECT_EQ(s.n_past(), 0u);
  // The first 12 fit, and give the same logits as in a fresh session.
  std::span<const int32_t> head(ref.prompt.data(), 12);
  s.decode(head, LogitsMode::Last);
  EXPECT_EQ(s.n_past(), 12u);
  std::vector<float> got(s.logits(-1).begin(), s.logits(-1).end());
  Session fresh(*model, SessionOptions{16, 8, false});
  fresh.decode(head, LogitsMode::Last);
  std::vector<float> want(fresh.logits(-1).begin(), fresh.logits(-1).end());
  EXPECT_LE(test::relative_l2_error(got.data(), want.data(), got.size()), 1e-6);
  // 5 more would make 17 > 16: refused again, then 4 fit exactly.
  EXPECT_EQ(status_of([&] { s.decode(std::span<const int32_t>(ref.prompt.data() + 12, 5), LogitsMode::Last); }),
            MOEVK_ERROR_CONTEXT_FULL);
  EXPECT_EQ(s.n_past(), 12u);
  s.decode(std::span<const int32_t>(ref.prompt.data() + 12, 4), LogitsMode::ArgmaxOnly);
  EXPECT_EQ(s.n_past(), 16u);
  EXPECT_TRUE(model->context().instance().validation_messages().empty());
}

TEST_F(SessionE2E, RejectsIdsOutsideVocabulary) {
  auto model = models::Model::load(gguf_->path(), test::e2e_load_options());
  Session s(*model, SessionOptions{32, 8, false});
  const std::vector<int32_t> bad_high = {1, 2, int32_t(model->hparams().n_vocab)};
  const std::vector<int32_t> bad_negative = {-1};
  EXPECT_EQ(status_of([&] { s.decode(bad_high, LogitsMode::Last); }), MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(status_of([&] { s.decode(bad_negative, LogitsMode::Last); }), MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(s.n_past(), 0u);
}

TEST_F(SessionE2E, ExpertCountsSumToTokensTimesK) {
  auto model = models::Model::load(gguf_->path(), test::e2e_load_options());
  const auto& hp = model->hparams();
  const test::HfReference ref = test::load_hf_reference("mixtral-tiny");
  Session s(*model, SessionOptions{64, 8, true});
  s.decode(ref.prompt, LogitsMode::Last);                                    // 20 tokens in chunks of 8
  s.decode(std::span<const int32_t>(ref.prompt.data(), 3), LogitsMode::ArgmaxOnly);  // 3 more
  auto counts = s.expert_counts();
  ASSERT_EQ(counts.size(), hp.n_layer);
  for (uint32_t l = 0; l < hp.n_layer; ++l) {
    ASSERT_EQ(counts[l].size(), hp.n_expert);
    EXPECT_EQ(std::accumulate(counts[l].begin(), counts[l].end(), uint64_t(0)), uint64_t(23) * hp.n_expert_used);
  }
  s.reset();
  counts = s.expert_counts();
  for (const auto& layer : counts)
    for (uint64_t c : layer) EXPECT_EQ(c, 0u);
}

TEST_F(SessionE2E, DeviceLossPropagatesAndOtherModelsKeepWorking) {
  models::LoadOptions lossy = test::e2e_load_options();
  lossy.device.simulate_device_loss_after = 2;  // the third forward step "loses" the GPU
  auto model = models::Model::load(gguf_->path(), lossy);
  auto healthy = models::Model::load(gguf_->path(), test::e2e_load_options());
  const test::HfReference ref = test::load_hf_reference("mixtral-tiny");
  Session s(*model, SessionOptions{64, 8, false});
  Session other(*healthy, SessionOptions{64, 8, false});
  s.decode(std::span<const int32_t>(ref.prompt.data(), 8), LogitsMode::Last);
  s.decode(std::span<const int32_t>(ref.prompt.data() + 8, 1), LogitsMode::ArgmaxOnly);
  std::string message;
  EXPECT_EQ(status_of([&] { s.decode(std::span<const int32_t>(ref.prompt.data() + 9, 1), LogitsMode::Last); },
                      &message),
            MOEVK_ERROR_DEVICE_LOST);
  EXPECT_EQ(s.n_past(), 9u);  // the lost step appended nothing
  EXPECT_EQ(status_of([&] { s.decode(std::span<const int32_t>(ref.prompt.data(), 1), LogitsMode::Last); }),
            MOEVK_ERROR_DEVICE_LOST);
  other.decode(ref.prompt, LogitsMode::ArgmaxOnly);
  EXPECT_EQ(other.n_past(), ref.prompt.size());
}

TEST_F(SessionE2E, ResetReplaysIdentically) {
  auto model = models::Model::load(gguf_->path(), test::e2e_load_options());
  const test::HfReference ref = test::load_hf_reference("mixtral-tiny");
  Session s(*model, SessionOptions{32, 1, false});  // n_batch 1: every step is a decode step
  s.decode(ref.prompt, LogitsMode::Last);
  std::vector<float> first(s.logits(-1).begin(), s.logits(-1).end());
  // logits(n-1) names the same row as logits(-1) in Last mode; other rows were not kept.
  EXPECT_EQ(s.logits(int32_t(ref.prompt.size() - 1)).data(), s.logits(-1).data());
  EXPECT_EQ(status_of([&] { s.logits(0); }), MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(status_of([&] { s.argmax(); }), MOEVK_ERROR_INVALID_ARGUMENT);
  s.reset();
  EXPECT_EQ(s.n_past(), 0u);
  s.decode(ref.prompt, LogitsMode::Last);  // stale K/V beyond n_past must not leak in
  std::vector<float> second(s.logits(-1).begin(), s.logits(-1).end());
  EXPECT_EQ(first, second);
}

TEST_F(SessionE2E, ModelTooBigForTheDeviceIsAClearError) {
  models::LoadOptions small = test::e2e_load_options();
  small.device.simulate_device_memory = 64 * 1024;  // the f32 mixtral-tiny needs ~1.5 MB
  std::string message;
  EXPECT_EQ(status_of([&] { models::Model::load(gguf_->path(), small); }, &message),
            MOEVK_ERROR_OUT_OF_DEVICE_MEMORY);
  EXPECT_NE(message.find("model needs"), std::string::npos) << message;
  EXPECT_NE(message.find("device has"), std::string::npos) << message;
}

TEST_F(SessionE2E, ContextTooBigForTheDeviceFailsAndTheModelStaysUsable) {
  models::LoadOptions tight = test::e2e_load_options();
  tight.device.simulate_device_memory = 8u << 20;  // weights fit; a 1M-token KV cache does not
  auto model = models::Model::load(gguf_->path(), tight);
  std::string message;
  EXPECT_EQ(status_of([&] { Session s(*model, SessionOptions{1u << 20, 8, false}); }, &message),
            MOEVK_ERROR_OUT_OF_DEVICE_MEMORY);
  EXPECT_NE(message.find("out of device memory"), std::string::npos) << message;
  // Everything the failed session allocated was released: a normal one fits and runs.
  const test::HfReference ref = test::load_hf_reference("mixtral-tiny");
  Session ok(*model, SessionOptions{64, 8, false});
  ok.decode(ref.prompt, LogitsMode::ArgmaxOnly);
  EXPECT_EQ(ok.n_past(), ref.prompt.size());
}

// A context whose K cache of a layer is more than one binding can span fails at the session,
// naming n_ctx and how many positions fit (not the batch, which cannot help), and that many run.
TEST_F(SessionE2E, ContextPastTheBindingRangeNamesNCtx) {
  models::LoadOptions narrow = test::e2e_load_options();
  narrow.device.simulate_max_storage_buffer_range = 256u << 10;
  auto model = models::Model::load(gguf_->path(), narrow);
  const models::HParams& hp = model->hparams();
  const uint32_t fit = uint32_t((256u << 10) / (uint64_t(hp.n_head_kv) * hp.head_dim * 2));
  std::string message;
  EXPECT_EQ(status_of([&] { Session s(*model, SessionOptions{fit + 1, 8, false}); }, &message),
            MOEVK_ERROR_UNSUPPORTED);
  EXPECT_NE(message.find("n_ctx " + std::to_string(fit + 1) + " needs a K cache of"), std::string::npos) << message;
  EXPECT_NE(message.find("at most " + std::to_string(fit) + " positions fit"), std::string::npos) << message;
  const test::HfReference ref = test::load_hf_reference("mixtral-tiny");
  Session ok(*model, SessionOptions{fit, 8, false});
  ok.decode(ref.prompt, LogitsMode::ArgmaxOnly);
  EXPECT_EQ(ok.n_past(), ref.prompt.size());
}

// The memory report: weights as uploaded, the KV cache as its shape says (F16 K and V per layer),
// and a device peak that is exactly weights + what the sessions hold (transfers use host-visible
// staging, which is not device-local).
TEST_F(SessionE2E, MemoryUseAddsUp) {
  auto model = models::Model::load(gguf_->path(), test::e2e_load_options());
  const models::HParams& hp = model->hparams();
  const uint32_t n_ctx = 48;
  Session s(*model, SessionOptions{n_ctx, 8, false});
  const std::vector<int32_t> prompt = {1, 5, 9, 17, 33, 2, 4, 8, 16, 3};
  s.decode(prompt, LogitsMode::Last);
  const generate::MemoryUse m = s.memory_use();
  EXPECT_EQ(m.weights, model->weight_bytes());
  EXPECT_GT(m.weights, 0u);
  EXPECT_EQ(m.kv_cache, uint64_t(hp.n_layer) * 2 * n_ctx * hp.n_head_kv * hp.head_dim * 2);
  EXPECT_GT(m.activations, 0u);
  EXPECT_EQ(m.device_peak, m.weights + m.kv_cache + m.activations);

  // A second session of the same model raises the shared device's peak by its own buffers.
  Session other(*model, SessionOptions{n_ctx, 8, false});
  EXPECT_EQ(other.memory_use().device_peak, m.weights + 2 * (m.kv_cache + m.activations));

  // The logits of every token of a batch (n_batch rows) exist only once a call wants them; the
  // last token's row is all a Last or greedy call needs.
  s.decode(prompt, LogitsMode::ArgmaxOnly);
  EXPECT_EQ(s.memory_use().activations, m.activations);
  s.decode(prompt, LogitsMode::All);
  EXPECT_EQ(s.memory_use().activations, m.activations + 8ull * hp.n_vocab * 4);
  EXPECT_EQ(s.logits(9).size(), size_t(hp.n_vocab));
}
