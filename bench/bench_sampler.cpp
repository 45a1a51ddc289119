// Sampler overhead per step (everything but the model call) on latents of SiT's shape
// (B, 4, 32, 32) at batch 32, against one evaluation of a stand-in with SiT-B/2's FLOPs
// (ODE/SDE) and one forward of a random-weight DiT-B/2 (DDPM/DDIM, learned sigma kept).
//
//   build/bench/bench_sampler [--threads 2] [--benchmark_filter=...]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstdio>

#include "bench_common.h"
#include "models/sit.h"
#include "samplers/sampler.h"

using namespace sit;
using namespace sit::samplers;

namespace {

constexpr int64_t kBatch = 32;

at::Tensor latents() {
  return at::randn({kBatch, 4, 32, 32}, at::kFloat);
}

// A model that costs nothing: the same precomputed output every call.
ModelFn free_model() {
  const at::Tensor out = latents();
  return [out](const at::Tensor&, const at::Tensor&, const at::Tensor&) { return out; };
}

// SiT-B/2 at 256 px: 256 tokens of width 768, 12 blocks of qkv, attention, projection
// and a 4x MLP: ~23 GMAC per image (the DiT paper's 23.01 Gflops), here as plain matmuls.
void BM_ModelStandIn(benchmark::State& state) {
  const int64_t tokens = 256, width = 768, heads = 12;
  const at::Tensor qkv_w = at::randn({width, 3 * width}) * 0.02;
  const at::Tensor proj_w = at::randn({width, width}) * 0.02;
  const at::Tensor fc1 = at::randn({width, 4 * width}) * 0.02;
  const at::Tensor fc2 = at::randn({4 * width, width}) * 0.02;
  const at::Tensor h0 = at::randn({kBatch * tokens, width});
  for (auto _ : state) {
    at::Tensor h = h0;
    for (int block = 0; block < 12; ++block) {
      const at::Tensor qkv = at::mm(h, qkv_w).view({kBatch, tokens, 3, heads, width / heads});
      const at::Tensor q = qkv.select(2, 0).transpose(1, 2), k = qkv.select(2, 1).transpose(1, 2),
                       v = qkv.select(2, 2).transpose(1, 2);
      const at::Tensor att = at::softmax(at::matmul(q, k.transpose(-1, -2)) * 0.125, -1);
      const at::Tensor o = at::matmul(att, v).transpose(1, 2).reshape({kBatch * tokens, width});
      h = h + at::mm(o, proj_w);
      h = h + at::mm(at::gelu(at::mm(h, fc1)), fc2);
    }
    benchmark::DoNotOptimize(h.data_ptr());
  }
}

// DiT-B/2 at 256 px with random weights (values do not affect speed), 8 output channels.
void BM_DitB2Forward(benchmark::State& state) {
  const models::SiTConfig c = models::SiTConfig::named("DiT-B/2");
  models::StateDict sd;
  sd.path = "random weights";
  for (const auto& [key, shape] : models::sit_parameter_shapes(c))
    sd.tensors.emplace_back(key, at::randn(shape) * 0.02);
  models::SiTOptions o;
  o.name = "DiT-B/2";
  o.keep_learned_sigma = true;
  const models::SiT net(sd, o);
  const at::Tensor x = latents(), t = at::full({kBatch}, 999.0);
  const at::Tensor y = at::randint(1000, {kBatch}, at::kLong);
  net.forward(x, t, y);  // warm-up
  for (auto _ : state)
    benchmark::DoNotOptimize(net.forward(x, t, y).data_ptr());
}

// One DDPM / DDIM step with a free model returning eps and v (8 channels).
void discrete_benchmark(benchmark::State& state, SamplerFamily family, double eta) {
  const at::Tensor out = at::cat({latents(), at::rand({kBatch, 4, 32, 32}) * 2 - 1}, 1);
  const ModelFn model = [out](const at::Tensor&, const at::Tensor&, const at::Tensor&) {
    return out;
  };
  SamplerConfig cfg;
  cfg.family = family;
  cfg.discrete.respacing = "50";
  cfg.discrete.eta = eta;
  const at::Tensor x0 = latents(), y = at::zeros({kBatch}, at::kLong);
  std::vector<int64_t> ids(kBatch);
  for (int64_t i = 0; i < kBatch; ++i)
    ids[i] = i;
  for (auto _ : state)
    benchmark::DoNotOptimize(sample(model, cfg, x0, y, ids, 0).x.data_ptr());
}
void BM_DdpmStep(benchmark::State& s) {
  discrete_benchmark(s, SamplerFamily::kDdpm, 0);
}
void BM_DdimStep(benchmark::State& s) {
  discrete_benchmark(s, SamplerFamily::kDdim, 0);
}
void BM_DdimEta1Step(benchmark::State& s) {
  discrete_benchmark(s, SamplerFamily::kDdim, 1);
}

// One sampler step with a free model; the time is the sampler's own overhead.
void step_benchmark(benchmark::State& state, SamplerConfig cfg) {
  const ModelFn model = free_model();
  const at::Tensor x0 = latents(), y = at::zeros({kBatch}, at::kLong);
  std::vector<int64_t> ids(kBatch);
  for (int64_t i = 0; i < kBatch; ++i)
    ids[i] = i;
  int64_t steps = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(sample(model, cfg, x0, y, ids, 0).x.data_ptr());
    steps += cfg.num_steps - 1;
  }
  state.counters["us/step"] = benchmark::Counter(
      static_cast<double>(steps), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_EulerOdeStep(benchmark::State& s) {
  SamplerConfig c;
  c.ode.method = OdeMethod::kEuler;
  c.num_steps = 51;
  step_benchmark(s, c);
}
void BM_HeunOdeStep(benchmark::State& s) {
  SamplerConfig c;
  c.ode.method = OdeMethod::kHeun2;
  c.num_steps = 51;
  step_benchmark(s, c);
}
void BM_EulerMaruyamaStep(benchmark::State& s) {
  SamplerConfig c;
  c.family = SamplerFamily::kSde;
  c.num_steps = 51;
  step_benchmark(s, c);
}
void BM_HeunSdeStep(benchmark::State& s) {
  SamplerConfig c;
  c.family = SamplerFamily::kSde;
  c.sde_options.method = SdeMethod::kHeun;
  c.num_steps = 51;
  step_benchmark(s, c);
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = std::stoi(bench::arg(argc, argv, "--threads", "0"));
  linalg::set_num_threads(threads);
  at::set_num_threads(threads > 0 ? threads : linalg::hardware_threads());
  std::printf("Sampler overhead benchmark: latents (%lld, 4, 32, 32), %d torch threads\n",
              static_cast<long long>(kBatch), at::get_num_threads());
  bench::add_timed("ModelStandIn", BM_ModelStandIn, 1);
  bench::add_timed("DitB2Forward", BM_DitB2Forward, 1);
  for (auto [name, fn] : {std::pair{"EulerOdeStep", BM_EulerOdeStep},
                          {"HeunOdeStep", BM_HeunOdeStep},
                          {"EulerMaruyamaStep", BM_EulerMaruyamaStep},
                          {"HeunSdeStep", BM_HeunSdeStep},
                          {"DdpmStep", BM_DdpmStep},
                          {"DdimStep", BM_DdimStep},
                          {"DdimEta1Step", BM_DdimEta1Step}})
    benchmark::RegisterBenchmark(name, fn)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(1.0)
        ->UseRealTime();
  auto seconds = bench::run_all(argc, argv);
  const double model = seconds["ModelStandIn"];
  std::printf("\nmodel stand-in (SiT-B/2 FLOPs, batch %lld): %.3f s per evaluation\n",
              static_cast<long long>(kBatch), model);
  // Per step: each run is 50 steps (Heun: 2 model calls per step).
  for (const char* name : {"EulerOdeStep", "HeunOdeStep", "EulerMaruyamaStep", "HeunSdeStep"}) {
    if (!seconds.count(name)) continue;
    const double per_step = seconds[name] / 50.0;
    const double calls = (std::string(name).find("Heun") != std::string::npos) ? 2.0 : 1.0;
    std::printf("%-18s overhead %.3f ms per step", name, per_step * 1e3);
    if (model > 0)
      std::printf(" = %.4f %% of the model evaluations it makes (target < 2 %%)",
                  100.0 * per_step / (calls * model));
    std::printf("\n");
  }
  const double dit = seconds["DitB2Forward"];
  std::printf("\nDiT-B/2 forward (random weights, batch %lld): %.3f s\n",
              static_cast<long long>(kBatch), dit);
  // Each run is 50 steps (respacing "50") of one model call each.
  for (const char* name : {"DdpmStep", "DdimStep", "DdimEta1Step"}) {
    if (!seconds.count(name)) continue;
    const double per_step = seconds[name] / 50.0;
    std::printf("%-18s overhead %.3f ms per step", name, per_step * 1e3);
    if (dit > 0) std::printf(" = %.4f %% of a DiT-B/2 forward (target < 2 %%)", 100.0 * per_step / dit);
    std::printf("\n");
  }
  return 0;
}
