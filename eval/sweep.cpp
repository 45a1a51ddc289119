#include "eval/sweep.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>

#include "common/atomic_file.h"
#include "common/build_info.h"
#include "common/error.h"
#include "common/format.h"
#include "common/range.h"
#include "eval/features_job.h"
#include "eval/generator.h"
#include "eval/protocols.h"
#include "eval/metrics_job.h"
#include "eval/run_manifest.h"
#include "metrics/feature_stats.h"
#include "metrics/linalg.h"
#include "models/gmm.h"
#include "models/edm2_reference.h"
#include "models/feature_extractor.h"
#include "eval/metric_table.h"
#include "reference_stats/feature_set.h"
#include "reference_stats/image_writer.h"
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
  if (fd < 0) fail_output(file.string(), ": cannot open for appending (", std::strerror(errno), ")");
  const off_t before = ::lseek(fd, 0, SEEK_END);
  const ssize_t wrote = ::write(fd, line.data(), line.size());
  const int write_errno = errno;
  const bool written = wrote == static_cast<ssize_t>(line.size());
  const bool synced = written && ::fsync(fd) == 0;
  const int sync_errno = errno;
  if (!synced && before >= 0) {
    // No half record stays behind: cut the file back to its last complete line (the
    // record is computed again by the rerun).
    if (::ftruncate(fd, before) == 0) ::fsync(fd);
  }
  ::close(fd);
  if (!written)
    fail_output(file.string(), ": cannot append a result (",
         wrote < 0 ? std::strerror(write_errno) : "short write", "); nothing recorded, rerun the "
         "same command once the disk has room");
  if (!synced)
    fail_output(file.string(), ": cannot flush a result to disk (fsync: ", std::strerror(sync_errno),
         "); nothing recorded, rerun the same command");
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

namespace {

/// The settings part of a result record: every sampler field the configuration shows,
/// typed as the field table says.
json base_record(const SamplerSpec& cfg, const SweepSpec& spec) {
  json rec;
  rec["id"] = cfg.id();
  rec["label"] = cfg.label();
  rec["sampler"] = cfg.label(/*with_path=*/false);  // the pivot tables' columns
  for (const auto& f : sampler_fields()) {
    if (!cfg.shows(f)) continue;
    const std::string v = cfg.value(f.key);
    if (!f.numeric)
      rec[f.key] = v;
    else if (f.integer)
      rec[f.key] = std::stoll(v);
    else
      rec[f.key] = std::stod(v);
    if (std::string(f.key) == "diffusion_form") rec["diffusion_convention"] = "D = w/2";
  }
  rec["nfe_planned"] = cfg.nfe_estimate();  // per sample; -1: adaptive (dopri5)
  rec["model"] = spec.model;
  rec["global_seed"] = spec.seed;
  if (!spec.protocol.empty() && find_protocol(spec.protocol).family == cfg.family()) {
    // which preset, what actually ran (its fingerprint) and what was changed from it;
    // configurations of the grid's other families are not runs of the preset
    ProtocolRun run{&find_protocol(spec.protocol), cfg, spec.samples, spec.quantization};
    rec["protocol"] = spec.protocol;
    rec["protocol_fingerprint"] = run.fingerprint();
    const std::string changed = run.overrides();
    if (!changed.empty()) rec["protocol_overrides"] = changed;
  }
  return rec;
}

/// An exclusive advisory lock on a file, released when the object (or the process) dies.
class FileLock {
 public:
  FileLock(const fs::path& path, bool wait) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT, 0644);
    if (fd_ < 0) fail(path.string(), ": cannot open the lock file");
    held_ = ::flock(fd_, LOCK_EX | (wait ? 0 : LOCK_NB)) == 0;
  }
  ~FileLock() {
    if (held_) ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  bool held() const { return held_; }

 private:
  int fd_ = -1;
  bool held_ = false;
};

/// A file of RUN/shards named "K-of-N.EXT": its shard K, count N and extension; nullopt for
/// any other name.
struct ShardFile {
  int shard = 0, count = 0;
  std::string ext;
  std::string stem() const { return std::to_string(shard) + "-of-" + std::to_string(count); }
};
std::optional<ShardFile> parse_shard_file(const std::string& name) {
  ShardFile f;
  char ext[8] = {0};
  if (std::sscanf(name.c_str(), "%d-of-%d.%7s", &f.shard, &f.count, ext) != 3) return std::nullopt;
  f.ext = ext;
  return f;
}

