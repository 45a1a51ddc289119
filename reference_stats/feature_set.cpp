#include "reference_stats/feature_set.h"

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <sstream>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/build_info.h"
#include "common/error.h"
#include "common/format.h"
#include "reference_stats/npy.h"

namespace sit::io {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Keys that are never a block: labels, images, statistics, provenance, sample output.
bool reserved_key(const std::string& key) {
  return key == "labels" || key == "samples" || key == "provenance" || key.rfind("arr_", 0) == 0 ||
         key.rfind("mu", 0) == 0 || key.rfind("sigma", 0) == 0;
}

/// A stats key ("mu", "mu_s", "mu_dinov2") back to its block.
std::string block_of_stats_key(const std::string& mu_key) {
  if (mu_key == "mu") return kPool;
  if (mu_key == "mu_s") return kSpatial;
  return mu_key.substr(3);
}

/// Source-independent access to named arrays.
struct ArraySource {
  virtual ~ArraySource() = default;
  virtual bool has(const std::string& key) const = 0;
  virtual std::vector<std::string> keys() const = 0;
  virtual std::vector<int64_t> shape(const std::string& key) const = 0;
  virtual std::vector<float> f32(const std::string& key) const = 0;
  virtual std::vector<double> f64(const std::string& key) const = 0;
  virtual std::vector<int64_t> i64(const std::string& key) const = 0;
  /// Rows [start, start + count) of a 2-D array as float32, read in order from `start` = 0
  /// on (a stream over the whole array verifies its checksum at the end).
  using RowReader = std::function<void(int64_t start, int64_t count, float* out)>;
  virtual RowReader row_reader(const std::string& key) const = 0;
};

struct NpzSource : ArraySource {
  NpzReader npz;
  explicit NpzSource(const std::string& path) : npz(path) {}
  bool has(const std::string& k) const override { return npz.has(k); }
  std::vector<std::string> keys() const override { return npz.keys(); }
  std::vector<int64_t> shape(const std::string& k) const override { return npz.open(k).shape(); }
  std::vector<float> f32(const std::string& k) const override {
    return npz.open(k).read_all<float>();
  }
  std::vector<double> f64(const std::string& k) const override {
    return npz.open(k).read_all<double>();
  }
  std::vector<int64_t> i64(const std::string& k) const override {
    return npz.open(k).read_all<int64_t>();
  }
  RowReader row_reader(const std::string& k) const override {
    // one member stream for every piece: read through once, its CRC-32 checked at the end
    auto array = std::make_shared<NpyArray>(npz.open(k));
    return [array](int64_t start, int64_t count, float* out) {
      array->read_rows(start, count, out);
    };
  }
};

struct H5Source : ArraySource {
  H5FeatureReader h5;
  explicit H5Source(const std::string& path) : h5(path) {}
  bool has(const std::string& k) const override { return h5.has(k); }
  std::vector<std::string> keys() const override { return h5.keys(); }
  std::vector<int64_t> shape(const std::string& k) const override { return h5.shape(k); }
  std::vector<float> f32(const std::string& k) const override { return h5.read_f32(k); }
  std::vector<double> f64(const std::string& k) const override { return h5.read_f64(k); }
  std::vector<int64_t> i64(const std::string& k) const override { return h5.read_i64(k); }
  RowReader row_reader(const std::string& k) const override {
    return [this, k](int64_t start, int64_t count, float* out) {
      h5.read_rows(k, start, count, out);
    };
  }
};

/// The statistics of the rows of `key` ([rows, cols]), streamed in blocks.
metrics::FeatureStats stream_stats(const ArraySource& src, const std::string& path,
                                   const std::string& key, const std::string& block,
                                   int64_t rows, int64_t cols, const metrics::StatsOptions& o) {
  metrics::StreamingStats stats(rows, cols, o, cat(path, " '", block, "'"));
  const ArraySource::RowReader read = src.row_reader(key);
  std::vector<float> piece(static_cast<size_t>(stats.block_rows() * cols));
  for (int64_t start = 0; start < rows; start += stats.block_rows()) {
    const int64_t count = std::min(stats.block_rows(), rows - start);
    read(start, count, piece.data());
    stats.add(piece.data(), count);
  }
  return stats.finalize();
}

std::optional<metrics::FeatureStats> load_stats(const ArraySource& src, const std::string& path,
                                                const std::string& mu_key,
                                                const std::string& sigma_key) {
  const bool has_mu = src.has(mu_key), has_sigma = src.has(sigma_key);
  if (!has_mu && !has_sigma) return std::nullopt;
  if (has_mu != has_sigma)
    fail(path, ": has '", has_mu ? mu_key : sigma_key, "' but not '", has_mu ? sigma_key : mu_key,
         "'; stored statistics need both");
  const auto mu_shape = src.shape(mu_key);
  if (mu_shape.size() != 1)
    fail(path, ": '", mu_key, "' must be 1-D, got shape ", shape_string(mu_shape));
  const int64_t d = mu_shape[0];
  const auto sigma_shape = src.shape(sigma_key);
  if (sigma_shape != std::vector<int64_t>{d, d})
    fail(path, ": '", sigma_key, "' has shape ", shape_string(sigma_shape), ", expected (", d, ", ",
         d, ") to match '", mu_key, "'");
  const auto mu = src.f64(mu_key);
  const auto sigma = src.f64(sigma_key);
  metrics::FeatureStats s;
  s.mu = Eigen::Map<const Eigen::VectorXd>(mu.data(), d);
  // Row-major on disk; symmetric, but keep the exact layout.
  s.sigma =
      Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
          sigma.data(), d, d);
  metrics::check_stored_stats(s, cat(path, ": '", mu_key, "'"), cat(path, ": '", sigma_key, "'"));
  return s;
}

