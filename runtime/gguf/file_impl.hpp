// The parsed state of a File, shared by the parser (reader.cpp) and File (file.cpp).
#pragma once
#include <string>
#include <unordered_map>
#include <vector>

#include "gguf/gguf.hpp"

namespace moevk::gguf {

struct FileData {
  std::string path;
  const uint8_t* bytes = nullptr;  // the whole file (mapping or caller's memory)
  uint64_t size = 0;
  ReadLimits limits;
  uint64_t header_bytes = 0;  // estimated memory of the parsed header, counted by the parser

  uint32_t version = 0;
  uint64_t alignment = 32;
  uint64_t data_offset = 0;
  std::vector<KeyValue> metadata;
  std::vector<uint64_t> metadata_offsets;  // byte offset of each entry, for messages
  std::unordered_map<std::string_view, size_t> key_index;
  std::vector<TensorInfo> tensors;
  std::unordered_map<std::string_view, size_t> tensor_index;

  // Parses and validates everything in [bytes, bytes + size). Throws INVALID_FILE.
  void parse();
};

}  // namespace moevk::gguf
