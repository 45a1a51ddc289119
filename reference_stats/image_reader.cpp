#include "reference_stats/image_reader.h"

#include <jpeglib.h>
#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/format.h"
#include "reference_stats/npy.h"

namespace fs = std::filesystem;

namespace sit::io {
namespace {

Image read_png(const std::string& path) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str()))
    fail(path, ": cannot read PNG: ", image.message);
  if (image.format & PNG_FORMAT_FLAG_ALPHA) {
    png_image_free(&image);
    fail(path,
         ": PNG with an alpha channel; sit-eval takes RGB images (grayscale and palette "
         "images are converted) and does not guess a background");
  }
  image.format = PNG_FORMAT_RGB;  // converts grayscale, palette and 16-bit images
  Image out;
  out.height = image.height;
  out.width = image.width;
  out.rgb.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, out.rgb.data(), 0, nullptr))
    fail(path, ": corrupt PNG: ", image.message);
  return out;
}

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_fail(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

Image read_jpeg(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(path, ": cannot open");
  jpeg_decompress_struct cinfo{};
  JpegError err{};
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_fail;
  Image out;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    std::fclose(f);
    fail(path, ": corrupt JPEG: ", err.message);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_stdio_src(&cinfo, f);
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&cinfo);
    std::fclose(f);
    fail(path, ": CMYK JPEG; sit-eval takes RGB (or grayscale) images");
  }
  cinfo.out_color_space = JCS_RGB;  // grayscale is converted
  jpeg_start_decompress(&cinfo);
  out.height = cinfo.output_height;
  out.width = cinfo.output_width;
  out.rgb.resize(static_cast<size_t>(out.height * out.width * 3));
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out.rgb.data() + static_cast<size_t>(cinfo.output_scanline) * out.width * 3;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  std::fclose(f);
  return out;
}

bool has_image_extension(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return e == ".png" || e == ".jpg" || e == ".jpeg";
}

class ArraySource final : public ImageSource {
 public:
  ArraySource(NpyArray array, std::string what)
      : array_(std::move(array)), what_(std::move(what)) {
    const auto& s = array_.shape();
    if (array_.dtype() != DType::kU1 || s.size() != 4 || s[3] != 3)
      fail(array_.where(), ": images must be uint8 [N, H, W, 3], got ", descr(array_.dtype()), " ",
           shape_string(s));
  }
  int64_t count() const override { return array_.shape()[0]; }
  std::string describe() const override { return what_; }
  std::vector<Image> next(int64_t n) override {
    const auto& s = array_.shape();
    const int64_t take = std::min(n, s[0] - done_);
    std::vector<Image> out;
    if (take <= 0) return out;
    std::vector<uint8_t> buf(static_cast<size_t>(take * s[1] * s[2] * 3));
    array_.read_rows_u8(done_, take, buf.data());
    const size_t per = static_cast<size_t>(s[1] * s[2] * 3);
    for (int64_t i = 0; i < take; ++i)
      out.push_back(
          {s[1], s[2], std::vector<uint8_t>(buf.begin() + i * per, buf.begin() + (i + 1) * per)});
    done_ += take;
    return out;
  }

 private:
  NpyArray array_;
  std::string what_;
  int64_t done_ = 0;
};

class FolderSource final : public ImageSource {
 public:
  explicit FolderSource(const std::string& dir) : dir_(dir), files_(list_image_files(dir)) {
    if (files_.empty()) fail(dir, ": no .png, .jpg or .jpeg files in the folder");
  }
  int64_t count() const override { return static_cast<int64_t>(files_.size()); }
  std::string describe() const override { return "folder " + dir_; }
  std::vector<Image> next(int64_t n) override {
    std::vector<Image> out;
    for (; n > 0 && done_ < files_.size(); --n)
      out.push_back(read_image(files_[done_++]));
    return out;
  }

 private:
  std::string dir_;
  std::vector<std::string> files_;
  size_t done_ = 0;
};

}  // namespace

Image read_image(const std::string& path) {
  unsigned char magic[4] = {};
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path, ": cannot open image");
    in.read(reinterpret_cast<char*>(magic), 4);
  }
  if (magic[0] == 0x89 && magic[1] == 'P' && magic[2] == 'N' && magic[3] == 'G')
    return read_png(path);
  if (magic[0] == 0xFF && magic[1] == 0xD8) return read_jpeg(path);
  fail(path, ": neither PNG nor JPEG (by its first bytes)");
}

std::vector<std::string> list_image_files(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && has_image_extension(e.path())) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

std::unique_ptr<ImageSource> open_images(const std::string& path) {
  if (fs::is_directory(path)) return std::make_unique<FolderSource>(path);
  if (!fs::exists(path)) fail(path, ": no such file or folder");
  unsigned char magic[2] = {};
  {
    std::ifstream in(path, std::ios::binary);
    in.read(reinterpret_cast<char*>(magic), 2);
  }
  if (magic[0] == 'P' && magic[1] == 'K') {
    const NpzReader z(path);
    if (!z.has("arr_0")) fail(path, ": npz without arr_0 (the images)");
    return std::make_unique<ArraySource>(z.open("arr_0"), "npz arr_0 of " + path);
  }
  return std::make_unique<ArraySource>(open_npy(path), "npy " + path);
}

}  // namespace sit::io
