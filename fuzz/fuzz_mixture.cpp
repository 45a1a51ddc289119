// libFuzzer target: the exact-mixture TOML (`--model gmm:FILE.toml`, `model = "gmm:..."` in
// sweep files) read by models/gmm from arbitrary bytes, then the mixture's exact velocity
// at one point for a valid file. A clean sit::Error is the expected outcome for bad input;
// a crash, a hang, an unbounded allocation or a sanitizer report is a finding.
#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "common/error.h"
#include "models/gmm.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/sit-fuzz-mixture-" + std::to_string(::getpid()) + ".toml";
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  try {
    const auto g = sit::models::GaussianMixture::from_toml(path);
    if (g.dim() <= 4096) {
      const at::Tensor x = at::zeros({1, g.dim()}, at::kDouble);
      const at::Tensor t = at::full({1}, 0.5, at::kDouble);
      const at::Tensor y = at::full({1}, g.null_class(), at::kLong);
      const sit::samplers::Interpolant path(sit::samplers::PathType::kLinear);
      (void)g.predict(sit::samplers::Prediction::kVelocity, path, x, t, y);
    }
  } catch (const sit::Error&) {
  } catch (const c10::Error&) {
  }
  return 0;
}
