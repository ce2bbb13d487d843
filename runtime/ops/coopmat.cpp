#include "ops/coopmat.hpp"

#include "ops/weight_binding.hpp"

namespace moevk::ops {

bool coopmat_usable(const vk::Context& ctx) {
  if (!ctx.features().coopmat_nv || ctx.caps().subgroup_size != 32) return false;
  for (const auto& t : ctx.caps().coopmat_nv_types)
    if (t.m == 16 && t.n == 16 && t.k == 16 && t.a_type == "f16" && t.b_type == "f16" && t.c_type == "f32" &&
        t.result_type == "f32" && t.scope == "subgroup")
      return true;
  return false;
}

bool coopmat_emulation_usable(const vk::Context& ctx, quant::Type t) {
  // shaders/shaders.cmake's *_coopmat_emu_* lines.
  using quant::Type;
  const bool built = t == Type::F16 || t == Type::Q8_0 || t == Type::Q4_0 || t == Type::Q4_K || t == Type::Q6_K ||
                     t == Type::Q2_K || t == Type::Q3_K;
  return built && ctx.features().fp16;
}

std::string coopmat_variant(const char* kernel, quant::Type t, bool emulated) {
  return std::string(kernel) + (emulated ? "_emu_" : "_") + weight_variant(t);
}

}  // namespace moevk::ops
