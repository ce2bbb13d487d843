// Layout, metadata and the streamed, multi-threaded write of a model file.
#include "convert/model_writer.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <thread>

#include "common/error.hpp"
#include "gguf/gguf.hpp"

namespace moevk::convert {

model::HParams ModelSpec::hparams() const {
  model::HParams hp;
  hp.arch = arch;
  hp.n_vocab = n_vocab;
  hp.n_ctx_train = n_ctx_train;
  hp.n_embd = n_embd;
  hp.n_layer = n_layer;
  hp.n_head = n_head;
  hp.n_head_kv = n_head_kv;
  hp.head_dim = head_dim;
  hp.head_dim_v = head_dim;
  hp.n_rot = head_dim;
  hp.n_ff = n_ff;
  hp.n_ff_exp = n_ff_exp;
  hp.n_ff_shexp = n_ff_shexp;
  hp.n_expert = n_expert;
  hp.n_expert_used = n_expert_used;
  hp.norm_eps = norm_eps;
  hp.rope_freq_base = rope_freq_base;
  hp.rope_type = arch == "llama" ? model::RopeType::NORM : model::RopeType::NEOX;
  hp.expert_weights_norm = expert_weights_norm;
  hp.has_shared_expert = n_ff_shexp > 0;
  hp.qkv_bias = qkv_bias;
  hp.qk_norm = qk_norm;
  hp.tied_output = tied_output;
  hp.layer_is_moe = layer_is_moe;
  if (!model::is_supported_arch(arch))
    fail(MOEVK_ERROR_UNSUPPORTED, "architecture '" + arch + "' is not supported (llama, qwen2moe, qwen3moe, qwen2, qwen3)");
  model::validate_hparams(hp);
  return hp;
}

uint64_t TensorDecl::rows() const {
  uint64_t r = 1;
  for (size_t i = 1; i < dims.size(); ++i) r *= dims[i];
  return r;
}

std::vector<TensorDecl> tensor_layout(const ModelSpec& s) {
  std::vector<TensorDecl> out;
  const uint64_t embd = s.n_embd, q = uint64_t(s.n_head) * s.head_dim, kv = uint64_t(s.n_head_kv) * s.head_dim;
  auto add = [&](std::string name, std::vector<uint64_t> dims, TensorRole role) {
    out.push_back({std::move(name), std::move(dims), role});
  };
  add("token_embd.weight", {embd, s.n_vocab}, TensorRole::MATRIX);
  add("output_norm.weight", {embd}, TensorRole::VECTOR);
  if (!s.tied_output) add("output.weight", {embd, s.n_vocab}, TensorRole::MATRIX);
  for (uint32_t l = 0; l < s.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", {embd}, TensorRole::VECTOR);
    add(p + "attn_q.weight", {embd, q}, TensorRole::MATRIX);
    add(p + "attn_k.weight", {embd, kv}, TensorRole::MATRIX);
    add(p + "attn_v.weight", {embd, kv}, TensorRole::MATRIX);
    add(p + "attn_output.weight", {q, embd}, TensorRole::MATRIX);
    if (s.qkv_bias) {
      add(p + "attn_q.bias", {q}, TensorRole::VECTOR);
      add(p + "attn_k.bias", {kv}, TensorRole::VECTOR);
      add(p + "attn_v.bias", {kv}, TensorRole::VECTOR);
    }
    if (s.qk_norm) {
      add(p + "attn_q_norm.weight", {s.head_dim}, TensorRole::VECTOR);
      add(p + "attn_k_norm.weight", {s.head_dim}, TensorRole::VECTOR);
    }
    add(p + "ffn_norm.weight", {embd}, TensorRole::VECTOR);
    if (l < s.layer_is_moe.size() && s.layer_is_moe[l]) {
      add(p + "ffn_gate_inp.weight", {embd, s.n_expert}, TensorRole::ROUTER);
      add(p + "ffn_gate_exps.weight", {embd, s.n_ff_exp, s.n_expert}, TensorRole::MATRIX);
      add(p + "ffn_up_exps.weight", {embd, s.n_ff_exp, s.n_expert}, TensorRole::MATRIX);
      add(p + "ffn_down_exps.weight", {s.n_ff_exp, embd, s.n_expert}, TensorRole::MATRIX);
      if (s.n_ff_shexp > 0) {
        add(p + "ffn_gate_inp_shexp.weight", {embd}, TensorRole::ROUTER);
        add(p + "ffn_gate_shexp.weight", {embd, s.n_ff_shexp}, TensorRole::MATRIX);
        add(p + "ffn_up_shexp.weight", {embd, s.n_ff_shexp}, TensorRole::MATRIX);
        add(p + "ffn_down_shexp.weight", {s.n_ff_shexp, embd}, TensorRole::MATRIX);
      }
    } else {
      add(p + "ffn_gate.weight", {embd, s.n_ff}, TensorRole::MATRIX);
      add(p + "ffn_up.weight", {embd, s.n_ff}, TensorRole::MATRIX);
      add(p + "ffn_down.weight", {s.n_ff, embd}, TensorRole::MATRIX);
    }
  }
  return out;
}

std::string fallback_note(const TensorDecl& decl, quant::Type requested, quant::Type stored) {
  return decl.name + ": row length " + std::to_string(decl.dims[0]) + " is not a multiple of " +
         quant::type_info(requested).name + "'s block of " + std::to_string(quant::type_info(requested).block_size) +
         ", stored as " + quant::type_info(stored).name;
}

quant::Type stored_type(quant::Type requested, const TensorDecl& decl, std::string* note) {
  if (decl.role != TensorRole::MATRIX) return quant::Type::F32;
  const uint64_t ne0 = decl.dims[0];
  const uint32_t block = quant::type_info(requested).block_size;
  if (ne0 % block == 0) return requested;
  quant::Type fallback = quant::Type::F16;
  if (block > 32 && ne0 % 32 == 0) fallback = quant::Type::Q8_0;
  if (note) *note = fallback_note(decl, requested, fallback);
  return fallback;
}

TypeRules TypeRules::parse(const std::vector<std::string>& rules) {
  TypeRules out;
  for (const std::string& text : rules) {
    const size_t eq = text.rfind('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
      fail(MOEVK_ERROR_INVALID_ARGUMENT, "tensor type rule '" + text + "' is not PATTERN=TYPE");
    const std::string pattern = text.substr(0, eq), type_name = text.substr(eq + 1);
    quant::Type type;
    if (!quant::parse_type(type_name, type))
      fail(MOEVK_ERROR_INVALID_ARGUMENT, "tensor type rule '" + text + "': unknown type '" + type_name + "'");
    if (!quant::type_info(type).can_quantize)
      fail(MOEVK_ERROR_UNSUPPORTED, "tensor type rule '" + text + "': cannot write type " + quant::type_info(type).name);
    try {
      out.rules_.push_back({text, std::regex(pattern, std::regex::ECMAScript), type});
    } catch (const std::regex_error& e) {
      fail(MOEVK_ERROR_INVALID_ARGUMENT, "tensor type rule '" + text + "': '" + pattern +
                                             "' is not a regular expression (" + e.what() + ")");
    }
  }
  return out;
}

std::optional<quant::Type> TypeRules::rule_type(const TensorDecl& decl) const {
  if (decl.role != TensorRole::MATRIX) return std::nullopt;  // vectors and routers stay F32
  for (const Rule& r : rules_)
    if (std::regex_search(decl.name, r.pattern)) return r.type;
  return std::nullopt;
}

void TypeRules::check_used(const std::vector<TensorDecl>& layout) const {
  for (const Rule& r : rules_) {
    const bool used = std::any_of(layout.begin(), layout.end(), [&](const TensorDecl& d) {
      return d.role == TensorRole::MATRIX && std::regex_search(d.name, r.pattern);
    });
    if (!used)
      fail(MOEVK_ERROR_INVALID_ARGUMENT, "tensor type rule '" + r.text +
                                             "' matches no matrix of the model (names as `moevk info` lists them, "
                                             "e.g. blk.0.ffn_down_exps.weight, output.weight)");
  }
}

text::VocabData placeholder_vocab(uint32_t n_vocab) {
  text::VocabData v;
  v.model = "llama";
  v.pre = "default";
  for (uint32_t i = 0; i < n_vocab; ++i) {
    std::string token;
    text::TokenType type = text::TokenType::NORMAL;
    if (i == 0) {
      token = "<unk>";
      type = text::TokenType::UNKNOWN;
    } else if (i <= 2) {
      token = i == 1 ? "<s>" : "</s>";
      type = text::TokenType::CONTROL;
    } else if (i < 3 + 256) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "<0x%02X>", i - 3);
      token = buf;
      type = text::TokenType::BYTE;
    } else {
      token = "tok_" + std::to_string(i);
    }
    v.tokens.push_back(std::move(token));
    v.token_types.push_back(int32_t(type));
    v.scores.push_back(type == text::TokenType::NORMAL ? -float(i) : 0.0f);
  }
  v.unk_id = 0;
  if (n_vocab > 2) {
    v.bos_id = 1;
    v.eos_id = 2;
  }
  v.add_bos = true;
  return v;
}

