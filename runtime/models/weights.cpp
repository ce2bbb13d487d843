// Weight upload in two passes: first every tensor is found and checked (name, shape, type, size
// limits) and the total is compared with the device, so a bad or too-large file fails in
// milliseconds with a message naming the tensor; only then are buffers allocated and filled.
#include "models/weights.hpp"

#include <algorithm>
#include <cstring>
#include <sstream>
#include <system_error>
#include <thread>

#include "common/error.hpp"
#include "gguf/gguf.hpp"
#include "ops/matmul.hpp"
#include "ops/weight_binding.hpp"

namespace moevk::models {

namespace {

enum class Kind { Vector, Matrix, Experts };

// One device buffer to create: its GGUF source tensor(s) and where the ops' view of it goes.
struct Planned {
  std::string name;
  Kind kind = Kind::Matrix;
  std::vector<const gguf::TensorInfo*> parts;  // one, or one per expert (older Mixtral files)
  quant::Type type = quant::Type::F32;
  uint32_t cols = 0, rows = 0, n_expert = 1;
  uint64_t bytes = 0;  // on the device
  // Consecutive entries may share one device buffer, each at a 256-aligned offset: the products
  // of one input (q/k/v, gate/up) then fit one binding and one dispatch
  // (ops::MatMul::record_products). The first of them (offset 0) makes the buffer, of
  // buffer_bytes, named buffer_name; the others (offset > 0) go into it. Alone: 0, p.bytes, name.
  uint64_t offset = 0, buffer_bytes = 0;
  std::string buffer_name;
  vk::BufferRange* vector = nullptr;
  ops::Matrix* matrix = nullptr;
  ops::ExpertMatrices* experts = nullptr;
};

std::string dims_string(const std::vector<uint64_t>& dims) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < dims.size(); ++i) s << (i ? ", " : "") << dims[i];
  s << "]";
  return s.str();
}

// GGUF writers may or may not keep trailing dimensions of 1; compare without them.
std::vector<uint64_t> trimmed(std::vector<uint64_t> dims) {
  while (dims.size() > 1 && dims.back() == 1) dims.pop_back();
  return dims;
}

std::string blk(uint32_t layer, const std::string& rest) { return "blk." + std::to_string(layer) + "." + rest; }

double gib(uint64_t bytes) { return double(bytes) / double(1ull << 30); }

}  // namespace

struct WeightLoader {
  vk::Context& ctx;
  const gguf::File& file;
  const HParams& hp;
  std::vector<Planned> plan;

  const gguf::TensorInfo& require(const std::string& name) const {
    const gguf::TensorInfo* t = file.find_tensor(name);
    if (!t)
      fail(MOEVK_ERROR_MISSING_TENSOR,
           file.path() + ": tensor " + name + " is missing (architecture " + hp.arch + " needs it)");
    return *t;
  }

  void check_shape(const gguf::TensorInfo& t, const std::vector<uint64_t>& expected) const {
    if (trimmed(t.dims) != trimmed(expected))
      fail(MOEVK_ERROR_INVALID_FILE, file.path() + ": tensor " + t.name + " has shape " + dims_string(t.dims) +
                                         ", expected " + dims_string(expected));
  }

  void check_matrix_type(const gguf::TensorInfo& t) const {
    try {
      ops::MatMul::check_supported(t.type);
    } catch (const Error& e) {
      fail(MOEVK_ERROR_UNSUPPORTED, file.path() + ": tensor " + t.name + " has weight type " +
                                        quant::type_info(t.type).name + ", which no kernel reads (" + e.what() + ")");
    }
  }

  void vector(const std::string& name, uint64_t n, vk::BufferRange* out) {
    const gguf::TensorInfo& t = require(name);
    check_shape(t, {n});
    if (t.type != quant::Type::F32 && t.type != quant::Type::F16 && t.type != quant::Type::BF16)
      fail(MOEVK_ERROR_UNSUPPORTED, file.path() + ": tensor " + name + " (a norm or bias vector) has type " +
                                        quant::type_info(t.type).name + "; only f32, f16 and bf16 are read");
    Planned p{name, Kind::Vector, {&t}, t.type, uint32_t(n), 1, 1, n * 4};
    p.vector = out;
    plan.push_back(std::move(p));
  }

