// `moevk chat`: interactive multi-turn chat with the model's template, streaming answers.
// Each turn feeds only what the template adds since the previous turn (chat_turns.hpp), so the
// KV cache carries the conversation instead of re-reading it.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "chat_turns.hpp"
#include "command.hpp"
#include "common.hpp"

namespace moevk_cli {
void print_expert_stats(moevk_context* ctx);

namespace {

int on_token(const char* text, size_t len, int32_t, void* user) {
  std::fwrite(text, 1, len, stdout);
  std::fflush(stdout);
  static_cast<std::string*>(user)->append(text, len);
  return 0;
}

int chat(int argc, char** argv) {
  GenOptions o;
  o.n_predict = 512;
  const unsigned options = kModelOptions | kChatOptions | kGenerationOptions | kSamplingOptions | kExpertStatsOption;
  try {
    for (int i = 1; i < argc; ++i) {
      if (!std::strcmp(argv[i], "-h") || !std::strcmp(argv[i], "--help")) {
        std::printf("usage: moevk chat -m model.gguf [--system TEXT] [--chat-template chatml|mistral|llama3]\n"
                    "                  [--think on|off] [options]\n\n"
                    "Interactive chat. Type a message and press Enter; an empty line or EOF (Ctrl-D) ends.\n"
                    "The prompt format comes from the model's chat template (tokenizer.chat_template),\n"
                    "or --chat-template to override. -n is the limit per answer.\n\n%s",
                    common_help(options, o.n_predict).c_str());
        return 0;
      }
      if (!parse_common(argc, argv, i, o, options)) throw std::runtime_error(std::string("unknown option ") + argv[i]);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moevk chat: %s (see moevk chat --help)\n", e.what());
    return 2;
  }
  moevk_model* model = load_model(o, nullptr);
  if (!model) return 1;
  moevk_context* ctx = create_context(model, o);
  if (!ctx) {
    moevk_model_free(model);
    return 1;
  }
  ChatMessages turns;
  if (!o.system_prompt.empty()) turns.emplace_back("system", o.system_prompt);
  // Check the template (and a system message it may refuse) before waiting for the first line.
  std::string rendered;
  if (!render_chat(model, o.chat_template, turns, true, rendered, o.enable_thinking)) {
    std::fprintf(stderr, "error: %s\n", moevk_model_last_error(model));
    moevk_context_free(ctx);
    moevk_model_free(model);
    return 1;
  }
  // The rendered conversation the context holds: n_past tokens plus the pending one (the last
  // streamed token, which the next generate feeds first).
  std::string consumed;
  int rc = 0;
  for (;;) {
    std::fprintf(stderr, "\n> ");
    std::string line;
    if (!std::getline(std::cin, line) || line.empty()) break;
    turns.emplace_back("user", line);
    std::string full;
    if (!render_chat(model, o.chat_template, turns, true, full, o.enable_thinking)) {
      std::fprintf(stderr, "error: %s\n", moevk_model_last_error(model));
      rc = 1;
      break;
    }
    if (full.compare(0, consumed.size(), consumed) != 0) {  // the template rewrote earlier turns
      moevk_context_reset(ctx);
      consumed.clear();
    }
    const std::string delta = full.substr(consumed.size());
    const uint32_t cached = moevk_context_n_past(ctx) + (moevk_context_pending_token(ctx) >= 0 ? 1 : 0);
    moevk_generate_params gp = moevk_generate_default_params();
    gp.prompt = delta.c_str();
    gp.add_special = 1;  // BOS only at the start of the context, and not twice (the library checks)
    gp.max_tokens = o.n_predict;
    gp.ignore_eos = o.ignore_eos;
    gp.sampling = o.sampling;
    std::vector<const char*> stops;
    for (const auto& s : o.stops) stops.push_back(s.c_str());
    gp.stop_strings = stops.data();
    gp.n_stop_strings = stops.size();
    std::string answer;
    gp.on_token = on_token;
    gp.user_data = &answer;
    moevk_generate_result r{};
    r.struct_size = sizeof r;
    const moevk_status status = moevk_generate(ctx, &gp, &r);
    if (status != MOEVK_OK) {
      std::printf("\n");
      print_context_error(ctx, status);
      rc = 1;
      break;
    }
    std::printf("\n");
    std::fprintf(stderr, "[%d prompt tokens after %u cached, %d tokens, %.2f tokens/s]\n", r.n_prompt_tokens, cached,
                 r.n_generated,
                 r.generate_ms > 0 && r.n_generated > 1 ? 1000.0 * (r.n_generated - 1) / r.generate_ms : 0.0);
    consumed = full + answer;
    turns.emplace_back("assistant", assistant_content(model, o.chat_template, turns, full, answer, o.enable_thinking));
    if (r.stop_reason == MOEVK_STOP_STRING) {
      // The context holds the stop string's tokens, which the answer (and so the next rendering)
      // lacks: rewind to the end of this turn's prompt, so the next turn reads the answer again
      // but not the conversation before it.
      if (moevk_context_truncate(ctx, cached + uint32_t(r.n_prompt_tokens)) == MOEVK_OK) {
        consumed = full;
      } else {
        moevk_context_reset(ctx);
        consumed.clear();
      }
    }
    if (r.stop_reason == MOEVK_STOP_CONTEXT_FULL) {
      std::fprintf(stderr, "the context is full (%u tokens); starting over\n", moevk_context_n_ctx(ctx));
      moevk_context_reset(ctx);
      consumed.clear();
      turns.erase(turns.begin() + (o.system_prompt.empty() ? 0 : 1), turns.end());
    }
  }
  if (o.expert_stats) print_expert_stats(ctx);
  moevk_context_free(ctx);
  moevk_model_free(model);
  return rc;
}

RegisterCommand reg("chat", "interactive chat with the model's template", chat);

}  // namespace
}  // namespace moevk_cli
