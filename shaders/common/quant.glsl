// Weight decoding for every matmul weight type, one decoder per type behind a define, bit-exact
// with ggml's block layouts (runtime/quant/blocks.hpp, CPU reference runtime/quant/dequant.cpp).
//
// Interface
//   Before including, the includer
//     - defines exactly one of WEIGHT_F32 WEIGHT_F16 WEIGHT_BF16 WEIGHT_Q8_0 WEIGHT_Q4_0 WEIGHT_Q4_1
//       WEIGHT_Q5_0 WEIGHT_Q5_1 WEIGHT_Q2_K WEIGHT_Q3_K WEIGHT_Q4_K WEIGHT_Q5_K WEIGHT_Q6_K
//       WEIGHT_IQ4_NL WEIGHT_IQ4_XS WEIGHT_IQ2_XXS WEIGHT_IQ2_XS WEIGHT_IQ2_S WEIGHT_IQ3_XXS
//       WEIGHT_IQ3_S WEIGHT_IQ1_S WEIGHT_IQ1_M (shaders.cmake),
//     - declares the weights as a uint array and defines WEIGHT_WORD(i) to read word i, e.g.
//         layout(std430, binding = 0) readonly buffer Weights { uint weight_words[]; };
//         #define WEIGHT_WORD(i) weight_words[(i)]
//       and optionally WEIGHT_UVEC2(i) reading the same buffer as uvec2 (bytes.glsl), for
//       64-bit loads of 8-aligned quant bytes,
//   It gets
//     QK             elements per block. The float types use a virtual block of 8 elements, so
//                    every type decodes in groups of 8 and a row is a whole number of blocks
//                    (rows of F32/F16/BF16 must have cols % 8 == 0; the ops check this).
//     BLOCK_BYTES    bytes per block (a row of cols elements is cols / QK * BLOCK_BYTES bytes).
//     QBLOCK quant_block(uint row_byte, uint b)
//                    block b of the row starting at byte row_byte, as the decoders below take
//                    it: the byte row_byte + b * BLOCK_BYTES (QBLOCK is uint), but the device
//                    layout of Q4_0, IQ4_NL, Q8_0 and Q6_K puts a row's f16 scales after its
//                    quants (QUANT_SPLIT_BODY), so their QBLOCK is uvec2 and they need the row
//                    length: the includer defines QUANT_ROW_COLS (an expression, e.g. pc.cols).
//     void dequant8(QBLOCK block, uint e, out vec4 v0, out vec4 v1)
//                    elements e..e+3 -> v0, e+4..e+7 -> v1 of the block `block`
//                    (e % 8 == 0, e < QK). Consecutive elements, so the activations are plain
//                    vec4 loads; 8 at a time so quant bytes come as two words per call.
//   For the 2- to 6-bit types (Q2_K Q3_K Q4_0 Q4_1 Q5_0 Q5_1 IQ4_NL IQ4_XS Q4_K Q5_K Q6_K), where two
//   runs of 8 elements share their quant bytes (low and high nibbles; neighbouring 2-bit fields
//   for Q2_K and Q3_K), it also defines QUANT_PAIR_STRIDE
//   and
//     void dequant8x2(QBLOCK block, uint e, out vec4 a0, out vec4 a1, out vec4 b0, out vec4 b1)
//                    elements e..e+7 -> a0,a1 and e+QUANT_PAIR_STRIDE..+7 -> b0,b1, reading the
//                    shared bytes once. Valid e: e % 8 == 0 and (e / QUANT_PAIR_STRIDE) even;
//                    the p-th of the QK/16 runs of a block starts at
//                    (p / (S/8)) * 2S + (p % (S/8)) * 8 with S = QUANT_PAIR_STRIDE.
//   For the integer-dot path (types whose 32-element sub-blocks are affine in an int8: Q8_0,
//   Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS, Q4_K, Q5_K, and the codebook types below; Q3_K and
//   Q6_K, symmetric with a scale per 16 elements; Q2_K, a scale and a min per 16) it also defines QUANT_HAS_INT8 and
//     uvec2 quant_int8x8(QBLOCK block, uint e)   elements e..e+7 as signed int8 q, 4 per uint,
//                                                little-endian byte order
//     void quant_affine32(QBLOCK block, uint s, out float scale, out float offset)
//                                                elements 32s..32s+31 are scale * q + offset;
//                                                with QUANT_INT8_HALVES (Q2_K, Q3_K, Q6_K)
//                                                elements 32s..32s+15 are scale * q,
//                                                32s+16..32s+31 offset * q (the two 16-element
//                                                scales), less, with QUANT_INT8_HALF_MINS (Q2_K):
//     void quant_mins32(QBLOCK block, uint s, out float min_lo, out float min_hi)
//                                                each half's min
//   and, for Q4_0, Q4_K, Q5_K and Q6_K (whose two neighbouring pair runs, g and g + 1 for an
//   even g, read 16 contiguous quant bytes), QUANT_PAIR16 and
//     void dequant16x2(QBLOCK block, uint e, out vec4 a[4], out vec4 b[4])
//                    elements e..e+15 -> a, e+QUANT_PAIR_STRIDE..+15 -> b (e the even run's
//                    first element, a multiple of 16), the quant bytes one 128-bit load where
//                    16-aligned (weight_u128_wide); float dot16(vec4 a[4], vec4 x[4]) sums a
//                    16-element product.
//   and, for the symmetric Q8_0 / Q4_0 only, float quant_scale(QBLOCK block) (the block's d).
//   The codebook types IQ1_S IQ1_M IQ2_XXS IQ2_XS IQ2_S IQ3_XXS IQ3_S (quant_iq.glsl) also read
//   their codebook from a storage buffer at set 1, binding 0 (vk::PipelineDesc::table; the op sets
//   it from ops::weight_table), have the int8 form (signed levels; IQ2_XS, IQ2_S and IQ1_M with
//   QUANT_INT8_HALVES) and no pair runs.
//   Block byte offsets (and the split types' body and d bytes) need only be even (blocks are
//   packed; 16-bit fields sit at even offsets); F32 blocks must be 4-aligned. Reads stay inside
//   the block's bytes rounded out to whole words.
#ifndef MOEVK_QUANT_GLSL
#define MOEVK_QUANT_GLSL

