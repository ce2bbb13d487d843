// Decoding with the next step in flight (Session::launch_chained): each chained step takes its
// token from the previous step's choice on the GPU (its argmax, or its draw: LogitsMode::Sample),
// so the host submits step t+1 before it reads step t's token. Against plain one-step-at-a-time
// decoding of the same model:
//  - Session level: the same tokens, the same positions, and after dropping steps in flight the
//    context continues exactly as if they had never run (bit-identical logits); sampled steps
//    draw what the host sampler draws from the copied logits with the same uniform;
//  - moevk_generate: the same streams, stop reasons, pending token and KV state for max_tokens,
//    a callback stop, a full context and continuing generations; MOEVK_DISABLE=chain_steps is
//    the plain loop, MOEVK_DISABLE=gpu_sampling samples on the host: at a temperature all three
//    give the same stream from one seed (dropped steps give their draws back).
#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "convert/convert.hpp"
#include "e2e/e2e_support.hpp"
#include "generate/sampler.hpp"
#include "generate/session.hpp"
#include "models/model.hpp"
#include "moevk.h"
#include "support/scoped_env.hpp"

using namespace moevk;
using generate::LogitsMode;
using generate::Session;
using generate::SessionOptions;

namespace {

// The tiny Qwen3-MoE every test here runs (16 experts, 4 used), written to `file`.
void write_tiny_model(const test::TempFile& file) {
  convert::MakeModelOverrides o;
  o.n_expert = 16;
  o.n_expert_used = 4;
  convert::make_model(convert::make_model_spec("tiny-qwen3moe", o), quant::Type::Q8_0, file.path(), 21, false, {});
}

std::unique_ptr<models::Model> tiny_model(test::TempFile& file) {
  write_tiny_model(file);
  return models::Model::load(file.path(), test::e2e_load_options());
}

// The tiny model loaded through the C API with one context per MOEVK_DISABLE value ("" turns
// nothing off), n_batch 8; freed with the object.
struct ApiContexts {
  moevk_model* model = nullptr;
  std::vector<moevk_context*> ctxs;
  ApiContexts() = default;
  ApiContexts(const ApiContexts&) = delete;
  ApiContexts& operator=(const ApiContexts&) = delete;
  ~ApiContexts() {
    for (moevk_context* c : ctxs) moevk_context_free(c);
    moevk_model_free(model);
  }
};

void open_contexts(const test::TempFile& file, uint32_t n_ctx, std::initializer_list<const char*> disabled,
                   ApiContexts& out) {
  write_tiny_model(file);
  ASSERT_EQ(moevk_model_load(file.path().c_str(), nullptr, &out.model), MOEVK_OK) << moevk_last_error();
  moevk_context_params cp = moevk_context_default_params();
  cp.n_ctx = n_ctx;
  cp.n_batch = 8;
  for (const char* off : disabled) {
    test::ScopedEnv env("MOEVK_DISABLE", off);
    moevk_context* c = nullptr;
    ASSERT_EQ(moevk_context_create(out.model, &cp, &c), MOEVK_OK) << moevk_last_error();
    out.ctxs.push_back(c);
  }
}

// The plain greedy chain: decode one token, read its argmax, repeat.
std::vector<int32_t> plain_greedy(Session& s, int32_t first, int steps) {
  std::vector<int32_t> out;
  int32_t t = first;
  for (int i = 0; i < steps; ++i) {
    s.decode(std::span<const int32_t>(&t, 1), LogitsMode::ArgmaxOnly);
    t = s.argmax();
    out.push_back(t);
  }
  return out;
}

TEST(ChainedGreedy, SessionStepsInFlightGiveThePlainTokens) {
  test::TempFile file("chained-session.gguf");
  auto model = tiny_model(file);
  const std::vector<int32_t> prompt{3, 17, 99, 4, 250, 8, 31};
  Session chained(*model, SessionOptions{32, 8, false}), plain(*model, SessionOptions{32, 8, false});
  chained.decode(prompt, LogitsMode::ArgmaxOnly);
  plain.decode(prompt, LogitsMode::ArgmaxOnly);
  const int32_t first = chained.argmax();
  ASSERT_EQ(first, plain.argmax());
  const std::vector<int32_t> want = plain_greedy(plain, first, 6);

  // Two in flight at a time, as moevk_generate keeps them.
  ASSERT_TRUE(chained.chain_ready());
  std::vector<int32_t> got;
  chained.launch_chained();
  chained.launch_chained();
  EXPECT_EQ(chained.chained_in_flight(), 2u);
  EXPECT_THROW(chained.launch_chained(), Error);  // a third is refused
  for (int i = 0; i < 6; ++i) {
    got.push_back(chained.finish_chained());
    if (i + 2 < 6) chained.launch_chained();
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(chained.chained_in_flight(), 0u);
  EXPECT_EQ(chained.n_past(), plain.n_past());

  // Steps dropped in flight leave no trace: both contexts then decode the same token at the
  // same position with bit-identical logits.
  chained.launch_chained();
  chained.launch_chained();
  chained.drop_chained();
  EXPECT_EQ(chained.n_past(), plain.n_past());
  EXPECT_FALSE(chained.chain_ready());
  EXPECT_THROW(chained.launch_chained(), Error);  // nothing greedy to chain on
  const int32_t next[1] = {want.back()};
  chained.decode(next, LogitsMode::Last);
  plain.decode(next, LogitsMode::Last);
  const auto a = chained.logits(-1), b = plain.logits(-1);
  EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin(), b.end()));
  // Decode resets the chain (a Last step leaves no argmax on the GPU to chain on).
  EXPECT_FALSE(chained.chain_ready());
}

