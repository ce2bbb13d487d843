// Decode-step fusions and kernel choices against the same model without them: fused norms, the
// KV append and attention prologue, the router and attention handoffs, merged products, int8
// activations written by their producers, sliced argmax, decode kernel shapes, the integer-dot
// gate+up, and tensors larger than one binding. Each gives the same run, and the profile counts
// the dispatches and barriers it saves.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>

#include "common/comma_list.hpp"
#include "common/error.hpp"
#include "convert/convert.hpp"
#include "e2e/e2e_support.hpp"
#include "support/scoped_env.hpp"
#include "generate/session.hpp"
#include "models/decode_kernels.hpp"
#include "models/model.hpp"
#include "ops/transformer.hpp"

using namespace moevk;
using generate::LogitsMode;
using generate::Session;
using generate::SessionOptions;

// Two recordings of the same model that compute the same thing in another f32 order (~1e-7
// relative): `prompt` then `steps` greedy tokens through both sessions, each step's last logits
// within 2e-3 relative L2 and with the same argmax. K and V are stored in f16, where such a
// change flips a rounding now and then (2^-11 of one element), which moves the logits by ~1e-4
// relative (observed up to 2.7e-4 in L2 with the fused norms): a 7x margin, while a step
// computed wrongly is O(1).
namespace {
// The fusion tests below compare a session with a fusion against one without. A MOEVK_DISABLE
// that names the fusion (or one it needs) turns it off in both, so there is nothing to compare:
// they skip, saying so, instead of failing.
std::string disabled_by_environment(std::initializer_list<const char*> fusions) {
  const std::set<std::string> off = env_comma_list("MOEVK_DISABLE");
  for (const char* f : fusions)
    if (off.count(f)) return f;
  return "";
}
// `variable` (MOEVK_DISABLE or MOEVK_ENABLE) as it is, with `name` added: a session made under
// it differs from one made under the caller's list by that fusion or kernel alone.
std::string with_added(const char* variable, const std::string& name) {
  const char* now = std::getenv(variable);
  return now && *now ? std::string(now) + "," + name : name;
}
std::string also_disabling(const std::string& name) { return with_added("MOEVK_DISABLE", name); }
// The model at `path` in a context of its own with the opt-in `kernel` added to MOEVK_ENABLE.
std::unique_ptr<models::Model> load_enabling(const std::string& path, const std::string& kernel) {
  test::ScopedEnv enable("MOEVK_ENABLE", with_added("MOEVK_ENABLE", kernel));
  return models::Model::load(path, test::e2e_load_options());
}
#define SKIP_IF_DISABLED(...)                                                                  \
  do {                                                                                         \
    const std::string off_ = disabled_by_environment({__VA_ARGS__});                           \
    if (!off_.empty()) GTEST_SKIP() << "MOEVK_DISABLE turns " << off_ << " off: nothing to compare"; \
  } while (0)

void expect_same_greedy_run(Session& a, Session& b, std::vector<int32_t> tokens, int steps) {
  for (int step = 0; step < steps; ++step) {
    a.decode(tokens, LogitsMode::Last);
    b.decode(tokens, LogitsMode::Last);
    const auto la = a.logits(-1), lb = b.logits(-1);
    double diff = 0, norm = 0;
    for (size_t i = 0; i < la.size(); ++i) {
      diff += (double(la[i]) - lb[i]) * (double(la[i]) - lb[i]);
      norm += double(lb[i]) * lb[i];
    }
    EXPECT_LT(std::sqrt(diff / norm), 2e-3) << "step " << step;
    const int32_t next = int32_t(std::max_element(lb.begin(), lb.end()) - lb.begin());
    EXPECT_EQ(int32_t(std::max_element(la.begin(), la.end()) - la.begin()), next) << "step " << step;
    tokens = {next};
  }
}

// MOEVK_DISABLE=<fusion> records what the option's off switch records: a session made under the
// variable runs the same greedy steps as `off` (reset first) with the same decode dispatches.
void expect_env_disables_as_option(const models::Model& model, const char* fusion, Session& off) {
  std::optional<Session> by_env;
  {
    test::ScopedEnv disable("MOEVK_DISABLE", also_disabling(fusion));
    by_env.emplace(model, SessionOptions{64, 8, false});
  }
  off.reset();
  expect_same_greedy_run(*by_env, off, {1, 9, 200}, 2);
  EXPECT_EQ(by_env->profile().decode.dispatches_per_step, off.profile().decode.dispatches_per_step);
}
}  // namespace