// Rows of D features become a D x D covariance: two rows of 10^6 columns (8 KB deflated)
// asked for 8 TB. Real extractors are far below the cap (Inception's pool 2048, DINOv2
// ViT-g 1536, CLIP ViT-L 768, ADM's spatial 2023).
constexpr int64_t kMaxFeatureWidth = 16384;

void check_width(const std::string& path, const std::string& key, int64_t cols) {
  if (cols > kMaxFeatureWidth)
    fail(path, ": '", key, "' has ", cols, " columns; feature widths above ", kMaxFeatureWidth,
         " are refused (their covariance alone would take ",
         static_cast<double>(cols) * static_cast<double>(cols) * 8.0 / double(1 << 30), " GiB)");
}

FeatureSet load_from(const ArraySource& src, const std::string& path, const LoadOptions& options) {
  FeatureSet set;
  set.path = path;
  int64_t n = -1;
  std::string n_key;
  auto check_rows = [&](const std::string& key, int64_t rows) {
    if (n < 0) {
      n = rows;
      n_key = key;
    } else if (rows != n) {
      fail(path, ": '", key, "' has ", rows, " rows but '", n_key, "' has ", n,
           "; per-sample arrays must have the same N");
    }
  };
  const std::vector<std::string> keys = src.keys();
  // A block wanted as statistics only: computed while streaming its rows, or not read at
  // all when the file stores its statistics (loaded below, as for any block).
  auto as_statistics = [&](const std::string& key, const std::string& block,
                           const std::vector<int64_t>& shp) {
    if (!options.statistics_only.count(block)) return false;
    set.unloaded_rows = shp[0];
    if (!src.has(stats_keys(block).first))
      set.stats[block] = stream_stats(src, path, key, block, shp[0], shp[1], options.stats);
    return true;
  };
  for (const std::string& key : keys) {
    if (reserved_key(key)) continue;
    const auto shp = src.shape(key);
    const bool inception = key == kPool || key == kSpatial || key == kLogits;
    if (shp.size() != 2) {
      if (inception) fail(path, ": '", key, "' must be 2-D [N, D], got shape ", shape_string(shp));
      continue;  // not a feature block
    }
    check_rows(key, shp[0]);
    check_width(path, key, shp[1]);
    if (!as_statistics(key, key, shp)) set.blocks[key] = FeatureMatrix{src.f32(key), shp[0], shp[1]};
  }
  // `sit-eval sample` output of an analytic model: its rows are data-space features.
  const bool has_pool = src.has(kPool) && src.shape(kPool).size() == 2;
  if (!has_pool && src.has("samples")) {
    const auto shp = src.shape("samples");
    if (shp.size() != 2)
      fail(path, ": 'samples' must be 2-D [N, D], got shape ", shape_string(shp));
    check_rows("samples", shp[0]);
    check_width(path, "samples", shp[1]);
    if (!as_statistics("samples", kPool, shp))
      set.blocks[kPool] = FeatureMatrix{src.f32("samples"), shp[0], shp[1]};
  }
  if (src.has("labels")) {
    const auto shp = src.shape("labels");
    if (shp.size() != 1) fail(path, ": 'labels' must be 1-D [N], got shape ", shape_string(shp));
    check_rows("labels", shp[0]);
    set.labels = src.i64("labels");
  }
  for (const std::string& key : keys) {
    if (key.rfind("mu", 0) != 0 || (key != "mu" && key.rfind("mu_", 0) != 0)) continue;
    const std::string block = block_of_stats_key(key);
    const auto [mu, sigma] = stats_keys(block);
    if (auto s = load_stats(src, path, mu, sigma)) set.stats[block] = std::move(*s);
  }
  for (const std::string& key : keys)  // a sigma without its mu
    if (key == "sigma" || key.rfind("sigma_", 0) == 0) {
      const std::string block = block_of_stats_key("mu" + key.substr(5));
      if (!set.stats.count(block))
        fail(path, ": has '", key, "' but not '", stats_keys(block).first,
             "'; stored statistics need both");
    }
  if (src.has("arr_0")) {
    const auto shp = src.shape("arr_0");
    set.image_count = shp.empty() ? 0 : shp[0];
    // ADM's class-conditional sample batches: arr_1 holds arr_0's labels
    if (!set.labels && src.has("arr_1")) {
      const auto lshp = src.shape("arr_1");
      if (lshp.size() == 1 && lshp[0] == set.image_count && (n < 0 || n == lshp[0]))
        set.labels = src.i64("arr_1");
    }
  }
  return set;
}

}  // namespace

