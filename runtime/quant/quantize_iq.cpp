// CPU quantization to the codebook formats IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS and
// IQ3_S, so `moevk make-model` can write the files published with these types and the tests can
// make them. Simpler than ggml's (which weighs elements by an importance matrix and searches a
// neighbourhood of candidate scales): per scale group a least-squares scale (started from the
// group's largest value on each level of the codebook, the best kept), per run of 8 (IQ3: 4)
// elements the nearest codebook entry by squared error (exactly: the lattice point of per-element
// nearest levels, or where that is not in the codebook a list of the entries that can be
// nearest, see Codebook) (without the search, ScaleSearch::MinMax: one start,
// the largest value on the top level, and no refit, ~20x faster); signs from the values, where the format keeps only an
// even count of minus signs the smallest element's is flipped; IQ1's delta sign by trying both.
// The layout is exactly ggml's (tests/quant/ggml_dequant_test.cpp checks the decoder this
// inverts); quality is bounded in tests/quant/roundtrip_test.cpp.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "quant/blocks.hpp"
#include "quant/half.hpp"
#include "quant/iq_grids.hpp"
#include "quant/quantize_internal.hpp"

namespace moevk::quant::detail {
namespace {

enum class Signs { None, Parity, Free };

// One codebook: entries of `run` levels, the lattice of per-element nearest levels mapped back to
// entries (-1 where that point is not in the codebook), and for each point not in it the entries
// that can be nearest to a target in its cell.
//
// Why the lists are exact: let t's per-element nearest levels be the lattice point p (so
// |t_j - p_j| <= h_j, half the wider gap beside p_j), and e* an entry nearest to p. An entry e is
// nearer to t than e* only if |t - e|^2 < |t - e*|^2, i.e.
//   |p - e|^2 - |p - e*|^2 < 2 (e* - e) . (t - p) <= 2 sum_j |e*_j - e_j| h_j,
// so the entries meeting that bound hold t's nearest. A target beyond the outer levels by more
// than h_j (a refit scale can put one there) is outside the bound's cell and is searched in full.
// The bound covers the whole cell, so a list holds 9 (IQ3_XXS) to 656 (IQ1) entries on average;
// each is sorted by |p - e|^2 (an integer: every grid level is), and a lookup stops at the first
// entry with |p - e| - |t - p| above the best error so far (the triangle inequality: no later
// entry can be nearer).
struct Codebook {
  int run = 8, entries = 0;
  std::vector<float> level;     // [entries][run]
  std::vector<float> distinct;  // the levels any element takes, ascending
  std::vector<float> half_gap;  // per distinct level: half the wider gap beside it
  std::vector<int> lattice;     // digits base distinct.size(), element 0 least significant
  std::vector<uint32_t> first;  // per lattice point: its candidates' start in `candidates`
  std::vector<uint32_t> candidates;  // entry | |p - e|^2 << 16 (at most 13456, IQ3_XXS's), ascending

  template <class Level>
  Codebook(int run_, int entries_, Level level_of) : run(run_), entries(entries_), level(size_t(run_) * entries_) {
    for (int i = 0; i < entries; ++i)
      for (int j = 0; j < run; ++j) level[size_t(i) * run + j] = float(level_of(i, j));
    distinct = level;
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    const size_t base = distinct.size();
    half_gap.assign(base, 0.0f);
    for (size_t k = 0; k < base; ++k) {
      const float below = k > 0 ? distinct[k] - distinct[k - 1] : 0.0f;
      const float above = k + 1 < base ? distinct[k + 1] - distinct[k] : 0.0f;
      half_gap[k] = 0.5f * std::max(below, above);
    }
    size_t points = 1;
    for (int j = 0; j < run; ++j) points *= base;
    lattice.assign(points, -1);
    for (int i = 0; i < entries; ++i) {
      size_t key = 0, mul = 1;
      for (int j = 0; j < run; ++j, mul *= base)
        key += mul * size_t(std::lower_bound(distinct.begin(), distinct.end(), level[size_t(i) * run + j]) - distinct.begin());
      lattice[key] = i;
    }
    first.assign(points + 1, 0);
    std::vector<double> dist(entries);
    for (size_t key = 0; key < points; ++key) {
      first[key] = uint32_t(candidates.size());
      if (lattice[key] >= 0) continue;
      int digit[8];
      for (size_t j = 0, rest = key; j < size_t(run); ++j, rest /= base) digit[j] = int(rest % base);
      int nearest_entry = 0;
      for (int i = 0; i < entries; ++i) {
        double d = 0;
        for (int j = 0; j < run; ++j) {
          const double diff = double(distinct[digit[j]]) - level[size_t(i) * run + j];
          d += diff * diff;
        }
        dist[i] = d;
        if (d < dist[nearest_entry]) nearest_entry = i;
      }
      const float* star = &level[size_t(nearest_entry) * run];
      for (int i = 0; i < entries; ++i) {
        double bound = 0;
        for (int j = 0; j < run; ++j) bound += 2.0 * std::fabs(double(star[j]) - level[size_t(i) * run + j]) * half_gap[digit[j]];
        if (dist[i] - dist[nearest_entry] <= bound * (1.0 + 1e-9))
          candidates.push_back(uint32_t(i) | uint32_t(std::lround(dist[i])) << 16);
      }
      std::sort(candidates.begin() + first[key], candidates.end());
    }
    first[points] = uint32_t(candidates.size());
  }

