// RoPE angles shared by rope/rope.comp and rope/qk_norm_rope.comp: (sin, cos) of
// pos * base^(-2i/rot_dim) to ~5e-7 rad at positions up to 3e4 (see rope.comp's header for the
// method: double-float frequencies, Dekker products, Cody-Waite reduction, Taylor sin/cos).
// Include after "types.glsl".
#ifndef MOEVK_ROPE_ANGLE_GLSL
#define MOEVK_ROPE_ANGLE_GLSL

// The exact product a * b = hi + lo (Dekker: clearing 12 mantissa bits splits each factor into
// halves of at most 12 significant bits, whose products are exact in fp32).
void two_product(float a, float b, out float hi, out float lo) {
  precise float p = a * b;
  precise float a1 = uintBitsToFloat(floatBitsToUint(a) & 0xFFFFF000u);
  precise float a2 = a - a1;
  precise float b1 = uintBitsToFloat(floatBitsToUint(b) & 0xFFFFF000u);
  precise float b2 = b - b1;
  precise float e = ((a1 * b1 - p) + a1 * b2 + a2 * b1) + a2 * b2;
  hi = p;
  lo = e;
}

// Double-float product (a.x + a.y) * (b.x + b.y), renormalised so |lo| <= ulp(hi) / 2.
vec2 df_mul(vec2 a, vec2 b) {
  float p, e;
  two_product(a.x, b.x, p, e);
  precise float lo = e + (a.x * b.y + a.y * b.x);
  precise float hi = p + lo;
  precise float rest = lo - (hi - p);
  return vec2(hi, rest);
}

// scale^i as a double-float, by squaring (i < 2^16).
vec2 df_pow(vec2 scale, uint i) {
  vec2 result = vec2(1.0, 0.0), power = scale;
  for (; i != 0u; i >>= 1u) {
    if ((i & 1u) != 0u) result = df_mul(result, power);
    power = df_mul(power, power);
  }
  return result;
}

// sin and cos of r, |r| <= pi/4 (+ a rounding margin): Taylor to x^11 / x^12 (error < 1e-10).
vec2 sin_cos_reduced(float r) {
  const float r2 = r * r;
  const float s = r * (1.0 + r2 * (-1.0 / 6.0 + r2 * (1.0 / 120.0 + r2 * (-1.0 / 5040.0 +
                  r2 * (1.0 / 362880.0 + r2 * (-1.0 / 39916800.0))))));
  const float c = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24.0 + r2 * (-1.0 / 720.0 + r2 * (1.0 / 40320.0 +
                  r2 * (-1.0 / 3628800.0 + r2 * (1.0 / 479001600.0))))));
  return vec2(s, c);
}

// (sin, cos) of theta = hi + lo >= 0.
vec2 sin_cos(float hi, float lo) {
  // pi/2 = C1 + C2 + C3: C1 = 25/16 and C2 = 17/2048 have 5 significant bits, so n * C1 and
  // n * C2 are exact for n < 2^19, and hi - n * C1 is exact too (same grid, smaller magnitude).
  const float C1 = 1.5625, C2 = 0.00830078125, C3 = -4.4544551033807686e-6;
  const float n = roundEven(hi * 0.63661977236758134);  // 2 / pi
  precise float r = hi - n * C1;
  r = r - n * C2;
  r = r - n * C3;
  r = r + lo;
  const vec2 sc = sin_cos_reduced(r);
  switch (uint(n) & 3u) {
    case 0u: return sc;
    case 1u: return vec2(sc.y, -sc.x);
    case 2u: return -sc;
    default: return vec2(-sc.y, sc.x);
  }
}

// (sin, cos) of pos * scale^i, scale = scale_hi + scale_lo = base^(-2/rot_dim).
vec2 rope_sin_cos(float pos, uint i, float scale_hi, float scale_lo) {
  const vec2 freq = df_pow(vec2(scale_hi, scale_lo), i);
  float hi, lo;
  two_product(pos, freq.x, hi, lo);
  precise float lo_total = lo + pos * freq.y;
  return sin_cos(hi, lo_total);
}

#endif
