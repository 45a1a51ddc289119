#include "eval/sweep.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include <set>
#include "common/atomic_file.h"
#include "common/build_info.h"
#include "common/error.h"
#include "common/format.h"
#include "metrics/feature_stats.h"
#include "metrics/frechet.h"
#include "metrics/kid.h"
#include "metrics/linalg.h"
#include "metrics/precision_recall.h"
#include "models/gmm.h"
#include "reference_stats/feature_set.h"
#include "reference_stats/npy.h"
#include "reports/results.h"
#include "samplers/sampler.h"

namespace sit::eval {
namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

/// Reference sample ids start here, so they never share a stream with the samples.
constexpr int64_t kReferenceIdBase = int64_t{1} << 40;

std::vector<int64_t> id_range(int64_t begin, int64_t count) {
  std::vector<int64_t> ids(static_cast<size_t>(count));
  std::iota(ids.begin(), ids.end(), begin);
  return ids;
}

samplers::SamplerConfig sampler_config(const SweepConfig& c, const models::GaussianMixture& m) {
  using namespace samplers;
  SamplerConfig s;
  s.path = parse_path_type(c.path_type);
  s.prediction = parse_prediction(c.prediction);
  s.sde = c.mode == "SDE";
  s.num_steps = c.num_steps;
  if (s.sde) {
    s.sde_options.method = parse_sde_method(c.method);
    s.sde_options.diffusion.form = parse_diffusion_form(c.diffusion_form);
    s.sde_options.diffusion.norm = c.diffusion_norm;
    s.sde_options.last_step = parse_last_step(c.last_step);
    s.sde_options.last_step_size = c.last_step_size;
  } else {
    s.ode.method = parse_ode_method(c.method);
    s.ode.atol = c.atol;
    s.ode.rtol = c.rtol;
  }
  s.guidance.scale = c.cfg_scale;
  s.guidance.channels = parse_cfg_channels(c.cfg_channels);
  s.guidance.null_class = m.null_class();
  return s;
}

/// Exact statistics of the target under the sweep's label distribution (uniform over
/// classes, as the sampled labels).
metrics::FeatureStats exact_reference_stats(const models::GaussianMixture& m) {
  metrics::FeatureStats s;
  const int64_t d = m.dim();
  at::Tensor mean = at::zeros({d}, at::kDouble), second = at::zeros({d, d}, at::kDouble);
  const int64_t classes = std::max<int64_t>(m.num_classes(), 1);
  for (int64_t c = 0; c < classes; ++c) {
    const int64_t label = m.num_classes() > 0 ? c : -1;
    const at::Tensor mc = m.target_mean(label);
    mean += mc / classes;
    second += (m.target_covariance(label) + at::outer(mc, mc)) / classes;
  }
  const at::Tensor cov = (second - at::outer(mean, mean)).contiguous();
  s.mu = Eigen::Map<const Eigen::VectorXd>(mean.data_ptr<double>(), d);
  s.sigma = Eigen::Map<const Eigen::MatrixXd>(cov.data_ptr<double>(), d, d);
  return s;
}

at::Tensor labels_for(const models::GaussianMixture& m, uint64_t seed,
                      const std::vector<int64_t>& ids) {
  return m.num_classes() > 0 ? samplers::per_sample_labels(seed, ids, m.num_classes())
                             : at::zeros({static_cast<int64_t>(ids.size())}, at::kLong);
}

/// Appends one line to results.jsonl durably; a torn last line from a crash is cut first.
void append_result(const fs::path& file, const json& record) {
  if (fs::exists(file)) {
    std::string content;
    {
      std::ifstream in(file, std::ios::binary);
      content.assign(std::istreambuf_iterator<char>(in), {});
    }
    if (!content.empty() && content.back() != '\n')
      fs::resize_file(file, content.rfind('\n') == std::string::npos ? 0 : content.rfind('\n') + 1);
  }
  const std::string line = record.dump() + "\n";
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) fail(file.string(), ": cannot open for appending");
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::fsync(fd);
  ::close(fd);
  if (!ok) fail(file.string(), ": write failed (disk full?)");
}

}  // namespace