std::pair<std::string, std::string> stats_keys(const std::string& block) {
  if (block == kPool) return {"mu", "sigma"};
  if (block == kSpatial) return {"mu_s", "sigma_s"};
  return {"mu_" + block, "sigma_" + block};
}

const FeatureMatrix* FeatureSet::rows(const std::string& block) const {
  const auto it = blocks.find(block);
  return it == blocks.end() ? nullptr : &it->second;
}
FeatureMatrix* FeatureSet::rows(const std::string& block) {
  const auto it = blocks.find(block);
  return it == blocks.end() ? nullptr : &it->second;
}

const metrics::FeatureStats* FeatureSet::statistics(const std::string& block) const {
  const auto it = stats.find(block);
  return it == stats.end() ? nullptr : &it->second;
}

int64_t FeatureSet::num_rows() const {
  if (!blocks.empty()) return blocks.begin()->second.rows;
  if (labels) return static_cast<int64_t>(labels->size());
  return unloaded_rows;
}

std::map<std::string, std::string> extractor_signatures(const std::string& extractor) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start < extractor.size()) {
    size_t end = extractor.find("; ", start);
    if (end == std::string::npos) end = extractor.size();
    const std::string entry = extractor.substr(start, end - start);
    start = end + 2;
    if (entry.empty()) continue;
    const std::string kind = entry.substr(0, entry.find(' '));
    std::string signature;
    const size_t open = entry.rfind('(');
    if (open != std::string::npos) {
      const std::string details = entry.substr(open + 1, entry.rfind(')') - open - 1);
      std::stringstream parts(details);
      for (std::string part; std::getline(parts, part, ',');) {
        part.erase(0, part.find_first_not_of(' '));
        if (part.rfind("sha256 ", 0) == 0 || part.rfind("resize ", 0) == 0)
          signature += (signature.empty() ? "" : ", ") + part;
      }
    }
    if (signature.find("sha256 ") == std::string::npos) signature = entry;
    out[kind] = signature;
  }
  return out;
}

void check_same_extractor(const FeatureSet& a, const FeatureSet& b) {
  const auto sa = extractor_signatures(a.provenance.extractor),
             sb = extractor_signatures(b.provenance.extractor);
  for (const auto& [kind, signature] : sa) {
    const auto it = sb.find(kind);
    if (it != sb.end() && it->second != signature)
      fail("the feature sets were made by different extractors: ", a.path, " by ",
           printable(a.provenance.extractor, 4096), ", ", b.path, " by ",
           printable(b.provenance.extractor, 4096),
           "; features of different extractors are not comparable (extract both with the same "
           "one)");
  }
}

FileKind detect_file_kind(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open file (", std::strerror(errno), ")");
  unsigned char magic[8] = {0};
  in.read(reinterpret_cast<char*>(magic), 8);
  const auto got = in.gcount();
  if (got >= 4 && magic[0] == 'P' && magic[1] == 'K' &&
      ((magic[2] == 3 && magic[3] == 4) || (magic[2] == 5 && magic[3] == 6)))
    return FileKind::kNpz;
  if (got == 8 && std::memcmp(magic, "\x89HDF\r\n\x1a\n", 8) == 0) return FileKind::kHdf5;
  if (got >= 6 && std::memcmp(magic, "\x93NUMPY", 6) == 0)
    fail(path, ": is a single .npy array; feature files must be .npz (np.savez) or HDF5");
  fail(path, ": must be an npz (zip) or HDF5 file, got ",
       got < 4 ? "a file too short to tell" : "unrecognised magic bytes");
}

