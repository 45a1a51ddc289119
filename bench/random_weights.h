#pragma once
// Random weights for an architecture's key list, for the model benchmarks (the values do
// not affect speed).

#include <ATen/ATen.h>

#include "models/checkpoint.h"

namespace sit::bench {

inline models::StateDict random_weights(const models::ShapeList& shapes) {
  models::StateDict sd;
  sd.path = "random weights";
  for (const auto& [key, shape] : shapes)
    sd.tensors.emplace_back(key, at::randn(shape) * 0.02);
  return sd;
}

}  // namespace sit::bench
