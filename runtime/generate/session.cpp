// Session: validates a decode call up front (nothing is appended on failure), splits it into
// chunks of n_batch, and replays one recording per (chunk size, output) — recordings are kept
// in a small map so the hot shapes (n_batch prefill, 1-token decode) are recorded once.
#include "generate/session.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <set>
#include <string>

#include "common/comma_list.hpp"
#include "common/error.hpp"
#include "models/forward.hpp"

namespace moevk::generate {

using models::StepOutput;

namespace {
constexpr size_t kMaxRecordings = 8;  // beyond this, cold sizes are dropped
static_assert(SamplerParams::kGpuMaxTopK == int32_t(ops::SampleTopK::kMaxK), "fits_gpu() names the shader's limit");
}  // namespace

struct Session::Impl {
  const models::Model& model;
  std::shared_ptr<vk::Context> ctx;  // keeps the device alive as long as the session
  uint32_t n_ctx = 0, n_batch = 0, n_past = 0;
  std::unique_ptr<models::Forward> forward;
  models::DecodeKernelShapes decode_kernels;  // as recorded: the options' with MOEVK_DECODE_CONFIG's
  std::map<std::pair<uint32_t, StepOutput>, std::unique_ptr<vk::Recorder>> recordings;
  std::vector<float> logits;  // [rows][n_vocab] of the last call
  uint32_t logits_rows = 0;
  uint32_t last_call_tokens = 0;  // Last mode keeps one row: that of token last_call_tokens - 1
  int32_t token = -1;  // the last step's token chosen on the GPU (ArgmaxOnly or Sample)
  StepOutput token_output = StepOutput::None;  // Argmax or Sample, where token is valid
  bool have_candidates = false;  // after an unchained Sample step
  ops::SampleParams sampling;    // the last set_sampling's parameters (last_pos set per step)
  std::vector<int32_t> tokens;   // [n_ctx]: the token decoded at each position below n_past
  bool draw_pending = false;  // set_sampling since the last Sample decode
  bool gpu_sampling = true;
  bool broken = false;  // a device loss mid-call: the KV cache is in an unknown state
  Profile profile;
  // Chained steps (launch_chained): a recording per output (Argmax, Sample) and slot, the slots in
  // flight oldest first, all of chain_output.
  std::unique_ptr<vk::Recorder> chained[2][2];
  std::vector<int> in_flight;
  int next_slot = 0;
  bool chain_ready = false;
  StepOutput chain_output = StepOutput::Argmax;
  bool chain_steps = true;
  vk::Recorder& chained_rec(int slot) { return *chained[chain_output == StepOutput::Sample][slot]; }
  bool expert_stats = false;
  double gpu_wait_ms = 0;  // Session::gpu_wait_ms

  // rec.wait(), its time blocked added to gpu_wait_ms (a throw's too).
  void wait_on(vk::Recorder& rec) {
    struct Timer {
      double& total;
      std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
      ~Timer() { total += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count(); }
    } timer{gpu_wait_ms};
    rec.wait();
  }

  // Waits for every chained step in flight and forgets them.
  void drop_chained() {
    while (!in_flight.empty()) {
      const int slot = in_flight.front();
      in_flight.erase(in_flight.begin());
      try {
        wait_on(chained_rec(slot));
      } catch (const Error&) {
        for (int s : in_flight) {  // a lost device: nothing more runs, but nothing is left pending
          try {
            wait_on(chained_rec(s));
          } catch (const Error&) {
          }
        }
        in_flight.clear();
        broken = true;
        throw;
      }
    }
    chain_ready = false;
  }

  Impl(const models::Model& m) : model(m), ctx(m.shared_context()) {}

  // After a submit of `rec` (n tokens): adds its stage intervals to the profile of its kind.
  void account(vk::Recorder& rec, uint32_t n) {
    StepProfile& p = n == 1 ? profile.decode : profile.prefill;
    ++p.steps;
    p.tokens += n;
    p.dispatches_per_step = rec.dispatch_count();
    p.barriers_per_step = rec.barrier_count();
    if (!profile.enabled) return;
    const std::vector<double> ms = rec.timestamps_ms();
    const std::vector<uint32_t>& tags = rec.timestamp_tags();
    for (size_t i = 1; i < ms.size() && i < tags.size(); ++i) {
      // Clamped: a wrapped or out-of-order pair must not make a stage negative.
      const double dt = std::max(0.0, ms[i] - ms[i - 1]);
      p.stage_ms[std::min<uint32_t>(tags[i], models::kStageCount - 1)] += dt;
      p.gpu_ms += dt;
    }
  }

