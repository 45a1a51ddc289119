#include "reference_stats/image_writer.h"

#include <png.h>

#include <cstdio>
#include <filesystem>

#include "common/error.h"

namespace sit::io {

void write_png(const std::string& path, const uint8_t* rgb, int64_t h, int64_t w) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail(path, ": cannot create PNG file");
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    std::fclose(f);
    std::remove(tmp.c_str());
    fail(path, ": libpng failed to write the image (disk full?)");
  }
  png_init_io(png, f);
  png_set_compression_level(png, 1);  // lossless either way; level 1 is several times faster
  png_set_IHDR(png, info, static_cast<png_uint_32>(w), static_cast<png_uint_32>(h), 8,
               PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int64_t r = 0; r < h; ++r)
    png_write_row(png, const_cast<uint8_t*>(rgb + r * w * 3));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  const bool ok = std::fflush(f) == 0 && std::fclose(f) == 0;
  if (!ok) {
    std::remove(tmp.c_str());
    fail(path, ": write failed (disk full?)");
  }
  std::filesystem::rename(tmp, path);
}

AdmNpzWriter::AdmNpzWriter(const std::string& path, int64_t count, int64_t height, int64_t width)
    : npz_(path), path_(path), count_(count) {
  npz_.begin("arr_0", DType::kU1, {count, height, width, 3});
}

void AdmNpzWriter::write(const uint8_t* images, int64_t n, const int64_t* labels) {
  if (static_cast<int64_t>(labels_.size()) + n > count_)
    fail(path_, ": more than the announced ", count_, " images");
  npz_.append_rows(images, n);
  labels_.insert(labels_.end(), labels, labels + n);
}

void AdmNpzWriter::close() {
  if (static_cast<int64_t>(labels_.size()) != count_)
    fail(path_, ": ", labels_.size(), " images written, ", count_, " announced");
  npz_.end();
  npz_.add("arr_1", {count_}, labels_.data());
  npz_.close();
}

PngFolderWriter::PngFolderWriter(const std::string& dir, int64_t count)
    : dir_(dir), count_(count), digits_(6) {
  for (int64_t m = 1000000; m < count; m *= 10)
    ++digits_;
  std::filesystem::create_directories(dir);
}

std::string PngFolderWriter::file_name(int64_t index) const {
  std::string s = std::to_string(index);
  return dir_ + "/" + std::string(s.size() < size_t(digits_) ? digits_ - s.size() : 0, '0') + s +
         ".png";
}

void PngFolderWriter::write(const uint8_t* images, int64_t n, int64_t height, int64_t width,
                            int64_t first) {
  if (first < 0 || first + n > count_)
    fail(dir_, ": image indices ", first, "..", first + n - 1, " outside 0..", count_ - 1);
  for (int64_t i = 0; i < n; ++i)
    write_png(file_name(first + i), images + i * height * width * 3, height, width);
}

}  // namespace sit::io
