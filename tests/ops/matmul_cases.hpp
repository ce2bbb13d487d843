// What the dense product tests share (matmul_test.cpp, matmul_products_test.cpp): the weight
// types MatMul computes and the integer-dot path's tolerance term.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "quant/types.hpp"

namespace moevk::test::matmul {

using quant::Type;

inline constexpr Type kTypes[] = {Type::F32,    Type::F16,     Type::BF16,   Type::Q8_0,    Type::Q4_0,
                                  Type::Q4_1,   Type::Q5_0,    Type::Q5_1,   Type::Q2_K,    Type::Q3_K,
                                  Type::Q4_K,   Type::Q5_K,    Type::Q6_K,   Type::IQ4_NL,  Type::IQ4_XS,
                                  Type::IQ2_XXS, Type::IQ2_XS, Type::IQ2_S,  Type::IQ3_XXS, Type::IQ3_S,
                                  Type::IQ1_S,  Type::IQ1_M};

inline uint32_t block_of(Type t) { return std::max(8u, quant::type_info(t).block_size); }

// The dot path quantizes each 32-block of x to int8 with d = max|x| / 127: each element moves by
// at most d / 2, so a product by at most sum |w| * d / 2 (1% added for f32 rounding of d). The
// half-steps per 32-block of x (a trailing 0 for the index past the last), zeros when `dot` is off.
inline std::vector<double> int8_half_steps(const std::vector<double>& x, bool dot) {
  std::vector<double> step(x.size() / 32 + 1, 0.0);
  for (size_t c0 = 0; dot && c0 + 32 <= x.size(); c0 += 32) {
    double amax = 0;
    for (size_t i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[c0 + i]));
    step[c0 / 32] = amax / 127.0 / 2.0 * 1.01;
  }
  return step;
}

}  // namespace moevk::test::matmul
