# Turns a SPIR-V binary into a C++ array of 32-bit words (cmake -P; SPV, OUT, NAME given).
file(READ ${SPV} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR words "${n} / 8")
string(REGEX REPLACE "(..)(..)(..)(..)" "0x\\4\\3\\2\\1u," body "${hex}")
file(WRITE ${OUT} "// generated from ${NAME}.spv by cmake/embed_spirv.cmake\n#include <cstdint>\n#include <cstddef>\nnamespace moevk::vk::embedded {\nextern const uint32_t ${NAME}_spv[] = {${body}};\nextern const size_t ${NAME}_spv_words = ${words};\n}\n")
