#include "common/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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
  if (fd < 0) fail("AtomicFile: cannot reopen ", temp_path_, ": ", std::strerror(errno));
  ::fsync(fd);
  ::close(fd);
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0)
    fail("AtomicFile: cannot rename ", temp_path_, " to ", path_, ": ", std::strerror(errno));
  committed_ = true;
}

void write_file_atomic(const std::string& path, const std::string& content) {
  AtomicFile file(path);
  {
    std::ofstream out(file.temp_path(), std::ios::binary | std::ios::trunc);
    if (!out) fail("write_file_atomic: cannot open ", file.temp_path(), " for writing");
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.flush();
    if (!out) fail("write_file_atomic: write to ", file.temp_path(), " failed");
  }
  file.commit();
}

}  // namespace sit
