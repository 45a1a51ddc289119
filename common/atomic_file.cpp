#include "common/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/error.h"

namespace sit {

AtomicFile::AtomicFile(std::string path)
    : path_(std::move(path)), temp_path_(path_ + ".tmp." + std::to_string(::getpid())) {}

AtomicFile::~AtomicFile() {
  if (!committed_) std::remove(temp_path_.c_str());
}

void AtomicFile::commit() {
  const int fd = ::open(temp_path_.c_str(), O_RDONLY);
  if (fd < 0) fail_output(path_, ": cannot reopen ", temp_path_, " (", std::strerror(errno), ")");
  // A failed fsync means the bytes may never reach the disk: the file is not renamed into
  // place (the destructor removes it), and the error says so.
  if (::fsync(fd) != 0) {
    const int e = errno;
    ::close(fd);
    fail_output(path_, ": cannot flush ", temp_path_, " to disk (fsync: ", std::strerror(e), ")");
  }
  ::close(fd);
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0)
    fail_output(path_, ": cannot rename ", temp_path_, " into place (", std::strerror(errno), ")");
  committed_ = true;
}

void check_output_path(const std::string& path, const char* option,
                       std::initializer_list<const char*> extensions) {
  if (path.empty()) fail(option, ": empty file name");
  if (extensions.size() > 0) {
    bool ok = false;
    std::string list;
    for (const char* e : extensions) {
      const std::string ext = e;
      ok = ok || (path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(),
                                                           ext) == 0);
      list += (list.empty() ? "" : ", ") + ext;
    }
    if (!ok) fail(option, " ", path, ": the file name must end in ", list);
  }
  const std::filesystem::path p(path);
  const std::filesystem::path dir = p.has_parent_path() ? p.parent_path() : ".";
  if (!std::filesystem::is_directory(dir))
    fail(option, " ", path, ": no folder ", dir.string(), " (create it first)");
  if (std::filesystem::is_directory(p)) fail(option, " ", path, ": is a folder, not a file");
  // Create and remove a probe file: permission bits alone do not tell (root, read-only
  // file systems, /proc).
  const std::string probe = path + ".probe." + std::to_string(::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0)
    fail(option, " ", path, ": cannot write in ", dir.string(), " (", std::strerror(errno), ")");
  ::close(fd);
  std::remove(probe.c_str());
}

void write_file_atomic(const std::string& path, const std::string& content) {
  AtomicFile file(path);
  {
    std::ofstream out(file.temp_path(), std::ios::binary | std::ios::trunc);
    if (!out) fail_output(path, ": cannot write (", std::strerror(errno), ")");
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.flush();
    if (!out) fail_output(path, ": write failed (", std::strerror(errno), ")");
  }
  file.commit();
}

}  // namespace sit
