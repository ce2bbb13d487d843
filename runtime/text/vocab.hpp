// The vocabulary of a model as GGUF stores it (tokenizer.ggml.* keys), independent of the file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace moevk::gguf {
class File;
class Writer;
}

namespace moevk::text {

// Token types as in GGUF's tokenizer.ggml.token_type.
enum class TokenType : int32_t {
  UNDEFINED = 0, NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6,
};

struct VocabData {
  std::string model;            // tokenizer.ggml.model: "llama" (SentencePiece-style), "gpt2" (byte-level BPE)
  std::string pre;              // tokenizer.ggml.pre: "qwen2", "default", ...
  std::vector<std::string> tokens;
  std::vector<float> scores;    // may be empty for BPE
  std::vector<int32_t> token_types;
  std::vector<std::string> merges;  // "a b" pairs, BPE only
  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1, eot_id = -1;
  bool add_bos = false, add_eos = false;
  bool add_space_prefix = true; // tokenizer.ggml.add_space_prefix (SentencePiece "llama" only)
  std::string chat_template;    // tokenizer.chat_template (Jinja source), may be empty
};

// Reads tokenizer.ggml.* and tokenizer.chat_template. Throws moevk::Error (INVALID_FILE naming
// the key) when they are missing or inconsistent (e.g. scores length != tokens length).
VocabData read_vocab(const gguf::File& file);
// Writes the same keys.
void write_vocab(gguf::Writer& writer, const VocabData& vocab);
// From a Hugging Face tokenizer.json (+ tokenizer_config.json text, may be empty).
VocabData vocab_from_hf(const std::string& tokenizer_json, const std::string& tokenizer_config_json);

}  // namespace moevk::text