  vk::Recorder& recording(uint32_t n, StepOutput output) {
    auto key = std::make_pair(n, output);
    auto it = recordings.find(key);
    if (it != recordings.end()) return *it->second;
    if (recordings.size() >= kMaxRecordings) {
      for (auto i = recordings.begin(); i != recordings.end();) {
        if (i->first.first != n_batch && i->first.first != 1) i = recordings.erase(i);
        else ++i;
      }
    }
    auto rec = std::make_unique<vk::Recorder>(*ctx, profile.enabled ? forward->timestamps_per_step() : 0);
    forward->record(*rec, n, output);
    return *recordings.emplace(key, std::move(rec)).first->second;
  }
};

Session::Session(const models::Model& model, const SessionOptions& options) : impl_(std::make_unique<Impl>(model)) {
  const models::HParams& hp = model.hparams();
  model.context().check_usable();
  uint32_t n_ctx = options.n_ctx ? options.n_ctx : std::min<uint32_t>(hp.n_ctx_train, 4096);
  if (n_ctx == 0) fail(MOEVK_ERROR_INVALID_ARGUMENT, "n_ctx must be positive");
  if (options.n_batch == 0) fail(MOEVK_ERROR_INVALID_ARGUMENT, "n_batch must be positive");
  impl_->n_ctx = n_ctx;
  impl_->n_batch = std::min(options.n_batch, n_ctx);
  impl_->tokens.assign(n_ctx, 0);
  const char* decode_config = std::getenv("MOEVK_DECODE_CONFIG");
  impl_->decode_kernels = options.decode_kernels.overridden_by(
      models::DecodeKernelShapes::parse(decode_config ? decode_config : "", "MOEVK_DECODE_CONFIG"));
  impl_->forward =
      std::make_unique<models::Forward>(model, impl_->n_batch, n_ctx, options.expert_stats, impl_->decode_kernels);
  // Without timestamp support the profile still counts steps, dispatches and barriers.
  impl_->profile.enabled = options.profile && model.context().caps().timestamps;
  impl_->forward->set_profile(impl_->profile.enabled);
  // MOEVK_DISABLE also names the step's fusions, to measure what each is worth on a device
  // (moevk bench) or to rule one out, without rebuilding.
  const std::set<std::string> off = env_comma_list("MOEVK_DISABLE");  // its device features are the Context's
  impl_->forward->set_fuse_norms(options.fuse_norms && !off.count("fuse_norms"));
  impl_->forward->set_fuse_kv_append(options.fuse_kv_append && !off.count("kv_append"));
  impl_->forward->set_fuse_rope_attention(options.fuse_rope_attention && !off.count("rope_attention"));
  impl_->forward->set_merge_products(options.merge_products && !off.count("merge_products"));
  impl_->forward->set_quantize_in_norm(options.quantize_in_norm);
  impl_->chain_steps = options.chain_steps && !off.count("chain_steps");
  // A device with too little shared memory for the sampling kernel samples on the host.
  impl_->gpu_sampling =
      options.gpu_sampling && !off.count("gpu_sampling") && ops::SampleTopK::fits(model.context().caps());
  impl_->expert_stats = options.expert_stats;
  impl_->forward->set_router_handoff(options.router_handoff && !off.count("router_handoff"));
  impl_->forward->set_attention_handoff(options.attention_handoff && !off.count("attention_handoff"));
  // The largest step is recorded now, so a batch the device cannot run fails here, naming the
  // limit, rather than at the first long prompt (and that recording is then ready for it).
  try {
    impl_->recording(impl_->n_batch, StepOutput::None);
    // Chosen decode kernel shapes are checked now too (the one-token step records them).
    const models::DecodeKernelShapes defaults;
    if (impl_->decode_kernels.effective() != defaults.effective()) impl_->recording(1, StepOutput::None);
  } catch (const Error& e) {
    // A workgroup shape the device cannot run: say where it came from.
    if (e.status() == MOEVK_ERROR_INVALID_ARGUMENT && decode_config && *decode_config)
      fail(MOEVK_ERROR_INVALID_ARGUMENT, std::string("MOEVK_DECODE_CONFIG=") + decode_config + ": " + e.what());
    if (e.status() != MOEVK_ERROR_UNSUPPORTED) throw;
    fail(MOEVK_ERROR_UNSUPPORTED, "n_batch " + std::to_string(impl_->n_batch) +
                                      " is more than this model can run in one step on this device (" + e.what() +
                                      "); use a smaller n_batch");
  }
}

Session::~Session() {
  // Recordings reference the forward's buffers: drop them first (one in flight waits).
  if (impl_) {
    for (auto& kind : impl_->chained)
      for (auto& rec : kind) rec.reset();
    impl_->recordings.clear();
    impl_->forward.reset();
  }
}

uint32_t Session::n_ctx() const { return impl_->n_ctx; }
uint32_t Session::n_past() const { return impl_->n_past; }
uint32_t Session::n_vocab() const { return impl_->model.hparams().n_vocab; }
const models::DecodeKernelShapes& Session::decode_kernels() const { return impl_->decode_kernels; }

void Session::reset() {
  impl_->drop_chained();
  impl_->n_past = 0;
  impl_->logits.clear();
  impl_->logits_rows = 0;
  impl_->token = -1;
  impl_->have_candidates = false;
  // The KV cache needs no clearing: attention reads only positions below n_past + t.
  if (!impl_->broken && !impl_->ctx->lost()) impl_->forward->reset_expert_counts();
}

void Session::truncate(uint32_t n_keep) {
  impl_->drop_chained();
  require(n_keep <= impl_->n_past, MOEVK_ERROR_INVALID_ARGUMENT,
          "truncate to " + std::to_string(n_keep) + " tokens: the context holds only " +
              std::to_string(impl_->n_past));
  impl_->n_past = n_keep;
  impl_->logits.clear();
  impl_->logits_rows = 0;
  impl_->token = -1;
  impl_->have_candidates = false;
}

void Session::decode(std::span<const int32_t> tokens, LogitsMode mode) {
  Impl& d = *impl_;
  if (d.broken || d.ctx->lost())
    fail(MOEVK_ERROR_DEVICE_LOST, "the GPU was lost during an earlier call; this session is unusable");
  d.drop_chained();
  if (tokens.empty()) fail(MOEVK_ERROR_INVALID_ARGUMENT, "decode: no tokens");
  if (mode == LogitsMode::Sample && !d.draw_pending)
    fail(MOEVK_ERROR_INVALID_ARGUMENT, "decode(..., Sample): no draw set (set_sampling before each such decode)");
  if (uint64_t(d.n_past) + tokens.size() > d.n_ctx)
    fail(MOEVK_ERROR_CONTEXT_FULL, "decode: " + std::to_string(d.n_past) + " tokens in the context + " +
                                       std::to_string(tokens.size()) + " new exceed n_ctx " + std::to_string(d.n_ctx));
  const uint32_t n_vocab = d.model.hparams().n_vocab;
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || uint32_t(tokens[i]) >= n_vocab)
      fail(MOEVK_ERROR_INVALID_ARGUMENT, "decode: token id " + std::to_string(tokens[i]) + " at index " +
                                             std::to_string(i) + " is outside the vocabulary (0.." +
                                             std::to_string(n_vocab - 1) + ")");

