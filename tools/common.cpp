#include "common.hpp"
#include "model_summary.hpp"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>


namespace moevk_cli {

namespace {

const char* value(int argc, char** argv, int& i) {
  if (i + 1 >= argc) throw std::runtime_error(std::string("option ") + argv[i] + " needs a value");
  return argv[++i];
}

// Context and batch limits far above any model's, low enough that sizes computed from them
// cannot overflow.
constexpr uint64_t kMaxContext = 1u << 24;
constexpr uint64_t kMaxBatch = 1u << 16;

}  // namespace

uint64_t unsigned_option(const char* text, const char* option, uint64_t min, uint64_t max) {
  auto fail = [&] {
    return std::runtime_error(std::string("option ") + option + ": '" + text + "' is not an integer in [" +
                              std::to_string(min) + ", " + std::to_string(max) + "]");
  };
  // strtoull would accept "-1" (as 2^64-1), "+5" and leading blanks: allow digits only.
  if (!*text || std::strspn(text, "0123456789") != std::strlen(text)) throw fail();
  errno = 0;
  const unsigned long long v = std::strtoull(text, nullptr, 10);
  if (errno == ERANGE || v < min || v > max) throw fail();
  return v;
}

std::string read_file_text(const std::string& path, const std::string& error) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error(error);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

double real_option(const char* text, const char* option, double min, double max) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text, &end);
  if (end == text || *end || errno == ERANGE || !std::isfinite(v) || v < min || v > max) {
    char range[64];
    std::snprintf(range, sizeof range, "[%g, %g]", min, max);
    throw std::runtime_error(std::string("option ") + option + ": '" + text + "' is not a number in " + range);
  }
  return v;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    if (item.empty()) continue;
    ids.push_back(static_cast<int32_t>(unsigned_option(item.c_str(), "--prompt-ids", 0, INT32_MAX)));
  }
  if (ids.empty()) throw std::runtime_error("--prompt-ids: no ids given");
  return ids;
}

bool parse_common(int argc, char** argv, int& i, GenOptions& o, unsigned groups) {
  const std::string a = argv[i];
  auto& s = o.sampling;
  // Each group's options: true when argv[i] is one of them (its value consumed).
  auto model = [&] {
    if (a == "-m" || a == "--model") o.model = value(argc, argv, i);
    else if (a == "--device") o.device = value(argc, argv, i);
    else if (a == "-c" || a == "--ctx-size") o.n_ctx = uint32_t(unsigned_option(value(argc, argv, i), "-c", 0, kMaxContext));
    else if (a == "-b" || a == "--batch-size") o.n_batch = uint32_t(unsigned_option(value(argc, argv, i), "-b", 1, kMaxBatch));
    else if (a == "--validate") o.validate = true;
    else if (a == "--no-progress") o.progress = false;
    else return false;
    return true;
  };
  auto prompt = [&] {
    if (a == "-p" || a == "--prompt") o.prompt = value(argc, argv, i);
    else if (a == "-f" || a == "--file") {
      const char* path = value(argc, argv, i);
      o.prompt = read_file_text(path, std::string("cannot read prompt file ") + path);
    } else if (a == "--prompt-ids") {
      o.prompt_ids = parse_ids(value(argc, argv, i));
      return true;
    } else {
      return false;
    }
    o.prompt_given = true;
    return true;
  };
  auto read_whole = [&](const char* option) {
    const char* path = value(argc, argv, i);
    return read_file_text(path, std::string("option ") + option + ": cannot read " + path);
  };
  auto constraint = [&](std::string& target, const char* what, std::string text) {
    if (!o.grammar.empty() || !o.json_schema.empty())
      throw std::runtime_error(std::string("option ") + a + ": a grammar or JSON schema is given already; give one");
    if (text.empty()) throw std::runtime_error(std::string("option ") + a + ": the " + what + " is empty");
    target = std::move(text);
  };
  auto generation = [&] {
    if (a == "-n" || a == "--n-predict") o.n_predict = int32_t(unsigned_option(value(argc, argv, i), "-n", 0, INT32_MAX));
    else if (a == "--stop") o.stops.emplace_back(value(argc, argv, i));
    else if (a == "--ignore-eos") o.ignore_eos = true;
    else if (a == "--grammar") constraint(o.grammar, "grammar", value(argc, argv, i));
    else if (a == "--grammar-file") constraint(o.grammar, "grammar", read_whole("--grammar-file"));
    else if (a == "-j" || a == "--json-schema") constraint(o.json_schema, "schema", value(argc, argv, i));
    else if (a == "-jf" || a == "--json-schema-file") constraint(o.json_schema, "schema", read_whole("--json-schema-file"));
    else if (a == "--grammar-trigger") {
      o.grammar_trigger = value(argc, argv, i);
      if (o.grammar_trigger.empty()) throw std::runtime_error("option --grammar-trigger: the text is empty");
    }
    else return false;
    return true;
  };
  auto sampling = [&] {
    if (a == "--temp") s.temperature = float(real_option(value(argc, argv, i), "--temp", 0, 1e6));
    else if (a == "--greedy") s.temperature = 0.0f;
    else if (a == "--top-k") s.top_k = int32_t(unsigned_option(value(argc, argv, i), "--top-k", 0, INT32_MAX));
    else if (a == "--top-p") s.top_p = float(real_option(value(argc, argv, i), "--top-p", 0, 1));
    else if (a == "--min-p") s.min_p = float(real_option(value(argc, argv, i), "--min-p", 0, 1));
    else if (a == "--repeat-penalty") s.repeat_penalty = float(real_option(value(argc, argv, i), "--repeat-penalty", 0, 1e6));
    else if (a == "--repeat-last-n") {  // -1: the whole context, as llama.cpp
      const char* v = value(argc, argv, i);
      if (std::strcmp(v, "-1") == 0) s.repeat_last_n = -1;
      else if (*v == '-')
        throw std::runtime_error(std::string("option --repeat-last-n: '") + v +
                                 "' is neither -1 (the whole context) nor a count of tokens");
      else s.repeat_last_n = int32_t(unsigned_option(v, "--repeat-last-n", 0, INT32_MAX));
    }
    // Negative presence/frequency penalties are meaningful (they favour repetition).
    else if (a == "--presence-penalty") s.presence_penalty = float(real_option(value(argc, argv, i), "--presence-penalty", -1e6, 1e6));
    else if (a == "--frequency-penalty") s.frequency_penalty = float(real_option(value(argc, argv, i), "--frequency-penalty", -1e6, 1e6));
    else if (a == "-s" || a == "--seed") s.seed = unsigned_option(value(argc, argv, i), "--seed", 0, UINT64_MAX);
    else return false;
    return true;
  };
  auto chat = [&] {
    if (a == "--chat-template") o.chat_template = value(argc, argv, i);
    else if (a == "--system") o.system_prompt = value(argc, argv, i);
    else if (a == "--think") {
      const std::string v = value(argc, argv, i);
      if (v != "on" && v != "off") throw std::runtime_error("option --think: '" + v + "' is neither on nor off");
      o.enable_thinking = v == "on" ? 1 : 0;
    }
    else return false;
    return true;
  };
  auto flag = [&](const char* name, bool& target) {
    if (a != name) return false;
    target = true;
    return true;
  };
  auto in = [&](unsigned group) { return (groups & group) != 0; };
  return (in(kModelOptions) && model()) || (in(kPromptOptions) && prompt()) ||
         (in(kGenerationOptions) && generation()) || (in(kSamplingOptions) && sampling()) ||
         (in(kChatOptions) && chat()) || (in(kPrintIdsOption) && flag("--print-ids", o.print_ids)) ||
         (in(kExpertStatsOption) && flag("--expert-stats", o.expert_stats)) ||
         (in(kProfileOption) && flag("--profile", o.profile)) || (in(kJsonOption) && flag("--json", o.json));
}

