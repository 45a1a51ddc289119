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

/// The mean Inception Score for each weight vector (a paired bootstrap's resamples, see
/// metrics/bootstrap.h): the splits stay ADM's consecutive index ranges, and within a split
/// row i counts w[i] times, in the marginal and in the mean KL. A split whose weights are
/// all 0 is left out of the mean. All-ones weights give inception_score().mean exactly.
/// Holds the softmax of every row: N x C float32 (200 MB for 50,000 x 1008).
std::vector<double> resampled_inception_score(const FeatureView& logits,
                                              const std::vector<std::vector<int32_t>>& weights,
                                              const InceptionScoreOptions& options = {});

}  // namespace sit::metrics
