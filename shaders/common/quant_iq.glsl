// The codebook decoders of quant.glsl (IQ2_XXS IQ2_XS IQ2_S IQ3_XXS IQ3_S IQ1_S IQ1_M), included
// by it for those types only: the same interface (QK, BLOCK_BYTES, dequant8, and the int8 form of
// the integer-dot path), no pair runs. Layouts as ggml's (runtime/quant/blocks.hpp, CPU reference
// runtime/quant/dequant_iq.cpp).
// The int8 forms: every element is a grid level times a sign times a sub-block scale, so the
// signed level is the int8 and the scale is quant_affine32's (per 32 elements, or per 16 with
// QUANT_INT8_HALVES for IQ2_XS, IQ2_S, IQ1_M). IQ2/IQ3 levels are 1..62, never 0, so a sign is
// applied per byte without borrows (iq_signed8). IQ1_S's +-1/8 delta is per 32 elements, the
// affine offset (dl * delta); IQ1_M's is per 8, so its int8 is 8 * level + delta * 8 (an odd
// value in -9..9) and its scales carry the 1/8.
#ifndef MOEVK_QUANT_IQ_GLSL
#define MOEVK_QUANT_IQ_GLSL

// The codebook formats: each run of 8 (IQ3: 4) elements is an index into a grid of level
// patterns (ggml's values, runtime/quant/iq_grids.inc), times a sub-block scale and signs (IQ2,
// IQ3) or plus a +-1/8 delta (IQ1). The variant's grid is a storage buffer at set 1 (the op's
// PipelineDesc::table, ops::weight_table): a constant array in the shader made lavapipe's LLVM
// spend minutes compiling each kernel, and a real GPU would index it from per-thread memory.
// Entry i: words 2i (elements 0-3, a byte each) and 2i + 1, or word i for the 4-element IQ3 grids.
layout(std430, set = 1, binding = 0) readonly buffer IQCodebook { uint iq_codebook[]; };
#define IQ_GRID2(i) uvec2(iq_codebook[2u * (i)], iq_codebook[2u * (i) + 1u])
#define IQ_GRID1(i) iq_codebook[(i)]
// 7 stored sign bits and the 8th that makes the count of minus signs even (ggml's ksigns_iq2xs).
uint iq_signs8(uint index7) { return index7 | ((uint(bitCount(index7)) & 1u) << 7u); }
// +1 or -1 from bits 0..3 of `bits` (set: negative).
vec4 iq_sign4(uint bits) { return vec4(1.0) - 2.0 * vec4(uvec4(bits, bits >> 1u, bits >> 2u, bits >> 3u) & 1u); }
// Bits 0..3 of `bits` moved to bit 0 of bytes 0..3.
uint iq_spread4(uint bits) { return (bits & 1u) | ((bits & 2u) << 7u) | ((bits & 4u) << 14u) | ((bits & 8u) << 21u); }
// The 8 bytes of g (levels 1..127) negated where bits 0..7 of `signs` are set: per byte
// (b ^ 0xFF) + 1 = 256 - b, which never carries into the next byte as b > 0.
uvec2 iq_signed8(uvec2 g, uint signs) {
  const uvec2 m = uvec2(iq_spread4(signs), iq_spread4(signs >> 4u));
  return (g ^ (m * 0xFFu)) + m;
}
#define QUANT_HAS_INT8 1
// IQ2_XS, IQ2_S: a sub-block's scale byte (a 4-bit scale per 16-element half) as the int8 form's
// two half scales, d * (0.5 + scale) / 4 each.
void iq2_half_scales(uint block, uint scales, out float lo, out float hi) {
  const float d = weight_f16(block);
  lo = d * (0.5 + float(scales & 0xFu)) * 0.25;
  hi = d * (0.5 + float(scales >> 4u)) * 0.25;
}

