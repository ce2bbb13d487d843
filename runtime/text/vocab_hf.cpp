// vocab_from_hf: a Hugging Face tokenizer.json (+ tokenizer_config.json) turned into the GGUF
// vocabulary fields, the way llama.cpp's converter does for the two families we run:
//  - byte-level BPE (Qwen2/Qwen3, Llama-3): model "gpt2", pre "qwen2" / "llama-bpe", merges kept in
//    rank order;
//  - SentencePiece BPE with byte fallback and U+2581 (Mistral/Mixtral): model "llama" with scores
//    that make the score-driven SentencePiece merge reproduce the merge ranks.
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "common/error.hpp"
#include "text/vocab.hpp"

namespace moevk::text {

namespace {

using nlohmann::json;

// The Split regex of Qwen2/Qwen2.5/Qwen3's tokenizer.json (llama.cpp calls this pre "qwen2").
constexpr std::string_view kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";
// Meta-Llama-3's: the same but digits in groups of up to three (llama.cpp: pre "llama-bpe").
constexpr std::string_view kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

[[noreturn]] void hf_error(const std::string& what) { fail(MOEVK_ERROR_INVALID_FILE, "tokenizer.json: " + what); }

json parse(const std::string& text, const char* name) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    fail(MOEVK_ERROR_INVALID_FILE, std::string(name) + " is not valid JSON: " + e.what());
  }
}

// Every object in a (possibly nested) "Sequence" of normalizers / pre-tokenizers / decoders.
void collect_components(const json& node, std::vector<const json*>& out) {
  if (!node.is_object()) return;
  out.push_back(&node);
  for (const char* list : {"pretokenizers", "normalizers", "decoders", "processors"})
    if (node.contains(list) && node[list].is_array())
      for (const auto& child : node[list]) collect_components(child, out);
}

bool has_component(const json& root, const char* section, std::string_view type, const json** found = nullptr) {
  if (!root.contains(section)) return false;
  std::vector<const json*> parts;
  collect_components(root[section], parts);
  for (const json* p : parts)
    if (p->value("type", "") == type) {
      if (found) *found = p;
      return true;
    }
  return false;
}

// tokenizer_config.json names special tokens as a string or as {"content": ...}.
std::string token_name(const json& config, const char* field) {
  if (!config.contains(field)) return {};
  const json& v = config[field];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return {};
}

// Whether the post-processor puts `token` in front of every single text: Llama-3 asks for its BOS
// this way ("TemplateProcessing", single = [<|begin_of_text|>, $A]), not with add_bos_token.
bool post_processor_starts_with(const json& root, const std::string& token) {
  const json* template_processing = nullptr;
  if (token.empty() || !has_component(root, "post_processor", "TemplateProcessing", &template_processing)) return false;
  const json& single = template_processing->contains("single") ? (*template_processing)["single"] : json();
  if (!single.is_array() || single.empty() || !single[0].is_object() || !single[0].contains("SpecialToken")) return false;
  const json& first = single[0]["SpecialToken"];
  return first.is_object() && first.value("id", "") == token;
}

}  // namespace

