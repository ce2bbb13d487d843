// A plain CPU forward pass (double accumulation) over a GGUF file, for the end-to-end tests:
// with it a mismatch against Hugging Face can be placed in the converter (CPU reference != HF)
// or in the GPU runtime (GPU != CPU reference). Written from the architectures' definitions
// (Hugging Face modeling code, llama.cpp's GGUF conventions), sharing nothing with the runtime
// except the GGUF reader, hyperparameters and quant::dequantize.
#pragma once
#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "gguf/gguf.hpp"
#include "models/hparams.hpp"
#include "quant/half.hpp"

namespace moevk::test {

class CpuReference {
 public:
  // round_kv_f16: K (after RoPE) and V rounded to fp16 as the runtime's KV cache stores them,
  // so that the GPU can be compared without the cache's rounding in the difference.
  explicit CpuReference(const std::string& path, bool round_kv_f16 = false)
      : file_(gguf::File::open(path)), hp_(model::read_hparams(*file_)), round_kv_f16_(round_kv_f16) {}

  const model::HParams& hparams() const { return hp_; }

  // Multiplies every K and V element by (1 + relative * N(0,1)) before the fp16 rounding: the
  // GPU computes K/V in f32 in another order, and where an element lies near the midpoint of two
  // fp16 values that difference flips its rounding. Re-running the reference with a perturbation
  // of f32-rounding size measures how much such flips move a model's logits.
  void perturb_kv(double relative, uint32_t seed) {
    kv_noise_ = relative;
    kv_noise_rng_.seed(seed);
  }

  // Logits of every position of `tokens` (positions 0..n-1), [n][n_vocab].
  std::vector<double> forward(const std::vector<int32_t>& tokens) {
    const size_t n = tokens.size(), E = hp_.n_embd;
    const std::vector<float>& embd = tensor("token_embd.weight");
    std::vector<double> x(n * E);
    for (size_t t = 0; t < n; ++t)
      for (size_t i = 0; i < E; ++i) x[t * E + i] = embd[size_t(tokens[t]) * E + i];
    for (uint32_t l = 0; l < hp_.n_layer; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      add(x, attention(p, norm(x, tensor(p + "attn_norm.weight"), E), n));
      const std::vector<double> h = norm(x, tensor(p + "ffn_norm.weight"), E);
      add(x, hp_.is_moe(l) ? moe(p, h, n) : swiglu_ffn(p + "ffn_gate.weight", p + "ffn_up.weight",
                                                       p + "ffn_down.weight", h, n, hp_.n_ff, 0));
    }
    const std::vector<double> h = norm(x, tensor("output_norm.weight"), E);
    return matmul(tensor(hp_.tied_output ? "token_embd.weight" : "output.weight"), hp_.n_vocab, E, h, n);
  }

 private:
  const std::vector<float>& tensor(const std::string& name) {
    auto it = cache_.find(name);
    if (it != cache_.end()) return it->second;
    const gguf::TensorInfo* t = file_->find_tensor(name);
    if (!t) throw std::runtime_error("reference: missing " + name);
    std::vector<float> v(t->elements());
    quant::dequantize(t->type, file_->tensor_data(*t).data(), v.data(), v.size());
    return cache_.emplace(name, std::move(v)).first->second;
  }
  bool has(const std::string& name) const { return file_->find_tensor(name) != nullptr; }