std::string common_help(unsigned groups, int32_t n_predict_default) {
  std::string h;
  if (groups & kModelOptions)
    h += "model and device:\n"
         "  -m, --model FILE          GGUF model file (required)\n"
         "  --device INDEX|NAME       Vulkan device (see `moevk devices`; default: best GPU)\n"
         "  -c, --ctx-size N          context length (default: the model's, at most 4096)\n"
         "  -b, --batch-size N        prompt tokens per forward step (default 512)\n"
         "  --validate                enable the Khronos validation layer\n"
         "  --no-progress             no progress bar while loading\n";
  if (groups & kPromptOptions)
    h += "prompt:\n"
         "  -p, --prompt TEXT         the prompt\n"
         "  -f, --file FILE           read the prompt from a file\n"
         "  --prompt-ids 1,2,3        the prompt as token ids (no tokenizer involved)\n";
  if (groups & kChatOptions)
    h += "chat:\n"
         "  --system TEXT             a system message before the conversation\n"
         "  --chat-template NAME      chatml, mistral or llama3 instead of the model's template\n"
         "  --think on|off            the template's enable_thinking (Qwen3: off answers without\n"
         "                            reasoning first; default: the template's own)\n";
  if (groups & (kGenerationOptions | kSamplingOptions | kPrintIdsOption | kExpertStatsOption | kProfileOption))
    h += "generation:\n";
  if (groups & kGenerationOptions)
    h += "  -n, --n-predict N         tokens to generate (default " + std::to_string(n_predict_default) + ")\n";
  if (groups & kSamplingOptions)
    h += "  --temp T                  temperature (default 0.8; 0 = greedy, argmax on the GPU)\n"
         "  --greedy                  same as --temp 0\n"
         "  --top-k N                 (default 40; 0 = off). Samples on the GPU (1..64: among the\n"
         "                            64 best logits, else over the whole vocabulary; penalties too;\n"
         "                            MOEVK_DISABLE=gpu_sampling: on the host)\n"
         "  --top-p P                 (default 0.95; 1 = off)\n"
         "  --min-p P                 (default 0.05; 0 = off)\n"
         "  --repeat-penalty F        (default 1.0 = off)   --repeat-last-n N (default 64; -1 = all)\n"
         "  --presence-penalty F      (default 0)           --frequency-penalty F (default 0)\n"
         "  -s, --seed N              random seed (default 0)\n";
  if (groups & kGenerationOptions)
    h += "  --stop TEXT               stop when TEXT is generated (repeatable)\n"
         "  --ignore-eos              keep going past end-of-generation tokens\n"
         "  --grammar GBNF            output held to a grammar (llama.cpp's GBNF, rule root);\n"
         "                            --grammar-file FILE reads it from a file\n"
         "  -j, --json-schema JSON    output held to a JSON Schema (types, properties, required,\n"
         "                            enum, items, anyOf, $ref, ...); -jf, --json-schema-file FILE\n"
         "                            reads it; tokens are then chosen on the host\n"
         "  --grammar-trigger TEXT    the grammar or schema holds only what follows TEXT's first\n"
         "                            appearance in the output (before it, tokens are free)\n";
  if (groups & kPrintIdsOption)
    h += "  --print-ids               print generated token ids instead of text\n";
  if (groups & kExpertStatsOption)
    h += "  --expert-stats            print how often each expert was chosen, per layer\n";
  if (groups & kProfileOption)
    h += "  --profile                 print GPU time per stage (attention, router, experts, other)\n"
         "                            and dispatches/barriers per step (GPU timestamps)\n";
  if (groups & kJsonOption) h += "  --json                    JSON output\n";
  return h;
}