#include "bytes.glsl"

// The 4 bytes of w as unsigned / signed values.
vec4 unpack_u8x4(uint w) { return vec4(uvec4(w, w >> 8u, w >> 16u, w >> 24u) & 0xFFu); }
vec4 unpack_s8x4(uint w) {
  const int i = int(w);
  return vec4(bitfieldExtract(i, 0, 8), bitfieldExtract(i, 8, 8), bitfieldExtract(i, 16, 8),
              bitfieldExtract(i, 24, 8));
}
// Bits 0..3 of `bits` moved to bit 4 of bytes 0..3 (the 5th bit of Q5 quants).
uint spread_bits4_to_bit4(uint bits) {
  return ((bits & 1u) | ((bits & 2u) << 7u) | ((bits & 4u) << 14u) | ((bits & 8u) << 21u)) << 4u;
}

#if defined(WEIGHT_IQ4_NL) || defined(WEIGHT_IQ4_XS)
// The IQ4 codebook (non-linear 4-bit levels), as floats, and as int8 bytes (two's complement)
// for the integer-dot path; lookups of the 4 codes in the low nibbles of w's bytes.
const float kIQ4NLValues[16] = float[16](-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0,
                                         1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);
uint iq4nl_int8x4(uint q) {
  uint packed = 0u;
  [[unroll]] for (uint i = 0u; i < 4u; ++i)
    packed |= (uint(int(kIQ4NLValues[(q >> (8u * i)) & 0xFu])) & 0xFFu) << (8u * i);
  return packed;
}
vec4 iq4nl_lookup(uint q) {
  return vec4(kIQ4NLValues[q & 0xFu], kIQ4NLValues[(q >> 8u) & 0xFu], kIQ4NLValues[(q >> 16u) & 0xFu],
              kIQ4NLValues[(q >> 24u) & 0xFu]);
}
#endif


#if defined(WEIGHT_F32)
#define QK 8u
#define BLOCK_BYTES 32u
void dequant8(uint block, uint e, out vec4 v0, out vec4 v1) {
  const uint w = (block >> 2u) + e;  // block is 4-aligned for f32 rows; e is 0 (QK == 8)
  v0 = uintBitsToFloat(uvec4(WEIGHT_WORD(w), WEIGHT_WORD(w + 1u), WEIGHT_WORD(w + 2u), WEIGHT_WORD(w + 3u)));
  v1 = uintBitsToFloat(uvec4(WEIGHT_WORD(w + 4u), WEIGHT_WORD(w + 5u), WEIGHT_WORD(w + 6u), WEIGHT_WORD(w + 7u)));
}

#elif defined(WEIGHT_F16)
#define QK 8u
#define BLOCK_BYTES 16u
void dequant8(uint block, uint e, out vec4 v0, out vec4 v1) {
  const uint w = (block + 2u * e) >> 2u;  // rows of 8k halves stay 4-aligned
  v0 = vec4(unpackHalf2x16(WEIGHT_WORD(w)), unpackHalf2x16(WEIGHT_WORD(w + 1u)));
  v1 = vec4(unpackHalf2x16(WEIGHT_WORD(w + 2u)), unpackHalf2x16(WEIGHT_WORD(w + 3u)));
}

#elif defined(WEIGHT_BF16)
#define QK 8u
#define BLOCK_BYTES 16u
vec2 unpack_bf16x2(uint w) { return uintBitsToFloat(uvec2(w << 16u, w & 0xFFFF0000u)); }
void dequant8(uint block, uint e, out vec4 v0, out vec4 v1) {
  const uint w = (block + 2u * e) >> 2u;
  v0 = vec4(unpack_bf16x2(WEIGHT_WORD(w)), unpack_bf16x2(WEIGHT_WORD(w + 1u)));
  v1 = vec4(unpack_bf16x2(WEIGHT_WORD(w + 2u)), unpack_bf16x2(WEIGHT_WORD(w + 3u)));
}

#elif defined(WEIGHT_Q8_0)
// GGUF block { f16 d; int8 qs[32]; }, x = d * q; on the device the d of a row's blocks follow
// its quants (QUANT_SPLIT_BODY, below).
#define QK 32u
#define BLOCK_BYTES 34u
#define QUANT_SPLIT_BODY 32u
#define QUANT_HAS_INT8 1
float quant_scale(uvec2 block) { return weight_f16(block.y); }
uvec2 quant_int8x8(uvec2 block, uint e) { return weight_u64_wide(block.x + e); }
void quant_affine32(uvec2 block, uint s, out float scale, out float offset) {
  scale = weight_f16(block.y);
  offset = 0.0;
}
void dequant8(uvec2 block, uint e, out vec4 v0, out vec4 v1) {
  const float d = weight_f16(block.y);
  const uvec2 q = weight_u64_wide(block.x + e);
  v0 = unpack_s8x4(q.x) * d;
  v1 = unpack_s8x4(q.y) * d;
}

