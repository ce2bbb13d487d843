// Row tiles of the grouped (prefill) expert products (moe_mul_mm.comp, moe_mul_mm_dot.comp):
// each expert's grouped rows are cut into tiles of TILE_ROWS rows (moe_group's
// tile_rows), numbered consecutively over the experts; one workgroup row takes one tile.
// The includer declares `readonly buffer { uint group_info[]; }` (moe_group's layout:
// counts [0, E), offsets [E, 2E+1), tile starts [2E+1, 3E+2)). Provides
//   bool moe_row_tile(uint tile, uint n_expert, uint tile_rows, out uint expert,
//                     out uint row_begin, out uint rows_valid)
// false when `tile` is past the real tile count (the grid is sized for the worst case; such a
// workgroup has nothing to do). Uniform per workgroup when `tile` is gl_WorkGroupID-based.
#ifndef MOEVK_MOE_ROW_TILES_GLSL
#define MOEVK_MOE_ROW_TILES_GLSL

bool moe_row_tile(uint tile, uint n_expert, uint tile_rows, out uint expert, out uint row_begin,
                  out uint rows_valid) {
  const uint E = n_expert;
  expert = 0u;
  row_begin = 0u;
  rows_valid = 0u;
  if (tile >= group_info[3u * E + 1u]) return false;
  uint lo = 0u, hi = E;  // largest e with tile_start[e] <= tile (empty experts share a start)
  while (hi - lo > 1u) {
    const uint mid = (lo + hi) / 2u;
    if (group_info[2u * E + 1u + mid] <= tile) lo = mid; else hi = mid;
  }
  expert = lo;
  row_begin = group_info[E + lo] + (tile - group_info[2u * E + 1u + lo]) * tile_rows;
  rows_valid = min(tile_rows, group_info[E + lo + 1u] - row_begin);
  return true;
}

#endif
