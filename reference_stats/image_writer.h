#pragma once
/// Streamed image outputs: ADM-style npz (`arr_0` uint8 [N, H, W, 3], `arr_1` int64
/// labels [N]) and folders of PNG files named by zero-padded sample index. Batches are
/// written as they come; nothing holds all images in memory.

#include <cstdint>
#include <string>
#include <vector>

#include "reference_stats/npy.h"

namespace sit::io {

/// One RGB image (h, w, 3) as a PNG file, written to a temporary name and renamed.
void write_png(const std::string& path, const uint8_t* rgb, int64_t h, int64_t w);

/// The npz that the ADM evaluator (and DiT/SiT's sample_ddp.py) produce; appears at
/// `path` only when close() succeeds.
class AdmNpzWriter {
 public:
  AdmNpzWriter(const std::string& path, int64_t count, int64_t height, int64_t width);
  /// `n` images (n, H, W, 3) and their labels, in sample order.
  void write(const uint8_t* images, int64_t n, const int64_t* labels);
  void close();

 private:
  NpzWriter npz_;
  std::string path_;
  int64_t count_;
  std::vector<int64_t> labels_;
};

/// DIR/000000.png, DIR/000001.png, ...: at least six digits, more when the count needs them.
class PngFolderWriter {
 public:
  PngFolderWriter(const std::string& dir, int64_t count);
  /// Images (n, H, W, 3) for sample indices first, first + 1, ...
  void write(const uint8_t* images, int64_t n, int64_t height, int64_t width, int64_t first);
  std::string file_name(int64_t index) const;

 private:
  std::string dir_;
  int64_t count_;
  int digits_;
};

}  // namespace sit::io
