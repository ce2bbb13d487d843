#!/bin/bash
# Regenerates runtime/quant/iq_grids.inc: the codebooks ("grids") of the IQ1_S, IQ1_M, IQ2_XXS,
# IQ2_XS, IQ2_S, IQ3_XXS and IQ3_S formats. They are part of those formats' definitions (a block
# stores indices into them), so a reader must have exactly ggml's values. Rather than retyping
# thousands of constants, this reads them out of llama.cpp's own dequantizers: it loads
# libggml-base.so from node-llama-cpp's prebuilt (tests/data/npm, installed by
# scripts/install-deps.sh), decodes blocks that select every index with d = 1, no signs and the
# smallest sub-block scale, and divides the scale back out (every value is exact in f32).
# ggml is MIT-licensed (Copyright (c) 2023-2024 The ggml authors).
# Usage: bash scripts/gen-iq-grids.sh [path/to/libggml-base.so]
set -euo pipefail
cd "$(dirname "$0")/.."
LIB="${1:-tests/data/npm/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so}"
[ -f "$LIB" ] || { echo "no $LIB: run scripts/install-deps.sh (or pass the library's path)" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cat > "$TMP/dump.c" <<'EOF'
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
typedef void (*deq_fn)(const void*, float*, int64_t);
static uint8_t blk[256];
static float y[256];
static void put16(uint8_t* p, unsigned v) { p[0] = v & 255u; p[1] = (v >> 8) & 255u; }
static void reset(void) { memset(blk, 0, sizeof blk); put16(blk, 0x3C00); /* d = 1.0 */ }
// Value i of the decoded row as the grid's byte: (y - offset) / scale, which must be an integer.
static unsigned byte_at(int i, float scale, float offset) {
  const float q = (y[i] - offset) / scale;
  const long r = lrintf(q);
  if (fabsf(q - (float)r) > 0) { fprintf(stderr, "value %d is not a grid level: %f\n", i, q); exit(1); }
  return (unsigned)r & 255u;
}
static deq_fn dequantizer(void* h, const char* name) {
  deq_fn f = (deq_fn)dlsym(h, name);
  if (!f) { fprintf(stderr, "%s has no %s\n", "libggml-base.so", name); exit(1); }
  return f;
}
// Prints n entries of `per` bytes (8: two words lo, hi; 4: one word) decoded from y[0..].
static int first;
static void emit(int entries, int per, float scale, float offset) {
  for (int e = 0; e < entries; ++e) {
    unsigned w[2] = {0, 0};
    for (int j = 0; j < per; ++j) w[j / 4] |= byte_at(e * per + j, scale, offset) << (8 * (j % 4));
    printf("%s%s", first ? "\n    " : ((e % 3 == 0 && per == 8) || (e % 6 == 0 && per == 4) ? ",\n    " : ", "), "");
    first = 0;
    if (per == 8) printf("IQ_E2(0x%08xu, 0x%08xu)", w[0], w[1]);
    else printf("IQ_E1(0x%08xu)", w[0]);
  }
}
static void begin(const char* guard, const char* name, int n, int per) {
  printf("\n#ifdef %s\nIQ_TABLE%d(%s, %d) IQ_OPEN%d(%d)", guard, per == 8 ? 2 : 1, name, n, per == 8 ? 2 : 1, n);
  first = 1;
}
static void end(void) { printf("\nIQ_CLOSE;\n#endif\n"); }
int main(int argc, char** argv) {
  void* h = dlopen(argv[1], RTLD_NOW);
  if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
  deq_fn f;
  // IQ2_XXS {d; u16 qs[32]}: per 32 elements 4 index bytes, then signs + scale (0: d * 0.125).
  f = dequantizer(h, "dequantize_row_iq2_xxs");
  begin("IQ_GRID_IQ2XXS", "kIQ2XXSGrid", 256, 8);
  for (int base = 0; base < 256; base += 32) {
    reset();
    for (int g = 0; g < 8; ++g)
      for (int l = 0; l < 4; ++l) blk[2 + 8 * g + l] = (uint8_t)(base + 4 * g + l);
    f(blk, y, 256);
    emit(32, 8, 0.125f, 0.0f);
  }
  end();
  // IQ2_XS {d; u16 qs[32]; u8 scales[8]}: 9-bit index + 7-bit sign index per 8 elements.
  f = dequantizer(h, "dequantize_row_iq2_xs");
  begin("IQ_GRID_IQ2XS", "kIQ2XSGrid", 512, 8);
  for (int base = 0; base < 512; base += 32) {
    reset();
    for (int i = 0; i < 32; ++i) put16(blk + 2 + 2 * i, (unsigned)(base + i));
    f(blk, y, 256);
    emit(32, 8, 0.125f, 0.0f);
  }
  end();
  // IQ2_S {d; u8 qs[64] (32 index bytes, 32 sign bytes); u8 qh[8]; u8 scales[8]}: 10-bit index.
  f = dequantizer(h, "dequantize_row_iq2_s");
  begin("IQ_GRID_IQ2S", "kIQ2SGrid", 1024, 8);
  for (int base = 0; base < 1024; base += 32) {
    reset();
    for (int g = 0; g < 8; ++g) {
      unsigned qh = 0;
      for (int l = 0; l < 4; ++l) {
        const int idx = base + 4 * g + l;
        blk[2 + 4 * g + l] = (uint8_t)(idx & 255);
        qh |= (unsigned)((idx >> 8) & 3) << (2 * l);
      }
      blk[66 + g] = (uint8_t)qh;
    }
    f(blk, y, 256);
    emit(32, 8, 0.125f, 0.0f);
  }
  end();
  // IQ3_XXS {d; u8 qs[64]; u32 scales_and_signs[8]}: 8-bit index per 4 elements (scale 0: d / 4).
  f = dequantizer(h, "dequantize_row_iq3_xxs");
  begin("IQ_GRID_IQ3XXS", "kIQ3XXSGrid", 256, 4);
  for (int base = 0; base < 256; base += 64) {
    reset();
    for (int i = 0; i < 64; ++i) blk[2 + i] = (uint8_t)(base + i);
    f(blk, y, 256);
    emit(64, 4, 0.25f, 0.0f);
  }
  end();
  // IQ3_S {d; u8 qs[64]; u8 qh[8]; u8 signs[32]; u8 scales[4]}: 9-bit index (scale 0: d).
  f = dequantizer(h, "dequantize_row_iq3_s");
  begin("IQ_GRID_IQ3S", "kIQ3SGrid", 512, 4);
  for (int base = 0; base < 512; base += 64) {
    reset();
    for (int i = 0; i < 64; ++i) {
      const int idx = base + i;
      blk[2 + i] = (uint8_t)(idx & 255);
      if (idx & 256) blk[66 + i / 8] |= (uint8_t)(1u << (i % 8));
    }
    f(blk, y, 256);
    emit(64, 4, 1.0f, 0.0f);
  }
  end();
  // IQ1_S {d; u8 qs[32]; u16 qh[8]}: 11-bit index per 8 elements, values -1/0/1 (as int8 bytes)
  // plus a delta of +1/8 (qh bit 15 clear), scale 0: d.
  f = dequantizer(h, "dequantize_row_iq1_s");
  begin("IQ_GRID_IQ1S", "kIQ1SGrid", 2048, 8);
  for (int base = 0; base < 2048; base += 32) {
    reset();
    for (int g = 0; g < 8; ++g) {
      unsigned qh = 0;
      for (int l = 0; l < 4; ++l) {
        const int idx = base + 4 * g + l;
        blk[2 + 4 * g + l] = (uint8_t)(idx & 255);
        qh |= (unsigned)((idx >> 8) & 7) << (3 * l);
      }
      put16(blk + 34 + 2 * g, qh);
    }
    f(blk, y, 256);
    emit(32, 8, 1.0f, 0.125f);
  }
  end();
  return 0;
}
EOF
cc -O1 -o "$TMP/dump" "$TMP/dump.c" -ldl -lm
OUT=runtime/quant/iq_grids.inc
{
  cat <<'EOF'
// The IQ1/IQ2/IQ3 codebooks ("grids"), generated by scripts/gen-iq-grids.sh from llama.cpp's own
// dequantizers (ggml, MIT license, Copyright (c) 2023-2024 The ggml authors): part of those
// formats' definitions, so the values must be exactly ggml's. Do not edit; regenerate.
// Entry i of a grid is a run of 8 (IQ_E2: bytes of the words lo, hi, little-endian) or 4 (IQ_E1)
// element levels, one byte each: IQ2 levels 8, 25, 43; IQ3 4, 12, ..., 62 (XXS) or 1, 3, ..., 15
// (S); IQ1 -1, 0, 1 as int8.
// Included by runtime/quant/iq_grids.hpp, which defines before including: IQ_TABLE2(name, n) /
// IQ_TABLE1(name, n) (the declaration up to '='), IQ_OPEN2(n) / IQ_OPEN1(n) and IQ_CLOSE (the
// initializer's brackets), IQ_E2(lo, hi) / IQ_E1(w) (one entry), and the IQ_GRID_<TYPE> guards
// of the tables it wants. The GPU decoders read the same values from a buffer
// (ops::weight_table, shaders/common/quant.glsl).
EOF
  "$TMP/dump" "$LIB"
} > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "wrote $OUT ($(wc -c < "$OUT") bytes)"
