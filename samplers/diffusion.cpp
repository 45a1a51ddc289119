#include "samplers/diffusion.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "samplers/interval.h"
#include "samplers/names.h"

namespace sit::samplers {
namespace {

constexpr double kPi = 3.14159265358979323846;

const NameTable<DiffusionForm>& form_names() {
  static const NameTable<DiffusionForm> t = {
      {"constant", DiffusionForm::kConstant},
      {"SBDM", DiffusionForm::kSBDM},
      {"sigma", DiffusionForm::kSigma},
      {"linear", DiffusionForm::kLinear},
      {"decreasing", DiffusionForm::kDecreasing},
      {"increasing-decreasing", DiffusionForm::kIncreasingDecreasing},
      {"kl-eta", DiffusionForm::kKlEta},
      {"sin2", DiffusionForm::kIncreasingDecreasing},
      // the reference's key, misspelled (its CLI cannot select it; ours can)
      {"inccreasing-decreasing", DiffusionForm::kIncreasingDecreasing},
  };
  return t;
}

const NameTable<LastStep>& last_step_names() {
  static const NameTable<LastStep> t = {
      {"none", LastStep::kNone},
      {"Mean", LastStep::kMean},
      {"Tweedie", LastStep::kTweedie},
      {"Euler", LastStep::kEuler},
  };
  return t;
}

bool finite(double v) {
  return std::isfinite(v);
}

}  // namespace

const char* to_string(DiffusionForm f) {
  return name_of(form_names(), f);
}
DiffusionForm parse_diffusion_form(const std::string& name) {
  return parse_name(form_names(), name, "diffusion form");
}
const char* to_string(LastStep s) {
  return name_of(last_step_names(), s);
}
LastStep parse_last_step(const std::string& name) {
  return parse_name(last_step_names(), name, "last step");
}

LossTable::LossTable(std::vector<double> t, std::vector<double> loss)
    : t_(std::move(t)), loss_(std::move(loss)) {
  if (t_.size() != loss_.size() || t_.size() < 2)
    fail("loss table: needs at least 2 rows of (t, L), got ", t_.size());
  for (size_t i = 0; i < t_.size(); ++i) {
    if (!(t_[i] >= 0 && t_[i] <= 1)) fail("loss table: t must lie in [0, 1], got ", t_[i]);
    if (i && !(t_[i] > t_[i - 1]))
      fail("loss table: t must increase strictly, got ", t_[i - 1], " then ", t_[i]);
    if (!(loss_[i] > 0) || !finite(loss_[i]))
      fail("loss table: L must be positive and finite, got ", loss_[i], " at t = ", t_[i]);
  }
}

LossTable LossTable::from_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, ": cannot open the loss table");
  std::string line;
  std::getline(in, line);
  if (line.rfind("t,L", 0) != 0) fail(path, ": line 1 must be the header 't,L', got '", line, "'");
  std::vector<double> t, loss;
  int line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    std::istringstream row(line);
    std::string a, b;
    if (!std::getline(row, a, ',') || !std::getline(row, b))
      fail(path, ":", line_no, ": expected 't,L', got '", line, "'");
    try {
      t.push_back(std::stod(a));
      loss.push_back(std::stod(b));
    } catch (const std::exception&) {
      fail(path, ":", line_no, ": expected two numbers, got '", line, "'");
    }
  }
  try {
    return LossTable(std::move(t), std::move(loss));
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
}

double LossTable::at(double t) const {
  if (t <= t_.front()) return loss_.front();
  if (t >= t_.back()) return loss_.back();
  const size_t i = std::upper_bound(t_.begin(), t_.end(), t) - t_.begin();
  const double u = (t - t_[i - 1]) / (t_[i] - t_[i - 1]);
  return loss_[i - 1] + u * (loss_[i] - loss_[i - 1]);
}

