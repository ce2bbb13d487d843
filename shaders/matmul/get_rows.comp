#version 450
// Embedding lookup: out[t][c] = dequantized table[token_ids[t]][c], for every weight type.
// Inputs:  table (binding 0) rows of row_bytes bytes in their block layout, starting at byte
//          weight_base of the bound range; token_ids (binding 1) u32 [n_tokens].
// Output:  out (binding 2) f32 [n_tokens][cols]. The binding holds table rows row_begin ..
//          row_begin + n_rows - 1 (a table larger than one binding is gathered in chunks, one
//          dispatch each); ids outside it are skipped, except that the dispatch with
//          row_begin == 0 writes zeros for ids >= total_rows.
// Dispatch: (div_up(cols / 8, WG), min(n_tokens, 65535), div_up(n_tokens, 65535)): one thread per
// 8 consecutive elements; token t = z * gl_NumWorkGroups.y + y (batches past the grid's 65535).
// Specialization: constant 0 = workgroup size.
#include "types.glsl"

layout(constant_id = 0) const uint WG = 64;
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Weights { uint weight_words[]; };
layout(std430, binding = 0) readonly buffer WeightsWide { uvec2 weight_dwords[]; };  // the same buffer, 64-bit loads
layout(std430, binding = 1) readonly buffer TokenIds { uint token_ids[]; };
layout(std430, binding = 2) writeonly buffer Out { vec4 out_values[]; };
layout(push_constant) uniform Push {
  uint cols, n_rows, n_tokens, weight_base, row_bytes, row_begin, total_rows;
} pc;

#define WEIGHT_WORD(i) weight_words[(i)]
#define WEIGHT_UVEC2(i) weight_dwords[(i)]
#define QUANT_ROW_COLS pc.cols
#include "quant.glsl"

void main() {
  const uint group = gl_GlobalInvocationID.x;  // 8 elements
  const uint t = gl_WorkGroupID.z * gl_NumWorkGroups.y + gl_WorkGroupID.y;
  if (group * 8u >= pc.cols || t >= pc.n_tokens) return;
  const uint id = token_ids[t];
  vec4 v0 = vec4(0.0), v1 = vec4(0.0);
  if (id >= pc.row_begin && id - pc.row_begin < pc.n_rows) {
    const uint e = group * 8u;
    dequant8(quant_block(pc.weight_base + (id - pc.row_begin) * pc.row_bytes, e / QK), e % QK, v0, v1);
  } else if (!(id >= pc.total_rows && pc.row_begin == 0u)) {
    return;  // another chunk's row
  }
  const uint o = (t * pc.cols + group * 8u) / 4u;
  out_values[o] = v0;
  out_values[o + 1u] = v1;
}
