// What the converter and the random-model generator share: the description of a model to write
// (ModelSpec), llama.cpp's tensor layout for it, the choice of stored type per tensor, the GGUF
// metadata, a placeholder vocabulary, and the streamed write (rows are produced, quantized and
// written chunk by chunk on every core up to 16, so memory does not grow with the model).
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "models/hparams.hpp"
#include "quant/file_type.hpp"
#include "quant/types.hpp"
#include "text/vocab.hpp"

namespace moevk::convert {

struct ModelSpec {
  std::string arch;  // llama | qwen2moe | qwen3moe | qwen2 | qwen3
  std::string name;  // general.name
  uint32_t n_vocab = 0, n_ctx_train = 0, n_embd = 0, n_layer = 0;
  uint32_t n_head = 0, n_head_kv = 0, head_dim = 0;
  uint32_t n_ff = 0;        // dense FFN width (Mixtral: the expert width, as llama.cpp writes it)
  uint32_t n_ff_exp = 0;    // routed expert width
  uint32_t n_ff_shexp = 0;  // shared expert width, 0 = none
  uint32_t n_expert = 0, n_expert_used = 0;
  float norm_eps = 1e-5f, rope_freq_base = 10000.0f;
  bool expert_weights_norm = true;
  bool qkv_bias = false, qk_norm = false, tied_output = false;
  std::vector<uint8_t> layer_is_moe;  // n_layer entries

  model::HParams hparams() const;  // validated view, as a reader of the written file would see it
};

// How a tensor is stored: vectors (norms, biases) and routers stay F32 (tiny, and the router's
// ranking is precision-sensitive); matrices take the requested type.
enum class TensorRole { VECTOR, ROUTER, MATRIX };

struct TensorDecl {
  std::string name;
  std::vector<uint64_t> dims;  // ne[0] first
  TensorRole role = TensorRole::MATRIX;
  uint64_t rows() const;       // product of dims[1..]
};

// llama.cpp's names and shapes for the model: token_embd, output_norm, output, then per layer
// attention, norms and FFN (3-D stacked experts for MoE layers, ffn_gate/up/down for dense ones).
std::vector<TensorDecl> tensor_layout(const ModelSpec& spec);

// The stored type of a tensor. A matrix whose row length is not a multiple of the requested
// type's block falls back: K-quants (256) to Q8_0 when the row is a multiple of 32, otherwise
// F16; when a fallback happens `note` says so.
quant::Type stored_type(quant::Type requested, const TensorDecl& decl, std::string* note);
// The note for a matrix stored as `stored` because its rows are not a multiple of `requested`'s
// block: "NAME: row length N is not a multiple of T's block of B, stored as S".
std::string fallback_note(const TensorDecl& decl, quant::Type requested, quant::Type stored);

// Per-tensor types over the file's type (`--tensor-type PATTERN=TYPE`, as llama-quantize's): a
// matrix whose GGUF name matches a rule's pattern (an ECMAScript regular expression found
// anywhere in the name: "ffn_down_exps", "^output\\.weight$", "blk\\.(0|1|2)\\.attn_v") is
// requested in the rule's type; the first matching rule wins, and the row-length fallback
// applies as to the file's type. Vectors and routers stay F32 whatever the rules say.
class TypeRules {
 public:
  TypeRules() = default;
  // "PATTERN=TYPE" each, split at the last '='. Throws INVALID_ARGUMENT naming a malformed rule,
  // a bad pattern or an unknown type, UNSUPPORTED for a type moevk cannot write.
  static TypeRules parse(const std::vector<std::string>& rules);
  bool empty() const { return rules_.empty(); }
  // The first matching rule's type for a matrix; nullopt where no rule matches (and for
  // vectors and routers).
  std::optional<quant::Type> rule_type(const TensorDecl& decl) const;
  // Throws INVALID_ARGUMENT for a rule that matches no matrix of `layout`: a misspelt name
  // would otherwise quietly write another file than the one asked for.
  void check_used(const std::vector<TensorDecl>& layout) const;

 private:
  struct Rule {
    std::string text;
    std::regex pattern;
    quant::Type type;
  };
  std::vector<Rule> rules_;
};

// The type a K-quant mix (quant::Mix) gives a matrix, as llama-quantize's llama_tensor_get_type
// chooses it for these architectures without an importance matrix: the output head (token_embd
// where the output is tied) Q6_K; attn_v and ffn_down wider in some layers (use_more_bits: the
// first and last eighth of the layers and every third between); 8-expert models (Mixtral)
// attn_v and attn_k Q8_0 and attn_output Q5_K. A row that is not a multiple of the chosen type's
// block takes llama-quantize's fallback (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, Q3_K -> IQ4_NL,
// then F16), reported in `note`. A pure file type (Mix::NONE) is stored_type(base).
quant::Type mix_type(const quant::FileType& file_type, const ModelSpec& spec, const TensorDecl& decl,
                     std::string* note);

// The stored type of `decl` in a file of `file_type`: a matching rule's type (with stored_type's
// fallback), else the mix's choice (mix_type); vectors and routers F32.
quant::Type chosen_type(const quant::FileType& file_type, const ModelSpec& spec, const TypeRules& rules,
                        const TensorDecl& decl, std::string* note);

// Placeholder vocabulary for files without a tokenizer: "<unk>", "<s>", "</s>", the 256 byte
// tokens "<0x00>".."<0xFF>", then "tok_N", SentencePiece-style ("llama"), n_vocab tokens.
text::VocabData placeholder_vocab(uint32_t n_vocab);

// Produces rows [first_row, first_row + n_rows) of a tensor as floats (n_rows * ne[0] values).
// Called concurrently from several threads on disjoint ranges.
using RowSource = std::function<void(uint64_t first_row, uint64_t n_rows, float* out)>;

struct WriteCallbacks {
  // fraction in [0,1]; return true to cancel (the call then throws CANCELLED, no file is left).
  std::function<bool(float fraction, const std::string& stage)> progress;
  std::function<void(const std::string& line)> log;  // notes such as type fallbacks
};

// The planned file: the layout with stored types, as describe() can summarise it without data.
std::vector<model::TensorShape> planned_shapes(const ModelSpec& spec, const quant::FileType& type,
                                               std::vector<std::string>* notes, const TypeRules& rules = {});

// Writes the whole GGUF: metadata, vocabulary, then every tensor of tensor_layout(spec) in
// order (types: chosen_type's per tensor), its data coming from source(decl), quantized
// with `search` (quant::ScaleSearch). Throws moevk::Error; a partial file is removed.
void write_model(const std::string& path, const ModelSpec& spec, const text::VocabData& vocab,
                 const quant::FileType& type,
                 quant::ScaleSearch search, const std::function<RowSource(const TensorDecl&)>& source,
                 const WriteCallbacks& callbacks, const TypeRules& rules = {});

}  // namespace moevk::convert
