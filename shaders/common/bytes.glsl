// Byte-addressed reads from a buffer declared as 32-bit words (core Vulkan 1.2: no 8/16-bit
// storage needed). ggml blocks are packed (Q4_0 is 18 bytes), so fields are not 4-aligned.
//
// Interface: before including, the includer defines
//   #define WEIGHT_WORD(i) <expression reading uint word i>      e.g. weight_words[(i)]
// and gets (byte offsets are from the start of what WEIGHT_WORD indexes; little-endian):
//   uint  weight_u8(uint byte)     any alignment
//   uint  weight_u16(uint byte)    byte even (every 16-bit field of a ggml block is)
//   uint  weight_u32(uint byte)    any alignment (reads one or two words)
//   uvec2 weight_u64(uint byte)    8 bytes, any alignment (two or three words)
//   float weight_f16(uint byte)    IEEE half at an even byte
//   float weight_bf16(uint byte)   bfloat16 at an even byte
//   uvec2 weight_u64_wide(uint byte) as weight_u64, but one 64-bit load where byte % 8 == 0 and
//                                  the includer also defines WEIGHT_UVEC2(i) (the same buffer
//                                  declared as uvec2[]). For fields that are 8-aligned in every
//                                  block of an aligned row (Q4_0's device layout, Q4_K, Q5_K,
//                                  IQ4_XS): the test is uniform there, so no thread diverges, and
//                                  a warp's read of 8 bytes a thread is one load of contiguous
//                                  bytes instead of two or three word loads.
//   uvec4 weight_u128_wide(uint byte) 16 bytes: one 128-bit load where byte % 16 == 0 and the
//                                  includer defines WEIGHT_UVEC4(i) (the buffer as uvec4[]; its
//                                  binding 16-aligned), else two weight_u64_wide.
#ifndef MOEVK_BYTES_GLSL
#define MOEVK_BYTES_GLSL

#ifndef WEIGHT_WORD
#error "define WEIGHT_WORD(i) before including bytes.glsl"
#endif

uint weight_u8(uint byte) { return (WEIGHT_WORD(byte >> 2u) >> ((byte & 3u) * 8u)) & 0xFFu; }

uint weight_u16(uint byte) { return (WEIGHT_WORD(byte >> 2u) >> ((byte & 2u) * 8u)) & 0xFFFFu; }

uint weight_u32(uint byte) {
  const uint word = byte >> 2u;
  const uint shift = (byte & 3u) * 8u;
  const uint lo = WEIGHT_WORD(word);
  // A shift by 32 is undefined in GLSL, and the aligned case must not read the next word
  // (it may lie past the end of the buffer).
  if (shift == 0u) return lo;
  return (lo >> shift) | (WEIGHT_WORD(word + 1u) << (32u - shift));
}

uvec2 weight_u64(uint byte) {
  const uint word = byte >> 2u;
  const uint shift = (byte & 3u) * 8u;
  const uint w0 = WEIGHT_WORD(word);
  const uint w1 = WEIGHT_WORD(word + 1u);
  if (shift == 0u) return uvec2(w0, w1);
  const uint w2 = WEIGHT_WORD(word + 2u);
  return uvec2((w0 >> shift) | (w1 << (32u - shift)), (w1 >> shift) | (w2 << (32u - shift)));
}

uvec2 weight_u64_wide(uint byte) {
#ifdef WEIGHT_UVEC2
  if ((byte & 7u) == 0u) return WEIGHT_UVEC2(byte >> 3u);
#endif
  return weight_u64(byte);
}

uvec4 weight_u128_wide(uint byte) {
#ifdef WEIGHT_UVEC4
  if ((byte & 15u) == 0u) return WEIGHT_UVEC4(byte >> 4u);
#endif
  return uvec4(weight_u64_wide(byte), weight_u64_wide(byte + 8u));
}

float weight_f16(uint byte) { return unpackHalf2x16(weight_u16(byte)).x; }

float weight_bf16(uint byte) { return uintBitsToFloat(weight_u16(byte) << 16u); }

#endif
