#pragma once
/// Crash-safe file output: content goes to "<path>.tmp.<pid>" and is renamed over `path`
/// only when complete, so a reader never sees a half-written file and an existing file
/// is untouched when writing fails.

#include <cstdio>
#include <initializer_list>
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

/// Checks, before any long work, that `path` can be written: its folder exists and is
/// writable, it is not a folder, and (when `extensions` is non-empty) its name ends in one
/// of them. Throws sit::Error naming `option` and the path.
void check_output_path(const std::string& path, const char* option,
                       std::initializer_list<const char*> extensions = {});

/// Writes `content` to `path` atomically.
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace sit
