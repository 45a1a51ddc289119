#pragma once
/// Exact analytic models: a Gaussian mixture target with diagonal covariances (a zero std
/// is a Dirac atom), optionally a class per component. For any interpolant the exact
/// velocity, score and noise prediction at (x, t) follow from the posterior over
/// components (computed in log space):
///   x_t | k ~ N(alpha mu_k, alpha^2 s_k^2 + sigma^2),  c_k = (x - alpha mu_k) / var_k,
///   E[x_1 | x, k] = mu_k + alpha s_k^2 c_k,  E[x_0 | x, k] = sigma c_k,
///   v = d_alpha E[x_1 | x] + d_sigma E[x_0 | x],  eps = E[x_0 | x],  s = -E[x_0 | x] / sigma.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "samplers/field.h"
#include "samplers/path.h"

namespace sit::models {

struct MixtureComponent {
  double weight = 1;
  std::vector<double> mean;  ///< (D)
  std::vector<double> std;   ///< (D), >= 0
  int64_t label = -1;        ///< class, or -1 when the mixture is unconditional
};

class GaussianMixture {
 public:
  /// num_classes 0: unconditional. Otherwise every component has a label in
  /// [0, num_classes); label num_classes (the null class) means the full mixture.
  GaussianMixture(std::string name, std::vector<MixtureComponent> components,
                  int64_t num_classes = 0);

  /// "bernoulli1d", "mix1d", "demo" (see README).
  static GaussianMixture preset(const std::string& name);
  /// A TOML file: dim, num_classes (optional), [[component]] tables with weight, mean,
  /// std (list or scalar) and class (when num_classes > 0).
  static GaussianMixture from_toml(const std::string& path);
  /// "gmm:PRESET" or "gmm:FILE.toml".
  static GaussianMixture from_spec(const std::string& spec);

  const std::string& name() const { return name_; }
  int64_t dim() const { return dim_; }
  int64_t num_classes() const { return num_classes_; }
  int64_t null_class() const { return num_classes_; }
  const std::vector<MixtureComponent>& components() const { return components_; }

  /// Exact prediction of the given type at x (B, D), t (B), labels y (B; the null class
  /// or any label when unconditional gives the full mixture). Computed in float64, returned
  /// in x's dtype.
  at::Tensor predict(samplers::Prediction prediction, const samplers::Interpolant& path,
                     const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) const;
  /// The model function a sampler uses.
  samplers::ModelFn model_fn(samplers::Prediction prediction, samplers::PathType path) const;
  /// The exact noise prediction on DiT's discrete schedule (samplers/discrete.h): t holds
  /// original timestep indices k (integers in [0, 1000)), x_k = sqrt(abar_k) x_0 +
  /// sqrt(1 - abar_k) eps of the linear schedule. Returns eps (B, D), no variance channels.
  samplers::ModelFn discrete_model_fn() const;
  /// The exact noise prediction E[eps | x] for x = alpha x_0 + sigma eps, with alpha and
  /// sigma per row (B each), float64 inside, x's dtype out.
  at::Tensor noise_at(const at::Tensor& x, const std::vector<double>& alpha,
                      const std::vector<double>& sigma, const at::Tensor& y) const {
    const std::vector<double> zero(alpha.size(), 0.0);
    return predict_at(samplers::Prediction::kNoise, x, alpha, zero, sigma, zero, y);
  }

  /// Exact draws from the target (conditional on y when class-conditional), per sample id.
  at::Tensor sample_target(uint64_t seed, const std::vector<int64_t>& ids,
                           const at::Tensor& y) const;
  /// Target mean (D) and covariance (D, D), float64; label -1: the full mixture.
  at::Tensor target_mean(int64_t label = -1) const;
  at::Tensor target_covariance(int64_t label = -1) const;

 private:
  /// The prediction with per-row alpha, sigma and their time derivatives.
  at::Tensor predict_at(samplers::Prediction prediction, const at::Tensor& x,
                        const std::vector<double>& a, const std::vector<double>& da,
                        const std::vector<double>& s, const std::vector<double>& ds,
                        const at::Tensor& y) const;

  std::string name_;
  std::vector<MixtureComponent> components_;
  int64_t num_classes_ = 0;
  int64_t dim_ = 0;
  at::Tensor mu_, var_, log_w_, labels_;  // (K, D), (K, D), (K), (K)
};

}  // namespace sit::models
