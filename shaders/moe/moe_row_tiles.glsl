// Which tile of a grouped (prefill) expert product a workgroup computes (moe_mul_mm.comp,
// moe_mul_mm_dot.comp, moe_mul_mm_coopmat.comp). Each expert's grouped rows are cut into row
// tiles of TILE_ROWS rows (moe_group's tile_rows), numbered consecutively over the experts; the
// product's output columns (weight rows) into n_col_tiles column tiles. The workgroups of a
// dispatch (max_row_tiles, n_col_tiles, 1) are numbered w = y * gl_NumWorkGroups.x + x and
// ordered expert-major, then column tile, then the expert's row tile:
//   w = tile_start[e] * n_col_tiles + col_tile * tiles_e + row_tile_in_e,
// so the row tiles that read one expert's slice of weights are neighbours: hardware that
// launches workgroups in order runs them together and reads those weight bytes from memory once,
// then from cache (ordered column tile first, an expert of many row tiles, Mixtral's ~128 rows
// each at 512 tokens, streamed all its weights from memory once per row tile). The expert's
// activation rows are re-read per column tile from a short distance back.
// The includer declares `readonly buffer { uint group_info[]; }` (moe_group's layout:
// counts [0, E), offsets [E, 2E+1), tile starts [2E+1, 3E+2)). Provides
//   bool moe_grid_tile(uint w, uint n_expert, uint tile_rows, uint n_col_tiles, out uint expert,
//                      out uint row_begin, out uint rows_valid, out uint col_tile)
// false when w is past the real tiles (the grid is sized for the worst case, counts are never
// read back: such a workgroup has nothing to do). Uniform per workgroup.
#ifndef MOEVK_MOE_ROW_TILES_GLSL
#define MOEVK_MOE_ROW_TILES_GLSL

bool moe_grid_tile(uint w, uint n_expert, uint tile_rows, uint n_col_tiles, out uint expert, out uint row_begin,
                   out uint rows_valid, out uint col_tile) {
  const uint E = n_expert;
  expert = 0u;
  row_begin = 0u;
  rows_valid = 0u;
  col_tile = 0u;
  // tile_start[e] * n_col_tiles <= w  <=>  tile_start[e] <= w / n_col_tiles (integers).
  const uint tile = w / n_col_tiles;
  if (tile >= group_info[3u * E + 1u]) return false;
  uint lo = 0u, hi = E;  // largest e with tile_start[e] <= tile (empty experts share a start)
  while (hi - lo > 1u) {
    const uint mid = (lo + hi) / 2u;
    if (group_info[2u * E + 1u + mid] <= tile) lo = mid; else hi = mid;
  }
  expert = lo;
  const uint first_tile = group_info[2u * E + 1u + lo];
  const uint tiles_e = group_info[2u * E + 2u + lo] - first_tile;  // >= 1: tile lies in it
  const uint local = w - first_tile * n_col_tiles;
  col_tile = local / tiles_e;
  row_begin = group_info[E + lo] + (local % tiles_e) * tile_rows;
  rows_valid = min(tile_rows, group_info[E + lo + 1u] - row_begin);
  return true;
}

#endif
