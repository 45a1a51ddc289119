#include "reference_stats/h5_store.h"

#include <hdf5.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/format.h"

namespace sit::io {
namespace {

// HDF5 prints its own error stack by default; we report errors ourselves.
void silence_hdf5() {
  static const bool once = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)once;
}

void check(herr_t rc, const std::string& path, const std::string& what) {
  if (rc < 0) fail_output(path, ": HDF5 error while ", what);
}

hid_t check_id(hid_t id, const std::string& path, const std::string& what) {
  if (id < 0) fail_output(path, ": HDF5 error while ", what);
  return id;
}

void write_string_attr(hid_t loc, const std::string& path, const char* name,
                       const std::string& value) {
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, value.empty() ? 1 : value.size());
  H5Tset_strpad(type, H5T_STR_NULLPAD);
  const hid_t space = H5Screate(H5S_SCALAR);
  if (H5Aexists(loc, name) > 0) H5Adelete(loc, name);
  const hid_t attr = check_id(H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT), path,
                              cat("creating attribute '", name, "'"));
  check(H5Awrite(attr, type, value.empty() ? "" : value.c_str()), path,
        cat("writing attribute '", name, "'"));
  H5Aclose(attr);
  H5Sclose(space);
  H5Tclose(type);
}

// Provenance strings are short (a path, an extractor's signature); a damaged header may
// declare any length.
constexpr size_t kMaxAttributeBytes = size_t{1} << 20;

// Opens attribute NAME, which must hold one value (H5Aread writes every element of its
// dataspace into the buffer it is given); -1 when absent.
hid_t open_scalar_attr(hid_t file, const std::string& path, const char* name) {
  const htri_t exists = H5Aexists(file, name);
  if (exists < 0) fail(path, ": cannot read attribute '", name, "' (corrupt file?)");
  if (exists == 0) return -1;
  const hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
  if (attr < 0) fail(path, ": cannot open attribute '", name, "' (corrupt file?)");
  const hid_t space = H5Aget_space(attr);
  const hssize_t n = space < 0 ? -1 : H5Sget_simple_extent_npoints(space);
  if (space >= 0) H5Sclose(space);
  if (n != 1) {
    H5Aclose(attr);
    fail(path, ": attribute '", name, "' must hold one value, its dataspace holds ", n,
         ": a damaged file, or not a feature file");
  }
  return attr;
}

// A provenance string: fixed-length (as sit-eval writes it) or variable-length (as h5py
// writes a str). Anything else, or a string that cannot be read, is an error rather than an
// absent attribute: a blank 'extractor' would turn off the check that both sides of a metric
// come from the same network.
std::string read_string_attr(hid_t file, const std::string& path, const char* name) {
  const hid_t attr = open_scalar_attr(file, path, name);
  if (attr < 0) return "";
  const hid_t ftype = H5Aget_type(attr);
  const H5T_class_t cls = ftype < 0 ? H5T_NO_CLASS : H5Tget_class(ftype);
  const htri_t variable = cls == H5T_STRING ? H5Tis_variable_str(ftype) : 0;
  const size_t n = ftype < 0 ? 0 : H5Tget_size(ftype);
  if (ftype >= 0) H5Tclose(ftype);
  const auto refuse = [&](const std::string& why) {
    H5Aclose(attr);
    fail(path, ": attribute '", name, "' ", why, ": a damaged file, or not a feature file");
  };
  if (cls != H5T_STRING || variable < 0)
    refuse(cat("must be a string, got HDF5 type class ", static_cast<int>(cls)));
  std::string out;
  const hid_t mtype = H5Tcopy(H5T_C_S1);
  herr_t rc;
  if (variable > 0) {
    H5Tset_size(mtype, H5T_VARIABLE);
    char* text = nullptr;
    rc = H5Aread(attr, mtype, &text);
    if (rc >= 0 && text) {
      out = std::string(text, ::strnlen(text, kMaxAttributeBytes));
      H5free_memory(text);
    }
  } else {
    hsize_t file_bytes = 0;
    H5Fget_filesize(file, &file_bytes);
    if (n > kMaxAttributeBytes || n > file_bytes) {
      H5Tclose(mtype);
      refuse(cat("declares a string of ", n, " bytes (the file has ", file_bytes,
                 ", provenance strings at most ", kMaxAttributeBytes, ")"));
    }
    std::string buf(n, '\0');
    H5Tset_size(mtype, n);
    H5Tset_strpad(mtype, H5T_STR_NULLPAD);
    rc = H5Aread(attr, mtype, buf.data());
    if (rc >= 0) out = buf.substr(0, buf.find('\0'));
  }
  H5Tclose(mtype);
  if (rc < 0) refuse("cannot be read");
  H5Aclose(attr);
  return out;
}

}  // namespace

