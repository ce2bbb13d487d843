// GGUF reading (validated, memory-mapped, no copies of tensor data) and streamed writing.
// Spec: GGUF v2/v3, little-endian. Every count, length, offset and size read from a file is
// checked against the file before use; a rejection names the field and its byte offset
// (moevk::Error with MOEVK_ERROR_INVALID_FILE, or MOEVK_ERROR_IO when the file cannot be read).
// Split sets as llama.cpp's gguf-split writes them (NAME-00001-of-00003.gguf ...: metadata in the
// first file, tensors spread over all, keys split.no / split.count / split.tensors.count in each)
// open as one File from the first file's path.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quant/types.hpp"

namespace moevk::gguf {

enum class ValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};

// A metadata value. Scalars keep their declared type. An array keeps its element type and stores
// its elements by kind, so that memory follows the file's size rather than the element count:
// fixed-size scalars packed back to back exactly as in the file (little-endian, value_type_size
// bytes each: a uint8 array of n elements takes n bytes), strings as strings, and arrays of
// arrays (allowed by the format) as nested Values.
struct Value {
  ValueType type = ValueType::UINT32;
  uint64_t u = 0;      // UINT8..UINT64, BOOL
  int64_t i = 0;       // INT8..INT64
  double f = 0;        // FLOAT32, FLOAT64
  std::string s;       // STRING
  ValueType element_type = ValueType::UINT32;  // ARRAY
  std::vector<uint8_t> packed;                 // ARRAY of a fixed-size scalar type
  std::vector<std::string> strings;            // ARRAY of STRING
  std::vector<Value> arrays;                   // ARRAY of ARRAY

  // Numeric accessors convert between integer kinds when the value fits; nullopt otherwise.
  std::optional<uint64_t> as_uint() const;
  std::optional<int64_t> as_int() const;
  std::optional<double> as_float() const;

  // An empty ARRAY of `element_type`.
  static Value array_of(ValueType element_type);
  // Elements of an ARRAY (0 for any other type).
  uint64_t array_size() const;
  // Element k of an ARRAY as a Value of type element_type (a copy: cheap for scalars). Throws
  // INVALID_ARGUMENT when this is not an array or k is out of range.
  Value element(uint64_t k) const;
  // Appends to an ARRAY; throws INVALID_ARGUMENT when `element` is not of type element_type.
  void append(const Value& element);
};

// "uint32", "string", ...; value_type_size is the encoded size of a scalar (0 for STRING, ARRAY).
const char* value_type_name(ValueType t);
uint64_t value_type_size(ValueType t);

// Limits the reader enforces on hostile files (real llama.cpp files are far below them).
inline constexpr uint32_t kMaxDims = 4;              // ggml's GGML_MAX_DIMS
inline constexpr uint32_t kMaxArrayDepth = 8;        // arrays of arrays of ...
inline constexpr size_t kMaxTensorNameLength = 63;   // ggml's GGML_MAX_NAME (64) less the NUL
// Memory the parsed header (metadata and tensor infos) may take, whatever the file claims. Every
// count is first bounded by the bytes left in the file; this budget then bounds what those bytes
// may cost in memory (a nested array is a ~150-byte Value for its 12 encoded bytes), checked
// before each allocation. A 152k-token vocabulary with its merges takes ~15 MB.
inline constexpr uint64_t kMaxHeaderBytes = 512ull << 20;

struct ReadLimits {
  uint64_t max_header_bytes = kMaxHeaderBytes;  // tests lower it to reach the budget with small files
};

struct KeyValue {
  std::string key;
  Value value;
};

struct TensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // ne[0] first: ne[0] is the contiguous (row) dimension
  quant::Type type = quant::Type::F32;
  uint64_t offset = 0;         // absolute byte offset of the data in its file
  uint64_t size = 0;           // bytes
  uint32_t shard = 0;          // the file of a split set holding the data: index into File::shards()
  uint64_t elements() const;
};

// One file of a split set (or the only file). Its own header is validated as any file's.
struct Shard {
  std::string path;
  uint32_t version = 0;
  uint64_t alignment = 32;
  uint64_t file_size = 0;
  uint64_t data_offset = 0;
  uint64_t n_tensors = 0;
};

// Split-set keys (llama.cpp's LLM_KV_SPLIT_*).
inline constexpr const char* kSplitNo = "split.no";                     // uint16, 0-based
inline constexpr const char* kSplitCount = "split.count";               // uint16
inline constexpr const char* kSplitTensorsCount = "split.tensors.count";  // int32, all shards
// "PREFIX-00002-of-00003.gguf" for shard index 1 of 3 (gguf-split's names, numbered from 1).
std::string split_path(const std::string& prefix, uint32_t index, uint32_t count);

