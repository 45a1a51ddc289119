// CUDA checks (ctest label "cuda"; scripts/gpu_check.sh runs them on a GPU machine built
// against official LibTorch 2.x). Without a CUDA device each test skips and says why; the
// CPU paths they compare against are tested everywhere.
#include <ATen/ATen.h>
#include <ATen/Context.h>

#include <filesystem>

#include "models/device.h"
#include "models/sit.h"
#include "reference_stats/npy.h"
#include "test_util.h"
// after test_util.h: the runner uses sit::test::fixture
#include "cli_runner.h"

using namespace sit;

namespace {

#define SKIP_WITHOUT_CUDA()                                                              \
  if (!at::hasCUDA())                                                                    \
  GTEST_SKIP() << "no CUDA device in this build or machine (scripts/gpu_check.sh runs " \
                  "these tests on one)"

models::StateDict random_weights(const models::ShapeList& shapes) {
  at::manual_seed(0);
  models::StateDict sd;
  sd.path = "random weights";
  for (const auto& [key, shape] : shapes)
    sd.tensors.emplace_back(key, at::randn(shape) * 0.02);
  return sd;
}

double relative_error(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor x = a.to(at::kDouble).cpu(), y = b.to(at::kDouble).cpu();
  return ((x - y).norm() / y.norm()).item<double>();
}

}  // namespace

// The sampler on the GPU: the exact mixture's ODE and SDE samples agree with the CPU's to
// fp32 rounding (other kernels, same per-sample noise and labels).
TEST(Cuda, AnalyticSamplesMatchTheCpu) {
  SKIP_WITHOUT_CUDA();
  const auto dir = test::temp_dir("cuda");
  for (const char* family : {"ODE --sampling-method heun2 --num-sampling-steps 17",
                             "SDE --num-sampling-steps 50"}) {
    const std::string base = std::string("sample ") + family +
                             " --model gmm:demo --num-samples 256 --batch-size 64 --out ";
    const CliRun cpu = run(base + (dir / "cpu.npz").string() + " --device cpu");
    const CliRun gpu = run(base + (dir / "gpu.npz").string() + " --device cuda:0");
    ASSERT_EQ(cpu.code, 0) << cpu.err;
    ASSERT_EQ(gpu.code, 0) << gpu.err;
    io::NpzReader a((dir / "cpu.npz").string()), b((dir / "gpu.npz").string());
    const auto x = a.open("samples").read_all<float>(), y = b.open("samples").read_all<float>();
    ASSERT_EQ(x.size(), y.size());
    double worst = 0;
    for (size_t i = 0; i < x.size(); ++i)
      worst = std::max(worst, static_cast<double>(std::abs(x[i] - y[i])));
    EXPECT_LT(worst, 1e-3) << family;  // samples of unit scale, fp32 with other reductions
    EXPECT_EQ(a.open("labels").read_all<int64_t>(), b.open("labels").read_all<int64_t>());
  }
}

// A SiT-S/2 forward on the GPU in each precision against fp32 on the CPU: fp32 (TF32 off)
// to fp32 rounding, TF32 to its 10-bit mantissa, bf16 to its 8 bits.
TEST(Cuda, SitForwardMatchesTheCpuInEachPrecision) {
  SKIP_WITHOUT_CUDA();
  const models::SiTConfig c = models::SiTConfig::named("SiT-S/2");
  const models::StateDict sd = random_weights(models::sit_parameter_shapes(c));
  models::SiTOptions o;
  o.name = "SiT-S/2";
  const models::SiT cpu(sd, o);
  at::manual_seed(1);
  const at::Tensor x = at::randn({8, 4, 32, 32});
  const at::Tensor t = at::rand({8});
  const at::Tensor y = at::randint(1000, {8}, at::kLong);
  const at::Tensor want = cpu.forward(x, t, y);
  const std::pair<const char*, double> cases[] = {{"fp32", 1e-4}, {"tf32", 1e-2}, {"bf16", 6e-2}};
  for (const auto& [name, tolerance] : cases) {
    o.device = "cuda:0";
    o.precision = models::parse_precision(name);
    const models::SiT gpu(sd, o);
    const at::Tensor got = gpu.forward(x.to("cuda:0"), t.to("cuda:0"), y.to("cuda:0"));
    EXPECT_TRUE(got.is_cuda());
    EXPECT_TRUE(at::isfinite(got).all().item<bool>()) << name;
    EXPECT_LT(relative_error(got, want), tolerance) << name;
  }
}

// A device index the machine lacks is refused before any work, naming the count.
TEST(Cuda, MissingDeviceIndexIsRefused) {
  SKIP_WITHOUT_CUDA();
  const CliRun r = run("sample ODE --model gmm:demo --num-samples 4 --device cuda:999 --out " +
                       (test::temp_dir("cuda") / "x.npz").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "error: ")) << r.err;
  EXPECT_TRUE(contains(r.err, "cuda:999")) << r.err;
}

// A launcher rank's device for device = "cuda": its local rank modulo the visible GPUs (one
// task per GPU with its own CUDA_VISIBLE_DEVICES uses cuda:0).
TEST(Cuda, RankDeviceWrapsAroundTheVisibleGpus) {
  SKIP_WITHOUT_CUDA();
  const int n = models::visible_gpus();
  ASSERT_GE(n, 1);
  EXPECT_EQ(models::rank_device(0), "cuda:0");
  EXPECT_EQ(models::rank_device(n), "cuda:0");
  EXPECT_EQ(models::rank_device(n + n - 1), "cuda:" + std::to_string(n - 1));
}
