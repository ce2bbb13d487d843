// Per-format CPU quantizers behind quant::quantize(). n is a multiple of the block size.
#pragma once
#include <cstdint>

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

}  // namespace moevk::quant::detail