// Decode steps fold every RMS norm into the products that read it (the norm's scale applied
// after the dot product instead of before). Against the same session with separate norm passes:
// the same run (expect_same_greedy_run), and per layer two dispatches and two barriers fewer
// (attention and FFN norms), one each for the output head.
// qwen2moe-tiny reads its FFN norm in every fused kernel: router, routed experts, the shared
// expert's products and its gate.
TEST(SessionFusedNorms, DecodeMatchesSeparateNormsWithFewerDispatches) {
  SKIP_IF_DISABLED("fuse_norms");
  test::TempFile file("session-qwen2moe-f32.gguf");
  convert::convert_hf(test::hf_fixture_dir("qwen2moe-tiny"), file.path(), quant::Type::F32, {});
  auto model = models::Model::load(file.path(), test::e2e_load_options());
  const uint32_t n_layer = model->hparams().n_layer;
  SessionOptions fused_options{64, 8, false, false, true}, plain_options{64, 8, false, false, false};
  Session fused(*model, fused_options), plain(*model, plain_options);
  expect_same_greedy_run(fused, plain, {1, 17, 33, 5, 101, 7}, 7);
  const auto& f = fused.profile().decode;
  const auto& p = plain.profile().decode;
  EXPECT_EQ(f.dispatches_per_step + 2 * n_layer + 1, p.dispatches_per_step);
  EXPECT_EQ(f.barriers_per_step + 2 * n_layer + 1, p.barriers_per_step);
  // The 6-token prompt is small enough for the matrix-vector kernels of attention and the output
  // head (the routed experts take the grouped path there): fused where they are.
  EXPECT_LT(fused.profile().prefill.dispatches_per_step, plain.profile().prefill.dispatches_per_step);
  // A batch for the tiled kernels keeps the layers' norm passes; only the output head, which
  // runs on the last token's row alone, takes its norm.
  std::vector<int32_t> long_prompt(32);
  for (size_t i = 0; i < long_prompt.size(); ++i) long_prompt[i] = int32_t(3 + 7 * i % 300);
  SessionOptions wide_fused{128, 32, false, false, true}, wide_plain{128, 32, false, false, false};
  Session wf(*model, wide_fused), wp(*model, wide_plain);
  wf.decode(long_prompt, LogitsMode::Last);
  wp.decode(long_prompt, LogitsMode::Last);
  EXPECT_EQ(wf.profile().prefill.dispatches_per_step + 1, wp.profile().prefill.dispatches_per_step);
}

// A device whose storage bindings are smaller than the model's tensors (lavapipe's 128 MiB
// against Mixtral-8x7B's 250 MiB expert tensors, here simulated at 20 KiB against qwen3moe-tiny):
// the model loads, matrices are bound in row chunks and expert tensors in windows of experts,
// with more dispatches per step and the same run (expect_same_greedy_run: the windows' partial
// sums add up in another order).
TEST(SessionSmallBindings, TensorsLargerThanABindingGiveTheSameLogits) {
  test::TempFile file("session-qwen3moe-f32.gguf");
  convert::convert_hf(test::hf_fixture_dir("qwen3moe-tiny"), file.path(), quant::Type::F32, {});
  auto whole = models::Model::load(file.path(), test::e2e_load_options());
  models::LoadOptions small = test::e2e_load_options();
  small.device.simulate_max_storage_buffer_range = 20 << 10;
  auto split = models::Model::load(file.path(), small);
  ASSERT_EQ(split->context().caps().max_storage_buffer_range, 20u << 10);
  Session a(*whole, SessionOptions{64, 8, false}), b(*split, SessionOptions{64, 8, false});
  expect_same_greedy_run(b, a, {1, 40, 7, 99, 3}, 5);
  EXPECT_GT(b.profile().decode.dispatches_per_step, a.profile().decode.dispatches_per_step);
  EXPECT_GT(b.profile().prefill.dispatches_per_step, a.profile().prefill.dispatches_per_step);
}

