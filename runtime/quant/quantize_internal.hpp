// Per-format CPU quantizers behind quant::quantize() (n a multiple of the block size), and the
// codebook formats' dequantizers behind quant::dequantize() (nb blocks).
#pragma once
#include <cstdint>

#include "quant/types.hpp"

namespace moevk::quant::detail {

void quantize_f16(const float* x, void* dst, uint64_t n);
void quantize_bf16(const float* x, void* dst, uint64_t n);
void quantize_q4_0(const float* x, void* dst, uint64_t n);
void quantize_q4_1(const float* x, void* dst, uint64_t n);
void quantize_q5_0(const float* x, void* dst, uint64_t n);
void quantize_q5_1(const float* x, void* dst, uint64_t n);
void quantize_q8_0(const float* x, void* dst, uint64_t n);
// search: ggml's scale search (quant::ScaleSearch::Full), else each sub-block's range as it is.
void quantize_q4_k(const float* x, void* dst, uint64_t n, bool search);
void quantize_q5_k(const float* x, void* dst, uint64_t n, bool search);
void quantize_q6_k(const float* x, void* dst, uint64_t n, bool search);
void quantize_iq4_nl(const float* x, void* dst, uint64_t n);
void quantize_q2_k(const float* x, void* dst, uint64_t n);
void quantize_q3_k(const float* x, void* dst, uint64_t n);
void quantize_iq4_xs(const float* x, void* dst, uint64_t n);

// IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S (quantize_iq.cpp; search as for the
// K-quants); false for other types.
bool quantize_iq(Type t, const float* x, void* dst, uint64_t n, bool search);
// The codebook entry of IQ type t nearest to target[0..8) (IQ3: [0..4)) in squared error, in
// the type's level units (before signs and scale), as the quantizer finds it (lattice map and
// neighbour lists) or by the exhaustive scan the lists stand in for; -1 for other types.
int iq_nearest_entry(Type t, const float* target, bool exhaustive);
// Squared error of entry i of t's codebook against target.
float iq_entry_error(Type t, int i, const float* target);
// IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S (dequant_iq.cpp); false for other types.
bool dequantize_iq(Type t, const void* src, float* y, uint64_t nb);

}  // namespace moevk::quant::detail
