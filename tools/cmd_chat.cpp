// `moevk chat`: interactive multi-turn chat with the model's template, streaming answers.
// Each turn feeds only what the template adds since the previous turn (chat_turns.hpp), so the
// KV cache carries the conversation instead of re-reading it.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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

// A file's text ("-": standard input); throws naming the option.
std::string read_text(const std::string& path, const char* option) {
  if (path == "-") return std::string(std::istreambuf_iterator<char>(std::cin), {});
  return read_file_text(path, std::string("option ") + option + ": cannot read '" + path + "'");
}

// A grammar (or --tool-choice required or a name) holds the answer from its first token, so a
// model that thinks first (Qwen3) could not write its <think>: where the file's template
// reasons and --think was not given, the template is asked for an answer without thinking
// (enable_thinking false), and the user told.
void think_off_under_a_grammar(GenOptions& o, bool forced_call) {
  const bool holds_from_start = (!o.grammar.empty() || !o.json_schema.empty()) && o.grammar_trigger.empty();
  if (!(holds_from_start || forced_call) || o.enable_thinking >= 0 || !o.chat_template.empty()) return;
  char* info = nullptr;
  if (moevk_inspect_json(o.model.c_str(), &info) != MOEVK_OK) return;
  const auto j = nlohmann::json::parse(info, nullptr, /*allow_exceptions=*/false);
  moevk_free_string(info);
  if (!j.is_object() || !j.contains("chat_template") || !j["chat_template"].value("reasoning", false)) return;
  o.enable_thinking = 0;
  std::fprintf(stderr, "moevk chat: the grammar holds the answer from its first token, so thinking is off "
                       "(--think off); --think on keeps it, with the grammar applying to the thinking too\n");
}

const char* finish_reason(const moevk_generate_result& r, bool tool_calls) {
  if (tool_calls) return "tool_calls";
  switch (r.stop_reason) {
    case MOEVK_STOP_EOG:
    case MOEVK_STOP_STRING:
    case MOEVK_STOP_GRAMMAR: return "stop";
    case MOEVK_STOP_MAX_TOKENS:
    case MOEVK_STOP_CONTEXT_FULL: return "length";
    default: return "cancelled";
  }
}

// The tool-call grammar of a turn, if any, as generate params take it.
struct ToolGrammar {
  std::string grammar, trigger;
  bool lazy = false;
  bool set = false;
  void apply(moevk_generate_params& gp) const {
    if (!set) return;
    gp.grammar = grammar.c_str();
    gp.grammar_trigger = lazy ? trigger.c_str() : nullptr;
  }
};

// With tools and no grammar of the user's, a call the model begins is held to the call form
// and the tools' schemas (a lazy grammar, as llama.cpp's server does). A template without
// tool calls generates freely; so do tools whose schemas the grammar cannot hold, with a
// warning that names what (the answer is still read back as calls where it parses), unless a
// --tool-choice asked for the grammar. False on another error, printed.
bool tool_grammar_for(moevk_model* model, const moevk_chat_params& cp, const GenOptions& o, ToolGrammar& out) {
  if (!cp.tools_json || !o.grammar.empty() || !o.json_schema.empty()) return true;
  const bool chosen = cp.tool_choice && std::strcmp(cp.tool_choice, "auto") != 0;
  char* grammar = nullptr;
  char* trigger = nullptr;
  const moevk_status st = moevk_chat_tool_call_grammar(model, &cp, &grammar, &trigger);
  if (st == MOEVK_OK) {
    out.lazy = trigger != nullptr;  // none: the grammar holds the whole answer (Llama-3.1)
    out.grammar = grammar;
    out.trigger = out.lazy ? trigger : "";
    out.set = true;
    moevk_free_string(grammar);
    moevk_free_string(trigger);
  } else if (st == MOEVK_ERROR_INVALID_ARGUMENT && !chosen) {
    std::fprintf(stderr, "warning: tool calls are not held to the tools' schemas: %s\n", moevk_model_last_error(model));
  } else if (chosen) {  // --tool-choice asks for what only the grammar can do
    std::fprintf(stderr, "error: --tool-choice %s: %s\n", cp.tool_choice, moevk_model_last_error(model));
    return false;
  } else if (st != MOEVK_ERROR_UNSUPPORTED) {
    std::fprintf(stderr, "error: %s\n", moevk_model_last_error(model));
    return false;
  }
  return true;
}

// A stream's delta as a line of its own, unless it is empty; frees it.
void print_delta(char* delta) {
  if (std::strcmp(delta, "{}") != 0) {
    std::printf("{\"delta\":%s}\n", delta);
    std::fflush(stdout);
  }
  moevk_free_string(delta);
}

