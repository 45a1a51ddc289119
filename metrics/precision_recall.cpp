#include "metrics/precision_recall.h"

#include <strings.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.h"
#include "metrics/half.h"
#include "metrics/linalg.h"

namespace sit::metrics {
namespace {

constexpr const char* kModeNames[] = {"fp32", "adm-fp16"};
constexpr float kInf = std::numeric_limits<float>::infinity();

/// One feature set prepared for a distance mode: the matrix the product uses (the
/// original, or a half-rounded copy) and the squared norms in that mode's arithmetic.
struct Prepared {
  FeatureView original;
  std::vector<float> rounded;  // half-rounded copy (ADM-fp16 only)
  std::vector<float> norms16;  // squared norms in half arithmetic (ADM-fp16 only)
  std::vector<float> norms32;  // squared norms in float32 (fp32 mode and the fallback)
  FeatureView product_view(DistanceMode mode) const {
    if (mode == DistanceMode::kFp32) return original;
    return FeatureView{rounded.data(), original.rows, original.cols};
  }
  const float* norms(DistanceMode mode) const {
    return mode == DistanceMode::kFp32 ? norms32.data() : norms16.data();
  }
};

Prepared prepare(const FeatureView& f, DistanceMode mode) {
  Prepared p;
  p.original = f;
  const int64_t n = f.rows, d = f.cols;
  p.norms32.resize(static_cast<size_t>(n));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    const float* r = f.row(i);
    for (int64_t j = 0; j < d; ++j)
      s += static_cast<double>(r[j]) * r[j];
    p.norms32[i] = static_cast<float>(s);
  }
  if (mode == DistanceMode::kFp32) return p;
  p.rounded.resize(static_cast<size_t>(n * d));
  p.norms16.resize(static_cast<size_t>(n));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float* r = f.row(i);
    float* h = p.rounded.data() + i * d;
    float s = 0;  // TF sums the half squares with a float32 accumulator
    for (int64_t j = 0; j < d; ++j) {
      h[j] = round_to_half(r[j]);
      s += round_to_half(h[j] * h[j]);
    }
    p.norms16[i] = round_to_half(s);
  }
  return p;
}

// Hot loops compiled for several instruction sets, picked at run time (GCC/Clang ifunc),
// so they vectorise on AVX-512 / AVX2 machines without -march=native builds.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SIT_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SIT_MULTIVERSION
#endif

/// One row of a distance tile from its inner products, in float32. Returns non-zero when
/// any value is not finite.
SIT_MULTIVERSION
int distances_fp32(float* row, int64_t nc, float nu, const float* nv) {
  int bad = 0;
  for (int64_t j = 0; j < nc; ++j) {
    const float v = (nu - 2.0f * row[j]) + nv[j];
    row[j] = v > 0.0f ? v : 0.0f;
    bad |= !(std::fabs(v) <= std::numeric_limits<float>::max());
  }
  return bad;
}

/// The same in ADM's half arithmetic: norm_u - 2 * matmul(U, V^T) + norm_v, every op
/// rounded to half.
SIT_MULTIVERSION
int distances_fp16(float* row, int64_t nc, float nu, const float* nv) {
  int bad = 0;
  for (int64_t j = 0; j < nc; ++j) {
    const float g = round_to_half(row[j]);
    const float t = round_to_half(nu - 2.0f * g);
    const float v = round_to_half(t + nv[j]);
    row[j] = v > 0.0f ? v : 0.0f;
    bad |= !(std::fabs(v) <= 65504.0f);
  }
  return bad;
}

