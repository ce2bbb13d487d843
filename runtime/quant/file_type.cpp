#include "quant/file_type.hpp"

#include <cctype>

#include "common/error.hpp"

namespace moevk::quant {

namespace {

struct MixInfo {
  Mix mix;
  Type base;
  uint32_t id;  // llama_ftype; its name (kIdNames, lower case) is the name `--type` takes
};

constexpr MixInfo kMixes[] = {
    {Mix::Q3_K_S, Type::Q3_K, 11}, {Mix::Q3_K_M, Type::Q3_K, 12}, {Mix::Q3_K_L, Type::Q3_K, 13},
    {Mix::Q4_K_S, Type::Q4_K, 14}, {Mix::Q4_K_M, Type::Q4_K, 15}, {Mix::Q5_K_S, Type::Q5_K, 16},
    {Mix::Q5_K_M, Type::Q5_K, 17},
};

// llama_ftype ids and the names published files carry. 4 (Q4_1 with F16 output) and 33..35
// (Q4_0_4_4 and friends) were removed from llama.cpp.
struct IdName {
  uint32_t id;
  const char* name;
};
constexpr IdName kIdNames[] = {
    {0, "F32"},      {1, "F16"},      {2, "Q4_0"},    {3, "Q4_1"},     {7, "Q8_0"},     {8, "Q5_0"},
    {9, "Q5_1"},     {10, "Q2_K"},    {11, "Q3_K_S"}, {12, "Q3_K_M"},  {13, "Q3_K_L"},  {14, "Q4_K_S"},
    {15, "Q4_K_M"},  {16, "Q5_K_S"},  {17, "Q5_K_M"}, {18, "Q6_K"},    {19, "IQ2_XXS"}, {20, "IQ2_XS"},
    {21, "Q2_K_S"},  {22, "IQ3_XS"},  {23, "IQ3_XXS"}, {24, "IQ1_S"},  {25, "IQ4_NL"},  {26, "IQ3_S"},
    {27, "IQ3_M"},   {28, "IQ2_S"},   {29, "IQ2_M"},  {30, "IQ4_XS"},  {31, "IQ1_M"},   {32, "BF16"},
    {36, "TQ1_0"},   {37, "TQ2_0"},   {38, "MXFP4_MOE"},
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

const char* file_type_id_name(uint32_t id) {
  for (const IdName& n : kIdNames)
    if (n.id == id) return n.name;
  return nullptr;
}

bool parse_file_type(std::string_view name, FileType& out) {
  const std::string l = lower(name);
  for (const MixInfo& m : kMixes) {
    if (l == lower(file_type_id_name(m.id))) {
      out = FileType(m.base, m.mix);
      return true;
    }
  }
  Type t;
  if (!parse_type(name, t)) return false;
  out = FileType(t);
  return true;
}

std::string file_type_name(const FileType& ft) {
  for (const MixInfo& m : kMixes)
    if (m.mix == ft.mix) return lower(file_type_id_name(m.id));
  return type_info(ft.base).name;
}

uint32_t file_type_id(const FileType& ft) {
  for (const MixInfo& m : kMixes)
    if (m.mix == ft.mix) return m.id;
  switch (ft.base) {
    case Type::F32: return 0;
    case Type::F16: return 1;
    case Type::Q4_0: return 2;
    case Type::Q4_1: return 3;
    case Type::Q8_0: return 7;
    case Type::Q5_0: return 8;
    case Type::Q5_1: return 9;
    case Type::Q2_K: return 10;  // LLAMA_FTYPE_MOSTLY_Q2_K
    case Type::Q3_K: return 11;  // the _S ids: every matrix of the one type
    case Type::Q4_K: return 14;
    case Type::Q5_K: return 16;
    case Type::Q6_K: return 18;
    case Type::IQ2_XXS: return 19;
    case Type::IQ2_XS: return 20;
    case Type::IQ3_XXS: return 23;
    case Type::IQ1_S: return 24;
    case Type::IQ4_NL: return 25;
    case Type::IQ3_S: return 26;
    case Type::IQ2_S: return 28;
    case Type::IQ4_XS: return 30;
    case Type::IQ1_M: return 31;
    case Type::BF16: return 32;
    default: break;
  }
  fail(MOEVK_ERROR_UNSUPPORTED, std::string("no llama.cpp file type for ") + type_info(ft.base).name);
}

}  // namespace moevk::quant
