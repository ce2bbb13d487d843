// `moevk split`: a GGUF file -> a split set llama.cpp loads, or a split set -> one file
// (llama.cpp's gguf-split --split / --merge, with its option names).
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "model_summary.hpp"
#include "moevk.h"

namespace {

void usage() {
  std::printf(
      "usage: moevk split IN.gguf OUT_PREFIX [--split-max-tensors N | --split-max-size SIZE]\n"
      "       moevk split --merge FIRST-00001-of-0000N.gguf OUT.gguf\n"
      "                  [--no-progress]\n\n"
      "Writes IN.gguf as a split set OUT_PREFIX-00001-of-0000N.gguf ... in the layout of\n"
      "llama.cpp's gguf-split (the metadata in the first file, split.no / split.count /\n"
      "split.tensors.count in each; Hugging Face takes files of at most 50 GB). moevk and\n"
      "llama.cpp load the set from its first file. IN.gguf may itself be the first file of a set.\n"
      "With --merge, writes a set (given by its first file) as one file.\n\n"
      "  --split-max-tensors N  at most N tensors per file (default 128)\n"
      "  --split-max-size SIZE  at most SIZE bytes of tensor data per file: a number with K, M or\n"
      "                         G (powers of 1000, as gguf-split), e.g. 48G; a tensor larger\n"
      "                         than SIZE gets a file of its own. Replaces --split-max-tensors.\n"
      "  --merge                merge instead of split\n"
      "  --no-progress          no progress bar\n\n"
      "Files are written under temporary names and renamed when complete; on failure none is\n"
      "left behind. Prints the files written.\n");
}

// "48G" -> 48e9; 0 when malformed.
uint64_t parse_size(const char* text) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text, &end);
  if (errno || end == text || !(v > 0)) return 0;
  double unit = 1;
  if (*end) {
    switch (std::toupper(static_cast<unsigned char>(*end))) {
      case 'K': unit = 1e3; break;
      case 'M': unit = 1e6; break;
      case 'G': unit = 1e9; break;
      case 'T': unit = 1e12; break;
      default: return 0;
    }
    if (end[1] && !(std::toupper(static_cast<unsigned char>(end[1])) == 'B' && !end[2])) return 0;
  }
  const double bytes = v * unit;
  return bytes >= 1 && bytes < 1.8e19 ? uint64_t(bytes) : 0;
}

int run_split(int argc, char** argv) {
  moevk_split_params p = moevk_split_default_params();
  bool progress = true;
  const char* positional[2] = {nullptr, nullptr};
  int n_positional = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "moevk split: %s needs a value\n", a.c_str());
        return nullptr;
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else if (a == "--merge") {
      p.merge = 1;
    } else if (a == "--split-max-tensors") {
      const char* v = value();
      if (!v) return 2;
      char* end = nullptr;
      const unsigned long long n = std::strtoull(v, &end, 10);
      if (!*v || *end || n == 0) {
        std::fprintf(stderr, "moevk split: --split-max-tensors '%s' is not a positive integer\n", v);
        return 2;
      }
      p.max_tensors = n;
    } else if (a == "--split-max-size") {
      const char* v = value();
      if (!v) return 2;
      if (!(p.max_file_bytes = parse_size(v))) {
        std::fprintf(stderr, "moevk split: --split-max-size '%s' is not a size such as 500M or 48G\n", v);
        return 2;
      }
    } else if (a == "--no-progress") {
      progress = false;
    } else if (a[0] == '-') {
      std::fprintf(stderr, "moevk split: unknown option '%s'\n", a.c_str());
      return 2;
    } else if (n_positional == 2) {
      std::fprintf(stderr, "moevk split: too many arguments (see moevk split --help)\n");
      return 2;
    } else {
      positional[n_positional++] = argv[i];
    }
  }
  if (n_positional != 2) {
    std::fprintf(stderr, "moevk split: need IN.gguf and %s (see moevk split --help)\n",
                 p.merge ? "OUT.gguf" : "OUT_PREFIX");
    return 2;
  }
  if (p.max_file_bytes) p.max_tensors = 0;  // by size alone, as gguf-split
  p.input_path = positional[0];
  p.output_path = positional[1];
  char* paths_json = nullptr;
  p.paths_json_out = &paths_json;
  if (progress) p.progress = moevk_cli::file_progress_bar;
  const moevk_status status = moevk_split(&p);
  moevk_cli::file_progress_done();
  if (status != MOEVK_OK) {
    std::fprintf(stderr, "moevk split: %s\n", moevk_last_error());
    return 1;
  }
  const nlohmann::json paths = nlohmann::json::parse(paths_json);
  moevk_free_string(paths_json);
  for (const auto& path : paths) std::printf("wrote %s\n", path.get<std::string>().c_str());
  return 0;
}

moevk_cli::RegisterCommand reg("split", "split a GGUF file into a set llama.cpp loads, or merge one", run_split);

}  // namespace
