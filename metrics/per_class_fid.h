#pragma once
/// Per-class FID and intra-FID (Miyato & Koyama 2018): FID_c is the Frechet distance
/// between the generated rows labelled c and the reference rows of class c; intra-FID is
/// the mean of FID_c over the reference's classes (metrics_modern.md section 5). No
/// reference implementation exists in the papers' code; this follows the definition.
/// A second, different quantity is also called per-class FID in the literature: class-c
/// samples against the whole reference (`against_whole_reference`); results name which.
/// With ~50 samples per class the generated covariance is rank-deficient and FID_c is
/// dominated by small-sample bias: compare only at equal per-class counts.

#include <cstdint>
#include <vector>

#include "metrics/feature_stats.h"
#include "metrics/features.h"
#include "metrics/frechet.h"

namespace sit::metrics {

struct PerClassFidOptions {
  /// Fewest rows of a class on either side (a covariance with divisor N - 1 needs 2).
  int64_t min_per_class = 2;
  /// Each class's samples against the whole reference instead of its own class.
  bool against_whole_reference = false;
  FrechetOptions frechet;  ///< the eigen route suits rank-deficient covariances
};

struct PerClassFidResult {
  std::vector<int64_t> classes;          ///< ascending: the reference's classes
  std::vector<double> fid;               ///< FID_c, per class
  std::vector<int64_t> sample_count;     ///< generated rows of each class
  std::vector<int64_t> reference_count;  ///< reference rows of each class
  double intra_fid = 0;                  ///< mean of fid
};

/// samples: (M, D) rows with one label each; reference: (N, D) rows with labels. Every
/// class of the reference must have at least min_per_class generated rows and every
/// generated label must be a reference class. Throws sit::Error naming the class and the
/// counts otherwise, and on mismatched widths or label counts.
PerClassFidResult per_class_fid(const FeatureView& samples,
                                const std::vector<int64_t>& sample_labels,
                                const FeatureView& reference,
                                const std::vector<int64_t>& reference_labels,
                                const PerClassFidOptions& options = {});

/// The check per_class_fid starts with, on label lists alone (so a run can refuse before
/// it extracts anything): throws sit::Error as per_class_fid would.
void check_class_counts(const std::vector<int64_t>& sample_labels,
                        const std::vector<int64_t>& reference_labels,
                        const PerClassFidOptions& options = {});

}  // namespace sit::metrics