// `--messages FILE`: one assistant turn for a conversation given as JSON, printed as one JSON
// line: {"message": the parsed answer (content, reasoning_content, tool_calls), "finish_reason",
// "usage": {"prompt_tokens", "completion_tokens"}}. The answer's text goes to stderr as it is
// generated, so stdout holds only the JSON.
int chat_once(moevk_model* model, moevk_context* ctx, const GenOptions& o, const std::string& messages,
              const std::string& tools, bool stream, const std::string& tool_choice) {
  moevk_chat_params cp = moevk_chat_default_params();
  cp.template_name = o.chat_template.empty() ? nullptr : o.chat_template.c_str();
  cp.enable_thinking = o.enable_thinking;
  cp.tools_json = tools.empty() ? nullptr : tools.c_str();
  cp.tool_choice = tool_choice.empty() ? nullptr : tool_choice.c_str();
  char* prompt = nullptr;
  if (moevk_chat_apply_template_json(model, messages.c_str(), &cp, &prompt) != MOEVK_OK) {
    std::fprintf(stderr, "error: %s\n", moevk_model_last_error(model));
    return 1;
  }
  const std::string prompt_text = prompt;
  moevk_free_string(prompt);
  std::vector<const char*> stops;
  moevk_generate_params gp = generate_params(o, stops);
  gp.prompt = prompt_text.c_str();
  gp.add_special = 1;
  ToolGrammar tool_grammar;
  if (!tool_grammar_for(model, cp, o, tool_grammar)) return 1;
  tool_grammar.apply(gp);
  // --stream: each piece read as it comes (moevk_chat_stream), a {"delta": ...} line whenever
  // something is certain, then the last delta with the calls.
  struct Streaming {
    std::string answer;
    moevk_chat_stream* stream = nullptr;
    bool failed = false;
  } streaming;
  if (stream && moevk_chat_stream_create(model, &cp, prompt_text.c_str(), &streaming.stream) != MOEVK_OK) {
    std::fprintf(stderr, "error: %s\n", moevk_model_last_error(model));
    return 1;
  }
  gp.on_token = [](const char* text, size_t len, int32_t, void* user) {
    auto& s = *static_cast<Streaming*>(user);
    std::fwrite(text, 1, len, stderr);
    s.answer.append(text, len);
    if (!s.stream) return 0;
    char* delta = nullptr;
    if (moevk_chat_stream_push(s.stream, text, len, &delta) != MOEVK_OK) {
      s.failed = true;
      return 1;
    }
    print_delta(delta);
    return 0;
  };
  gp.user_data = &streaming;
  moevk_generate_result r{};
  r.struct_size = sizeof r;
  const moevk_status status = moevk_generate(ctx, &gp, &r);
  std::fprintf(stderr, "\n");
  const std::string& answer = streaming.answer;
  char* message = nullptr;
  if (status != MOEVK_OK || streaming.failed) {
    if (streaming.failed) std::fprintf(stderr, "error: %s\n", moevk_chat_stream_last_error(streaming.stream));
    else print_context_error(ctx, status);
    moevk_chat_stream_free(streaming.stream);
    return 1;
  }
  if (streaming.stream) {
    char* delta = nullptr;
    const moevk_status st = moevk_chat_stream_finish(streaming.stream, &delta, &message);
    if (st != MOEVK_OK) std::fprintf(stderr, "error: %s\n", moevk_chat_stream_last_error(streaming.stream));
    moevk_chat_stream_free(streaming.stream);
    if (st != MOEVK_OK) return 1;
    print_delta(delta);
  } else if (moevk_chat_parse_response(model, answer.c_str(), &cp, &message) != MOEVK_OK) {
    std::fprintf(stderr, "error: %s\n", moevk_model_last_error(model));
    return 1;
  }
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  out["message"] = nlohmann::ordered_json::parse(message);
  moevk_free_string(message);
  out["finish_reason"] = finish_reason(r, out["message"].contains("tool_calls"));
  out["usage"] = {{"prompt_tokens", r.n_prompt_tokens}, {"completion_tokens", r.n_generated}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

// The context's side of an interactive conversation: each turn feeds only the text the
// template adds after what the context already holds (chat_turns.hpp).
class Conversation {
 public:
  explicit Conversation(moevk_context* ctx) : ctx_(ctx) {}

  // Streams the answer to `full` (the conversation rendered with the generation prompt) to
  // stdout. False on an error, printed.
  bool answer(const std::string& full, const GenOptions& o, const ToolGrammar& tool_grammar, std::string& answer,
              moevk_generate_result& r) {
    if (full.compare(0, consumed_.size(), consumed_) != 0) reset();  // the template rewrote earlier turns
    const std::string delta = full.substr(consumed_.size());
    const uint32_t cached = moevk_context_n_past(ctx_) + (moevk_context_pending_token(ctx_) >= 0 ? 1 : 0);
    std::vector<const char*> stops;
    moevk_generate_params gp = generate_params(o, stops);
    gp.prompt = delta.c_str();
    gp.add_special = 1;  // BOS only at the start of the context, and not twice (the library checks)
    tool_grammar.apply(gp);
    answer.clear();
    gp.on_token = on_token;
    gp.user_data = &answer;
    r = moevk_generate_result{};
    r.struct_size = sizeof r;
    const moevk_status status = moevk_generate(ctx_, &gp, &r);
    std::printf("\n");
    if (status != MOEVK_OK) {
      print_context_error(ctx_, status);
      return false;
    }
    std::fprintf(stderr, "[%d prompt tokens after %u cached, %d tokens, %.2f tokens/s]\n", r.n_prompt_tokens, cached,
                 r.n_generated,
                 r.generate_ms > 0 && r.n_generated > 1 ? 1000.0 * (r.n_generated - 1) / r.generate_ms : 0.0);
    consumed_ = full + answer;
    if (r.stop_reason == MOEVK_STOP_STRING) {
      // The context holds the stop string's tokens, which the answer (and so the next rendering)
      // lacks: rewind to the end of this turn's prompt, so the next turn reads the answer again
      // but not the conversation before it.
      if (moevk_context_truncate(ctx_, cached + uint32_t(r.n_prompt_tokens)) == MOEVK_OK)
        consumed_ = full;
      else
        reset();
    }
    if (r.stop_reason == MOEVK_STOP_CONTEXT_FULL) {
      std::fprintf(stderr, "the context is full (%u tokens); starting over\n", moevk_context_n_ctx(ctx_));
      reset();
    }
    return true;
  }

  void reset() {
    moevk_context_reset(ctx_);
    consumed_.clear();
  }

 private:
  moevk_context* ctx_;
  std::string consumed_;  // the rendered conversation the context holds (n_past + the pending token)
};

// A line of the user's, after `prompt` on stderr; false at EOF.
bool read_line(const char* prompt, std::string& line) {
  std::fprintf(stderr, "%s", prompt);
  return static_cast<bool>(std::getline(std::cin, line));
}

constexpr const char* kInteractiveHelp =
    "commands: /reset starts the conversation over (the system prompt kept), /exit (or an empty line, or EOF)\n"
    "ends; at a \"tool NAME>\" line, /reset and /exit work too, and anything else is the call's result\n";

// The user prompt's commands other than /exit: true when `line` was one, done.
template <class StartOver>
bool run_command(const std::string& line, StartOver&& start_over) {
  if (line == "/reset") {
    start_over();
    std::fprintf(stderr, "[the conversation starts over]\n");
  } else if (line == "/help" || line == "/?") {
    std::fprintf(stderr, "%s", kInteractiveHelp);
  } else {
    return false;
  }
  return true;
}

int chat_interactive(moevk_model* model, moevk_context* ctx, const GenOptions& o) {
  ChatMessages turns;
  if (!o.system_prompt.empty()) turns.emplace_back("system", o.system_prompt);
  const size_t kept = turns.size();
  // Check the template (and a system message it may refuse) before waiting for the first line.
  std::string rendered;
  if (!render_chat(model, o.chat_template, turns, true, rendered, o.enable_thinking)) {
    std::fprintf(stderr, "error: %s\n", moevk_model_last_error(model));
    return 1;
  }
  Conversation conversation(ctx);
  auto start_over = [&] {
    turns.resize(kept);
    conversation.reset();
  };
  for (std::string line; read_line("\n> ", line) && !line.empty() && line != "/exit";) {
    if (run_command(line, start_over)) continue;
    turns.emplace_back("user", line);
    std::string full, answer;
    if (!render_chat(model, o.chat_template, turns, true, full, o.enable_thinking)) {
      std::fprintf(stderr, "error: %s\n", moevk_model_last_error(model));
      return 1;
    }
    moevk_generate_result r{};
    if (!conversation.answer(full, o, ToolGrammar{}, answer, r)) return 1;
    turns.emplace_back("assistant", assistant_content(model, o.chat_template, turns, full, answer, o.enable_thinking));
    if (r.stop_reason == MOEVK_STOP_CONTEXT_FULL) turns.resize(kept);
  }
  return 0;
}

// JSON text of the conversation; a line typed in another encoding than UTF-8 reads as U+FFFD
// rather than failing.
std::string as_text(const nlohmann::ordered_json& messages) {
  return messages.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

// Interactive chat with tools: the conversation is kept as OpenAI's messages, each answer read
// back as a message (moevk_chat_parse_response), and for each tool call the user types the
// result on a "tool NAME> " line; the model then goes on with the results.
int chat_interactive_tools(moevk_model* model, moevk_context* ctx, const GenOptions& o, const std::string& tools,
                           const std::string& tool_choice) {
  moevk_chat_params cp = moevk_chat_default_params();
  cp.template_name = o.chat_template.empty() ? nullptr : o.chat_template.c_str();
  cp.enable_thinking = o.enable_thinking;
  cp.tools_json = tools.c_str();
  cp.tool_choice = tool_choice.empty() ? nullptr : tool_choice.c_str();
  ToolGrammar tool_grammar;
  if (!tool_grammar_for(model, cp, o, tool_grammar)) return 1;
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  if (!o.system_prompt.empty()) messages.push_back({{"role", "system"}, {"content", o.system_prompt}});
  const size_t kept = messages.size();
  auto render = [&](std::string& out) {
    char* prompt = nullptr;
    if (moevk_chat_apply_template_json(model, as_text(messages).c_str(), &cp, &prompt) != MOEVK_OK) {
      std::fprintf(stderr, "error: %s\n", moevk_model_last_error(model));
      return false;
    }
    out = prompt;
    moevk_free_string(prompt);
    return true;
  };
  std::string full;
  if (!render(full)) return 1;  // the template and the tools, checked before the first line
  std::fprintf(stderr, "tools: a call's result is typed on its \"tool NAME>\" line\n");
  Conversation conversation(ctx);
  auto start_over = [&] {
    messages.erase(messages.begin() + static_cast<std::ptrdiff_t>(kept), messages.end());
    conversation.reset();
  };
  for (std::string line; read_line("\n> ", line) && !line.empty() && line != "/exit";) {
    if (run_command(line, start_over)) continue;
    messages.push_back({{"role", "user"}, {"content", line}});
    // Answers until one calls no tool (or the user stops at a tool prompt).
    for (bool more = true; more;) {
      std::string answer;
      moevk_generate_result r{};
      if (!render(full) || !conversation.answer(full, o, tool_grammar, answer, r)) return 1;
      char* parsed = nullptr;
      if (moevk_chat_parse_response(model, answer.c_str(), &cp, &parsed) != MOEVK_OK) {
        std::fprintf(stderr, "error: %s\n", moevk_model_last_error(model));
        return 1;
      }
      nlohmann::ordered_json message = nlohmann::ordered_json::parse(parsed);
      moevk_free_string(parsed);
      if (r.stop_reason == MOEVK_STOP_CONTEXT_FULL) {
        start_over();
        break;
      }
      more = message.contains("tool_calls");
      messages.push_back(message);
      for (size_t i = 0; more && i < message["tool_calls"].size(); ++i) {
        const auto& call = message["tool_calls"][i];
        const std::string name = call["function"]["name"].get<std::string>();
        std::fprintf(stderr, "[tool call %s: %s %s]\n", call["id"].get<std::string>().c_str(), name.c_str(),
                     call["function"]["arguments"].dump().c_str());
        std::string result;
        if (!read_line(("tool " + name + "> ").c_str(), result) || result == "/exit") {
          std::fprintf(stderr, "\n");
          return 0;
        }
        if (result == "/reset") {
          start_over();
          std::fprintf(stderr, "[the conversation starts over]\n");
          more = false;
          break;
        }
        messages.push_back({{"role", "tool"}, {"tool_call_id", call["id"]}, {"name", name}, {"content", result}});
      }
    }
  }
  return 0;
}

int chat(int argc, char** argv) {
  GenOptions o;
  o.n_predict = 512;
  const unsigned options = kModelOptions | kChatOptions | kGenerationOptions | kSamplingOptions | kExpertStatsOption;
  std::string messages_path, tools_path, messages, tools;
  bool stream = false;
  std::string tool_choice;
  try {
    for (int i = 1; i < argc; ++i) {
      if (!std::strcmp(argv[i], "-h") || !std::strcmp(argv[i], "--help")) {
        std::printf("usage: moevk chat -m model.gguf [--system TEXT] [--chat-template chatml|mistral|llama3]\n"
                    "                  [--think on|off] [options]\n"
                    "       moevk chat -m model.gguf [--tools FILE] [options]\n"
                    "       moevk chat -m model.gguf --messages FILE [--tools FILE] [options]\n\n"
                    "Interactive chat. Type a message and press Enter; an empty line, /exit or EOF (Ctrl-D)\n"
                    "ends, /reset starts over. The prompt format comes from the model's chat template\n"
                    "(tokenizer.chat_template), or --chat-template to override. -n is the limit per answer.\n"
                    "With --tools, each tool call the model makes is shown and its result typed on a\n"
                    "\"tool NAME>\" line; the model then answers with the results.\n\n"
                    "One turn for scripts and tool use:\n"
                    "  --messages FILE           a conversation as JSON (\"-\": stdin), OpenAI's messages:\n"
                    "                            [{\"role\": \"user\", \"content\": \"...\"}, ...], with tool_calls\n"
                    "                            and {\"role\": \"tool\", ...} results; prints one JSON line,\n"
                    "                            {\"message\": {\"role\", \"content\", \"reasoning_content\",\n"
                    "                            \"tool_calls\"}, \"finish_reason\", \"usage\"}, the answer's\n"
                    "                            text going to stderr as it is generated\n"
                    "  --stream                  with --messages: first a {\"delta\": {\"reasoning_content\",\n"
                    "                            \"content\"}} line whenever more of the answer is certain\n"
                    "                            (tool calls' text held back), the last with \"tool_calls\"\n"
                    "  --tools FILE              tool definitions as JSON (with --messages or interactive),\n"
                    "                            [{\"type\": \"function\", \"function\": {\"name\",\n"
                    "                            \"description\", \"parameters\"}}],\n"
                    "                            for templates with tool support (moevk info says which);\n"
                    "                            a call the model begins is held to the tools' schemas\n"
                    "                            (all four call forms; not with --grammar / -j)\n"
                    "  --tool-choice C           with --tools, as OpenAI's tool_choice: auto (default),\n"
                    "                            required (a call, from the first token), none (no call),\n"
                    "                            or a tool's name (a call to it)\n\n%s",
                    common_help(options, o.n_predict).c_str());
        return 0;
      }
      if (!std::strcmp(argv[i], "--tool-choice")) {
        if (i + 1 >= argc) throw std::runtime_error("option --tool-choice needs a value");
        tool_choice = argv[++i];
        continue;
      }
      if (!std::strcmp(argv[i], "--stream")) {
        stream = true;
        continue;
      }
      if (!std::strcmp(argv[i], "--messages") || !std::strcmp(argv[i], "--tools")) {
        if (i + 1 >= argc) throw std::runtime_error(std::string("option ") + argv[i] + " needs a file");
        (argv[i][2] == 'm' ? messages_path : tools_path) = argv[i + 1];
        ++i;
        continue;
      }
      if (!parse_common(argc, argv, i, o, options)) throw std::runtime_error(std::string("unknown option ") + argv[i]);
    }
    if (stream && messages_path.empty()) throw std::runtime_error("--stream needs --messages");
    if (!tool_choice.empty() && tools_path.empty()) throw std::runtime_error("--tool-choice needs --tools");
    if (!tool_choice.empty() && !(o.grammar.empty() && o.json_schema.empty()))
      throw std::runtime_error("--tool-choice with --grammar or -j: the tool-call grammar is not used");
    if (!messages_path.empty() && !o.system_prompt.empty())
      throw std::runtime_error("--system with --messages: put the system message into the messages file");
    if (messages_path == "-" && tools_path == "-") throw std::runtime_error("--messages and --tools both read stdin");
    if (messages_path.empty() && tools_path == "-")
      throw std::runtime_error("--tools - without --messages: the interactive chat reads its lines from stdin");
    if (!messages_path.empty()) messages = read_text(messages_path, "--messages");
    if (!tools_path.empty()) tools = read_text(tools_path, "--tools");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moevk chat: %s (see moevk chat --help)\n", e.what());
    return 2;
  }
  moevk_model* model = load_model(o, nullptr);
  if (!model) return 1;
  think_off_under_a_grammar(o, !tool_choice.empty() && tool_choice != "auto" && tool_choice != "none");
  moevk_context* ctx = create_context(model, o);
  if (!ctx) {
    moevk_model_free(model);
    return 1;
  }
  const int rc = !messages_path.empty() ? chat_once(model, ctx, o, messages, tools, stream, tool_choice)
                 : tools.empty()          ? chat_interactive(model, ctx, o)
                                          : chat_interactive_tools(model, ctx, o, tools, tool_choice);
  if (o.expert_stats) print_expert_stats(ctx);
  moevk_context_free(ctx);
  moevk_model_free(model);
  return rc;
}

RegisterCommand reg("chat", "interactive chat with the model's template", chat);

}  // namespace
}  // namespace moevk_cli
