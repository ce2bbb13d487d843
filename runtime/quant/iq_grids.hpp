// The IQ1/IQ2/IQ3 codebooks as C++ tables (the values: iq_grids.inc, generated from ggml by
// scripts/gen-iq-grids.sh), and the sign rule those formats share.
#pragma once
#include <bit>
#include <cstdint>

namespace moevk::quant {

#define IQ_TABLE2(name, n) inline constexpr uint64_t name[n] =
#define IQ_TABLE1(name, n) inline constexpr uint32_t name[n] =
#define IQ_OPEN2(n) {
#define IQ_OPEN1(n) {
#define IQ_CLOSE }
#define IQ_E2(lo, hi) (uint64_t(hi) << 32 | uint64_t(lo))
#define IQ_E1(w) (w)
#define IQ_GRID_IQ2XXS
#define IQ_GRID_IQ2XS
#define IQ_GRID_IQ2S
#define IQ_GRID_IQ3XXS
#define IQ_GRID_IQ3S
#define IQ_GRID_IQ1S
#include "quant/iq_grids.inc"
#undef IQ_TABLE2
#undef IQ_TABLE1
#undef IQ_OPEN2
#undef IQ_OPEN1
#undef IQ_CLOSE
#undef IQ_E2
#undef IQ_E1
#undef IQ_GRID_IQ2XXS
#undef IQ_GRID_IQ2XS
#undef IQ_GRID_IQ2S
#undef IQ_GRID_IQ3XXS
#undef IQ_GRID_IQ3S
#undef IQ_GRID_IQ1S

// Level j (0..7) of a grid entry: an unsigned byte for IQ2/IQ3, int8 for IQ1.
inline int grid_level(uint64_t entry, int j) { return int((entry >> (8 * j)) & 0xFF); }
inline int grid_level_signed(uint64_t entry, int j) { return int(int8_t(uint8_t(entry >> (8 * j)))); }

// IQ2_XXS, IQ2_XS and IQ3_XXS store 7 sign bits per 8 elements; the 8th makes the number of
// minus signs even (ggml's ksigns_iq2xs table is this function of the 7-bit index).
inline uint32_t iq_signs8(uint32_t index7) {
  return (index7 & 127u) | (uint32_t(std::popcount(index7 & 127u) & 1) << 7);
}

// The IQ1 formats' offset: x = scale * (level + delta), delta = +-1/8 per 8 or 32 elements.
inline constexpr float kIQ1Delta = 0.125f;

}  // namespace moevk::quant