  void matrix(const std::string& name, uint64_t cols, uint64_t rows, ops::Matrix* out) {
    const gguf::TensorInfo& t = require(name);
    check_shape(t, {cols, rows});
    check_matrix_type(t);
    Planned p{name, Kind::Matrix, {&t}, t.type, uint32_t(cols), uint32_t(rows), 1, t.size};
    p.matrix = out;
    plan.push_back(std::move(p));
  }

  // blk.N.<base>_exps.weight (3-D), or the per-expert blk.N.<base>.E.weight of older files.
  void experts(uint32_t layer, const std::string& base, uint64_t cols, uint64_t rows, ops::ExpertMatrices* out) {
    const std::string merged = blk(layer, base + "_exps.weight");
    Planned p;
    p.kind = Kind::Experts;
    p.cols = uint32_t(cols);
    p.rows = uint32_t(rows);
    p.n_expert = hp.n_expert;
    p.experts = out;
    if (const gguf::TensorInfo* t = file.find_tensor(merged); t || !file.find_tensor(blk(layer, base + ".0.weight"))) {
      const gguf::TensorInfo& tt = require(merged);
      check_shape(tt, {cols, rows, hp.n_expert});
      check_matrix_type(tt);
      p.name = merged;
      p.parts = {&tt};
      p.type = tt.type;
      p.bytes = tt.size;
    } else {
      p.name = blk(layer, base + ".*.weight");
      for (uint32_t e = 0; e < hp.n_expert; ++e) {
        const gguf::TensorInfo& tt = require(blk(layer, base + "." + std::to_string(e) + ".weight"));
        check_shape(tt, {cols, rows});
        check_matrix_type(tt);
        if (e > 0 && tt.type != p.type)
          fail(MOEVK_ERROR_INVALID_FILE, file.path() + ": tensor " + tt.name + " has type " +
                                             quant::type_info(tt.type).name + " but expert 0 of the layer has " +
                                             quant::type_info(p.type).name);
        p.type = tt.type;
        p.parts.push_back(&tt);
        p.bytes += tt.size;
      }
    }
    plan.push_back(std::move(p));
  }

  void plan_all(Weights& w) {
    const uint64_t embd = hp.n_embd;
    matrix("token_embd.weight", embd, hp.n_vocab, &w.token_embd);
    vector("output_norm.weight", embd, &w.output_norm);
    if (!hp.tied_output) matrix("output.weight", embd, hp.n_vocab, &w.output);
    w.layers.resize(hp.n_layer);  // sized once: the plan keeps pointers into it
    for (uint32_t l = 0; l < hp.n_layer; ++l) {
      LayerWeights& L = w.layers[l];
      vector(blk(l, "attn_norm.weight"), embd, &L.attn_norm);
      const size_t qkv = plan.size();
      matrix(blk(l, "attn_q.weight"), embd, hp.n_embd_q(), &L.wq);
      matrix(blk(l, "attn_k.weight"), embd, hp.n_embd_k_gqa(), &L.wk);
      matrix(blk(l, "attn_v.weight"), embd, hp.n_embd_v_gqa(), &L.wv);
      if (hp.qkv_bias) {
        vector(blk(l, "attn_q.bias"), hp.n_embd_q(), &L.bq);
        vector(blk(l, "attn_k.bias"), hp.n_embd_k_gqa(), &L.bk);
        vector(blk(l, "attn_v.bias"), hp.n_embd_v_gqa(), &L.bv);
      }
      group_from(qkv);
      matrix(blk(l, "attn_output.weight"), uint64_t(hp.n_head) * hp.head_dim_v, embd, &L.wo);
      if (hp.qk_norm) {
        vector(blk(l, "attn_q_norm.weight"), hp.head_dim, &L.q_norm);
        vector(blk(l, "attn_k_norm.weight"), hp.head_dim, &L.k_norm);
      }
      vector(blk(l, "ffn_norm.weight"), embd, &L.ffn_norm);
      if (!hp.is_moe(l)) {
        const size_t gate_up = plan.size();
        matrix(blk(l, "ffn_gate.weight"), embd, hp.n_ff, &L.ffn_gate);
        matrix(blk(l, "ffn_up.weight"), embd, hp.n_ff, &L.ffn_up);
        group_from(gate_up);
        matrix(blk(l, "ffn_down.weight"), hp.n_ff, embd, &L.ffn_down);
        continue;
      }
      matrix(blk(l, "ffn_gate_inp.weight"), embd, hp.n_expert, &L.router);
      experts(l, "ffn_gate", embd, hp.n_ff_exp, &L.gate_exps);
      experts(l, "ffn_up", embd, hp.n_ff_exp, &L.up_exps);
      experts(l, "ffn_down", hp.n_ff_exp, embd, &L.down_exps);
      if (hp.has_shared_expert) {
        L.has_shared_expert = true;
        const size_t gate_up = plan.size();
        matrix(blk(l, "ffn_gate_shexp.weight"), embd, hp.n_ff_shexp, &L.gate_shexp);
        matrix(blk(l, "ffn_up_shexp.weight"), embd, hp.n_ff_shexp, &L.up_shexp);
        group_from(gate_up);
        matrix(blk(l, "ffn_down_shexp.weight"), hp.n_ff_shexp, embd, &L.down_shexp);
        // The sigmoid gate of the shared expert: a single row (stored [n_embd] or [n_embd, 1]).
        if (file.find_tensor(blk(l, "ffn_gate_inp_shexp.weight"))) {
          L.has_shared_gate = true;
          matrix(blk(l, "ffn_gate_inp_shexp.weight"), embd, 1, &L.gate_inp_shexp);
        }
      }
    }
  }

