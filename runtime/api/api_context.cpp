// C API: contexts, decoding, sampling and streamed generation.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <optional>

#include <nlohmann/json.hpp>

#include "api/api_internal.hpp"
#include "api/handles.hpp"
#include "generate/stop.hpp"
#include "generate/token_grammar.hpp"

using moevk::api::copy_params;
using moevk::api::guard;
using moevk::api::invalid_argument;
using moevk::api::struct_size_error;
using moevk::generate::LogitsMode;

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

moevk::generate::SamplerParams to_internal(const moevk_sampler_params& p) {
  moevk::generate::SamplerParams s;
  s.temperature = p.temperature;
  s.top_k = p.top_k;
  s.top_p = p.top_p;
  s.min_p = p.min_p;
  s.repeat_penalty = p.repeat_penalty;
  s.repeat_last_n = p.repeat_last_n;
  s.presence_penalty = p.presence_penalty;
  s.frequency_penalty = p.frequency_penalty;
  s.seed = p.seed;
  return s;
}

bool same_params(const moevk_sampler_params& a, const moevk_sampler_params& b) {
  return a.temperature == b.temperature && a.top_k == b.top_k && a.top_p == b.top_p && a.min_p == b.min_p &&
         a.repeat_penalty == b.repeat_penalty && a.repeat_last_n == b.repeat_last_n &&
         a.presence_penalty == b.presence_penalty && a.frequency_penalty == b.frequency_penalty &&
         a.seed == b.seed;
}

// The context's sampler for `p`, made anew (seeded) when the parameters change.
moevk::generate::Sampler& sampler_for(moevk_context& c, const moevk_sampler_params& p) {
  if (!c.sampler || !same_params(c.sampler_params, p)) {
    c.sampler = std::make_unique<moevk::generate::Sampler>(to_internal(p));
    c.sampler_params = p;
  }
  return *c.sampler;
}

// Runs f(u) with the sampler's next draw u (none, and u = 0, for greedy parameters: greedy with
// penalties draws nothing), giving the draw back when f throws, so the stream is as if nothing
// ran. Returns the draw taken, if any.
template <class F>
std::optional<double> with_draw(moevk::generate::Sampler& sampler, F&& f) {
  const bool draws = !sampler.params().greedy();
  const double u = draws ? sampler.draw() : 0.0;
  try {
    f(u);
  } catch (...) {
    if (draws) sampler.give_back(u);
    throw;
  }
  return draws ? std::optional<double>(u) : std::nullopt;
}

// Runs tokens through the model, after the pending token of the last generation when there is
// one, and records them in the history. On failure nothing is appended and the pending token stays.
// LogitsMode::Sample draws the next token on the GPU with `sampling` and the next uniform of
// the context's sampler (given back on failure, so the stream is as if nothing ran).
void decode_tokens(moevk_context& c, std::span<const int32_t> tokens, LogitsMode mode,
                   const moevk_sampler_params* sampling = nullptr) {
  std::vector<int32_t> with_pending;
  std::span<const int32_t> batch = tokens;
  if (c.pending_token >= 0) {
    with_pending.reserve(tokens.size() + 1);
    with_pending.push_back(c.pending_token);
    with_pending.insert(with_pending.end(), tokens.begin(), tokens.end());
    batch = with_pending;
  }
  if (mode == LogitsMode::Sample) {
    moevk::generate::Sampler& sampler = sampler_for(c, *sampling);
    with_draw(sampler, [&](double u) {
      c.session->set_sampling(sampler.params(), u);
      c.session->decode(batch, mode);
    });
  } else {
    c.session->decode(batch, mode);
  }
  c.history.insert(c.history.end(), batch.begin(), batch.end());
  c.pending_rows = c.pending_token >= 0 ? 1 : 0;
  c.pending_token = -1;
  c.last_batch = static_cast<uint32_t>(batch.size());
  c.all_logits = mode == LogitsMode::All;
  c.last_logits_on_host = mode != LogitsMode::ArgmaxOnly && mode != LogitsMode::Sample;
  c.last_argmax = mode == LogitsMode::ArgmaxOnly ? c.session->argmax() : -1;
  c.last_sampled = mode == LogitsMode::Sample ? c.session->sampled() : -1;
}