/// Squared distances of rows [r0, r0 + nr) of `a` to rows [c0, c0 + nc) of `b`, written
/// row-major into `out` (nr x nc). Returns false when any value is not finite.
bool distance_tile(const Prepared& a, int64_t r0, int64_t nr, const Prepared& b, int64_t c0,
                   int64_t nc, DistanceMode mode, float* out) {
  const FeatureView av = a.product_view(mode), bv = b.product_view(mode);
  const int64_t d = av.cols;
  // Column-major (nc x nr) = B_rows (nc x d) * A_rows^T (d x nr) is row-major (nr x nc).
  linalg::sgemm(true, false, nc, nr, d, 1.0f, bv.row(c0), d, av.row(r0), d, 0.0f, out, nc);
  const float* norms_a = a.norms(mode);
  const float* norms_b = b.norms(mode) + c0;
  const bool fp32 = mode == DistanceMode::kFp32;
  int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad)
  for (int64_t i = 0; i < nr; ++i) {
    float* row = out + i * nc;
    bad |= fp32 ? distances_fp32(row, nc, norms_a[r0 + i], norms_b)
                : distances_fp16(row, nc, norms_a[r0 + i], norms_b);
  }
  return bad == 0;
}

/// Inserts v into the ascending list top[0..m) if smaller than its last entry; when idx is
/// not null, the column index j moves along with its value in idx[0..m).
inline void insert_smallest(float* top, int32_t* idx, int m, float v, int64_t j) {
  if (!(v < top[m - 1])) return;
  int pos = m - 1;
  while (pos > 0 && top[pos - 1] > v) {
    top[pos] = top[pos - 1];
    if (idx) idx[pos] = idx[pos - 1];
    --pos;
  }
  top[pos] = v;
  if (idx) idx[pos] = static_cast<int32_t>(j);
}

/// Merges a row of distances (columns c0, c0 + 1, ...) into its m smallest (and their
/// columns when idx is not null). Most chunks of 16 hold nothing below the current m-th
/// smallest: a vectorised minimum rules them out first.
SIT_MULTIVERSION
void select_smallest(const float* row, int64_t nc, int64_t c0, float* top, int32_t* idx, int m) {
  constexpr int64_t kChunk = 16;
  int64_t j = 0;
  for (; j + kChunk <= nc; j += kChunk) {
    float lo = row[j];
    for (int64_t q = 1; q < kChunk; ++q)
      lo = row[j + q] < lo ? row[j + q] : lo;
    if (!(lo < top[m - 1])) continue;
    for (int64_t q = 0; q < kChunk; ++q)
      insert_smallest(top, idx, m, row[j + q], c0 + j + q);
  }
  for (; j < nc; ++j)
    insert_smallest(top, idx, m, row[j], c0 + j);
}

/// Marks which columns of a distance row fall inside their own radius (col_in) and
/// returns whether any falls inside the row's radius.
SIT_MULTIVERSION
uint8_t mark_inside(const float* row, int64_t nc, float row_radius, const float* col_radii,
                    uint8_t* col_in) {
  uint8_t inside = 0;
  for (int64_t j = 0; j < nc; ++j) {
    inside |= static_cast<uint8_t>(row[j] <= col_radii[j]);
    col_in[j] |= static_cast<uint8_t>(row[j] <= row_radius);
  }
  return inside;
}

void check_inputs(const FeatureView& f, const char* what, const PrecisionRecallOptions& o) {
  if (o.k < 1) fail("precision_recall: k must be >= 1, got ", o.k);
  if (o.block_size < 1) fail("precision_recall: block size must be >= 1, got ", o.block_size);
  if (o.tile_rows < 1) fail("precision_recall: tile rows must be >= 1, got ", o.tile_rows);
  if (f.rows < o.k + 1)
    fail("precision_recall: the ", what, " set needs at least k + 1 = ", o.k + 1, " rows, got ",
         f.rows);
}

/// Per-row k+1 smallest distances of rows [r0, r0+nr) against columns [c0, c0+nc), in
/// tiles. Returns false when any tile was not finite.
bool block_smallest(const Prepared& p, int64_t r0, int64_t nr, int64_t c0, int64_t nc,
                    DistanceMode mode, int m, int64_t tile_rows, std::vector<float>& tile,
                    float* top /* nr x m */) {
  bool finite = true;
  std::fill(top, top + nr * m, kInf);
  for (int64_t t0 = 0; t0 < nr; t0 += tile_rows) {
    const int64_t tr = std::min(tile_rows, nr - t0);
    finite &= distance_tile(p, r0 + t0, tr, p, c0, nc, mode, tile.data());
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < tr; ++i)
      select_smallest(tile.data() + i * nc, nc, c0, top + (t0 + i) * m, nullptr, m);
  }
  return finite;
}