  static constexpr uint64_t kGroupAlign = 256;  // >= every device's minStorageBufferOffsetAlignment
  static uint64_t group_aligned(uint64_t v) { return (v + kGroupAlign - 1) / kGroupAlign * kGroupAlign; }

  // Entries plan[first..] become one group (one buffer), so MatMul can merge the products of
  // those that share a type, where the whole fits one allocation and one binding; otherwise
  // each keeps its own buffer.
  void group_from(size_t first) {
    if (plan.size() - first < 2) return;
    uint64_t bytes = 0;
    std::vector<uint64_t> offsets;
    for (size_t i = first; i < plan.size(); ++i) {
      if (plan[i].kind == Kind::Experts) return;
      offsets.push_back(i == first ? 0 : group_aligned(bytes));
      bytes = offsets.back() + plan[i].bytes;
    }
    const vk::Capabilities& caps = ctx.caps();
    if ((caps.max_memory_allocation_size && bytes > caps.max_memory_allocation_size) ||
        bytes + kGroupAlign > caps.max_storage_buffer_range)
      return;
    Planned& head = plan[first];
    head.buffer_bytes = bytes;
    head.buffer_name = head.name;
    for (size_t i = first; i < plan.size(); ++i) {
      plan[i].offset = offsets[i - first];
      if (i > first) head.buffer_name += ", " + plan[i].name;
    }
  }

  // The device's memory, then the limit of one allocation, before anything is made. A tensor
  // larger than one storage binding (maxStorageBufferRange) is fine: the ops bind it in parts
  // (matrices by rows, expert tensors by windows of experts).
  void check_device(uint64_t total) const {
    const vk::Capabilities& caps = ctx.caps();
    const uint64_t device = caps.device_local_bytes();
    if (device && total > device) {
      char msg[160];
      std::snprintf(msg, sizeof msg, "model needs %.2f GiB, device has %.2f GiB", gib(total), gib(device));
      fail(MOEVK_ERROR_OUT_OF_DEVICE_MEMORY, file.path() + ": " + msg);
    }
    for (const Planned& p : plan) {
      if (caps.max_memory_allocation_size && p.bytes > caps.max_memory_allocation_size)
        fail(MOEVK_ERROR_UNSUPPORTED, file.path() + ": tensor " + p.name + " is " + std::to_string(p.bytes) +
                                          " bytes, above the device's maxMemoryAllocationSize of " +
                                          std::to_string(caps.max_memory_allocation_size) + " bytes");
    }
  }