/// This process's shard of the run directory: RUN/shards/K-of-N.lock held for the process's
/// lifetime (a second process of the same shard is refused; `merge` tries the lock to tell
/// a running shard from a stopped one) and RUN/shards/K-of-N.json (pid, host, start time,
/// state: running, finished or interrupted; a killed process leaves "running" unlocked).
class ShardRecord {
 public:
  ShardRecord(const fs::path& dir, int shard, int count) {
    const fs::path shards = dir / "shards";
    fs::create_directories(shards);
    const std::string name = ShardFile{shard, count, ""}.stem();
    info_ = shards / (name + ".json");
    lock_.emplace(shards / (name + ".lock"), /*wait=*/false);
    if (!lock_->held()) {
      const json other = read_info(info_);
      fail(dir.string(), ": shard ", shard, "/", count, " is already running (pid ",
           other.value("pid", 0), " on ", other.value("host", std::string("?")), ", since ",
           other.value("started", std::string("?")),
           "); one process per shard (another --shard, or wait for it)");
    }
    // Shards of one sweep run side by side; a sweep split another way (or not at all) must
    // wait: two splittings would compute the same batches twice.
    for (const auto& entry : fs::directory_iterator(shards)) {
      const auto file = parse_shard_file(entry.path().filename().string());
      if (!file || file->ext != "lock" || file->count == count) continue;
      FileLock probe(entry.path(), /*wait=*/false);
      if (probe.held()) continue;
      const json other = read_info(shards / (file->stem() + ".json"));
      fail(dir.string(), ": a sweep split into ", file->count, " shards is running here (shard ",
           file->shard, "/", file->count, ", pid ", other.value("pid", 0), " on ",
           other.value("host", std::string("?")), "); this one is split into ", count,
           ". One sweep per run directory: wait for it, or run with --shard K/", file->count);
    }
    char host[256] = {0};
    ::gethostname(host, sizeof host - 1);
    record_["shard"] = std::to_string(shard) + "/" + std::to_string(count);
    record_["pid"] = static_cast<int64_t>(::getpid());
    record_["host"] = host;
    record_["started"] = utc_now();
    set_state("running");
  }
  void set_state(const std::string& state) {
    record_["state"] = state;
    record_["updated"] = utc_now();
    write_file_atomic(info_.string(), record_.dump(2) + "\n");
  }
  static json read_info(const fs::path& path) {
    try {
      std::ifstream in(path);
      return json::parse(in);
    } catch (const std::exception&) {
      return json::object();
    }
  }

 private:
  static std::string utc_now() {
    const std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return buf;
  }
  fs::path info_;
  std::optional<FileLock> lock_;
  json record_;
};

std::set<std::string> recorded_ids(const fs::path& results) {
  std::set<std::string> ids;
  if (fs::exists(results))
    for (const auto& r : reports::load_results(results.string()))
      ids.insert(r.value("id", ""));
  return ids;
}

/// Removes what an interrupted process left of configuration `id` after its record was
/// written (its batches and lock file), unless another process holds the lock (and so
/// removes them itself).
void discard_recorded_partial(const fs::path& dir, const std::string& id) {
  const fs::path partial = dir / "partial" / id, lock_file = dir / "partial" / (id + ".lock");
  if (!fs::exists(partial) && !fs::exists(lock_file)) return;
  FileLock lock(lock_file, /*wait=*/false);
  if (!lock.held()) return;
  fs::remove_all(partial);
  fs::remove(lock_file);
}

int64_t batch_count(const SweepSpec& spec) {
  return (spec.samples + spec.batch_size - 1) / spec.batch_size;
}

fs::path batch_path(const fs::path& partial, int64_t k) {
  return partial / ("batch_" + std::to_string(k) + ".npz");
}

/// Progress of the sweep: configuration i of n, samples done, samples/s, ETAs.
class Progress {
 public:
  Progress(const SweepOptions& o, std::ostream& log, size_t configs)
      : o_(o), log_(log), configs_(configs), start_(clock::now()), last_(start_) {}

  void begin_config(size_t index, const std::string& label) {
    index_ = index;
    label_ = label;
    config_start_ = clock::now();
  }
  /// After a batch: `done` of `total` samples of the current configuration.
  void batch(int64_t done, int64_t total) {
    if (o_.quiet) return;
    const auto now = clock::now();
    if (!o_.tty && seconds(last_, now) < o_.log_interval_s) return;
    last_ = now;
    const double elapsed = seconds(config_start_, now);
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
    const double eta_config = rate > 0 ? static_cast<double>(total - done) / rate : 0;
    // The sweep's ETA assumes the remaining configurations cost what finished ones did.
    const double per_config = finished_ > 0 ? seconds(start_, now) / finished_ : elapsed;
    const double eta_sweep = eta_config + per_config * static_cast<double>(configs_ - index_);
    std::ostringstream line;
    line << "[" << index_ << "/" << configs_ << "] " << label_ << ": " << done << "/" << total
         << " samples, " << fixed(rate, 1) << " samples/s, ETA " << fixed(eta_config, 0)
         << " s (sweep " << fixed(eta_sweep, 0) << " s)";
    if (o_.tty)
      log_ << "\r\033[K" << line.str() << std::flush;
    else
      log_ << line.str() << "\n";
  }
  /// Before a result line: clear the live line.
  void end_config() {
    ++finished_;
    if (o_.tty && !o_.quiet) log_ << "\r\033[K" << std::flush;
  }

