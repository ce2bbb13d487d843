// Builds GGUF bytes field by field, so tests can write valid files and break exactly one field.
// Kept independent of gguf::Writer: the reader is tested against bytes laid out by hand from the
// format description, not against our own writer.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace moevk::test {

class GgufBuilder {
 public:
  std::vector<uint8_t> bytes;

  size_t size() const { return bytes.size(); }

  GgufBuilder& raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), b, b + n);
    return *this;
  }
  template <typename T>
  GgufBuilder& put(T v) { return raw(&v, sizeof v); }
  GgufBuilder& u8(uint8_t v) { return put(v); }
  GgufBuilder& u32(uint32_t v) { return put(v); }
  GgufBuilder& u64(uint64_t v) { return put(v); }
  GgufBuilder& str(const std::string& s) {
    u64(s.size());
    return raw(s.data(), s.size());
  }

  // "GGUF", version, tensor count, metadata count.
  GgufBuilder& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    raw("GGUF", 4);
    u32(version);
    u64(n_tensors);
    return u64(n_kv);
  }
  // Metadata entries (type ids: uint32 4, string 8, array 9).
  GgufBuilder& kv_u32(const std::string& key, uint32_t v) { return str(key).u32(4).u32(v); }
  GgufBuilder& kv_string(const std::string& key, const std::string& v) { return str(key).u32(8).str(v); }
  // Tensor info: name, n_dims, ne[...], type, offset relative to the data section.
  GgufBuilder& tensor(const std::string& name, const std::vector<uint64_t>& dims, uint32_t type,
                      uint64_t offset) {
    str(name).u32(uint32_t(dims.size()));
    for (uint64_t d : dims) u64(d);
    return u32(type).u64(offset);
  }
  GgufBuilder& pad(size_t alignment = 32) {
    while (bytes.size() % alignment != 0) bytes.push_back(0);
    return *this;
  }
  GgufBuilder& fill(size_t n, uint8_t value = 0) {
    bytes.insert(bytes.end(), n, value);
    return *this;
  }
};

}  // namespace moevk::test