  // A matrix whose rows the kernels read in another order (ops::to_device_layout), rewritten
  // row by row straight into the staging memory as it goes up. A staging chunk's rows are
  // split over a few threads: one core rewrites ~5 GB/s, a 26 GB Mixtral-8x7B Q4_0 file's
  // worth of seconds, and the threads also read (page in) the file's bytes in parallel.
  void upload_device_layout(const vk::Buffer& buffer, uint64_t offset, const gguf::TensorInfo& t,
                            std::span<const uint8_t> data) {
    const uint32_t cols = uint32_t(t.dims[0]);
    const uint64_t row = quant::row_bytes(t.type, cols);
    if (row <= vk::Context::kUploadGranuleLimit) {
      const unsigned threads = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
      ctx.upload(buffer.range(offset, t.size), t.size, row, [&](uint8_t* out, uint64_t at, uint64_t n) {
        const uint64_t rows = n / row, per = (rows + threads - 1) / threads;
        if (threads == 1 || n < (1u << 20)) {
          ops::to_device_layout(t.type, cols, data.data() + at, out, rows, offset + at);
          return;
        }
        auto share = [&](uint64_t first) {
          ops::to_device_layout(t.type, cols, data.data() + at + first * row, out + first * row,
                                std::min(per, rows - first), offset + at + first * row);
        };
        std::vector<std::thread> workers;
        uint64_t first = per;  // this thread takes the first share
        try {
          for (; first < rows; first += per) workers.emplace_back(share, first);
        } catch (const std::system_error&) {
          // No more threads to be had: the shares from `first` on are done here.
        }
        share(0);
        for (; first < rows; first += per) share(first);
        for (std::thread& w : workers) w.join();
      });
      return;
    }
    std::vector<uint8_t> staged(row);  // rows longer than a staging chunk: one at a time
    for (uint64_t at = 0; at < t.size; at += row) {
      ops::to_device_layout(t.type, cols, data.data() + at, staged.data(), 1, offset + at);
      ctx.upload(buffer.range(offset + at, row), staged.data(), row);
    }
  }

  // Uploads p: into a new buffer, or at its offset into the one its group's first entry made.
  void upload(Weights& w, const Planned& p) {
    const uint64_t at = p.offset;
    if (at == 0)
      w.buffers_.push_back(ctx.create_buffer(p.buffer_bytes ? p.buffer_bytes : p.bytes, vk::BufferKind::Device,
                                             "weights of " + (p.buffer_name.empty() ? p.name : p.buffer_name)));
    const vk::Buffer& buffer = w.buffers_.back();
    if (p.kind == Kind::Vector) {
      const gguf::TensorInfo& t = *p.parts[0];
      std::span<const uint8_t> data = file.tensor_data(t);
      if (t.type == quant::Type::F32) {
        ctx.upload(buffer.range(at, p.bytes), data.data(), p.bytes);
      } else {
        // Norms and biases are tiny: widen them on the host so every kernel reads plain f32.
        std::vector<float> wide(p.cols);
        quant::dequantize(t.type, data.data(), wide.data(), p.cols);
        ctx.upload(buffer.range(at, p.bytes), wide.data(), p.bytes);
      }
      *p.vector = buffer.range(at, p.bytes);
    } else {
      uint64_t offset = at;
      for (const gguf::TensorInfo* t : p.parts) {
        std::span<const uint8_t> data = file.tensor_data(*t);
        if (ops::weight_layout_differs(t->type))
          upload_device_layout(buffer, offset, *t, data);
        else
          ctx.upload(buffer.range(offset, t->size), data.data(), t->size);
        offset += t->size;
      }
      if (p.kind == Kind::Matrix) {
        *p.matrix = ops::Matrix{buffer.range(at, p.bytes), p.type, p.cols, p.rows};
      } else {
        *p.experts = ops::ExpertMatrices{buffer.range(at, p.bytes), p.type, p.cols, p.rows, p.n_expert,
                                         p.bytes / p.n_expert};
      }
    }
  }
};

std::unique_ptr<Weights> Weights::load(vk::Context& ctx, const gguf::File& file, const HParams& hp,
                                       const Progress& progress) {
  if (hp.head_dim_v != hp.head_dim)
    fail(MOEVK_ERROR_UNSUPPORTED, file.path() + ": attention.value_length (" + std::to_string(hp.head_dim_v) +
                                      ") differs from key_length (" + std::to_string(hp.head_dim) +
                                      "); the attention kernel needs them equal");
  std::unique_ptr<Weights> w(new Weights());
  WeightLoader loader{ctx, file, hp, {}};
  loader.plan_all(*w);
  uint64_t total = 0;
  for (const Planned& p : loader.plan) total += p.bytes;
  loader.check_device(total);

  uint64_t done = 0;
  for (const Planned& p : loader.plan) {
    if (progress && !progress(total ? float(double(done) / double(total)) : 0.0f, p.name.c_str()))
      fail(MOEVK_ERROR_CANCELLED, "model load cancelled before " + p.name);
    loader.upload(*w, p);
    done += p.bytes;
  }
  if (hp.tied_output) w->output = w->token_embd;
  w->bytes_ = total;
  if (progress && !progress(1.0f, "weights uploaded")) fail(MOEVK_ERROR_CANCELLED, "model load cancelled");
  return w;
}

}  // namespace moevk::models
