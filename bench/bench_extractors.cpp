// One pass of Inception, DINOv2 and CLIP over the same images: the whole pipeline (npz of
// uint8 256x256 images -> streamed batches -> each extractor's preprocessing and network
// -> feature rows / statistics) against the time its networks take (the sum of the
// extractors' bare forwards, measured inside the same run), and each extractor's bare
// forward on its own.
//
//   scripts/bench_extractors.sh [IMAGES] [THREADS]   (random-weight exports, then this)
//   build/bench/bench_extractors --inception I.pt --dinov2 D.pt --clip C.pt
//                                [--images 200] [--threads 2] [--dinov2-resize pil]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstdio>
#include <filesystem>

#include "bench_common.h"
#include "bench_images.h"
#include "eval/features_job.h"
#include "models/feature_extractor.h"
#include "reference_stats/image_reader.h"
#include "reference_stats/npy.h"

using namespace sit;

namespace {

std::string g_files[3], g_npz, g_resize = "pil";
const char* const kKinds[3] = {"inception", "dinov2", "clip"};
int64_t g_images = 200, g_batch = 50;

std::unique_ptr<models::FeatureExtractor> load(int i) {
  models::ExtractorSettings s;
  s.dinov2_resize = g_resize;
  return models::load_extractor(kKinds[i], g_files[i], s);
}

/// One extractor's network on a batch already preprocessed (its own input size).
void bare_forward(benchmark::State& state) {
  const auto e = load(static_cast<int>(state.range(0)));
  const at::Tensor images = at::randint(256, {g_batch, 256, 256, 3}, at::kByte);
  const at::Tensor x = e->preprocess(images);
  e->extract_blocks(x);  // warm-up (TorchScript's profiling runs)
  for (auto _ : state)
    benchmark::DoNotOptimize(e->extract_blocks(x)[0].data_ptr());
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(g_batch),
                                                  benchmark::Counter::kIsIterationInvariantRate);
}

/// The evaluate pipeline with all three extractors in one pass.
void one_pass(benchmark::State& state) {
  std::vector<std::unique_ptr<models::FeatureExtractor>> members;
  for (int i = 0; i < 3; ++i)
    members.push_back(load(i));
  const models::ExtractorGroup group(std::move(members));
  {  // warm-up on one batch
    const at::Tensor images = at::randint(256, {g_batch, 256, 256, 3}, at::kByte);
    group.extract_images(images);
  }
  double peak = 0;
  for (auto _ : state) {
    bench::reset_peak_rss();
    const auto source = io::open_images(g_npz);
    eval::ExtractOptions o;
    eval::ExtractOptions::Timings t;
    o.batch_size = g_batch;
    o.timings = &t;
    o.stats_only = {"pool", "spatial", "dinov2"};  // as ref-stats keeps them
    const io::FeatureSet f = eval::extract_features(*source, group, o);
    benchmark::DoNotOptimize(f.rows("clip")->data.data());
    peak = bench::peak_rss_mib();
    const double total = t.read_s + t.preprocess_s + t.network_s;
    state.counters["read_s"] = t.read_s;
    state.counters["preprocess_s"] = t.preprocess_s;
    state.counters["network_s"] = t.network_s;  // the three networks' bare forwards
    state.counters["overhead_%"] = 100.0 * (total - t.network_s) / t.network_s;
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
  for (int i = 0; i < 3; ++i)
    g_files[i] = bench::arg(argc, argv, std::string("--") + kKinds[i], "");
  g_images = std::stoll(bench::arg(argc, argv, "--images", "200"));
  g_resize = bench::arg(argc, argv, "--dinov2-resize", "pil");
  if (g_files[0].empty() || g_files[1].empty() || g_files[2].empty()) {
    std::fprintf(stderr, "usage: bench_extractors --inception I.pt --dinov2 D.pt --clip C.pt "
                         "[--images N] [--threads T] [--dinov2-resize pil|torch|pil-float]\n");
    return 1;
  }
  g_npz = (std::filesystem::temp_directory_path() / "bench_extractors_images.npz").string();
  bench::write_random_images_npz(g_npz, g_images);
  std::printf("One-pass extraction benchmark: %lld images of 256x256, batch %lld, %d threads, "
              "DINOv2 resize %s\n",
              static_cast<long long>(g_images), static_cast<long long>(g_batch),
              at::get_num_threads(), g_resize.c_str());
  for (int i = 0; i < 3; ++i)
    benchmark::RegisterBenchmark((std::string("BareForward/") + kKinds[i]).c_str(), bare_forward)
        ->Arg(i)
        ->Unit(benchmark::kSecond)
        ->UseRealTime()
        ->Iterations(2);
  benchmark::RegisterBenchmark("OnePass/inception+dinov2+clip", one_pass)
      ->Unit(benchmark::kSecond)
      ->UseRealTime()
      ->Iterations(1);
  bench::run_all(argc, argv);
  std::filesystem::remove(g_npz);
  return 0;
}