namespace {

/// The set's provenance with count, creation time and program version filled in.
Provenance completed(const FeatureSet& set) {
  Provenance p = set.provenance;
  if (p.count == 0) p.count = set.num_rows();
  if (p.created.empty()) p.created = utc_now_iso8601();
  if (p.program_version.empty()) {
    const BuildInfo& b = build_info();
    p.program_version = "sit-eval " + b.version + " (git " + b.git_revision + ")";
  }
  return p;
}

}  // namespace

FeatureSet load_feature_set(const std::string& path, const LoadOptions& options) {
  if (detect_file_kind(path) == FileKind::kNpz) {
    NpzSource src(path);
    FeatureSet set = load_from(src, path, options);
    if (src.has("provenance")) {  // JSON text as uint8, written by save_feature_set
      NpyArray a = src.npz.open("provenance");
      if (a.dtype() != DType::kU1 || a.shape().size() != 1)
        fail(path, ": 'provenance' must be uint8 [bytes] of JSON text, got ", descr(a.dtype()), " ",
             shape_string(a.shape()));
      const std::vector<uint8_t> bytes = a.read_all<uint8_t>();
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(bytes.begin(), bytes.end());
      } catch (const nlohmann::json::parse_error& e) {
        fail(path, ": 'provenance' is not JSON text (byte ", e.byte, ")");
      }
      if (!j.is_object())
        fail(path, ": 'provenance' must be a JSON object, got ", j.type_name());
      const auto text = [&](const char* field) {
        if (!j.contains(field)) return std::string();
        if (!j[field].is_string())
          fail(path, ": 'provenance' field '", field, "' must be a string, got ",
               j[field].type_name());
        return j[field].get<std::string>();
      };
      set.provenance.source = text("source");
      set.provenance.extractor = text("extractor");
      set.provenance.created = text("created");
      set.provenance.program_version = text("program_version");
      // a count of 1e40 read as int64 would be undefined behaviour
      if (j.contains("count") && !j["count"].is_number_integer())
        fail(path, ": 'provenance' count must be an integer, got ", j["count"].dump());
      set.provenance.count = j.value("count", int64_t{0});
    }
    return set;
  }
  H5Source src(path);
  FeatureSet set = load_from(src, path, options);
  set.provenance = src.h5.provenance();
  return set;
}

void save_feature_set(const std::string& path, const FeatureSet& set) {
  auto row_major = [](const Eigen::MatrixXd& m) {
    std::vector<double> out(static_cast<size_t>(m.size()));
    Eigen::Map<Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
        out.data(), m.rows(), m.cols()) = m;
    return out;
  };

  if (ends_with(path, ".h5") || ends_with(path, ".hdf5")) {
    H5FeatureWriter w(path);
    for (const auto& [key, m] : set.blocks)
      w.append_rows(key, m.data.data(), m.rows, m.cols);
    if (set.labels) w.append_labels(set.labels->data(), static_cast<int64_t>(set.labels->size()));
    for (const auto& [block, s] : set.stats) {
      const auto [mu, sigma] = stats_keys(block);
      w.write_array(mu, s.mu.data(), s.mu.size(), 0);
      const auto values = row_major(s.sigma);
      w.write_array(sigma, values.data(), s.sigma.rows(), s.sigma.cols());
    }
    w.set_provenance(completed(set));
    w.close();
    return;
  }
  if (!ends_with(path, ".npz")) fail(path, ": output file name must end in .npz, .h5 or .hdf5");
  NpzWriter w(path);
  for (const auto& [key, m] : set.blocks)
    w.add(key, {m.rows, m.cols}, m.data.data());
  if (set.labels) w.add("labels", {static_cast<int64_t>(set.labels->size())}, set.labels->data());
  for (const auto& [block, s] : set.stats) {
    const auto [mu, sigma] = stats_keys(block);
    w.add(mu, {s.mu.size()}, s.mu.data());
    const auto values = row_major(s.sigma);
    w.add(sigma, {s.sigma.rows(), s.sigma.cols()}, values.data());
  }
  add_provenance(w, set);
  w.close();
}

void add_provenance(NpzWriter& w, const FeatureSet& set) {
  // Provenance as JSON text in a uint8 member (bytes(np.load(f)["provenance"]).decode()).
  const Provenance p = completed(set);
  const std::string text = nlohmann::ordered_json{{"source", p.source},
                                                  {"extractor", p.extractor},
                                                  {"created", p.created},
                                                  {"program_version", p.program_version},
                                                  {"count", p.count}}
                               .dump();
  w.add("provenance", {static_cast<int64_t>(text.size())},
        reinterpret_cast<const uint8_t*>(text.data()));
}

}  // namespace sit::io