 private:
  using clock = std::chrono::steady_clock;
  static double seconds(clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  }
  const SweepOptions& o_;
  std::ostream& log_;
  size_t configs_, index_ = 0;
  int finished_ = 0;
  std::string label_;
  clock::time_point start_, last_, config_start_;
};

struct Context {
  const SweepSpec& spec;
  const SweepOptions& options;
  std::ostream& log;
  fs::path dir, results;
  const Generator& model;
  const Generator* guide;  ///< autoguidance's guiding network, or nullptr
  at::TensorOptions tensor_options;
  const io::FeatureSet* reference;  ///< nullptr: no metrics (generation only)
  const MetricsJobOptions& metrics;
  SweepSummary& summary;
  Progress& progress;
  std::vector<std::pair<std::string, std::string>> model_provenance;
};

void append_record(Context& c, const SamplerSpec& cfg, json rec, double wall, int index) {
  const BuildInfo& build = build_info();
  rec["wall_s"] = wall;
  if (rec["status"] == "ok") rec["samples_per_s"] = c.spec.samples / std::max(wall, 1e-9);
  rec["shard"] = std::to_string(c.options.shard) + "/" + std::to_string(c.options.num_shards);
  rec["feature_space"] = c.model.feature_space();  // what FID & co. were computed on
  rec["provenance"] = {{"program_version", build.version},
                       {"git_revision", build.git_revision},
                       {"device", c.options.device.empty() ? c.spec.device : c.options.device},
                       {"precision", c.spec.precision},
                       {"blas", linalg::blas_description()},
                       {"eigen", build.eigen_version},
                       {"hdf5", build.hdf5_version},
                       {"libtorch", build.torch_version}};
  for (const auto& [key, value] : c.model_provenance)
    rec["provenance"][key] = value;
  {
    FileLock lock(c.dir / "results.lock", /*wait=*/true);
    if (recorded_ids(c.results).count(cfg.id())) return;  // another shard was first
    append_result(c.results, rec);
  }
  if (rec["status"] == "ok")
    ++c.summary.ok;
  else
    ++c.summary.failed;
  c.progress.end_config();
  if (!c.options.quiet) {
    c.log << "[" << index << "/" << c.spec.configs.size() << "] " << cfg.id() << " " << cfg.label()
          << ": ";
    if (rec["status"] == "ok")
      c.log << (rec.contains("fid")  // FID on Inception features, FD on others; as the tables
                    ? reports::metric_name({rec}, "fid") + " " +
                          reports::format_metric(rec["fid"].get<double>(), "fid",
                                                 reports::kSignificant4)
                    : std::string("no reference, no metrics"))
            << ", NFE " << rec["nfe"].get<double>() << ", " << fixed(wall, 2) << " s\n";
    else
      c.log << "failed: " << rec["error"].get<std::string>() << "\n";
  }
}

/// SIGINT / SIGTERM while a sweep runs: the first asks it to stop after the batch in
/// flight; a second one stops the process at once (the default action).
volatile std::sig_atomic_t g_stop_signal = 0;

void request_stop(int sig) {
  if (g_stop_signal != 0) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  g_stop_signal = sig;
}

/// Thrown between batches once a stop was requested.
struct Interrupted {};

void stop_if_requested() {
  if (g_stop_signal != 0) throw Interrupted{};
}