#elif defined(WEIGHT_Q4_0) || defined(WEIGHT_IQ4_NL)
// GGUF block { f16 d; u8 qs[16]; }: element j < 16 is the low nibble of qs[j], j >= 16 the high
// nibble of qs[j - 16]. Q4_0: x = d * (q - 8); IQ4_NL: x = d * codebook[q]. On the device the
// d of a row's blocks follow its quants (QUANT_SPLIT_BODY, below).
#define QK 32u
#define BLOCK_BYTES 18u
#define QUANT_SPLIT_BODY 16u
#define QUANT_PAIR_STRIDE 16u
uvec2 nibbles8(uvec2 block, uint e) {
  return (weight_u64_wide(block.x + (e & 15u)) >> ((e >> 4u) * 4u)) & 0x0F0F0F0Fu;
}
#define QUANT_HAS_INT8 1
void quant_affine32(uvec2 block, uint s, out float scale, out float offset) {
  scale = weight_f16(block.y);
  offset = 0.0;
}
#if defined(WEIGHT_Q4_0)
float quant_scale(uvec2 block) { return weight_f16(block.y); }
uvec2 quant_int8x8(uvec2 block, uint e) {
  // q - 8 per byte without borrows between bytes: set bit 7, subtract, flip bit 7 back.
  return ((nibbles8(block, e) | 0x80808080u) - 0x08080808u) ^ 0x80808080u;
}
vec4 q4_values(uint q) { return unpack_u8x4(q) - 8.0; }
#else
uvec2 quant_int8x8(uvec2 block, uint e) {
  const uvec2 q = nibbles8(block, e);
  return uvec2(iq4nl_int8x4(q.x), iq4nl_int8x4(q.y));
}
vec4 q4_values(uint q) { return iq4nl_lookup(q); }
#endif
void dequant8(uvec2 block, uint e, out vec4 v0, out vec4 v1) {
  const float d = weight_f16(block.y);
  const uvec2 q = nibbles8(block, e);
  v0 = d * q4_values(q.x);
  v1 = d * q4_values(q.y);
}
void dequant8x2(uvec2 block, uint e, out vec4 a0, out vec4 a1, out vec4 b0, out vec4 b1) {
  const float d = weight_f16(block.y);
  const uvec2 q = weight_u64_wide(block.x + e);
  const uvec2 lo = q & 0x0F0F0F0Fu, hi = (q >> 4u) & 0x0F0F0F0Fu;
  a0 = d * q4_values(lo.x);
  a1 = d * q4_values(lo.y);
  b0 = d * q4_values(hi.x);
  b1 = d * q4_values(hi.y);
}
#if defined(WEIGHT_Q4_0)  // IQ4_NL's codebook lookups, twice as many per step, compile slowly on llvmpipe
#define QUANT_PAIR16 1
void dequant16x2(uvec2 block, uint e, out vec4 a[4], out vec4 b[4]) {  // e is 0: the whole block
  const float d = weight_f16(block.y);
  const uvec4 q = weight_u128_wide(block.x + e);
  [[unroll]] for (uint i = 0u; i < 4u; ++i) {
    a[i] = d * q4_values(q[i] & 0x0F0F0F0Fu);
    b[i] = d * q4_values((q[i] >> 4u) & 0x0F0F0F0Fu);
  }
}
#endif

#elif defined(WEIGHT_Q4_1)
// { f16 d, m; u8 qs[16]; }  nibbles as Q4_0; x = q * d + m
#define QK 32u
#define BLOCK_BYTES 20u
#define QUANT_HAS_INT8 1
uvec2 quant_int8x8(uint block, uint e) {  // nibbles 0..15 are already valid int8
  return (weight_u64(block + 4u + (e & 15u)) >> ((e >> 4u) * 4u)) & 0x0F0F0F0Fu;
}
void quant_affine32(uint block, uint s, out float scale, out float offset) {
  scale = weight_f16(block);
  offset = weight_f16(block + 2u);
}
void dequant8(uint block, uint e, out vec4 v0, out vec4 v1) {
  const float d = weight_f16(block), m = weight_f16(block + 2u);
  const uvec2 q = quant_int8x8(block, e);
  v0 = unpack_u8x4(q.x) * d + m;
  v1 = unpack_u8x4(q.y) * d + m;
}
#define QUANT_PAIR_STRIDE 16u
void dequant8x2(uint block, uint e, out vec4 a0, out vec4 a1, out vec4 b0, out vec4 b1) {
  const float d = weight_f16(block), m = weight_f16(block + 2u);
  const uvec2 q = weight_u64(block + 4u + e);
  const uvec2 lo = q & 0x0F0F0F0Fu, hi = (q >> 4u) & 0x0F0F0F0Fu;
  a0 = unpack_u8x4(lo.x) * d + m;
  a1 = unpack_u8x4(lo.y) * d + m;
  b0 = unpack_u8x4(hi.x) * d + m;
  b1 = unpack_u8x4(hi.y) * d + m;
}

