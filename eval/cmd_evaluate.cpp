// sit-eval evaluate / features / ref-stats: the ADM evaluator's job on images, with
// Inception-v3 features through TorchScript.
#include <ATen/ATen.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <optional>

#include "common/atomic_file.h"
#include "common/error.h"
#include "eval/commands.h"
#include "eval/features_job.h"
#include "eval/metrics_job.h"
#include "metrics/feature_stats.h"
#include "models/inception.h"
#include "reference_stats/feature_set.h"
#include "reference_stats/image_reader.h"
#include "reference_stats/npy.h"

namespace fs = std::filesystem;

namespace sit::eval {
namespace {

struct Common {
  std::string inception, device = "cpu";
  int64_t batch_size = 50;
  bool quiet = false;
};

void add_common(CLI::App* cmd, Common& c) {
  cmd->add_option("--inception", c.inception,
                  "TorchScript Inception: NVIDIA's inception-2015-12-05.pt or the canonical "
                  "extractor from tools/export_inception.py (default: $SIT_EVAL_INCEPTION)");
  cmd->add_option("--device", c.device, "cpu, cuda, cuda:N")->capture_default_str();
  cmd->add_option("--batch-size", c.batch_size, "images per batch")->capture_default_str();
  cmd->add_flag("--quiet", c.quiet, "no progress lines");
}

std::string inception_path(const Common& c) {
  if (!c.inception.empty()) return c.inception;
  if (const char* env = std::getenv("SIT_EVAL_INCEPTION")) return env;
  fail(
      "no Inception file: pass --inception FILE (NVIDIA's inception-2015-12-05.pt, or "
      "build one with tools/export_inception.py) or set SIT_EVAL_INCEPTION");
}

ExtractOptions extract_options(const Common& c, const std::string& what) {
  ExtractOptions o;
  o.batch_size = c.batch_size;
  if (!c.quiet)
    o.progress = [what, last = -1](int64_t done, int64_t total) mutable {
      const int pct = static_cast<int>(100 * done / total);
      if (pct / 10 != last / 10 || done == total) {
        std::cerr << what << ": " << done << "/" << total << " images\n";
        last = pct;
      }
    };
  return o;
}

/// Images (a folder, or an npz/npy with arr_0 and no feature keys) rather than features.
bool is_image_input(const std::string& path) {
  if (fs::is_directory(path)) return true;
  if (!fs::exists(path)) fail(path, ": no such file or folder");
  if (io::detect_file_kind(path) != io::FileKind::kNpz) return false;
  const io::NpzReader z(path);
  return z.has("arr_0") && !z.has("pool") && !z.has("mu");
}

io::FeatureSet sample_features(const std::string& path, const Common& c,
                               std::optional<models::InceptionExtractor>& e) {
  if (!is_image_input(path)) return io::load_feature_set(path);
  if (!e) e.emplace(inception_path(c), c.device);
  const auto source = io::open_images(path);
  return extract_features(*source, *e, extract_options(c, "samples"));
}

int run_evaluate(const std::string& ref_path, const std::string& samples_path, const Common& c,
                 const std::string& json, const std::string& cache_dir, const std::string& metrics,
                 const std::string& pr_distance) {
  MetricsJobOptions o;
  o.which = parse_metric_selection(metrics);
  o.pr.mode = metrics::parse_distance_mode(pr_distance);
  io::FeatureSet ref = io::load_feature_set(ref_path);
  std::optional<models::InceptionExtractor> e;
  io::FeatureSet samples = sample_features(samples_path, c, e);
  // Precision/recall need the reference images' pool features (ADM: arr_0).
  if (o.which.precision_recall && !ref.pool && ref.image_count > 0) {
    if (!e) e.emplace(inception_path(c), c.device);
    auto [pool, cached] =
        cached_reference_pool(ref_path, *e, cache_dir, extract_options(c, "reference arr_0"));
    if (!c.quiet)
      std::cerr << (cached ? "reference features from the cache" : "reference features cached")
                << " in " << cache_dir << "\n";
    ref.pool = std::move(pool.pool);
  }
  const MetricsReport report = compute_metrics(ref, samples, o);
  for (const auto& w : report.warnings)
    std::cerr << "warning: " << w << "\n";
  for (const auto& s : report.skipped)
    std::cerr << "note: " << s << "\n";
  std::cout << report.adm_lines() << std::flush;
  if (!json.empty()) write_file_atomic(json, report.json());
  return 0;
}

int run_features(const std::string& input, const std::string& out, const Common& c) {
  const models::InceptionExtractor e(inception_path(c), c.device);
  const auto source = io::open_images(input);
  const io::FeatureSet f = extract_features(*source, e, extract_options(c, "features"));
  io::save_feature_set(out, f);
  std::cerr << "wrote " << f.pool->rows << " feature rows (pool" << (f.spatial ? ", spatial" : "")
            << ", logits) of " << source->describe() << " to " << out << "\n";
  return 0;
}

int run_ref_stats(const std::string& input, const std::string& out, const Common& c,
                  int64_t keep_images) {
  const models::InceptionExtractor e(inception_path(c), c.device);
  const auto source = io::open_images(input);
  io::NpzWriter npz(out);
  ExtractOptions o = extract_options(c, "reference");
  int64_t kept = 0;
  const int64_t keep = std::min(keep_images, source->count());
  if (keep > 0)
    o.on_batch = [&](const uint8_t* images, int64_t n, int64_t h, int64_t w) {
      if (kept == 0) npz.begin("arr_0", io::DType::kU1, {keep, h, w, 3});
      const int64_t take = std::min(n, keep - kept);
      if (take > 0) npz.append_rows(images, take);
      kept += take;
      if (kept == keep && take > 0) npz.end();
    };
  const io::FeatureSet f = extract_features(*source, e, o);
  const metrics::FeatureStats s = metrics::compute_stats(f.pool->view());
  npz.add("mu", {s.mu.size()}, s.mu.data());
  npz.add("sigma", {s.mu.size(), s.mu.size()}, s.sigma.data());
  if (f.spatial) {
    const metrics::FeatureStats t = metrics::compute_stats(f.spatial->view());
    npz.add("mu_s", {t.mu.size()}, t.mu.data());
    npz.add("sigma_s", {t.mu.size(), t.mu.size()}, t.sigma.data());
  }
  npz.close();
  std::cerr << "wrote ADM reference statistics of " << f.pool->rows << " images ("
            << source->describe() << ", " << e.identity() << ")"
            << (keep > 0 ? " with " + std::to_string(keep) + " images in arr_0" : "") << " to "
            << out << "\n";
  return 0;
}

}  // namespace

Command add_evaluate_commands(CLI::App& app, std::vector<std::pair<std::string, Command>>& out) {
  struct Args {
    Common common;
    std::string ref, samples, json, cache, metrics = "fid,sfid,is,pr", pr_distance = "adm-fp16";
    std::string input, out;
    int64_t keep_images = 0;
  };
  auto ev = std::make_shared<Args>(), ft = std::make_shared<Args>(), rs = std::make_shared<Args>();
  CLI::App* e = app.add_subcommand(
      "evaluate",
      "the ADM evaluator without TensorFlow: IS, FID, sFID, precision and recall of sample "
      "images against an ADM reference batch");
  e->add_option("REF", ev->ref, "reference batch npz (mu, sigma, mu_s, sigma_s, arr_0)")
      ->required()
      ->check(CLI::ExistingFile);
  e->add_option("SAMPLES", ev->samples,
                "sample npz (arr_0 uint8 [N, H, W, 3]), folder of PNG/JPEG, or feature file")
      ->required()
      ->check(CLI::ExistingPath);
  e->add_option("--json", ev->json, "also write the metrics as JSON");
  e->add_option("--metrics", ev->metrics, "subset of fid,sfid,is,pr,kid")->capture_default_str();
  e->add_option("--pr-distance", ev->pr_distance,
                "precision/recall distance arithmetic: adm-fp16 (as ADM's GPU run) or fp32")
      ->capture_default_str();
  e->add_option("--cache-dir", ev->cache,
                "where reference pool features are cached (default $SIT_EVAL_CACHE, "
                "$XDG_CACHE_HOME/sit-eval or ~/.cache/sit-eval)");
  add_common(e, ev->common);
  CLI::App* f = app.add_subcommand("features", "Inception features of images, to .h5 or .npz");
  f->add_option("INPUT", ft->input, "npz (arr_0), .npy or folder of PNG/JPEG")
      ->required()
      ->check(CLI::ExistingPath);
  f->add_option("--out", ft->out, "FEATURES.h5 or .npz (pool, spatial, logits)")->required();
  add_common(f, ft->common);
  CLI::App* r = app.add_subcommand("ref-stats", "ADM-format reference statistics of images");
  r->add_option("INPUT", rs->input, "npz (arr_0), .npy or folder of PNG/JPEG")
      ->required()
      ->check(CLI::ExistingPath);
  r->add_option("--out", rs->out, "REF.npz (mu, sigma, mu_s, sigma_s[, arr_0])")->required();
  r->add_option("--keep-images", rs->keep_images,
                "also store the first N images as arr_0 (ADM keeps 10,000 for precision/recall)");
  add_common(r, rs->common);
  out.emplace_back("features", [ft] { return run_features(ft->input, ft->out, ft->common); });
  out.emplace_back("ref-stats",
                   [rs] { return run_ref_stats(rs->input, rs->out, rs->common, rs->keep_images); });
  return [ev] {
    return run_evaluate(ev->ref, ev->samples, ev->common, ev->json,
                        ev->cache.empty() ? default_cache_dir() : ev->cache, ev->metrics,
                        ev->pr_distance);
  };
}

}  // namespace sit::eval
