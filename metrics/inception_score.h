#pragma once
/// Inception Score with ADM evaluator semantics.

#include <cstdint>
#include <vector>

#include "metrics/features.h"

namespace sit::metrics {

struct InceptionScoreOptions {
  /// ADM: consecutive chunks of 5000 rows, no shuffle; a trailing partial chunk is its
  /// own split.
  int64_t split_size = 5000;
};

struct InceptionScoreResult {
  double mean = 0;  ///< what ADM prints: the mean over splits
  double std = 0;   ///< population std over splits (torch-fidelity / NVIDIA convention)
  std::vector<double> split_scores;
};

/// logits: unbiased logits [N, C] (pool_3 @ W without the fc bias; C = 1008 for the
/// 2015-12-05 Inception). Probabilities are softmax(logits) rounded to float32 as in
/// ADM's TF graph; per split: exp(mean_i sum_c p_ic (log p_ic - log mean_j p_jc)).
/// Sums are accumulated in double, and 0 log 0 is taken as 0 (numpy would give NaN when a
/// float32 probability underflows).
InceptionScoreResult inception_score(const FeatureView& logits,
                                     const InceptionScoreOptions& options = {});

}  // namespace sit::metrics
