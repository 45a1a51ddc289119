// Forward throughput of the SiT backbone (S/2 and B/2 at 256 px, batch 8 and 32) and of
// the Stable Diffusion VAE decoder (256 px, batch 2) with random weights, fp32 on the
// CPU. bench/compare_models.py runs the same computations in Debian's python3-torch.
//
//   build/bench/bench_models [--threads 2] [--benchmark_filter=...]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstdio>

#include "bench_common.h"
#include "random_weights.h"
#include "models/sit.h"
#include "models/vae.h"

using namespace sit;

namespace {

void sit_forward(benchmark::State& state, const char* name, int64_t batch) {
  const models::SiTConfig c = models::SiTConfig::named(name);
  models::SiTOptions o;
  o.name = name;
  const models::SiT net(bench::random_weights(models::sit_parameter_shapes(c)), o);
  const at::Tensor x = at::randn({batch, 4, 32, 32});
  const at::Tensor t = at::rand({batch});
  const at::Tensor y = at::randint(1000, {batch}, at::kLong);
  net.forward(x, t, y);  // warm-up: allocator and kernels
  for (auto _ : state)
    benchmark::DoNotOptimize(net.forward(x, t, y).data_ptr());
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
}

void vae_decode(benchmark::State& state, int64_t batch) {
  const models::VaeConfig c;  // the SD VAE: 128, 256, 512, 512; 2 layers per block
  const models::VaeDecoder vae(c, bench::random_weights(models::vae_decoder_shapes(c)), "cpu",
                               models::Precision::kFp32);
  const at::Tensor z = at::randn({batch, 4, 32, 32});
  vae.decode(z);
  for (auto _ : state)
    benchmark::DoNotOptimize(vae.decode(z).data_ptr());
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = std::stoi(bench::arg(argc, argv, "--threads", "0"));
  // As sit-eval does: BLIS (which serves LibTorch's sgemm calls in this process, being
  // linked first) and LibTorch's intra-op pool get the same thread count.
  linalg::set_num_threads(threads);
  at::set_num_threads(threads > 0 ? threads : linalg::hardware_threads());
  std::printf("Model forward benchmark: fp32, %d torch threads\n", at::get_num_threads());
  for (const char* name : {"SiT-S/2", "SiT-B/2"})
    for (int64_t batch : {8, 32})
      benchmark::RegisterBenchmark(
          (std::string("SiTForward/") + name + "/batch" + std::to_string(batch)).c_str(),
          [name, batch](benchmark::State& s) { sit_forward(s, name, batch); })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->MinTime(3.0)
          ->Repetitions(3);
  benchmark::RegisterBenchmark("VaeDecode/256px/batch2",
                               [](benchmark::State& s) { vae_decode(s, 2); })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime()
      ->Iterations(2)
      ->Repetitions(2);
  bench::run_all(argc, argv);
  return 0;
}