// After Session::finish_chained: `token` is decoded (the step's own input), `next` the token its
// step chose on the GPU (greedy, or `sampled`); the context's bookkeeping as decode_tokens(c,
// {token}, ArgmaxOnly or Sample) and then sample_next leave it.
void accept_chained(moevk_context& c, int32_t token, int32_t next, bool sampled) {
  c.history.push_back(token);
  c.pending_rows = 0;
  c.pending_token = -1;
  c.last_batch = 1;
  c.all_logits = false;
  c.last_logits_on_host = false;
  c.last_argmax = sampled ? -1 : next;
  c.last_sampled = -1;  // a draw is taken once: the loop goes on with `next`
}

// A chained step after the newest one; a Sample chain takes the sampler's next draw.
void launch_chained(moevk_context& c, bool sample) {
  if (!sample) {
    c.session->launch_chained();
    return;
  }
  const std::optional<double> u = with_draw(*c.sampler, [&](double draw) { c.session->launch_chained(draw); });
  if (u) c.chained_draws.push_back(*u);
}

// The oldest chained step's token; its draw is used.
int32_t finish_chained(moevk_context& c) {
  if (!c.chained_draws.empty()) c.chained_draws.erase(c.chained_draws.begin());
  return c.session->finish_chained();
}

// Drops the chained steps in flight and gives their draws back, newest first: the next
// generation draws them again, as if those steps had never been launched.
void drop_chained(moevk_context& c) {
  c.session->drop_chained();
  for (auto u = c.chained_draws.rbegin(); u != c.chained_draws.rend(); ++u) c.sampler->give_back(*u);
  c.chained_draws.clear();
}

int32_t sample_next(moevk_context& c, const moevk_sampler_params& p) {
  const auto internal = to_internal(p);
  if (internal.greedy() && !internal.has_penalties()) {
    if (c.last_argmax >= 0) return c.last_argmax;
    if (c.last_logits_on_host) {
      auto logits = c.session->logits(-1);
      return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    }
  }
  // A draw made on the GPU with these parameters is taken once.
  if (c.last_sampled >= 0 && same_params(c.sampler_params, p)) {
    const int32_t token = c.last_sampled;
    c.last_sampled = -1;
    return token;
  }
  if (!c.last_logits_on_host)
    throw moevk::Error(MOEVK_ERROR_INVALID_ARGUMENT,
                       c.last_argmax >= 0 ? "no logits to sample from: the last step was greedy "
                                            "(argmax on the GPU, logits not copied); decode again"
                       : c.last_batch > 0 ? "no logits to sample from: the last step sampled on the GPU "
                                            "(logits not copied); decode again"
                                          : "no logits to sample from: decode tokens first");
  return sampler_for(c, p).sample(c.session->logits(-1), c.history);
}

// The grammar a generation is held to, where grammar or json_schema is set.
std::optional<moevk::generate::TokenGrammar> grammar_for(const moevk_model& model, const moevk_generate_params& p) {
  if (!p.grammar && !p.json_schema && !p.grammar_trigger) return std::nullopt;
  return moevk::api::make_token_grammar(model, p.grammar, p.json_schema, p.grammar_trigger, "moevk_generate");
}

