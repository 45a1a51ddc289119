// sit-eval evaluate / features / ref-stats: the ADM evaluator's job on images, with
// Inception-v3 features through TorchScript.
#include <ATen/ATen.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include "common/atomic_file.h"
#include "common/error.h"
#include "eval/cli_checks.h"
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
  cmd->add_option("--device", c.device, "cpu, cuda, cuda:N")
      ->capture_default_str()
      ->transform(lowercase());
  cmd->add_option("--batch-size", c.batch_size, "images per batch")
      ->capture_default_str()
      ->check(valid(at_least(1)));
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

/// What a SAMPLES (or INPUT) path holds.
enum class InputKind {
  kFeatures,         ///< a feature file: pool / spatial / logits rows or stored statistics
  kImages,           ///< a folder, .npy, or npz with arr_0 only
  kImagesWithStats,  ///< an ADM batch: arr_0 and stored mu / sigma (as a reference batch)
};

InputKind input_kind(const std::string& path) {
  if (fs::is_directory(path)) return InputKind::kImages;
  if (!fs::exists(path)) fail(path, ": no such file or folder");
  unsigned char magic[2] = {};
  std::ifstream(path, std::ios::binary).read(reinterpret_cast<char*>(magic), 2);
  if (magic[0] == 0x93 && magic[1] == 'N') return InputKind::kImages;  // .npy images
  if (io::detect_file_kind(path) != io::FileKind::kNpz) return InputKind::kFeatures;
  const io::NpzReader z(path);
  if (!z.has("arr_0") || z.has("pool")) return InputKind::kFeatures;
  return z.has("mu") ? InputKind::kImagesWithStats : InputKind::kImages;
}

/// Refuses statistics whose width does not fit what the extractor will produce, before
/// any image is extracted.
void check_width(const std::optional<metrics::FeatureStats>& stats, int64_t width,
                 const std::string& path, const char* key, const char* what) {
  if (stats && stats->dim() != width)
    fail(path, ": '", key, "' has ", stats->dim(), " dimensions, but the Inception extractor gives ",
         width, " (", what, "): the statistics were made with another extractor");
}

int run_evaluate(const std::string& ref_path, const std::string& samples_path, const Common& c,
                 const std::string& json, const std::string& cache_dir, const std::string& metrics,
                 const std::string& pr_distance) {
  // Everything that can be checked is checked before the first image is extracted.
  MetricsJobOptions o;
  o.which = parse_metric_selection(metrics);
  o.pr.mode =
      option_value("--pr-distance", [&] { return metrics::parse_distance_mode(pr_distance); });
  if (!json.empty()) check_output_path(json, "--json", {".json"});
  io::FeatureSet ref = io::load_feature_set(ref_path);
  const bool rows_needed = o.which.precision_recall || o.which.kid;
  const InputKind kind = input_kind(samples_path);
  // As ADM's evaluator: activations of arr_0 always (IS, precision/recall), statistics
  // stored in the file when present (FID, sFID), else computed from the activations.
  std::optional<io::FeatureSet> stored;
  std::unique_ptr<io::ImageSource> images;
  if (kind == InputKind::kFeatures) {
    stored = io::load_feature_set(samples_path);
  } else {
    if (kind == InputKind::kImagesWithStats) stored = io::load_feature_set(samples_path);
    const bool need_images =
        kind == InputKind::kImages || o.which.inception_score || rows_needed;
    if (need_images) images = io::open_images(samples_path);
  }
  const int64_t n_samples = images ? images->count() : stored->num_rows();
  const std::string& smp_name = samples_path;
  if (images) {
    check_width(ref.stats, models::kInceptionPoolWidth, ref_path, "mu", "pool_3");
    if (o.which.sfid)
      check_width(ref.stats_spatial, models::kInceptionSpatialWidth, ref_path, "mu_s",
                  "the first 7 channels of Mixed_6/conv");
  }
  if (stored && stored->stats && ref.stats && stored->stats->dim() != ref.stats->dim())
    fail("FID: statistics must have the same width, got ", stored->stats->dim(), " in ", smp_name,
         " and ", ref.stats->dim(), " in ", ref_path);
  const int64_t ref_rows = ref.pool ? ref.pool->rows : ref.image_count;
  const bool ref_has_rows = ref.pool || ref.image_count > 0;
  const int64_t k = o.pr.k;
  if (o.which.precision_recall && ref_has_rows) {
    if (ref_rows < k + 1)
      fail(ref_path, ": ", ref_rows, " reference images/rows; precision/recall needs at least k + 1 = ",
           k + 1, " (or leave pr out of --metrics)");
    if ((images || (stored && stored->pool)) && n_samples < k + 1)
      fail(smp_name, ": ", n_samples, " samples; precision/recall needs at least k + 1 = ", k + 1,
           " (or leave pr out of --metrics)");
  }
  const bool computable = (o.which.inception_score && (images || (stored && stored->logits))) ||
                          (o.which.fid && (ref.stats || ref.pool)) ||
                          (o.which.sfid && (ref.stats_spatial || ref.spatial)) ||
                          (rows_needed && ref_has_rows && (images || (stored && stored->pool)));
  if (!computable)
    fail("nothing to compute: --metrics ", metrics, " needs what ", ref_path, " and ", smp_name,
         " do not hold (FID: 'mu'/'sigma' or 'pool'; sFID: 'mu_s'/'sigma_s' or 'spatial'; IS: "
         "sample images or 'logits'; pr and kid: reference arr_0 or 'pool')");

  if (rows_needed && !ref.pool && ref.image_count > 0) {  // the reference features' cache
    if (fs::exists(cache_dir) && !fs::is_directory(cache_dir))
      fail("--cache-dir ", cache_dir, ": is a file, not a folder");
    fs::create_directories(cache_dir);
    check_output_path((fs::path(cache_dir) / "ref.h5").string(), "--cache-dir");
  }

  std::optional<models::InceptionExtractor> e;
  io::FeatureSet samples;
  if (images) {
    e.emplace(inception_path(c), c.device);
    samples = extract_features(*images, *e, extract_options(c, "samples"));
    samples.path = samples_path;
    if (stored) {  // ADM: the file's statistics for FID and sFID
      samples.stats = stored->stats;
      samples.stats_spatial = stored->stats_spatial;
    }
  } else {
    samples = std::move(*stored);
  }
  // Precision/recall and KID need the reference images' pool features (ADM: arr_0).
  if (rows_needed && !ref.pool && ref.image_count > 0) {
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
  check_output_path(out, "--out", {".h5", ".hdf5", ".npz"});
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
  check_output_path(out, "--out", {".npz"});
  const models::InceptionExtractor e(inception_path(c), c.device);
  const auto source = io::open_images(input);
  io::NpzWriter npz(out);
  ExtractOptions o = extract_options(c, "reference");
  int64_t kept = 0;
  const int64_t keep = std::min(keep_images, source->count());
  if (keep_images > keep)
    std::cerr << "note: --keep-images " << keep_images << ": " << source->describe() << " has "
              << keep << " images; all are kept\n";
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
                "also store the first N images as arr_0 (ADM keeps 10,000 for precision/recall)")
      ->check(valid(at_least(0)));
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
