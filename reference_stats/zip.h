#pragma once
/// Minimal ZIP container support for npz files: members stored or deflated, ZIP64 sizes
/// and offsets, streamed reads of one member, and a streaming writer with atomic commit.

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace sit::io {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  ///< 0 stored, 8 deflated
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint64_t local_header_offset = 0;
  uint64_t data_offset = 0;  ///< resolved from the local header
};

/// A byte stream over one member (or a whole file). Stored members seek freely; deflated members
/// decompress forward and restart from the beginning to seek backwards. The CRC-32 is
/// verified whenever a member is read through from start to end.
class ByteStream {
 public:
  virtual ~ByteStream() = default;
  /// Reads exactly n bytes at the current position; throws on truncated data.
  virtual void read(void* dst, uint64_t n) = 0;
  virtual void seek(uint64_t pos) = 0;
  virtual uint64_t position() const = 0;
  virtual uint64_t size() const = 0;
};

class ZipReader {
 public:
  explicit ZipReader(const std::string& path);
  ~ZipReader();
  ZipReader(const ZipReader&) = delete;
  ZipReader& operator=(const ZipReader&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(const std::string& name) const;
  std::unique_ptr<ByteStream> open(const ZipEntry& entry) const;

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  std::shared_ptr<std::FILE> handle_;  ///< owns file_; shared with the member streams
  uint64_t file_size_ = 0;
  std::vector<ZipEntry> entries_;
};

/// Writes a zip file member by member, each streamed in pieces. Output goes to a
/// temporary file that close() renames over `path`; a writer destroyed before close()
/// leaves any existing file at `path` untouched.
class ZipWriter {
 public:
  /// force_zip64 writes ZIP64 records even for small members (tests the large-file path).
  ZipWriter(const std::string& path, bool deflate, bool force_zip64 = false);
  ~ZipWriter();
  ZipWriter(const ZipWriter&) = delete;
  ZipWriter& operator=(const ZipWriter&) = delete;

  /// Starts a member whose uncompressed size will be `expected_size` bytes.
  void begin_member(const std::string& name, uint64_t expected_size);
  void write(const void* data, uint64_t n);
  void end_member();
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sit::io
