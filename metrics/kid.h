#pragma once
/// Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 with the cubic
/// polynomial kernel k(x, y) = (x.y / d + 1)^3 over random subsets. Not part of ADM;
/// subsets are seeded here (only torch-fidelity seeds its own).

#include <cstdint>
#include <vector>

#include "metrics/features.h"

namespace sit::metrics {

struct KidOptions {
  int64_t subsets = 100;
  /// Subset size is min(subset_size, N_reference, N_samples).
  int64_t subset_size = 1000;
  uint64_t seed = 0;
};

struct KidResult {
  double mean = 0;
  double std = 0;  ///< population std over subsets (torch-fidelity's convention)
  int64_t subset_size = 0;
  std::vector<double> subset_values;
};

KidResult kernel_inception_distance(const FeatureView& reference, const FeatureView& samples,
                                    const KidOptions& options = {});

/// The reference's part of the all-rows KID: the mean of k(y_r, y_s) over r != s.
double kid_reference_term(const FeatureView& reference, int64_t tile = 2048);

/// KID over all rows — the unbiased MMD^2 U-statistic that the subset average estimates —
/// with sample row i counted w[i] times, for each weight vector (a paired bootstrap's
/// resamples, see metrics/bootstrap.h). A resample's copies of one row are distinct
/// draws, as in the resampled set itself: the sample term is (w'Kw - sum_i w_i k_ii) /
/// (W (W - 1)), the cross term sum_i w_i sum_r k(x_i, y_r) / (W M), W = sum_i w_i.
/// reference_term: kid_reference_term(reference). One pass over the sample kernel matrix
/// in tiles for all weight vectors together: N^2 D / 2 multiply-adds for the kernel and
/// N^2 (R + 1) / 2 for the quadratic forms; the kernel matrix is never held whole.
std::vector<double> resampled_kid(const FeatureView& reference, double reference_term,
                                  const FeatureView& samples,
                                  const std::vector<std::vector<int32_t>>& weights,
                                  int64_t tile = 2048);

}  // namespace sit::metrics
