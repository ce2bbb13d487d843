// safetensors reader. Hostile-input rules: the header length must fit the file and a sane cap,
// the JSON must parse, every tensor entry must have a known-size dtype, a shape whose element
// count does not overflow, and data_offsets inside the data section whose length equals
// elements * dtype size. Overlapping tensors are allowed (harmless for reading).
#include "convert/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "quant/half.hpp"

namespace moevk::convert {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // real headers are a few hundred KiB
constexpr uint64_t kMaxDims = 8;

uint64_t dtype_size(const std::string& name, StDtype& kind) {
  kind = StDtype::OTHER;
  if (name == "F32") { kind = StDtype::F32; return 4; }
  if (name == "F16") { kind = StDtype::F16; return 2; }
  if (name == "BF16") { kind = StDtype::BF16; return 2; }
  if (name == "F64" || name == "I64" || name == "U64") return 8;
  if (name == "I32" || name == "U32") return 4;
  if (name == "I16" || name == "U16") return 2;
  if (name == "I8" || name == "U8" || name == "BOOL" || name == "F8_E4M3" || name == "F8_E5M2") return 1;
  return 0;
}

[[noreturn]] void invalid(const std::string& path, const std::string& what) {
  fail(MOEVK_ERROR_INVALID_FILE, path + ": " + what);
}

}  // namespace

uint64_t StTensor::elements() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;  // overflow excluded when the header was parsed
  return n;
}

void StTensor::read_f32(uint64_t first, uint64_t count, float* out) const {
  require(first <= elements() && count <= elements() - first, MOEVK_ERROR_INTERNAL,
          "safetensors read past the end of " + name);
  switch (dtype) {
    case StDtype::F32:
      std::memcpy(out, data + first * 4, count * 4);
      return;
    case StDtype::F16:
      for (uint64_t i = 0; i < count; ++i) {
        uint16_t h;
        std::memcpy(&h, data + (first + i) * 2, 2);
        out[i] = quant::fp16_to_fp32(h);
      }
      return;
    case StDtype::BF16:
      for (uint64_t i = 0; i < count; ++i) {
        uint16_t h;
        std::memcpy(&h, data + (first + i) * 2, 2);
        out[i] = quant::bf16_to_fp32(h);
      }
      return;
    case StDtype::OTHER:
      break;
  }
  fail(MOEVK_ERROR_UNSUPPORTED, "tensor " + name + " has dtype " + dtype_name +
                                    " (the converter reads F32, F16 and BF16)");
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(MOEVK_ERROR_IO, path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(MOEVK_ERROR_IO, path + ": not a regular file");
  }
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->size_ = uint64_t(st.st_size);
  if (file->size_ > 0) {
    void* p = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      fail(MOEVK_ERROR_IO, path + ": mmap failed: " + std::strerror(errno));
    }
    file->base_ = static_cast<const uint8_t*>(p);
    file->mapped_ = true;
  }
  ::close(fd);
  file->parse();
  return file;
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::from_memory(std::span<const uint8_t> bytes, std::string name) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = std::move(name);
  file->base_ = bytes.data();
  file->size_ = bytes.size();
  file->parse();
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapped_) ::munmap(const_cast<uint8_t*>(base_), size_);
}

