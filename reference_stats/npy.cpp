#include "reference_stats/npy.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <limits>

#include "common/error.h"
#include "common/format.h"

namespace sit::io {
namespace {

constexpr const char* kDescr[] = {"|u1", "<i4", "<i8", "<f4", "<f8"};
constexpr int64_t kItemSize[] = {1, 4, 8, 4, 8};

/// A plain file as a ByteStream.
class FileStream : public ByteStream {
 public:
  explicit FileStream(const std::string& path) : path_(path) {
    file_ = std::fopen(path.c_str(), "rb");
    if (!file_) fail(path, ": cannot open file (", std::strerror(errno), ")");
    fseeko(file_, 0, SEEK_END);
    size_ = static_cast<uint64_t>(ftello(file_));
  }
  ~FileStream() override { std::fclose(file_); }
  void read(void* dst, uint64_t n) override {
    if (pos_ + n > size_)
      fail(path_, ": truncated: need ", pos_ + n, " bytes, the file has ", size_);
    fseeko(file_, static_cast<off_t>(pos_), SEEK_SET);
    if (std::fread(dst, 1, n, file_) != n) fail(path_, ": read error at offset ", pos_);
    pos_ += n;
  }
  void seek(uint64_t pos) override { pos_ = pos; }
  uint64_t position() const override { return pos_; }
  uint64_t size() const override { return size_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  uint64_t size_ = 0;
  uint64_t pos_ = 0;
};

// --- a tiny parser for the header's Python dict literal ---------------------------------

struct HeaderParser {
  const std::string& s;
  const std::string& where;
  size_t i = 0;

  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n'))
      ++i;
  }
  [[noreturn]] void bad(const std::string& what) {
    fail(where, ": malformed .npy header (", what, " at position ", i, "): ", printable(s));
  }
  void expect(char c) {
    ws();
    if (i >= s.size() || s[i] != c) bad(std::string("expected '") + c + "'");
    ++i;
  }
  std::string quoted() {
    ws();
    if (i >= s.size() || (s[i] != '\'' && s[i] != '"')) bad("expected a string");
    const char q = s[i++];
    const size_t start = i;
    while (i < s.size() && s[i] != q)
      ++i;
    if (i >= s.size()) bad("unterminated string");
    return s.substr(start, i++ - start);
  }
  std::string word() {
    ws();
    const size_t start = i;
    while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_'))
      ++i;
    return s.substr(start, i - start);
  }
  std::vector<int64_t> tuple() {
    expect('(');
    std::vector<int64_t> out;
    for (;;) {
      ws();
      if (i < s.size() && s[i] == ')') {
        ++i;
        return out;
      }
      const std::string w = word();
      if (w.empty() || !std::all_of(w.begin(), w.end(), ::isdigit)) bad("expected a dimension");
      if (w.size() > 18) bad("dimension " + w + " is out of range");  // < 10^18: no overflow
      out.push_back(std::stoll(w));
      ws();
      if (i < s.size() && s[i] == ',') ++i;
    }
  }
};

}  // namespace

const char* descr(DType t) {
  return kDescr[static_cast<int>(t)];
}
int64_t item_size(DType t) {
  return kItemSize[static_cast<int>(t)];
}

template <>
DType dtype_of<uint8_t>() {
  return DType::kU1;
}
template <>
DType dtype_of<int32_t>() {
  return DType::kI4;
}
template <>
DType dtype_of<int64_t>() {
  return DType::kI8;
}
template <>
DType dtype_of<float>() {
  return DType::kF4;
}
template <>
DType dtype_of<double>() {
  return DType::kF8;
}

int64_t NpyHeader::count() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

int64_t NpyHeader::row_size() const {
  int64_t n = 1;
  for (size_t k = 1; k < shape.size(); ++k)
    n *= shape[k];
  return n;
}

NpyHeader read_npy_header(ByteStream& stream, const std::string& where) {
  unsigned char pre[10];
  if (stream.size() < 10) fail(where, ": not a .npy array (", stream.size(), " bytes)");
  stream.seek(0);
  stream.read(pre, 10);
  if (std::memcmp(pre, "\x93NUMPY", 6) != 0)
    fail(where, ": not a .npy array (wrong magic; expected \\x93NUMPY)");
  const int major = pre[6];
  uint64_t header_len = 0, prefix = 0;
  if (major == 1) {
    header_len = pre[8] | (pre[9] << 8);
    prefix = 10;
  } else if (major == 2 || major == 3) {
    unsigned char more[2];
    stream.read(more, 2);
    header_len = pre[8] | (pre[9] << 8) | (more[0] << 16) | (static_cast<uint64_t>(more[1]) << 24);
    prefix = 12;
  } else {
    fail(where, ": .npy format version must be 1.0, 2.0 or 3.0, got ", major, ".", int(pre[7]));
  }
  if (prefix + header_len > stream.size())
    fail(where, ": truncated .npy header (", header_len, " bytes announced)");
  std::string text(header_len, '\0');
  stream.read(text.data(), header_len);

  HeaderParser p{text, where};
  NpyHeader h;
  std::string descr_value;
  bool have_descr = false, have_shape = false, fortran = false;
  p.expect('{');
  for (;;) {
    p.ws();
    if (p.i < text.size() && text[p.i] == '}') break;
    const std::string key = p.quoted();
    p.expect(':');
    if (key == "descr") {
      descr_value = p.quoted();
      have_descr = true;
    } else if (key == "fortran_order") {
      const std::string w = p.word();
      if (w != "True" && w != "False") p.bad("fortran_order must be True or False");
      fortran = (w == "True");
    } else if (key == "shape") {
      h.shape = p.tuple();
      have_shape = true;
    } else {
      p.bad("unknown key '" + key + "'");
    }
    p.ws();
    if (p.i < text.size() && text[p.i] == ',') ++p.i;
  }
  if (!have_descr || !have_shape)
    fail(where, ": .npy header lacks 'descr' or 'shape': ", printable(text));
  if (fortran && h.shape.size() > 1)
    fail(where, ": Fortran-ordered arrays are not supported (save with np.ascontiguousarray)");
  std::string d = descr_value;
  if (d == "<u1" || d == "u1") d = "|u1";
  bool found = false;
  for (int k = 0; k < 5; ++k)
    if (d == kDescr[k]) {
      h.dtype = static_cast<DType>(k);
      found = true;
    }
  if (!found)
    fail(where, ": dtype must be one of |u1, <i4, <i8, <f4, <f8 (little-endian), got '",
         printable(descr_value), "'");
  h.header_bytes = static_cast<int64_t>(prefix + header_len);
  // The element count in checked arithmetic: a header like (2^62, 8) must be an error, not
  // a product that wraps around to a small number and passes the size check below. Zero
  // dimensions are skipped, so that the row size of an empty (0, 2^40, 2^40) is checked
  // too (a fuzzing finding: it overflowed in row_size()).
  {
    const uint64_t cap = (uint64_t{1} << 62) / item_size(h.dtype);
    uint64_t n = 1;
    for (int64_t dim : h.shape) {
      if (dim < 0) fail(where, ": negative dimension in shape ", shape_string(h.shape));
      if (dim == 0) continue;
      if (n > cap / static_cast<uint64_t>(dim))
        fail(where, ": shape ", shape_string(h.shape), " of ", d,
             " has more elements than any file can hold");
      n *= static_cast<uint64_t>(dim);
    }
  }
  const uint64_t need =
      static_cast<uint64_t>(h.header_bytes) + static_cast<uint64_t>(h.count()) * item_size(h.dtype);
  if (need > stream.size())
    fail(where, ": truncated array: shape ", shape_string(h.shape), " of ", d, " needs ", need,
         " bytes, found ", stream.size());
  return h;
}

std::string format_npy_header(DType dtype, const std::vector<int64_t>& shape) {
  std::string dict = std::string("{'descr': '") + descr(dtype) +
                     "', 'fortran_order': False, 'shape': " + shape_string(shape) + ", }";
  // Version 1.0 when the header length fits 16 bits; total length a multiple of 64.
  const bool v1 = dict.size() + 1 + 10 < 65536;
  const size_t prefix = v1 ? 10 : 12;
  const size_t total = ((prefix + dict.size() + 1 + 63) / 64) * 64;
  dict.append(total - prefix - dict.size() - 1, ' ');
  dict.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back(v1 ? 1 : 2);
  out.push_back(0);
  const uint64_t len = dict.size();
  out.push_back(static_cast<char>(len & 0xff));
  out.push_back(static_cast<char>((len >> 8) & 0xff));
  if (!v1) {
    out.push_back(static_cast<char>((len >> 16) & 0xff));
    out.push_back(static_cast<char>((len >> 24) & 0xff));
  }
  return out + dict;
}

// --- NpyArray --------------------------------------------------------------------------

NpyArray::NpyArray(std::unique_ptr<ByteStream> stream, std::string where)
    : stream_(std::move(stream)), where_(std::move(where)) {
  header_ = read_npy_header(*stream_, where_);
}

NpyArray::~NpyArray() = default;

namespace {
template <class Src, class T>
void convert(const unsigned char* raw, int64_t n, T* out) {
  const Src* src = reinterpret_cast<const Src*>(raw);
  for (int64_t i = 0; i < n; ++i)
    out[i] = static_cast<T>(src[i]);
}
}  // namespace

template <class T>
void NpyArray::read_rows(int64_t start, int64_t count, T* out) {
  const int64_t rows = header_.rows(), row_size = header_.row_size();
  if (start < 0 || count < 0 || start + count > rows)
    fail(where_, ": rows [", start, ", ", start + count, ") out of range for shape ",
         shape_string(header_.shape));
  const DType want = dtype_of<T>();
  const DType have = header_.dtype;
  const bool is_float = std::is_floating_point<T>::value;
  const bool ok = have == want || (is_float && (have == DType::kF4 || have == DType::kF8)) ||
                  (!is_float && want == DType::kI8 && (have == DType::kI4 || have == DType::kU1)) ||
                  (is_float && have == DType::kU1);
  if (!ok) fail(where_, ": dtype must be convertible to ", descr(want), ", got ", descr(have));
  const int64_t isz = item_size(have);
  const uint64_t offset =
      static_cast<uint64_t>(header_.header_bytes) + static_cast<uint64_t>(start) * row_size * isz;
  if (stream_->position() != offset) stream_->seek(offset);
  const int64_t n = count * row_size;
  if (have == want) {
    stream_->read(out, static_cast<uint64_t>(n * isz));
    return;
  }
  // Convert in pieces so the scratch buffer stays small.
  const int64_t piece = 1 << 20;
  scratch_.resize(static_cast<size_t>(std::min(n, piece) * isz));
  for (int64_t done = 0; done < n; done += piece) {
    const int64_t m = std::min(piece, n - done);
    stream_->read(scratch_.data(), static_cast<uint64_t>(m * isz));
    switch (have) {
      case DType::kU1:
        convert<uint8_t>(scratch_.data(), m, out + done);
        break;
      case DType::kI4:
        convert<int32_t>(scratch_.data(), m, out + done);
        break;
      case DType::kI8:
        convert<int64_t>(scratch_.data(), m, out + done);
        break;
      case DType::kF4:
        convert<float>(scratch_.data(), m, out + done);
        break;
      case DType::kF8:
        convert<double>(scratch_.data(), m, out + done);
        break;
    }
  }
}

template <class T>
std::vector<T> NpyArray::read_all() {
  std::vector<T> out(static_cast<size_t>(header_.count()));
  read_rows(0, header_.rows(), out.data());
  return out;
}

void NpyArray::read_rows_u8(int64_t start, int64_t count, uint8_t* out) {
  if (header_.dtype != DType::kU1)
    fail(where_, ": dtype must be |u1 (uint8 images), got ", descr(header_.dtype));
  read_rows(start, count, out);
}

template void NpyArray::read_rows<float>(int64_t, int64_t, float*);
template void NpyArray::read_rows<double>(int64_t, int64_t, double*);
template void NpyArray::read_rows<int64_t>(int64_t, int64_t, int64_t*);
template void NpyArray::read_rows<uint8_t>(int64_t, int64_t, uint8_t*);
template std::vector<float> NpyArray::read_all<float>();
template std::vector<double> NpyArray::read_all<double>();
template std::vector<int64_t> NpyArray::read_all<int64_t>();
template std::vector<uint8_t> NpyArray::read_all<uint8_t>();

NpyArray open_npy(const std::string& path) {
  return NpyArray(std::make_unique<FileStream>(path), path);
}

// --- NpzReader -------------------------------------------------------------------------

namespace {
bool is_npy_member(const std::string& name) {
  return name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0;
}
}  // namespace

NpzReader::NpzReader(const std::string& path) : zip_(path) {
  // a zip of something else (a TorchScript module, a torch.save checkpoint) is not an npz
  const auto& entries = zip_.entries();
  if (!entries.empty() &&
      std::none_of(entries.begin(), entries.end(),
                   [](const ZipEntry& e) { return is_npy_member(e.name); }))
    fail(path, ": not an npz file: none of its ", entries.size(),
         " zip members is a .npy array (the first is '", entries.front().name,
         "'; a TorchScript module or a torch.save checkpoint is a zip archive too)");
}

std::vector<std::string> NpzReader::keys() const {
  std::vector<std::string> out;  // the arrays; other members (none in numpy's files) skipped
  for (const auto& e : zip_.entries())
    if (is_npy_member(e.name)) out.push_back(e.name.substr(0, e.name.size() - 4));
  return out;
}

bool NpzReader::has(const std::string& key) const {
  return zip_.find(key + ".npy") != nullptr;
}

NpyArray NpzReader::open(const std::string& key) const {
  const ZipEntry* e = zip_.find(key + ".npy");
  if (!e) {
    std::string present;
    const auto all = keys();
    for (size_t i = 0; i < all.size() && i < 20; ++i)
      present += (present.empty() ? "" : ", ") + all[i];
    if (all.size() > 20) present += ", ... (" + std::to_string(all.size()) + " in all)";
    fail(zip_.path(), ": required key '", key,
         "' is missing (keys present: ", present.empty() ? "none" : present, ")");
  }
  return NpyArray(zip_.open(*e), zip_.path() + " member '" + key + "'");
}

// --- NpzWriter -------------------------------------------------------------------------

NpzWriter::NpzWriter(const std::string& path, bool compress, bool force_zip64)
    : zip_(path, compress, force_zip64), path_(path) {}

void NpzWriter::begin(const std::string& key, DType dtype, const std::vector<int64_t>& shape) {
  if (open_) fail(path_, ": array '", key_, "' is still open");
  for (int64_t d : shape)
    if (d < 0)
      fail(path_, ": shape of '", key, "' must be non-negative, got ", shape_string(shape));
  current_ = NpyHeader{};
  current_.dtype = dtype;
  current_.shape = shape;
  const std::string header = format_npy_header(dtype, shape);
  zip_.begin_member(key + ".npy",
                    header.size() + static_cast<uint64_t>(current_.count()) * item_size(dtype));
  zip_.write(header.data(), header.size());
  key_ = key;
  rows_written_ = 0;
  open_ = true;
}

void NpzWriter::append_rows(const void* data, int64_t rows) {
  if (!open_) fail(path_, ": append_rows without begin()");
  if (rows_written_ + rows > current_.rows())
    fail(path_, ": array '", key_, "' gets ", rows_written_ + rows, " rows, its shape ",
         shape_string(current_.shape), " has ", current_.rows());
  zip_.write(data, static_cast<uint64_t>(rows * current_.row_size() * item_size(current_.dtype)));
  rows_written_ += rows;
}

void NpzWriter::end() {
  if (!open_) fail(path_, ": end() without begin()");
  const int64_t expected = current_.shape.empty() ? 1 : current_.rows();
  if (rows_written_ != expected)
    fail(path_, ": array '", key_, "' got ", rows_written_, " rows, its shape ",
         shape_string(current_.shape), " needs ", expected);
  zip_.end_member();
  open_ = false;
}

template <class T>
void NpzWriter::add(const std::string& key, const std::vector<int64_t>& shape, const T* data) {
  begin(key, dtype_of<T>(), shape);
  append_rows(data, shape.empty() ? 1 : shape[0]);
  end();
}

template void NpzWriter::add<uint8_t>(const std::string&, const std::vector<int64_t>&,
                                      const uint8_t*);
template void NpzWriter::add<int32_t>(const std::string&, const std::vector<int64_t>&,
                                      const int32_t*);
template void NpzWriter::add<int64_t>(const std::string&, const std::vector<int64_t>&,
                                      const int64_t*);
template void NpzWriter::add<float>(const std::string&, const std::vector<int64_t>&, const float*);
template void NpzWriter::add<double>(const std::string&, const std::vector<int64_t>&,
                                     const double*);

void NpzWriter::close() {
  if (open_) fail(path_, ": array '", key_, "' is still open at close()");
  zip_.close();
}

}  // namespace sit::io
