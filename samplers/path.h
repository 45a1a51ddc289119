#pragma once
/// Interpolants x_t = alpha_t x_1 + sigma_t x_0 in the code time convention (t = 0 noise,
/// t = 1 data), and every conversion between model outputs, written once from
/// (alpha, d_alpha, sigma, d_sigma).

#include <ATen/core/Tensor.h>

#include <string>

namespace sit::samplers {

enum class PathType { kLinear, kGVP, kVP };
const char* to_string(PathType p);
/// "Linear", "GVP", "VP" (the reference's names; lower case accepted).
PathType parse_path_type(const std::string& name);

/// alpha_t, sigma_t and their time derivatives.
struct Coefficients {
  double alpha = 0, d_alpha = 0, sigma = 0, d_sigma = 0;
};

class Interpolant {
 public:
  /// VP uses beta(t) = beta_min + (1 - t)(beta_max - beta_min) in code time.
  explicit Interpolant(PathType type, double beta_min = 0.1, double beta_max = 20.0);
  PathType type() const { return type_; }
  Coefficients at(double t) const;
  /// lambda(t) = (d_alpha / alpha) sigma^2 - sigma d_sigma (the reference's drift_var),
  /// from its closed form per path: Linear (1-t)/t, GVP (pi/2) cot(pi t/2), VP beta(t)/2.
  double lambda(double t) const;

 private:
  PathType type_;
  double beta_min_, beta_max_;
};

/// Conversions at one time t (coefficients c), for tensors of any shape.
/// score from velocity: s = (r v - x) / (sigma^2 - r d_sigma sigma), r = alpha / d_alpha.
at::Tensor score_from_velocity(const Coefficients& c, const at::Tensor& v, const at::Tensor& x);
/// noise from velocity: eps = (r v - x) / (r d_sigma - sigma).
at::Tensor noise_from_velocity(const Coefficients& c, const at::Tensor& v, const at::Tensor& x);
/// velocity from score: v = lambda s + (d_alpha / alpha) x.
at::Tensor velocity_from_score(const Coefficients& c, double lambda, const at::Tensor& s,
                               const at::Tensor& x);
/// score from noise: s = -eps / sigma.
at::Tensor score_from_noise(const Coefficients& c, const at::Tensor& eps);
/// noise from score: eps = -sigma s.
at::Tensor noise_from_score(const Coefficients& c, const at::Tensor& s);
/// Tweedie's data estimate: x1_hat = (x + sigma^2 s) / alpha.
at::Tensor data_from_score(const Coefficients& c, const at::Tensor& s, const at::Tensor& x);

}  // namespace sit::samplers
