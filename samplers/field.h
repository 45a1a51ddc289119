#pragma once
/// A model seen by the samplers: a function (x, t, y) -> prediction and the prediction's
/// type. Samplers never include models/.

#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <utility>

#include "samplers/path.h"

namespace sit::samplers {

enum class Prediction { kVelocity, kScore, kNoise };
const char* to_string(Prediction p);
/// "velocity", "score", "noise".
Prediction parse_prediction(const std::string& name);

/// x: state (B, ...); t: times (B), x's dtype and device; y: labels (B), int64.
/// Returns the prediction, shape of x.
using ModelFn =
    std::function<at::Tensor(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y)>;

/// Velocity and score of a model of any prediction type, one model call per evaluation.
class Field {
 public:
  Field(ModelFn model, Prediction prediction, Interpolant path);

  at::Tensor velocity(const at::Tensor& x, double t, const at::Tensor& y);
  at::Tensor score(const at::Tensor& x, double t, const at::Tensor& y);
  /// Both from the same model output (the reference calls the network twice for this).
  std::pair<at::Tensor, at::Tensor> velocity_and_score(const at::Tensor& x, double t,
                                                       const at::Tensor& y);

  const Interpolant& path() const { return path_; }
  Prediction prediction() const { return prediction_; }
  /// Model calls so far (one per drift evaluation).
  int64_t calls() const { return calls_; }

 private:
  at::Tensor evaluate(const at::Tensor& x, double t, const at::Tensor& y);

  ModelFn model_;
  Prediction prediction_;
  Interpolant path_;
  int64_t calls_ = 0;
};

}  // namespace sit::samplers