  d.logits_rows = 0;
  d.last_call_tokens = 0;
  d.token = -1;
  d.have_candidates = false;
  const StepOutput last_output = mode == LogitsMode::Last         ? StepOutput::Last
                                 : mode == LogitsMode::ArgmaxOnly ? StepOutput::Argmax
                                 : mode == LogitsMode::Sample     ? StepOutput::Sample
                                                                  : StepOutput::All;
  if (mode == LogitsMode::All) d.logits.resize(tokens.size() * uint64_t(n_vocab));
  try {
    for (size_t start = 0; start < tokens.size(); start += d.n_batch) {
      const uint32_t n = uint32_t(std::min<size_t>(d.n_batch, tokens.size() - start));
      const bool last_chunk = start + n == tokens.size();
      StepOutput out = StepOutput::None;
      if (mode == LogitsMode::All) out = StepOutput::All;
      else if (last_chunk) out = last_output;
      vk::Recorder& rec = d.recording(n, out);
      d.forward->set_inputs(d.n_past, tokens.subspan(start, n));
      std::copy_n(tokens.begin() + start, n, d.tokens.begin() + d.n_past);
      if (out == StepOutput::Sample) {
        // The penalties' window ends at this step's last token: its positions go to the ring
        // (the others are not read).
        const uint32_t last = d.n_past + n - 1, first = last + 1 - std::min(d.sampling.window, last + 1);
        d.forward->set_sample_ring(first, std::span<const int32_t>(d.tokens).subspan(first, last + 1 - first));
        ops::SampleParams sp = d.sampling;
        sp.last_pos = last;
        d.forward->set_sampling(-1, sp);
      }
      rec.submit_async();
      d.wait_on(rec);
      d.account(rec, n);
      d.n_past += n;
      if (out == StepOutput::All) {
        std::copy_n(d.forward->logits(out), uint64_t(n) * n_vocab, d.logits.begin() + start * n_vocab);
      } else if (out == StepOutput::Last) {
        const float* row = d.forward->logits(out);
        d.logits.assign(row, row + n_vocab);
      } else if (out == StepOutput::Argmax || out == StepOutput::Sample) {
        d.token = d.forward->token();
        d.token_output = out;
        d.have_candidates = out == StepOutput::Sample;
      }
    }
  } catch (const Error& e) {
    if (e.status() == MOEVK_ERROR_DEVICE_LOST || d.ctx->lost()) d.broken = true;
    throw;
  }
  if (mode == LogitsMode::All) d.logits_rows = uint32_t(tokens.size());
  if (mode == LogitsMode::Last) d.logits_rows = 1;
  d.last_call_tokens = uint32_t(tokens.size());
  d.chain_ready = mode == LogitsMode::ArgmaxOnly || mode == LogitsMode::Sample;
  d.chain_output = last_output;
  if (mode == LogitsMode::Sample) d.draw_pending = false;  // each draw is used once
}

