#pragma once
/// SHA-256 (FIPS 180-4) of byte strings and files: the identity of weights and feature
/// extractors in provenance records, comparable with `sha256sum` and the checksums model
/// hubs publish.

#include <cstdint>
#include <string>

namespace sit {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  /// Lower-case hex digest; the object is spent afterwards.
  std::string hex();

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t fill_ = 0;
  uint64_t bytes_ = 0;
};

/// Digest of a whole file; throws sit::Error naming the file when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace sit
