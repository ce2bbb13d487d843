// Options shared by the generating subcommands (run, chat, logits, bench) and the helpers that
// load a model with a progress bar. Only the public C API is used.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "moevk.h"

namespace moevk_cli {

struct GenOptions {
  std::string model;
  std::string device;
  std::string prompt;
  bool prompt_given = false;
  std::vector<int32_t> prompt_ids;
  bool print_ids = false;
  int32_t n_predict = 128;
  uint32_t n_ctx = 0;
  uint32_t n_batch = moevk_context_default_params().n_batch;
  bool validate = false;
  bool progress = true;
  bool expert_stats = false;
  bool profile = false;  // GPU time per stage (timestamps), printed after the run
  bool ignore_eos = false;
  bool json = false;
  std::string chat_template;
  int enable_thinking = -1;  // --think on|off: -1 leaves the template's default
  std::string system_prompt;
  std::vector<std::string> stops;
  std::string grammar;      // --grammar / --grammar-file: GBNF
  std::string json_schema;  // -j / --json-schema / --json-schema-file
  std::string grammar_trigger;  // --grammar-trigger: the grammar holds only what follows it
  moevk_sampler_params sampling = moevk_sampler_default_params();
};

// Numeric option values, checked when parsed so that "-c -1" is an error and not 2^32-1:
// a plain decimal integer in [min, max] / a finite real number in [min, max]. Throw
// std::runtime_error naming the option and the accepted range.
uint64_t unsigned_option(const char* text, const char* option, uint64_t min, uint64_t max);
double real_option(const char* text, const char* option, double min, double max);
// A whole file's bytes; throws std::runtime_error(error) when it cannot be read.
std::string read_file_text(const std::string& path, const std::string& error);

// The shared options by group; each command takes the groups it uses, so an option it would
// ignore is refused as unknown, and its help lists exactly what it takes.
enum OptionGroup : unsigned {
  kModelOptions = 1u << 0,       // -m --device -c -b --validate --no-progress
  kPromptOptions = 1u << 1,      // -p -f --prompt-ids
  kGenerationOptions = 1u << 2,  // -n --stop --ignore-eos --grammar(-file) -j/--json-schema(-file)
  kSamplingOptions = 1u << 3,    // --temp --greedy --top-k --top-p --min-p, penalties, --seed
  kChatOptions = 1u << 4,        // --system --chat-template
  kPrintIdsOption = 1u << 5,     // --print-ids
  kExpertStatsOption = 1u << 6,  // --expert-stats
  kProfileOption = 1u << 7,      // --profile
  kJsonOption = 1u << 8,         // --json
};
// Parses one option at argv[i] (advancing i past its value). Returns false when argv[i] is not
// a shared option of `groups`; throws std::runtime_error for a bad value.
bool parse_common(int argc, char** argv, int& i, GenOptions& o, unsigned groups);
// The help text of the shared options of `groups` (-n's default as the command sets it).
std::string common_help(unsigned groups, int32_t n_predict_default = 128);
std::vector<int32_t> parse_ids(const std::string& s);
// "a,b,,c" -> {"a", "b", "c"}: the non-empty items of a comma-separated list.
std::vector<std::string> split_list(const std::string& s);

// Loads o.model with a progress bar on stderr (when o.progress). Prints the error and returns
// nullptr on failure. `load_ms` receives the load time.
moevk_model* load_model(const GenOptions& o, double* load_ms);
moevk_context* create_context(moevk_model* model, const GenOptions& o);
// Generation parameters from the options: -n, --ignore-eos, sampling and --stop. `stops` receives
// the C strings stop_strings points to: keep it (and `o`) alive while generating.
moevk_generate_params generate_params(const GenOptions& o, std::vector<const char*>& stops);

// Tokenizes `text` into `ids` (by default BOS as the vocabulary asks, special tokens parsed:
// moevk_tokenize's add_special and parse_special), asking again with the size the library
// reports when the first guess is too small. Prints the error and returns false on failure.
bool tokenize(moevk_model* model, const std::string& text, std::vector<int32_t>& ids, bool add_special = true,
              bool parse_special = true);

// Prints a failed context call's message; for a full context also how to make it larger.
void print_context_error(moevk_context* ctx, moevk_status status);

}  // namespace moevk_cli
