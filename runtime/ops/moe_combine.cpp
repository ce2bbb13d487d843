// SharedExpertCombine (Qwen2-MoE's shared expert): out += (sigmoid(gate_logit) or 1) * shared,
// shaders/moe/shared_expert_combine.comp.
#include <string>

#include "common/error.hpp"
#include "ops/moe.hpp"

namespace moevk::ops {

namespace {
constexpr uint32_t kWorkgroup = 128;
struct SharedCombinePush {
  uint32_t n_embd, n_tokens, has_gate;
};
}  // namespace

SharedExpertCombine::SharedExpertCombine(vk::Context& ctx) : ctx_(ctx) {}

void SharedExpertCombine::record(vk::Recorder& rec, const vk::BufferRange& out, const vk::BufferRange& shared,
                                 const vk::BufferRange* gate_logit, uint32_t n_tokens, uint32_t n_embd) const {
  if (n_tokens == 0 || n_embd == 0) return;
  const uint64_t bytes = uint64_t(n_tokens) * n_embd * 4;
  require(out.size >= bytes && shared.size >= bytes, MOEVK_ERROR_INVALID_ARGUMENT,
          "shared expert combine: out or shared range smaller than n_tokens x n_embd");
  require(!gate_logit || gate_logit->size >= uint64_t(n_tokens) * 4, MOEVK_ERROR_INVALID_ARGUMENT,
          "shared expert combine: gate logit range smaller than n_tokens");
  require(n_tokens <= 65535, MOEVK_ERROR_UNSUPPORTED, "shared expert combine: batch too large");
  const vk::Pipeline& p = ctx_.pipeline({"shared_expert_combine", 3, sizeof(SharedCombinePush), {kWorkgroup}});
  const SharedCombinePush push{n_embd, n_tokens, gate_logit ? 1u : 0u};
  // Without a gate the shader never reads binding 2; `shared` fills the slot.
  rec.dispatch(p, {out, shared, gate_logit ? *gate_logit : shared}, push, (n_embd + kWorkgroup - 1) / kWorkgroup,
               n_tokens);
}

}  // namespace moevk::ops