/// Installs request_stop for SIGINT and SIGTERM while it lives.
class StopSignals {
 public:
  StopSignals() {
    g_stop_signal = 0;
    int_ = std::signal(SIGINT, request_stop);
    term_ = std::signal(SIGTERM, request_stop);
  }
  ~StopSignals() {
    std::signal(SIGINT, int_);
    std::signal(SIGTERM, term_);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  void (*int_)(int) = SIG_DFL;
  void (*term_)(int) = SIG_DFL;
};

/// Generates this shard's missing batches of one configuration; each lands atomically,
/// so a kill loses at most the batch in flight.
void generate_batches(Context& c, const SamplerSpec& cfg) {
  const samplers::SamplerConfig sc = cfg.resolved(c.model.null_class());
  const fs::path partial = c.dir / "partial" / cfg.id();
  fs::create_directories(partial);
  const int64_t n = c.spec.samples;
  const auto layout = c.model.feature_layout();
  const bool png = c.spec.save_images == "png", npz = c.spec.save_images == "npz";
  std::optional<io::PngFolderWriter> png_out;
  if (png) png_out.emplace((c.dir / "images" / cfg.id()).string(), n);
  for (int64_t k = 0; k < batch_count(c.spec); ++k) {
    if (k % c.options.num_shards != c.options.shard) continue;
    if (fs::exists(batch_path(partial, k))) continue;
    stop_if_requested();  // between batches: every written batch is whole
    const int64_t s = k * c.spec.batch_size, b = std::min(c.spec.batch_size, n - s);
    const auto ids = id_range(s, b);
    const GeneratedBatch g = generate_batch(c.model, sc, c.spec.seed, ids,
                                            sample_labels(c.model.num_classes(), c.spec.seed, ids),
                                            {}, png || npz, c.guide);
    const samplers::SampleResult& r = g.result;
    const at::Tensor& images = g.images;
    const std::vector<at::Tensor> blocks = c.model.features(r.x, images);
    // PNGs are complete files of their own (rewritten identically after a kill); npz
    // images travel in the batch file and are assembled in sample order at the end.
    if (png) png_out->write(images.data_ptr<uint8_t>(), b, images.size(1), images.size(2), s);
    io::NpzWriter w(batch_path(partial, k).string());
    for (size_t i = 0; i < layout.size(); ++i)
      w.add(layout[i].first, {b, layout[i].second}, blocks[i].data_ptr<float>());
    w.add("nfe", {b}, r.nfe.data());
    w.add("nfe_uncond", {b}, r.nfe_uncond.data());
    if (npz) w.add("images", images.sizes().vec(), images.data_ptr<uint8_t>());
    w.close();
    c.progress.batch(std::min(n, s + b), n);
  }
}

/// A batch file that cannot be read whole (truncated, or a member failing its CRC-32):
/// removed so that its shard generates it again.
struct CorruptBatch {
  int64_t batch;
  std::string reason;
};

/// When every batch of a configuration is on disk, one process (holding its lock)
/// assembles them in sample order, scores them and records the result: the outcome does
/// not depend on interruptions, shard count or which process gets here. A batch that does
/// not read back whole (the zip's CRC-32 per member, its directory) is deleted, never
/// scored: returns false, the configuration stays pending and its shard regenerates the
/// batch (the caller does at once when it is its own).
bool try_finalize(Context& c, const SamplerSpec& cfg, double wall_so_far, int index) {
  const std::string id = cfg.id();
  const fs::path partial = c.dir / "partial" / id;
  for (int64_t k = 0; k < batch_count(c.spec); ++k)
    if (!fs::exists(batch_path(partial, k))) return true;
  FileLock lock(c.dir / "partial" / (id + ".lock"), /*wait=*/false);
  if (!lock.held()) return true;
  if (recorded_ids(c.results).count(id)) {  // a process killed before its clean-up
    fs::remove_all(partial);
    fs::remove(c.dir / "partial" / (id + ".lock"));
    return true;
  }
  const auto start = std::chrono::steady_clock::now();
  json rec = base_record(cfg, c.spec);
  try {
    const int64_t n = c.spec.samples;
    io::FeatureSet features;
    const auto layout = c.model.feature_layout();
    for (const auto& [name, width] : layout)
      features.blocks[name] = io::FeatureMatrix{
          std::vector<float>(static_cast<size_t>(n * width)), n, width};
    const int64_t d = features.rows(io::kPool)->cols;
    std::vector<int64_t> nfe, nfe_uncond;
    metrics::StatsAccumulator acc(d);
    const at::Tensor labels = sample_labels(c.model.num_classes(), c.spec.seed, id_range(0, n));
    std::optional<io::AdmNpzWriter> images;
    for (int64_t k = 0; k < batch_count(c.spec); ++k) {
      const int64_t s = k * c.spec.batch_size, b = std::min(c.spec.batch_size, n - s);
      // reading only: what fails here is the batch file, not the computation
      std::vector<uint8_t> pixels;
      int64_t height = 0, width_px = 0;
      try {
        io::NpzReader z(batch_path(partial, k).string());
        if (c.spec.save_images == "npz") {
          io::NpyArray a = z.open("images");
          const auto& shape = a.shape();  // (b, H, W, 3)
          if (shape.size() != 4 || shape[0] != b || shape[3] != 3)
            fail("images of shape ", shape.size(), "-d, expected (", b, ", H, W, 3)");
          height = shape[1];
          width_px = shape[2];
          pixels.resize(static_cast<size_t>(b * height * width_px * 3));
          a.read_rows_u8(0, b, pixels.data());
        }
        for (const auto& [name, width] : layout)
          z.open(name).read_rows(0, b, features.blocks.at(name).data.data() + s * width);
        const auto batch_nfe = z.open("nfe").read_all<int64_t>();
        if (static_cast<int64_t>(batch_nfe.size()) != b)
          fail("nfe has ", batch_nfe.size(), " entries, expected ", b);
        nfe.insert(nfe.end(), batch_nfe.begin(), batch_nfe.end());
        if (z.has("nfe_uncond")) {  // (batches of earlier versions have none)
          const auto u = z.open("nfe_uncond").read_all<int64_t>();
          nfe_uncond.insert(nfe_uncond.end(), u.begin(), u.end());
        }
      } catch (const std::exception& e) {
        throw CorruptBatch{k, e.what()};
      }
      if (!pixels.empty()) {
        if (!images)
          images.emplace((c.dir / "images" / (id + ".npz")).string(), n, height, width_px);
        images->write(pixels.data(), b, labels.data_ptr<int64_t>() + s);
      }
      acc.add(features.rows(io::kPool)->data.data() + s * d, b);
    }
    if (images) images->close();
    features.labels =
        std::vector<int64_t>(labels.data_ptr<int64_t>(), labels.data_ptr<int64_t>() + n);
    features.provenance.source = c.spec.model + " " + cfg.canonical();
    features.provenance.extractor = c.model.feature_space();
    features.provenance.created = "not recorded (sweep outputs are deterministic)";
    features.provenance.count = n;
    features.path = "configuration " + id;
    // The streaming statistics stand in for the rows' (as stored statistics do in ADM).
    features.stats[io::kPool] = acc.finalize();
    metrics::check_finite(features.rows(io::kPool)->view(), features.path);
    if (c.reference) {
      const MetricsReport report = compute_metrics(*c.reference, features, c.metrics);
      for (const auto& m : metric_table()) {  // table order, spreads beside their values
        if (const auto v = report.get(m.key)) rec[m.key] = *v;
        if (*m.spread)
          if (const auto v = report.get(m.spread)) rec[m.spread] = *v;
      }
      if (!report.warnings.empty()) rec["warnings"] = report.warnings;
    }
    io::save_feature_set((c.dir / "features" / (id + ".h5")).string(), features);
    rec["n_samples"] = n;
    rec["nfe"] = std::accumulate(nfe.begin(), nfe.end(), 0.0) / static_cast<double>(n);
    if (cfg.config.guidance.scale != 1.0 && static_cast<int64_t>(nfe_uncond.size()) == n)
      rec["nfe_uncond"] =
          std::accumulate(nfe_uncond.begin(), nfe_uncond.end(), 0.0) / static_cast<double>(n);
    rec["status"] = "ok";
  } catch (const CorruptBatch& bad) {
    fs::remove(batch_path(partial, bad.batch));
    c.log << "note: batch " << bad.batch << " of " << id << " did not read back (" << bad.reason
          << "); removed: its shard (" << bad.batch % c.options.num_shards << "/"
          << c.options.num_shards << " here) generates it again\n";
    return false;
  } catch (const OutputError&) {
    throw;  // the disk's fault, not the configuration's: stop, nothing recorded
  } catch (const std::exception& e) {
    rec["status"] = "failed";
    rec["error"] = e.what();
  }
  const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - start;
  append_record(c, cfg, rec, wall_so_far + wall.count(), index);
  fs::remove_all(partial);
  // Safe while held: a process that still opens the old file re-checks the results.
  fs::remove(c.dir / "partial" / (id + ".lock"));
  return true;
}

}  // namespace

