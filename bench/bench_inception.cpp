// Inception feature extraction: the whole pipeline (npz of uint8 256x256 images ->
// streamed batches -> TF1 resize -> TorchScript -> feature rows) against the bare
// TorchScript forward on tensors that are already resized, and the peak memory of the
// pipeline for 2,000 images.
//
//   /usr/bin/python3 tools/export_inception.py --random-weights 0 --out /tmp/inception.pt
//   build/bench/bench_inception --inception /tmp/inception.pt [--threads 2] [--images 2000]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstdio>
#include <filesystem>

#include "bench_common.h"
#include "bench_images.h"
#include "eval/features_job.h"
#include "models/inception.h"
#include "reference_stats/image_reader.h"
#include "reference_stats/npy.h"

using namespace sit;

namespace {

std::string g_inception, g_npz;
int64_t g_images = 2000, g_batch = 50;

void bare_forward(benchmark::State& state) {
  const models::InceptionExtractor e(g_inception);
  const at::Tensor x = at::rand({g_batch, 3, 299, 299}) * 2 - 1;
  e.extract_preprocessed(x);
  for (auto _ : state)
    benchmark::DoNotOptimize(e.extract_preprocessed(x).pool.data_ptr());
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(g_batch),
                                                  benchmark::Counter::kIsIterationInvariantRate);
}

void pipeline(benchmark::State& state) {
  const models::InceptionExtractor e(g_inception);
  double peak = 0;
  for (auto _ : state) {
    bench::reset_peak_rss();
    const auto source = io::open_images(g_npz);
    eval::ExtractOptions o;
    eval::ExtractOptions::Timings t;
    o.batch_size = g_batch;
    o.timings = &t;
    const io::FeatureSet f = eval::extract_features(*source, e, o);
    benchmark::DoNotOptimize(f.rows("pool")->data.data());
    peak = bench::peak_rss_mib();
    // The same run's time inside the network: the pipeline's overhead without the VM's
    // run-to-run drift.
    state.counters["network_only_images/s"] = static_cast<double>(g_images) / t.network_s;
    state.counters["read_s"] = t.read_s;
    state.counters["preprocess_s"] = t.preprocess_s;
    state.counters["network_s"] = t.network_s;
  }
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(g_images),
                                                  benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_rss_MiB"] = peak;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = std::stoi(bench::arg(argc, argv, "--threads", "0"));
  linalg::set_num_threads(threads);
  at::set_num_threads(threads > 0 ? threads : linalg::hardware_threads());
  g_inception = bench::arg(argc, argv, "--inception", "");
  g_images = std::stoll(bench::arg(argc, argv, "--images", "2000"));
  if (g_inception.empty()) {
    std::fprintf(stderr, "usage: bench_inception --inception FILE.pt [--images N] [--threads T]\n");
    return 1;
  }
  // Synthetic 256 x 256 images in an ADM-style npz.
  g_npz = (std::filesystem::temp_directory_path() / "bench_inception_images.npz").string();
  bench::write_random_images_npz(g_npz, g_images);
  std::printf("Inception extraction benchmark: %lld images of 256x256, batch %lld, %d threads\n",
              static_cast<long long>(g_images), static_cast<long long>(g_batch),
              at::get_num_threads());
  benchmark::RegisterBenchmark("BareForward/batch50", bare_forward)
      ->Unit(benchmark::kSecond)
      ->UseRealTime()
      ->Iterations(2)
      ->Repetitions(2);
  benchmark::RegisterBenchmark("Pipeline/npz256", pipeline)
      ->Unit(benchmark::kSecond)
      ->UseRealTime()
      ->Iterations(1)
      ->Repetitions(1);
  bench::run_all(argc, argv);
  std::filesystem::remove(g_npz);
  return 0;
}
