// sit-eval evaluate / features / ref-stats: the ADM evaluator's job on images, with
// Inception-v3 features through TorchScript.
#include <ATen/ATen.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <algorithm>

#include "common/atomic_file.h"
#include "common/error.h"
#include "eval/cli_checks.h"
#include "eval/commands.h"
#include "eval/features_job.h"
#include "eval/metrics_job.h"
#include "metrics/feature_stats.h"
#include "metrics/per_class_fid.h"
#include "models/edm2_reference.h"
#include "models/feature_extractor.h"
#include "models/vit_extractors.h"
#include "reference_stats/feature_set.h"
#include "reference_stats/image_reader.h"
#include "reference_stats/npy.h"

namespace fs = std::filesystem;

namespace sit::eval {
namespace {

struct Common {
  std::string inception, dinov2, clip, dinov2_resize = "pil";
  std::string extractor;  ///< comma-separated kinds; "" = what the metrics need / inception
  std::string device = "cpu";
  int64_t batch_size = 50;
  int64_t center_crop = 0;
  bool quiet = false;
};

void add_common(CLI::App* cmd, Common& c, const std::string& extractor_help) {
  cmd->add_option("--inception", c.inception,
                  "TorchScript Inception: NVIDIA's inception-2015-12-05.pt or the canonical "
                  "extractor from tools/export_inception.py (default: $SIT_EVAL_INCEPTION)");
  cmd->add_option("--dinov2", c.dinov2,
                  "TorchScript DINOv2 from tools/export_dinov2.py, for fd_dinov2 and "
                  "precision_dinov2 (default: $SIT_EVAL_DINOV2)");
  cmd->add_option("--clip", c.clip,
                  "TorchScript CLIP ViT-L/14@336px image tower from tools/export_clip.py, for "
                  "cmmd (default: $SIT_EVAL_CLIP)");
  cmd->add_option("--dinov2-resize", c.dinov2_resize,
                  "DINOv2's resize to 224: pil (Pillow bicubic on uint8: dgm-eval, EDM2 'pil'), "
                  "pil-float (dgm-eval --clean_resize) "
                  "or torch (antialiased bicubic on float: EDM2's default)")
      ->capture_default_str();
  cmd->add_option("--extractor", c.extractor,
                  "comma-separated extractors to run in one pass over the images (" +
                      models::extractor_kind_names() + "); " + extractor_help);
  cmd->add_option("--device", c.device, "cpu, cuda, cuda:N")
      ->capture_default_str()
      ->transform(lowercase());
  cmd->add_option("--batch-size", c.batch_size, "images per batch")
      ->capture_default_str()
      ->check(valid(at_least(1)));
  cmd->add_option("--center-crop", c.center_crop,
                  "crop every image to SIZE x SIZE first as ADM's center_crop_arr (EDM2's "
                  "center-crop-dhariwal: BOX halving, bicubic short side to SIZE, centre crop), "
                  "as the ImageNet references were made (smaller images are upscaled, as ADM's)")
      ->check(valid(integers(1, 16384)));
  cmd->add_flag("--quiet", c.quiet, "no progress lines");
}

/// The file of an extractor kind: its option, else its environment variable.
std::string extractor_path(const Common& c, const models::ExtractorKind& k) {
  const std::string name = k.name;
  const std::string& given = name == "inception" ? c.inception
                             : name == "dinov2"  ? c.dinov2
                                                 : c.clip;
  std::string path = given, via = "--" + name;
  if (path.empty())
    if (const char* env = std::getenv(k.env)) {
      path = env;
      via = std::string("$") + k.env;
    }
  if (!path.empty()) {
    const std::string script = name == "inception" ? "tools/export_inception.py (or NVIDIA's "
                                                     "inception-2015-12-05.pt)"
                                                   : "tools/export_" + name + ".py";
    if (!fs::exists(path))
      fail(via, " ", path, ": no such file (a TorchScript ", name, " extractor: write one with ",
           script, ")");
    if (!fs::is_regular_file(path))
      fail(via, " ", path, ": not a file (a TorchScript ", name, " extractor: write one with ",
           script, ")");
    return path;
  }
  if (name == "inception")
    fail("no Inception file: pass --inception FILE (NVIDIA's inception-2015-12-05.pt, or "
         "build one with tools/export_inception.py) or set SIT_EVAL_INCEPTION");
  fail("no ", name, " file: pass --", name, " FILE (build one with tools/export_", name,
       ".py from the official weights) or set ", k.env);
}

/// The kinds of a comma-separated --extractor list, in registry order; errors list them.
std::vector<std::string> parse_extractor_list(const std::string& list) {
  std::set<std::string> named;
  std::stringstream in(list);
  for (std::string k; std::getline(in, k, ',');) {
    k.erase(0, k.find_first_not_of(' '));
    k.erase(k.find_last_not_of(' ') + 1);
    if (k.empty()) continue;
    if (!models::find_extractor_kind(k))
      fail("--extractor: feature extractor must be one of ", models::extractor_kind_names(),
           "; got '", k, "'");
    named.insert(k);
  }
  if (named.empty()) fail("--extractor: name at least one of ", models::extractor_kind_names());
  std::vector<std::string> out;
  for (const auto& k : models::extractor_registry())
    if (named.count(k.name)) out.push_back(k.name);
  return out;
}

/// Loads the extractors of `kinds` (one, or a group run on the same decoded batch). Every
/// file is found and checked before any image is read.
std::unique_ptr<models::FeatureExtractor> load_extractors(const Common& c,
                                                          const std::vector<std::string>& kinds) {
  models::ExtractorSettings settings;
  settings.device = c.device;
  settings.dinov2_resize = c.dinov2_resize;
  // a bad mode fails before any file is loaded
  in_context("--dinov2-resize", [&] { return models::parse_resize_mode(c.dinov2_resize); });
  std::vector<std::string> paths;
  for (const auto& kind : kinds)
    paths.push_back(extractor_path(c, *models::find_extractor_kind(kind)));
  std::vector<std::unique_ptr<models::FeatureExtractor>> members;
  for (size_t i = 0; i < kinds.size(); ++i)
    members.push_back(in_context("--" + kinds[i], [&] {
      return models::load_extractor(kinds[i], paths[i], settings);
    }));
  if (members.size() == 1) return std::move(members.front());
  return std::make_unique<models::ExtractorGroup>(std::move(members));
}

/// Labels of an ADM sample batch (arr_1 beside arr_0), for intra-FID; `why` says why
/// there are none (no arr_1, or one that does not hold a label per image).
std::optional<std::vector<int64_t>> batch_labels(const std::string& path, int64_t n,
                                                 std::string* why = nullptr) {
  auto none = [&](const std::string& reason) -> std::optional<std::vector<int64_t>> {
    if (why) *why = reason;
    return std::nullopt;
  };
  if (fs::is_directory(path)) return none("a folder of images carries no labels");
  if (io::detect_file_kind(path) != io::FileKind::kNpz) return none("no labels");
  const io::NpzReader z(path);
  if (!z.has("arr_1")) return none("no arr_1 (labels) beside arr_0");
  io::NpyArray a = z.open("arr_1");
  if (a.shape().size() != 1 || a.shape()[0] != n)
    return none(cat("arr_1 has shape ", shape_string(a.shape()), ", not one label per image (",
                    n, ")"));
  return a.read_all<int64_t>();
}

ExtractOptions extract_options(const Common& c, const std::string& what) {
  ExtractOptions o;
  o.batch_size = c.batch_size;
  o.center_crop = c.center_crop;
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

/// Refuses feature files made by another extractor of a kind `e` runs (another file, or
/// DINOv2's other resize mode), naming both, before any image is extracted.
void check_made_by(const io::FeatureSet& f, const models::FeatureExtractor& e) {
  const auto recorded = io::extractor_signatures(f.provenance.extractor);
  for (const auto& [kind, signature] : io::extractor_signatures(e.identity())) {
    const auto it = recorded.find(kind);
    if (it != recorded.end() && it->second != signature)
      fail(f.path, ": its features were made by ", f.provenance.extractor,
           ", but this run extracts with ", e.identity(), "; features of different extractors "
           "are not comparable (pass the same --", kind, " file and settings, or re-extract the "
           "file)");
  }
}

/// Refuses stored statistics whose width does not fit what the extractor gives, before
/// any image is extracted.
void check_widths(const io::FeatureSet& f, const models::FeatureExtractor& e) {
  for (const auto& [block, stats] : f.stats)
    if (const int64_t width = e.width(block); width > 0 && stats.dim() != width)
      fail(f.path, ": '", io::stats_keys(block).first, "' has ", stats.dim(),
           " dimensions, but the extractor gives ", width, " for '", block,
           "': the statistics were made with another extractor");
  for (const auto& [block, rows] : f.blocks)
    if (const int64_t width = e.width(block); width > 0 && rows.cols != width)
      fail(f.path, ": '", block, "' rows have ", rows.cols, " columns, but the extractor gives ",
           width, ": the features were made with another extractor");
}

int run_evaluate(const std::string& ref_path, const std::string& samples_path, const Common& c,
                 const std::string& json, const std::string& cache_dir, const std::string& metrics,
                 const std::string& pr_distance, uint64_t seed) {
  // Everything that can be checked is checked before the first image is extracted.
  MetricsJobOptions o;
  o.which = option_value("--metrics", [&] { return parse_metric_list(metrics); });
  o.pr.mode =
      option_value("--pr-distance", [&] { return metrics::parse_distance_mode(pr_distance); });
  o.kid.seed = seed;
  o.fd_infinity_seed = seed;
  if (!json.empty()) check_output_path(json, "--json", {".json"});
  io::FeatureSet ref = models::load_any_feature_set(ref_path);
  const InputKind kind = input_kind(samples_path);
  // What the chosen metrics read of each side, by block (the metric table's inputs).
  std::set<std::string> sample_rows, sample_stats, ref_rows;
  for (const auto& key : o.which)
    for (const MetricInput& in : metric(key).inputs) {
      if (in.side == MetricInput::kReference && in.need == MetricInput::kRows)
        ref_rows.insert(in.block);
      else if (in.side == MetricInput::kSamples)
        (in.need == MetricInput::kRows ? sample_rows : sample_stats).insert(in.block);
    }
  // As ADM's evaluator: activations of arr_0 always (IS, precision/recall), statistics
  // stored in the file when present (FID, sFID), else computed from the activations.
  std::optional<io::FeatureSet> stored;
  std::unique_ptr<io::ImageSource> images;
  if (kind != InputKind::kImages) stored = io::load_feature_set(samples_path);
  // the blocks the samples' images must give: rows, and statistics the file does not store
  std::set<std::string> sample_blocks = sample_rows;
  for (const auto& b : sample_stats)
    if (!(stored && stored->statistics(b))) sample_blocks.insert(b);
  if (kind == InputKind::kFeatures) sample_blocks.clear();
  if (!sample_blocks.empty()) images = io::open_images(samples_path);
  // The reference's own rows (precision/recall, KID, CMMD) come from its arr_0 when it has
  // no feature rows: ADM's reference batches.
  std::set<std::string> ref_blocks;
  if (ref.image_count > 0)
    for (const auto& b : ref_rows)
      if (!ref.rows(b)) ref_blocks.insert(b);
  const bool ref_images_needed = !ref_blocks.empty();
  // The extractors: those named, else those whose blocks are needed, in one pass each side.
  std::vector<std::string> kinds;
  if (!c.extractor.empty()) {
    kinds = parse_extractor_list(c.extractor);
  } else {
    std::set<std::string> needed;
    for (const auto* blocks : {&sample_blocks, &ref_blocks})
      for (const auto& b : *blocks)
        if (const auto* k = models::extractor_kind_of_block(b)) needed.insert(k->name);
    for (const auto& k : models::extractor_registry())
      if (needed.count(k.name)) kinds.push_back(k.name);
    if (kinds.empty() && (images || ref_images_needed)) kinds.push_back("inception");
  }
  std::unique_ptr<models::FeatureExtractor> e;
  if (images || ref_images_needed) {
    e = load_extractors(c, kinds);
    check_widths(ref, *e);
    check_made_by(ref, *e);
    if (stored) check_made_by(*stored, *e);
  }
  // intra-FID: labels on both sides, and enough samples of every class, before extraction
  if (std::count(o.which.begin(), o.which.end(), "intra_fid")) {
    std::string why = "no labels";
    std::optional<std::vector<int64_t>> labels =
        stored && stored->labels ? stored->labels
                                 : batch_labels(samples_path, images ? images->count() : 0, &why);
    if (!labels)
      fail("intra_fid: ", samples_path, " has no labels: ", why, " (class-conditional samples: "
           "an ADM batch's arr_1, or 'labels' in a feature file)");
    if (!ref.labels)
      fail("intra_fid: ", ref_path, " has no labels: intra-FID needs reference feature rows "
           "with labels (sit-eval features of a labelled set)");
    in_context(cat("intra_fid: samples ", samples_path, ", reference ", ref_path),
               [&] { metrics::check_class_counts(*labels, *ref.labels); });
  }
  const int64_t n_samples = images ? images->count() : stored->num_rows();
  const std::string& smp_name = samples_path;
  if (stored && ref.statistics(io::kPool) && stored->statistics(io::kPool) &&
      stored->statistics(io::kPool)->dim() != ref.statistics(io::kPool)->dim())
    fail("FID: statistics must have the same width, got ", stored->statistics(io::kPool)->dim(),
         " in ", smp_name, " and ", ref.statistics(io::kPool)->dim(), " in ", ref_path);
  const int64_t ref_rows_count = ref.rows(io::kPool) ? ref.rows(io::kPool)->rows : ref.image_count;
  const int64_t k = o.pr.k;
  const bool pr = std::count(o.which.begin(), o.which.end(), "precision") ||
                  std::count(o.which.begin(), o.which.end(), "recall");
  if (pr && (ref.rows(io::kPool) || ref.image_count > 0)) {
    if (ref_rows_count < k + 1)
      fail(ref_path, ": ", ref_rows_count, " reference images/rows; precision/recall needs at least "
           "k + 1 = ", k + 1, " (or leave precision and recall out of --metrics)");
    if ((images || (stored && stored->rows(io::kPool))) && n_samples < k + 1)
      fail(smp_name, ": ", n_samples, " samples; precision/recall needs at least k + 1 = ", k + 1,
           " (or leave precision and recall out of --metrics)");
  }
  // Something of what was asked for must be computable from what the two sides will hold.
  auto will_have = [&](const MetricInput& in) {
    const bool extracted = e && e->width(in.block) > 0;
    if (in.side == MetricInput::kReference)
      return ref.rows(in.block) != nullptr ||
             (in.need == MetricInput::kStatistics && ref.statistics(in.block)) ||
             (extracted && ref_blocks.count(in.block));
    return (images && extracted) || (stored && stored->rows(in.block)) ||
           (in.need == MetricInput::kStatistics && stored && stored->statistics(in.block));
  };
  bool computable = false;
  for (const auto& key : o.which) {
    const Metric& m = metric(key);
    computable = computable || std::all_of(m.inputs.begin(), m.inputs.end(), will_have);
  }
  if (!computable)
    fail("nothing to compute: --metrics ", metrics, " needs what ", ref_path, " and ", smp_name,
         " do not hold (FID: 'mu'/'sigma' or 'pool'; sFID: 'mu_s'/'sigma_s' or 'spatial'; IS: "
         "sample images or 'logits'; precision, recall and kid: reference arr_0 or 'pool'; "
         "fd_dinov2: 'mu_dinov2'/'sigma_dinov2' or 'dinov2'; cmmd: reference arr_0 or 'clip')");

  if (ref_images_needed) {  // the reference features' cache
    if (fs::exists(cache_dir) && !fs::is_directory(cache_dir))
      fail("--cache-dir ", cache_dir, ": is a file, not a folder");
    fs::create_directories(cache_dir);
    check_output_path((fs::path(cache_dir) / "ref.h5").string(), "--cache-dir");
  }

  io::FeatureSet samples;
  if (images) {
    ExtractOptions x = extract_options(c, "samples");
    // blocks needed only as statistics are streamed; blocks nobody reads are dropped
    for (const auto& b : e->blocks())
      if (!sample_rows.count(b.name))
        (sample_stats.count(b.name) && !(stored && stored->statistics(b.name)) ? x.stats_only
                                                                               : x.skip)
            .insert(b.name);
    samples = extract_features(*images, *e, x);
    samples.path = samples_path;
    if (stored && stored->labels)
      samples.labels = stored->labels;
    else
      samples.labels = batch_labels(samples_path, samples.num_rows());
    if (stored)  // ADM: the file's statistics for FID and sFID
      for (const auto& [block, s] : stored->stats)
        samples.stats[block] = s;
  } else {
    samples = std::move(*stored);
  }
  if (ref_images_needed) {
    auto [rows, cached] = cached_reference_rows(ref_path, *e, ref_blocks, cache_dir,
                                                extract_options(c, "reference arr_0"));
    if (!c.quiet)
      std::cerr << (cached ? "reference features from the cache" : "reference features cached")
                << " in " << cache_dir << "\n";
    for (const auto& b : ref_blocks)
      ref.blocks[b] = std::move(rows.blocks.at(b));
    ref.provenance.extractor = rows.provenance.extractor;
  }
  const MetricsReport report = compute_metrics(ref, samples, o);
  for (const auto& w : report.warnings)
    std::cerr << "warning: " << w << "\n";
  for (const auto& s : report.skipped)
    std::cerr << "note: " << s << "\n";
  for (const auto& s : report.notes)
    std::cerr << "note: " << s << "\n";
  std::cout << report.adm_lines() << std::flush;
  if (!json.empty()) write_file_atomic(json, report.json());
  return 0;
}

/// The --extractor kinds of `features` and `ref-stats` (default: Inception).
std::vector<std::string> extractor_kinds(const Common& c) {
  return c.extractor.empty() ? std::vector<std::string>{"inception"}
                             : parse_extractor_list(c.extractor);
}

int run_features(const std::string& input, const std::string& out, const Common& c) {
  check_output_path(out, "--out", {".h5", ".hdf5", ".npz"});
  const auto e = load_extractors(c, extractor_kinds(c));
  const auto source = io::open_images(input);
  io::FeatureSet f = extract_features(*source, *e, extract_options(c, "features"));
  f.labels = batch_labels(input, f.num_rows());  // an ADM batch's arr_1 (intra-FID)
  io::save_feature_set(out, f);
  std::string blocks;
  for (const auto& b : e->blocks())
    blocks += (blocks.empty() ? "" : ", ") + b.name;
  std::cerr << "wrote " << f.num_rows() << " feature rows (" << blocks << (f.labels ? ", labels" : "")
            << ") of " << source->describe() << " to " << out << "\n";
  return 0;
}

int run_ref_stats(const std::string& input, const std::string& out, const Common& c,
                  int64_t keep_images) {
  check_output_path(out, "--out", {".npz"});
  const auto e = load_extractors(c, extractor_kinds(c));
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
  // ADM's reference statistics (pool, spatial), DINOv2's (FD_DINOv2), and CLIP's rows (CMMD
  // compares embeddings, not statistics); logits are not kept
  for (const auto& b : e->blocks())
    if (b.name == io::kPool || b.name == io::kSpatial || b.name == "dinov2")
      o.stats_only.insert(b.name);
    else if (b.name != "clip")
      o.skip.insert(b.name);
  const io::FeatureSet f = extract_features(*source, *e, o);
  for (const auto& [block, s] : f.stats) {
    const auto [mu, sigma] = io::stats_keys(block);
    npz.add(mu, {s.mu.size()}, s.mu.data());
    npz.add(sigma, {s.mu.size(), s.mu.size()}, s.sigma.data());
  }
  for (const auto& [block, rows] : f.blocks)
    npz.add(block, {rows.rows, rows.cols}, rows.data.data());
  io::add_provenance(npz, f);  // the extractors' SHA-256: later runs refuse other files
  npz.close();
  std::cerr << "wrote reference statistics of " << f.provenance.count << " images ("
            << source->describe() << ", " << e->identity() << ")"
            << (keep > 0 ? " with " + std::to_string(keep) + " images in arr_0" : "") << " to "
            << out << "\n";
  return 0;
}

/// Statistics between the formats: ADM / sit-eval npz, HDF5, EDM2's reference pickle.
int run_convert_ref(const std::string& input, const std::string& out) {
  const bool pickle = out.size() > 4 && out.compare(out.size() - 4, 4, ".pkl") == 0;
  if (!pickle) check_output_path(out, "--out", {".npz", ".h5", ".hdf5", ".pkl"});
  io::FeatureSet set = models::load_any_feature_set(input);
  if (set.stats.empty() && set.blocks.empty())
    fail(input, ": holds no statistics or feature rows to convert");
  if (pickle)
    for (const auto& [block, rows] : set.blocks)  // EDM2 keeps statistics only
      if (!set.statistics(block) && (block == io::kPool || block == "dinov2"))
        set.stats[block] = metrics::compute_stats(rows.view());
  if (set.provenance.count == 0) {  // the images the statistics cover
    set.provenance.count = set.num_rows();
    for (const auto& [block, s] : set.stats)
      set.provenance.count = std::max(set.provenance.count, s.count);
  }
  if (pickle) {
    models::save_edm2_reference(out, set);
  } else {
    io::save_feature_set(out, set);
  }
  std::string what, dropped;
  for (const auto& [block, s] : set.stats)
    (!pickle || block == io::kPool || block == "dinov2" ? what : dropped) +=
        (block + " statistics (" + std::to_string(s.dim()) + "-d), ");
  for (const auto& [block, rows] : set.blocks)
    (pickle ? dropped : what) += block + " rows, ";
  std::cerr << "wrote " << what.substr(0, what.size() - 2) << " of " << input << " to " << out
            << "\n";
  if (!dropped.empty())
    std::cerr << "note: an EDM2 reference holds FID and FD_DINOv2 statistics only; not written: "
              << dropped.substr(0, dropped.size() - 2) << "\n";
  return 0;
}

}  // namespace

Command add_evaluate_commands(CLI::App& app, std::vector<std::pair<std::string, Command>>& out) {
  struct Args {
    Common common;
    std::string ref, samples, json, cache, metrics = "fid,sfid,inception_score,precision,recall";
    std::string pr_distance = "adm-fp16";
    std::string input, out;
    int64_t keep_images = 0;
    uint64_t seed = 0;
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
  e->add_option("--metrics", ev->metrics,
                "comma-separated metrics: " + metric_names_help() + " (aliases in brackets)")
      ->capture_default_str();
  e->add_option("--pr-distance", ev->pr_distance,
                "precision/recall distance arithmetic: adm-fp16 (as ADM's GPU run) or fp32")
      ->capture_default_str();
  e->add_option("--seed", ev->seed, "KID and FID-infinity subset seed")
      ->capture_default_str()
      ->check(valid_seed());
  e->add_option("--cache-dir", ev->cache,
                "where reference pool features are cached (default $SIT_EVAL_CACHE, "
                "$XDG_CACHE_HOME/sit-eval or ~/.cache/sit-eval)");
  add_common(e, ev->common, "default: those the --metrics need");
  CLI::App* f = app.add_subcommand(
      "features", "Inception (and DINOv2, CLIP) features of images, to .h5 or .npz");
  f->add_option("INPUT", ft->input, "npz (arr_0), .npy or folder of PNG/JPEG")
      ->required()
      ->check(CLI::ExistingPath);
  f->add_option("--out", ft->out, "FEATURES.h5 or .npz (pool, spatial, logits)")->required();
  add_common(f, ft->common, "default: inception");
  CLI::App* r = app.add_subcommand("ref-stats", "ADM-format reference statistics of images");
  r->add_option("INPUT", rs->input, "npz (arr_0), .npy or folder of PNG/JPEG")
      ->required()
      ->check(CLI::ExistingPath);
  r->add_option("--out", rs->out,
                "REF.npz (mu, sigma, mu_s, sigma_s[, mu_dinov2, sigma_dinov2, clip, arr_0])")
      ->required();
  r->add_option("--keep-images", rs->keep_images,
                "also store the first N images as arr_0 (ADM keeps 10,000 for precision/recall)")
      ->check(valid(at_least(0)));
  add_common(r, rs->common, "default: inception");
  auto cv = std::make_shared<Args>();
  CLI::App* v = app.add_subcommand(
      "convert-ref",
      "reference statistics from one format to another: ADM / sit-eval .npz, .h5, EDM2's "
      "reference .pkl (fid and fd_dinov2 statistics)");
  v->add_option("INPUT", cv->input, "REF.npz, .h5 or EDM2 .pkl")->required()->check(CLI::ExistingFile);
  v->add_option("--out", cv->out, "OUT.npz, .h5 or .pkl (EDM2: pool as 'fid', dinov2 as 'fd_dinov2')")
      ->required();
  out.emplace_back("convert-ref", [cv] { return run_convert_ref(cv->input, cv->out); });
  out.emplace_back("features", [ft] { return run_features(ft->input, ft->out, ft->common); });
  out.emplace_back("ref-stats",
                   [rs] { return run_ref_stats(rs->input, rs->out, rs->common, rs->keep_images); });
  return [ev] {
    return run_evaluate(ev->ref, ev->samples, ev->common, ev->json,
                        ev->cache.empty() ? default_cache_dir() : ev->cache, ev->metrics,
                        ev->pr_distance, ev->seed);
  };
}

}  // namespace sit::eval
