// GPU throughput for the FID-50K recipes (run by scripts/gpu_check.sh on a CUDA machine):
// SiT-XL/2 with random weights at 256 px (latents (B, 4, 32, 32)), one guided sampling
// evaluation = one forward of the doubled batch (2 x --batch rows: conditional and null
// label), in fp32 (TF32 off, the papers' setting), tf32 and bf16; then the projected time
// of FID-50K with 250 NFE. With --inception FILE (an export of tools/export_inception.py),
// also the Inception-v3 pool_3/logits forward on 299 x 299 inputs.
//
//   build/bench/bench_gpu [--device cuda:0] [--batch 125] [--inception FILE]
#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "bench_common.h"
#include "random_weights.h"
#include "models/inception.h"
#include "models/sit.h"

using namespace sit;

namespace {

/// Seconds per call of `f` (after `warmup` calls), synchronising the device.
template <typename F>
double seconds_per_call(F&& f, int warmup, int calls, const std::string& device) {
  auto sync = [&] {
    if (device != "cpu") at::zeros({1}, at::TensorOptions().device(device)).cpu();
  };
  for (int i = 0; i < warmup; ++i)
    f();
  sync();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i)
    f();
  sync();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / calls;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string device = bench::arg(argc, argv, "--device", "cuda:0");
  const int64_t batch = std::stoll(bench::arg(argc, argv, "--batch", "125"));
  const std::string inception = bench::arg(argc, argv, "--inception", "");
  const int64_t rows = 2 * batch;  // guided: conditional and null-label rows
  std::printf("%s\n", bench::machine_description().c_str());
  std::printf("SiT-XL/2, random weights, 256 px, guided batch %lld (%lld rows), %s\n",
              static_cast<long long>(batch), static_cast<long long>(rows), device.c_str());
  std::printf("%-6s %14s %16s %22s\n", "prec", "ms/evaluation", "samples x NFE/s",
              "FID-50K, 250 NFE (h)");
  std::fflush(stdout);
  const models::SiTConfig c = models::SiTConfig::named("SiT-XL/2");
  const models::StateDict weights = bench::random_weights(models::sit_parameter_shapes(c));
  for (const char* name : {"fp32", "tf32", "bf16"}) {
    models::SiTOptions o;
    o.name = "SiT-XL/2";
    o.device = device;
    o.precision = models::parse_precision(name);
    const models::SiT net(weights, o);
    const auto opts = at::TensorOptions().device(device);
    const at::Tensor x = at::randn({rows, 4, 32, 32}, opts);
    const at::Tensor t = at::rand({rows}, opts);
    const at::Tensor y = at::randint(1000, {rows}, opts.dtype(at::kLong));
    const double s = seconds_per_call([&] { net.forward(x, t, y); }, 2, 10, device);
    const double rate = static_cast<double>(batch) / s;  // samples advanced one NFE per second
    std::printf("%-6s %14.1f %16.1f %22.2f\n", name, 1e3 * s, rate, 50000.0 * 250 / rate / 3600);
    std::fflush(stdout);
  }
  if (!inception.empty()) {
    const models::InceptionExtractor e(inception, device);
    const at::Tensor images = at::rand({batch, 3, 299, 299}, at::TensorOptions().device(device)) * 2 - 1;
    const double s = seconds_per_call([&] { e.extract_preprocessed(images); }, 2, 10, device);
    std::printf("Inception-v3 (%s), batch %lld: %.1f images/s\n", inception.c_str(),
                static_cast<long long>(batch), static_cast<double>(batch) / s);
  }
  return 0;
}