TEST(ChainedGreedy, SessionRefusesAStepPastTheContext) {
  test::TempFile file("chained-full.gguf");
  auto model = tiny_model(file);
  Session s(*model, SessionOptions{8, 8, false});
  const std::vector<int32_t> prompt{1, 2, 3, 4, 5, 6};
  s.decode(prompt, LogitsMode::ArgmaxOnly);
  s.launch_chained();  // position 6
  s.launch_chained();  // position 7, the last
  s.finish_chained();  // n_past 7, position 7 still in flight
  try {
    s.launch_chained();
    ADD_FAILURE() << "a step at position 8 of n_ctx 8 was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_CONTEXT_FULL) << e.what();
  }
  s.finish_chained();
  EXPECT_EQ(s.n_past(), 8u);
}

// moevk_generate on two contexts of one model, chained and plain (MOEVK_DISABLE=chain_steps).
struct GenerateRun {
  std::vector<int32_t> tokens;
  moevk_generate_result result{};
  int32_t pending = -1;
  uint32_t n_past = 0;
};

struct Collect {
  std::vector<int32_t>* tokens;
  int stop_after;  // the callback asks to stop after this many tokens (0: never)
};

int collect(const char*, size_t, int32_t token, void* user) {
  auto* c = static_cast<Collect*>(user);
  if (token >= 0) c->tokens->push_back(token);
  return c->stop_after > 0 && int(c->tokens->size()) >= c->stop_after;
}

GenerateRun generate(moevk_context* ctx, const std::vector<int32_t>& prompt, int max_tokens, int stop_after = 0,
                     const moevk_sampler_params* sampling = nullptr) {
  GenerateRun r;
  Collect c{&r.tokens, stop_after};
  moevk_generate_params p = moevk_generate_default_params();
  if (prompt.empty()) {
    p.prompt = "";  // continue from the pending token
  } else {
    p.prompt_tokens = prompt.data();
    p.n_prompt_tokens = prompt.size();
  }
  p.max_tokens = max_tokens;
  p.ignore_eos = 1;
  p.sampling.temperature = 0;
  if (sampling) p.sampling = *sampling;
  p.on_token = collect;
  p.user_data = &c;
  r.result.struct_size = sizeof r.result;
  EXPECT_EQ(moevk_generate(ctx, &p, &r.result), MOEVK_OK) << moevk_context_last_error(ctx);
  r.pending = moevk_context_pending_token(ctx);
  r.n_past = moevk_context_n_past(ctx);
  return r;
}