std::vector<float> radii_impl(const Prepared& p, const PrecisionRecallOptions& o,
                              int64_t* fallback_blocks) {
  const int64_t n = p.original.rows;
  const int m = o.k + 1;
  const int64_t bs = o.block_size;
  const int64_t tile_rows = std::min(o.tile_rows, bs);
  std::vector<float> tile(static_cast<size_t>(tile_rows * std::min(bs, n)));
  std::vector<float> best(static_cast<size_t>(n * m), kInf);
  std::vector<float> block_top;
  for (int64_t r0 = 0; r0 < n; r0 += bs) {
    const int64_t nr = std::min(bs, n - r0);
    block_top.resize(static_cast<size_t>(nr * m));
    for (int64_t c0 = 0; c0 < n; c0 += bs) {
      const int64_t nc = std::min(bs, n - c0);
      bool finite = block_smallest(p, r0, nr, c0, nc, o.mode, m, tile_rows, tile, block_top.data());
      if (!finite && o.mode == DistanceMode::kAdmFp16) {
        ++*fallback_blocks;
        finite = block_smallest(p, r0, nr, c0, nc, DistanceMode::kFp32, m, tile_rows, tile,
                                block_top.data());
      }
      for (int64_t i = 0; i < nr; ++i)
        for (int q = 0; q < m; ++q)
          insert_smallest(&best[(r0 + i) * m], nullptr, m, block_top[i * m + q], 0);
    }
  }
  std::vector<float> radii(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    radii[i] = best[i * m + m - 1];
  return radii;
}

/// Marks, for one block, references inside some sample ball and samples inside some
/// reference ball. Returns false when any tile was not finite.
bool block_status(const Prepared& ref, const std::vector<float>& ref_radii, int64_t r0, int64_t nr,
                  const Prepared& smp, const std::vector<float>& smp_radii, int64_t c0, int64_t nc,
                  DistanceMode mode, int64_t tile_rows, std::vector<float>& tile, uint8_t* ref_in,
                  uint8_t* smp_in) {
  bool finite = true;
  std::fill(ref_in, ref_in + nr, 0);
  std::fill(smp_in, smp_in + nc, 0);
  const int n_threads = omp_get_max_threads();
  std::vector<uint8_t> local(static_cast<size_t>(n_threads * nc));
  for (int64_t t0 = 0; t0 < nr; t0 += tile_rows) {
    const int64_t tr = std::min(tile_rows, nr - t0);
    finite &= distance_tile(ref, r0 + t0, tr, smp, c0, nc, mode, tile.data());
    std::fill(local.begin(), local.end(), 0);
#pragma omp parallel
    {
      uint8_t* mine = local.data() + omp_get_thread_num() * nc;
      const float* sr = smp_radii.data() + c0;
#pragma omp for schedule(static)
      for (int64_t i = 0; i < tr; ++i) {
        ref_in[t0 + i] = mark_inside(tile.data() + i * nc, nc, ref_radii[r0 + t0 + i], sr, mine);
      }
    }
    for (int t = 0; t < n_threads; ++t)
      for (int64_t j = 0; j < nc; ++j)
        smp_in[j] |= local[t * nc + j];
  }
  return finite;
}

}  // namespace

const char* to_string(DistanceMode mode) {
  return kModeNames[static_cast<int>(mode)];
}

DistanceMode parse_distance_mode(const std::string& name) {
  for (int i = 0; i < 2; ++i)
    if (strcasecmp(name.c_str(), kModeNames[i]) == 0) return static_cast<DistanceMode>(i);
  fail("precision/recall distance mode must be one of fp32, adm-fp16; got '", name, "'");
}

