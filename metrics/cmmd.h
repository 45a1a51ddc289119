#pragma once
/// CMMD (Jayasumana et al., CVPR 2024): the squared maximum mean discrepancy between CLIP
/// image embeddings of two sets with a Gaussian RBF kernel, x 1000.
///   k(x, y) = exp(-|x - y|^2 / (2 sigma^2)), sigma = 10,
///   CMMD = 1000 (mean k(X, X) + mean k(Y, Y) - 2 mean k(X, Y)),
/// the biased (V-statistic) estimator over the full n x n, m x m and n x m matrices, as
/// google-research cmmd/distance.py: mmd codes it (the paper calls it unbiased; the code
/// is what published numbers used). Rows are L2-normalised first (the CLIP embedding is
/// the normalised projection); squared distances are |x|^2 + |y|^2 - 2 x.y, unclamped.
/// Unlike the reference's float32, the kernel means are accumulated in double: the three
/// terms (~0.99 each) cancel to ~1e-4, so float32 differs from double in the 4th digit.

#include <cstdint>

#include "metrics/features.h"

namespace sit::metrics {

struct CmmdOptions {
  double sigma = 10.0;   ///< kernel bandwidth (cmmd: _SIGMA)
  double scale = 1000.0; ///< (cmmd: _SCALE)
  int64_t tile = 1024;   ///< rows per kernel tile (memory: tile^2 doubles)
};

struct CmmdResult {
  double value = 0;                    ///< scale x MMD^2
  double k_xx = 0, k_yy = 0, k_xy = 0; ///< the three kernel means
};

/// reference: (n, d) rows, samples: (m, d) rows, n, m >= 1; symmetric in its arguments.
/// Memory: both sets as normalised doubles, (n + m) d x 8 bytes. Throws sit::Error on
/// mismatched widths, empty sets, non-finite or all-zero rows.
CmmdResult cmmd(const FeatureView& reference, const FeatureView& samples,
                const CmmdOptions& options = {});
/// The same on double rows (row-major, n x d and m x d).
CmmdResult cmmd(const double* reference, int64_t n, const double* samples, int64_t m, int64_t d,
                const CmmdOptions& options = {});

}  // namespace sit::metrics
