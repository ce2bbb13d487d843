// libFuzzer target: the safetensors header parser and the float reads it allows. Any input must
// end in a parsed file or a moevk::Error, never a crash or an out-of-bounds read.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/error.hpp"
#include "convert/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto file = moevk::convert::SafetensorsFile::from_memory({data, size}, "fuzz");
    std::vector<float> values;
    for (const auto& t : file->tensors()) {
      const uint64_t n = t.elements() < 4096 ? t.elements() : 4096;
      values.resize(n);
      try {
        t.read_f32(t.elements() - n, n, values.data());
      } catch (const moevk::Error&) {
      }
    }
  } catch (const moevk::Error&) {
  }
  return 0;
}