std::vector<float> manifold_radii(const FeatureView& features,
                                  const PrecisionRecallOptions& options, int64_t* fallback_blocks) {
  check_inputs(features, "feature", options);
  int64_t fallbacks = 0;
  const Prepared p = prepare(features, options.mode);
  auto radii = radii_impl(p, options, &fallbacks);
  if (fallback_blocks) *fallback_blocks += fallbacks;
  return radii;
}

PrecisionRecallResult precision_recall(const FeatureView& reference, const FeatureView& samples,
                                       const PrecisionRecallOptions& o) {
  check_inputs(reference, "reference", o);
  check_inputs(samples, "sample", o);
  if (reference.cols != samples.cols)
    fail("precision_recall: feature dimensions must match, got ", reference.cols,
         " (reference) and ", samples.cols, " (samples)");
  PrecisionRecallResult result;
  const Prepared ref = prepare(reference, o.mode);
  const Prepared smp = prepare(samples, o.mode);
  const std::vector<float> ref_radii = radii_impl(ref, o, &result.fp32_fallback_blocks);
  const std::vector<float> smp_radii = radii_impl(smp, o, &result.fp32_fallback_blocks);

  const int64_t bs = o.block_size;
  const int64_t tile_rows = std::min(o.tile_rows, bs);
  std::vector<float> tile(static_cast<size_t>(tile_rows * std::min(bs, samples.rows)));
  std::vector<uint8_t> ref_status(static_cast<size_t>(reference.rows), 0);
  std::vector<uint8_t> smp_status(static_cast<size_t>(samples.rows), 0);
  std::vector<uint8_t> ref_in(static_cast<size_t>(bs)), smp_in(static_cast<size_t>(bs));
  for (int64_t r0 = 0; r0 < reference.rows; r0 += bs) {
    const int64_t nr = std::min(bs, reference.rows - r0);
    for (int64_t c0 = 0; c0 < samples.rows; c0 += bs) {
      const int64_t nc = std::min(bs, samples.rows - c0);
      bool finite = block_status(ref, ref_radii, r0, nr, smp, smp_radii, c0, nc, o.mode, tile_rows,
                                 tile, ref_in.data(), smp_in.data());
      if (!finite && o.mode == DistanceMode::kAdmFp16) {
        ++result.fp32_fallback_blocks;
        block_status(ref, ref_radii, r0, nr, smp, smp_radii, c0, nc, DistanceMode::kFp32, tile_rows,
                     tile, ref_in.data(), smp_in.data());
      }
      for (int64_t i = 0; i < nr; ++i)
        ref_status[r0 + i] |= ref_in[i];
      for (int64_t j = 0; j < nc; ++j)
        smp_status[c0 + j] |= smp_in[j];
    }
  }
  int64_t n_prec = 0, n_rec = 0;
  for (uint8_t s : smp_status)
    n_prec += s;
  for (uint8_t s : ref_status)
    n_rec += s;
  result.precision = static_cast<double>(n_prec) / static_cast<double>(samples.rows);
  result.recall = static_cast<double>(n_rec) / static_cast<double>(reference.rows);
  return result;
}

namespace {

/// Calls fn(first_row, rows, first_col, cols, tile) for every fp32 distance tile of a's
/// rows against b's, in the block and tile order of radii_impl and block_status (so the
/// distances are theirs bit for bit). `what` names the pair in the non-finite error.
template <class Fn>
void for_each_fp32_tile(const Prepared& a, const Prepared& b, const PrecisionRecallOptions& o,
                        const char* what, Fn&& fn) {
  const int64_t na = a.original.rows, nb = b.original.rows, bs = o.block_size;
  const int64_t tile_rows = std::min(o.tile_rows, bs);
  std::vector<float> tile(static_cast<size_t>(tile_rows * std::min(bs, nb)));
  for (int64_t r0 = 0; r0 < na; r0 += bs) {
    const int64_t nr = std::min(bs, na - r0);
    for (int64_t c0 = 0; c0 < nb; c0 += bs) {
      const int64_t nc = std::min(bs, nb - c0);
      for (int64_t t0 = 0; t0 < nr; t0 += tile_rows) {
        const int64_t tr = std::min(tile_rows, nr - t0);
        if (!distance_tile(a, r0 + t0, tr, b, c0, nc, DistanceMode::kFp32, tile.data()))
          fail("resampled precision/recall: non-finite ", what, " distances");
        fn(r0 + t0, tr, c0, nc, static_cast<const float*>(tile.data()));
      }
    }
  }
}

struct CandidatePair {
  int32_t reference, sample;
  float distance;
};

/// The (k+1)-th smallest of a multiset given as (distance, count) entries.
float multiset_radius(std::vector<std::pair<float, int32_t>>& entries, int k) {
  std::sort(entries.begin(), entries.end());
  int64_t cum = 0;
  for (const auto& [d, c] : entries) {
    cum += c;
    if (cum >= k + 1) return d;
  }
  return kInf;  // fewer than k + 1 draws: every reference is inside (numpy's inf radius)
}

}  // namespace

