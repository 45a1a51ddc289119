#pragma once
/// numpy .npy arrays (header versions 1.0, 2.0, 3.0; C order; dtypes |u1 <i4 <i8 <f4
/// <f8), alone or as members of .npz files, read whole or in row batches.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "reference_stats/zip.h"

namespace sit::io {

enum class DType { kU1, kI4, kI8, kF4, kF8 };

/// numpy's descr: "|u1", "<i4", "<i8", "<f4", "<f8".
const char* descr(DType t);
int64_t item_size(DType t);

struct NpyHeader {
  DType dtype = DType::kF4;
  std::vector<int64_t> shape;
  int64_t header_bytes = 0;  ///< offset of the data in the member / file
  int64_t count() const;     ///< number of elements
  /// Elements per row: the product of shape[1:], 1 for a 1-D array.
  int64_t row_size() const;
  int64_t rows() const { return shape.empty() ? 1 : shape[0]; }
};

/// Parses the header at the start of `stream`; `where` names the file and member for
/// error messages ("ref.npz member 'mu'").
NpyHeader read_npy_header(ByteStream& stream, const std::string& where);
/// The bytes of a version 1.0 header (version 2.0 when it does not fit), padded to 64.
std::string format_npy_header(DType dtype, const std::vector<int64_t>& shape);

/// One array of an .npy file or .npz member, read in row batches. Rows are read in
/// increasing order cheaply; deflated members restart to go backwards.
class NpyArray {
 public:
  NpyArray(std::unique_ptr<ByteStream> stream, std::string where);
  NpyArray(NpyArray&&) = default;
  ~NpyArray();

  const NpyHeader& header() const { return header_; }
  const std::vector<int64_t>& shape() const { return header_.shape; }
  DType dtype() const { return header_.dtype; }
  const std::string& where() const { return where_; }

  /// Rows [start, start + count) converted to T (float, double, int64_t), row-major.
  /// Converting to a narrower type (f8 -> f4, i8 -> i4) is allowed for floats only.
  template <class T>
  void read_rows(int64_t start, int64_t count, T* out);
  /// Whole array converted to T.
  template <class T>
  std::vector<T> read_all();
  /// Raw uint8 rows; the dtype must be |u1 (images).
  void read_rows_u8(int64_t start, int64_t count, uint8_t* out);

 private:
  std::unique_ptr<ByteStream> stream_;
  std::string where_;
  NpyHeader header_;
  std::vector<unsigned char> scratch_;
};

/// A standalone .npy file.
NpyArray open_npy(const std::string& path);

/// An .npz file: a zip of "<key>.npy" members.
class NpzReader {
 public:
  explicit NpzReader(const std::string& path);
  const std::string& path() const { return zip_.path(); }
  /// Keys without the ".npy" suffix, in file order.
  std::vector<std::string> keys() const;
  bool has(const std::string& key) const;
  /// Throws naming the file, the key and the keys present when `key` is missing.
  NpyArray open(const std::string& key) const;

 private:
  ZipReader zip_;
};

/// Streams arrays into an .npz file (stored, or deflated as np.savez_compressed).
/// The file appears at `path` only when close() succeeds.
class NpzWriter {
 public:
  NpzWriter(const std::string& path, bool compress = false, bool force_zip64 = false);
  /// A whole array.
  template <class T>
  void add(const std::string& key, const std::vector<int64_t>& shape, const T* data);
  /// Streaming: begin with the full shape, append rows, end.
  void begin(const std::string& key, DType dtype, const std::vector<int64_t>& shape);
  void append_rows(const void* data, int64_t rows);
  void end();
  void close();

 private:
  ZipWriter zip_;
  std::string path_;
  std::string key_;
  NpyHeader current_;
  int64_t rows_written_ = 0;
  bool open_ = false;
};

template <class T>
DType dtype_of();

}  // namespace sit::io
