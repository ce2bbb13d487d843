// libFuzzer target for the GGUF reader: parse arbitrary bytes, then touch everything a caller
// could touch (every metadata value, recursively, and every byte of every tensor's data span).
// Small tensors are also dequantized, which runs every block decoder on arbitrary bytes.
// Any moevk::Error is a correct rejection; crashes, sanitizer reports, leaks and timeouts are bugs.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/error.hpp"
#include "gguf/gguf.hpp"

namespace {

volatile uint64_t g_sink;  // keeps the reads from being optimized away

uint64_t touch(const moevk::gguf::Value& v) {
  uint64_t h = uint64_t(v.type) + v.u + uint64_t(v.i) + v.s.size();
  for (char c : v.s) h = h * 31 + static_cast<unsigned char>(c);
  if (auto u = v.as_uint()) h += *u;
  if (auto i = v.as_int()) h += uint64_t(*i);
  if (auto f = v.as_float()) h += uint64_t(*f != 0);
  for (uint8_t b : v.packed) h = h * 3 + b;
  for (const auto& element : v.strings) h = h * 5 + element.size();
  for (const auto& element : v.arrays) h = h * 7 + touch(element);
  // element() decodes packed scalars: every one must be in range and of the array's type.
  for (uint64_t k = 0; k < v.array_size(); ++k) {
    const moevk::gguf::Value e = v.element(k);
    if (e.type != v.element_type) __builtin_trap();
    h += e.u + uint64_t(e.i) + e.s.size();
  }
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto file = moevk::gguf::File::from_memory({data, size}, "fuzz.gguf");
    uint64_t h = file->version() + file->alignment() + file->data_offset();
    for (const auto& kv : file->metadata()) {
      h += touch(kv.value) + kv.key.size();
      if (file->find(kv.key) == nullptr) __builtin_trap();  // every key must be findable
      try {
        h += file->get_uint(kv.key).value_or(0);
        h += uint64_t(file->get_float(kv.key).value_or(0) != 0);
        h += file->get_string(kv.key).value_or("").size();
        h += file->get_bool(kv.key).value_or(false);
      } catch (const moevk::Error&) {
        // a typed getter rejecting a value of another type is expected
      }
    }
    for (const auto& t : file->tensors()) {
      if (file->find_tensor(t.name) != &t) __builtin_trap();
      const auto span = file->tensor_data(t);
      if (span.size() != t.size || t.elements() == 0) __builtin_trap();
      for (uint8_t byte : span) h += byte;
      if (t.elements() <= 4096 && moevk::quant::type_info(t.type).can_dequantize) {
        std::vector<float> values(t.elements());
        moevk::quant::dequantize(t.type, span.data(), values.data(), values.size());
        for (float v : values) h += uint64_t(v == v);
      }
    }
    g_sink = h;
  } catch (const moevk::Error&) {
  }
  return 0;
}
