#include "text/vocab.hpp"

#include <cstring>

#include "common/error.hpp"
#include "gguf/gguf.hpp"

namespace moevk::text {

namespace {

namespace key {
constexpr const char* kModel = "tokenizer.ggml.model";
constexpr const char* kPre = "tokenizer.ggml.pre";
constexpr const char* kTokens = "tokenizer.ggml.tokens";
constexpr const char* kScores = "tokenizer.ggml.scores";
constexpr const char* kTokenType = "tokenizer.ggml.token_type";
constexpr const char* kMerges = "tokenizer.ggml.merges";
constexpr const char* kBos = "tokenizer.ggml.bos_token_id";
constexpr const char* kEos = "tokenizer.ggml.eos_token_id";
constexpr const char* kUnk = "tokenizer.ggml.unknown_token_id";
constexpr const char* kPad = "tokenizer.ggml.padding_token_id";
constexpr const char* kEot = "tokenizer.ggml.eot_token_id";
constexpr const char* kAddBos = "tokenizer.ggml.add_bos_token";
constexpr const char* kAddEos = "tokenizer.ggml.add_eos_token";
constexpr const char* kAddSpacePrefix = "tokenizer.ggml.add_space_prefix";
constexpr const char* kChatTemplate = "tokenizer.chat_template";
}  // namespace key

[[noreturn]] void bad_key(const std::string& name, const std::string& why) {
  fail(MOEVK_ERROR_INVALID_FILE, "GGUF key " + name + ": " + why);
}

const gguf::Value* find_array(const gguf::File& file, const char* name, gguf::ValueType element, bool required) {
  const gguf::Value* value = file.find(name);
  if (!value) {
    if (required) bad_key(name, "missing");
    return nullptr;
  }
  if (value->type != gguf::ValueType::ARRAY) bad_key(name, "not an array");
  if (value->element_type != element) bad_key(name, "array of the wrong element type");
  return value;
}

int32_t read_token_id(const gguf::File& file, const char* name, size_t token_count) {
  const gguf::Value* value = file.find(name);
  if (!value) return -1;
  std::optional<int64_t> id = value->as_int();
  if (!id) bad_key(name, "not an integer");
  // Some converters write -1 (as a wrapped unsigned) for "none".
  if (*id == -1 || *id == 0xFFFFFFFFll) return -1;
  if (*id < 0 || static_cast<uint64_t>(*id) >= token_count)
    bad_key(name, "token id " + std::to_string(*id) + " outside the vocabulary of " + std::to_string(token_count));
  return static_cast<int32_t>(*id);
}

}  // namespace

VocabData read_vocab(const gguf::File& file) {
  VocabData vocab;
  auto model = file.get_string(key::kModel);
  if (!model) bad_key(key::kModel, "missing");
  vocab.model = *model;
  vocab.pre = file.get_string(key::kPre).value_or("default");

  const gguf::Value* tokens = find_array(file, key::kTokens, gguf::ValueType::STRING, true);
  if (tokens->strings.empty()) bad_key(key::kTokens, "empty");
  vocab.tokens = tokens->strings;
  const size_t n = vocab.tokens.size();

  // Scores and types are packed as in the file (gguf::Value): copied out as whole arrays.
  if (const auto* scores = find_array(file, key::kScores, gguf::ValueType::FLOAT32, false)) {
    if (scores->array_size() != n) bad_key(key::kScores, "length differs from " + std::string(key::kTokens));
    vocab.scores.resize(n);
    std::memcpy(vocab.scores.data(), scores->packed.data(), n * sizeof(float));
  }
  if (const auto* types = find_array(file, key::kTokenType, gguf::ValueType::INT32, false)) {
    if (types->array_size() != n) bad_key(key::kTokenType, "length differs from " + std::string(key::kTokens));
    vocab.token_types.resize(n);
    std::memcpy(vocab.token_types.data(), types->packed.data(), n * sizeof(int32_t));
    for (int32_t t : vocab.token_types)
      if (t < 0 || t > static_cast<int32_t>(TokenType::BYTE)) bad_key(key::kTokenType, "unknown token type " + std::to_string(t));
  } else {
    vocab.token_types.assign(n, static_cast<int32_t>(TokenType::NORMAL));
  }
  if (const auto* merges = find_array(file, key::kMerges, gguf::ValueType::STRING, false)) vocab.merges = merges->strings;
  if (vocab.model == "llama" && vocab.scores.empty()) bad_key(key::kScores, "missing (needed by the \"llama\" tokenizer)");
  if (vocab.model == "gpt2" && vocab.merges.empty()) bad_key(key::kMerges, "missing (needed by the \"gpt2\" tokenizer)");

  vocab.bos_id = read_token_id(file, key::kBos, n);
  vocab.eos_id = read_token_id(file, key::kEos, n);
  vocab.unk_id = read_token_id(file, key::kUnk, n);
  vocab.pad_id = read_token_id(file, key::kPad, n);
  vocab.eot_id = read_token_id(file, key::kEot, n);
  // llama.cpp's defaults when the keys are absent: SentencePiece vocabularies add BOS.
  vocab.add_bos = file.get_bool(key::kAddBos).value_or(vocab.model == "llama");
  vocab.add_eos = file.get_bool(key::kAddEos).value_or(false);
  vocab.add_space_prefix = file.get_bool(key::kAddSpacePrefix).value_or(true);
  vocab.chat_template = file.get_string(key::kChatTemplate).value_or("");
  return vocab;
}

void write_vocab(gguf::Writer& writer, const VocabData& vocab) {
  writer.set_string(key::kModel, vocab.model);
  writer.set_string(key::kPre, vocab.pre.empty() ? "default" : vocab.pre);
  writer.set_string_array(key::kTokens, vocab.tokens);
  if (!vocab.scores.empty()) writer.set_float32_array(key::kScores, vocab.scores);
  if (vocab.token_types.empty())
    writer.set_int32_array(key::kTokenType, std::vector<int32_t>(vocab.tokens.size(), static_cast<int32_t>(TokenType::NORMAL)));
  else
    writer.set_int32_array(key::kTokenType, vocab.token_types);
  if (!vocab.merges.empty()) writer.set_string_array(key::kMerges, vocab.merges);
  const std::pair<const char*, int32_t> ids[] = {{key::kBos, vocab.bos_id}, {key::kEos, vocab.eos_id},
                                                 {key::kUnk, vocab.unk_id}, {key::kPad, vocab.pad_id},
                                                 {key::kEot, vocab.eot_id}};
  for (auto [name, id] : ids)
    if (id >= 0) writer.set_uint32(name, static_cast<uint32_t>(id));
  writer.set_bool(key::kAddBos, vocab.add_bos);
  writer.set_bool(key::kAddEos, vocab.add_eos);
  if (vocab.model == "llama") writer.set_bool(key::kAddSpacePrefix, vocab.add_space_prefix);
  if (!vocab.chat_template.empty()) writer.set_string(key::kChatTemplate, vocab.chat_template);
}

}  // namespace moevk::text
