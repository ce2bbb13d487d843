// Helpers of the converter tests: fixture paths, a scratch folder, a safetensors writer laid out
// by hand from the format description (independent of the reader under test).
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moevk::test {

inline std::string hf_fixture(const std::string& name) {
  return std::string(MOEVK_TEST_DATA_DIR) + "/hf/" + name;
}

// A fresh folder removed when the object dies.
struct ScratchDir {
  std::filesystem::path path;
  explicit ScratchDir(const std::string& tag) {
    path = std::filesystem::temp_directory_path() /
           ("moevk_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

struct StEntry {
  std::string name;
  std::string dtype;  // "F32", "BF16", ...
  std::vector<uint64_t> shape;
  std::vector<uint8_t> data;
};

// Safetensors' framing: the header's length (8 bytes, little-endian), then the header, with
// room reserved for data_bytes more. (Built by push_back into reserved storage: GCC 12 warns
// falsely of -Warray-bounds on an insert after an 8-element vector.)
inline std::vector<uint8_t> safetensors_framing(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> out;
  out.reserve(8 + header.size() + data_bytes);
  for (int i = 0; i < 8; ++i) out.push_back(uint8_t(uint64_t(header.size()) >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  return out;
}

inline std::vector<uint8_t> safetensors_bytes(const std::vector<StEntry>& entries) {
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t offset = 0;
  for (const StEntry& e : entries) {
    header[e.name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {offset, offset + e.data.size()}}};
    offset += e.data.size();
  }
  std::string h = header.dump();
  while (h.size() % 8) h.push_back(' ');
  std::vector<uint8_t> out = safetensors_framing(h, offset);
  for (const StEntry& e : entries) out.insert(out.end(), e.data.begin(), e.data.end());
  return out;
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Reads an all-F32 safetensors file directly (test-side, independent of convert::Checkpoint).
struct StF32 {
  std::vector<uint64_t> shape;
  std::vector<float> values;
};
inline std::map<std::string, StF32> load_f32_safetensors(const std::string& path) {
  const std::vector<uint8_t> bytes = read_bytes(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  const nlohmann::json header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + n);
  std::map<std::string, StF32> out;
  for (auto& [name, e] : header.items()) {
    if (name == "__metadata__") continue;
    StF32 t;
    t.shape = e["shape"].get<std::vector<uint64_t>>();
    const uint64_t begin = e["data_offsets"][0], end = e["data_offsets"][1];
    t.values.resize((end - begin) / 4);
    std::memcpy(t.values.data(), bytes.data() + 8 + n + begin, end - begin);
    out[name] = std::move(t);
  }
  return out;
}

}  // namespace moevk::test
