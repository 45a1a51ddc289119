#include "reference_stats/zip.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/format.h"

#ifdef _OPENMP  // the fuzzing build compiles this file without OpenMP: one part
#include <omp.h>
#endif

namespace sit::io {
namespace {

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kZip64EocdSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint32_t k32Max = 0xffffffffu;

uint16_t le16(const unsigned char* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
uint32_t le32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t le64(const unsigned char* p) {
  return static_cast<uint64_t>(le32(p)) | (static_cast<uint64_t>(le32(p + 4)) << 32);
}

void read_at(std::FILE* f, const std::string& path, uint64_t offset, void* dst, uint64_t n,
             const char* what) {
  if (fseeko(f, static_cast<off_t>(offset), SEEK_SET) != 0 || std::fread(dst, 1, n, f) != n)
    fail(path, ": truncated or corrupt zip: cannot read ", what, " (", n, " bytes at offset ",
         offset, ")");
}

// Pieces at least this large are read by every thread in parallel.
constexpr uint64_t kParallelRead = 8u << 20;

uint32_t crc_update(uint32_t crc, const void* data, uint64_t n) {
  const auto* p = static_cast<const Bytef*>(data);
  while (n > 0) {
    const uInt chunk = static_cast<uInt>(std::min<uint64_t>(n, 1u << 30));
    crc = static_cast<uint32_t>(::crc32(crc, p, chunk));
    p += chunk;
    n -= chunk;
  }
  return crc;
}

class StoredStream : public ByteStream {
 public:
  StoredStream(std::shared_ptr<std::FILE> f, std::string path, ZipEntry e)
      : file_(std::move(f)), path_(std::move(path)), entry_(std::move(e)) {}
  void read(void* dst, uint64_t n) override {
    if (pos_ + n > entry_.uncompressed_size)
      fail(path_, ": member '", printable(entry_.name), "' is truncated: need ", pos_ + n,
           " bytes, it has ", entry_.uncompressed_size);
    const bool in_order = crc_pos_ == pos_;
    if (n < kParallelRead) {
      read_at(file_.get(), path_, entry_.data_offset + pos_, dst, n, "member data");
      if (in_order) crc_ = crc_update(crc_, dst, n);
    } else {
      // Large pieces (a 2048-row block of 2048 floats is 16 MiB) are read and checksummed
      // by every thread, a part each, the CRCs joined in order: reading and CRC-32 are
      // CPU-bound from the page cache (measured: 0.10 s per 400 MB on one core).
#ifdef _OPENMP
      const int64_t threads = omp_get_max_threads();
#else
      const int64_t threads = 1;
#endif
      const int64_t parts = std::min<int64_t>(threads, n / (kParallelRead / 2));
      std::vector<uint32_t> crcs(static_cast<size_t>(parts));
      std::vector<int> errors(static_cast<size_t>(parts), 0);
      const uint64_t step = (n + parts - 1) / parts;
      const int fd = fileno(file_.get());
#pragma omp parallel for schedule(static)
      for (int64_t p = 0; p < parts; ++p) {
        const uint64_t begin = static_cast<uint64_t>(p) * step, end = std::min(n, begin + step);
        auto* out = static_cast<unsigned char*>(dst) + begin;
        uint64_t done = 0;
        while (done < end - begin) {
          const ssize_t got = ::pread(fd, out + done, end - begin - done,
                                      static_cast<off_t>(entry_.data_offset + pos_ + begin + done));
          if (got <= 0) {
            errors[static_cast<size_t>(p)] = got < 0 ? errno : -1;
            break;
          }
          done += static_cast<uint64_t>(got);
        }
        if (in_order && done == end - begin) crcs[static_cast<size_t>(p)] = crc_update(0, out, done);
      }
      for (int64_t p = 0; p < parts; ++p)
        if (errors[static_cast<size_t>(p)] != 0)
          fail(path_, ": truncated or corrupt zip: cannot read member data (", n,
               " bytes at offset ", entry_.data_offset + pos_, ")",
               errors[static_cast<size_t>(p)] > 0
                   ? cat(": ", std::strerror(errors[static_cast<size_t>(p)]))
                   : std::string());
      if (in_order)
        for (int64_t p = 0; p < parts; ++p) {
          const uint64_t len = std::min(n, (p + 1) * step) - p * step;
          crc_ = static_cast<uint32_t>(
              ::crc32_combine(crc_, crcs[static_cast<size_t>(p)], static_cast<z_off_t>(len)));
        }
    }
    if (in_order) {
      crc_pos_ += n;
      if (crc_pos_ == entry_.uncompressed_size && crc_ != entry_.crc32)
        fail(path_, ": member '", printable(entry_.name), "' is corrupt (CRC-32 mismatch)");
    }
    pos_ += n;
  }
  void seek(uint64_t pos) override { pos_ = pos; }
  uint64_t position() const override { return pos_; }
  uint64_t size() const override { return entry_.uncompressed_size; }

 private:
  std::shared_ptr<std::FILE> file_;  // shared with the reader: a stream may outlive it
  std::string path_;
  ZipEntry entry_;
  uint64_t pos_ = 0;
  uint32_t crc_ = 0;
  uint64_t crc_pos_ = 0;
};

class DeflatedStream : public ByteStream {
 public:
  DeflatedStream(std::shared_ptr<std::FILE> f, std::string path, ZipEntry e)
      : file_(std::move(f)), path_(std::move(path)), entry_(std::move(e)), in_(1 << 20) {
    restart();
  }
  ~DeflatedStream() override { inflateEnd(&z_); }

  void read(void* dst, uint64_t n) override {
    if (pos_ + n > entry_.uncompressed_size)
      fail(path_, ": member '", printable(entry_.name), "' is truncated: need ", pos_ + n,
           " bytes, it has ", entry_.uncompressed_size);
    auto* out = static_cast<unsigned char*>(dst);
    uint64_t left = n;
    while (left > 0) {
      if (z_.avail_in == 0 && consumed_ < entry_.compressed_size) refill();
      const uInt chunk = static_cast<uInt>(std::min<uint64_t>(left, 1u << 30));
      z_.next_out = out;
      z_.avail_out = chunk;
      const int rc = inflate(&z_, Z_NO_FLUSH);
      const uInt produced = chunk - z_.avail_out;
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
        fail(path_, ": member '", printable(entry_.name),
             "' is corrupt (deflate error: ", z_.msg ? z_.msg : "unknown", ")");
      if (produced == 0 && (rc == Z_STREAM_END || rc == Z_BUF_ERROR))
        fail(path_, ": member '", printable(entry_.name),
             "' is truncated (deflate stream ended after ", pos_, " of ", entry_.uncompressed_size,
             " bytes)");
      crc_ = crc_update(crc_, out, produced);
      out += produced;
      left -= produced;
      pos_ += produced;
    }
    if (pos_ == entry_.uncompressed_size && crc_ != entry_.crc32)
      fail(path_, ": member '", printable(entry_.name), "' is corrupt (CRC-32 mismatch)");
  }
  void seek(uint64_t pos) override {
    if (pos < pos_) restart();
    std::vector<unsigned char> scratch(1 << 20);
    while (pos_ < pos)
      read(scratch.data(), std::min<uint64_t>(scratch.size(), pos - pos_));
  }
  uint64_t position() const override { return pos_; }
  uint64_t size() const override { return entry_.uncompressed_size; }

 private:
  void restart() {
    if (initialized_) inflateEnd(&z_);
    std::memset(&z_, 0, sizeof(z_));
    if (inflateInit2(&z_, -MAX_WBITS) != Z_OK) fail(path_, ": zlib inflateInit2 failed");
    initialized_ = true;
    pos_ = 0;
    consumed_ = 0;
    crc_ = 0;
  }
  void refill() {
    const uint64_t left = entry_.compressed_size - consumed_;
    const uint64_t take = std::min<uint64_t>(left, in_.size());
    read_at(file_.get(), path_, entry_.data_offset + consumed_, in_.data(), take,
            "compressed data");
    consumed_ += take;
    z_.next_in = in_.data();
    z_.avail_in = static_cast<uInt>(take);
  }

  std::shared_ptr<std::FILE> file_;  // shared with the reader: a stream may outlive it
  std::string path_;
  ZipEntry entry_;
  std::vector<unsigned char> in_;
  z_stream z_{};
  bool initialized_ = false;
  uint64_t pos_ = 0;
  uint64_t consumed_ = 0;
  uint32_t crc_ = 0;
};

}  // namespace

ZipReader::ZipReader(const std::string& path) : path_(path) {
  file_ = std::fopen(path.c_str(), "rb");
  if (!file_) fail(path, ": cannot open file (", std::strerror(errno), ")");
  // Owned here, so an error below closes it; streams share it and may outlive the reader.
  handle_.reset(file_, [](std::FILE* f) { std::fclose(f); });
  fseeko(file_, 0, SEEK_END);
  file_size_ = static_cast<uint64_t>(ftello(file_));
  if (file_size_ < 22) fail(path, ": not a zip/npz file (", file_size_, " bytes, no directory)");

  // The end-of-central-directory record is in the last 22 + 65535 bytes.
  const uint64_t tail_len = std::min<uint64_t>(file_size_, 22 + 65535);
  std::vector<unsigned char> tail(tail_len);
  read_at(file_, path, file_size_ - tail_len, tail.data(), tail_len, "the directory");
  int64_t eocd = -1;
  for (int64_t i = static_cast<int64_t>(tail_len) - 22; i >= 0; --i)
    if (le32(&tail[i]) == kEocdSig) {
      eocd = i;
      break;
    }
  if (eocd < 0) fail(path, ": truncated or corrupt zip: end-of-central-directory record not found");
  const unsigned char* e = &tail[eocd];
  uint64_t n_entries = le16(e + 10);
  uint64_t cd_size = le32(e + 12);
  uint64_t cd_offset = le32(e + 16);
  const uint64_t eocd_pos = file_size_ - tail_len + eocd;
  if (n_entries == 0xffff || cd_size == k32Max || cd_offset == k32Max) {
    if (eocd_pos < 20) fail(path, ": corrupt zip: ZIP64 locator missing");
    unsigned char loc[20];
    read_at(file_, path, eocd_pos - 20, loc, 20, "the ZIP64 locator");
    if (le32(loc) != kZip64LocatorSig) fail(path, ": corrupt zip: ZIP64 locator missing");
    unsigned char rec[56];
    read_at(file_, path, le64(loc + 8), rec, 56, "the ZIP64 directory record");
    if (le32(rec) != kZip64EocdSig) fail(path, ": corrupt zip: bad ZIP64 directory record");
    n_entries = le64(rec + 32);
    cd_size = le64(rec + 40);
    cd_offset = le64(rec + 48);
  }
  if (cd_size > file_size_ || cd_offset > file_size_ - cd_size)  // no wrap-around (ZIP64)
    fail(path, ": truncated zip: central directory at ", cd_offset, " + ", cd_size,
         " bytes lies beyond the end of the file (", file_size_, " bytes)");
  std::vector<unsigned char> cd(cd_size);
  read_at(file_, path, cd_offset, cd.data(), cd_size, "the central directory");
  uint64_t p = 0;
  for (uint64_t k = 0; k < n_entries; ++k) {
    if (p + 46 > cd_size || le32(&cd[p]) != kCentralSig)
      fail(path, ": corrupt zip: bad central directory entry ", k);
    const unsigned char* h = &cd[p];
    ZipEntry entry;
    const uint16_t flags = le16(h + 8);
    entry.method = le16(h + 10);
    entry.crc32 = le32(h + 16);
    entry.compressed_size = le32(h + 20);
    entry.uncompressed_size = le32(h + 24);
    const uint16_t name_len = le16(h + 28), extra_len = le16(h + 30), comment_len = le16(h + 32);
    entry.local_header_offset = le32(h + 42);
    if (p + 46 + name_len + extra_len + comment_len > cd_size)
      fail(path, ": corrupt zip: central directory entry ", k, " overruns the directory");
    entry.name.assign(reinterpret_cast<const char*>(h + 46), name_len);
    // ZIP64 extra field: only the fields whose 32-bit value is 0xffffffff, in order.
    const unsigned char* x = h + 46 + name_len;
    // (32-bit position: with 16 bits, a field length near 65535 wrapped it back: a hang)
    for (uint32_t q = 0; q + 4 <= extra_len;) {
      const uint16_t id = le16(x + q), len = le16(x + q + 2);
      if (id == 0x0001) {
        const unsigned char* f = x + q + 4;
        uint16_t used = 0;
        auto take = [&](uint64_t& v) {
          if (v == k32Max && used + 8 <= len) {
            v = le64(f + used);
            used += 8;
          }
        };
        take(entry.uncompressed_size);
        take(entry.compressed_size);
        take(entry.local_header_offset);
      }
      q += 4 + len;
    }
    if (flags & 1u) fail(path, ": member '", printable(entry.name), "' is encrypted; unsupported");
    if (entry.method != 0 && entry.method != 8)
      fail(path, ": member '", printable(entry.name), "' uses compression method ", entry.method,
           "; only stored (0) and deflated (8) are supported");
    unsigned char local[30];
    read_at(file_, path, entry.local_header_offset, local, 30, "a local header");
    if (le32(local) != kLocalSig)
      fail(path, ": corrupt zip: bad local header for member '", printable(entry.name), "'");
    entry.data_offset = entry.local_header_offset + 30 + le16(local + 26) + le16(local + 28);
    if (entry.data_offset > file_size_ || entry.compressed_size > file_size_ - entry.data_offset)
      fail(path, ": truncated zip: member '", printable(entry.name), "' needs ",
           entry.data_offset + entry.compressed_size, " bytes, the file has ", file_size_);
    // The declared size is what readers allocate: it must be one the data can produce.
    // Stored: the bytes present; deflated: at most deflate's 1032:1 expansion.
    if (entry.method == 0 && entry.uncompressed_size != entry.compressed_size)
      fail(path, ": corrupt zip: stored member '", printable(entry.name), "' declares ",
           entry.uncompressed_size, " bytes but holds ", entry.compressed_size);
    if (entry.method == 8 && entry.uncompressed_size / 1032 > entry.compressed_size)
      fail(path, ": corrupt zip: member '", printable(entry.name), "' declares ",
           entry.uncompressed_size, " bytes from ", entry.compressed_size,
           " deflated bytes, more than deflate can "
           "produce (a zip bomb or a damaged directory)");
    entries_.push_back(std::move(entry));
    p += 46 + name_len + extra_len + comment_len;
  }
}

ZipReader::~ZipReader() = default;

const ZipEntry* ZipReader::find(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

std::unique_ptr<ByteStream> ZipReader::open(const ZipEntry& entry) const {
  if (entry.method == 0) {
    if (entry.compressed_size != entry.uncompressed_size)
      fail(path_, ": corrupt zip: stored member '", printable(entry.name), "' has different sizes");
    return std::make_unique<StoredStream>(handle_, path_, entry);
  }
  return std::make_unique<DeflatedStream>(handle_, path_, entry);
}

// ---------------------------------------------------------------------------------------

struct ZipWriter::Impl {
  AtomicFile target;
  std::FILE* file = nullptr;
  bool deflate = false;
  bool force_zip64 = false;
  std::vector<ZipEntry> done;
  // current member
  bool open = false;
  bool zip64 = false;
  ZipEntry cur;
  uint64_t expected = 0;
  uint64_t written = 0;
  z_stream z{};
  std::vector<unsigned char> out_buf;

  explicit Impl(const std::string& path) : target(path) {}

  void put(const void* p, uint64_t n) {
    if (std::fwrite(p, 1, n, file) != n)
      fail_output(target.path(), ": write failed (disk full?) while writing ", target.temp_path());
  }
  uint64_t tell() { return static_cast<uint64_t>(ftello(file)); }
};

namespace {
void push16(std::vector<unsigned char>& b, uint16_t v) {
  b.push_back(v & 0xff);
  b.push_back(v >> 8);
}
void push32(std::vector<unsigned char>& b, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    b.push_back((v >> (8 * i)) & 0xff);
}
void push64(std::vector<unsigned char>& b, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    b.push_back((v >> (8 * i)) & 0xff);
}
// Fixed DOS timestamp (1980-01-01 00:00): identical inputs give byte-identical files.
constexpr uint16_t kDosTime = 0, kDosDate = (0 << 9) | (1 << 5) | 1;
}  // namespace

ZipWriter::ZipWriter(const std::string& path, bool deflate, bool force_zip64)
    : impl_(std::make_unique<Impl>(path)) {
  impl_->force_zip64 = force_zip64;
  impl_->file = std::fopen(impl_->target.temp_path().c_str(), "wb");
  if (!impl_->file)
    fail_output(path, ": cannot create ", impl_->target.temp_path(), " (", std::strerror(errno), ")");
  impl_->deflate = deflate;
}

ZipWriter::~ZipWriter() {
  if (impl_->open && impl_->deflate) deflateEnd(&impl_->z);
  if (impl_->file) std::fclose(impl_->file);
}

void ZipWriter::begin_member(const std::string& name, uint64_t expected_size) {
  Impl& m = *impl_;
  if (m.open) fail("ZipWriter: member '", m.cur.name, "' is still open");
  m.cur = ZipEntry{};
  m.cur.name = name;
  m.cur.method = m.deflate ? 8 : 0;
  m.cur.local_header_offset = m.tell();
  m.expected = expected_size;
  m.written = 0;
  // Deflate can expand incompressible data slightly; leave a margin before 4 GiB.
  m.zip64 = m.force_zip64 || expected_size + expected_size / 64 + (1 << 20) >= k32Max;
  std::vector<unsigned char> h;
  push32(h, kLocalSig);
  push16(h, m.zip64 ? 45 : 20);
  push16(h, 0);
  push16(h, m.cur.method);
  push16(h, kDosTime);
  push16(h, kDosDate);
  push32(h, 0);  // crc, patched
  push32(h, m.zip64 ? k32Max : 0);
  push32(h, m.zip64 ? k32Max : 0);
  push16(h, static_cast<uint16_t>(name.size()));
  push16(h, m.zip64 ? 20 : 0);
  h.insert(h.end(), name.begin(), name.end());
  if (m.zip64) {
    push16(h, 0x0001);
    push16(h, 16);
    push64(h, 0);
    push64(h, 0);
  }
  m.put(h.data(), h.size());
  m.cur.data_offset = m.tell();
  if (m.deflate) {
    std::memset(&m.z, 0, sizeof(m.z));
    if (deflateInit2(&m.z, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
      fail("ZipWriter: zlib deflateInit2 failed");
    m.out_buf.resize(1 << 20);
  }
  m.open = true;
}

void ZipWriter::write(const void* data, uint64_t n) {
  Impl& m = *impl_;
  if (!m.open) fail("ZipWriter::write: no member is open");
  m.cur.crc32 = crc_update(m.cur.crc32, data, n);
  m.written += n;
  if (!m.deflate) {
    m.put(data, n);
    return;
  }
  const auto* p = static_cast<const Bytef*>(data);
  while (n > 0) {
    const uInt chunk = static_cast<uInt>(std::min<uint64_t>(n, 1u << 30));
    m.z.next_in = const_cast<Bytef*>(p);
    m.z.avail_in = chunk;
    do {
      m.z.next_out = m.out_buf.data();
      m.z.avail_out = static_cast<uInt>(m.out_buf.size());
      deflate(&m.z, Z_NO_FLUSH);
      m.put(m.out_buf.data(), m.out_buf.size() - m.z.avail_out);
    } while (m.z.avail_out == 0);
    p += chunk;
    n -= chunk;
  }
}

void ZipWriter::end_member() {
  Impl& m = *impl_;
  if (!m.open) fail("ZipWriter::end_member: no member is open");
  if (m.written != m.expected)
    fail("ZipWriter: member '", m.cur.name, "' got ", m.written, " bytes, expected ", m.expected);
  if (m.deflate) {
    int rc;
    do {
      m.z.next_out = m.out_buf.data();
      m.z.avail_out = static_cast<uInt>(m.out_buf.size());
      rc = deflate(&m.z, Z_FINISH);
      m.put(m.out_buf.data(), m.out_buf.size() - m.z.avail_out);
    } while (rc != Z_STREAM_END);
    deflateEnd(&m.z);
  }
  const uint64_t end = m.tell();
  m.cur.uncompressed_size = m.written;
  m.cur.compressed_size = end - m.cur.data_offset;
  if (!m.zip64 && m.cur.compressed_size >= k32Max)
    fail("ZipWriter: member '", m.cur.name, "' compressed beyond 4 GiB unexpectedly");
  // Patch CRC and sizes into the local header.
  std::vector<unsigned char> patch;
  push32(patch, m.cur.crc32);
  push32(patch, m.zip64 ? k32Max : static_cast<uint32_t>(m.cur.compressed_size));
  push32(patch, m.zip64 ? k32Max : static_cast<uint32_t>(m.cur.uncompressed_size));
  fseeko(m.file, static_cast<off_t>(m.cur.local_header_offset + 14), SEEK_SET);
  m.put(patch.data(), patch.size());
  if (m.zip64) {
    std::vector<unsigned char> sizes;
    push64(sizes, m.cur.uncompressed_size);
    push64(sizes, m.cur.compressed_size);
    fseeko(m.file, static_cast<off_t>(m.cur.local_header_offset + 30 + m.cur.name.size() + 4),
           SEEK_SET);
    m.put(sizes.data(), sizes.size());
  }
  fseeko(m.file, static_cast<off_t>(end), SEEK_SET);
  m.done.push_back(m.cur);
  m.open = false;
}

void ZipWriter::close() {
  Impl& m = *impl_;
  if (m.open) fail("ZipWriter::close: member '", m.cur.name, "' is still open");
  const uint64_t cd_offset = m.tell();
  std::vector<unsigned char> cd;
  for (const auto& e : m.done) {
    const bool big_u = m.force_zip64 || e.uncompressed_size >= k32Max,
               big_c = m.force_zip64 || e.compressed_size >= k32Max,
               big_o = m.force_zip64 || e.local_header_offset >= k32Max;
    std::vector<unsigned char> extra;
    if (big_u || big_c || big_o) {
      push16(extra, 0x0001);
      push16(extra, static_cast<uint16_t>(8 * (big_u + big_c + big_o)));
      if (big_u) push64(extra, e.uncompressed_size);
      if (big_c) push64(extra, e.compressed_size);
      if (big_o) push64(extra, e.local_header_offset);
    }
    push32(cd, kCentralSig);
    push16(cd, 45);  // made by: version 4.5, MS-DOS attributes
    push16(cd, extra.empty() ? 20 : 45);
    push16(cd, 0);
    push16(cd, e.method);
    push16(cd, kDosTime);
    push16(cd, kDosDate);
    push32(cd, e.crc32);
    push32(cd, big_c ? k32Max : static_cast<uint32_t>(e.compressed_size));
    push32(cd, big_u ? k32Max : static_cast<uint32_t>(e.uncompressed_size));
    push16(cd, static_cast<uint16_t>(e.name.size()));
    push16(cd, static_cast<uint16_t>(extra.size()));
    push16(cd, 0);
    push16(cd, 0);
    push16(cd, 0);
    push32(cd, 0);
    push32(cd, big_o ? k32Max : static_cast<uint32_t>(e.local_header_offset));
    cd.insert(cd.end(), e.name.begin(), e.name.end());
    cd.insert(cd.end(), extra.begin(), extra.end());
  }
  m.put(cd.data(), cd.size());
  const uint64_t cd_size = cd.size();
  const uint64_t n = m.done.size();
  const bool zip64 = m.force_zip64 || n >= 0xffff || cd_offset >= k32Max || cd_size >= k32Max;
  std::vector<unsigned char> tail;
  if (zip64) {
    const uint64_t rec_offset = m.tell();
    push32(tail, kZip64EocdSig);
    push64(tail, 44);
    push16(tail, 45);
    push16(tail, 45);
    push32(tail, 0);
    push32(tail, 0);
    push64(tail, n);
    push64(tail, n);
    push64(tail, cd_size);
    push64(tail, cd_offset);
    push32(tail, kZip64LocatorSig);
    push32(tail, 0);
    push64(tail, rec_offset);
    push32(tail, 1);
  }
  push32(tail, kEocdSig);
  push16(tail, 0);
  push16(tail, 0);
  push16(tail, zip64 ? 0xffff : static_cast<uint16_t>(n));
  push16(tail, zip64 ? 0xffff : static_cast<uint16_t>(n));
  push32(tail, zip64 ? k32Max : static_cast<uint32_t>(cd_size));
  push32(tail, zip64 ? k32Max : static_cast<uint32_t>(cd_offset));
  push16(tail, 0);
  m.put(tail.data(), tail.size());
  if (std::fflush(m.file) != 0 || std::fclose(m.file) != 0) {
    m.file = nullptr;
    fail_output(m.target.path(), ": write failed while closing ", m.target.temp_path());
  }
  m.file = nullptr;
  m.target.commit();
}

}  // namespace sit::io