// A fused session against one with a fusion off, on every architecture family (llama and
// qwen2moe without q/k norms, qwen3moe with them): the same run (expect_same_greedy_run), with
// one dispatch and one barrier fewer per layer in decode steps, and one dispatch fewer per layer
// in the profile's prefill step (the last chunk's: 3 tokens here, decode-sized).
static void expect_one_dispatch_fewer_per_layer(const char* what, SessionOptions fused_options, SessionOptions plain_options) {
  for (const char* fixture : {"mixtral-tiny", "qwen2moe-tiny", "qwen3moe-tiny"}) {
    SCOPED_TRACE(fixture);
    test::TempFile file(std::string("session-") + what + "-" + fixture + ".gguf");
    convert::convert_hf(test::hf_fixture_dir(fixture), file.path(), quant::Type::F16, {});
    auto model = models::Model::load(file.path(), test::e2e_load_options());
    const uint32_t n_layer = model->hparams().n_layer;
    Session fused(*model, fused_options), plain(*model, plain_options);
    expect_same_greedy_run(fused, plain, {1, 9, 200, 31, 77, 5, 12, 3, 100, 41, 2}, 5);  // two prefill chunks
    EXPECT_EQ(fused.profile().decode.dispatches_per_step + n_layer, plain.profile().decode.dispatches_per_step);
    EXPECT_EQ(fused.profile().decode.barriers_per_step + n_layer, plain.profile().decode.barriers_per_step);
    EXPECT_EQ(fused.profile().prefill.dispatches_per_step + n_layer, plain.profile().prefill.dispatches_per_step);
  }
}

// The RoPE dispatch appends the step's K/V to the cache (no store pass), against attention's own
// store pass (prefill chunks of every size save it).
TEST(SessionKvAppend, RopeAppendsKvWithTheSameResults) {
  SKIP_IF_DISABLED("kv_append");
  SessionOptions fused{64, 8, false}, plain{64, 8, false};
  fused.fuse_rope_attention = plain.fuse_rope_attention = false;  // the prologue test's
  plain.fuse_kv_append = false;
  expect_one_dispatch_fewer_per_layer("append", fused, plain);
}

// Decode steps with the RoPE (and Qwen3's q/k norms) and KV append inside the attention
// dispatch, against the RoPE dispatch doing them (prefill chunks of up to 8 tokens take it too).
TEST(SessionKvAppend, AttentionPrologueGivesTheSameResults) {
  SKIP_IF_DISABLED("rope_attention", "kv_append");
  SessionOptions plain{64, 8, false};
  plain.fuse_rope_attention = false;
  expect_one_dispatch_fewer_per_layer("prologue", SessionOptions{64, 8, false}, plain);
}

// A 128-expert router (Qwen3-30B-A3B's count, on tiny-qwen3moe's shapes) takes the handoff path
// in decode steps: logits and top-k in one dispatch, the last workgroup ranking. Against the
// split path (mul_mv, a barrier, route_topk): the same run, one dispatch and one barrier fewer
// per layer; the counters it leaves at zero serve every later step (several decode steps, and a
// 3-token prefill chunk that takes the handoff path too).
TEST(SessionRouterHandoff, OneDispatchFewerPerLayerWithTheSameRun) {
  SKIP_IF_DISABLED("router_handoff");
  test::TempFile file("session-router-handoff.gguf");
  convert::MakeModelOverrides experts;
  experts.n_expert = 128;
  experts.n_expert_used = 8;
  convert::make_model(convert::make_model_spec("tiny-qwen3moe", experts), quant::Type::Q8_0, file.path(), 11, false, {});
  auto model = models::Model::load(file.path(), test::e2e_load_options());
  const uint32_t n_layer = model->hparams().n_layer;
  SessionOptions split_options{64, 8, false};
  split_options.router_handoff = false;
  Session handoff(*model, SessionOptions{64, 8, false}), split(*model, split_options);
  expect_same_greedy_run(handoff, split, {1, 9, 200, 31, 77, 5, 12, 3, 100, 41, 2}, 6);
  EXPECT_EQ(handoff.profile().decode.dispatches_per_step + n_layer, split.profile().decode.dispatches_per_step);
  EXPECT_EQ(handoff.profile().decode.barriers_per_step + n_layer, split.profile().decode.barriers_per_step);
  expect_env_disables_as_option(*model, "router_handoff", split);
}