  float error(int i, const float* t) const {
    const float* l = &level[size_t(i) * run];
    float err = 0;
    for (int j = 0; j < run; ++j) err += (t[j] - l[j]) * (t[j] - l[j]);
    return err;
  }

  // The entry nearest to t[0..run) in squared error (the lowest index among equals).
  int nearest(const float* t) const {
    size_t key = 0, mul = 1;
    bool in_cell = true;
    float r2 = 0;  // |t - p|^2
    for (int j = 0; j < run; ++j, mul *= distinct.size()) {
      size_t best = 0;
      for (size_t k = 1; k < distinct.size(); ++k)
        if (std::fabs(t[j] - distinct[k]) < std::fabs(t[j] - distinct[best])) best = k;
      const float diff = t[j] - distinct[best];
      in_cell = in_cell && std::fabs(diff) <= half_gap[best];
      r2 += diff * diff;
      key += mul * best;
    }
    if (lattice[key] >= 0) return lattice[key];
    if (!in_cell) return nearest_exhaustive(t);
    int best = -1;
    float best_err = std::numeric_limits<float>::infinity();
    const float r = std::sqrt(r2);
    for (uint32_t c = first[key]; c < first[key + 1]; ++c) {
      const uint32_t packed = candidates[c];
      // With a relative margin for float rounding: stopping late costs a lookup, early a miss.
      if (std::sqrt(float(packed >> 16)) - r > std::sqrt(best_err) * 1.0001f + 1e-4f) break;
      const int i = int(packed & 0xFFFFu);
      const float err = error(i, t);
      if (err < best_err || (err == best_err && i < best)) {  // the list is by distance, not index
        best_err = err;
        best = i;
      }
    }
    return best;
  }

