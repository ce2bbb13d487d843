// Which cooperative-matrix kernels (mul_mm_coopmat, moe_mul_mm_coopmat) a device can run.
// Both are written against shaders/common/coopmat.glsl: NV cooperative matrices with the
// 16x16x16 f16 x f16 + f32 subgroup shape and subgroups of 32, or, for the tests, the same tiles
// emulated with plain arithmetic ("_emu_" variants, built for a few types only) on any device
// with fp16 arithmetic.
#pragma once
#include <string>

#include "quant/types.hpp"
#include "vk/context.hpp"

namespace moevk::ops {

// The NV kernels: MOEVK_ENABLE=coopmat turned them on (Context features) and the device has the
// shape and subgroup size they assume.
bool coopmat_usable(const vk::Context& ctx);
// The emulated variants exist for type t and the device has fp16 arithmetic.
bool coopmat_emulation_usable(const vk::Context& ctx, quant::Type t);
// The pipeline name of `kernel` ("mul_mm_coopmat", "moe_mul_mm_coopmat") for type t.
std::string coopmat_variant(const char* kernel, quant::Type t, bool emulated);

}  // namespace moevk::ops