std::vector<model::TensorShape> planned_shapes(const ModelSpec& spec, const quant::FileType& type,
                                               std::vector<std::string>* notes, const TypeRules& rules) {
  std::vector<model::TensorShape> shapes;
  const std::vector<TensorDecl> layout = tensor_layout(spec);
  rules.check_used(layout);
  for (const TensorDecl& d : layout) {
    std::string note;
    const quant::Type t = chosen_type(type, spec, rules, d, &note);
    if (!note.empty() && notes) notes->push_back(note);
    shapes.push_back({d.name, d.dims, t, d.rows() * quant::row_bytes(t, d.dims[0])});
  }
  return shapes;
}

namespace {

void write_metadata(gguf::Writer& w, const ModelSpec& s, const quant::FileType& type) {
  const std::string a = s.arch + ".";
  w.set_string("general.architecture", s.arch);
  w.set_string("general.name", s.name);
  w.set_uint32("general.file_type", quant::file_type_id(type));
  if (quant::type_info(type.base).block_size > 1) w.set_uint32("general.quantization_version", 2);
  w.set_uint32(a + "vocab_size", s.n_vocab);
  w.set_uint32(a + "context_length", s.n_ctx_train);
  w.set_uint32(a + "embedding_length", s.n_embd);
  w.set_uint32(a + "block_count", s.n_layer);
  w.set_uint32(a + "feed_forward_length", s.n_ff);
  w.set_uint32(a + "attention.head_count", s.n_head);
  w.set_uint32(a + "attention.head_count_kv", s.n_head_kv);
  w.set_uint32(a + "attention.key_length", s.head_dim);
  w.set_uint32(a + "attention.value_length", s.head_dim);
  w.set_float32(a + "attention.layer_norm_rms_epsilon", s.norm_eps);
  w.set_float32(a + "rope.freq_base", s.rope_freq_base);
  w.set_uint32(a + "rope.dimension_count", s.head_dim);
  if (s.n_expert > 0) {
    w.set_uint32(a + "expert_count", s.n_expert);
    w.set_uint32(a + "expert_used_count", s.n_expert_used);
    // llama.cpp's Mixtral files carry the expert width in feed_forward_length only.
    if (s.arch != "llama") w.set_uint32(a + "expert_feed_forward_length", s.n_ff_exp);
    if (s.n_ff_shexp > 0) w.set_uint32(a + "expert_shared_feed_forward_length", s.n_ff_shexp);
    w.set_bool(a + "expert_weights_norm", s.expert_weights_norm);
  }
}

// Threads that generate and quantize rows: every core (the GPU machine has 16; a Q4_K
// Qwen3-30B-A3B file is ~30 G values, minutes per core), at most 16 so memory stays bounded.
unsigned writer_threads() { return std::clamp(std::thread::hardware_concurrency(), 1u, 16u); }

// Values per chunk: about 256 Ki per thread, at least 1 Mi. Small memory (16 threads: 16 MiB of
// floats), large enough to amortise starting the threads.
uint64_t chunk_values(unsigned threads) { return std::max<uint64_t>(1u << 20, uint64_t(threads) << 18); }

// Runs work(first, count) over [0, n) split by rows into `threads` contiguous parts, one per
// thread. Results do not depend on the split (each row is produced and quantized on its own).
// An exception on any thread is rethrown here after all have joined.
void for_row_parts(uint64_t n, unsigned threads, const std::function<void(uint64_t, uint64_t)>& work) {
  const uint64_t parts = std::min<uint64_t>(threads, n);
  if (parts <= 1) {
    work(0, n);
    return;
  }
  std::vector<std::exception_ptr> errors(parts);
  std::vector<std::thread> pool;
  pool.reserve(parts - 1);
  auto run = [&](uint64_t p) {
    try {
      const uint64_t first = n * p / parts, last = n * (p + 1) / parts;
      work(first, last - first);
    } catch (...) {
      errors[p] = std::current_exception();
    }
  };
  for (uint64_t p = 1; p < parts; ++p) {
    try {
      pool.emplace_back(run, p);
    } catch (...) {  // no thread could be started: do that part here
      run(p);
    }
  }
  run(0);
  for (std::thread& t : pool) t.join();
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace

void write_model(const std::string& path, const ModelSpec& spec, const text::VocabData& vocab,
                 const quant::FileType& type,
                 quant::ScaleSearch search, const std::function<RowSource(const TensorDecl&)>& source,
                 const WriteCallbacks& callbacks, const TypeRules& rules) {
  spec.hparams();  // validates
  if (spec.arch == "llama" && spec.n_ff != spec.n_ff_exp && spec.n_expert > 0)
    fail(MOEVK_ERROR_INVALID_ARGUMENT, "llama MoE files store the expert width in feed_forward_length: n_ff must equal n_ff_exp");
  const std::vector<TensorDecl> layout = tensor_layout(spec);
  rules.check_used(layout);
  std::vector<quant::Type> types;
  uint64_t total_bytes = 0;
  for (const TensorDecl& d : layout) {
    std::string note;
    types.push_back(chosen_type(type, spec, rules, d, &note));
    if (!note.empty() && callbacks.log) callbacks.log(note);
    total_bytes += d.rows() * quant::row_bytes(types.back(), d.dims[0]);
  }

  gguf::Writer writer(path);
  write_metadata(writer, spec, type);
  text::write_vocab(writer, vocab);
  for (size_t i = 0; i < layout.size(); ++i) writer.add_tensor(layout[i].name, layout[i].dims, types[i]);
  writer.begin_data();

  uint64_t written = 0;
  std::vector<float> values;
  std::vector<uint8_t> bytes;
  const unsigned threads = writer_threads();
  for (size_t i = 0; i < layout.size(); ++i) {
    const TensorDecl& d = layout[i];
    const quant::Type t = types[i];
    const uint64_t ne0 = d.dims[0], rows = d.rows();
    const uint64_t row_size = quant::row_bytes(t, ne0);
    const RowSource rows_of = source(d);
    const uint64_t chunk_rows = std::max<uint64_t>(1, chunk_values(threads) / ne0);
    values.resize(std::min(rows, chunk_rows) * ne0);
    bytes.resize(std::min(rows, chunk_rows) * row_size);
    for (uint64_t r0 = 0; r0 < rows; r0 += chunk_rows) {
      const uint64_t n = std::min(chunk_rows, rows - r0);
      // Each thread produces the floats of its rows, then quantizes them, into its own part of
      // the buffers. Tiny chunks stay on this thread.
      auto work = [&](uint64_t first, uint64_t count) {
        if (count == 0) return;
        rows_of(r0 + first, count, values.data() + first * ne0);
        for (uint64_t r = first; r < first + count; ++r)
          quant::quantize(t, values.data() + r * ne0, bytes.data() + r * row_size, ne0, search);
      };
      for_row_parts(n, n * ne0 >= 4096 ? threads : 1, work);
      writer.write_data(bytes.data(), n * row_size);
      written += n * row_size;
      if (callbacks.progress &&
          callbacks.progress(total_bytes ? float(double(written) / double(total_bytes)) : 1.0f, d.name))
        fail(MOEVK_ERROR_CANCELLED, "cancelled while writing " + d.name);
    }
  }
  writer.finish();
}

}  // namespace moevk::convert