#elif defined(WEIGHT_Q5_0) || defined(WEIGHT_Q5_1)
// Q5_0 { f16 d; u8 qh[4]; u8 qs[16]; } x = d * (q - 16)
// Q5_1 { f16 d, m; u8 qh[4]; u8 qs[16]; } x = q * d + m
// Low 4 bits as Q4_0; bit j of the little-endian word qh is bit 4 of element j.
#define QK 32u
#if defined(WEIGHT_Q5_0)
#define BLOCK_BYTES 22u
#define Q5_QH 2u
#else
#define BLOCK_BYTES 24u
#define Q5_QH 4u
#endif
uvec2 q5_values8(uint block, uint e) {
  const uint high_bits = (weight_u32(block + Q5_QH) >> e) & 0xFFu;
  const uvec2 low = (weight_u64(block + Q5_QH + 4u + (e & 15u)) >> ((e >> 4u) * 4u)) & 0x0F0F0F0Fu;
  return low | uvec2(spread_bits4_to_bit4(high_bits), spread_bits4_to_bit4(high_bits >> 4u));
}
#define QUANT_HAS_INT8 1
#if defined(WEIGHT_Q5_0)
uvec2 quant_int8x8(uint block, uint e) {  // q - 16 per byte, borrow-free as in Q4_0
  return ((q5_values8(block, e) | 0x80808080u) - 0x10101010u) ^ 0x80808080u;
}
void quant_affine32(uint block, uint s, out float scale, out float offset) {
  scale = weight_f16(block);
  offset = 0.0;
}
#else
uvec2 quant_int8x8(uint block, uint e) { return q5_values8(block, e); }  // 0..31
void quant_affine32(uint block, uint s, out float scale, out float offset) {
  scale = weight_f16(block);
  offset = weight_f16(block + 2u);
}
#endif
void dequant8(uint block, uint e, out vec4 v0, out vec4 v1) {
  const float d = weight_f16(block);
  const uvec2 q = q5_values8(block, e);
#if defined(WEIGHT_Q5_0)
  v0 = (unpack_u8x4(q.x) - 16.0) * d;
  v1 = (unpack_u8x4(q.y) - 16.0) * d;
#else
  const float m = weight_f16(block + 2u);
  v0 = unpack_u8x4(q.x) * d + m;
  v1 = unpack_u8x4(q.y) * d + m;
#endif
}
#define QUANT_PAIR_STRIDE 16u
void dequant8x2(uint block, uint e, out vec4 a0, out vec4 a1, out vec4 b0, out vec4 b1) {
  const float d = weight_f16(block);
  const uint qh = weight_u32(block + Q5_QH);
  const uvec2 q = weight_u64(block + Q5_QH + 4u + e);
  const uint high_lo = (qh >> e) & 0xFFu, high_hi = (qh >> (e + 16u)) & 0xFFu;
  const uvec2 lo = (q & 0x0F0F0F0Fu) | uvec2(spread_bits4_to_bit4(high_lo), spread_bits4_to_bit4(high_lo >> 4u));
  const uvec2 hi = ((q >> 4u) & 0x0F0F0F0Fu) | uvec2(spread_bits4_to_bit4(high_hi), spread_bits4_to_bit4(high_hi >> 4u));
#if defined(WEIGHT_Q5_0)
  a0 = (unpack_u8x4(lo.x) - 16.0) * d;
  a1 = (unpack_u8x4(lo.y) - 16.0) * d;
  b0 = (unpack_u8x4(hi.x) - 16.0) * d;
  b1 = (unpack_u8x4(hi.y) - 16.0) * d;
#else
  const float m = weight_f16(block + 2u);
  a0 = unpack_u8x4(lo.x) * d + m;
  a1 = unpack_u8x4(lo.y) * d + m;
  b0 = unpack_u8x4(hi.x) * d + m;
  b1 = unpack_u8x4(hi.y) * d + m;
#endif
}

#elif defined(WEIGHT_Q4_K) || defined(WEIGHT_Q5_K)
// Q4_K { f16 d, dmin; u8 scales[12]; u8 qs[128]; }
// Q5_K { f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]; }
// 8 sub-blocks of 32; sub-block j has 6-bit scale/min (get_scale_min_k4); x = d*sc*q - dmin*m.
// Element e: quant byte 32*(e/64) + e%32, low nibble for even e/32, high for odd;
// Q5_K's 5th bit is bit e/32 of qh[e%32].
#define QK 256u
#if defined(WEIGHT_Q4_K)
#define BLOCK_BYTES 144u
#define QK_QS 16u
#else
#define BLOCK_BYTES 176u
#define QK_QS 48u
#endif
void k_scale_min(uint block, uint j, out float d1, out float m1) {
  const uint s = block + 4u;
  uint sc, mn;
  if (j < 4u) {
    sc = weight_u8(s + j) & 63u;
    mn = weight_u8(s + j + 4u) & 63u;
  } else {
    const uint b = weight_u8(s + j + 4u);
    sc = (b & 0xFu) | ((weight_u8(s + j - 4u) >> 6u) << 4u);
    mn = (b >> 4u) | ((weight_u8(s + j) >> 6u) << 4u);
  }
  d1 = weight_f16(block) * float(sc);
  m1 = weight_f16(block + 2u) * float(mn);
}
// Sub-blocks j and j + 1 (j even) from the 16-byte header read as four words (d and dmin, then
// scales[0..3], [4..7], [8..11]; two 64-bit loads at 8-aligned blocks, four word loads else)
// instead of a word per byte: the pair decoders' share of loads per 16 elements drops from up
// to 8 to 2.
void k_scale_min2(uint block, uint j, out float d1, out float m1, out float d2, out float m2) {
  const uvec2 hw0 = weight_u64_wide(block), w12 = weight_u64_wide(block + 8u);
  const uint h = hw0.x, w0 = hw0.y, w1 = w12.x, w2 = w12.y;
  const vec2 dm = unpackHalf2x16(h);  // d, dmin
  uint sc, mn;  // bytes j and j + 1 of the 6-bit scales and mins, in bits 0..7 and 8..15
  if (j < 4u) {
    const uint at = j * 8u;
    sc = bitfieldExtract(w0, int(at), 16) & 0x3F3Fu;
    mn = bitfieldExtract(w1, int(at), 16) & 0x3F3Fu;
  } else {
    const uint at = (j - 4u) * 8u;
    const uint lo = bitfieldExtract(w2, int(at), 16);
    sc = (lo & 0x0F0Fu) | ((bitfieldExtract(w0, int(at), 16) >> 2u) & 0x3030u);
    mn = ((lo >> 4u) & 0x0F0Fu) | ((bitfieldExtract(w1, int(at), 16) >> 2u) & 0x3030u);
  }
  d1 = dm.x * float(sc & 0xFFu);
  d2 = dm.x * float(sc >> 8u);
  m1 = dm.y * float(mn & 0xFFu);
  m2 = dm.y * float(mn >> 8u);
}
#define QUANT_HAS_INT8 1
uvec2 quant_int8x8(uint block, uint e) {  // unsigned 4 (Q4_K) or 5 (Q5_K) bit values
  const uint j = e >> 5u, l = e & 31u;
  uvec2 q = (weight_u64_wide(block + QK_QS + 32u * (e >> 6u) + l) >> ((j & 1u) * 4u)) & 0x0F0F0F0Fu;
#if defined(WEIGHT_Q5_K)
  q |= ((weight_u64_wide(block + 16u + l) >> j) & 0x01010101u) << 4u;
#endif
  return q;
}
void quant_affine32(uint block, uint s, out float scale, out float offset) {
  float m1;
  k_scale_min(block, s, scale, m1);
  offset = -m1;
}
void dequant8(uint block, uint e, out vec4 v0, out vec4 v1) {
  float d1, m1;
  k_scale_min(block, e >> 5u, d1, m1);
  const uvec2 q = quant_int8x8(block, e);
  v0 = d1 * unpack_u8x4(q.x) - m1;
  v1 = d1 * unpack_u8x4(q.y) - m1;
}
// Sub-blocks 2i (low nibbles) and 2i+1 (high nibbles) share their 32 quant bytes.
#define QUANT_PAIR_STRIDE 32u
void dequant8x2(uint block, uint e, out vec4 a0, out vec4 a1, out vec4 b0, out vec4 b1) {
  const uint j = e >> 5u, l = e & 31u;  // j even
  float d1, m1, d2, m2;
  k_scale_min2(block, j, d1, m1, d2, m2);
  const uvec2 q = weight_u64_wide(block + QK_QS + 32u * (e >> 6u) + l);
  uvec2 lo = q & 0x0F0F0F0Fu, hi = (q >> 4u) & 0x0F0F0F0Fu;
#if defined(WEIGHT_Q5_K)
  const uvec2 h = weight_u64_wide(block + 16u + l);
  lo |= ((h >> j) & 0x01010101u) << 4u;
  hi |= ((h >> (j + 1u)) & 0x01010101u) << 4u;
#endif
  a0 = d1 * unpack_u8x4(lo.x) - m1;
  a1 = d1 * unpack_u8x4(lo.y) - m1;
  b0 = d2 * unpack_u8x4(hi.x) - m2;
  b1 = d2 * unpack_u8x4(hi.y) - m2;
}
#define QUANT_PAIR16 1
void dequant16x2(uint block, uint e, out vec4 a[4], out vec4 b[4]) {
  const uint j = e >> 5u, l = e & 31u;  // j even, l 0 or 16
  float d1, m1, d2, m2;
  k_scale_min2(block, j, d1, m1, d2, m2);
  const uvec4 q = weight_u128_wide(block + QK_QS + 32u * (e >> 6u) + l);
#if defined(WEIGHT_Q5_K)
  const uvec4 h = weight_u128_wide(block + 16u + l);
#endif
  [[unroll]] for (uint i = 0u; i < 4u; ++i) {
    uint lo = q[i] & 0x0F0F0F0Fu, hi = (q[i] >> 4u) & 0x0F0F0F0Fu;
#if defined(WEIGHT_Q5_K)
    lo |= ((h[i] >> j) & 0x01010101u) << 4u;
    hi |= ((h[i] >> (j + 1u)) & 0x01010101u) << 4u;
#endif
    a[i] = d1 * unpack_u8x4(lo) - m1;
    b[i] = d2 * unpack_u8x4(hi) - m2;
  }
}