  // y[t][r] = sum_c W[offset + r][c] x[t][c], W rows of `cols`.
  static std::vector<double> matmul(const std::vector<float>& w, size_t rows, size_t cols, const std::vector<double>& x,
                                    size_t n, size_t row_offset = 0) {
    std::vector<double> y(n * rows);
    for (size_t t = 0; t < n; ++t)
      for (size_t r = 0; r < rows; ++r) {
        double s = 0;
        const float* wr = &w[(row_offset + r) * cols];
        for (size_t c = 0; c < cols; ++c) s += double(wr[c]) * x[t * cols + c];
        y[t * rows + r] = s;
      }
    return y;
  }
  std::vector<double> norm(const std::vector<double>& x, const std::vector<float>& w, size_t dim) const {
    std::vector<double> y(x.size());
    for (size_t r = 0; r < x.size() / dim; ++r) {
      double ss = 0;
      for (size_t i = 0; i < dim; ++i) ss += x[r * dim + i] * x[r * dim + i];
      const double inv = 1.0 / std::sqrt(ss / double(dim) + double(hp_.norm_eps));
      for (size_t i = 0; i < dim; ++i) y[r * dim + i] = x[r * dim + i] * inv * w[i];
    }
    return y;
  }
  static void add(std::vector<double>& x, const std::vector<double>& y) {
    for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
  }
  void add_bias(std::vector<double>& y, const std::string& name, size_t rows) {
    if (!has(name)) return;
    const std::vector<float>& b = tensor(name);
    for (size_t i = 0; i < y.size(); ++i) y[i] += b[i % rows];
  }
  void rope(std::vector<double>& v, size_t n, size_t heads) const {
    const size_t D = hp_.head_dim, R = hp_.n_rot;
    for (size_t t = 0; t < n; ++t)
      for (size_t h = 0; h < heads; ++h) {
        double* x = &v[(t * heads + h) * D];
        for (size_t i = 0; i < R / 2; ++i) {
          const double theta = double(t) * std::pow(double(hp_.rope_freq_base), -2.0 * double(i) / double(R));
          const size_t a = hp_.rope_type == model::RopeType::NORM ? 2 * i : i;
          const size_t b = hp_.rope_type == model::RopeType::NORM ? 2 * i + 1 : i + R / 2;
          const double x0 = x[a], x1 = x[b];
          x[a] = x0 * std::cos(theta) - x1 * std::sin(theta);
          x[b] = x0 * std::sin(theta) + x1 * std::cos(theta);
        }
      }
  }
  std::vector<double> attention(const std::string& p, const std::vector<double>& h, size_t n) {
    const size_t E = hp_.n_embd, D = hp_.head_dim, H = hp_.n_head, KV = hp_.n_head_kv;
    std::vector<double> q = matmul(tensor(p + "attn_q.weight"), H * D, E, h, n);
    std::vector<double> k = matmul(tensor(p + "attn_k.weight"), KV * D, E, h, n);
    std::vector<double> v = matmul(tensor(p + "attn_v.weight"), KV * D, E, h, n);
    add_bias(q, p + "attn_q.bias", H * D);
    add_bias(k, p + "attn_k.bias", KV * D);
    add_bias(v, p + "attn_v.bias", KV * D);
    if (has(p + "attn_q_norm.weight")) {
      q = norm(q, tensor(p + "attn_q_norm.weight"), D);
      k = norm(k, tensor(p + "attn_k_norm.weight"), D);
    }
    rope(q, n, H);
    rope(k, n, KV);
    if (round_kv_f16_) {
      std::normal_distribution<double> normal(0.0, 1.0);
      auto to_f16 = [&](double e) {
        if (kv_noise_ > 0) e *= 1.0 + kv_noise_ * normal(kv_noise_rng_);
        return double(quant::fp16_to_fp32(quant::fp32_to_fp16(float(e))));
      };
      for (double& e : k) e = to_f16(e);
      for (double& e : v) e = to_f16(e);
    }
    std::vector<double> out(n * H * D, 0.0);
    for (size_t t = 0; t < n; ++t)
      for (size_t hd = 0; hd < H; ++hd) {
        const size_t g = hd / (H / KV);
        std::vector<double> s(t + 1);
        for (size_t j = 0; j <= t; ++j) {
          double dot = 0;
          for (size_t i = 0; i < D; ++i) dot += q[(t * H + hd) * D + i] * k[(j * KV + g) * D + i];
          s[j] = dot / std::sqrt(double(D));
        }
        const double m = *std::max_element(s.begin(), s.end());
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - m));
        for (size_t j = 0; j <= t; ++j)
          for (size_t i = 0; i < D; ++i) out[(t * H + hd) * D + i] += s[j] / sum * v[(j * KV + g) * D + i];
      }
    return matmul(tensor(p + "attn_output.weight"), E, H * D, out, n);
  }
  // down(silu(gate h) * up h); `expert` selects rows of stacked 3-D tensors.
  std::vector<double> swiglu_ffn(const std::string& gate, const std::string& up, const std::string& down,
                                 const std::vector<double>& h, size_t n, size_t ff, size_t expert) {
    const size_t E = hp_.n_embd;
    const std::vector<double> g = matmul(tensor(gate), ff, E, h, n, expert * ff);
    const std::vector<double> u = matmul(tensor(up), ff, E, h, n, expert * ff);
    std::vector<double> a(n * ff);
    for (size_t i = 0; i < a.size(); ++i) a[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
    return matmul(tensor(down), E, ff, a, n, expert * E);
  }
  std::vector<double> moe(const std::string& p, const std::vector<double>& h, size_t n) {
    const size_t E = hp_.n_embd, X = hp_.n_expert, K = hp_.n_expert_used;
    const std::vector<double> logits = matmul(tensor(p + "ffn_gate_inp.weight"), X, E, h, n);
    std::vector<double> out(n * E, 0.0);
    for (size_t t = 0; t < n; ++t) {
      std::vector<double> prob(X);
      const double m = *std::max_element(&logits[t * X], &logits[t * X] + X);
      double sum = 0;
      for (size_t e = 0; e < X; ++e) sum += (prob[e] = std::exp(logits[t * X + e] - m));
      for (double& pr : prob) pr /= sum;
      std::vector<size_t> order(X);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return prob[a] > prob[b]; });
      double chosen = 0;
      for (size_t j = 0; j < K; ++j) chosen += prob[order[j]];
      const std::vector<double> ht(h.begin() + t * E, h.begin() + (t + 1) * E);
      for (size_t j = 0; j < K; ++j) {
        const double w = hp_.expert_weights_norm ? prob[order[j]] / chosen : prob[order[j]];
        const std::vector<double> y = swiglu_ffn(p + "ffn_gate_exps.weight", p + "ffn_up_exps.weight",
                                                 p + "ffn_down_exps.weight", ht, 1, hp_.n_ff_exp, order[j]);
        for (size_t i = 0; i < E; ++i) out[t * E + i] += w * y[i];
      }
      if (has(p + "ffn_up_shexp.weight")) {
        const std::vector<double> y = swiglu_ffn(p + "ffn_gate_shexp.weight", p + "ffn_up_shexp.weight",
                                                 p + "ffn_down_shexp.weight", ht, 1, hp_.n_ff_shexp, 0);
        double gate = 1.0;
        if (has(p + "ffn_gate_inp_shexp.weight"))
          gate = 1.0 / (1.0 + std::exp(-matmul(tensor(p + "ffn_gate_inp_shexp.weight"), 1, E, ht, 1)[0]));
        for (size_t i = 0; i < E; ++i) out[t * E + i] += gate * y[i];
      }
    }
    return out;
  }

  std::unique_ptr<gguf::File> file_;
  model::HParams hp_;
  bool round_kv_f16_ = false;
  double kv_noise_ = 0;
  std::mt19937 kv_noise_rng_;
  std::map<std::string, std::vector<float>> cache_;
};

}  // namespace moevk::test
