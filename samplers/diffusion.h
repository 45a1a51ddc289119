#pragma once
/// SDE diffusion coefficients. Convention: the code's SDE is
///   dx = [v + D(t) s] dt + sqrt(2 D(t)) dW  (code time, t = 0 noise, t = 1 data),
/// and D = w / 2, where w is the paper's diffusion coefficient w_t.

#include <string>
#include <vector>

#include "samplers/path.h"

namespace sit::samplers {

enum class DiffusionForm {
  kConstant,              ///< D = norm
  kSBDM,                  ///< D = norm * lambda(t)  (paper's w^KL / 2 for norm = 1)
  kSigma,                 ///< D = norm * sigma_t  (reference CLI default)
  kLinear,                ///< D = norm * (1 - t)
  kDecreasing,            ///< D = 0.25 (norm cos(pi t) + 1)^2
  kIncreasingDecreasing,  ///< D = norm * sin^2(pi t)
  kKlEta,                 ///< paper eq. 14: w = w^KL L / (L + 2 eta (w^KL)^2), D = w / 2
};
const char* to_string(DiffusionForm f);
/// Reference names plus "sin2" and the reference's misspelling "inccreasing-decreasing".
DiffusionForm parse_diffusion_form(const std::string& name);

/// Piecewise-linear table of the model's per-time training loss L(t), code time.
class LossTable {
 public:
  LossTable() = default;
  LossTable(std::vector<double> t, std::vector<double> loss);
  /// CSV with a header line "t,L" and rows "t,L", t strictly increasing in [0, 1].
  static LossTable from_csv(const std::string& path);
  bool empty() const { return t_.empty(); }
  double at(double t) const;  ///< clamped at the ends

 private:
  std::vector<double> t_, loss_;
};

struct DiffusionOptions {
  DiffusionForm form = DiffusionForm::kSigma;
  double norm = 1.0;
  double eta = 0.0;  ///< kKlEta only
  LossTable loss;    ///< kKlEta only
};

/// D(t) of the code convention (half the paper's w_t).
double diffusion_coefficient(const DiffusionOptions& o, const Interpolant& path, double t);

}  // namespace sit::samplers
