// Shared by the C API tests (header only: only *_test.cpp files are globbed here): files, and a
// GGUF of the tiny Qwen2-MoE fixture with a tokenizer of the test's own.
#pragma once
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "moevk.h"

namespace moevk::test {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// Writes `dir`/hf (tests/data/hf/qwen2moe-tiny's config and weights, with these tokenizer.json
// and tokenizer_config.json) and converts it to `gguf`: moevk_convert's status.
inline moevk_status convert_tiny_qwen2moe(const std::string& dir, const std::string& tokenizer_json,
                                          const std::string& tokenizer_config_json, const std::string& gguf) {
  const std::string hf = dir + "/hf";
  std::filesystem::create_directories(hf);
  for (const char* f : {"config.json", "model.safetensors"})
    std::filesystem::copy_file(std::string(MOEVK_TEST_DATA_DIR) + "/hf/qwen2moe-tiny/" + f, hf + "/" + f,
                               std::filesystem::copy_options::overwrite_existing);
  write_file(hf + "/tokenizer.json", tokenizer_json);
  write_file(hf + "/tokenizer_config.json", tokenizer_config_json);
  moevk_convert_params cp = moevk_convert_default_params();
  cp.hf_dir = hf.c_str();
  cp.output_path = gguf.c_str();
  return moevk_convert(&cp);
}

}  // namespace moevk::test