#elif defined(WEIGHT_Q6_K)
// { u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d; }  two halves of 128; in half n, quadrant
// c = (e%128)/32, l = e%32: low 4 bits from ql[64n + l + 32(c&1)] (high nibble when c >= 2),
// bits 4..5 from qh[32n + l] >> 2c; scale scales[8n + l/16 + 2c]; x = d * sc * (q - 32). On
// the device the d of a row's blocks follow the rest (QUANT_SPLIT_BODY, below), so the 208
// bytes before d stay 8-aligned.
#define QK 256u
#define BLOCK_BYTES 210u
#define QUANT_SPLIT_BODY 208u
// The 6-bit values of elements e..e+7, 0..63 per byte.
uvec2 q6_k_values8(uvec2 block, uint e) {
  const uint n = e >> 7u, c = (e >> 5u) & 3u, l = e & 31u;
  const uvec2 low = (weight_u64_wide(block.x + 64u * n + l + 32u * (c & 1u)) >> ((c >> 1u) * 4u)) & 0x0F0F0F0Fu;
  const uvec2 high = (weight_u64_wide(block.x + 128u + 32u * n + l) >> (2u * c)) & 0x03030303u;
  return low | (high << 4u);
}
#define QUANT_HAS_INT8 1
#define QUANT_INT8_HALVES 1
uvec2 quant_int8x8(uvec2 block, uint e) {
  // q - 32 per byte without borrows between bytes: set bit 7, subtract, flip bit 7 back.
  return ((q6_k_values8(block, e) | 0x80808080u) - 0x20202020u) ^ 0x80808080u;
}
// Sub-block s = 4n + c: elements of its first 16 scale by scales[8n + 2c], the last 16 by the
// next byte (one 16-bit read: 192 + 8n + 2c is even).
void quant_affine32(uvec2 block, uint s, out float scale, out float offset) {
  const int pair = int(weight_u16(block.x + 192u + 8u * (s >> 2u) + 2u * (s & 3u)));
  const float d = weight_f16(block.y);
  scale = d * float(bitfieldExtract(pair, 0, 8));
  offset = d * float(bitfieldExtract(pair, 8, 8));
}
void dequant8(uvec2 block, uint e, out vec4 v0, out vec4 v1) {
  const uint n = e >> 7u, c = (e >> 5u) & 3u, l = e & 31u;
  const uvec2 q = q6_k_values8(block, e);
  const int sc = bitfieldExtract(int(weight_u8(block.x + 192u + 8u * n + (l >> 4u) + 2u * c)), 0, 8);
  const float ds = weight_f16(block.y) * float(sc);
  v0 = ds * (unpack_u8x4(q.x) - 32.0);
  v1 = ds * (unpack_u8x4(q.y) - 32.0);
}
// Quadrants c and c + 2 of a half share their ql bytes (low / high nibbles) and qh bytes.
#define QUANT_PAIR_STRIDE 64u
void dequant8x2(uvec2 block, uint e, out vec4 a0, out vec4 a1, out vec4 b0, out vec4 b1) {
  const uint n = e >> 7u, c = (e >> 5u) & 3u, l = e & 31u;  // c is 0 or 1
  const uvec2 q = weight_u64_wide(block.x + 64u * n + l + 32u * c);
  const uvec2 h = weight_u64_wide(block.x + 128u + 32u * n + l);
  const uvec2 lo = (q & 0x0F0F0F0Fu) | (((h >> (2u * c)) & 0x03030303u) << 4u);
  const uvec2 hi = ((q >> 4u) & 0x0F0F0F0Fu) | (((h >> (2u * c + 4u)) & 0x03030303u) << 4u);
  const uint scale_byte = block.x + 192u + 8u * n + (l >> 4u) + 2u * c;
  const float d = weight_f16(block.y);
  const float ds_lo = d * float(bitfieldExtract(int(weight_u8(scale_byte)), 0, 8));
  const float ds_hi = d * float(bitfieldExtract(int(weight_u8(scale_byte + 4u)), 0, 8));
  a0 = ds_lo * (unpack_u8x4(lo.x) - 32.0);
  a1 = ds_lo * (unpack_u8x4(lo.y) - 32.0);
  b0 = ds_hi * (unpack_u8x4(hi.x) - 32.0);
  b1 = ds_hi * (unpack_u8x4(hi.y) - 32.0);
}
#define QUANT_PAIR16 1
void dequant16x2(uvec2 block, uint e, out vec4 a[4], out vec4 b[4]) {
  const uint n = e >> 7u, c = (e >> 5u) & 3u, l = e & 31u;  // c 0 or 1, l 0 or 16: one scale each
  const uvec4 q = weight_u128_wide(block.x + 64u * n + l + 32u * c);
  const uvec4 h = weight_u128_wide(block.x + 128u + 32u * n + l);
  const uint scale_byte = block.x + 192u + 8u * n + (l >> 4u) + 2u * c;
  const float d = weight_f16(block.y);
  const float ds_lo = d * float(bitfieldExtract(int(weight_u8(scale_byte)), 0, 8));
  const float ds_hi = d * float(bitfieldExtract(int(weight_u8(scale_byte + 4u)), 0, 8));
  [[unroll]] for (uint i = 0u; i < 4u; ++i) {
    const uint lo = (q[i] & 0x0F0F0F0Fu) | (((h[i] >> (2u * c)) & 0x03030303u) << 4u);
    const uint hi = ((q[i] >> 4u) & 0x0F0F0F0Fu) | (((h[i] >> (2u * c + 4u)) & 0x03030303u) << 4u);
    a[i] = ds_lo * (unpack_u8x4(lo) - 32.0);
    b[i] = ds_hi * (unpack_u8x4(hi) - 32.0);
  }
}

