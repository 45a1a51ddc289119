#pragma once
/// Image inputs for feature extraction, read in batches: an ADM-style npz (`arr_0`
/// uint8 [N, H, W, 3], streamed), a .npy of the same layout, or a folder of PNG/JPEG
/// files taken in sorted name order. Grayscale and palette images are converted to RGB
/// (and 16-bit PNGs to 8 bits); images with an alpha channel, and CMYK JPEGs, are refused
/// with an error naming the file.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sit::io {

struct Image {
  int64_t height = 0, width = 0;
  std::vector<uint8_t> rgb;  ///< height * width * 3, row-major, RGB
};

/// One PNG or JPEG file (by its magic bytes) as RGB.
Image read_image(const std::string& path);

class ImageSource {
 public:
  virtual ~ImageSource() = default;
  virtual int64_t count() const = 0;
  /// "npz arr_0 of FILE", "folder DIR".
  virtual std::string describe() const = 0;
  /// The next up to n images in order (empty at the end).
  virtual std::vector<Image> next(int64_t n) = 0;
};

/// An .npz (arr_0), .npy or a folder of .png/.jpg/.jpeg files.
std::unique_ptr<ImageSource> open_images(const std::string& path);

/// PNG and JPEG files of a folder in sorted name order (other files ignored).
std::vector<std::string> list_image_files(const std::string& dir);

}  // namespace sit::io
