// llama.cpp's file types (llama_ftype, GGUF's general.file_type): what `--type` names when a
// file is written, and what `moevk info` shows of a file it reads.
//
// A file type is a base type for the matrices and, for the K-quant mixes (Q3_K_S ... Q5_K_M, the
// files most published GGUF repositories offer), llama-quantize's rule for which matrices it
// stores wider: the output head, attn_v and ffn_down in some layers, attention of 8-expert models.
// The rule itself needs the model's shape and lives with the writer (convert/model_writer).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "quant/types.hpp"

namespace moevk::quant {

enum class Mix : uint8_t { NONE, Q3_K_S, Q3_K_M, Q3_K_L, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M };

struct FileType {
  Type base = Type::F16;
  Mix mix = Mix::NONE;  // NONE: every matrix is `base` (llama-quantize's --pure)
  FileType() = default;
  FileType(Type t) : base(t) {}  // NOLINT: a plain type is the pure file of that type
  FileType(Type t, Mix m) : base(t), mix(m) {}
  bool operator==(const FileType&) const = default;
};

// A type name ("q4_k", "F16") or a mix ("q4_k_m", "Q5_K_S"); case-insensitive. False if unknown.
bool parse_file_type(std::string_view name, FileType& out);
// "q4_k_m" for a mix, the base type's name otherwise.
std::string file_type_name(const FileType& ft);
// general.file_type for a file of this type. A pure K-quant file gets its _S id, as
// `llama-quantize --pure` writes it (Q4_K -> 14, LLAMA_FTYPE_MOSTLY_Q4_K_S). Throws
// UNSUPPORTED for a base type llama.cpp has no file type for.
uint32_t file_type_id(const FileType& ft);
// The name of a general.file_type value as model repositories name files ("Q4_K_M", "F16",
// "IQ2_XXS"); nullptr for a value this build does not know.
const char* file_type_id_name(uint32_t id);

}  // namespace moevk::quant