#elif defined(WEIGHT_Q2_K)
// { u8 scales[16]; u8 qs[64]; f16 d; f16 dmin; }  two halves of 128; in half n, quadrant
// j = (e%128)/32, l = e%32: q = (qs[32n + l] >> 2j) & 3; scale byte s = scales[8n + 2j + l/16];
// x = d * (s & 15) * q - dmin * (s >> 4).
#define QK 256u
#define BLOCK_BYTES 84u
vec2 q2_k_d_dmin(uint block) { return unpackHalf2x16(weight_u16(block + 80u) | (weight_u16(block + 82u) << 16u)); }
void q2_k_scale(vec2 dm, uint scale_byte, out float dl, out float ml) {
  dl = dm.x * float(scale_byte & 0xFu);
  ml = dm.y * float(scale_byte >> 4u);
}
#define QUANT_HAS_INT8 1
#define QUANT_INT8_HALVES 1
#define QUANT_INT8_HALF_MINS 1
uvec2 quant_int8x8(uint block, uint e) {  // the 2-bit values 0..3, already valid int8
  const uint n = e >> 7u, j = (e >> 5u) & 3u, l = e & 31u;
  return (weight_u64(block + 16u + 32u * n + l) >> (2u * j)) & 0x03030303u;
}
// Sub-block s = 4n + j: its halves' scale bytes 8n + 2j and the next (one 16-bit read).
void quant_affine32(uint block, uint s, out float scale, out float offset) {
  const uint pair = weight_u16(block + 8u * (s >> 2u) + 2u * (s & 3u));
  const vec2 dm = q2_k_d_dmin(block);
  float unused;
  q2_k_scale(dm, pair & 0xFFu, scale, unused);
  q2_k_scale(dm, pair >> 8u, offset, unused);
}
void quant_mins32(uint block, uint s, out float min_lo, out float min_hi) {
  const uint pair = weight_u16(block + 8u * (s >> 2u) + 2u * (s & 3u));
  const vec2 dm = q2_k_d_dmin(block);
  float unused;
  q2_k_scale(dm, pair & 0xFFu, unused, min_lo);
  q2_k_scale(dm, pair >> 8u, unused, min_hi);
}
void dequant8(uint block, uint e, out vec4 v0, out vec4 v1) {
  const uint n = e >> 7u, j = (e >> 5u) & 3u, l = e & 31u;
  const uvec2 q = (weight_u64(block + 16u + 32u * n + l) >> (2u * j)) & 0x03030303u;
  float dl, ml;
  q2_k_scale(q2_k_d_dmin(block), weight_u8(block + 8u * n + 2u * j + (l >> 4u)), dl, ml);
  v0 = dl * unpack_u8x4(q.x) - ml;
  v1 = dl * unpack_u8x4(q.y) - ml;
}
// Quadrants j and j + 1 of a half share their qs bytes (bits 2j and 2j + 2); their scale bytes
// are two apart, in one word.
#define QUANT_PAIR_STRIDE 32u
void dequant8x2(uint block, uint e, out vec4 a0, out vec4 a1, out vec4 b0, out vec4 b1) {
  const uint n = e >> 7u, j = (e >> 5u) & 3u, l = e & 31u;  // j is 0 or 2
  const uvec2 q = weight_u64(block + 16u + 32u * n + l);
  const uvec2 qa = (q >> (2u * j)) & 0x03030303u, qb = (q >> (2u * j + 2u)) & 0x03030303u;
  const uint scales = weight_u32(block + 8u * n + 2u * j + (l >> 4u));
  const vec2 dm = q2_k_d_dmin(block);
  float dla, mla, dlb, mlb;
  q2_k_scale(dm, scales & 0xFFu, dla, mla);
  q2_k_scale(dm, (scales >> 16u) & 0xFFu, dlb, mlb);
  a0 = dla * unpack_u8x4(qa.x) - mla;
  a1 = dla * unpack_u8x4(qa.y) - mla;
  b0 = dlb * unpack_u8x4(qb.x) - mlb;
  b1 = dlb * unpack_u8x4(qb.y) - mlb;
}

