// The table of known element types and row size arithmetic.
#include "quant/types.hpp"

#include <array>
#include <cctype>
#include <string>

#include "quant/blocks.hpp"

namespace moevk::quant {
namespace {

constexpr std::array<TypeInfo, 16> kTypes = {{
    {Type::F32, "f32", 1, 4, true, true},
    {Type::F16, "f16", 1, 2, true, true},
    {Type::Q4_0, "q4_0", QK4_0, sizeof(BlockQ4_0), true, true},
    {Type::Q4_1, "q4_1", QK4_1, sizeof(BlockQ4_1), true, true},
    {Type::Q5_0, "q5_0", QK5_0, sizeof(BlockQ5_0), true, true},
    {Type::Q5_1, "q5_1", QK5_1, sizeof(BlockQ5_1), true, true},
    {Type::Q8_0, "q8_0", QK8_0, sizeof(BlockQ8_0), true, true},
    {Type::Q8_1, "q8_1", QK8_1, sizeof(BlockQ8_1), true, false},
    {Type::Q2_K, "q2_K", QK_K, sizeof(BlockQ2_K), true, false},
    {Type::Q3_K, "q3_K", QK_K, sizeof(BlockQ3_K), true, false},
    {Type::Q4_K, "q4_K", QK_K, sizeof(BlockQ4_K), true, true},
    {Type::Q5_K, "q5_K", QK_K, sizeof(BlockQ5_K), true, true},
    {Type::Q6_K, "q6_K", QK_K, sizeof(BlockQ6_K), true, true},
    {Type::Q8_K, "q8_K", QK_K, sizeof(BlockQ8_K), true, false},
    {Type::IQ4_NL, "iq4_nl", QK4_NL, sizeof(BlockIQ4_NL), true, true},
    {Type::BF16, "bf16", 1, 2, true, true},
}};

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