// The next token under a grammar, from the last step's logits on the host: the sampler's own
// choice where the grammar allows it, else its choice among the allowed tokens alone.
int32_t sample_constrained(moevk_context& c, const moevk_sampler_params& p, moevk::generate::TokenGrammar& grammar) {
  const int32_t first = sample_next(c, p);
  if (grammar.allows(first)) return first;
  const auto logits = c.session->logits(-1);
  std::vector<float> masked(logits.begin(), logits.end());
  if (grammar.mask(masked) == 0)
    throw moevk::Error(MOEVK_ERROR_INVALID_ARGUMENT,
                       "grammar: no token of the vocabulary continues the text; the grammar expects " +
                           grammar.matcher().expected());
  return sampler_for(c, p).sample(masked, c.history);
}

nlohmann::json step_profile_json(const moevk::generate::StepProfile& p) {
  nlohmann::json stage_ms = nlohmann::json::object(), per_token = nlohmann::json::object();
  for (uint32_t s = 0; s < moevk::models::kStageCount; ++s) {
    const char* name = moevk::models::stage_name(static_cast<moevk::models::Stage>(s));
    stage_ms[name] = p.stage_ms[s];
    per_token[name] = p.tokens ? p.stage_ms[s] / double(p.tokens) : 0.0;
  }
  return {{"steps", p.steps},
          {"tokens", p.tokens},
          {"gpu_ms", p.gpu_ms},
          {"gpu_ms_per_token", p.tokens ? p.gpu_ms / double(p.tokens) : 0.0},
          {"stage_ms", stage_ms},
          {"stage_ms_per_token", per_token},
          {"dispatches_per_step", p.dispatches_per_step},
          {"barriers_per_step", p.barriers_per_step}};
}

nlohmann::json profile_json(const moevk::generate::Profile& p) {
  nlohmann::json stages = nlohmann::json::array();
  for (uint32_t s = 0; s < moevk::models::kStageCount; ++s)
    stages.push_back(moevk::models::stage_name(static_cast<moevk::models::Stage>(s)));
  return {{"enabled", p.enabled}, {"stages", stages}, {"decode", step_profile_json(p.decode)},
          {"prefill", step_profile_json(p.prefill)}};
}

}  // namespace