std::string utc_now_iso8601() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

struct H5FeatureWriter::Impl {
  AtomicFile target;
  hid_t file = -1;
  explicit Impl(const std::string& path) : target(path) {}
};

H5FeatureWriter::H5FeatureWriter(const std::string& path) : impl_(std::make_unique<Impl>(path)) {
  silence_hdf5();
  impl_->file = check_id(
      H5Fcreate(impl_->target.temp_path().c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), path,
      "creating the file");
}

H5FeatureWriter::~H5FeatureWriter() {
  if (impl_->file >= 0) H5Fclose(impl_->file);
}

void H5FeatureWriter::append_rows(const std::string& name, const float* data, int64_t rows,
                                  int64_t cols) {
  const std::string& path = impl_->target.path();
  const hid_t f = impl_->file;
  const int rank = cols > 0 ? 2 : 1;
  const hid_t mem_type = H5T_NATIVE_FLOAT;
  hid_t dset;
  hsize_t old_rows = 0;
  if (H5Lexists(f, name.c_str(), H5P_DEFAULT) > 0) {
    dset = H5Dopen2(f, name.c_str(), H5P_DEFAULT);
    const hid_t space = H5Dget_space(dset);
    hsize_t dims[2] = {0, 0};
    H5Sget_simple_extent_dims(space, dims, nullptr);
    H5Sclose(space);
    if (rank == 2 && static_cast<int64_t>(dims[1]) != cols)
      fail(path, ": dataset '", name, "' has ", dims[1], " columns, appending ", cols);
    old_rows = dims[0];
  } else {
    hsize_t dims[2] = {0, static_cast<hsize_t>(cols)};
    hsize_t maxdims[2] = {H5S_UNLIMITED, static_cast<hsize_t>(cols)};
    const hid_t space = H5Screate_simple(rank, dims, maxdims);
    const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    // ~1 MiB chunks of whole rows.
    hsize_t chunk[2] = {
        static_cast<hsize_t>(std::max<int64_t>(1, (1 << 18) / std::max<int64_t>(1, cols))),
        static_cast<hsize_t>(std::max<int64_t>(1, cols))};
    H5Pset_chunk(dcpl, rank, chunk);
    H5Pset_obj_track_times(dcpl, 0);  // identical content gives identical files
    dset =
        check_id(H5Dcreate2(f, name.c_str(), H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                 path, cat("creating dataset '", name, "'"));
    H5Pclose(dcpl);
    H5Sclose(space);
  }
  hsize_t new_dims[2] = {old_rows + static_cast<hsize_t>(rows), static_cast<hsize_t>(cols)};
  check(H5Dset_extent(dset, new_dims), path, cat("extending '", name, "'"));
  const hid_t fspace = H5Dget_space(dset);
  hsize_t start[2] = {old_rows, 0},
          count[2] = {static_cast<hsize_t>(rows), static_cast<hsize_t>(cols)};
  H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, nullptr, count, nullptr);
  const hid_t mspace = H5Screate_simple(rank, count, nullptr);
  check(H5Dwrite(dset, mem_type, mspace, fspace, H5P_DEFAULT, data), path,
        cat("writing rows of '", name, "'"));
  H5Sclose(mspace);
  H5Sclose(fspace);
  H5Dclose(dset);
}

void H5FeatureWriter::append_labels(const int64_t* data, int64_t n) {
  const std::string& path = impl_->target.path();
  const hid_t f = impl_->file;
  hid_t dset;
  hsize_t old = 0;
  if (H5Lexists(f, "labels", H5P_DEFAULT) > 0) {
    dset = H5Dopen2(f, "labels", H5P_DEFAULT);
    const hid_t space = H5Dget_space(dset);
    H5Sget_simple_extent_dims(space, &old, nullptr);
    H5Sclose(space);
  } else {
    hsize_t dims = 0, maxdims = H5S_UNLIMITED, chunk = 65536;
    const hid_t space = H5Screate_simple(1, &dims, &maxdims);
    const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &chunk);
    H5Pset_obj_track_times(dcpl, 0);
    dset = check_id(H5Dcreate2(f, "labels", H5T_STD_I64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                    path, "creating dataset 'labels'");
    H5Pclose(dcpl);
    H5Sclose(space);
  }
  hsize_t total = old + static_cast<hsize_t>(n), count = static_cast<hsize_t>(n);
  check(H5Dset_extent(dset, &total), path, "extending 'labels'");
  const hid_t fspace = H5Dget_space(dset);
  H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &old, nullptr, &count, nullptr);
  const hid_t mspace = H5Screate_simple(1, &count, nullptr);
  check(H5Dwrite(dset, H5T_NATIVE_INT64, mspace, fspace, H5P_DEFAULT, data), path,
        "writing 'labels'");
  H5Sclose(mspace);
  H5Sclose(fspace);
  H5Dclose(dset);
}