void expect_same(const GenerateRun& a, const GenerateRun& b, const char* what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.result.n_generated, b.result.n_generated);
  EXPECT_EQ(a.result.stop_reason, b.result.stop_reason);
  EXPECT_EQ(a.pending, b.pending);
  EXPECT_EQ(a.n_past, b.n_past);
}

TEST(ChainedGreedy, GenerateMatchesThePlainLoop) {
  test::TempFile file("chained-generate.gguf");
  ApiContexts api;
  ASSERT_NO_FATAL_FAILURE(open_contexts(file, 24, {"", "chain_steps"}, api));
  moevk_context* chained = api.ctxs[0];
  moevk_context* plain = api.ctxs[1];
  const std::vector<int32_t> prompt{3, 17, 99, 4, 250};

  // max_tokens, then continuing from the pending token, then a callback stop, then the context
  // running full (24 positions), each on both contexts in turn.
  const GenerateRun a1 = generate(chained, prompt, 6), b1 = generate(plain, prompt, 6);
  expect_same(a1, b1, "max_tokens 6");
  EXPECT_EQ(a1.result.stop_reason, MOEVK_STOP_MAX_TOKENS);
  const GenerateRun a2 = generate(chained, {}, 4), b2 = generate(plain, {}, 4);
  expect_same(a2, b2, "continued, 4 more");
  const GenerateRun a3 = generate(chained, {}, 10, 3), b3 = generate(plain, {}, 10, 3);
  expect_same(a3, b3, "stopped by the callback after 3");
  EXPECT_EQ(a3.result.stop_reason, MOEVK_STOP_CALLBACK);
  const GenerateRun a4 = generate(chained, {}, 50), b4 = generate(plain, {}, 50);
  expect_same(a4, b4, "to a full context");
  EXPECT_EQ(a4.result.stop_reason, MOEVK_STOP_CONTEXT_FULL);
  // One-token generations never chain anything, and steps are counted alike.
  moevk_context_reset(chained);
  moevk_context_reset(plain);
  const GenerateRun a5 = generate(chained, prompt, 1), b5 = generate(plain, prompt, 1);
  expect_same(a5, b5, "max_tokens 1");
  // After all that the KV caches agree: the same token decoded at the same position gives
  // bit-identical logits.
  const int32_t t[1] = {7};
  ASSERT_EQ(moevk_decode(chained, t, 1, 0), MOEVK_OK);
  ASSERT_EQ(moevk_decode(plain, t, 1, 0), MOEVK_OK);
  const float *la = nullptr, *lb = nullptr;
  ASSERT_EQ(moevk_get_logits(chained, -1, &la), MOEVK_OK);
  ASSERT_EQ(moevk_get_logits(plain, -1, &lb), MOEVK_OK);
  const int32_t n_vocab = moevk_model_n_vocab(api.model);
  EXPECT_TRUE(std::equal(la, la + n_vocab, lb));
}

