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

/// Largest image side read (either format): bounds the decode buffer of a hostile header.
constexpr int64_t kMaxImageSide = 16384;

struct PngReadError {
  std::jmp_buf jump;
  std::string message;
};

void png_error_fn(png_structp png, png_const_charp message) {
  auto* err = static_cast<PngReadError*>(png_get_error_ptr(png));
  err->message = message ? message : "unknown libpng error";
  std::longjmp(err->jump, 1);
}

void png_warning_fn(png_structp, png_const_charp) {}  // e.g. an invalid iCCP profile: ignored

/// The libpng part of read_png. Holds no C++ object with a destructor in its frame
/// (setjmp/longjmp); false with err->message set on a decoding error, and *refusal set
/// (and nothing decoded) for a file sit-eval does not take.
bool decode_png(std::FILE* f, PngReadError* err, Image* out, std::vector<png_bytep>* rows,
                const char** refusal) {
  png_structp png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, err, png_error_fn, png_warning_fn);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info) {
    png_destroy_read_struct(&png, &info, nullptr);
    err->message = "cannot allocate the decoder";
    return false;
  }
  if (setjmp(err->jump)) {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_set_user_limits(png, kMaxImageSide, kMaxImageSide);
  png_init_io(png, f);
  png_read_info(png, info);
  const int color_type = png_get_color_type(png, info);
  const int bit_depth = png_get_bit_depth(png, info);
  if (color_type & PNG_COLOR_MASK_ALPHA) {
    *refusal = "PNG with an alpha channel";
  } else if (png_get_valid(png, info, PNG_INFO_tRNS)) {
    *refusal = "PNG with transparency (a tRNS chunk)";
  } else {
    // No png_set_gamma / png_set_alpha_mode / png_set_rgb_to_gray: no colour processing.
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (bit_depth == 16) png_set_strip_16(png);  // keeps the high byte
    if (color_type == PNG_COLOR_TYPE_GRAY) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    out->height = png_get_image_height(png, info);
    out->width = png_get_image_width(png, info);
    const size_t row_bytes = static_cast<size_t>(out->width) * 3;
    if (png_get_rowbytes(png, info) != row_bytes)
      png_error(png, "unexpected row size after conversion to 8-bit RGB");
    out->rgb.resize(row_bytes * static_cast<size_t>(out->height));
    rows->resize(static_cast<size_t>(out->height));
    for (size_t y = 0; y < rows->size(); ++y)
      (*rows)[y] = out->rgb.data() + y * row_bytes;
    png_read_image(png, rows->data());
    png_read_end(png, nullptr);
  }
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

/// A PNG decoded as stored, as Pillow's Image.open(path).convert("RGB") hands it to a
/// network: no gamma, chromaticity, ICC or sRGB processing (libpng's low-level reader
/// applies none unless asked; its simplified png_image API would convert to sRGB and
/// treat 16-bit samples as linear light). Palette indices become their RGB entries;
/// 1/2/4-bit gray is scaled to 8 bits by bit replication (v * 255 / (2^bits - 1), as
/// Pillow's "1", "L;2" and "L;4" modes); gray is replicated into R = G = B; 16-bit samples
/// keep their high byte (v >> 8: Pillow's rule for 16-bit RGB, rawmode "RGB;16B"; Pillow
/// opens 16-bit gray as mode "I", whose convert("RGB") saturates at 255 instead, so
/// there the rule is the same high byte, not Pillow's conversion). Images with an alpha
/// channel or a tRNS chunk are refused.
Image read_png(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(path, ": cannot open PNG");
  PngReadError err;
  Image out;
  std::vector<png_bytep> rows;
  const char* refusal = nullptr;
  const bool ok = decode_png(f, &err, &out, &rows, &refusal);
  std::fclose(f);
  if (!ok) fail(path, ": corrupt PNG: ", err.message);
  if (refusal)
    fail(path, ": ", refusal,
         "; sit-eval takes RGB images (grayscale and palette images are converted) and does not "
         "guess a background");
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
  if (cinfo.image_width > kMaxImageSide || cinfo.image_height > kMaxImageSide) {
    jpeg_destroy_decompress(&cinfo);
    std::fclose(f);
    fail(path, ": JPEG of ", cinfo.image_width, "x", cinfo.image_height,
         " pixels; sit-eval reads images up to ", kMaxImageSide, " pixels a side");
  }
  // Decoded as stored: libjpeg applies no ICC profile and no EXIF orientation (nor does
  // Pillow's Image.open); the default islow IDCT and fancy upsampling are Pillow's too.
  cinfo.out_color_space = JCS_RGB;  // grayscale is replicated into R = G = B
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
    if (!z.has("arr_0")) {
      std::string keys;
      for (const auto& k : z.keys())
        keys += (keys.empty() ? "" : ", ") + k;
      fail(path, ": npz without arr_0 (the images); it holds ",
           keys.empty() ? std::string("no arrays") : keys);
    }
    return std::make_unique<ArraySource>(z.open("arr_0"), "npz arr_0 of " + path);
  }
  return std::make_unique<ArraySource>(open_npy(path), "npy " + path);
}

}  // namespace sit::io