std::string dry_run_listing(const SweepSpec& spec) {
  std::ostringstream out;
  out << spec.configs.size() << " configurations of " << spec.name << " (" << spec.model << ", "
      << spec.samples << " samples each):\n";
  int64_t budget = 0;
  bool unknown = false;
  for (const auto& c : spec.configs) {
    const int64_t nfe = c.nfe_estimate();
    out << "  " << c.id() << "  " << c.label() << "  NFE "
        << (nfe < 0 ? std::string("adaptive") : std::to_string(nfe)) << "\n";
    if (nfe < 0)
      unknown = true;
    else
      budget += nfe * spec.samples;
  }
  out << "estimated budget: " << budget << " sample-NFE"
      << (unknown ? " plus the adaptive (dopri5) configurations" : "") << "\n";
  return out.str();
}

SweepSummary run_sweep(const SweepSpec& spec, const SweepOptions& options, std::ostream& log) {
  SweepSummary summary;
  const fs::path dir = !options.out_dir.empty() ? options.out_dir
                       : !spec.out.empty()      ? spec.out
                                                : "runs/" + spec.name;
  summary.dir = dir.string();
  fs::create_directories(dir / "features");
  {
    std::ifstream in(spec.source);
    write_file_atomic((dir / "sweep.toml").string(),
                      std::string(std::istreambuf_iterator<char>(in), {}));
    json configs = json::array();
    for (const auto& c : spec.configs)
      configs.push_back({{"id", c.id()}, {"label", c.label()}, {"canonical", c.canonical()}});
    write_file_atomic((dir / "configs.json").string(), configs.dump(2) + "\n");
  }
  const models::GaussianMixture model = models::GaussianMixture::from_spec(spec.model);
  const auto options_t = at::TensorOptions()
                             .dtype(spec.precision == "fp64" ? at::kDouble : at::kFloat)
                             .device(at::Device(spec.device));
  if (spec.precision != "fp32" && spec.precision != "fp64")
    fail(spec.source, ": precision must be fp32 or fp64, got '", spec.precision, "'");

  // Reference: exact statistics, and exact target draws for precision/recall and KID.
  const metrics::FeatureStats ref_stats = exact_reference_stats(model);
  const auto ref_ids = id_range(kReferenceIdBase, spec.reference_samples);
  const at::Tensor ref_rows =
      model.sample_target(spec.seed, ref_ids, labels_for(model, spec.seed, ref_ids))
          .to(at::kFloat)
          .contiguous();
  const metrics::FeatureView ref_view{ref_rows.data_ptr<float>(), ref_rows.size(0), model.dim()};

  const fs::path results = dir / "results.jsonl";
  std::set<std::string> done;
  if (fs::exists(results))
    for (const auto& r : reports::load_results(results.string()))
      done.insert(r.value("id", ""));
  const BuildInfo& build = build_info();
  int index = 0;
  for (const auto& cfg : spec.configs) {
    ++index;
    const std::string id = cfg.id();
    if (done.count(id)) {
      ++summary.skipped;
      continue;
    }
    const auto start = std::chrono::steady_clock::now();
    json rec;
    rec["id"] = id;
    rec["label"] = cfg.label();
    rec["mode"] = cfg.mode;
    rec["path_type"] = cfg.path_type;
    rec["prediction"] = cfg.prediction;
    rec["method"] = cfg.method;
    rec["num_steps"] = cfg.num_steps;
    if (cfg.mode == "ODE") {
      rec["atol"] = cfg.atol;
      rec["rtol"] = cfg.rtol;
    } else {
      rec["diffusion_form"] = cfg.diffusion_form;
      rec["diffusion_norm"] = cfg.diffusion_norm;
      rec["diffusion_convention"] = "D = w/2";
      rec["last_step"] = cfg.last_step;
      rec["last_step_size"] = cfg.last_step_size;
    }
    rec["cfg_scale"] = cfg.cfg_scale;
    rec["cfg_channels"] = cfg.cfg_channels;
    rec["model"] = spec.model;
    rec["global_seed"] = spec.seed;
    try {
      const samplers::SamplerConfig sc = sampler_config(cfg, model);
      const fs::path partial = dir / "partial" / id;
      fs::create_directories(partial);
      const int64_t n = spec.samples, d = model.dim();
      // Generate the missing batches; each lands atomically, so a kill loses at most the
      // batch in flight.
      for (int64_t s = 0, k = 0; s < n; s += spec.batch_size, ++k) {
        const fs::path batch_file = partial / ("batch_" + std::to_string(k) + ".npz");
        if (fs::exists(batch_file)) continue;
        const int64_t b = std::min(spec.batch_size, n - s);
        const auto ids = id_range(s, b);
        const at::Tensor y = labels_for(model, spec.seed, ids).to(options_t.device());
        const at::Tensor x0 =
            samplers::per_sample_normal(spec.seed, ids, samplers::kStreamInit, {d}, options_t);
        const auto r =
            samplers::sample(model.model_fn(sc.prediction, sc.path), sc, x0, y, ids, spec.seed);
        const at::Tensor rows = r.x.to(at::kFloat).cpu().contiguous();
        io::NpzWriter w(batch_file.string());
        w.add("samples", {b, d}, rows.data_ptr<float>());
        w.add("nfe", {b}, r.nfe.data());
        w.close();
      }
      // Assemble in sample order: the result depends only on the samples, not on how
      // the run was interrupted.
      io::FeatureSet features;
      features.pool = io::FeatureMatrix{};
      features.pool->rows = n;
      features.pool->cols = d;
      features.pool->data.resize(static_cast<size_t>(n * d));
      std::vector<int64_t> nfe;
      metrics::StatsAccumulator acc(d);
      for (int64_t s = 0, k = 0; s < n; s += spec.batch_size, ++k) {
        io::NpzReader z((partial / ("batch_" + std::to_string(k) + ".npz")).string());
        const int64_t b = std::min(spec.batch_size, n - s);
        z.open("samples").read_rows(0, b, features.pool->data.data() + s * d);
        const auto batch_nfe = z.open("nfe").read_all<int64_t>();
        nfe.insert(nfe.end(), batch_nfe.begin(), batch_nfe.end());
        acc.add(features.pool->data.data() + s * d, b);
      }
      const at::Tensor labels = labels_for(model, spec.seed, id_range(0, n));
      features.labels =
          std::vector<int64_t>(labels.data_ptr<int64_t>(), labels.data_ptr<int64_t>() + n);
      features.provenance.source = spec.model + " " + cfg.canonical();
      features.provenance.extractor = "identity (data-space features)";
      features.provenance.created = "not recorded (sweep outputs are deterministic)";
      features.provenance.count = n;
      metrics::check_finite(features.pool->view(), "configuration " + id);
      const metrics::FeatureView view = features.pool->view();
      for (const auto& m : spec.metrics) {
        if (m == "fid") {
          rec["fid"] = metrics::frechet_distance(acc.finalize(), ref_stats).distance;
        } else if (m == "pr") {
          metrics::PrecisionRecallOptions po;
          po.mode = metrics::DistanceMode::kFp32;  // data-space features: exact arithmetic
          const auto pr = metrics::precision_recall(ref_view, view, po);
          rec["precision"] = pr.precision;
          rec["recall"] = pr.recall;
        } else if (m == "kid") {
          metrics::KidOptions ko;
          ko.seed = spec.seed;
          const auto kid = metrics::kernel_inception_distance(ref_view, view, ko);
          rec["kid"] = kid.mean;
          rec["kid_std"] = kid.std;
        }
      }
      io::save_feature_set((dir / "features" / (id + ".h5")).string(), features);
      fs::remove_all(partial);
      rec["n_samples"] = n;
      rec["nfe"] = std::accumulate(nfe.begin(), nfe.end(), 0.0) / static_cast<double>(n);
      rec["status"] = "ok";
      ++summary.ok;
    } catch (const std::exception& e) {
      rec["status"] = "failed";
      rec["error"] = e.what();
      ++summary.failed;
    }
    const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - start;
    rec["wall_s"] = wall.count();
    if (rec["status"] == "ok") rec["samples_per_s"] = spec.samples / std::max(wall.count(), 1e-9);
    rec["provenance"] = {{"program_version", build.version},
                         {"git_revision", build.git_revision},
                         {"device", spec.device},
                         {"precision", spec.precision},
                         {"blas", linalg::blas_description()},
                         {"eigen", build.eigen_version},
                         {"hdf5", build.hdf5_version},
                         {"libtorch", build.torch_version}};
    append_result(results, rec);
    if (!options.quiet) {
      log << "[" << index << "/" << spec.configs.size() << "] " << id << " " << cfg.label() << ": ";
      if (rec["status"] == "ok")
        log << "FD " << fixed(rec.value("fid", 0.0), 4) << ", NFE " << rec["nfe"].get<double>()
            << ", " << fixed(wall.count(), 2) << " s\n";
      else
        log << "failed: " << rec["error"].get<std::string>() << "\n";
    }
  }
  fs::remove_all(dir / "partial");
  return summary;
}

}  // namespace sit::eval