// Decode attention with the chunks folded by the flash dispatch's last workgroup, against the
// attention_combine pass after a barrier (prefill chunks of up to 8 tokens take it too).
TEST(SessionAttentionHandoff, CombineInTheLastWorkgroupGivesTheSameResults) {
  SKIP_IF_DISABLED("attention_handoff");
  SessionOptions plain{64, 8, false};
  plain.attention_handoff = false;
  expect_one_dispatch_fewer_per_layer("attention-handoff", SessionOptions{64, 8, false}, plain);
}

// q, k and v in one dispatch (and gate/up of dense layers and of Qwen2-MoE's shared expert),
// against a dispatch each: the same greedy run (Qwen2-MoE's q/k/v biases included), two
// dispatches fewer per layer for q/k/v and one per gate/up pair, no barrier fewer (there was none
// between them), in decode steps and small prefill chunks alike; larger chunks quantize x once
// for those products (two barriers fewer per quantization saved).
TEST(SessionMergedProducts, OneDispatchForTheProductsOfOneInput) {
  SKIP_IF_DISABLED("merge_products");
  for (const char* fixture : {"mixtral-tiny", "qwen2moe-tiny", "qwen3moe-tiny"}) {
    SCOPED_TRACE(fixture);
    test::TempFile file(std::string("session-merged-") + fixture + ".gguf");
    convert::convert_hf(test::hf_fixture_dir(fixture), file.path(), quant::Type::Q8_0, {});
    auto model = models::Model::load(file.path(), test::e2e_load_options());
    const models::HParams& hp = model->hparams();
    uint32_t saved = 0;
    for (uint32_t l = 0; l < hp.n_layer; ++l) saved += 2 + (!hp.is_moe(l) || hp.has_shared_expert ? 1 : 0);
    SessionOptions separate{64, 8, false};
    separate.merge_products = false;
    Session merged(*model, SessionOptions{64, 8, false}), plain(*model, separate);
    expect_same_greedy_run(merged, plain, {1, 9, 200, 31, 77, 5, 12, 3, 100, 41, 2}, 5);  // two prefill chunks
    // Each row is computed by the same workgroup code either way: bit-identical logits.
    const auto lm = merged.logits(-1), lp = plain.logits(-1);
    EXPECT_TRUE(std::equal(lm.begin(), lm.end(), lp.begin(), lp.end()));
    EXPECT_EQ(merged.profile().decode.dispatches_per_step + saved, plain.profile().decode.dispatches_per_step);
    EXPECT_EQ(merged.profile().decode.barriers_per_step, plain.profile().decode.barriers_per_step);
    EXPECT_EQ(merged.profile().prefill.dispatches_per_step + saved, plain.profile().prefill.dispatches_per_step);
    expect_env_disables_as_option(*model, "merge_products", plain);
    // Prefill chunks on the integer-dot tiles (more tokens than mul_mv takes): the products of one
    // input share one quantization of it, the same counts saved, bit-identical logits. (With
    // quantize_in_norm, the default, the norm pass quantizes and neither quantizes again.)
    if (model->context().features().dot) {
      SessionOptions wide{64, 32, false}, wide_separate{64, 32, false};
      wide.quantize_in_norm = wide_separate.quantize_in_norm = false;
      wide_separate.merge_products = false;
      Session a(*model, wide), b(*model, wide_separate);
      const std::vector<int32_t> prompt{1, 9, 200, 31, 77, 5, 12, 3, 100, 41, 2, 7, 8, 60, 33, 21, 4};
      a.decode(prompt, LogitsMode::Last);
      b.decode(prompt, LogitsMode::Last);
      const auto la = a.logits(-1), lb = b.logits(-1);
      EXPECT_TRUE(std::equal(la.begin(), la.end(), lb.begin(), lb.end()));
      EXPECT_EQ(a.profile().prefill.dispatches_per_step + saved, b.profile().prefill.dispatches_per_step);
      EXPECT_EQ(a.profile().prefill.barriers_per_step + 2 * saved, b.profile().prefill.barriers_per_step);
    }
  }
}

