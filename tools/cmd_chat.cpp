// `moevk chat`: interactive multi-turn chat with the model's template, streaming answers.
// Each turn feeds only what the template adds since the previous turn, so the KV cache carries
// the conversation instead of re-reading it.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

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

std::string render(moevk_model* model, const GenOptions& o, const std::vector<std::pair<std::string, std::string>>& turns,
                   bool& ok) {
  std::vector<moevk_chat_message> msgs;
  for (const auto& [role, content] : turns) msgs.push_back({role.c_str(), content.c_str()});
  char* out = nullptr;
  ok = moevk_chat_apply_template(model, o.chat_template.empty() ? nullptr : o.chat_template.c_str(), msgs.data(),
                                 msgs.size(), 1, &out) == MOEVK_OK;
  if (!ok) {
    std::fprintf(stderr, "error: %s\n", moevk_model_last_error(model));
    return {};
  }
  std::string s = out;
  moevk_free_string(out);
  return s;
}

int chat(int argc, char** argv) {
  GenOptions o;
  o.n_predict = 512;
  try {
    for (int i = 1; i < argc; ++i) {
      if (!std::strcmp(argv[i], "-h") || !std::strcmp(argv[i], "--help")) {
        std::printf("usage: moevk chat -m model.gguf [--system TEXT] [--chat-template chatml|mistral] [options]\n\n"
                    "Interactive chat. Type a message and press Enter; an empty line or EOF (Ctrl-D) ends.\n"
                    "The prompt format comes from the model's chat template (tokenizer.chat_template),\n"
                    "or --chat-template to override. -n is the limit per answer (default 512).\n\n%s",
                    common_help());
        return 0;
      }
      if (!parse_common(argc, argv, i, o)) throw std::runtime_error(std::string("unknown option ") + argv[i]);
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
  std::vector<std::pair<std::string, std::string>> turns;
  if (!o.system_prompt.empty()) turns.emplace_back("system", o.system_prompt);
  std::string consumed;  // the rendered conversation the KV cache already holds
  int rc = 0;
  for (;;) {
    std::fprintf(stderr, "\n> ");
    std::string line;
    if (!std::getline(std::cin, line) || line.empty()) break;
    turns.emplace_back("user", line);
    bool ok = false;
    std::string full = render(model, o, turns, ok);
    if (!ok) {
      rc = 1;
      break;
    }
    std::string delta = full.compare(0, consumed.size(), consumed) == 0 ? full.substr(consumed.size()) : full;
    if (delta.size() == full.size() && !consumed.empty()) moevk_context_reset(ctx);  // template not append-only
    moevk_generate_params gp = moevk_generate_default_params();
    gp.prompt = delta.c_str();
    gp.add_special = 1;  // BOS only at the start of the context (the library checks)
    gp.max_tokens = o.n_predict;
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
    if (moevk_generate(ctx, &gp, &r) != MOEVK_OK) {
      std::fprintf(stderr, "\nerror: %s\n", moevk_context_last_error(ctx));
      rc = 1;
      break;
    }
    std::printf("\n");
    std::fprintf(stderr, "[%d tokens, %.2f tokens/s]\n", r.n_generated,
                 r.generate_ms > 0 && r.n_generated > 1 ? 1000.0 * (r.n_generated - 1) / r.generate_ms : 0.0);
    consumed = full + answer;
    turns.emplace_back("assistant", answer);
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