#if defined(WEIGHT_IQ2_XXS)
// { f16 d; u16 qs[32]; }  per 32 elements (s): 4 index bytes, then a word of 4 x 7 sign bits and
// the scale in its top nibble; x = d * (0.5 + scale) / 4 * level * sign
#define QK 256u
#define BLOCK_BYTES 66u
void dequant8(uint block, uint e, out vec4 v0, out vec4 v1) {
  const uint s = e >> 5u, l = (e >> 3u) & 3u;
  const uint aux = weight_u32(block + 6u + 8u * s);
  const float db = weight_f16(block) * (0.5 + float(aux >> 28u)) * 0.25;
  const uvec2 g = IQ_GRID2(weight_u8(block + 2u + 8u * s + l));
  const uint signs = iq_signs8((aux >> (7u * l)) & 127u);
  v0 = db * unpack_u8x4(g.x) * iq_sign4(signs);
  v1 = db * unpack_u8x4(g.y) * iq_sign4(signs >> 4u);
}
uvec2 quant_int8x8(uint block, uint e) {
  const uint s = e >> 5u, l = (e >> 3u) & 3u;
  const uint aux = weight_u32(block + 6u + 8u * s);
  return iq_signed8(IQ_GRID2(weight_u8(block + 2u + 8u * s + l)), iq_signs8((aux >> (7u * l)) & 127u));
}
void quant_affine32(uint block, uint s, out float scale, out float offset) {
  scale = weight_f16(block) * (0.5 + float(weight_u32(block + 6u + 8u * s) >> 28u)) * 0.25;
  offset = 0.0;
}

#elif defined(WEIGHT_IQ2_XS)
// { f16 d; u16 qs[32]; u8 scales[8]; }  per 8 elements a 9-bit index and a 7-bit sign index; a
// 4-bit scale per 16 elements: x = d * (0.5 + scale) / 4 * level * sign
#define QK 256u
#define BLOCK_BYTES 74u
void dequant8(uint block, uint e, out vec4 v0, out vec4 v1) {
  const uint q = weight_u16(block + 2u + 2u * (e >> 3u));
  const uint scale = (weight_u8(block + 66u + (e >> 5u)) >> (4u * ((e >> 4u) & 1u))) & 0xFu;
  const float db = weight_f16(block) * (0.5 + float(scale)) * 0.25;
  const uvec2 g = IQ_GRID2(q & 511u);
  const uint signs = iq_signs8(q >> 9u);
  v0 = db * unpack_u8x4(g.x) * iq_sign4(signs);
  v1 = db * unpack_u8x4(g.y) * iq_sign4(signs >> 4u);
}
#define QUANT_INT8_HALVES 1
uvec2 quant_int8x8(uint block, uint e) {
  const uint q = weight_u16(block + 2u + 2u * (e >> 3u));
  return iq_signed8(IQ_GRID2(q & 511u), iq_signs8(q >> 9u));
}
void quant_affine32(uint block, uint s, out float scale, out float offset) {
  iq2_half_scales(block, weight_u8(block + 66u + s), scale, offset);
}

#elif defined(WEIGHT_IQ2_S)
// { f16 d; u8 qs[32]; u8 signs[32]; u8 qh[8]; u8 scales[8]; }  10-bit indices (qs byte + 2 qh
// bits), 8 explicit sign bits per 8 elements, a 4-bit scale per 16
#define QK 256u
#define BLOCK_BYTES 82u
void dequant8(uint block, uint e, out vec4 v0, out vec4 v1) {
  const uint run = e >> 3u, s = e >> 5u, l = run & 3u;
  const uint index = weight_u8(block + 2u + run) | ((weight_u8(block + 66u + s) << (8u - 2u * l)) & 0x300u);
  const uint signs = weight_u8(block + 34u + run);
  const uint scale = (weight_u8(block + 74u + s) >> (4u * (l >> 1u))) & 0xFu;
  const float db = weight_f16(block) * (0.5 + float(scale)) * 0.25;
  const uvec2 g = IQ_GRID2(index);
  v0 = db * unpack_u8x4(g.x) * iq_sign4(signs);
  v1 = db * unpack_u8x4(g.y) * iq_sign4(signs >> 4u);
}
#define QUANT_INT8_HALVES 1
uvec2 quant_int8x8(uint block, uint e) {
  const uint run = e >> 3u, s = e >> 5u, l = run & 3u;
  const uint index = weight_u8(block + 2u + run) | ((weight_u8(block + 66u + s) << (8u - 2u * l)) & 0x300u);
  return iq_signed8(IQ_GRID2(index), weight_u8(block + 34u + run));
}
void quant_affine32(uint block, uint s, out float scale, out float offset) {
  iq2_half_scales(block, weight_u8(block + 74u + s), scale, offset);
}

