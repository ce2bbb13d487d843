// What the converter and the random-model generator share: the description of a model to write
// (ModelSpec), llama.cpp's tensor layout for it, the choice of stored type per tensor, the GGUF
// metadata, a placeholder vocabulary, and the streamed write (rows are produced, quantized and
// written chunk by chunk on every core up to 16, so memory does not grow with the model).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "models/hparams.hpp"
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

// llama.cpp's general.file_type (llama_ftype) for a file whose matrices are mostly `type`.
uint32_t file_type_id(quant::Type type);

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
std::vector<model::TensorShape> planned_shapes(const ModelSpec& spec, quant::Type type,
                                               std::vector<std::string>* notes);

// Writes the whole GGUF: metadata, vocabulary, then every tensor of tensor_layout(spec) in
// order, its data coming from source(decl), quantized with `search` (quant::ScaleSearch).
// Throws moevk::Error; a partial file is removed.
void write_model(const std::string& path, const ModelSpec& spec, const text::VocabData& vocab, quant::Type type,
                 quant::ScaleSearch search, const std::function<RowSource(const TensorDecl&)>& source,
                 const WriteCallbacks& callbacks);

}  // namespace moevk::convert