static VocabData vocab_from_hf_checked(const std::string& tokenizer_json, const std::string& tokenizer_config_json) {
  json root = parse(tokenizer_json, "tokenizer.json");
  json config = tokenizer_config_json.empty() ? json::object() : parse(tokenizer_config_json, "tokenizer_config.json");
  if (!root.is_object() || !root.contains("model") || !root["model"].is_object()) hf_error("no \"model\" object");
  if (!config.is_object()) fail(MOEVK_ERROR_INVALID_FILE, "tokenizer_config.json: not an object");
  const json& model = root["model"];
  if (model.value("type", "") != "BPE")
    fail(MOEVK_ERROR_UNSUPPORTED, "tokenizer.json: model type '" + model.value("type", "") + "' not supported (BPE only)");
  if (!model.contains("vocab") || !model["vocab"].is_object()) hf_error("model.vocab is not an object");

  VocabData vocab;
  const bool spm_style = model.value("byte_fallback", false) || has_component(root, "decoder", "ByteFallback") ||
                         has_component(root, "pre_tokenizer", "Metaspace") || has_component(root, "decoder", "Metaspace");
  const json* split = nullptr;
  if (spm_style) {
    vocab.model = "llama";
    vocab.pre = "default";
    const json* metaspace = nullptr;
    if (has_component(root, "pre_tokenizer", "Metaspace", &metaspace))
      vocab.add_space_prefix = metaspace->value("prepend_scheme", "always") != "never" && metaspace->value("add_prefix_space", true);
    else if (root.contains("normalizer") && !root["normalizer"].is_null())
      vocab.add_space_prefix = has_component(root, "normalizer", "Prepend");
  } else if (has_component(root, "pre_tokenizer", "ByteLevel")) {
    vocab.model = "gpt2";
    if (has_component(root, "pre_tokenizer", "Split", &split)) {
      const json& pattern = (*split)["pattern"];
      std::string regex = pattern.is_object() ? pattern.value("Regex", "") : "";
      if (regex == kQwen2Regex) vocab.pre = "qwen2";
      else if (regex == kLlama3Regex) vocab.pre = "llama-bpe";
      else fail(MOEVK_ERROR_UNSUPPORTED, "tokenizer.json: pre-tokenizer regex not supported: " + regex);
    } else {
      vocab.pre = "gpt2";  // ByteLevel with its built-in GPT-2 regex
    }
  } else {
    fail(MOEVK_ERROR_UNSUPPORTED, "tokenizer.json: neither byte-level nor SentencePiece-style BPE");
  }

  // Tokens in id order: the model's vocabulary plus added tokens; holes become unused padding.
  struct Entry {
    std::string text;
    TokenType type = TokenType::UNUSED;
    bool present = false;
  };
  std::vector<Entry> entries;
  auto place = [&](int64_t id, const std::string& text, TokenType type) {
    if (id < 0 || id > (1 << 24)) hf_error("token id out of range: " + std::to_string(id));
    if (static_cast<size_t>(id) >= entries.size()) entries.resize(id + 1);
    entries[id] = {text, type, true};
  };
  for (const auto& [text, id] : model["vocab"].items()) {
    if (!id.is_number_integer()) hf_error("vocab id of '" + text + "' is not an integer");
    TokenType type = TokenType::NORMAL;
    if (spm_style && text.size() == 6 && text.rfind("<0x", 0) == 0 && text[5] == '>') type = TokenType::BYTE;
    place(id.get<int64_t>(), text, type);
  }
  if (root.contains("added_tokens") && root["added_tokens"].is_array()) {
    for (const auto& added : root["added_tokens"]) {
      if (!added.contains("id") || !added["id"].is_number_integer() || !added.contains("content"))
        hf_error("added token without id or content");
      place(added["id"].get<int64_t>(), added["content"].get<std::string>(),
            added.value("special", false) ? TokenType::CONTROL : TokenType::USER_DEFINED);
    }
  }
  vocab.tokens.reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    vocab.tokens.push_back(entries[i].present ? entries[i].text : "[PAD" + std::to_string(i) + "]");
    vocab.token_types.push_back(static_cast<int32_t>(entries[i].type));
  }
  std::unordered_map<std::string, int32_t> id_of;
  for (size_t i = 0; i < vocab.tokens.size(); ++i) id_of.emplace(vocab.tokens[i], static_cast<int32_t>(i));

  std::vector<std::string> merges;
  if (model.contains("merges") && model["merges"].is_array()) {
    for (const auto& m : model["merges"]) {
      if (m.is_string()) merges.push_back(m.get<std::string>());
      else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
        merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
      else hf_error("a merge is neither \"a b\" nor [\"a\", \"b\"]");
    }
  }
  if (spm_style) {
    // The SentencePiece merge picks the pair whose merged token scores highest. A merge of rank r
    // gives its result the score -r (the first merge producing a token wins); tokens no merge
    // produces rank below every merge result.
    const float unreachable = -static_cast<float>(merges.size());
    vocab.scores.assign(vocab.tokens.size(), 0.0f);
    for (size_t i = 0; i < vocab.tokens.size(); ++i) vocab.scores[i] = unreachable - static_cast<float>(i);
    std::vector<uint8_t> scored(vocab.tokens.size(), 0);
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const std::string& m = merges[rank];
      size_t space = m.find(' ', 1);
      if (space == std::string::npos) hf_error("merge without a space: '" + m + "'");
      auto it = id_of.find(m.substr(0, space) + m.substr(space + 1));
      if (it == id_of.end() || scored[it->second]) continue;
      scored[it->second] = 1;
      vocab.scores[it->second] = -static_cast<float>(rank);
    }
  } else {
    vocab.merges = std::move(merges);
  }

  auto id_by_name = [&](const char* field) -> int32_t {
    std::string name = token_name(config, field);
    if (name.empty()) return -1;
    auto it = id_of.find(name);
    if (it == id_of.end()) fail(MOEVK_ERROR_INVALID_FILE, std::string("tokenizer_config.json: ") + field + " '" + name + "' is not a token");
    return it->second;
  };
  vocab.bos_id = id_by_name("bos_token");
  vocab.eos_id = id_by_name("eos_token");
  vocab.unk_id = id_by_name("unk_token");
  vocab.pad_id = id_by_name("pad_token");
  if (vocab.unk_id >= 0) vocab.token_types[vocab.unk_id] = static_cast<int32_t>(TokenType::UNKNOWN);
  vocab.add_bos = config.contains("add_bos_token") && config["add_bos_token"].is_boolean()
                      ? config["add_bos_token"].get<bool>()
                      : spm_style || post_processor_starts_with(root, token_name(config, "bos_token"));
  vocab.add_eos = config.value("add_eos_token", false);
  if (vocab.add_bos && vocab.bos_id < 0) vocab.add_bos = false;

  if (config.contains("chat_template")) {
    const json& t = config["chat_template"];
    if (t.is_string()) {
      vocab.chat_template = t.get<std::string>();
    } else if (t.is_array()) {  // [{"name": "default", "template": ...}, ...]
      for (const auto& named : t)
        if (named.is_object() && named.value("name", "") == "default" && named.contains("template"))
          vocab.chat_template = named["template"].get<std::string>();
    }
  }
  return vocab;
}

VocabData vocab_from_hf(const std::string& tokenizer_json, const std::string& tokenizer_config_json) {
  try {
    return vocab_from_hf_checked(tokenizer_json, tokenizer_config_json);
  } catch (const nlohmann::json::exception& e) {  // a field of an unexpected JSON type
    fail(MOEVK_ERROR_INVALID_FILE, std::string("tokenizer.json / tokenizer_config.json: ") + e.what());
  }
}

}  // namespace moevk::text
