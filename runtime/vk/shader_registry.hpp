// The SPIR-V of every shader variant, compiled at build time and embedded (see shaders/shaders.cmake).
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace moevk::vk {

struct EmbeddedShader {
  const char* name;
  const uint32_t* words;
  size_t word_count;
};

const std::vector<EmbeddedShader>& embedded_shaders();

// The SPIR-V of `name`, or an empty span when no variant has that name.
inline std::span<const uint32_t> find_shader(std::string_view name) {
  for (const auto& s : embedded_shaders())
    if (name == s.name) return {s.words, s.word_count};
  return {};
}

}  // namespace moevk::vk