namespace {
// Sessions with the int8 activations written by their producers and with a quantization pass
// per product; a 17-token prefill on both, every position's logits bit-identical.
const SessionOptions kFusedQ8{64, 32, false};
const SessionOptions kSeparateQ8 = [] {
  SessionOptions o{64, 32, false};
  o.quantize_in_norm = false;
  return o;
}();
void expect_same_prefill(Session& a, Session& b) {
  const std::vector<int32_t> prompt{1, 9, 200, 31, 77, 5, 12, 3, 100, 41, 2, 7, 8, 60, 33, 21, 4};
  a.decode(prompt, LogitsMode::All);
  b.decode(prompt, LogitsMode::All);
  for (int p = 0; p < int(prompt.size()); ++p) {
    const auto la = a.logits(p), lb = b.logits(p);
    EXPECT_TRUE(std::equal(la.begin(), la.end(), lb.begin(), lb.end())) << "position " << p;
  }
}
}  // namespace

// Prefill chunks on the integer-dot tiles: the norm pass writes the int8 activations their
// products read, and (head_dim a multiple of 32: the qwen3moe fixture's 32) attention writes its
// output as the output projection's, against a quantization pass per product. The same int8
// values either way, so bit-identical logits; per layer the attention block saves the pass and
// its barrier before q/k/v and, with the attention output, before the output projection; the
// MoE block the pass of x (it shared the grouping's barrier).
TEST(SessionQuantizeInNorm, NormWritesTheInt8ActivationsWithTheSameResults) {
  for (const char* fixture : {"mixtral-tiny", "qwen2moe-tiny", "qwen3moe-tiny"}) {
    SCOPED_TRACE(fixture);
    test::TempFile file(std::string("session-norm-q8-") + fixture + ".gguf");
    convert::convert_hf(test::hf_fixture_dir(fixture), file.path(), quant::Type::Q8_0, {});
    auto model = models::Model::load(file.path(), test::e2e_load_options());
    if (!model->context().features().dot) GTEST_SKIP() << "no integer dot product on this device";
    Session a(*model, kFusedQ8), b(*model, kSeparateQ8);
    expect_same_prefill(a, b);
    const uint32_t n_layer = model->hparams().n_layer;
    const uint32_t attn = model->hparams().head_dim % 32 == 0 ? 1 : 0;
    if (std::string(fixture) == "qwen3moe-tiny") {
      EXPECT_EQ(attn, 1u) << "the fixture covers the attention output";
    }
    if (!model->hparams().has_shared_expert) {  // Qwen2-MoE's shared expert shares the saving
      EXPECT_EQ(a.profile().prefill.dispatches_per_step + (2 + attn) * n_layer, b.profile().prefill.dispatches_per_step);
      EXPECT_EQ(a.profile().prefill.barriers_per_step + (1 + attn) * n_layer, b.profile().prefill.barriers_per_step);
    } else {
      EXPECT_LT(a.profile().prefill.dispatches_per_step + 2 * n_layer, b.profile().prefill.dispatches_per_step);
    }
    expect_same_greedy_run(a, b, {1, 9, 200, 31, 77, 5, 12, 3, 100, 41, 2, 7, 8, 60, 33, 21, 4, 5, 6}, 4);
  }
}

// Dense FFNs and Qwen2-MoE's shared expert: SwiGLU writes the down product's int8 activations
// (Elementwise::swiglu_q8) instead of f32 h and a quantization pass; the same int8 values, so
// bit-identical logits, and per dense layer a dispatch and a barrier fewer (the qwen3 preset's
// 32-wide heads and 160-wide FFN take every int8 shortcut of the layer).
TEST(SessionQuantizeInNorm, SwigluWritesTheDownProductsInt8Activations) {
  for (const char* preset : {"tiny-qwen3", "tiny-qwen2moe"}) {
    SCOPED_TRACE(preset);
    test::TempFile file(std::string("session-swiglu-q8-") + preset + ".gguf");
    convert::make_model(convert::make_model_spec(preset, {}), quant::Type::Q8_0, file.path(), 5, false, {});
    auto model = models::Model::load(file.path(), test::e2e_load_options());
    if (!model->context().features().dot) GTEST_SKIP() << "no integer dot product on this device";
    Session a(*model, kFusedQ8), b(*model, kSeparateQ8);
    expect_same_prefill(a, b);
    const uint32_t n_layer = model->hparams().n_layer;
    if (!model->hparams().has_shared_expert) {
      // Per layer: q/k/v's and the output projection's quantization (attention), gate+up's and
      // down's (FFN), each a dispatch and a barrier.
      EXPECT_EQ(a.profile().prefill.dispatches_per_step + 4 * n_layer, b.profile().prefill.dispatches_per_step);
      EXPECT_EQ(a.profile().prefill.barriers_per_step + 4 * n_layer, b.profile().prefill.barriers_per_step);
    } else {
      EXPECT_LT(a.profile().prefill.dispatches_per_step + 3 * n_layer, b.profile().prefill.dispatches_per_step);
    }
  }
}