#elif defined(WEIGHT_IQ3_XXS)
// { f16 d; u8 qs[64]; u32 scales_and_signs[8]; }  an index byte per 4 elements; per 32 a word of
// 4 x 7 sign bits and the scale on top: x = d * (0.5 + scale) / 2 * level * sign
#define QK 256u
#define BLOCK_BYTES 98u
void dequant8(uint block, uint e, out vec4 v0, out vec4 v1) {
  const uint s = e >> 5u, l = (e >> 3u) & 3u;
  const uint q = weight_u16(block + 2u + (e >> 2u));  // the run's two index bytes
  const uint aux = weight_u32(block + 66u + 4u * s);
  const float db = weight_f16(block) * (0.5 + float(aux >> 28u)) * 0.5;
  const uint signs = iq_signs8((aux >> (7u * l)) & 127u);
  v0 = db * unpack_u8x4(IQ_GRID1(q & 0xFFu)) * iq_sign4(signs);
  v1 = db * unpack_u8x4(IQ_GRID1(q >> 8u)) * iq_sign4(signs >> 4u);
}
uvec2 quant_int8x8(uint block, uint e) {
  const uint s = e >> 5u, l = (e >> 3u) & 3u;
  const uint q = weight_u16(block + 2u + (e >> 2u));
  const uint aux = weight_u32(block + 66u + 4u * s);
  return iq_signed8(uvec2(IQ_GRID1(q & 0xFFu), IQ_GRID1(q >> 8u)), iq_signs8((aux >> (7u * l)) & 127u));
}
void quant_affine32(uint block, uint s, out float scale, out float offset) {
  scale = weight_f16(block) * (0.5 + float(weight_u32(block + 66u + 4u * s) >> 28u)) * 0.5;
  offset = 0.0;
}

#elif defined(WEIGHT_IQ3_S)
// { f16 d; u8 qs[64]; u8 qh[8]; u8 signs[32]; u8 scales[4]; }  9-bit indices (qs byte + a qh
// bit) per 4 elements, 8 sign bits per 8, a 4-bit scale per 32: x = d * (1 + 2 scale) * level * sign
#define QK 256u
#define BLOCK_BYTES 110u
void dequant8(uint block, uint e, out vec4 v0, out vec4 v1) {
  const uint s = e >> 5u, l = (e >> 3u) & 3u;
  const uint q = weight_u16(block + 2u + (e >> 2u));
  const uint qh = weight_u8(block + 66u + s);
  const uint i1 = (q & 0xFFu) | ((qh << (8u - 2u * l)) & 256u);
  const uint i2 = (q >> 8u) | ((qh << (7u - 2u * l)) & 256u);
  const uint signs = weight_u8(block + 74u + (e >> 3u));
  const uint scale = (weight_u8(block + 106u + (s >> 1u)) >> (4u * (s & 1u))) & 0xFu;
  const float db = weight_f16(block) * float(1u + 2u * scale);
  v0 = db * unpack_u8x4(IQ_GRID1(i1)) * iq_sign4(signs);
  v1 = db * unpack_u8x4(IQ_GRID1(i2)) * iq_sign4(signs >> 4u);
}
uvec2 quant_int8x8(uint block, uint e) {
  const uint s = e >> 5u, l = (e >> 3u) & 3u;
  const uint q = weight_u16(block + 2u + (e >> 2u));
  const uint qh = weight_u8(block + 66u + s);
  const uint i1 = (q & 0xFFu) | ((qh << (8u - 2u * l)) & 256u);
  const uint i2 = (q >> 8u) | ((qh << (7u - 2u * l)) & 256u);
  return iq_signed8(uvec2(IQ_GRID1(i1), IQ_GRID1(i2)), weight_u8(block + 74u + (e >> 3u)));
}
void quant_affine32(uint block, uint s, out float scale, out float offset) {
  const uint sc = (weight_u8(block + 106u + (s >> 1u)) >> (4u * (s & 1u))) & 0xFu;
  scale = weight_f16(block) * float(1u + 2u * sc);
  offset = 0.0;
}

