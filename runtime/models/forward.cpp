#include "models/forward.hpp"

#include <algorithm>
#include <cstring>

#include "common/error.hpp"

namespace moevk::models {

namespace {
constexpr uint64_t kStepBytes = sizeof(ops::StepParams);
}

Forward::Forward(const Model& model, uint32_t n_batch, uint32_t n_ctx, bool expert_stats,
                 const DecodeKernelShapes& decode_kernels)
    : ctx_(model.context()),
      hp_(model.hparams()),
      w_(model.weights()),
      n_batch_(n_batch),
      layers_(model.context(), model.hparams(), model.weights(), n_batch, n_ctx, expert_stats, decode_kernels),
      recipe_(layer_recipe(model.hparams().arch)),
      embedding_(model.context()),
      argmax_(model.context()),
      sample_(model.context()) {
  const uint64_t vocab = hp_.n_vocab, embd = hp_.n_embd;
  inputs_host_ = ctx_.create_buffer(kStepBytes + uint64_t(n_batch) * 4, vk::BufferKind::Upload, "step inputs");
  token_ids_ = ctx_.create_buffer(uint64_t(n_batch) * 4, vk::BufferKind::Device, "token ids");
  last_hidden_ = ctx_.create_buffer(embd * 4, vk::BufferKind::Device, "last hidden state");
  last_normed_ = ctx_.create_buffer(embd * 4, vk::BufferKind::Device, "last normed hidden state");
  // One row: what a step that wants the last token's logits (or the argmax) writes. The logits
  // of every token of a batch (n_batch rows: 311 MB at Qwen3's 151936-token vocabulary and 512
  // tokens) are allocated by the first step that wants them (ensure_all_logits).
  logits_ = ctx_.create_buffer(vocab * 4, vk::BufferKind::Device, "logits (last token)");
  argmax_id_ = ctx_.create_buffer(4, vk::BufferKind::Device, "greedy token");
  // The argmax over the vocabulary runs in slices of workgroups (ops::Argmax); its counters are
  // zeroed once here and left zero by every step.
  argmax_scratch_ = ctx_.create_buffer(ops::Argmax::scratch_bytes(1, hp_.n_vocab), vk::BufferKind::Device,
                                       "greedy token scratch");
  ops::Argmax::clear_counters(ctx_, argmax_scratch_.range());
  logits_host_ = ctx_.create_buffer(vocab * 4, vk::BufferKind::Readback, "logits readback (last token)");
  argmax_host_ = ctx_.create_buffer(4, vk::BufferKind::Readback, "greedy token readback");
  for (int slot = 0; slot < 2; ++slot) {
    chained_inputs_[slot] = ctx_.create_buffer(kStepBytes, vk::BufferKind::Upload, "chained step inputs");
    chained_token_host_[slot] = ctx_.create_buffer(4, vk::BufferKind::Readback, "chained token readback");
    chained_sample_host_[slot] =
        ctx_.create_buffer(sizeof(ops::SampleParams), vk::BufferKind::Upload, "chained sampling parameters");
  }
  // GPU sampling: 64 candidates and the draw (ops::SampleTopK); its counter zeroed once here.
  sample_params_ = ctx_.create_buffer(sizeof(ops::SampleParams), vk::BufferKind::Device, "sampling parameters");
  sample_host_ = ctx_.create_buffer(sizeof(ops::SampleParams), vk::BufferKind::Upload, "sampling parameters upload");
  candidates_ = ctx_.create_buffer(ops::SampleTopK::kCandidateBytes, vk::BufferKind::Device, "sampling candidates");
  candidates_host_ =
      ctx_.create_buffer(ops::SampleTopK::kCandidateBytes, vk::BufferKind::Readback, "sampling candidates readback");
  sample_scratch_ =
      ctx_.create_buffer(ops::SampleTopK::scratch_bytes(hp_.n_vocab), vk::BufferKind::Device, "sampling scratch");
  ops::SampleTopK::clear_counters(ctx_, sample_scratch_.range());
  // The penalties' tokens by position: the whole context, so any window fits.
  const uint64_t ring_bytes = ops::SampleTopK::ring_bytes(n_ctx + 1);
  sample_ring_ = ctx_.create_buffer(ring_bytes, vk::BufferKind::Device, "sampling token ring");
  sample_ring_host_ = ctx_.create_buffer(ring_bytes, vk::BufferKind::Upload, "sampling token ring upload");
  std::memset(sample_ring_host_.mapped(), 0, ring_bytes);
  reset_expert_counts();
}

Forward::~Forward() = default;

uint32_t Forward::timestamps_per_step() const { return hp_.n_layer * LayerBuilder::kMarksPerLayer + 2; }

void Forward::record(vk::Recorder& rec, uint32_t n, StepOutput output, int chained_slot) {
  if (n == 0 || n > n_batch_) fail(MOEVK_ERROR_INTERNAL, "forward step of " + std::to_string(n) + " tokens");
  const bool chained = chained_slot >= 0;
  if (chained && (chained_slot > 1 || n != 1 || (output != StepOutput::Argmax && output != StepOutput::Sample)))
    fail(MOEVK_ERROR_INTERNAL, "a chained step is one token with a greedy or sampled output, in slot 0 or 1");
  const uint64_t embd = hp_.n_embd, vocab = hp_.n_vocab;
  rec.begin();
  const Activations& act = layers_.buffers();
  if (chained) {
    // Submitted while the step before it may still run: this first barrier orders everything
    // here after everything submitted earlier (its argmax, its reads of the step buffers).
    rec.barrier();
    layers_.mark(rec, Stage::Other);
    rec.copy(chained_inputs_[chained_slot].range(), act.step.range(), kStepBytes);
    rec.copy(argmax_id_.range(), token_ids_.range(), 4);
  } else {
    layers_.mark(rec, Stage::Other);  // slot 0: the step's origin (no interval ends here)
    rec.copy(inputs_host_.range(0, kStepBytes), act.step.range(), kStepBytes);
    rec.copy(inputs_host_.range(kStepBytes, uint64_t(n) * 4), token_ids_.range(), uint64_t(n) * 4);
  }
  if (output == StepOutput::Sample) {
    rec.copy((chained ? chained_sample_host_[chained_slot] : sample_host_).range(), sample_params_.range(),
             sizeof(ops::SampleParams));
    if (!chained) rec.copy(sample_ring_host_.range(), sample_ring_.range(), sample_ring_.size());
  }
  rec.barrier();
  embedding_.record(rec, w_.token_embd, token_ids_.range(), layers_.residual(), n);
  rec.barrier();
  for (uint32_t l = 0; l < hp_.n_layer; ++l) recipe_(layers_, rec, l, n);

  const vk::BufferRange hidden = layers_.residual();
  switch (output) {
    case StepOutput::None:
      break;
    case StepOutput::All:
      ensure_all_logits();
      output_head(rec, hidden, act.normed.range(), n, logits_all_.range());
      rec.copy(logits_all_.range(), logits_all_host_.range(), uint64_t(n) * vocab * 4);
      break;
    case StepOutput::Last:
    case StepOutput::Argmax:
    case StepOutput::Sample: {
      // Only the last token's logits are wanted: copy its row out (a transfer has no offset
      // alignment rule, a storage binding has) and run the output head on one row.
      const vk::BufferRange last_row{hidden.buffer, hidden.offset + uint64_t(n - 1) * embd * 4, embd * 4};
      rec.copy(last_row, last_hidden_.range(), embd * 4);
      rec.barrier();
      output_head(rec, last_hidden_.range(), last_normed_.range(), 1, logits_.range());
      if (output == StepOutput::Last) {
        rec.copy(logits_.range(), logits_host_.range(), vocab * 4);
      } else if (output == StepOutput::Sample) {
        sample_.record(rec, logits_.range(), hp_.n_vocab, sample_params_.range(), candidates_.range(),
                       argmax_id_.range(), sample_scratch_.range(), sample_ring_.range());
        rec.barrier();
        rec.copy(argmax_id_.range(), chained ? chained_token_host_[chained_slot].range() : argmax_host_.range(), 4);
        if (!chained) rec.copy(candidates_.range(), candidates_host_.range(), ops::SampleTopK::kCandidateBytes);
      } else {
        const vk::BufferRange scratch = argmax_scratch_.range();
        argmax_.record(rec, logits_.range(), argmax_id_.range(), 1, hp_.n_vocab, &scratch);
        rec.barrier();
        rec.copy(argmax_id_.range(), chained ? chained_token_host_[chained_slot].range() : argmax_host_.range(), 4);
      }
      break;
    }
  }
  rec.host_barrier();
  layers_.mark(rec, Stage::Other);
  rec.end();
}

void Forward::output_head(vk::Recorder& rec, const vk::BufferRange& hidden, const vk::BufferRange& normed,
                          uint32_t n, const vk::BufferRange& logits) {
  // The final norm goes into the output product where it can take it (one row, or few).
  if (layers_.fuse_norms() && layers_.matmul().fuses_norm(w_.output, n)) {
    const ops::InputNorm norm{w_.output_norm, hp_.norm_eps};
    layers_.matmul().record(rec, w_.output, hidden, logits, n, nullptr, false, &norm);
  } else {
    layers_.rms_norm().record(rec, hidden, w_.output_norm, normed, n, hp_.n_embd, hp_.norm_eps);
    rec.barrier();
    layers_.matmul().record(rec, w_.output, normed, logits, n);
  }
  rec.barrier();
}

void Forward::ensure_all_logits() {
  // Allocated once at full size and never replaced: recordings made with it stay valid.
  if (logits_all_.valid()) return;
  const uint64_t bytes = uint64_t(n_batch_) * hp_.n_vocab * 4;
  logits_all_ = ctx_.create_buffer(bytes, vk::BufferKind::Device, "logits (every token)");
  logits_all_host_ = ctx_.create_buffer(bytes, vk::BufferKind::Readback, "logits readback (every token)");
}

void Forward::set_inputs(uint32_t n_past, std::span<const int32_t> ids) {
  if (ids.size() > n_batch_) fail(MOEVK_ERROR_INTERNAL, "more ids than n_batch");
  ops::StepParams step;
  step.n_past = n_past;
  step.n_tokens = uint32_t(ids.size());
  auto* base = static_cast<uint8_t*>(inputs_host_.mapped());
  std::memcpy(base, &step, kStepBytes);
  std::memcpy(base + kStepBytes, ids.data(), ids.size() * 4);
}

uint64_t Forward::device_bytes() const {
  return layers_.buffers().device_bytes() + token_ids_.size() + last_hidden_.size() + last_normed_.size() +
         logits_.size() + argmax_id_.size() + argmax_scratch_.size() + sample_params_.size() + candidates_.size() +
         sample_scratch_.size() + sample_ring_.size() + (logits_all_.valid() ? logits_all_.size() : 0);
}

const float* Forward::logits(StepOutput output) const {
  const vk::Buffer& host = output == StepOutput::All ? logits_all_host_ : logits_host_;
  if (!host.valid()) fail(MOEVK_ERROR_INTERNAL, "no logits of every token were recorded");
  return static_cast<const float*>(host.mapped());
}

int32_t Forward::token() const {
  uint32_t id = 0;
  std::memcpy(&id, argmax_host_.mapped(), 4);
  return int32_t(id);
}

void Forward::set_chained_inputs(int slot, uint32_t n_past) {
  ops::StepParams step;
  step.n_past = n_past;
  step.n_tokens = 1;
  std::memcpy(chained_inputs_[slot].mapped(), &step, kStepBytes);
}

std::vector<std::pair<float, int32_t>> Forward::candidates() const {
  std::vector<uint32_t> words(2 * ops::SampleTopK::kMaxK);
  std::memcpy(words.data(), candidates_host_.mapped(), words.size() * 4);
  std::vector<std::pair<float, int32_t>> out(ops::SampleTopK::kMaxK);
  for (uint32_t i = 0; i < ops::SampleTopK::kMaxK; ++i) {
    std::memcpy(&out[i].first, &words[2 * i], 4);
    out[i].second = words[2 * i + 1] == 0xFFFFFFFFu ? -1 : int32_t(words[2 * i + 1]);
  }
  return out;
}

void Forward::set_sampling(int slot, const ops::SampleParams& params) {
  if (slot > 1) fail(MOEVK_ERROR_INTERNAL, "sampling parameters for chained slot " + std::to_string(slot));
  std::memcpy((slot < 0 ? sample_host_ : chained_sample_host_[slot]).mapped(), &params, sizeof params);
}

void Forward::set_sample_ring(uint32_t first, std::span<const int32_t> tokens) {
  if ((uint64_t(first) + tokens.size()) * 4 > sample_ring_host_.size())
    fail(MOEVK_ERROR_INTERNAL, "sampling ring positions past the context");
  std::memcpy(static_cast<uint8_t*>(sample_ring_host_.mapped()) + uint64_t(first) * 4, tokens.data(), tokens.size() * 4);
}

int32_t Forward::chained_token(int slot) const {
  uint32_t id = 0;
  std::memcpy(&id, chained_token_host_[slot].mapped(), 4);
  return int32_t(id);
}

std::vector<std::vector<uint64_t>> Forward::expert_counts() const {
  std::vector<std::vector<uint64_t>> out(hp_.n_layer);
  const Activations& act = layers_.buffers();
  if (!act.expert_counts.valid()) {
    for (uint32_t l = 0; l < hp_.n_layer; ++l) out[l].assign(hp_.is_moe(l) ? hp_.n_expert : 0, 0);
    return out;
  }
  std::vector<uint32_t> counts(uint64_t(hp_.n_layer) * hp_.n_expert);
  ctx_.download(act.expert_counts.range(), counts.data(), counts.size() * 4);
  for (uint32_t l = 0; l < hp_.n_layer; ++l) {
    if (!hp_.is_moe(l)) continue;
    out[l].assign(counts.begin() + uint64_t(l) * hp_.n_expert, counts.begin() + uint64_t(l + 1) * hp_.n_expert);
  }
  return out;
}

void Forward::reset_expert_counts() {
  const Activations& act = layers_.buffers();
  if (!act.expert_counts.valid()) return;
  std::vector<uint32_t> zeros(act.expert_counts.size() / 4, 0);
  ctx_.upload(act.expert_counts.range(), zeros.data(), zeros.size() * 4);
}

}  // namespace moevk::models