void H5FeatureWriter::write_array(const std::string& name, const double* data, int64_t rows,
                                  int64_t cols) {
  const std::string& path = impl_->target.path();
  const int rank = cols > 0 ? 2 : 1;
  hsize_t dims[2] = {static_cast<hsize_t>(rows), static_cast<hsize_t>(cols)};
  const hid_t space = H5Screate_simple(rank, dims, nullptr);
  const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_obj_track_times(dcpl, 0);
  const hid_t dset = check_id(
      H5Dcreate2(impl_->file, name.c_str(), H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
      path, cat("creating dataset '", name, "'"));
  check(H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path,
        cat("writing '", name, "'"));
  H5Dclose(dset);
  H5Pclose(dcpl);
  H5Sclose(space);
}

void H5FeatureWriter::set_provenance(const Provenance& p) {
  const std::string& path = impl_->target.path();
  write_string_attr(impl_->file, path, "source", p.source);
  write_string_attr(impl_->file, path, "extractor", p.extractor);
  write_string_attr(impl_->file, path, "created", p.created);
  write_string_attr(impl_->file, path, "program_version", p.program_version);
  const hid_t space = H5Screate(H5S_SCALAR);
  if (H5Aexists(impl_->file, "count") > 0) H5Adelete(impl_->file, "count");
  const hid_t attr =
      H5Acreate2(impl_->file, "count", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
  check(H5Awrite(attr, H5T_NATIVE_INT64, &p.count), path, "writing attribute 'count'");
  H5Aclose(attr);
  H5Sclose(space);
}

void H5FeatureWriter::close() {
  if (impl_->file >= 0) {
    const herr_t rc = H5Fclose(impl_->file);
    impl_->file = -1;
    check(rc, impl_->target.path(), "closing the file");
  }
  impl_->target.commit();
}

// --- reader ----------------------------------------------------------------------------

H5FeatureReader::H5FeatureReader(const std::string& path) : path_(path) {
  silence_hdf5();
  if (H5Fis_hdf5(path.c_str()) <= 0) fail(path, ": not an HDF5 file (or unreadable)");
  file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file_ < 0) fail(path, ": cannot open HDF5 file (corrupt or truncated?)");
}

H5FeatureReader::~H5FeatureReader() {
  if (file_ >= 0) H5Fclose(file_);
}

bool H5FeatureReader::has(const std::string& name) const {
  return H5Lexists(file_, name.c_str(), H5P_DEFAULT) > 0;
}

std::vector<std::string> H5FeatureReader::keys() const {
  H5G_info_t info;
  if (H5Gget_info(file_, &info) < 0) fail(path_, ": cannot list the datasets (corrupt file?)");
  std::vector<std::string> out;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t len = H5Lget_name_by_idx(file_, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0,
                                           H5P_DEFAULT);
    if (len < 0) fail(path_, ": cannot list the datasets (corrupt file?)");
    std::string name(static_cast<size_t>(len) + 1, '\0');
    H5Lget_name_by_idx(file_, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(),
                       H5P_DEFAULT);
    name.resize(static_cast<size_t>(len));
    out.push_back(name);
  }
  return out;
}

std::vector<int64_t> H5FeatureReader::shape(const std::string& name) const {
  if (!has(name)) fail(path_, ": required dataset '", name, "' is missing");
  const hid_t dset = H5Dopen2(file_, name.c_str(), H5P_DEFAULT);
  if (dset < 0) fail(path_, ": cannot open dataset '", name, "' (corrupt file?)");
  const hid_t space = H5Dget_space(dset);
  const int rank = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
  if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  const hid_t type = H5Dget_type(dset);
  const size_t element_bytes = type < 0 ? 0 : H5Tget_size(type);
  // a damaged chunk index can claim more than the file has (datasets in external files are
  // not feature files)
  hsize_t file_bytes = 0;
  H5Fget_filesize(file_, &file_bytes);
  const hsize_t stored = std::min(H5Dget_storage_size(dset), file_bytes);
  if (type >= 0) H5Tclose(type);
  if (space >= 0) H5Sclose(space);
  H5Dclose(dset);
  if (rank < 0 || element_bytes == 0)
    fail(path_, ": cannot read the shape and type of dataset '", name, "' (corrupt file?)");
  const std::vector<int64_t> shape(dims.begin(), dims.end());
  // The declared size against the bytes the file holds for the dataset, before anything is
  // allocated or read: a damaged header can declare 2^60 rows. Deflate compresses by at
  // most 1032:1; compact and tiny datasets get 64 KiB of slack.
  double declared = static_cast<double>(element_bytes);
  for (hsize_t d : dims) declared *= static_cast<double>(d);
  if (declared > 1032.0 * static_cast<double>(stored) + 65536.0 ||
      std::any_of(dims.begin(), dims.end(), [](hsize_t d) { return d > (hsize_t{1} << 62); }))
    fail(path_, ": dataset '", name, "' declares shape ", shape_string(shape), " (",
         declared, " bytes) but the file holds ", stored,
         " bytes of it: a damaged file, or not a feature file");
  return shape;
}

