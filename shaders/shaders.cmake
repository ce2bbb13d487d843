# Every shader variant, one line each: moevk_shader(<variant name> <source under shaders/> [DEFINES ...]).
# Data types are chosen by DEFINES (one SPIR-V per variant); workgroup/tile sizes are
# specialization constants set by the op at pipeline creation, not listed here.
# Shared code lives in shaders/common/*.glsl (on the include path).

# util
moevk_shader(reduce_sum_f32 util/reduce_sum.comp)

# expert statistics (runtime/ops/expert_histogram.cpp)
moevk_shader(expert_histogram moe/expert_histogram.comp)
