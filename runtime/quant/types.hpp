// GGML/GGUF tensor element types: ids as stored in GGUF files, block layout constants, and the
// CPU reference dequantize/quantize (bit-exact with the published GGUF definitions).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace moevk::quant {

// Values are the type ids stored in GGUF tensor infos: every id of ggml's enum ggml_type, so a file
// of any type opens and can be described; which of them moevk can compute is a separate question
// (TypeInfo::can_dequantize here, the GPU kernels in ops/). Ids 4, 5 and 31..33, 36..38 were
// removed from ggml and never appear in GGUF files.
enum class Type : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  NVFP4 = 40,
  Q1_0 = 41,
};

struct TypeInfo {
  Type type;
  const char* name;      // "q4_0", as llama.cpp prints it
  uint32_t block_size;   // elements per block (1 for the plain float and integer types)
  uint32_t type_size;    // bytes per block
  bool can_dequantize;   // CPU reference dequantize exists
  bool can_quantize;     // CPU reference quantize exists
};

// nullptr for an id this build does not know (the reader rejects such files).
const TypeInfo* type_info(uint32_t id);
const TypeInfo& type_info(Type t);
// Parses "q4_0", "Q4_K", "f16", ...; returns false when unknown.
bool parse_type(std::string_view name, Type& out);

// Bytes of one row of n elements; n must be a multiple of the block size (the caller checks).
uint64_t row_bytes(Type t, uint64_t n);

// CPU reference conversions of n elements (n a multiple of the block size). Throw
// moevk::Error(MOEVK_ERROR_UNSUPPORTED) for a type without the conversion.
void dequantize(Type t, const void* src, float* dst, uint64_t n);
// How Q4_K, Q5_K and Q6_K pick their sub-block scales: Full is ggml's reference (a weighted
// least-squares search over ~20 candidate scales per sub-block, as quantize_row_q*_K_ref);
// MinMax takes each sub-block's range as it is (ggml's search with no steps), ~10x faster at a
// somewhat larger rounding error. For the codebook types (IQ1..IQ3) Full tries each level as the
// group's largest and refits, MinMax takes the top level once. The other types have one way.
// The files moevk writes from real checkpoints use Full; make-model's random weights use MinMax (their values mean nothing,
// their layout and size are what is measured).
enum class ScaleSearch { Full, MinMax };
void quantize(Type t, const float* src, void* dst, uint64_t n, ScaleSearch search = ScaleSearch::Full);

}  // namespace moevk::quant
