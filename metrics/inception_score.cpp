#include "metrics/inception_score.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace sit::metrics {
namespace {

// Row softmax in float32 (max-subtracted, as TF's kernel).
void softmax_row(const float* logits, int64_t c, float* p) {
  float m = logits[0];
  for (int64_t j = 1; j < c; ++j)
    m = std::max(m, logits[j]);
  float total = 0;
  for (int64_t j = 0; j < c; ++j) {
    p[j] = std::exp(logits[j] - m);
    total += p[j];
  }
  const float inv = 1.0f / total;
  for (int64_t j = 0; j < c; ++j)
    p[j] *= inv;
}

/// One split's score from its probabilities, row i weighted by w[i] (null: every row
/// once): exp(sum_i w_i KL(p_i || pbar) / sum_i w_i) with pbar = sum_i w_i p_i / sum_i w_i.
/// Unweighted, this is ADM's arithmetic; rows of weight 0 are skipped.
double split_score(const float* probs, int64_t rows, int64_t c, const int32_t* w) {
  // Marginal p(y) of the split, stored as float32 as numpy's mean of a float32 array.
  std::vector<double> marginal(static_cast<size_t>(c), 0.0);
  double total = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const double wi = w ? w[i] : 1;
    if (wi == 0) continue;
    total += wi;
    const float* p = probs + i * c;
    if (w)
      for (int64_t j = 0; j < c; ++j)
        marginal[j] += wi * p[j];
    else
      for (int64_t j = 0; j < c; ++j)
        marginal[j] += p[j];
  }
  std::vector<float> log_marginal(static_cast<size_t>(c));
  for (int64_t j = 0; j < c; ++j)
    log_marginal[j] = std::log(static_cast<float>(marginal[j] / total));

  // Per-row KL terms summed in row order, so the score does not depend on threads.
  std::vector<double> kl_rows(static_cast<size_t>(rows), 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < rows; ++i) {
    if (w && w[i] == 0) continue;
    double kl = 0;
    for (int64_t j = 0; j < c; ++j) {
      const float p = probs[i * c + j];
      if (p > 0) kl += static_cast<double>(p * (std::log(p) - log_marginal[j]));
    }
    kl_rows[i] = kl;
  }
  double kl_total = 0;
  for (int64_t i = 0; i < rows; ++i)
    kl_total += w ? w[i] * kl_rows[i] : kl_rows[i];
  return std::exp(kl_total / total);
}

void check_inputs(const FeatureView& logits, const InceptionScoreOptions& options) {
  if (logits.rows < 1) fail("inception_score: need at least 1 row of logits, got ", logits.rows);
  if (logits.cols < 2) fail("inception_score: need at least 2 classes, got ", logits.cols);
  if (options.split_size < 1)
    fail("inception_score: split size must be >= 1, got ", options.split_size);
}

}  // namespace

InceptionScoreResult inception_score(const FeatureView& logits,
                                     const InceptionScoreOptions& options) {
  check_inputs(logits, options);
  const int64_t n = logits.rows, c = logits.cols;
  InceptionScoreResult result;
  std::vector<float> probs;
  for (int64_t begin = 0; begin < n; begin += options.split_size) {
    const int64_t rows = std::min(options.split_size, n - begin);
    probs.resize(static_cast<size_t>(rows * c));
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < rows; ++i)
      softmax_row(logits.row(begin + i), c, &probs[i * c]);
    result.split_scores.push_back(split_score(probs.data(), rows, c, nullptr));
  }
  double sum = 0;
  for (double s : result.split_scores)
    sum += s;
  result.mean = sum / static_cast<double>(result.split_scores.size());
  double var = 0;
  for (double s : result.split_scores)
    var += (s - result.mean) * (s - result.mean);
  result.std = std::sqrt(var / static_cast<double>(result.split_scores.size()));
  return result;
}

std::vector<double> resampled_inception_score(const FeatureView& logits,
                                              const std::vector<std::vector<int32_t>>& weights,
                                              const InceptionScoreOptions& options) {
  check_inputs(logits, options);
  const int64_t n = logits.rows, c = logits.cols;
  std::vector<float> probs(static_cast<size_t>(n * c));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i)
    softmax_row(logits.row(i), c, &probs[i * c]);
  std::vector<double> out;
  out.reserve(weights.size());
  for (const auto& w : weights) {
    if (static_cast<int64_t>(w.size()) != n)
      fail("resampled_inception_score: ", w.size(), " weights for ", n, " rows");
    double sum = 0;
    int splits = 0;
    for (int64_t begin = 0; begin < n; begin += options.split_size) {
      const int64_t rows = std::min(options.split_size, n - begin);
      int64_t total = 0;
      for (int64_t i = 0; i < rows; ++i)
        total += w[begin + i];
      if (total == 0) continue;  // a resample can miss every row of a small trailing split
      sum += split_score(probs.data() + begin * c, rows, c, w.data() + begin);
      ++splits;
    }
    out.push_back(sum / splits);
  }
  return out;
}

}  // namespace sit::metrics
