#include "samplers/field.h"

#include <ATen/ATen.h>

#include "samplers/names.h"

namespace sit::samplers {
namespace {
const NameTable<Prediction>& prediction_names() {
  static const NameTable<Prediction> t = {{"velocity", Prediction::kVelocity},
                                          {"score", Prediction::kScore},
                                          {"noise", Prediction::kNoise}};
  return t;
}
}  // namespace

const char* to_string(Prediction p) {
  return name_of(prediction_names(), p);
}
Prediction parse_prediction(const std::string& name) {
  return parse_name(prediction_names(), name, "prediction");
}

Field::Field(ModelFn model, Prediction prediction, Interpolant path)
    : model_(std::move(model)), prediction_(prediction), path_(path) {}

at::Tensor Field::evaluate(const at::Tensor& x, double t, const at::Tensor& y) {
  ++calls_;
  // The network gets t per batch element in x's dtype, as the reference does.
  const at::Tensor tt = at::full({x.size(0)}, t, x.options());
  return model_(x, tt, y);
}

at::Tensor Field::velocity(const at::Tensor& x, double t, const at::Tensor& y) {
  const at::Tensor out = evaluate(x, t, y);
  if (prediction_ == Prediction::kVelocity) return out;
  const Coefficients c = path_.at(t);
  const at::Tensor s = prediction_ == Prediction::kScore ? out : score_from_noise(c, out);
  return velocity_from_score(c, path_.lambda(t), s, x);
}

at::Tensor Field::score(const at::Tensor& x, double t, const at::Tensor& y) {
  const at::Tensor out = evaluate(x, t, y);
  const Coefficients c = path_.at(t);
  switch (prediction_) {
    case Prediction::kVelocity:
      return score_from_velocity(c, out, x);
    case Prediction::kScore:
      return out;
    case Prediction::kNoise:
      return score_from_noise(c, out);
  }
  unreachable("Prediction ", static_cast<int>(prediction_));
}

std::pair<at::Tensor, at::Tensor> Field::velocity_and_score(const at::Tensor& x, double t,
                                                            const at::Tensor& y) {
  const at::Tensor out = evaluate(x, t, y);
  const Coefficients c = path_.at(t);
  switch (prediction_) {
    case Prediction::kVelocity:
      return {out, score_from_velocity(c, out, x)};
    case Prediction::kScore:
      return {velocity_from_score(c, path_.lambda(t), out, x), out};
    case Prediction::kNoise: {
      const at::Tensor s = score_from_noise(c, out);
      return {velocity_from_score(c, path_.lambda(t), s, x), s};
    }
  }
  unreachable("Prediction ", static_cast<int>(prediction_));
}

}  // namespace sit::samplers
