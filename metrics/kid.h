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

}  // namespace sit::metrics