#elif defined(WEIGHT_Q3_K)
// { u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d; }  two halves of 128; in half n, quadrant
// j = (e%128)/32, l = e%32: q = ((qs[32n + l] >> 2j) & 3) - (bit 4n + j of hmask[l] ? 0 : 4);
// scale s = 8n + 2j + l/16, six bits: low 4 from scales[s % 8] (high nibble when s >= 8), high 2
// from scales[8 + s % 4] >> 2 (s / 4), minus 32; x = d * scale * q.
#define QK 256u
#define BLOCK_BYTES 110u
float q3_k_scale(uint block, uint s) {
  const uint low = (weight_u8(block + 96u + (s & 7u)) >> (4u * (s >> 3u))) & 0xFu;
  const uint high = (weight_u8(block + 104u + (s & 3u)) >> (2u * (s >> 2u))) & 3u;
  return weight_f16(block + 108u) * float(int(low | (high << 4u)) - 32);
}
// q | 4 * h - 4: h set keeps q, h clear subtracts 4 (q < 4).
vec4 q3_k_values(uint q, uint h) { return unpack_u8x4(q | (h << 2u)) - 4.0; }
#define QUANT_HAS_INT8 1
#define QUANT_INT8_HALVES 1
uvec2 quant_int8x8(uint block, uint e) {
  const uint n = e >> 7u, j = (e >> 5u) & 3u, l = e & 31u;
  const uvec2 q = (weight_u64(block + 32u + 32u * n + l) >> (2u * j)) & 0x03030303u;
  const uvec2 h = (weight_u64(block + l) >> (4u * n + j)) & 0x01010101u;
  // (q | 4h) - 4 per byte, in [-4, 3], without borrows between bytes (as Q6_K's).
  return (((q | (h << 2u)) | 0x80808080u) - 0x04040404u) ^ 0x80808080u;
}
// Sub-block s = 4n + j: its two 16-element scales, 8n + 2j and the next.
void quant_affine32(uint block, uint s, out float scale, out float offset) {
  const uint first = 8u * (s >> 2u) + 2u * (s & 3u);
  scale = q3_k_scale(block, first);
  offset = q3_k_scale(block, first + 1u);
}
void dequant8(uint block, uint e, out vec4 v0, out vec4 v1) {
  const uint n = e >> 7u, j = (e >> 5u) & 3u, l = e & 31u;
  const uvec2 q = (weight_u64(block + 32u + 32u * n + l) >> (2u * j)) & 0x03030303u;
  const uvec2 h = (weight_u64(block + l) >> (4u * n + j)) & 0x01010101u;
  const float ds = q3_k_scale(block, 8u * n + 2u * j + (l >> 4u));
  v0 = ds * q3_k_values(q.x, h.x);
  v1 = ds * q3_k_values(q.y, h.y);
}
// Quadrants j and j + 1 of a half share their qs bytes and hmask bytes.
#define QUANT_PAIR_STRIDE 32u
void dequant8x2(uint block, uint e, out vec4 a0, out vec4 a1, out vec4 b0, out vec4 b1) {
  const uint n = e >> 7u, j = (e >> 5u) & 3u, l = e & 31u;  // j is 0 or 2
  const uvec2 q = weight_u64(block + 32u + 32u * n + l);
  const uvec2 h = weight_u64(block + l);
  const uint s = 8u * n + 2u * j + (l >> 4u);
  const float dsa = q3_k_scale(block, s), dsb = q3_k_scale(block, s + 2u);
  const uvec2 qa = (q >> (2u * j)) & 0x03030303u, qb = (q >> (2u * j + 2u)) & 0x03030303u;
  const uvec2 ha = (h >> (4u * n + j)) & 0x01010101u, hb = (h >> (4u * n + j + 1u)) & 0x01010101u;
  a0 = dsa * q3_k_values(qa.x, ha.x);
  a1 = dsa * q3_k_values(qa.y, ha.y);
  b0 = dsb * q3_k_values(qb.x, hb.x);
  b1 = dsb * q3_k_values(qb.y, hb.y);
}