void Session::set_sampling(const SamplerParams& params, double u) {
  require(params.fits_gpu(), MOEVK_ERROR_INVALID_ARGUMENT,
          "set_sampling: GPU sampling takes a temperature, or greedy with penalties");
  require(u >= 0.0 && u < 1.0, MOEVK_ERROR_INVALID_ARGUMENT, "set_sampling: the draw must be in [0, 1)");
  Impl& d = *impl_;
  d.sampling = ops::SampleParams{};
  // Top-k 1..64 draws among the best 64; none, or a larger one, from the whole row.
  d.sampling.all = !params.greedy() && (params.top_k <= 0 || params.top_k > SamplerParams::kGpuMaxTopK) ? 1u : 0u;
  d.sampling.k = params.greedy() ? 1u : uint32_t(std::max(params.top_k, 0));
  d.sampling.temperature = params.greedy() ? 0.0f : params.temperature;
  d.sampling.top_p = params.top_p;
  d.sampling.min_p = params.min_p;
  d.sampling.u = float(u);
  if (params.has_penalties()) {
    d.sampling.repeat_penalty = params.repeat_penalty;
    d.sampling.presence = params.presence_penalty;
    d.sampling.frequency = params.frequency_penalty;
    // The whole history (-1) is at most the context, which the ring holds.
    d.sampling.window = params.repeat_last_n < 0 ? d.n_ctx : std::min(uint32_t(params.repeat_last_n), d.n_ctx);
  }
  d.draw_pending = true;
}

int32_t Session::sampled() const {
  if (impl_->token < 0 || impl_->token_output != StepOutput::Sample)
    fail(MOEVK_ERROR_INVALID_ARGUMENT, "sampled: the last decode was not Sample");
  return impl_->token;
}

std::vector<Candidate> Session::candidates() const {
  if (!impl_->have_candidates)
    fail(MOEVK_ERROR_INVALID_ARGUMENT, "candidates: the last decode was not Sample (chained steps keep none)");
  std::vector<Candidate> out;
  for (const auto& [logit, id] : impl_->forward->candidates())
    if (id >= 0) out.push_back({id, logit});
  return out;
}

bool Session::samples_on_gpu() const { return impl_->gpu_sampling; }

bool Session::chain_ready() const { return impl_->chain_ready && !impl_->broken; }
uint32_t Session::chained_in_flight() const { return uint32_t(impl_->in_flight.size()); }
bool Session::chains_steps() const { return impl_->chain_steps; }
bool Session::expert_stats() const { return impl_->expert_stats; }