ResampledPrecisionRecall resampled_precision_recall(
    const FeatureView& reference, const std::vector<float>& reference_radii,
    const FeatureView& samples, const std::vector<std::vector<int32_t>>& weights,
    const PrecisionRecallOptions& o) {
  check_inputs(reference, "reference", o);
  check_inputs(samples, "sample", o);
  if (reference.cols != samples.cols)
    fail("precision_recall: feature dimensions must match, got ", reference.cols,
         " (reference) and ", samples.cols, " (samples)");
  if (o.mode != DistanceMode::kFp32)
    fail("resampled precision/recall computes fp32 distances; got mode ", to_string(o.mode));
  if (static_cast<int64_t>(reference_radii.size()) != reference.rows)
    fail("resampled precision/recall: ", reference_radii.size(), " reference radii for ",
         reference.rows, " reference rows");
  const int64_t n = samples.rows, nref = reference.rows;
  if (n > std::numeric_limits<int32_t>::max() || nref > std::numeric_limits<int32_t>::max())
    fail("resampled precision/recall: at most 2^31 - 1 rows per side");
  const int L = static_cast<int>(std::min<int64_t>(std::max(o.neighbours, o.k + 1), n));
  const DistanceMode mode = DistanceMode::kFp32;
  const Prepared ref = prepare(reference, mode);
  const Prepared smp = prepare(samples, mode);
  // Each sample's L nearest samples (distance, index), itself included, in the tiles of
  // radii_impl, so that all-ones weights reproduce its radii bit for bit.
  std::vector<float> top(static_cast<size_t>(n * L), kInf);
  std::vector<int32_t> top_idx(static_cast<size_t>(n * L), -1);
  for_each_fp32_tile(smp, smp, o, "sample",
                     [&](int64_t row0, int64_t tr, int64_t c0, int64_t nc, const float* tile) {
#pragma omp parallel for schedule(static)
                       for (int64_t i = 0; i < tr; ++i) {
                         const int64_t row = row0 + i;
                         select_smallest(tile + i * nc, nc, c0, &top[row * L], &top_idx[row * L],
                                         L);
                       }
                     });

  // Reference x sample distances: precision's indicators, and the candidate pairs.
  ResampledPrecisionRecall result;
  std::vector<uint8_t> inside(static_cast<size_t>(n), 0);
  std::vector<CandidatePair> pairs;
  const int n_threads = omp_get_max_threads();
  std::vector<std::vector<CandidatePair>> local_pairs(static_cast<size_t>(n_threads));
  std::vector<uint8_t> local_in(static_cast<size_t>(n_threads * n), 0);
  for_each_fp32_tile(
      ref, smp, o, "reference-sample",
      [&](int64_t row0, int64_t tr, int64_t c0, int64_t nc, const float* tile) {
#pragma omp parallel
        {
          const int t = omp_get_thread_num();
          uint8_t* in = local_in.data() + t * n;
          auto& mine = local_pairs[t];
#pragma omp for schedule(static)
          for (int64_t i = 0; i < tr; ++i) {
            const int64_t r = row0 + i;
            const float rr = reference_radii[r];
            const float* row = tile + i * nc;
            for (int64_t j = 0; j < nc; ++j) {
              const int64_t s = c0 + j;
              in[s] |= static_cast<uint8_t>(row[j] <= rr);
              if (row[j] <= top[s * L + L - 1])
                mine.push_back({static_cast<int32_t>(r), static_cast<int32_t>(s), row[j]});
            }
          }
        }
        int64_t held = static_cast<int64_t>(pairs.size());
        for (const auto& v : local_pairs)
          held += static_cast<int64_t>(v.size());
        if (held > o.max_pairs)
          fail("resampled precision/recall: more than ", o.max_pairs,
               " (reference, sample) candidate pairs; the sample balls hold unusually many "
               "references (leave recall out of the comparison, or raise the limit)");
        for (auto& v : local_pairs) {
          pairs.insert(pairs.end(), v.begin(), v.end());
          v.clear();
        }
      });
  for (int t = 0; t < n_threads; ++t)
    for (int64_t s = 0; s < n; ++s)
      inside[s] |= local_in[t * n + s];
  std::sort(pairs.begin(), pairs.end(), [](const CandidatePair& a, const CandidatePair& b) {
    return a.sample != b.sample ? a.sample < b.sample : a.reference < b.reference;
  });
  result.candidate_pairs = static_cast<int64_t>(pairs.size());

  std::vector<float> radius(static_cast<size_t>(n));
  std::vector<uint8_t> state(static_cast<size_t>(n));  // 0 not drawn, 1 radius read, 2 full row
  std::vector<uint8_t> covered(static_cast<size_t>(nref));
  const int64_t bs = o.block_size;  // the full-row fallback's column blocks
  std::vector<float> column(static_cast<size_t>(std::max(n, nref)));
  for (const auto& w : weights) {
    if (static_cast<int64_t>(w.size()) != n)
      fail("resampled precision/recall: ", w.size(), " weights for ", n, " sample rows");
    double drawn = 0, in_sum = 0;
    for (int64_t s = 0; s < n; ++s) {
      drawn += w[s];
      in_sum += static_cast<double>(w[s]) * inside[s];
    }
    if (drawn <= 0) fail("resampled precision/recall: a weight vector draws no sample");
    result.precision.push_back(in_sum / drawn);

#pragma omp parallel for schedule(static)
    for (int64_t s = 0; s < n; ++s) {
      state[s] = 0;
      if (w[s] == 0) continue;
      int64_t cum = 0;
      state[s] = 2;
      for (int q = 0; q < L; ++q) {
        cum += w[top_idx[s * L + q]];
        if (cum >= o.k + 1) {
          radius[s] = top[s * L + q];
          state[s] = 1;
          break;
        }
      }
    }
    std::fill(covered.begin(), covered.end(), 0);
    for (const CandidatePair& p : pairs)
      if (state[p.sample] == 1 && p.distance <= radius[p.sample]) covered[p.reference] = 1;
    // Radii past the kept neighbours: the sample's full row, then its reference column.
    for (int64_t s = 0; s < n; ++s) {
      if (state[s] != 2) continue;
      ++result.full_rows;
      std::vector<std::pair<float, int32_t>> entries;
      for (int64_t c0 = 0; c0 < n; c0 += bs) {
        const int64_t nc = std::min(bs, n - c0);
        distance_tile(smp, s, 1, smp, c0, nc, mode, column.data());
        for (int64_t j = 0; j < nc; ++j)
          if (w[c0 + j]) entries.emplace_back(column[j], w[c0 + j]);
      }
      const float rs = multiset_radius(entries, o.k);
      for (int64_t r0 = 0; r0 < nref; r0 += bs) {
        const int64_t nr = std::min(bs, nref - r0);
        distance_tile(ref, r0, nr, smp, s, 1, mode, column.data());
        for (int64_t i = 0; i < nr; ++i)
          if (column[i] <= rs) covered[r0 + i] = 1;
      }
    }
    int64_t n_cov = 0;
    for (uint8_t c : covered)
      n_cov += c;
    result.recall.push_back(static_cast<double>(n_cov) / static_cast<double>(nref));
  }
  return result;
}

}  // namespace sit::metrics