namespace {
template <class T>
std::vector<T> read_whole(hid_t file, const std::string& path, const std::string& name,
                          hid_t mem_type, const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  std::vector<T> out(static_cast<size_t>(n));
  const hid_t dset = H5Dopen2(file, name.c_str(), H5P_DEFAULT);
  const hid_t ftype = H5Dget_type(dset);
  const H5T_class_t cls = H5Tget_class(ftype);
  H5Tclose(ftype);
  const bool want_float = std::is_floating_point<T>::value;
  if ((want_float && cls != H5T_FLOAT && cls != H5T_INTEGER) ||
      (!want_float && cls != H5T_INTEGER)) {
    H5Dclose(dset);
    fail(path, ": dataset '", name, "' must hold ", want_float ? "numbers" : "integers",
         ", got HDF5 type class ", static_cast<int>(cls));
  }
  const herr_t rc = H5Dread(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data());
  H5Dclose(dset);
  if (rc < 0) fail(path, ": cannot read dataset '", name, "' (corrupt file?)");
  return out;
}
}  // namespace

void H5FeatureReader::read_rows(const std::string& name, int64_t start, int64_t count,
                                float* out) const {
  const std::vector<int64_t> shp = shape(name);
  if (shp.empty() || start < 0 || count < 0 || start + count > shp[0])
    fail(path_, ": rows [", start, ", ", start + count, ") out of range for '", name, "' of shape ",
         shape_string(shp));
  const hid_t dset = H5Dopen2(file_, name.c_str(), H5P_DEFAULT);
  const hid_t fspace = H5Dget_space(dset);
  hsize_t st[2] = {static_cast<hsize_t>(start), 0};
  hsize_t cnt[2] = {static_cast<hsize_t>(count), shp.size() > 1 ? static_cast<hsize_t>(shp[1]) : 1};
  const int rank = static_cast<int>(shp.size());
  H5Sselect_hyperslab(fspace, H5S_SELECT_SET, st, nullptr, cnt, nullptr);
  const hid_t mspace = H5Screate_simple(rank, cnt, nullptr);
  const herr_t rc = H5Dread(dset, H5T_NATIVE_FLOAT, mspace, fspace, H5P_DEFAULT, out);
  H5Sclose(mspace);
  H5Sclose(fspace);
  H5Dclose(dset);
  if (rc < 0) fail(path_, ": cannot read rows of '", name, "' (corrupt file?)");
}

std::vector<float> H5FeatureReader::read_f32(const std::string& name) const {
  return read_whole<float>(file_, path_, name, H5T_NATIVE_FLOAT, shape(name));
}
std::vector<double> H5FeatureReader::read_f64(const std::string& name) const {
  return read_whole<double>(file_, path_, name, H5T_NATIVE_DOUBLE, shape(name));
}
std::vector<int64_t> H5FeatureReader::read_i64(const std::string& name) const {
  return read_whole<int64_t>(file_, path_, name, H5T_NATIVE_INT64, shape(name));
}

Provenance H5FeatureReader::provenance() const {
  Provenance p;
  p.source = read_string_attr(file_, path_, "source");
  p.extractor = read_string_attr(file_, path_, "extractor");
  p.created = read_string_attr(file_, path_, "created");
  p.program_version = read_string_attr(file_, path_, "program_version");
  const hid_t count = open_scalar_attr(file_, path_, "count");
  if (count >= 0) {
    const hid_t type = H5Aget_type(count);
    const bool integer = type >= 0 && H5Tget_class(type) == H5T_INTEGER;
    if (type >= 0) H5Tclose(type);
    const herr_t rc = integer ? H5Aread(count, H5T_NATIVE_INT64, &p.count) : -1;
    H5Aclose(count);
    if (rc < 0) fail(path_, ": attribute 'count' is not an integer (corrupt file?)");
  }
  return p;
}

}  // namespace sit::io