moevk_model* load_model(const GenOptions& o, double* load_ms) {
  if (o.model.empty()) {
    std::fprintf(stderr, "error: no model given (-m FILE)\n");
    return nullptr;
  }
  moevk_model_params mp = moevk_model_default_params();
  if (!o.device.empty()) mp.device = o.device.c_str();
  mp.validation = o.validate;
  if (o.progress) mp.progress = file_progress_bar;
  auto t0 = std::chrono::steady_clock::now();
  moevk_model* model = nullptr;
  const moevk_status status = moevk_model_load(o.model.c_str(), &mp, &model);
  if (o.progress) file_progress_done();
  if (status != MOEVK_OK) {
    std::fprintf(stderr, "error: %s\n", moevk_last_error());
    return nullptr;
  }
  if (load_ms) *load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return model;
}

moevk_generate_params generate_params(const GenOptions& o, std::vector<const char*>& stops) {
  moevk_generate_params gp = moevk_generate_default_params();
  gp.max_tokens = o.n_predict;
  gp.ignore_eos = o.ignore_eos;
  gp.sampling = o.sampling;
  stops.clear();
  for (const auto& s : o.stops) stops.push_back(s.c_str());
  gp.stop_strings = stops.data();
  gp.n_stop_strings = stops.size();
  if (!o.grammar.empty()) gp.grammar = o.grammar.c_str();
  if (!o.json_schema.empty()) gp.json_schema = o.json_schema.c_str();
  if (!o.grammar_trigger.empty()) gp.grammar_trigger = o.grammar_trigger.c_str();
  return gp;
}

moevk_context* create_context(moevk_model* model, const GenOptions& o) {
  moevk_context_params cp = moevk_context_default_params();
  cp.n_ctx = o.n_ctx;
  cp.n_batch = o.n_batch;
  cp.expert_stats = o.expert_stats;
  cp.profile = o.profile;
  moevk_context* ctx = nullptr;
  if (moevk_context_create(model, &cp, &ctx) != MOEVK_OK) {
    std::fprintf(stderr, "error: %s\n", moevk_model_last_error(model));
    return nullptr;
  }
  return ctx;
}

bool tokenize(moevk_model* model, const std::string& text, std::vector<int32_t>& ids, bool add_special,
              bool parse_special) {
  ids.assign(text.size() / 2 + 8, 0);  // enough for most text; the exact count comes back otherwise
  for (int attempt = 0; attempt < 2; ++attempt) {
    size_t n = 0;
    if (moevk_tokenize(model, text.data(), text.size(), add_special, parse_special, ids.data(), ids.size(), &n) ==
        MOEVK_OK) {
      ids.resize(n);
      return true;
    }
    if (n <= ids.size()) break;  // a failure other than the buffer size
    ids.resize(n);
  }
  std::fprintf(stderr, "error: %s\n", moevk_model_last_error(model));
  return false;
}

void print_context_error(moevk_context* ctx, moevk_status status) {
  std::fprintf(stderr, "error: %s\n", moevk_context_last_error(ctx));
  if (status == MOEVK_ERROR_CONTEXT_FULL)
    std::fprintf(stderr, "hint: the context holds %u tokens; give a larger one with -c N\n", moevk_context_n_ctx(ctx));
}

}  // namespace moevk_cli
