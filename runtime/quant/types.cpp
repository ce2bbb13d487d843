// The table of known element types and row size arithmetic.
#include "quant/types.hpp"

#include <cctype>
#include <string>

#include "quant/blocks.hpp"

namespace moevk::quant {
namespace {

// Block sizes and bytes per block as ggml's type_traits table (ggml.c) gives them; the structs
// behind the sizes are in ggml-common.h. Types without a CPU conversion here are still listed so
// the reader accepts their files and sizes their tensors exactly.
constexpr uint32_t QK_MXFP4 = 32, QK_NVFP4 = 64, QK1_0 = 128;
constexpr TypeInfo kTypes[] = {
    {Type::F32, "f32", 1, 4, true, true},
    {Type::F16, "f16", 1, 2, true, true},
    {Type::Q4_0, "q4_0", QK4_0, sizeof(BlockQ4_0), true, true},
    {Type::Q4_1, "q4_1", QK4_1, sizeof(BlockQ4_1), true, true},
    {Type::Q5_0, "q5_0", QK5_0, sizeof(BlockQ5_0), true, true},
    {Type::Q5_1, "q5_1", QK5_1, sizeof(BlockQ5_1), true, true},
    {Type::Q8_0, "q8_0", QK8_0, sizeof(BlockQ8_0), true, true},
    {Type::Q8_1, "q8_1", QK8_1, sizeof(BlockQ8_1), true, false},
    {Type::Q2_K, "q2_K", QK_K, sizeof(BlockQ2_K), true, true},
    {Type::Q3_K, "q3_K", QK_K, sizeof(BlockQ3_K), true, true},
    {Type::Q4_K, "q4_K", QK_K, sizeof(BlockQ4_K), true, true},
    {Type::Q5_K, "q5_K", QK_K, sizeof(BlockQ5_K), true, true},
    {Type::Q6_K, "q6_K", QK_K, sizeof(BlockQ6_K), true, true},
    {Type::Q8_K, "q8_K", QK_K, sizeof(BlockQ8_K), true, false},
    {Type::IQ2_XXS, "iq2_xxs", QK_K, sizeof(BlockIQ2_XXS), true, true},
    {Type::IQ2_XS, "iq2_xs", QK_K, sizeof(BlockIQ2_XS), true, true},
    {Type::IQ3_XXS, "iq3_xxs", QK_K, sizeof(BlockIQ3_XXS), true, true},
    {Type::IQ1_S, "iq1_s", QK_K, sizeof(BlockIQ1_S), true, true},
    {Type::IQ4_NL, "iq4_nl", QK4_NL, sizeof(BlockIQ4_NL), true, true},
    {Type::IQ3_S, "iq3_s", QK_K, sizeof(BlockIQ3_S), true, true},
    {Type::IQ2_S, "iq2_s", QK_K, sizeof(BlockIQ2_S), true, true},
    {Type::IQ4_XS, "iq4_xs", QK_K, sizeof(BlockIQ4_XS), true, true},
    {Type::I8, "i8", 1, 1, false, false},
    {Type::I16, "i16", 1, 2, false, false},
    {Type::I32, "i32", 1, 4, false, false},
    {Type::I64, "i64", 1, 8, false, false},
    {Type::F64, "f64", 1, 8, false, false},
    {Type::IQ1_M, "iq1_m", QK_K, sizeof(BlockIQ1_M), true, true},
    {Type::BF16, "bf16", 1, 2, true, true},
    {Type::TQ1_0, "tq1_0", QK_K, 2 + QK_K / 64 + (QK_K - 4 * QK_K / 64) / 5, false, false},
    {Type::TQ2_0, "tq2_0", QK_K, 2 + QK_K / 4, false, false},
    {Type::MXFP4, "mxfp4", QK_MXFP4, 1 + QK_MXFP4 / 2, false, false},         // E8M0 scale + nibbles
    {Type::NVFP4, "nvfp4", QK_NVFP4, QK_NVFP4 / 16 + QK_NVFP4 / 2, false, false},  // 4 UE4M3 scales
    {Type::Q1_0, "q1_0", QK1_0, 2 + QK1_0 / 8, false, false},
};

}  // namespace

const TypeInfo* type_info(uint32_t id) {
  for (const TypeInfo& info : kTypes) {
    if (uint32_t(info.type) == id) return &info;
  }
  return nullptr;
}

const TypeInfo& type_info(Type t) {
  const TypeInfo* info = type_info(uint32_t(t));
  // Every enumerator is in the table; a cast from an arbitrary integer is a caller bug, and
  // we answer with F32 rather than dereference null.
  return info ? *info : kTypes[0];
}

bool parse_type(std::string_view name, Type& out) {
  std::string lower(name);
  for (char& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
  for (const TypeInfo& info : kTypes) {
    std::string table_name(info.name);
    for (char& c : table_name) c = char(std::tolower(static_cast<unsigned char>(c)));
    if (lower == table_name) {
      out = info.type;
      return true;
    }
  }
  return false;
}

uint64_t row_bytes(Type t, uint64_t n) {
  const TypeInfo& info = type_info(t);
  return n / info.block_size * info.type_size;
}

}  // namespace moevk::quant