// A vocabulary long enough for the greedy argmax to run in slices of workgroups (ops::Argmax's
// split, 5 slices of 2048 here): every greedy token is the host's argmax of the same step's logits.
TEST(SessionGreedy, SlicedArgmaxOverALongVocabularyMatchesTheLogits) {
  test::TempFile file("session-long-vocab.gguf");
  convert::MakeModelOverrides o;
  o.n_vocab = 8192 + 37;
  convert::make_model(convert::make_model_spec("tiny", o), quant::Type::Q8_0, file.path(), 3, false, {});
  auto model = models::Model::load(file.path(), test::e2e_load_options());
  ASSERT_GT(ops::Argmax(model->context()).slices(1, model->hparams().n_vocab, true), 1u);
  Session greedy(*model, SessionOptions{64, 8, false}), full(*model, SessionOptions{64, 8, false});
  std::vector<int32_t> tokens{1, 9, 200, 31, 4000, 8200};
  for (int step = 0; step < 6; ++step) {
    greedy.decode(tokens, LogitsMode::ArgmaxOnly);
    full.decode(tokens, LogitsMode::Last);
    const auto logits = full.logits(-1);
    const int32_t want = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    ASSERT_EQ(greedy.argmax(), want) << "step " << step;
    tokens = {want};
  }
}

// MOEVK_DISABLE names the step's fusions too: a session created under it records what the
// options' off switches record (dispatch and barrier counts of a decode step).
TEST(SessionKvAppend, DisableEnvironmentTurnsFusionsOff) {
  SKIP_IF_DISABLED("fuse_norms", "kv_append", "rope_attention", "attention_handoff");  // `fused` needs them
  test::TempFile file("session-disable-qwen3moe.gguf");
  convert::convert_hf(test::hf_fixture_dir("qwen3moe-tiny"), file.path(), quant::Type::F16, {});
  auto model = models::Model::load(file.path(), test::e2e_load_options());
  SessionOptions off_options{64, 8, false};
  off_options.fuse_norms = off_options.fuse_kv_append = off_options.fuse_rope_attention = false;
  off_options.attention_handoff = false;
  Session by_options(*model, off_options);
  std::optional<Session> by_env_storage;
  {
    test::ScopedEnv disable("MOEVK_DISABLE", also_disabling("Fuse_Norms,kv_append,rope_attention,attention_handoff"));
    by_env_storage.emplace(*model, SessionOptions{64, 8, false});
  }
  Session& by_env = *by_env_storage;
  Session fused(*model, SessionOptions{64, 8, false});
  const std::vector<int32_t> prompt{1, 9, 200}, next{5};
  for (Session* s : {&by_options, &by_env, &fused}) {
    s->decode(prompt, LogitsMode::Last);
    s->decode(next, LogitsMode::Last);
  }
  EXPECT_EQ(by_env.profile().decode.dispatches_per_step, by_options.profile().decode.dispatches_per_step);
  EXPECT_EQ(by_env.profile().decode.barriers_per_step, by_options.profile().decode.barriers_per_step);
  EXPECT_LT(fused.profile().decode.dispatches_per_step, by_env.profile().decode.dispatches_per_step);
}