void SafetensorsFile::parse() {
  if (size_ < 8) invalid(path_, "shorter than the 8-byte header length");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | base_[i];
  if (header_len > kMaxHeaderBytes) invalid(path_, "header length " + std::to_string(header_len) + " exceeds 100 MiB");
  if (header_len > size_ - 8)
    invalid(path_, "header length " + std::to_string(header_len) + " exceeds the file size " + std::to_string(size_));
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = size_ - data_start;
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(reinterpret_cast<const char*>(base_ + 8),
                                   reinterpret_cast<const char*>(base_ + data_start));
  } catch (const nlohmann::json::exception& e) {
    invalid(path_, std::string("header JSON: ") + e.what());
  }
  if (!header.is_object()) invalid(path_, "header is not a JSON object");
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const std::string where = "tensor '" + it.key() + "'";
    const nlohmann::json& entry = it.value();
    if (!entry.is_object()) invalid(path_, where + ": entry is not an object");
    auto dtype_it = entry.find("dtype");
    auto shape_it = entry.find("shape");
    auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || !dtype_it->is_string()) invalid(path_, where + ": missing string 'dtype'");
    if (shape_it == entry.end() || !shape_it->is_array()) invalid(path_, where + ": missing array 'shape'");
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2)
      invalid(path_, where + ": 'data_offsets' must be [begin, end]");
    StTensor t;
    t.name = it.key();
    t.dtype_name = dtype_it->get<std::string>();
    const uint64_t esize = dtype_size(t.dtype_name, t.dtype);
    if (esize == 0) invalid(path_, where + ": unknown dtype '" + t.dtype_name + "'");
    if (shape_it->size() > kMaxDims) invalid(path_, where + ": more than 8 dimensions");
    uint64_t elements = 1;
    for (const nlohmann::json& d : *shape_it) {
      if (!d.is_number_unsigned()) invalid(path_, where + ": shape entries must be non-negative integers");
      const uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && elements > (UINT64_MAX / esize) / dim) invalid(path_, where + ": shape overflows");
      elements *= dim;
      t.shape.push_back(dim);
    }
    const nlohmann::json& b = (*offsets_it)[0];
    const nlohmann::json& e = (*offsets_it)[1];
    if (!b.is_number_unsigned() || !e.is_number_unsigned())
      invalid(path_, where + ": data_offsets must be non-negative integers");
    const uint64_t begin = b.get<uint64_t>(), end = e.get<uint64_t>();
    if (begin > end || end > data_size)
      invalid(path_, where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                         "] outside the data section of " + std::to_string(data_size) + " bytes");
    if (end - begin != elements * esize)
      invalid(path_, where + ": data_offsets span " + std::to_string(end - begin) + " bytes but the shape needs " +
                         std::to_string(elements * esize));
    t.data = base_ + data_start + begin;
    t.bytes = end - begin;
    tensors_.push_back(std::move(t));
  }
}

// ------------------------------------------------------------------------------------------
// Checkpoint: the tensors of a whole directory.
// ------------------------------------------------------------------------------------------

Checkpoint::Checkpoint(const std::string& dir) : dir_(dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> shard_names;
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  std::error_code ec;
  if (fs::exists(index, ec)) {
    std::ifstream in(index);
    std::stringstream text;
    text << in.rdbuf();
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text.str());
    } catch (const nlohmann::json::exception& e) {
      invalid(index.string(), std::string("JSON: ") + e.what());
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      invalid(index.string(), "missing object 'weight_map'");
    std::set<std::string> unique;
    for (auto& [name, shard] : j["weight_map"].items()) {
      if (!shard.is_string()) invalid(index.string(), "weight_map['" + name + "'] is not a string");
      const std::string s = shard.get<std::string>();
      // Shards must be plain file names inside the folder.
      if (s.empty() || s.find('/') != std::string::npos || s == "." || s == "..")
        invalid(index.string(), "weight_map['" + name + "'] names '" + s + "', not a file in the folder");
      unique.insert(s);
    }
    shard_names.assign(unique.begin(), unique.end());
  } else if (fs::exists(fs::path(dir) / "model.safetensors", ec)) {
    shard_names.push_back("model.safetensors");
  } else {
    for (const auto& entry : fs::directory_iterator(dir, ec))
      if (entry.path().extension() == ".safetensors") shard_names.push_back(entry.path().filename().string());
    std::sort(shard_names.begin(), shard_names.end());
  }
  if (shard_names.empty()) fail(MOEVK_ERROR_IO, dir + ": no .safetensors files");
  for (const std::string& name : shard_names) {
    files_.push_back(SafetensorsFile::open((fs::path(dir) / name).string()));
    for (const StTensor& t : files_.back()->tensors()) {
      if (!by_name_.emplace(t.name, &t).second)
        invalid(files_.back()->path(), "tensor '" + t.name + "' also appears in another shard");
    }
  }
}

const StTensor* Checkpoint::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

const StTensor& Checkpoint::get(const std::string& name) const {
  const StTensor* t = find(name);
  if (!t) fail(MOEVK_ERROR_MISSING_TENSOR, dir_ + ": checkpoint has no tensor '" + name + "'");
  return *t;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [name, t] : by_name_) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace moevk::convert