class File {
 public:
  // Opens and validates the whole header. Throws moevk::Error. The first file of a split set opens
  // the others by their gguf-split names next to it and validates each (its split keys, that no
  // tensor appears twice, the total against split.tensors.count); any other file of a set is
  // refused with the first one's name. Metadata is the first file's.
  static std::unique_ptr<File> open(const std::string& path, const ReadLimits& limits = {});
  // The same over bytes already in memory (the fuzzer and tests); `bytes` must outlive the File.
  // A file of a split set is refused here (the other files cannot be found).
  static std::unique_ptr<File> from_memory(std::span<const uint8_t> bytes, std::string name = "<memory>",
                                           const ReadLimits& limits = {});
  ~File();

  const std::string& path() const;  // the path opened (a split set's first file)
  uint32_t version() const;
  uint64_t alignment() const;
  uint64_t file_size() const;    // bytes of all its files together
  uint64_t data_offset() const;  // start of the (aligned) tensor data section of the first file
  // The files in split order: one entry for a plain file.
  const std::vector<Shard>& shards() const;
  // The reader's estimate of the parsed header's memory (what ReadLimits::max_header_bytes bounds).
  uint64_t header_bytes() const;

  const std::vector<KeyValue>& metadata() const;
  const Value* find(std::string_view key) const;
  // Typed lookups: nullopt when absent; throw INVALID_FILE when present with an incompatible type.
  std::optional<uint64_t> get_uint(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const;
  const TensorInfo* find_tensor(std::string_view name) const;
  // The tensor's bytes inside the mapping of its file.
  std::span<const uint8_t> tensor_data(const TensorInfo& t) const;

 private:
  File();
  static std::unique_ptr<File> open_one(const std::string& path, const ReadLimits& limits);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Streamed GGUF v3 writer: declare metadata and tensors, then write tensor data in declaration
// order (each tensor may arrive in several chunks). Memory use does not grow with the data.
// A regular file is written under a temporary name in the same folder and renamed over `path`
// by finish(), so an existing file there is untouched until the new one is complete.
class Writer {
 public:
  explicit Writer(const std::string& path, uint64_t alignment = 32);
  ~Writer();  // removes the temporary file if finish() was not reached

  void set_uint32(const std::string& key, uint32_t v);
  void set_int32(const std::string& key, int32_t v);
  void set_uint64(const std::string& key, uint64_t v);
  void set_float32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, const std::string& v);
  void set_array(const std::string& key, const Value& array_value);  // value.type == ARRAY
  // Any value (scalar of any ValueType, string or array); arrays are checked for consistent
  // element types. Setting a key twice replaces its value.
  void set_value(const std::string& key, const Value& value);
  void set_string_array(const std::string& key, const std::vector<std::string>& v);
  void set_float32_array(const std::string& key, const std::vector<float>& v);
  void set_int32_array(const std::string& key, const std::vector<int32_t>& v);

  // dims ne[0] first. Data size is derived from dims and type. Names longer than
  // kMaxTensorNameLength are rejected (llama.cpp could not read the file).
  void add_tensor(const std::string& name, std::vector<uint64_t> dims, quant::Type type);

  // Writes the header; after this only tensor data may be written.
  void begin_data();
  // Appends bytes to the current tensor (tensors are filled in declaration order; a tensor is
  // complete when its size is reached, then padding to the alignment is inserted).
  void write_data(const void* bytes, uint64_t size);
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Rewrites `in` as a split set the way llama.cpp's gguf-split --split does: files
// split_path(prefix, i, n), the first with all of in's metadata, each with split.no (uint16),
// split.count (uint16) and split.tensors.count (int32), tensors in in's order. A new file begins
// before a tensor that would take the current one past `max_file_bytes` of tensor data (0: no
// limit) or past `max_tensors` tensors (0: no limit); a file holds at least one tensor, so a
// tensor larger than the limit gets a file of its own. Returns the paths written. Each file is
// written as Writer writes one (under a temporary name, renamed when complete); on failure the
// files already written are removed again. `progress` (optional) gets the fraction of bytes
// written and the file being written; returning false cancels (MOEVK_ERROR_CANCELLED).
using WriteProgress = std::function<bool(float fraction, const std::string& stage)>;
struct SplitOptions {
  uint64_t max_file_bytes = 0;
  uint64_t max_tensors = 0;
  WriteProgress progress;
};
std::vector<std::string> write_split(const File& in, const std::string& prefix, const SplitOptions& options);
// Writes `in` (a split set or a plain file) as one file at `path`, without the split keys
// (gguf-split --merge). Same failure and progress behaviour.
void write_merged(const File& in, const std::string& path, const WriteProgress& progress = {});

}  // namespace moevk::gguf
