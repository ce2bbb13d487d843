// Value accessors and small helpers shared by the reader and the writer.
#include <cstring>
#include <limits>

#include "common/error.hpp"
#include "gguf/gguf.hpp"

namespace moevk::gguf {

namespace {
bool is_unsigned(ValueType t) {
  return t == ValueType::UINT8 || t == ValueType::UINT16 || t == ValueType::UINT32 ||
         t == ValueType::UINT64;
}
bool is_signed(ValueType t) {
  return t == ValueType::INT8 || t == ValueType::INT16 || t == ValueType::INT32 ||
         t == ValueType::INT64;
}
}  // namespace

std::optional<uint64_t> Value::as_uint() const {
  if (is_unsigned(type)) return u;
  if (is_signed(type) && i >= 0) return uint64_t(i);
  return std::nullopt;
}

std::optional<int64_t> Value::as_int() const {
  if (is_signed(type)) return i;
  if (is_unsigned(type) && u <= uint64_t(std::numeric_limits<int64_t>::max())) return int64_t(u);
  return std::nullopt;
}

std::optional<double> Value::as_float() const {
  if (type == ValueType::FLOAT32 || type == ValueType::FLOAT64) return f;
  if (is_unsigned(type)) return double(u);
  if (is_signed(type)) return double(i);
  return std::nullopt;
}

Value Value::array_of(ValueType element_type) {
  Value v;
  v.type = ValueType::ARRAY;
  v.element_type = element_type;
  return v;
}

uint64_t Value::array_size() const {
  if (type != ValueType::ARRAY) return 0;
  if (element_type == ValueType::STRING) return strings.size();
  if (element_type == ValueType::ARRAY) return arrays.size();
  const uint64_t size = value_type_size(element_type);
  return size ? packed.size() / size : 0;
}

namespace {
template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
}  // namespace

Value Value::element(uint64_t k) const {
  require(type == ValueType::ARRAY, MOEVK_ERROR_INVALID_ARGUMENT,
          std::string("gguf: element() of a ") + value_type_name(type) + ", not an array");
  require(k < array_size(), MOEVK_ERROR_INVALID_ARGUMENT,
          "gguf: array element " + std::to_string(k) + " of " + std::to_string(array_size()));
  if (element_type == ValueType::ARRAY) return arrays[size_t(k)];
  Value e;
  e.type = element_type;
  if (element_type == ValueType::STRING) {
    e.s = strings[size_t(k)];
    return e;
  }
  const uint8_t* p = packed.data() + k * value_type_size(element_type);
  switch (element_type) {
    case ValueType::UINT8: e.u = load<uint8_t>(p); break;
    case ValueType::INT8: e.i = load<int8_t>(p); break;
    case ValueType::UINT16: e.u = load<uint16_t>(p); break;
    case ValueType::INT16: e.i = load<int16_t>(p); break;
    case ValueType::UINT32: e.u = load<uint32_t>(p); break;
    case ValueType::INT32: e.i = load<int32_t>(p); break;
    case ValueType::UINT64: e.u = load<uint64_t>(p); break;
    case ValueType::INT64: e.i = load<int64_t>(p); break;
    case ValueType::FLOAT32: e.f = load<float>(p); break;
    case ValueType::FLOAT64: e.f = load<double>(p); break;
    case ValueType::BOOL: e.u = *p != 0; break;
    case ValueType::STRING: case ValueType::ARRAY: break;  // handled above
  }
  return e;
}

namespace {
template <typename T>
void store(std::vector<uint8_t>& packed, T v) {
  const size_t at = packed.size();
  packed.resize(at + sizeof v);
  std::memcpy(packed.data() + at, &v, sizeof v);
}
}  // namespace

void Value::append(const Value& e) {
  require(type == ValueType::ARRAY, MOEVK_ERROR_INVALID_ARGUMENT,
          std::string("gguf: append() to a ") + value_type_name(type) + ", not an array");
  require(e.type == element_type, MOEVK_ERROR_INVALID_ARGUMENT,
          std::string("gguf: a ") + value_type_name(e.type) + " element in an array of " +
              value_type_name(element_type));
  switch (e.type) {
    case ValueType::UINT8: store<uint8_t>(packed, uint8_t(e.u)); break;
    case ValueType::INT8: store<int8_t>(packed, int8_t(e.i)); break;
    case ValueType::UINT16: store<uint16_t>(packed, uint16_t(e.u)); break;
    case ValueType::INT16: store<int16_t>(packed, int16_t(e.i)); break;
    case ValueType::UINT32: store<uint32_t>(packed, uint32_t(e.u)); break;
    case ValueType::INT32: store<int32_t>(packed, int32_t(e.i)); break;
    case ValueType::UINT64: store<uint64_t>(packed, e.u); break;
    case ValueType::INT64: store<int64_t>(packed, e.i); break;
    case ValueType::FLOAT32: store<float>(packed, float(e.f)); break;
    case ValueType::FLOAT64: store<double>(packed, e.f); break;
    case ValueType::BOOL: store<uint8_t>(packed, e.u != 0 ? 1 : 0); break;
    case ValueType::STRING: strings.push_back(e.s); break;
    case ValueType::ARRAY: arrays.push_back(e); break;
  }
}

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::UINT8: return "uint8";
    case ValueType::INT8: return "int8";
    case ValueType::UINT16: return "uint16";
    case ValueType::INT16: return "int16";
    case ValueType::UINT32: return "uint32";
    case ValueType::INT32: return "int32";
    case ValueType::FLOAT32: return "float32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "string";
    case ValueType::ARRAY: return "array";
    case ValueType::UINT64: return "uint64";
    case ValueType::INT64: return "int64";
    case ValueType::FLOAT64: return "float64";
  }
  return "unknown";
}

uint64_t value_type_size(ValueType t) {
  switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
    case ValueType::UINT16: case ValueType::INT16: return 2;
    case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
    case ValueType::UINT64: case ValueType::INT64: case ValueType::FLOAT64: return 8;
    case ValueType::STRING: case ValueType::ARRAY: return 0;
  }
  return 0;
}

uint64_t TensorInfo::elements() const {
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;  // the reader and writer reject products that overflow
  return n;
}

}  // namespace moevk::gguf
