// Sampling on the GPU (shaders/util/sample_topk.comp): one row of logits (a vocabulary) gives
// its kMaxK best (value, index) pairs and, where asked, a token drawn from the first k of them,
// or from the whole row, with generate::Sampler's rule (temperature, top-p, min-p; the uniform
// draw comes from the host). Only 64 pairs and one id leave the GPU, instead of the row (608 KB at Qwen's 151936
// tokens) and a host pass over it; and a chained step can take the drawn token on the GPU.
#pragma once
#include <cstdint>

#include "vk/context.hpp"
#include "vk/recorder.hpp"

namespace moevk::ops {

// The draw's parameters, as the shader reads them (binding 1).
struct SampleParams {
  uint32_t k = 0;            // draw from the best k candidates (1..kMaxK); 0: candidates only
  float temperature = 0.0f;  // <= 0: the best candidate
  float top_p = 1.0f;        // >= 1: off
  float min_p = 0.0f;        // <= 0: off
  float u = 0.0f;            // a uniform draw in [0, 1)
  // Penalties over the tokens at positions (last_pos - window, last_pos] (the ring), as
  // generate::Sampler applies them; window 0: none. Any window: the shader reads
  // min(window, last_pos + 1, the ring's positions) of them.
  float repeat_penalty = 1.0f, presence = 0.0f, frequency = 0.0f;
  uint32_t window = 0;
  uint32_t last_pos = 0;  // the row's position; the draw's token goes to the ring at last_pos + 1
  // Nonzero: draw from the whole row, as generate::Sampler does: k its top-k (0 off; meant for
  // k > kMaxK, which the best kMaxK cannot hold). The best kMaxK decide it where the cuts fall
  // among them; otherwise the last workgroup selects the cuts and the draw over the row (a few
  // passes over its keys, no sort).
  uint32_t all = 0;
  uint32_t reserved = 0;
};
static_assert(sizeof(SampleParams) == 48);

class SampleTopK {
 public:
  static constexpr uint32_t kMaxK = 64;         // the shader's KMAX
  static constexpr uint32_t kSliceCols = 2048;  // columns per workgroup at most (its sort slots)
  static constexpr uint64_t kCounterBytes = 256;
  static constexpr uint64_t kCandidateBytes = uint64_t(kMaxK) * 8;  // (value bits, index) pairs
  // The ring of tokens by position: `positions` u32 words, position p at p % positions. A
  // window reads at most that many, each once; the draw's token goes to last_pos + 1 after every
  // read. Forward makes it hold a whole context and the next position, so it never wraps.
  static uint64_t ring_bytes(uint32_t positions) { return uint64_t(positions) * 4; }
  // The shader's shared memory: 18876 bytes of arrays (16 KiB of them its sort slots), rounded
  // up. Above Vulkan's guaranteed 16 KiB: a device with less samples on the host (fits()).
  static constexpr uint32_t kSharedBytes = 19 * 1024;
  static bool fits(const vk::Capabilities& caps) { return caps.max_shared_memory >= kSharedBytes; }

  explicit SampleTopK(vk::Context& ctx);
  // Workgroups for a row of n_cols.
  static uint32_t slices(uint32_t n_cols);
  // scratch: scratch_bytes(n_cols) or more, 16-byte aligned (the slices' lists, and for a
  // whole-row draw the row's keys and the slices' sums), its counter zeroed once
  // (clear_counters); every dispatch leaves it zero.
  static uint64_t scratch_bytes(uint32_t n_cols);
  static void clear_counters(vk::Context& ctx, const vk::BufferRange& scratch);
  // logits: f32 [n_cols]; params: SampleParams; candidates: kCandidateBytes; id: u32 (written
  // where params.k > 0); ring: ring_bytes(positions) (at least one position), the tokens by
  // position for the penalties, where the draw also stores its token (at last_pos + 1).
  void record(vk::Recorder& rec, const vk::BufferRange& logits, uint32_t n_cols, const vk::BufferRange& params,
              const vk::BufferRange& candidates, const vk::BufferRange& id, const vk::BufferRange& scratch,
              const vk::BufferRange& ring) const;

 private:
  vk::Context& ctx_;
};

}  // namespace moevk::ops