  // The exhaustive search the lists stand in for (targets outside their cells; tests/quant
  // compare the two), the lowest index among equals.
  int nearest_exhaustive(const float* t) const {
    int best = 0;
    float best_err = std::numeric_limits<float>::infinity();
    for (int i = 0; i < entries; ++i) {
      const float err = error(i, t);
      if (err < best_err) {
        best_err = err;
        best = i;
      }
    }
    return best;
  }
};

const Codebook& codebook(Type t) {
  auto u64 = [](const uint64_t* grid, bool is_signed) {
    return [grid, is_signed](int i, int j) { return is_signed ? grid_level_signed(grid[i], j) : grid_level(grid[i], j); };
  };
  auto u32 = [](const uint32_t* grid) { return [grid](int i, int j) { return int((grid[i] >> (8 * j)) & 0xFF); }; };
  switch (t) {
    case Type::IQ2_XXS: { static const Codebook c(8, 256, u64(kIQ2XXSGrid, false)); return c; }
    case Type::IQ2_XS: { static const Codebook c(8, 512, u64(kIQ2XSGrid, false)); return c; }
    case Type::IQ2_S: { static const Codebook c(8, 1024, u64(kIQ2SGrid, false)); return c; }
    case Type::IQ3_XXS: { static const Codebook c(4, 256, u32(kIQ3XXSGrid)); return c; }
    case Type::IQ3_S: { static const Codebook c(4, 512, u32(kIQ3SGrid)); return c; }
    default: { static const Codebook c(8, 2048, u64(kIQ1SGrid, true)); return c; }  // IQ1_S, IQ1_M
  }
}

// How a format scales its runs.
struct Spec {
  Signs signs;
  int scale_group;     // elements per scale code
  int codes;           // scale codes 0 .. codes-1
  float mult_a, mult_b;  // a group's scale is d * (mult_a + mult_b * code)
  int delta_group;     // IQ1: elements per delta sign; 0: no delta
};

Spec spec_of(Type t) {
  switch (t) {
    case Type::IQ2_XXS: return {Signs::Parity, 32, 16, 0.125f, 0.25f, 0};
    case Type::IQ2_XS: return {Signs::Parity, 16, 16, 0.125f, 0.25f, 0};
    case Type::IQ2_S: return {Signs::Free, 16, 16, 0.125f, 0.25f, 0};
    case Type::IQ3_XXS: return {Signs::Parity, 32, 16, 0.25f, 0.5f, 0};
    case Type::IQ3_S: return {Signs::Free, 32, 16, 1.0f, 2.0f, 0};
    case Type::IQ1_S: return {Signs::None, 32, 8, 1.0f, 2.0f, 32};
    default: return {Signs::None, 16, 8, 1.0f, 2.0f, 8};  // IQ1_M
  }
}

// The chosen encoding of one 256-element super-block.
struct Plan {
  uint16_t d = 0;
  std::array<int, QK_K / 16> code{};        // per scale group (QK_K / scale_group used)
  std::array<int, QK_K / 4> index{};        // per run (QK_K / run used)
  std::array<uint32_t, QK_K / 8> signs{};   // per 8 elements: bit j set = element j negative
  std::array<bool, QK_K / 8> minus_delta{}; // per delta group
};

// Sign bits of 8 values; with Parity the count of minus signs is made even by flipping the
// smallest element's sign.
uint32_t choose_signs(const float* x, Signs mode) {
  if (mode == Signs::None) return 0;
  uint32_t bits = 0;
  int smallest = 0;
  for (int j = 0; j < 8; ++j) {
    if (x[j] < 0) bits |= 1u << j;
    if (std::fabs(x[j]) < std::fabs(x[smallest])) smallest = j;
  }
  if (mode == Signs::Parity && (std::popcount(bits) & 1)) bits ^= 1u << smallest;
  return bits;
}

// Runs of group [first, first + n) quantized at scale s: their signs, indices and (IQ1) delta
// signs go into the plan; returns sum x*q and sum q*q of the values as decoded at scale 1.
void choose_runs(const Codebook& book, const Spec& spec, const float* x, int first, int n, float s, Plan& p,
                 double& sxq, double& sqq) {
  sxq = sqq = 0;
  const int run = book.run;
  const float inv = s > 0 ? 1.0f / s : 0.0f;
  // The elements one delta sign covers (IQ1), else one run of signs.
  const int unit = spec.delta_group ? spec.delta_group : 8;
  for (int u = first; u < first + n; u += unit) {
    for (int i = u; i < u + unit; i += 8) p.signs[i / 8] = choose_signs(x + i, spec.signs);
    // Indices of the unit's runs at delta sign `minus`; returns their squared error (scaled).
    auto fit = [&](bool minus, bool commit) {
      const float delta = spec.delta_group == 0 ? 0.0f : (minus ? -kIQ1Delta : kIQ1Delta);
      double err = 0;
      for (int i = u; i < u + unit; i += run) {
        const uint32_t signs = p.signs[i / 8] >> (i % 8);
        float t[8];
        for (int j = 0; j < run; ++j) t[j] = ((signs >> j) & 1u ? -x[i + j] : x[i + j]) * inv - delta;
        const int e = book.nearest(t);
        for (int j = 0; j < run; ++j) {
          const float level = book.level[size_t(e) * run + j];
          err += double(t[j] - level) * (t[j] - level);
          if (commit) {
            const float q = ((signs >> j) & 1u ? -1.0f : 1.0f) * (level + delta);
            sxq += double(x[i + j]) * q;
            sqq += double(q) * q;
          }
        }
        if (commit) p.index[i / run] = e;
      }
      return err;
    };
    bool minus = false;
    if (spec.delta_group) minus = fit(true, false) < fit(false, false);
    if (spec.delta_group) p.minus_delta[u / spec.delta_group] = minus;
    fit(minus, true);
  }
}

Plan plan_block(Type t, const float* x, bool search) {
  const Codebook& book = codebook(t);
  const Spec spec = spec_of(t);
  const int groups = QK_K / spec.scale_group;
  Plan p;
  // Each group's own least-squares scale: its largest value put on each positive level in turn
  // (the top one alone can trap a flat group among mixed entries), refit twice, the best kept.
  std::array<float, QK_K / 16> scale{};
  float max_scale = 0;
  for (int g = 0; g < groups; ++g) {
    const int first = g * spec.scale_group, n = spec.scale_group;
    float amax = 0;
    double sum_xx = 0;
    for (int j = 0; j < n; ++j) {
      amax = std::max(amax, std::fabs(x[first + j]));
      sum_xx += double(x[first + j]) * x[first + j];
    }
    float best_s = 0;
    double best_err = sum_xx;  // the error of scale 0
    for (float level : book.distinct) {
      // Without the search (make-model's random weights): the top level only, no refit.
      if (level <= 0 || amax == 0 || (!search && level != book.distinct.back())) continue;
      float s = amax / level;
      double sxq = 0, sqq = 0;
      for (int it = 0; it < (search ? 3 : 1); ++it) {
        choose_runs(book, spec, x, first, n, s, p, sxq, sqq);
        if (it == 2 || !search || sqq <= 0 || sxq <= 0) break;
        s = float(sxq / sqq);
      }
      const double err = sum_xx - 2.0 * s * sxq + double(s) * s * sqq;
      if (err < best_err) {
        best_err = err;
        best_s = s;
      }
    }
    scale[g] = best_s;
    max_scale = std::max(max_scale, best_s);
  }
  const float mult_top = spec.mult_a + spec.mult_b * float(spec.codes - 1);
  p.d = fp32_to_fp16(max_scale / mult_top);
  const float d = fp16_to_fp32(p.d);
  for (int g = 0; g < groups; ++g) {
    int best = 0;
    for (int c = 1; c < spec.codes; ++c)
      if (std::fabs(d * (spec.mult_a + spec.mult_b * c) - scale[g]) <
          std::fabs(d * (spec.mult_a + spec.mult_b * best) - scale[g]))
        best = c;
    p.code[g] = best;
    double sxq, sqq;
    choose_runs(book, spec, x, g * spec.scale_group, spec.scale_group, d * (spec.mult_a + spec.mult_b * best), p, sxq,
                sqq);
  }
  return p;
}

void pack(Type t, const Plan& p, void* out) {
  switch (t) {
    case Type::IQ2_XXS: {
      BlockIQ2_XXS b{};
      b.d = p.d;
      for (int s = 0; s < 8; ++s) {
        uint32_t idx = 0, aux = uint32_t(p.code[s]) << 28;
        for (int l = 0; l < 4; ++l) {
          idx |= uint32_t(p.index[4 * s + l]) << (8 * l);
          aux |= (p.signs[4 * s + l] & 127u) << (7 * l);
        }
        b.qs[4 * s] = uint16_t(idx), b.qs[4 * s + 1] = uint16_t(idx >> 16);
        b.qs[4 * s + 2] = uint16_t(aux), b.qs[4 * s + 3] = uint16_t(aux >> 16);
      }
      std::memcpy(out, &b, sizeof b);
      return;
    }
    case Type::IQ2_XS: {
      BlockIQ2_XS b{};
      b.d = p.d;
      for (int r = 0; r < 32; ++r) b.qs[r] = uint16_t(p.index[r] | ((p.signs[r] & 127u) << 9));
      for (int s = 0; s < 8; ++s) b.scales[s] = uint8_t(p.code[2 * s] | (p.code[2 * s + 1] << 4));
      std::memcpy(out, &b, sizeof b);
      return;
    }
    case Type::IQ2_S: {
      BlockIQ2_S b{};
      b.d = p.d;
      for (int r = 0; r < 32; ++r) {
        b.qs[r] = uint8_t(p.index[r]);
        b.qs[32 + r] = uint8_t(p.signs[r]);
        b.qh[r / 4] = uint8_t(b.qh[r / 4] | ((p.index[r] >> 8) << (2 * (r % 4))));
      }
      for (int s = 0; s < 8; ++s) b.scales[s] = uint8_t(p.code[2 * s] | (p.code[2 * s + 1] << 4));
      std::memcpy(out, &b, sizeof b);
      return;
    }
    case Type::IQ3_XXS: {
      BlockIQ3_XXS b{};
      b.d = p.d;
      for (int r = 0; r < 64; ++r) b.qs[r] = uint8_t(p.index[r]);
      for (int s = 0; s < 8; ++s) {
        uint32_t aux = uint32_t(p.code[s]) << 28;
        for (int l = 0; l < 4; ++l) aux |= (p.signs[4 * s + l] & 127u) << (7 * l);
        std::memcpy(b.qs + 64 + 4 * s, &aux, 4);
      }
      std::memcpy(out, &b, sizeof b);
      return;
    }
    case Type::IQ3_S: {
      BlockIQ3_S b{};
      b.d = p.d;
      for (int r = 0; r < 64; ++r) {
        b.qs[r] = uint8_t(p.index[r]);
        // Entry r is half (r % 2) of run r / 2; its 9th bit sits at bit r % 8 of qh[r / 8].
        b.qh[r / 8] = uint8_t(b.qh[r / 8] | ((p.index[r] >> 8) << (r % 8)));
      }
      for (int r = 0; r < 32; ++r) b.signs[r] = uint8_t(p.signs[r]);
      for (int s = 0; s < 4; ++s) b.scales[s] = uint8_t(p.code[2 * s] | (p.code[2 * s + 1] << 4));
      std::memcpy(out, &b, sizeof b);
      return;
    }
    case Type::IQ1_S: {
      BlockIQ1_S b{};
      b.d = p.d;
      for (int s = 0; s < 8; ++s) {
        uint32_t qh = uint32_t(p.code[s]) << 12 | (p.minus_delta[s] ? 0x8000u : 0u);
        for (int l = 0; l < 4; ++l) {
          b.qs[4 * s + l] = uint8_t(p.index[4 * s + l]);
          qh |= uint32_t(p.index[4 * s + l] >> 8) << (3 * l);
        }
        b.qh[s] = uint16_t(qh);
      }
      std::memcpy(out, &b, sizeof b);
      return;
    }
    default: {  // IQ1_M
      BlockIQ1_M b{};
      uint16_t sc[4] = {};
      for (int r = 0; r < 32; ++r) {
        b.qs[r] = uint8_t(p.index[r]);
        const uint32_t nibble = uint32_t(p.index[r] >> 8) | (p.minus_delta[r] ? 8u : 0u);
        b.qh[r / 2] = uint8_t(b.qh[r / 2] | (nibble << (4 * (r % 2))));
      }
      for (int g = 0; g < 16; ++g) sc[g / 4] = uint16_t(sc[g / 4] | (p.code[g] << (3 * (g % 4))));
      for (int k = 0; k < 4; ++k) sc[k] = uint16_t(sc[k] | (((p.d >> (4 * k)) & 0xF) << 12));
      std::memcpy(b.scales, sc, sizeof sc);
      std::memcpy(out, &b, sizeof b);
      return;
    }
  }
}

}  // namespace

int iq_nearest_entry(Type t, const float* target, bool exhaustive) {
  switch (t) {
    case Type::IQ2_XXS: case Type::IQ2_XS: case Type::IQ2_S: case Type::IQ3_XXS: case Type::IQ3_S:
    case Type::IQ1_S: case Type::IQ1_M: break;
    default: return -1;
  }
  const Codebook& book = codebook(t);
  return exhaustive ? book.nearest_exhaustive(target) : book.nearest(target);
}

float iq_entry_error(Type t, int i, const float* target) { return codebook(t).error(i, target); }

bool quantize_iq(Type t, const float* x, void* dst, uint64_t n, bool search) {
  switch (t) {
    case Type::IQ2_XXS: case Type::IQ2_XS: case Type::IQ2_S: case Type::IQ3_XXS: case Type::IQ3_S:
    case Type::IQ1_S: case Type::IQ1_M: break;
    default: return false;
  }
  const uint32_t bytes = type_info(t).type_size;
  for (uint64_t i = 0; i < n / QK_K; ++i)
    pack(t, plan_block(t, x + i * QK_K, search), static_cast<uint8_t*>(dst) + i * bytes);
  return true;
}

}  // namespace moevk::quant::detail
