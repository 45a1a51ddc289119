#include "samplers/path.h"

#include <ATen/ATen.h>

#include <cmath>

#include "samplers/names.h"

namespace sit::samplers {
namespace {

constexpr double kPi = 3.14159265358979323846;

const NameTable<PathType>& path_names() {
  static const NameTable<PathType> t = {
      {"Linear", PathType::kLinear}, {"GVP", PathType::kGVP}, {"VP", PathType::kVP}};
  return t;
}

}  // namespace

const char* to_string(PathType p) {
  return name_of(path_names(), p);
}
PathType parse_path_type(const std::string& name) {
  return parse_name(path_names(), name, "path type");
}

Interpolant::Interpolant(PathType type, double beta_min, double beta_max)
    : type_(type), beta_min_(beta_min), beta_max_(beta_max) {}

Coefficients Interpolant::at(double t) const {
  Coefficients c;
  switch (type_) {
    case PathType::kLinear:
      c = {t, 1.0, 1.0 - t, -1.0};
      break;
    case PathType::kGVP:
      c = {std::sin(kPi * t / 2), (kPi / 2) * std::cos(kPi * t / 2), std::cos(kPi * t / 2),
           -(kPi / 2) * std::sin(kPi * t / 2)};
      break;
    case PathType::kVP: {
      const double u = 1.0 - t;
      const double m = -0.25 * u * u * (beta_max_ - beta_min_) - 0.5 * u * beta_min_;
      const double dm = 0.5 * u * (beta_max_ - beta_min_) + 0.5 * beta_min_;
      c.alpha = std::exp(m);
      c.d_alpha = c.alpha * dm;
      // sqrt(1 - exp(2m)) computed without cancellation near t = 1 (m -> 0).
      c.sigma = std::sqrt(-std::expm1(2 * m));
      c.d_sigma = -c.alpha * c.alpha * dm / c.sigma;
      break;
    }
  }
  return c;
}

double Interpolant::lambda(double t) const {
  switch (type_) {
    case PathType::kLinear:
      return (1.0 - t) / t;
    case PathType::kGVP:
      return (kPi / 2) / std::tan(kPi * t / 2);
    case PathType::kVP:
      return 0.5 * (beta_min_ + (1.0 - t) * (beta_max_ - beta_min_));
  }
  unreachable("PathType ", static_cast<int>(type_));
}

at::Tensor score_from_velocity(const Coefficients& c, const at::Tensor& v, const at::Tensor& x) {
  const double r = c.alpha / c.d_alpha;
  return (r * v - x) / (c.sigma * c.sigma - r * c.d_sigma * c.sigma);
}

at::Tensor noise_from_velocity(const Coefficients& c, const at::Tensor& v, const at::Tensor& x) {
  const double r = c.alpha / c.d_alpha;
  return (r * v - x) / (r * c.d_sigma - c.sigma);
}

at::Tensor velocity_from_score(const Coefficients& c, double lambda, const at::Tensor& s,
                               const at::Tensor& x) {
  return lambda * s + (c.d_alpha / c.alpha) * x;
}

at::Tensor score_from_noise(const Coefficients& c, const at::Tensor& eps) {
  return eps * (-1.0 / c.sigma);
}

at::Tensor noise_from_score(const Coefficients& c, const at::Tensor& s) {
  return s * (-c.sigma);
}

at::Tensor data_from_score(const Coefficients& c, const at::Tensor& s, const at::Tensor& x) {
  return (x + (c.sigma * c.sigma) * s) / c.alpha;
}

}  // namespace sit::samplers
