// The stages a forward step is split into when it is profiled (GPU timestamps at each stage
// boundary; a timestamp's tag names the stage of the interval that ends at it).
#pragma once
#include <cstdint>

namespace moevk::models {

enum class Stage : uint32_t {
  Attention,  // attn norm, q/k/v products, q/k norms, RoPE, attention, output projection
  Router,     // ffn norm, router logits, gating and top-k
  Experts,    // routed experts, shared expert and its combine; the FFN of a dense layer
  Other,      // embedding, residual adds, output norm and head, argmax, copies
};
constexpr uint32_t kStageCount = 4;

inline const char* stage_name(Stage s) {
  switch (s) {
    case Stage::Attention: return "attention";
    case Stage::Router: return "router";
    case Stage::Experts: return "experts";
    case Stage::Other: return "other";
  }
  return "?";
}

}  // namespace moevk::models