double diffusion_coefficient(const DiffusionOptions& o, const Interpolant& path, double t) {
  switch (o.form) {
    case DiffusionForm::kConstant:
      return o.norm;
    case DiffusionForm::kSBDM:
      return o.norm * path.lambda(t);
    case DiffusionForm::kSigma:
      return o.norm * path.at(t).sigma;
    case DiffusionForm::kLinear:
      return o.norm * (1.0 - t);
    case DiffusionForm::kDecreasing: {
      const double a = o.norm * std::cos(kPi * t) + 1.0;
      return 0.25 * a * a;
    }
    case DiffusionForm::kIncreasingDecreasing: {
      const double s = std::sin(kPi * t);
      return o.norm * s * s;
    }
    case DiffusionForm::kKlEta: {
      if (o.loss.empty()) fail("diffusion form kl-eta needs a loss table L(t): loss_table (--loss-table)");
      const double w_kl = 2.0 * path.lambda(t);  // paper's w^KL; D = w / 2
      const double loss = o.loss.at(t);
      const double w = w_kl * loss / (loss + 2.0 * o.eta * w_kl * w_kl);
      return 0.5 * w;
    }
  }
  unreachable("DiffusionForm ", static_cast<int>(o.form));
}

Interval sampling_interval(PathType path, Prediction prediction, const IntervalOptions& o) {
  const bool velocity = prediction == Prediction::kVelocity;
  const bool sde = o.family == SamplerFamily::kSde;
  // The reference forces sample_eps = 0 for Linear/GVP velocity models.
  const double eps =
      o.sample_eps ? *o.sample_eps : (path != PathType::kVP && velocity ? 0.0 : 1e-3);
  const double h = o.last_step == LastStep::kNone ? 0.0 : o.last_step_size;
  Interval r;
  if (path == PathType::kVP) {
    r.t1 = (!sde || h == 0) ? 1 - eps : 1 - h;
  } else if (!velocity || sde) {
    r.t0 = ((o.form == DiffusionForm::kSBDM && sde) || !velocity) ? eps : 0.0;
    r.t1 = (!sde || h == 0) ? 1 - eps : 1 - h;
  }
  if (o.t0) r.t0 = *o.t0;
  if (o.t1) r.t1 = *o.t1;
  if (!(r.t0 >= 0 && r.t0 < r.t1 && r.t1 <= 1))
    fail("sampling interval must satisfy 0 <= t0 < t1 <= 1, got t0 = ", r.t0, ", t1 = ", r.t1);
  return r;
}

void check_coefficients(const Interpolant& path, Prediction prediction,
                        const DiffusionOptions& diffusion, double t, const CoefficientUse& use) {
  const Coefficients c = path.at(t);
  const double lambda = path.lambda(t);
  auto refuse = [&](const std::string& what) {
    fail(what, " is not finite at t = ", t, " for a ", to_string(path.type()), " ",
         to_string(prediction), " model; move the sampling interval inside (0, 1), e.g. t0 = 1e-3 or ",
         "t1 = 0.999 (--t0 / --t1; the reference's sample_eps is 1e-3)");
  };
  const bool need_score = use.score || use.tweedie;
  if (use.velocity && prediction != Prediction::kVelocity) {
    if (!finite(lambda)) refuse("lambda(t) (velocity from the model's prediction)");
    if (!finite(c.d_alpha / c.alpha)) refuse("d_alpha / alpha (velocity from the prediction)");
    if (prediction == Prediction::kNoise && !finite(1.0 / c.sigma))
      refuse("1 / sigma (score from the noise prediction)");
  }
  if (need_score) {
    if (prediction == Prediction::kVelocity) {
      const double r = c.alpha / c.d_alpha;
      const double den = c.sigma * c.sigma - r * c.d_sigma * c.sigma;
      if (!finite(r) || !finite(1.0 / den)) refuse("the score from the velocity prediction");
    } else if (prediction == Prediction::kNoise && !finite(1.0 / c.sigma)) {
      refuse("1 / sigma (score from the noise prediction)");
    }
  }
  if (use.diffusion) {
    const double d = diffusion_coefficient(diffusion, path, t);
    if (!finite(d))
      fail("diffusion coefficient D(t) of form ", to_string(diffusion.form),
           " is infinite at t = ", t, " for the ", to_string(path.type()), " path (lambda(", t,
           ") = inf); set t0 > 0, e.g. t0 = 1e-3 (--t0 1e-3), or choose another diffusion_form");
    if (d < 0)
      fail("diffusion coefficient D(", t, ") = ", d, " must be >= 0 (check diffusion_norm)");
  }
  if (use.tweedie && !(finite(1.0 / c.alpha) && c.alpha != 0))
    refuse("1 / alpha (Tweedie last step)");
}

}  // namespace sit::samplers