std::optional<io::FeatureSet> run_reference(const SweepSpec& spec, const Generator& model,
                                            const std::string& device) {
  std::optional<io::FeatureSet> reference;
  if (const models::GaussianMixture* exact = model.mixture()) {
    // an analytic model's exact statistics and exact target draws (precision/recall, KID)
    const models::GaussianMixture& gmm = *exact;
    reference.emplace();
    reference->path = "exact reference of " + spec.model;
    reference->stats[io::kPool] = exact_reference_stats(gmm);
    const auto ref_ids = id_range(kReferenceIdBase, spec.reference_samples);
    const at::Tensor ref_rows =
        gmm.sample_target(spec.seed, ref_ids, sample_labels(gmm.num_classes(), spec.seed, ref_ids))
            .to(at::kFloat)
            .contiguous();
    reference->blocks[io::kPool] =
        io::FeatureMatrix{std::vector<float>(ref_rows.data_ptr<float>(),
                                             ref_rows.data_ptr<float>() + ref_rows.numel()),
                          ref_rows.size(0), gmm.dim()};
  } else if (!spec.reference.empty()) {
    reference.emplace(models::load_any_feature_set(spec.reference));
    // An ADM reference batch: the metrics that read reference rows (precision, recall,
    // KID) need the pool features of its arr_0, computed once per (reference, extractor)
    // and cached.
    bool want_rows = false;
    for (const auto& key : spec.metrics)
      for (const MetricInput& in : metric(key).inputs)
        want_rows = want_rows || (in.side == MetricInput::kReference && in.need == MetricInput::kRows);
    if (!reference->rows(io::kPool) && reference->image_count > 0 && want_rows &&
        !spec.inception.empty()) {
      const auto e = models::load_extractor(spec.extractor, spec.inception, device);
      io::FeatureSet pool =
          cached_reference_rows(spec.reference, *e, {io::kPool}, default_cache_dir()).first;
      reference->blocks[io::kPool] = std::move(pool.blocks.at(io::kPool));
      reference->provenance.extractor = pool.provenance.extractor;
    }
  }
  if (reference && !reference->statistics(io::kPool) && !reference->rows(io::kPool))
    fail(spec.reference, ": no pool features or mu / sigma to score against");
  // statistics of every block with rows and none stored (computed once, saved with the run)
  if (reference)
    for (const auto& [block, rows] : reference->blocks)
      if (!reference->statistics(block))
        reference->stats[block] = metrics::compute_stats(rows.view());
  return reference;
}