#elif defined(WEIGHT_IQ1_S)
// { f16 d; u8 qs[32]; u16 qh[8]; }  11-bit indices (qs byte + 3 qh bits) per 8 elements, levels
// -1/0/1; per 32 a 3-bit scale and the delta's sign in qh's top bits:
// x = d * (2 scale + 1) * (level + delta), delta = +-1/8
#define QK 256u
#define BLOCK_BYTES 50u
void dequant8(uint block, uint e, out vec4 v0, out vec4 v1) {
  const uint s = e >> 5u, l = (e >> 3u) & 3u;
  const uint qh = weight_u16(block + 34u + 2u * s);
  const float dl = weight_f16(block) * float(2u * ((qh >> 12u) & 7u) + 1u);
  const float delta = (qh & 0x8000u) != 0u ? -0.125 : 0.125;
  const uvec2 g = IQ_GRID2(weight_u8(block + 2u + (e >> 3u)) | (((qh >> (3u * l)) & 7u) << 8u));
  v0 = dl * (unpack_s8x4(g.x) + delta);
  v1 = dl * (unpack_s8x4(g.y) + delta);
}
uvec2 quant_int8x8(uint block, uint e) {  // the levels -1, 0, 1 as they are in the grid
  const uint qh = weight_u16(block + 34u + 2u * (e >> 5u));
  return IQ_GRID2(weight_u8(block + 2u + (e >> 3u)) | (((qh >> (3u * ((e >> 3u) & 3u))) & 7u) << 8u));
}
void quant_affine32(uint block, uint s, out float scale, out float offset) {  // dl * level + dl * delta
  const uint qh = weight_u16(block + 34u + 2u * s);
  scale = weight_f16(block) * float(2u * ((qh >> 12u) & 7u) + 1u);
  offset = scale * ((qh & 0x8000u) != 0u ? -0.125 : 0.125);
}

#elif defined(WEIGHT_IQ1_M)
// { u8 qs[32]; u8 qh[16]; u16 scales[4]; }  indices as IQ1_S, the delta's sign per 8 elements
// (qh bit 3 of each nibble), a 3-bit scale per 16; the f16 d is the scale words' top nibbles
#define QK 256u
#define BLOCK_BYTES 56u
// The block's f16 d, kept in the top nibbles of the scale words (w0: words 0,1; w1: 2,3).
float iq1m_d(uint w0, uint w1) {
  return unpackHalf2x16(((w0 >> 12u) & 0xFu) | ((w0 >> 24u) & 0xF0u) | ((w1 >> 4u) & 0xF00u) | ((w1 >> 16u) & 0xF000u)).x;
}
void dequant8(uint block, uint e, out vec4 v0, out vec4 v1) {
  const uint s = e >> 5u, l = (e >> 3u) & 3u;
  const uint w0 = weight_u32(block + 48u), w1 = weight_u32(block + 52u);  // scale words 0,1 and 2,3
  const uint word = ((s >> 1u) < 2u ? w0 : w1) >> (16u * ((s >> 1u) & 1u));
  const uint scale = (word >> (6u * (s & 1u) + 3u * (l >> 1u))) & 7u;
  const float dl = iq1m_d(w0, w1) * float(2u * scale + 1u);
  const uint qh = weight_u8(block + 32u + (e >> 4u)) >> (4u * (l & 1u));  // bits 0-2 index, 3 delta sign
  const float delta = (qh & 8u) != 0u ? -0.125 : 0.125;
  const uvec2 g = IQ_GRID2(weight_u8(block + (e >> 3u)) | ((qh & 7u) << 8u));
  v0 = dl * (unpack_s8x4(g.x) + delta);
  v1 = dl * (unpack_s8x4(g.y) + delta);
}
#define QUANT_INT8_HALVES 1
// 8 * level + sign (levels -1, 0, 1; sign +-1) per byte of w.
uint iq1m_int8x4(uint w, int sign) {
  const ivec4 v = 8 * ivec4(bitfieldExtract(int(w), 0, 8), bitfieldExtract(int(w), 8, 8), bitfieldExtract(int(w), 16, 8),
                            bitfieldExtract(int(w), 24, 8)) + sign;
  const uvec4 b = uvec4(v) & 0xFFu;
  return b.x | (b.y << 8u) | (b.z << 16u) | (b.w << 24u);
}
uvec2 quant_int8x8(uint block, uint e) {
  const uint qh = weight_u8(block + 32u + (e >> 4u)) >> (4u * ((e >> 3u) & 1u));
  const uvec2 g = IQ_GRID2(weight_u8(block + (e >> 3u)) | ((qh & 7u) << 8u));
  const int sign = (qh & 8u) != 0u ? -1 : 1;
  return uvec2(iq1m_int8x4(g.x, sign), iq1m_int8x4(g.y, sign));
}
void quant_affine32(uint block, uint s, out float scale, out float offset) {  // dl / 8 of each half
  const uint w0 = weight_u32(block + 48u), w1 = weight_u32(block + 52u);
  const uint word = ((s >> 1u) < 2u ? w0 : w1) >> (16u * ((s >> 1u) & 1u));
  const float d = iq1m_d(w0, w1) * 0.125;
  scale = d * float(2u * ((word >> (6u * (s & 1u))) & 7u) + 1u);
  offset = d * float(2u * ((word >> (6u * (s & 1u) + 3u)) & 7u) + 1u);
}
#endif

#endif