// Sampled steps: decode(..., Sample) with a draw, plain and chained, against the host sampler
// on the copied logits of a third session (LogitsMode::Last) with the same uniforms.
// Four times: with the CLI's top-k 40, with top-k off (the whole vocabulary, top-p alone), with
// a top-k past the best 64 (the whole-row draw's top-k cut), and with a temperature alone
// (parameter -1: top-k, top-p and min-p off, the draw's point from the slices' tempered sums).
class GpuSamplingTopK : public ::testing::TestWithParam<int32_t> {};
INSTANTIATE_TEST_SUITE_P(TopK, GpuSamplingTopK, ::testing::Values(40, 0, 100, -1), [](const auto& info) {
  return info.param < 0 ? std::string("temperature_alone") : "top_k_" + (info.param ? std::to_string(info.param) : "off");
});
TEST_P(GpuSamplingTopK, SessionDrawsWhatTheHostSamplerDraws) {
  test::TempFile file("sampled-session.gguf");
  auto model = tiny_model(file);
  generate::SamplerParams sp;  // the CLI's defaults: 0.8, top-k 40, top-p 0.95, min-p 0.05
  sp.temperature = 1.2f;       // hotter, so draws spread over several candidates
  sp.top_k = std::max(GetParam(), 0);
  if (GetParam() == 0) sp.min_p = 0.0f, sp.top_p = 0.9f;  // as OpenAI-style clients send it
  if (GetParam() < 0) sp.min_p = 0.0f, sp.top_p = 1.0f;  // their defaults: nothing cuts the row
  if (sp.top_k == 100) sp.min_p = 0.0f;                  // top-k's cut and top-p's share of its mass
  const std::vector<double> u{0.91, 0.05, 0.5, 0.33, 0.77, 0.62, 0.18, 0.44};
  const std::vector<int32_t> prompt{3, 17, 99, 4, 250, 8, 31};
  Session chained(*model, SessionOptions{32, 8, false}), plain(*model, SessionOptions{32, 8, false}),
      host(*model, SessionOptions{32, 8, false});
  EXPECT_THROW(plain.decode(prompt, LogitsMode::Sample), Error);  // no draw set
  generate::SamplerParams greedy = sp;
  greedy.temperature = 0.0f;  // without penalties: the argmax's job (LogitsMode::ArgmaxOnly)
  EXPECT_THROW(plain.set_sampling(greedy, 0.5), Error);
  generate::SamplerParams whole_history = sp;  // any window is the GPU's (moevk_generate's ctx 0 and 1 below)
  whole_history.repeat_penalty = 1.1f, whole_history.repeat_last_n = -1;
  EXPECT_NO_THROW(plain.set_sampling(whole_history, 0.5));
  EXPECT_THROW(plain.set_sampling(sp, 1.0), Error);

  // The host's tokens: the copied logits sampled with the same uniforms; the candidates of a
  // Sample step are the best 64 of those logits.
  generate::Sampler sampler(sp);
  std::vector<int32_t> want;
  std::vector<std::vector<float>> host_logits;
  host.decode(prompt, LogitsMode::Last);
  for (size_t i = 0; i < u.size(); ++i) {
    const auto l = host.logits(-1);
    host_logits.emplace_back(l.begin(), l.end());
    want.push_back(sampler.sample_with(l, {}, u[i]));
    const int32_t t[1] = {want.back()};
    host.decode(t, LogitsMode::Last);
  }
  std::set<int32_t> distinct(want.begin(), want.end());
  EXPECT_GT(distinct.size(), 2u) << "the draws should not all land on one token";

  // Plain Sample steps.
  std::vector<int32_t> got;
  plain.set_sampling(sp, u[0]);
  plain.decode(prompt, LogitsMode::Sample);
  got.push_back(plain.sampled());
  {
    const auto c = plain.candidates();
    ASSERT_EQ(c.size(), 64u);
    std::vector<int32_t> order(host_logits[0].size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = int32_t(i);
    const auto& l = host_logits[0];
    std::partial_sort(order.begin(), order.begin() + 64, order.end(),
                      [&](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
    for (size_t i = 0; i < 64; ++i) {
      EXPECT_EQ(c[i].id, order[i]) << i;
      EXPECT_EQ(c[i].logit, l[order[i]]) << i;
    }
  }
  EXPECT_THROW(plain.argmax(), Error);
  for (size_t i = 1; i < u.size(); ++i) {
    plain.set_sampling(sp, u[i]);
    const int32_t t[1] = {got.back()};
    plain.decode(t, LogitsMode::Sample);
    got.push_back(plain.sampled());
  }
  EXPECT_EQ(got, want);

  // Chained: the first step plain, then two in flight at a time, each with its own draw.
  chained.set_sampling(sp, u[0]);
  chained.decode(prompt, LogitsMode::Sample);
  std::vector<int32_t> chain{chained.sampled()};
  ASSERT_TRUE(chained.chain_ready());
  size_t launched = 1;
  chained.launch_chained(u[launched++]);
  chained.launch_chained(u[launched++]);
  while (chain.size() < u.size()) {
    chain.push_back(chained.finish_chained());
    if (launched < u.size()) chained.launch_chained(u[launched++]);
  }
  EXPECT_EQ(chain, want);
  EXPECT_THROW(chained.candidates(), Error);  // chained steps copy no candidates
  EXPECT_EQ(chained.n_past(), plain.n_past());
}

// moevk_generate at a temperature on three contexts of one model: chained GPU draws (the
// default), unchained (MOEVK_DISABLE=chain_steps) and host sampling (gpu_sampling off); plain
// sampling, sampling with every penalty over a window and over the whole history, top-k off (the whole vocabulary), a top-k
// past the best 64, and greedy with a repetition penalty (on the GPU too: the penalised row's
// best).
TEST(GpuSampling, GenerateGivesTheHostSamplersStream) {
  test::TempFile file("sampled-generate.gguf");
  ApiContexts api;
  ASSERT_NO_FATAL_FAILURE(open_contexts(file, 32, {"", "chain_steps", "gpu_sampling"}, api));
  const std::vector<moevk_context*>& ctxs = api.ctxs;
  struct Sampling {
    const char* what;
    float temperature, repeat, presence, frequency;
    int32_t last_n, top_k;
  };
  for (const Sampling& sampling : {Sampling{"plain", 1.2f, 1.0f, 0.0f, 0.0f, 64, 40},
                                   Sampling{"penalties", 0.9f, 1.3f, 0.3f, 0.1f, 12, 40},
                                   Sampling{"penalties over the whole history", 1.0f, 1.4f, 0.2f, 0.2f, -1, 40},
                                   Sampling{"top-k off, penalties", 1.1f, 1.2f, 0.0f, 0.0f, 32, 0},
                                   Sampling{"top-k 100", 1.3f, 1.0f, 0.0f, 0.0f, 64, 100},
                                   Sampling{"greedy, repetition penalty", 0.0f, 1.8f, 0.0f, 0.0f, 64, 40}}) {
    SCOPED_TRACE(sampling.what);
    moevk_sampler_params sp = moevk_sampler_default_params();
    sp.top_k = sampling.top_k;
    sp.temperature = sampling.temperature;
    sp.repeat_penalty = sampling.repeat;
    sp.presence_penalty = sampling.presence;
    sp.frequency_penalty = sampling.frequency;
    sp.repeat_last_n = sampling.last_n;
    sp.seed = 1234;
    for (moevk_context* c : ctxs) moevk_context_reset(c);
    const std::vector<int32_t> prompt{3, 17, 99, 4, 250};
    // max_tokens, continuing, a callback stop (a chained step dropped: its draw goes back), then
    // running into the full context.
    struct Call {
      bool first;
      int max_tokens, stop_after;
      const char* what;
    };
    const Call calls[] = {{true, 6, 0, "max_tokens 6"},
                          {false, 4, 0, "continued, 4 more"},
                          {false, 10, 3, "stopped by the callback after 3"},
                          {false, 50, 0, "to a full context"}};
    std::vector<int32_t> all;
    for (const Call& call : calls) {
      GenerateRun r[3];
      for (int i = 0; i < 3; ++i)
        r[i] = generate(ctxs[i], call.first ? prompt : std::vector<int32_t>{}, call.max_tokens, call.stop_after, &sp);
      expect_same(r[0], r[2], call.what);
      expect_same(r[1], r[2], call.what);
      all.insert(all.end(), r[2].tokens.begin(), r[2].tokens.end());
    }
    std::set<int32_t> distinct(all.begin(), all.end());
    EXPECT_GT(distinct.size(), 3u) << "a sampled or penalised stream, not one token again and again";
  }
}

}  // namespace
