// The workgroup shapes of the one-token products a model's decode step records: the MoE experts'
// (moe_gate_up_mv, moe_down_mv) and the dense mul_mv's (q/k/v, output projection, head). The ops'
// defaults are untuned guesses; `moevk bench ops --decode-configs` times others per kernel, and
// MOEVK_DECODE_CONFIG (read per context, like MOEVK_DISABLE) or `moevk bench --decode-configs`
// runs a whole model on one, so a device's best shape is measured end to end without a rebuild.
#pragma once
#include <cstdint>
#include <string>

#include "ops/matmul.hpp"
#include "ops/moe.hpp"

namespace moevk::models {

struct DecodeKernelShapes {
  // 0: the op's default. Workgroup a power of two in 32..1024 within the device's limit, rows 1..8
  // (checked when the step is recorded: ops::require_decode_shape).
  uint32_t experts_workgroup = 0, experts_rows = 0;
  uint32_t down_workgroup = 0, down_rows = 0;  // the experts' down product alone (0: the experts')
  uint32_t mv_workgroup = 0, mv_rows = 0;

  // "experts=128x2,down=32x4,mv=256x4" (any part may be left out; "" is no change). Throws
  // INVALID_ARGUMENT naming `what` (the variable or option it came from) on anything else.
  static DecodeKernelShapes parse(const std::string& text, const std::string& what);
  // The non-zero fields of `over` replace these.
  DecodeKernelShapes overridden_by(const DecodeKernelShapes& over) const;

  ops::MatMulOptions matmul_options() const;
  ops::MoeExpertsOptions experts_options() const;
  // "experts=64x2,mv=128x4": the shapes the ops run with these (the defaults where 0), with
  // ",down=WxR" after experts where the down product has its own.
  std::string effective() const;
};

}  // namespace moevk::models
