// The GGUF parser. Every count, length, dimension, offset and size comes from an untrusted file:
// each is checked against the bytes that remain before anything is allocated or dereferenced,
// and each rejection names the field and the byte offset where it was read.
#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <string>

#include "common/error.hpp"
#include "gguf/file_impl.hpp"

namespace moevk::gguf {
namespace {

static_assert(std::endian::native == std::endian::little, "the reader assumes a little-endian host");

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint64_t kMaxAlignment = 1ull << 30;
// Smallest possible encodings, used to bound counts by the bytes left in the file.
constexpr uint64_t kMinKeyValueBytes = 8 + 4 + 1;           // empty key, type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // empty name, n_dims, 1 dim, type, offset
// Memory of one entry in a name index (an unordered_map node and its bucket), for the budget.
constexpr uint64_t kIndexEntryBytes = 64;

std::string quoted(std::string_view s) {
  // Names come from the file: keep messages printable and short.
  std::string out = "'";
  for (char c : s.substr(0, 128)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  if (s.size() > 128) out += "...";
  return out + "'";
}

// A bounds-checked little-endian reader over the file bytes. `what` names the field being read
// (e.g. "metadata key 'general.name'"), `what_offset` where that field starts.
class Cursor {
 public:
  Cursor(const std::string& path, const uint8_t* bytes, uint64_t size)
      : path_(path), bytes_(bytes), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }
  void set_context(std::string what, uint64_t offset) {
    what_ = std::move(what);
    what_offset_ = offset;
  }
  const std::string& context() const { return what_; }

  [[noreturn]] void reject(const std::string& detail) const { reject_at(what_offset_, detail); }
  [[noreturn]] void reject_at(uint64_t offset, const std::string& detail) const {
    fail(MOEVK_ERROR_INVALID_FILE,
         path_ + ": " + what_ + " at byte " + std::to_string(offset) + ": " + detail);
  }

  void need(uint64_t n, const char* field) const {
    if (n > left()) {
      reject_at(pos_, std::string("truncated: ") + field + " needs " + std::to_string(n) +
                          " bytes, " + std::to_string(left()) + " left in the file (size " +
                          std::to_string(size_) + ")");
    }
  }

  template <typename T>
  T read(const char* field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, bytes_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  // The next n bytes (bounds-checked), consumed.
  const uint8_t* bytes_at(uint64_t n, const char* field) {
    need(n, field);
    const uint8_t* p = bytes_ + pos_;
    pos_ += n;
    return p;
  }

  std::string read_string(const char* field) {
    const uint64_t at = pos_;
    const uint64_t length = read<uint64_t>(field);
    if (length > left()) {
      reject_at(at, std::string(field) + " length " + std::to_string(length) + " exceeds the " +
                        std::to_string(left()) + " bytes left in the file");
    }
    std::string s(reinterpret_cast<const char*>(bytes_ + pos_), size_t(length));
    pos_ += length;
    return s;
  }

 private:
  const std::string& path_;
  const uint8_t* bytes_;
  uint64_t size_;
  uint64_t pos_ = 0;
  std::string what_ = "header";
  uint64_t what_offset_ = 0;
};

bool known_value_type(uint32_t t) { return t <= uint32_t(ValueType::FLOAT64); }

class Parser {
 public:
  Parser(FileData& file) : file_(file), in_(file.path, file.bytes, file.size) {}

  void run() {
    read_header();
    read_metadata();
    read_alignment();
    read_tensor_infos();
    place_tensor_data();
    build_indices();
  }

 private:
  void read_header() {
    in_.set_context("header", 0);
    const uint32_t magic = in_.read<uint32_t>("magic");
    if (magic != kMagic) {
      in_.reject("bad magic 0x" + hex32(magic) + ", expected \"GGUF\" (not a GGUF file)");
    }
    const uint32_t version = in_.read<uint32_t>("version");
    if (version == 1) in_.reject("GGUF version 1 is not supported (convert the file to v3)");
    if (version != 2 && version != 3) {
      const uint32_t swapped = __builtin_bswap32(version);
      if (swapped == 2 || swapped == 3) {
        in_.reject("big-endian GGUF (version reads as 0x" + hex32(version) +
                   ") is not supported; use a little-endian file");
      }
      in_.reject("unsupported GGUF version " + std::to_string(version) + " (supported: 2, 3)");
    }
    file_.version = version;
    n_tensors_at_ = in_.pos();
    n_tensors_ = in_.read<uint64_t>("tensor count");
    n_kv_at_ = in_.pos();
    n_kv_ = in_.read<uint64_t>("metadata count");
    if (n_kv_ > in_.left() / kMinKeyValueBytes) {
      in_.reject_at(n_kv_at_, "metadata count " + std::to_string(n_kv_) +
                                  " cannot fit in the " + std::to_string(in_.left()) +
                                  " bytes left in the file");
    }
    if (n_tensors_ > in_.left() / kMinTensorInfoBytes) {
      in_.reject_at(n_tensors_at_, "tensor count " + std::to_string(n_tensors_) +
                                       " cannot fit in the " + std::to_string(in_.left()) +
                                       " bytes left in the file");
    }
  }

  // Counts `bytes` of memory against the header budget before they are allocated; `what` and
  // `at` name the field that asks for them. Products are passed as count and unit so that a
  // hostile count cannot overflow the check.
  void charge(uint64_t count, uint64_t unit, uint64_t at, const std::string& what) {
    const uint64_t budget = file_.limits.max_header_bytes;
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(count, unit, &bytes) || bytes > budget - std::min(budget, file_.header_bytes)) {
      in_.reject_at(at, what + " needs " + (bytes ? std::to_string(bytes) : std::string("more than 2^64")) +
                            " bytes of memory; the reader's header budget is " + std::to_string(budget) +
                            " bytes, " + std::to_string(file_.header_bytes) + " already used");
    }
    file_.header_bytes += bytes;
  }

  void read_metadata() {
    // Counts are only bounded by the file size here; grow past a modest reserve as entries parse.
    file_.metadata.reserve(size_t(std::min<uint64_t>(n_kv_, 1 << 16)));
    file_.metadata_offsets.reserve(size_t(std::min<uint64_t>(n_kv_, 1 << 16)));
    for (uint64_t i = 0; i < n_kv_; ++i) {
      const uint64_t at = in_.pos();
      in_.set_context("metadata entry #" + std::to_string(i) + " key", at);
      charge(1, sizeof(KeyValue) + sizeof(uint64_t) + kIndexEntryBytes, at, "the entry");
      KeyValue kv;
      kv.key = read_charged_string("key");
      in_.set_context("metadata key " + quoted(kv.key), at);
      const uint64_t type_at = in_.pos();
      const uint32_t type = in_.read<uint32_t>("value type");
      if (!known_value_type(type)) {
        in_.reject_at(type_at, "unknown value type " + std::to_string(type));
      }
      read_value(kv.value, ValueType(type), 0);
      file_.metadata.push_back(std::move(kv));
      file_.metadata_offsets.push_back(at);
    }
  }

  // A string whose bytes are counted against the budget (its length is bounded by the file).
  std::string read_charged_string(const char* field) {
    const uint64_t at = in_.pos();
    std::string s = in_.read_string(field);
    file_.header_bytes += s.size();
    if (file_.header_bytes > file_.limits.max_header_bytes) {
      in_.reject_at(at, std::string(field) + " of " + std::to_string(s.size()) +
                            " bytes exceeds the reader's header budget of " +
                            std::to_string(file_.limits.max_header_bytes) + " bytes");
    }
    return s;
  }

  // Reads a value of `type` into `v`, whose own memory the caller has already counted.
  void read_value(Value& v, ValueType type, uint32_t depth) {
    v.type = type;
    switch (type) {
      case ValueType::UINT8: v.u = in_.read<uint8_t>("uint8 value"); break;
      case ValueType::INT8: v.i = in_.read<int8_t>("int8 value"); break;
      case ValueType::UINT16: v.u = in_.read<uint16_t>("uint16 value"); break;
      case ValueType::INT16: v.i = in_.read<int16_t>("int16 value"); break;
      case ValueType::UINT32: v.u = in_.read<uint32_t>("uint32 value"); break;
      case ValueType::INT32: v.i = in_.read<int32_t>("int32 value"); break;
      case ValueType::UINT64: v.u = in_.read<uint64_t>("uint64 value"); break;
      case ValueType::INT64: v.i = in_.read<int64_t>("int64 value"); break;
      case ValueType::FLOAT32: v.f = in_.read<float>("float32 value"); break;
      case ValueType::FLOAT64: v.f = in_.read<double>("float64 value"); break;
      case ValueType::BOOL: v.u = in_.read<uint8_t>("bool value") != 0; break;
      case ValueType::STRING: v.s = read_charged_string("string"); break;
      case ValueType::ARRAY: read_array(v, depth); break;
    }
  }

  void read_array(Value& v, uint32_t depth) {
    const uint64_t at = in_.pos();
    if (depth + 1 > kMaxArrayDepth) {
      in_.reject_at(at, "arrays nested deeper than " + std::to_string(kMaxArrayDepth) + " levels");
    }
    const uint32_t element_type = in_.read<uint32_t>("array element type");
    if (!known_value_type(element_type)) {
      in_.reject_at(at, "unknown array element type " + std::to_string(element_type));
    }
    v.element_type = ValueType(element_type);
    const uint64_t count_at = in_.pos();
    const uint64_t count = in_.read<uint64_t>("array length");
    // An element takes at least its fixed size, a string its 8-byte length, an array its
    // 12-byte type and count: reject counts the rest of the file cannot hold before allocating.
    uint64_t min_element = value_type_size(v.element_type);
    if (v.element_type == ValueType::STRING) min_element = 8;
    if (v.element_type == ValueType::ARRAY) min_element = 12;
    if (count > in_.left() / min_element) {
      in_.reject_at(count_at, "array length " + std::to_string(count) + " of " +
                                  value_type_name(v.element_type) + " cannot fit in the " +
                                  std::to_string(in_.left()) + " bytes left in the file");
    }
    // What the elements take in memory, before anything is reserved: scalars stay packed (their
    // size in the file), a string is a std::string plus its bytes (counted as read), a nested
    // array a whole Value.
    const std::string what = "array length " + std::to_string(count) + " of " + value_type_name(v.element_type);
    switch (v.element_type) {
      case ValueType::STRING:
        charge(count, sizeof(std::string), count_at, what);
        v.strings.reserve(size_t(count));
        for (uint64_t k = 0; k < count; ++k) v.strings.push_back(read_charged_string("string"));
        return;
      case ValueType::ARRAY:
        charge(count, sizeof(Value), count_at, what);
        v.arrays.resize(size_t(count));
        for (Value& element : v.arrays) read_value(element, ValueType::ARRAY, depth + 1);
        return;
      default: {
        const uint64_t bytes = count * min_element;  // <= left(): checked above
        charge(1, bytes, count_at, what);
        const uint8_t* begin = in_.bytes_at(bytes, "array data");
        v.packed.assign(begin, begin + bytes);
        // A bool is any nonzero byte in the file; keep them 0/1 as a scalar bool is kept.
        if (v.element_type == ValueType::BOOL)
          for (uint8_t& b : v.packed) b = b != 0;
        return;
      }
    }
  }

  void read_alignment() {
    file_.alignment = kDefaultAlignment;
    for (size_t i = 0; i < file_.metadata.size(); ++i) {
      if (file_.metadata[i].key != "general.alignment") continue;
      in_.set_context("metadata key 'general.alignment'", file_.metadata_offsets[i]);
      const std::optional<uint64_t> alignment = file_.metadata[i].value.as_uint();
      if (!alignment) {
        in_.reject(std::string("alignment has type ") +
                   value_type_name(file_.metadata[i].value.type) + ", expected an unsigned integer");
      }
      if (*alignment == 0 || !std::has_single_bit(*alignment) || *alignment > kMaxAlignment) {
        in_.reject("alignment " + std::to_string(*alignment) +
                   " is not a nonzero power of two <= " + std::to_string(kMaxAlignment));
      }
      file_.alignment = *alignment;
    }
  }

  void read_tensor_infos() {
    file_.tensors.reserve(size_t(std::min<uint64_t>(n_tensors_, 1 << 16)));
    tensor_offsets_.reserve(size_t(std::min<uint64_t>(n_tensors_, 1 << 16)));
    for (uint64_t i = 0; i < n_tensors_; ++i) {
      const uint64_t at = in_.pos();
      in_.set_context("tensor #" + std::to_string(i) + " name", at);
      charge(1, sizeof(TensorInfo) + sizeof(uint64_t) + kIndexEntryBytes, at, "the tensor info");
      TensorInfo t;
      t.name = read_charged_string("tensor name");
      in_.set_context("tensor " + quoted(t.name), at);
      const uint32_t n_dims = in_.read<uint32_t>("n_dims");
      if (n_dims == 0 || n_dims > kMaxDims) {
        in_.reject("n_dims " + std::to_string(n_dims) + " is not in 1.." + std::to_string(kMaxDims));
      }
      charge(n_dims, sizeof(uint64_t), at, "the dimensions");
      uint64_t elements = 1;
      for (uint32_t d = 0; d < n_dims; ++d) {
        const uint64_t dim = in_.read<uint64_t>("dimension");
        if (dim == 0) in_.reject("dimension ne[" + std::to_string(d) + "] is 0");
        if (__builtin_mul_overflow(elements, dim, &elements) ||
            elements > uint64_t(std::numeric_limits<int64_t>::max())) {
          in_.reject("element count overflows at ne[" + std::to_string(d) + "] = " +
                     std::to_string(dim));
        }
        t.dims.push_back(dim);
      }
      const uint32_t type_id = in_.read<uint32_t>("tensor type");
      const quant::TypeInfo* info = quant::type_info(type_id);
      if (!info) in_.reject("unknown tensor type id " + std::to_string(type_id));
      t.type = info->type;
      if (t.dims[0] % info->block_size != 0) {
        in_.reject("ne[0] = " + std::to_string(t.dims[0]) + " is not a multiple of the " +
                   info->name + " block size " + std::to_string(info->block_size));
      }
      // Size = bytes per row * rows; rows * row bytes can overflow where elements did not.
      const uint64_t row = quant::row_bytes(t.type, t.dims[0]);
      if (__builtin_mul_overflow(row, elements / t.dims[0], &t.size)) {
        in_.reject("data size overflows");
      }
      t.offset = in_.read<uint64_t>("tensor data offset");  // relative until place_tensor_data
      file_.tensors.push_back(std::move(t));
      tensor_offsets_.push_back(at);
    }
  }

  void place_tensor_data() {
    const uint64_t header_end = in_.pos();
    const uint64_t a = file_.alignment;
    file_.data_offset = (header_end + a - 1) / a * a;  // header_end, a < 2^31: no overflow
    for (size_t i = 0; i < file_.tensors.size(); ++i) {
      TensorInfo& t = file_.tensors[i];
      in_.set_context("tensor " + quoted(t.name), tensor_offsets_[i]);
      if (t.offset % a != 0) {
        in_.reject("data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                   std::to_string(a));
      }
      const uint64_t data_bytes = file_.size > file_.data_offset ? file_.size - file_.data_offset : 0;
      if (t.offset > data_bytes || t.size > data_bytes - t.offset) {
        in_.reject("data [offset " + std::to_string(t.offset) + ", size " + std::to_string(t.size) +
                   "] extends past end of file (size " + std::to_string(file_.size) +
                   ", data section starts at " + std::to_string(file_.data_offset) + ")");
      }
      t.offset += file_.data_offset;
    }
  }

  void build_indices() {
    // Built after parsing: string_views into the vectors must not see a reallocation.
    for (size_t i = 0; i < file_.metadata.size(); ++i) {
      auto [it, fresh] = file_.key_index.emplace(file_.metadata[i].key, i);
      if (!fresh) {
        in_.set_context("metadata key " + quoted(file_.metadata[i].key), file_.metadata_offsets[i]);
        in_.reject("duplicate key (first at byte " +
                   std::to_string(file_.metadata_offsets[it->second]) + ")");
      }
    }
    for (size_t i = 0; i < file_.tensors.size(); ++i) {
      auto [it, fresh] = file_.tensor_index.emplace(file_.tensors[i].name, i);
      if (!fresh) {
        in_.set_context("tensor " + quoted(file_.tensors[i].name), tensor_offsets_[i]);
        in_.reject("duplicate tensor name (first at byte " +
                   std::to_string(tensor_offsets_[it->second]) + ")");
      }
    }
  }

  static std::string hex32(uint32_t v) {
    static const char* hex = "0123456789abcdef";
    std::string s(8, '0');
    for (int k = 7; k >= 0; --k, v >>= 4) s[size_t(k)] = hex[v & 15];
    return s;
  }

  FileData& file_;
  Cursor in_;
  uint64_t n_tensors_ = 0, n_kv_ = 0;
  uint64_t n_tensors_at_ = 0, n_kv_at_ = 0;
  std::vector<uint64_t> tensor_offsets_;
};

}  // namespace

void FileData::parse() { Parser(*this).run(); }

}  // namespace moevk::gguf
