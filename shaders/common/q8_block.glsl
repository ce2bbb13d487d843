// quantize_q8.comp's rule for one block of 32 f32 values: d = max|v| / 127, q = round(v / d)
// (0 where d is 0), four signed int8 per word in element order, and xs = d * sum(q). Every kernel
// that writes int8 activations (quantize_q8, rms_norm's OUT_Q8, the attention and SwiGLU
// epilogues, moe_mul_mm_dot's OUT_Q8) takes it from here, so they all give the same bits.
#ifndef MOEVK_Q8_BLOCK_GLSL
#define MOEVK_Q8_BLOCK_GLSL

struct Q8Block {
  uint words[8];
  float d, xs;
};

Q8Block q8_block(const float v[32]) {
  float amax = 0.0;
  [[unroll]] for (uint j = 0u; j < 32u; ++j) amax = max(amax, abs(v[j]));
  Q8Block b;
  b.d = amax / 127.0;
  const float id = b.d != 0.0 ? 1.0 / b.d : 0.0;
  int sum = 0;
  [[unroll]] for (uint w = 0u; w < 8u; ++w) {
    const ivec4 q = ivec4(round(vec4(v[4u * w], v[4u * w + 1u], v[4u * w + 2u], v[4u * w + 3u]) * id));
    sum += q.x + q.y + q.z + q.w;
    const ivec4 b8 = q & 0xFF;
    b.words[w] = uint(b8.x | (b8.y << 8) | (b8.z << 16) | (b8.w << 24));
  }
  b.xs = b.d * float(sum);
  return b;
}

#endif
