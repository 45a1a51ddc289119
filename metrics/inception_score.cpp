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

}  // namespace

InceptionScoreResult inception_score(const FeatureView& logits,
                                     const InceptionScoreOptions& options) {
  const int64_t n = logits.rows, c = logits.cols;
  if (n < 1) fail("inception_score: need at least 1 row of logits, got ", n);
  if (c < 2) fail("inception_score: need at least 2 classes, got ", c);
  if (options.split_size < 1)
    fail("inception_score: split size must be >= 1, got ", options.split_size);

  InceptionScoreResult result;
  std::vector<float> probs;
  for (int64_t begin = 0; begin < n; begin += options.split_size) {
    const int64_t rows = std::min(options.split_size, n - begin);
    probs.resize(static_cast<size_t>(rows * c));
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < rows; ++i)
      softmax_row(logits.row(begin + i), c, &probs[i * c]);

    // Marginal p(y) of the split, stored as float32 as numpy's mean of a float32 array.
    std::vector<double> marginal(static_cast<size_t>(c), 0.0);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < c; ++j)
        marginal[j] += probs[i * c + j];
    std::vector<float> log_marginal(static_cast<size_t>(c));
    for (int64_t j = 0; j < c; ++j)
      log_marginal[j] = std::log(static_cast<float>(marginal[j] / static_cast<double>(rows)));

    // Per-row KL terms summed in row order, so the score does not depend on threads.
    std::vector<double> kl_rows(static_cast<size_t>(rows));
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      double kl = 0;
      for (int64_t j = 0; j < c; ++j) {
        const float p = probs[i * c + j];
        if (p > 0) kl += static_cast<double>(p * (std::log(p) - log_marginal[j]));
      }
      kl_rows[i] = kl;
    }
    double kl_total = 0;
    for (double kl : kl_rows)
      kl_total += kl;
    result.split_scores.push_back(std::exp(kl_total / static_cast<double>(rows)));
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

}  // namespace sit::metrics