// The one-token kernels' workgroup shapes (models/decode_kernels.hpp) come from SessionOptions and
// MOEVK_DECODE_CONFIG (which replaces the parts it names), reach the ops (a shape the device
// cannot run fails at creation, naming the op and where the shape came from), and give the same
// run as the defaults: only the order of each sum changes.
TEST(SessionDecodeKernels, ShapesFromOptionsAndEnvironmentRunTheSameModel) {
  test::TempFile file("session-decode-kernels.gguf");
  convert::make_model(convert::make_model_spec("tiny-qwen3moe", {}), quant::Type::Q4_K, file.path(), 5, false, {});
  auto model = models::Model::load(file.path(), test::e2e_load_options());
  test::ScopedEnv config("MOEVK_DECODE_CONFIG", "");
  Session defaults(*model, SessionOptions{64, 8, false});
  EXPECT_EQ(defaults.decode_kernels().effective(), "experts=64x2,mv=128x4");

  SessionOptions shaped{64, 8, false};
  shaped.decode_kernels.experts_workgroup = 128;
  shaped.decode_kernels.experts_rows = 4;
  shaped.decode_kernels.mv_workgroup = 32;
  shaped.decode_kernels.mv_rows = 1;
  Session by_options(*model, shaped);
  EXPECT_EQ(by_options.decode_kernels().effective(), "experts=128x4,mv=32x1");
  expect_same_greedy_run(by_options, defaults, {1, 9, 200, 31}, 4);

  config.set("mv=256x8");
  std::optional<Session> by_env;
  by_env.emplace(*model, shaped);
  EXPECT_EQ(by_env->decode_kernels().effective(), "experts=128x4,mv=256x8");
  defaults.reset();
  expect_same_greedy_run(*by_env, defaults, {1, 9, 200, 31}, 4);

  auto creation_error = [&](const std::string& value) {
    config.set(value);
    try {
      Session s(*model, SessionOptions{64, 8, false});
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_ARGUMENT) << value;
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(creation_error("experts=16x1").find("MOEVK_DECODE_CONFIG=experts=16x1: moe experts: decode workgroup 16"),
            std::string::npos);
  EXPECT_NE(creation_error("mv=128x9").find("MOEVK_DECODE_CONFIG=mv=128x9: matmul: decode workgroup 128 x 9 rows"), std::string::npos)
      << creation_error("mv=128x9");
  for (const char* bad : {"experts=128", "experts=0x2", "experts=128x", "router=64x2", "experts=64x2;mv=1x1"})
    EXPECT_NE(creation_error(bad).find(std::string("MOEVK_DECODE_CONFIG: '")), std::string::npos) << bad;
}

TEST(SessionDecodeKernels, ParseTakesEitherPartAndNamesTheSource) {
  using models::DecodeKernelShapes;
  const DecodeKernelShapes both = DecodeKernelShapes::parse("experts=128x2,,mv=256x4", "--x");
  EXPECT_EQ(both.effective(), "experts=128x2,mv=256x4");
  EXPECT_EQ(DecodeKernelShapes::parse("", "--x").effective(), DecodeKernelShapes{}.effective());
  const DecodeKernelShapes mv = DecodeKernelShapes::parse("mv=64x1", "--x");
  EXPECT_EQ(mv.experts_workgroup, 0u);
  EXPECT_EQ(both.overridden_by(mv).effective(), "experts=128x2,mv=64x1");
  const DecodeKernelShapes down = DecodeKernelShapes::parse("down=32x4", "--x");
  EXPECT_EQ(down.experts_workgroup, 0u);
  EXPECT_EQ(down.experts_options().down_workgroup, 32u);
  EXPECT_EQ(down.experts_options().down_rows, 4u);
  EXPECT_EQ(down.effective(), "experts=64x2,down=32x4,mv=128x4");
  EXPECT_EQ(both.overridden_by(down).effective(), "experts=128x2,down=32x4,mv=256x4");
  try {
    DecodeKernelShapes::parse("experts=2x", "--decode-configs");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("--decode-configs: 'experts=2x'"), std::string::npos) << e.what();
  }
}