extern "C" {

moevk_context_params moevk_context_default_params(void) {
  moevk_context_params p{};
  p.struct_size = sizeof p;
  p.n_ctx = 0;
  p.n_batch = moevk::generate::SessionOptions{}.n_batch;
  return p;
}

moevk_status moevk_context_create(moevk_model* model, const moevk_context_params* params, moevk_context** ctx_out) {
  if (!ctx_out) return invalid_argument("moevk_context_create: ctx_out is NULL");
  *ctx_out = nullptr;
  if (!model) return invalid_argument("moevk_context_create: model is NULL");
  // A refused argument is the model's last error too (as a failure inside the call would be).
  auto refuse = [&](const std::string& message) {
    model->last_error.set(message);
    return invalid_argument(message.c_str());
  };
  // Callers built against an older header pass a smaller struct: copy only what they have.
  moevk_context_params p = moevk_context_default_params();
  if (params && !copy_params(*params, p))
    return refuse(moevk::api::struct_size_message<moevk_context_params>(
        "moevk_context_create: params->struct_size", params->struct_size));
  if (p.n_batch == 0) return refuse("moevk_context_create: n_batch must be at least 1");
  return guard(
      [&] {
        auto c = std::make_unique<moevk_context>();
        c->model = model;
        moevk::generate::SessionOptions o;
        o.n_ctx = p.n_ctx;
        o.n_batch = p.n_batch;
        o.expert_stats = p.expert_stats != 0;
        o.profile = p.profile != 0;
        c->session = std::make_unique<moevk::generate::Session>(*model->model, o);
        *ctx_out = c.release();
      },
      model->last_error);
}

void moevk_context_free(moevk_context* ctx) { delete ctx; }

const char* moevk_context_last_error(const moevk_context* ctx) {
  return ctx ? ctx->last_error.c_str() : moevk_last_error();
}

uint32_t moevk_context_n_ctx(const moevk_context* ctx) { return ctx ? ctx->session->n_ctx() : 0; }
uint32_t moevk_context_n_past(const moevk_context* ctx) { return ctx ? ctx->session->n_past() : 0; }
int32_t moevk_context_pending_token(const moevk_context* ctx) { return ctx ? ctx->pending_token : -1; }

namespace {
// After the session kept its first n_keep tokens (0: a reset): the history follows, and the
// pending token and the last call's logits are gone.
void keep_first(moevk_context& c, uint32_t n_keep) {
  c.history.resize(n_keep);
  c.pending_token = -1;
  c.pending_rows = 0;
  c.last_argmax = -1;
  c.last_sampled = -1;
  c.last_logits_on_host = false;
  c.last_batch = 0;
}
}  // namespace

moevk_status moevk_context_reset(moevk_context* ctx) {
  if (!ctx) return invalid_argument("moevk_context_reset: ctx is NULL");
  return guard(
      [&] {
        ctx->session->reset();
        keep_first(*ctx, 0);
        ctx->sampler.reset();  // a reset context samples as a new one: the seeded stream starts again
      },
      &ctx->last_error);
}

moevk_status moevk_context_truncate(moevk_context* ctx, uint32_t n_keep) {
  if (!ctx) return invalid_argument("moevk_context_truncate: ctx is NULL");
  return guard(
      [&] {
        ctx->session->truncate(n_keep);  // refuses n_keep > n_past before anything changes
        keep_first(*ctx, n_keep);
      },
      &ctx->last_error);
}

moevk_status moevk_decode(moevk_context* ctx, const int32_t* tokens, size_t n_tokens, int all_logits) {
  if (!ctx) return invalid_argument("moevk_decode: ctx is NULL");
  if (!tokens && n_tokens) return invalid_argument("moevk_decode: tokens is NULL");
  return guard(
      [&] {
        if (n_tokens == 0 && ctx->pending_token < 0) return;  // with one pending, it alone is decoded
        decode_tokens(*ctx, std::span<const int32_t>(tokens, n_tokens), all_logits ? LogitsMode::All : LogitsMode::Last);
      },
      &ctx->last_error);
}

moevk_status moevk_get_logits(moevk_context* ctx, int32_t index, const float** logits_out) {
  if (!ctx || !logits_out) return invalid_argument("moevk_get_logits: NULL argument");
  *logits_out = nullptr;
  return guard(
      [&] {
        if (!ctx->last_logits_on_host && ctx->last_batch == 0)
          throw moevk::Error(MOEVK_ERROR_INVALID_ARGUMENT, "no logits: call moevk_decode first");
        if (!ctx->last_logits_on_host)
          throw moevk::Error(MOEVK_ERROR_INVALID_ARGUMENT,
                             "no logits: the last step was a moevk_generate step that chose its token on the GPU "
                             "(greedy: the argmax; or sampled, where the sampling fits the GPU) without "
                             "copying logits; call moevk_decode to read them");
        // Rows of the last step: the pending token's first (when one was fed), then the caller's.
        const int32_t rows = static_cast<int32_t>(ctx->last_batch);
        const int32_t first = static_cast<int32_t>(ctx->pending_rows);
        const int32_t row = index == -1 ? rows - 1 : index < 0 ? rows + index : first + index;
        if ((row < first && index != -1) || row >= rows || (!ctx->all_logits && row != rows - 1))
          throw moevk::Error(MOEVK_ERROR_INVALID_ARGUMENT,
                             "logits of token " + std::to_string(index) + " are not available (last decode had " +
                                 std::to_string(rows - first) + " tokens" +
                                 (ctx->all_logits ? "" : ", logits of the last only; pass all_logits") + ")");
        *logits_out = ctx->session->logits(ctx->all_logits ? row : -1).data();
      },
      &ctx->last_error);
}

moevk_sampler_params moevk_sampler_default_params(void) {
  moevk::generate::SamplerParams d;
  moevk_sampler_params p{};
  p.struct_size = sizeof p;
  p.temperature = d.temperature;
  p.top_k = d.top_k;
  p.top_p = d.top_p;
  p.min_p = d.min_p;
  p.repeat_penalty = d.repeat_penalty;
  p.repeat_last_n = d.repeat_last_n;
  p.presence_penalty = d.presence_penalty;
  p.frequency_penalty = d.frequency_penalty;
  p.seed = d.seed;
  return p;
}

moevk_status moevk_sample(moevk_context* ctx, const moevk_sampler_params* params, int32_t* token_out) {
  if (!ctx || !token_out) return invalid_argument("moevk_sample: NULL argument");
  moevk_sampler_params p = moevk_sampler_default_params();
  if (params && !copy_params(*params, p))
    return struct_size_error<moevk_sampler_params>("moevk_sample: params->struct_size", params->struct_size);
  return guard([&] { *token_out = sample_next(*ctx, p); }, &ctx->last_error);
}

moevk_generate_params moevk_generate_default_params(void) {
  moevk_generate_params p{};
  p.struct_size = sizeof p;
  p.add_special = 1;
  p.parse_special = 1;
  p.max_tokens = 128;
  p.sampling = moevk_sampler_default_params();
  return p;
}

moevk_status moevk_generate(moevk_context* ctx, const moevk_generate_params* params, moevk_generate_result* result) {
  if (!ctx || !params) return invalid_argument("moevk_generate: NULL argument");
  // Later fields will take their defaults when absent.
  moevk_generate_params p = moevk_generate_default_params();
  if (!copy_params(*params, p))
    return struct_size_error<moevk_generate_params>("moevk_generate: params->struct_size", params->struct_size);
  p.sampling = moevk_sampler_default_params();
  if (!copy_params(params->sampling, p.sampling))
    return struct_size_error<moevk_sampler_params>("moevk_generate: params->sampling.struct_size",
                                                   params->sampling.struct_size);
  // The result's size says how much of it the caller has: checked before anything runs.
  if (result && result->struct_size < moevk::api::FirstLayout<moevk_generate_result>::size)
    return struct_size_error<moevk_generate_result>("moevk_generate: result->struct_size", result->struct_size);
  const bool continues = ctx->pending_token >= 0;  // an empty prompt then just goes on
  if (!p.prompt && !p.prompt_tokens) return invalid_argument("moevk_generate: no prompt");
  if (p.prompt_tokens && p.n_prompt_tokens == 0 && !p.prompt && !continues)
    return invalid_argument("moevk_generate: empty prompt");
  if (p.max_tokens < 0) return invalid_argument("moevk_generate: max_tokens < 0");
  moevk_generate_result r{};
  r.struct_size = sizeof r;
  moevk_status status = guard(
      [&] {
        auto& c = *ctx;
        c.chained_draws.clear();  // left by a generation an error ended: those steps are gone
        const auto& tok = *c.model->tokenizer;
        std::optional<moevk::generate::TokenGrammar> grammar = grammar_for(*c.model, p);
        std::vector<int32_t> prompt;
        if (p.prompt_tokens) prompt.assign(p.prompt_tokens, p.prompt_tokens + p.n_prompt_tokens);
        else prompt = tok.encode(p.prompt, p.add_special != 0 && c.history.empty(), p.parse_special != 0);
        if (prompt.empty() && c.pending_token < 0)
          throw moevk::Error(MOEVK_ERROR_INVALID_ARGUMENT, "the prompt has no tokens");
        r.n_prompt_tokens = static_cast<int32_t>(prompt.size());

        // The token is chosen on the GPU where it can be: greedy as an argmax, sampling that fits
        // (SamplerParams::fits_gpu) as a draw from the best candidates.
        // A grammar chooses among the copied logits.
        const auto sampling = to_internal(p.sampling);
        const bool sample_on_gpu = sampling.fits_gpu() && c.session->samples_on_gpu();
        const LogitsMode mode = grammar                                        ? LogitsMode::Last
                                : sampling.greedy() && !sampling.has_penalties() ? LogitsMode::ArgmaxOnly
                                : sample_on_gpu                                ? LogitsMode::Sample
                                                                               : LogitsMode::Last;
        auto choose = [&] {
          if (!grammar) return sample_next(c, p.sampling);
          const int32_t token = sample_constrained(c, p.sampling, *grammar);
          grammar->accept(token);
          return token;
        };
        auto t0 = std::chrono::steady_clock::now();
        decode_tokens(c, prompt, mode, &p.sampling);
        int32_t next = choose();
        // Chosen on the GPU: the step that decodes `next` goes to the GPU before the host looks
        // at `next` (it takes the token from the GPU), and each later step before the host reads
        // the one in flight; a step nobody continues is dropped (Session::launch_chained), and
        // its draw given back. Expert counts would count a dropped step's choices, so they keep
        // the plain loop.
        const bool chain = (mode == LogitsMode::ArgmaxOnly || mode == LogitsMode::Sample) &&
                           c.session->chains_steps() && !c.session->expert_stats() && c.session->chain_ready();
        const bool chain_samples = mode == LogitsMode::Sample;
        auto room_for = [&](uint32_t steps) { return uint64_t(c.session->n_past()) + steps <= c.session->n_ctx(); };
        if (chain && p.max_tokens > 1 && room_for(1)) launch_chained(c, chain_samples);
        r.prompt_ms = ms_since(t0);
        c.prompt_ms_total += r.prompt_ms;
        c.prompt_tokens_total += r.n_prompt_tokens;

        std::vector<std::string> stop_list;
        for (size_t i = 0; i < p.n_stop_strings; ++i)
          if (p.stop_strings[i]) stop_list.emplace_back(p.stop_strings[i]);
        moevk::generate::StopStrings stops(std::move(stop_list));
        moevk::text::StreamDecoder stream(tok, /*skip_special=*/true);
        r.stop_reason = MOEVK_STOP_MAX_TOKENS;
        auto t1 = std::chrono::steady_clock::now();
        const double waited_before = c.session->gpu_wait_ms();
        auto emit = [&](const std::string& text, int32_t token) {
          return p.on_token && p.on_token(text.data(), text.size(), token, p.user_data) != 0;
        };
        // The last streamed token is decoded only if another one is wanted; otherwise it is left
        // pending for the next call, so no forward step is spent on a token nobody may continue.
        int32_t streamed_not_decoded = -1;
        for (int32_t n = 0; n < p.max_tokens; ++n) {
          if (!p.ignore_eos && tok.is_eog(next)) {
            r.stop_reason = MOEVK_STOP_EOG;
            break;
          }
          ++r.n_generated;
          streamed_not_decoded = next;
          bool stopped = false;
          std::string text = stops.push(stream.push(next), stopped);
          if (emit(text, next)) {
            r.stop_reason = MOEVK_STOP_CALLBACK;
            break;
          }
          if (stopped) {
            r.stop_reason = MOEVK_STOP_STRING;
            break;
          }
          if (grammar && grammar->complete()) {
            r.stop_reason = MOEVK_STOP_GRAMMAR;
            break;
          }
          if (n + 1 == p.max_tokens) break;
          if (c.session->n_past() + 1 > c.session->n_ctx()) {
            r.stop_reason = MOEVK_STOP_CONTEXT_FULL;
            break;
          }
          if (chain) {
            // The step decoding `next` is in flight; the one after it goes too where a token
            // after that may be wanted, then the host waits for the first.
            if (n + 2 < p.max_tokens && room_for(2)) launch_chained(c, chain_samples);
            next = finish_chained(c);
            accept_chained(c, streamed_not_decoded, next, chain_samples);
          } else {
            const int32_t one[1] = {next};
            decode_tokens(c, one, mode, &p.sampling);
            next = choose();
          }
          streamed_not_decoded = -1;
        }
        if (chain) drop_chained(c);  // the speculative step, where one is in flight
        c.pending_token = streamed_not_decoded;
        if (r.stop_reason != MOEVK_STOP_STRING && r.stop_reason != MOEVK_STOP_CALLBACK) {
          bool stopped = false;
          std::string rest = stops.push(stream.flush(), stopped);
          if (!stopped) rest += stops.flush();
          if (!rest.empty()) emit(rest, -1);
        }
        r.generate_ms = ms_since(t1);
        r.generate_wait_ms = std::min(r.generate_ms, c.session->gpu_wait_ms() - waited_before);
        c.generate_ms_total += r.generate_ms;
        c.generate_wait_ms_total += r.generate_wait_ms;
        c.generated_tokens_total += r.n_generated;
      },
      &ctx->last_error);
  if (result) {
    const size_t size = std::min(result->struct_size, sizeof r);
    std::memcpy(result, &r, size);
    result->struct_size = size;
  }
  return status;
}

moevk_status moevk_sample_grammar(moevk_context* ctx, const moevk_sampler_params* params, const moevk_grammar* grammar,
                                  int32_t* token_out) {
  if (!ctx || !grammar || !token_out) return invalid_argument("moevk_sample_grammar: NULL argument");
  moevk_sampler_params p = moevk_sampler_default_params();
  if (params && !copy_params(*params, p))
    return struct_size_error<moevk_sampler_params>("moevk_sample_grammar: params->struct_size", params->struct_size);
  return guard(
      [&] {
        if (grammar->model != ctx->model)
          throw moevk::Error(MOEVK_ERROR_INVALID_ARGUMENT, "moevk_sample_grammar: the grammar was made for another model");
        if (!ctx->last_logits_on_host)
          throw moevk::Error(MOEVK_ERROR_INVALID_ARGUMENT, ctx->last_batch == 0
                                                               ? "no logits to sample from: decode tokens first"
                                                               : "no logits to sample from: the last step chose its "
                                                                 "token on the GPU; call moevk_decode first");
        *token_out = sample_constrained(*ctx, p, *grammar->grammar);
      },
      &ctx->last_error);
}

moevk_status moevk_context_stats_json(moevk_context* ctx, char** json_out) {
  if (!ctx || !json_out) return invalid_argument("moevk_context_stats_json: NULL argument");
  return guard(
      [&] {
        nlohmann::json j;
        j["prompt_tokens"] = ctx->prompt_tokens_total;
        j["prompt_ms"] = ctx->prompt_ms_total;
        j["generated_tokens"] = ctx->generated_tokens_total;
        j["generate_ms"] = ctx->generate_ms_total;
        j["generate_wait_ms"] = ctx->generate_wait_ms_total;  // of generate_ms: blocked on the GPU
        j["n_past"] = ctx->session->n_past();
        j["pending_token"] = ctx->pending_token;
        j["n_ctx"] = ctx->session->n_ctx();
        j["expert_counts"] = ctx->session->expert_counts();
        j["profile"] = profile_json(ctx->session->profile());
        j["decode_kernels"] = ctx->session->decode_kernels().effective();
        // The device features the model's kernels were chosen with (MOEVK_DISABLE / MOEVK_ENABLE
        // at load included), so a benchmark row says which kernels it measured.
        j["features"] = ctx->model->model->context().features().describe();
        const moevk::generate::MemoryUse m = ctx->session->memory_use();
        j["memory"] = {{"weights_bytes", m.weights},
                       {"kv_cache_bytes", m.kv_cache},
                       {"activations_bytes", m.activations},
                       {"device_peak_bytes", m.device_peak}};
        *json_out = moevk::api::to_c_string(j.dump());
      },
      &ctx->last_error);
}

}  // extern "C"