#elif defined(WEIGHT_IQ4_XS)
// { f16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128]; }  sub-block s = e / 32: element 32s + j
// (j < 16) is the low nibble of qs[16s + j], 32s + 16 + j its high nibble; x = d * (ls - 32) *
// codebook[q], ls = ((scales_l[s / 2] >> 4 (s % 2)) & 15) | ((scales_h >> 2s) & 3) << 4.
#define QK 256u
#define BLOCK_BYTES 136u
#define QUANT_PAIR_STRIDE 16u
float iq4xs_scale(uint block, uint s) {
  const uint low = (weight_u8(block + 4u + (s >> 1u)) >> (4u * (s & 1u))) & 0xFu;
  const uint high = (weight_u16(block + 2u) >> (2u * s)) & 3u;
  return weight_f16(block) * float(int(low | (high << 4u)) - 32);
}
uvec2 iq4xs_nibbles8(uint block, uint e) {
  return (weight_u64_wide(block + 8u + 16u * (e >> 5u) + (e & 15u)) >> (((e >> 4u) & 1u) * 4u)) & 0x0F0F0F0Fu;
}
#define QUANT_HAS_INT8 1
void quant_affine32(uint block, uint s, out float scale, out float offset) {
  scale = iq4xs_scale(block, s);
  offset = 0.0;
}
uvec2 quant_int8x8(uint block, uint e) {
  const uvec2 q = iq4xs_nibbles8(block, e);
  return uvec2(iq4nl_int8x4(q.x), iq4nl_int8x4(q.y));
}
void dequant8(uint block, uint e, out vec4 v0, out vec4 v1) {
  const float ds = iq4xs_scale(block, e >> 5u);
  const uvec2 q = iq4xs_nibbles8(block, e);
  v0 = ds * iq4nl_lookup(q.x);
  v1 = ds * iq4nl_lookup(q.y);
}
void dequant8x2(uint block, uint e, out vec4 a0, out vec4 a1, out vec4 b0, out vec4 b1) {
  const float ds = iq4xs_scale(block, e >> 5u);  // e % 32 < 16: both runs in sub-block e / 32
  const uvec2 q = weight_u64_wide(block + 8u + 16u * (e >> 5u) + (e & 15u));
  const uvec2 lo = q & 0x0F0F0F0Fu, hi = (q >> 4u) & 0x0F0F0F0Fu;
  a0 = ds * iq4nl_lookup(lo.x);
  a1 = ds * iq4nl_lookup(lo.y);
  b0 = ds * iq4nl_lookup(hi.x);
  b1 = ds * iq4nl_lookup(hi.y);
}

#elif defined(WEIGHT_IQ2_XXS) || defined(WEIGHT_IQ2_XS) || defined(WEIGHT_IQ2_S) || defined(WEIGHT_IQ3_XXS) || \
    defined(WEIGHT_IQ3_S) || defined(WEIGHT_IQ1_S) || defined(WEIGHT_IQ1_M)
#include "quant_iq.glsl"

#else
#error "quant.glsl: define one WEIGHT_<type>"
#endif

#ifdef QUANT_SPLIT_BODY
// Q4_0, IQ4_NL, Q8_0 and Q6_K: on the device (runtime/ops/weight_binding.cpp's
// to_device_layout; same size as in the file) a row of nb = cols / QK blocks holds each block's
// bytes but its f16 d, QUANT_SPLIT_BODY of them, then the nb d, and the whole row is rotated
// right by s = quant_row_shift(row) bytes: body b at row + s + QUANT_SPLIT_BODY * b, d b at
// row + (s + QUANT_SPLIT_BODY * nb + 2 b) mod the row's bytes (the last s / 2 d wrap round to the
// row's start). The bodies are multiples of 8 bytes, so with s taking the row's start to the
// next multiple of 8 every quant byte is 8-aligned and loads as a 64-bit word
// (weight_u64_wide); in GGUF's packed order every second block sits at 2 mod 4, where an 8-byte
// read takes three word loads and a warp's loads spread over 18 (Q4_0) to 210 (Q6_K) bytes a
// thread. s needs 2 nb >= 8 - row % 8 (rows of 1 or 2 blocks may not rotate: word loads there);
// so Qwen3-30B-A3B's 768-wide Q6_K expert rows (3 blocks, 630 bytes: three in four rows start
// off 8) load as wide as the rest. The row offset is its binding's (bind_weights starts
// bindings 8-aligned, so the host's rotation by buffer offset is this one). A block is
// uvec2(body byte, d byte).
#ifndef QUANT_ROW_COLS
#error "split-layout types need the row length: define QUANT_ROW_COLS (e.g. pc.cols) before including quant.glsl"
#endif
#define QBLOCK uvec2
uint quant_row_shift(uint row_byte) {  // ops::split_row_shift
  const uint s = (8u - (row_byte & 7u)) & 7u;
  return s <= 2u * (QUANT_ROW_COLS / QK) ? s : 0u;
}
uvec2 quant_block(uint row_byte, uint b) {
  const uint nb = QUANT_ROW_COLS / QK, s = quant_row_shift(row_byte);
  const uint d = s + QUANT_SPLIT_BODY * nb + 2u * b, row_end = (QUANT_SPLIT_BODY + 2u) * nb;
  return uvec2(row_byte + s + QUANT_SPLIT_BODY * b, row_byte + (d < row_end ? d : d - row_end));
}
#else
// Every other type keeps GGUF's packed blocks on the device: block b at row + b * BLOCK_BYTES.
#define QBLOCK uint
uint quant_block(uint row_byte, uint b) { return row_byte + b * BLOCK_BYTES; }
#endif

#ifdef QUANT_PAIR_STRIDE
// The g-th 16-element pair run of a row, for dequant8x2: block g / QUANT_PAIRS_PER_BLOCK of
// the row, first element quant_pair_first(g) inside it. Consecutive g read consecutive quant
// bytes, so threads striding over g coalesce.
#define QUANT_PAIRS_PER_BLOCK (QK / 16u)
uint quant_pair_first(uint g) {
  const uint S = QUANT_PAIR_STRIDE, p = g % QUANT_PAIRS_PER_BLOCK;
  return (p / (S / 8u)) * (2u * S) + (p % (S / 8u)) * 8u;
}
#endif

#ifdef QUANT_PAIR16
// The dot product of dequant16x2's 16 elements (a or b) with 16 activations.
float dot16(vec4 a[4], vec4 b[4]) { return dot(a[0], b[0]) + dot(a[1], b[1]) + dot(a[2], b[2]) + dot(a[3], b[3]); }
#endif

#endif
