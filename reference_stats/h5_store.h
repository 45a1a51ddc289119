#pragma once
/// The project's HDF5 feature store: one file per feature set, with row datasets
/// ("pool" [N, D], "spatial" [N, Ds], "logits" [N, C] float32; "labels" [N] int64), stored
/// statistics ("mu", "sigma", "mu_s", "sigma_s" float64) and provenance attributes on the
/// root group. Row datasets are chunked and extendible so they can be written in batches.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sit::io {

struct Provenance {
  std::string source;           ///< what the features were computed from
  std::string extractor;        ///< feature extractor identity (e.g. file checksum)
  std::string created;          ///< ISO 8601 UTC
  std::string program_version;  ///< "sit-eval 0.1.0 (git abcdef)"
  int64_t count = 0;            ///< number of feature rows
};

/// Current time as "YYYY-MM-DDTHH:MM:SSZ".
std::string utc_now_iso8601();

class H5FeatureWriter {
 public:
  /// Writes to a temporary file; close() renames it over `path`.
  explicit H5FeatureWriter(const std::string& path);
  ~H5FeatureWriter();
  H5FeatureWriter(const H5FeatureWriter&) = delete;
  H5FeatureWriter& operator=(const H5FeatureWriter&) = delete;

  /// Appends rows [rows, cols] to dataset `name`, created on first use.
  void append_rows(const std::string& name, const float* data, int64_t rows, int64_t cols);
  void append_labels(const int64_t* data, int64_t n);
  /// A fixed float64 array of shape (rows) when cols == 0, else (rows, cols).
  void write_array(const std::string& name, const double* data, int64_t rows, int64_t cols);
  void set_provenance(const Provenance& p);
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class H5FeatureReader {
 public:
  explicit H5FeatureReader(const std::string& path);
  ~H5FeatureReader();
  H5FeatureReader(const H5FeatureReader&) = delete;
  H5FeatureReader& operator=(const H5FeatureReader&) = delete;

  bool has(const std::string& name) const;
  /// Names of the datasets in the root group, in name order.
  std::vector<std::string> keys() const;
  std::vector<int64_t> shape(const std::string& name) const;
  /// Rows [start, start + count) of a 1-D or 2-D dataset, converted by HDF5.
  void read_rows(const std::string& name, int64_t start, int64_t count, float* out) const;
  std::vector<float> read_f32(const std::string& name) const;
  std::vector<double> read_f64(const std::string& name) const;
  std::vector<int64_t> read_i64(const std::string& name) const;
  Provenance provenance() const;

 private:
  std::string path_;
  int64_t file_ = -1;
};

}  // namespace sit::io
