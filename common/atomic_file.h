#pragma once
/// Crash-safe file output: content goes to "<path>.tmp.<pid>" and is renamed over `path`
/// only when complete, so a reader never sees a half-written file and an existing file
/// is untouched when writing fails.

#include <cstdio>
#include <string>

namespace sit {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();  ///< removes the temporary file unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  /// The temporary path to write to (for libraries that open files by name, e.g. HDF5).
  const std::string& temp_path() const { return temp_path_; }
  const std::string& path() const { return path_; }
  /// Flushes to disk (fsync) and renames the temporary file over the final path.
  void commit();

 private:
  std::string path_;
  std::string temp_path_;
  bool committed_ = false;
};

/// Writes `content` to `path` atomically.
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace sit
