// Cooperative-matrix fragments (16x16x16, f16 operands, f32 accumulators, subgroup scope) behind
// macros, so one kernel source builds two ways:
//   default          GL_NV_cooperative_matrix: the fragments live in registers spread over a
//                    subgroup of 32 (the op checks the device's subgroup size and shapes).
//   COOPMAT_EMULATE  the same operations, done with plain arithmetic by the 32 invocations of a
//                    "virtual subgroup" (local invocations 32s..32s+31), each holding 8 elements
//                    of every accumulator. Runs on any device with fp16 arithmetic (lavapipe), so
//                    the kernels' tiling, offsets, strides and layouts are tested in CI; only the
//                    matrix units themselves are not.
// Rules the kernels keep (both builds rely on them):
//   - every COOP_* use is in control flow uniform over the workgroup;
//   - operands are loaded from shared arrays of float16_t, accumulators stored to shared float
//     arrays; the kernel's own barrier() makes the source tiles visible before the loads and the
//     stored results before anyone reads them (the emulation adds no barriers of its own);
//   - a source tile is not rewritten between COOP_LOAD_* and the COOP_MMA that uses it (the
//     emulation reads the source at COOP_MMA, not at the load);
//   - fragment indices are constants or [[unroll]]ed loop indices.
// Element (r, c) of a fragment loaded or stored at (offset, stride): row-major (col_major false)
// SRC[offset + r * stride + c], column-major SRC[offset + c * stride + r]; A is 16 (M) x 16 (K),
// B is 16 (K) x 16 (N), C is 16 (M) x 16 (N): coopMatLoadNV / coopMatStoreNV's convention.
// Provides:
//   COOP_SUBGROUP                                    this invocation's subgroup in the workgroup
//   COOP_LOCALS(NA, NB, NC)                          at function scope: NA A, NB B, NC C fragments
//   COOP_ZERO(c)                                     C[c] = 0
//   COOP_LOAD_A(i, SRC, offset, stride, col_major)   A[i] = tile of SRC
//   COOP_LOAD_B(j, SRC, offset, stride, col_major)   B[j] = tile of SRC
//   COOP_MMA(c, SRC_A, i, SRC_B, j)                  C[c] += A[i] * B[j] (A[i] loaded from SRC_A,
//                                                    B[j] from SRC_B: the emulation reads them there)
//   COOP_STORE(c, DST, offset, stride, col_major)    tile of DST = C[c]
#ifndef MOEVK_COOPMAT_GLSL
#define MOEVK_COOPMAT_GLSL

#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require

#ifdef COOPMAT_EMULATE

#define COOP_SUBGROUP (gl_LocalInvocationIndex / 32u)
#define COOP_LANE (gl_LocalInvocationIndex % 32u)

// A loaded fragment is remembered as (offset, stride, column-major) into its source tile.
uint coop_at(uvec3 ref, uint r, uint c) { return ref.x + (ref.z != 0u ? c * ref.y + r : r * ref.y + c); }

#define COOP_LOCALS(NA, NB, NC) \
  uvec3 coop_a[NA];             \
  uvec3 coop_b[NB];             \
  float coop_c[NC][8]
#define COOP_ZERO(c) \
  [[unroll]] for (uint coop_q = 0u; coop_q < 8u; ++coop_q) coop_c[c][coop_q] = 0.0
#define COOP_LOAD_A(i, SRC, offset, stride, col_major) coop_a[i] = uvec3((offset), (stride), (col_major) ? 1u : 0u)
#define COOP_LOAD_B(j, SRC, offset, stride, col_major) coop_b[j] = uvec3((offset), (stride), (col_major) ? 1u : 0u)
// Lane l holds elements l + 32q (q < 8) of the 16 x 16 row-major fragment: row (l + 32q) / 16.
#define COOP_MMA(c, SRC_A, i, SRC_B, j)                                                        \
  [[dont_unroll]] for (uint coop_q = 0u; coop_q < 8u; ++coop_q) {                                \
    const uint coop_e = COOP_LANE + 32u * coop_q, coop_r = coop_e / 16u, coop_n = coop_e % 16u; \
    float coop_sum = 0.0;                                                                      \
    for (uint coop_k = 0u; coop_k < 16u; ++coop_k)                                             \
      coop_sum += float(SRC_A[coop_at(coop_a[i], coop_r, coop_k)]) *                           \
                  float(SRC_B[coop_at(coop_b[j], coop_k, coop_n)]);                            \
    coop_c[c][coop_q] += coop_sum;                                                             \
  }
#define COOP_STORE(c, DST, offset, stride, col_major)                                          \
  [[dont_unroll]] for (uint coop_q = 0u; coop_q < 8u; ++coop_q) {                                \
    const uint coop_e = COOP_LANE + 32u * coop_q, coop_r = coop_e / 16u, coop_n = coop_e % 16u; \
    DST[coop_at(uvec3((offset), (stride), (col_major) ? 1u : 0u), coop_r, coop_n)] = coop_c[c][coop_q]; \
  }

#else  // GL_NV_cooperative_matrix

#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require

#define COOP_SUBGROUP gl_SubgroupID
#define COOP_LOCALS(NA, NB, NC)                      \
  fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> coop_a[NA]; \
  fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> coop_b[NB]; \
  fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> coop_c[NC]
#define COOP_ZERO(c) coop_c[c] = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0)
#define COOP_LOAD_A(i, SRC, offset, stride, col_major) coopMatLoadNV(coop_a[i], SRC, (offset), (stride), col_major)
#define COOP_LOAD_B(j, SRC, offset, stride, col_major) coopMatLoadNV(coop_b[j], SRC, (offset), (stride), col_major)
#define COOP_MMA(c, SRC_A, i, SRC_B, j) coop_c[c] = coopMatMulAddNV(coop_a[i], coop_b[j], coop_c[c])
#define COOP_STORE(c, DST, offset, stride, col_major) coopMatStoreNV(coop_c[c], DST, (offset), (stride), col_major)

#endif
#endif