void Session::launch_chained(double u) {
  Impl& d = *impl_;
  if (d.broken || d.ctx->lost())
    fail(MOEVK_ERROR_DEVICE_LOST, "the GPU was lost during an earlier call; this session is unusable");
  require(d.chain_ready, MOEVK_ERROR_INTERNAL, "a chained step needs a greedy or sampled step before it");
  const bool sample = d.chain_output == StepOutput::Sample;
  require(!sample || (u >= 0.0 && u < 1.0), MOEVK_ERROR_INVALID_ARGUMENT, "launch_chained: the draw must be in [0, 1)");
  require(d.in_flight.size() < 2, MOEVK_ERROR_INTERNAL, "two chained steps are in flight already");
  const uint64_t position = uint64_t(d.n_past) + d.in_flight.size();
  if (position + 1 > d.n_ctx)
    fail(MOEVK_ERROR_CONTEXT_FULL, "decode: " + std::to_string(position) + " tokens in the context + 1 new exceed n_ctx " +
                                       std::to_string(d.n_ctx));
  const int slot = d.next_slot;
  std::unique_ptr<vk::Recorder>& chained = d.chained[sample][slot];
  if (!chained) {
    auto rec = std::make_unique<vk::Recorder>(*d.ctx, d.profile.enabled ? d.forward->timestamps_per_step() : 0);
    d.forward->record(*rec, 1, d.chain_output, slot);
    chained = std::move(rec);
  }
  d.forward->set_chained_inputs(slot, uint32_t(position));
  if (sample) {
    ops::SampleParams p = d.sampling;
    p.u = float(u);
    p.last_pos = uint32_t(position);
    d.forward->set_sampling(slot, p);
  }
  try {
    chained->submit_async();
  } catch (const Error& e) {
    if (e.status() == MOEVK_ERROR_DEVICE_LOST || d.ctx->lost()) d.broken = true;
    throw;
  }
  d.in_flight.push_back(slot);
  d.next_slot = 1 - slot;
}

int32_t Session::finish_chained() {
  Impl& d = *impl_;
  require(!d.in_flight.empty(), MOEVK_ERROR_INTERNAL, "no chained step in flight");
  const int slot = d.in_flight.front();
  d.in_flight.erase(d.in_flight.begin());
  try {
    d.wait_on(d.chained_rec(slot));
  } catch (const Error&) {
    d.drop_chained();  // throws again for a lost device after waiting what it can
    d.broken = true;
    throw;
  }
  d.account(d.chained_rec(slot), 1);
  d.tokens[d.n_past] = d.token;  // the step's input: the token the step before it chose
  d.n_past += 1;
  d.logits_rows = 0;
  d.last_call_tokens = 1;
  d.token = d.forward->chained_token(slot);
  d.token_output = d.chain_output;
  d.have_candidates = false;
  return d.token;
}

void Session::drop_chained() { impl_->drop_chained(); }

std::span<const float> Session::logits(int32_t index) const {
  const Impl& d = *impl_;
  const uint32_t n_vocab = d.model.hparams().n_vocab;
  if (d.logits_rows == 0) fail(MOEVK_ERROR_INVALID_ARGUMENT, "logits: the last decode kept no logits");
  // Rows kept are those of the last logits_rows tokens of the call (all of them, or the last one).
  const int64_t token = index < 0 ? int64_t(d.last_call_tokens) + index : index;
  const int64_t row = token - int64_t(d.last_call_tokens - d.logits_rows);
  if (token < 0 || token >= int64_t(d.last_call_tokens) || row < 0)
    fail(MOEVK_ERROR_INVALID_ARGUMENT, "logits: token " + std::to_string(index) + " of the last call (" +
                                           std::to_string(d.last_call_tokens) + " tokens) has no logits kept" +
                                           (d.logits_rows == 1 ? " (LogitsMode::Last keeps the last token's only)" : ""));
  return std::span<const float>(d.logits.data() + uint64_t(row) * n_vocab, n_vocab);
}

int32_t Session::argmax() const {
  if (impl_->token < 0 || impl_->token_output != StepOutput::Argmax)
    fail(MOEVK_ERROR_INVALID_ARGUMENT, "argmax: the last decode was not ArgmaxOnly");
  return impl_->token;
}

std::vector<std::vector<uint64_t>> Session::expert_counts() const { return impl_->forward->expert_counts(); }

const Profile& Session::profile() const { return impl_->profile; }
double Session::gpu_wait_ms() const { return impl_->gpu_wait_ms; }

MemoryUse Session::memory_use() const {
  MemoryUse m;
  m.weights = impl_->model.weight_bytes();
  m.kv_cache = impl_->forward->kv_cache_bytes();
  m.activations = impl_->forward->device_bytes() - m.kv_cache;
  m.device_peak = impl_->ctx->peak_device_allocated_bytes();
  return m;
}

}  // namespace moevk::generate
