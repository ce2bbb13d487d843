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
  std::string system_prompt;
  std::vector<std::string> stops;
  moevk_sampler_params sampling = moevk_sampler_default_params();
};

// Numeric option values, checked when parsed so that "-c -1" is an error and not 2^32-1:
// a plain decimal integer in [min, max] / a finite real number in [min, max]. Throw
// std::runtime_error naming the option and the accepted range.
uint64_t unsigned_option(const char* text, const char* option, uint64_t min, uint64_t max);
double real_option(const char* text, const char* option, double min, double max);

// Parses one option at argv[i] (advancing i past its value). Returns false when argv[i] is not
// a shared option; throws std::runtime_error for a bad value.
bool parse_common(int argc, char** argv, int& i, GenOptions& o);
// The help text of the shared options.
const char* common_help();
std::vector<int32_t> parse_ids(const std::string& s);

// Loads o.model with a progress bar on stderr (when o.progress). Prints the error and returns
// nullptr on failure. `load_ms` receives the load time.
moevk_model* load_model(const GenOptions& o, double* load_ms);
moevk_context* create_context(moevk_model* model, const GenOptions& o);

// Tokenizes `text` into `ids` (by default BOS as the vocabulary asks, special tokens parsed:
// moevk_tokenize's add_special and parse_special), asking again with the size the library
// reports when the first guess is too small. Prints the error and returns false on failure.
bool tokenize(moevk_model* model, const std::string& text, std::vector<int32_t>& ids, bool add_special = true,
              bool parse_special = true);

// Prints a failed context call's message; for a full context also how to make it larger.
void print_context_error(moevk_context* ctx, moevk_status status);

}  // namespace moevk_cli