// MOEVK_ENABLE=dot_decode (opt-in until a GPU measures it): the one-token expert gate+up on
// the integer dot product. The FFN norm can no longer fold into the experts, so each MoE layer
// gains the norm pass (rms_norm_q8, writing the int8 x the experts read and the f32 x the router
// reads) and its barrier; decode steps stay close to the float kernels': x to int8 per 32
// elements moves each gate/up product by ~0.5% rms (moe_experts_test's model), which these tiny
// random models carry through 2-3 layers to the logits; 3e-2 bounds that with margin, where a
// wrong product is O(1). The greedy token is not compared: a near tie may flip.
TEST(SessionDotDecode, GateUpOnTheIntegerDotProductKeepsTheLogitsClose) {
  for (const char* fixture : {"mixtral-tiny", "qwen2moe-tiny", "qwen3moe-tiny"}) {
    SCOPED_TRACE(fixture);
    test::TempFile file(std::string("session-dot-decode-") + fixture + ".gguf");
    convert::convert_hf(test::hf_fixture_dir(fixture), file.path(), quant::Type::Q4_0, {});
    auto plain = models::Model::load(file.path(), test::e2e_load_options());
    if (!plain->context().features().dot || !plain->context().features().subgroup_arithmetic)
      GTEST_SKIP() << "no integer dot product on this device";
    if (plain->context().features().dot_decode) GTEST_SKIP() << "MOEVK_ENABLE turns dot_decode on for both";
    const auto dot = load_enabling(file.path(), "dot_decode");
    ASSERT_TRUE(dot->context().features().dot_decode);
    Session a(*dot, SessionOptions{64, 8, false}), b(*plain, SessionOptions{64, 8, false});
    std::vector<int32_t> tokens{1, 9, 200, 31, 77, 5};
    for (int step = 0; step < 5; ++step) {
      a.decode(tokens, LogitsMode::Last);
      b.decode(tokens, LogitsMode::Last);
      const auto la = a.logits(-1), lb = b.logits(-1);
      const double err = test::relative_l2_error(la.data(), lb.data(), la.size());
      EXPECT_LT(err, 3e-2) << "step " << step;
      if (step > 0) {  // step 0 is the 6-token prompt: a prefill chunk, the same kernels in both
        EXPECT_GT(err, 0.0) << "step " << step << ": bit-identical, so the dot kernel did not run";
      }
      tokens = {int32_t(std::max_element(lb.begin(), lb.end()) - lb.begin())};
    }
    const uint32_t moe_layers = dot->hparams().n_layer;  // every layer of these fixtures is MoE
    EXPECT_EQ(a.profile().decode.dispatches_per_step, b.profile().decode.dispatches_per_step + moe_layers);
    EXPECT_EQ(a.profile().decode.barriers_per_step, b.profile().decode.barriers_per_step + moe_layers);
  }
}

// MOEVK_ENABLE=wide_decode (opt-in until a GPU measures it): the one-token expert and dense
// products take 32 elements a thread step (16 quant bytes) on Q4_0 weights. The same sums in another f32
// order: the logits within expect_same_greedy_run's 2e-3 with the same greedy tokens, the same
// dispatches and barriers, and not bit-identical (else the wide kernels did not run).
TEST(SessionWideDecode, SixteenByteStepsGiveTheSameRun) {
  for (const char* fixture : {"mixtral-tiny", "qwen3moe-tiny"}) {
    SCOPED_TRACE(fixture);
    test::TempFile file(std::string("session-wide-decode-") + fixture + ".gguf");
    convert::convert_hf(test::hf_fixture_dir(fixture), file.path(), quant::Type::Q4_0, {});
    auto plain = models::Model::load(file.path(), test::e2e_load_options());
    if (plain->context().features().wide_decode) GTEST_SKIP() << "MOEVK_ENABLE turns wide_decode on for both";
    const auto wide = load_enabling(file.path(), "wide_decode");
    ASSERT_TRUE(wide->context().features().wide_decode);
    Session a(*wide, SessionOptions{64, 8, false}), b(*plain, SessionOptions{64, 8, false});
    std::vector<int32_t> tokens{1, 9, 200, 31, 77, 5};
    double largest = 0;
    for (int step = 0; step < 5; ++step) {
      a.decode(tokens, LogitsMode::Last);
      b.decode(tokens, LogitsMode::Last);
      const auto la = a.logits(-1), lb = b.logits(-1);
      const double err = test::relative_l2_error(la.data(), lb.data(), la.size());
      EXPECT_LT(err, 2e-3) << "step " << step;
      largest = std::max(largest, err);
      const int32_t next = int32_t(std::max_element(lb.begin(), lb.end()) - lb.begin());
      EXPECT_EQ(int32_t(std::max_element(la.begin(), la.end()) - la.begin()), next) << "step " << step;
      tokens = {next};
    }
    EXPECT_GT(largest, 0.0) << "bit-identical: the wide kernels did not run";
    EXPECT_EQ(a.profile().decode.dispatches_per_step, b.profile().decode.dispatches_per_step);
    EXPECT_EQ(a.profile().decode.barriers_per_step, b.profile().decode.barriers_per_step);
  }
}
