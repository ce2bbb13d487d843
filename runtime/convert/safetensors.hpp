// Reading Hugging Face safetensors checkpoints (memory-mapped, no copies). The header is
// untrusted: its length, JSON, dtypes, shapes and offsets are all checked against the file
// before any tensor is read; a rejection is moevk::Error(INVALID_FILE) naming file and tensor.
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape,
// data_offsets: [begin, end]}, "__metadata__": {...}}, then the data (offsets relative to it).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace moevk::convert {

enum class StDtype { F32, F16, BF16, OTHER };

struct StTensor {
  std::string name;
  StDtype dtype = StDtype::F32;
  std::string dtype_name;         // as written ("F32", "I64", ...)
  std::vector<uint64_t> shape;    // PyTorch order: shape[0] is the outermost (rows)
  const uint8_t* data = nullptr;  // inside the mapping
  uint64_t bytes = 0;
  uint64_t elements() const;
  // Converts elements [first, first + count) to float. Throws UNSUPPORTED for OTHER dtypes.
  void read_f32(uint64_t first, uint64_t count, float* out) const;
};

// One .safetensors file, mapped for the lifetime of the object.
class SafetensorsFile {
 public:
  static std::unique_ptr<SafetensorsFile> open(const std::string& path);
  // The same over bytes in memory (tests and fuzzing); `bytes` must outlive the object.
  static std::unique_ptr<SafetensorsFile> from_memory(std::span<const uint8_t> bytes, std::string name);
  ~SafetensorsFile();
  const std::string& path() const { return path_; }
  const std::vector<StTensor>& tensors() const { return tensors_; }

 private:
  SafetensorsFile() = default;
  void parse();
  std::string path_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  bool mapped_ = false;
  std::vector<StTensor> tensors_;
};

// All tensors of a checkpoint directory: model.safetensors, or the shards listed by
// model.safetensors.index.json, or (neither present) every *.safetensors file in the folder.
class Checkpoint {
 public:
  explicit Checkpoint(const std::string& dir);
  // nullptr when absent.
  const StTensor* find(const std::string& name) const;
  // Throws MISSING_TENSOR naming the tensor and the folder.
  const StTensor& get(const std::string& name) const;
  size_t size() const { return by_name_.size(); }
  std::vector<std::string> names() const;

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, const StTensor*> by_name_;
};

}  // namespace moevk::convert