Shard shard_from_environment() {
  const std::pair<const char*, const char*> launchers[] = {
      {"SLURM_PROCID", "SLURM_NTASKS"},
      {"RANK", "WORLD_SIZE"},
      {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"}};
  for (const auto& [rank, size] : launchers) {
    const char* r = std::getenv(rank);
    const char* n = std::getenv(size);
    if (r && n) {
      // whole numbers only: a garbled rank must not silently become shard 0
      const Range whole = integers(0, 1000000);
      if (!whole.check_text(r).empty() || !whole.check_text(n).empty())
        fail(rank, " = '", r, "' and ", size, " = '", n, "' do not describe a shard");
      Shard s{std::atoi(r), std::atoi(n), 0};
      for (const char* local : {"SLURM_LOCALID", "LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK"})
        if (const char* l = std::getenv(local)) {
          if (!whole.check_text(l).empty()) fail(local, " = '", l, "' is not a local rank");
          s.local_rank = std::atoi(l);
        }
      if (s.count < 1 || s.index < 0 || s.index >= s.count)
        fail(rank, " = ", r, " and ", size, " = ", n, " do not describe a shard");
      return s;
    }
  }
  return Shard{};
}

Shard parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  Shard s;
  const auto whole = [](const std::string& t) {
    return !t.empty() && t.size() < 9 && t.find_first_not_of("0123456789") == std::string::npos;
  };
  if (slash == std::string::npos || !whole(text.substr(0, slash)) || !whole(text.substr(slash + 1)))
    fail("--shard must be K/N (e.g. 0/4), got '", text, "'");
  s.index = std::stoi(text.substr(0, slash));
  s.count = std::stoi(text.substr(slash + 1));
  if (s.count < 1 || s.index < 0 || s.index >= s.count)
    fail("--shard K/N needs 0 <= K < N, got '", text, "'");
  return s;
}

SweepSummary run_sweep(const SweepSpec& file_spec, const SweepOptions& options, std::ostream& log) {
  if (options.num_shards < 1 || options.shard < 0 || options.shard >= options.num_shards)
    fail("shard ", options.shard, "/", options.num_shards, " is not valid");
  SweepSummary summary;
  const fs::path dir = !options.out_dir.empty() ? options.out_dir
                       : !file_spec.out.empty() ? file_spec.out
                                                : "runs/" + file_spec.name;
  summary.dir = dir.string();
  // --save-images is remembered in the run directory so that resumed runs, other shards
  // and `merge` finish the configurations the same way.
  SweepSpec spec = file_spec;
  const fs::path saved = dir / "save_images.txt";
  bool remember_save_images = false;  // written once the run's identity is checked
  {
    std::string before;
    if (fs::exists(saved)) {
      std::ifstream in(saved);
      std::getline(in, before);
    }
    // The flag wins over the file's save_images key; either one is remembered.
    const bool flag = !options.save_images.empty();
    const std::string requested = flag ? options.save_images : file_spec.save_images;
    if (!before.empty()) {
      if ((flag || requested != "none") && requested != before)
        fail(dir.string(), ": this run saves images as '", before, "'; ",
             flag ? "--save-images " : "save_images = ", requested,
             " would mix formats (use a new --out)");
      spec.save_images = before;
    } else {
      if (requested != "none" && spec.vae.empty())
        fail("--save-images needs a model with images (a VAE); ", spec.model, " has none");
      spec.save_images = requested;
      remember_save_images = requested != "none";
    }
  }
  GeneratorSettings settings;
  settings.model = spec.model;
  settings.ckpt = spec.ckpt;
  settings.vae = spec.vae;
  settings.image_size = spec.image_size;
  settings.num_classes = spec.num_classes;
  settings.device = options.device.empty() ? spec.device : options.device;
  settings.precision = spec.precision;
  settings.inception = spec.inception;
  settings.extractor = spec.extractor;
  settings.dinov2 = spec.dinov2;
  settings.clip = spec.clip;
  settings.dinov2_resize = spec.dinov2_resize;
  settings.guide_model = spec.guide_model;
  settings.guide_ckpt = spec.guide_ckpt;
  settings.quantization = spec.quantization;
  const std::unique_ptr<Generator> generator = Generator::create(settings);
  const Generator& model = *generator;
  const std::unique_ptr<Generator> guide =
      in_context(spec.source, [&] { return Generator::create_guide(settings, model); });
  const auto tensor_options = model.state_options();
  for (const auto& cfg : spec.configs)
    in_context(cat(spec.source, ": configuration ", cfg.id(), " (", cfg.label(), ")"),
               [&] { check_sampler(cfg, model, guide.get()); });
  for (const auto& key : spec.metrics)  // the features the metrics read
    for (const MetricInput& in : metric(key).inputs) {
      const auto layout = model.feature_layout();
      if (in.side == MetricInput::kSamples &&
          std::none_of(layout.begin(), layout.end(), [&](const auto& b) { return b.first == in.block; }))
        fail(spec.source, ": metric '", key, "' needs '", in.block, "' features; the run's ",
             model.feature_space(), " features have none");
    }
  MetricsJobOptions metric_options;
  metric_options.which = spec.metrics;  // keys, checked by load_sweep
  metric_options.pr.mode = metrics::DistanceMode::kFp32;  // data-space features: exact arithmetic
  metric_options.kid.seed = spec.seed;
  // Nothing is written before the run's identity is known to match the directory's (and
  // a run refused before this point leaves no empty directory behind).
  fs::create_directories(dir);
  auto provenance = model.provenance();  // checksums of the model's files, once
  if (guide) {                           // the guiding network's, named as such
    provenance.emplace_back("guide_model", guide->name());
    for (const auto& [key, value] : guide->provenance())
      provenance.emplace_back("guide_" + key, value);
  }
  check_run_identity(dir.string(), run_identity(spec, provenance, metric_options));
  if (remember_save_images) write_file_atomic(saved.string(), spec.save_images + "\n");

  fs::create_directories(dir / "features");
  fs::create_directories(dir / "partial");
  if (spec.save_images != "none") fs::create_directories(dir / "images");
  std::optional<ShardRecord> shard_record;
  if (!options.merge_only) {
    shard_record.emplace(dir, options.shard, options.num_shards);
    std::ifstream in(spec.source);
    const std::string text(std::istreambuf_iterator<char>(in), {});
    if (fs::path(spec.source) != dir / "sweep.toml")
      write_file_atomic((dir / "sweep.toml").string(), text);
    record_configurations(dir.string(), spec.configs);
  }

  // The reference: computed once, saved in the run directory (compare, gate and report
  // read it there, without the model files).
  std::optional<io::FeatureSet> reference;
  const fs::path reference_file = dir / "reference.h5";
  if (fs::exists(reference_file)) {
    reference.emplace(io::load_feature_set(reference_file.string()));
  } else {
    reference = run_reference(spec, model, settings.device);
    if (reference) {
      if (reference->provenance.source.empty())
        reference->provenance.source = reference->path;
      io::save_feature_set(reference_file.string(), *reference);
    }
  }
  if (reference && !model.mixture()) {
    const int64_t ref_dim = reference->rows(io::kPool) ? reference->rows(io::kPool)->cols
                            : reference->statistics(io::kPool)
                                ? reference->statistics(io::kPool)->dim()
                                : 0;
    const int64_t dim = model.feature_layout().front().second;
    if (ref_dim != dim)
      fail(spec.reference, ": reference features have dimension ", ref_dim, ", the run's ",
           model.feature_space(), " features ", dim);
  }

  Progress progress(options, log, spec.configs.size());
  Context c{spec,
            options,
            log,
            dir,
            dir / "results.jsonl",
            model,
            guide.get(),
            tensor_options,
            reference ? &*reference : nullptr,
            metric_options,
            summary,
            progress,
            provenance};

  const std::set<std::string> done = recorded_ids(c.results);
  const StopSignals signals;
  int index = 0;
  for (const auto& cfg : spec.configs) {
    ++index;
    if (g_stop_signal != 0) break;
    if (done.count(cfg.id())) {
      ++summary.skipped;
      discard_recorded_partial(dir, cfg.id());
      continue;
    }
    if (options.merge_only) continue;
    progress.begin_config(static_cast<size_t>(index), cfg.label());
    const auto start = std::chrono::steady_clock::now();
    try {
      generate_batches(c, cfg);
    } catch (const Interrupted&) {
      break;  // this configuration's batches stay in partial/ for the rerun
    } catch (const OutputError&) {
      throw;  // a batch could not be written: stop; the rerun generates it again
    } catch (const std::exception& e) {
      // Deterministic failures (e.g. a refused configuration) fail in every shard alike.
      json rec = base_record(cfg, spec);
      rec["status"] = "failed";
      rec["error"] = e.what();
      const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - start;
      append_record(c, cfg, rec, wall.count(), index);
      fs::remove_all(dir / "partial" / cfg.id());
      continue;
    }
    const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - start;
    if (!try_finalize(c, cfg, wall.count(), index)) {
      generate_batches(c, cfg);  // the removed batch, when it is this shard's
      try_finalize(c, cfg, wall.count(), index);
    }
  }
  if (g_stop_signal != 0) {
    summary.interrupted = g_stop_signal;
    if (shard_record) shard_record->set_state("interrupted");
    return summary;
  }
  // Whoever finishes last completes the configurations other shards left (and merge does
  // only this).
  index = 0;
  for (const auto& cfg : spec.configs) {
    ++index;
    if (!done.count(cfg.id()) && !try_finalize(c, cfg, 0.0, index) && !options.merge_only) {
      generate_batches(c, cfg);
      try_finalize(c, cfg, 0.0, index);
    }
  }
  summary.pending = 0;
  const auto recorded = recorded_ids(c.results);
  for (const auto& cfg : spec.configs)
    summary.pending += !recorded.count(cfg.id());
  std::error_code ec;
  fs::remove(dir / "partial", ec);  // only when empty: other shards may still be working
  if (shard_record) shard_record->set_state("finished");
  return summary;
}

std::string shard_status(const SweepSpec& spec, const std::string& run_dir) {
  const fs::path dir = run_dir;
  // the batches the unfinished configurations miss
  const auto recorded = recorded_ids(dir / "results.jsonl");
  const int64_t batches = batch_count(spec);
  std::set<int64_t> missing;
  for (const auto& cfg : spec.configs) {
    if (recorded.count(cfg.id())) continue;
    for (int64_t k = 0; k < batches; ++k)
      if (!fs::exists(batch_path(dir / "partial" / cfg.id(), k))) missing.insert(k);
  }
  // the shards that ever started here, and whether each holds its lock now
  struct Seen {
    json info;
    bool running = false;
  };
  std::map<int, std::map<int, Seen>> seen;  // N -> K -> record
  const fs::path shards = dir / "shards";
  if (fs::exists(shards))
    for (const auto& entry : fs::directory_iterator(shards)) {
      const auto file = parse_shard_file(entry.path().filename().string());
      if (!file || file->ext != "json") continue;
      FileLock probe(shards / (file->stem() + ".lock"), false);
      seen[file->count][file->shard] = Seen{ShardRecord::read_info(entry.path()), !probe.held()};
    }
  std::ostringstream out;
  if (missing.empty()) return "";
  if (seen.empty()) {
    out << "  no shard has started in " << run_dir << ": run 'sit-eval sweep "
        << (dir / "sweep.toml").string() << " --out " << run_dir
        << "' (with --shard K/N, or under a launcher)\n";
    return out.str();
  }
  for (const auto& [n, by_shard] : seen) {
    std::set<int> owners;
    for (int64_t k : missing)
      owners.insert(static_cast<int>(k % n));
    for (int k : owners) {
      out << "  shard " << k << "/" << n;
      auto it = by_shard.find(k);
      if (it == by_shard.end()) {
        out << " has not started: run 'sit-eval sweep " << (dir / "sweep.toml").string()
            << " --out " << run_dir << " --shard " << k << "/" << n << "'\n";
        continue;
      }
      const json& info = it->second.info;
      const std::string who = cat("pid ", info.value("pid", 0), " on ",
                                  info.value("host", std::string("?")), ", started ",
                                  info.value("started", std::string("?")));
      if (it->second.running)
        out << " is running (" << who
            << "): wait for it; the last shard to finish completes the run\n";
      else
        out << " stopped before its batches were written (" << who << ", "
            << (info.value("state", std::string()) == "running" ? std::string("killed")
                                                                 : info.value("state", std::string("?")))
            << "): rerun it with --shard " << k << "/" << n << " (its finished batches are kept)\n";
    }
  }
  return out.str();
}

}  // namespace sit::eval
