// Image readers and writers: PNG and JPEG files (the JPEG written here with libjpeg),
// ADM npz and PNG-folder writers, and the errors for bad inputs.
#include <gtest/gtest.h>
#include <jpeglib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "reference_stats/image_reader.h"
#include "reference_stats/image_writer.h"
#include "reference_stats/npy.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace sit;

namespace {

std::vector<uint8_t> pattern(int64_t h, int64_t w, int seed) {
  std::vector<uint8_t> v(static_cast<size_t>(h * w * 3));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<uint8_t>((i * 37 + seed * 11) % 251);
  return v;
}

/// A JPEG via libjpeg: `components` 3 (RGB) or 1 (gray), quality 100.
void write_jpeg(const std::string& path, const uint8_t* pixels, int h, int w, int components) {
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  jpeg_stdio_dest(&c, f);
  c.image_width = w;
  c.image_height = h;
  c.input_components = components;
  c.in_color_space = components == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 100, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(pixels) + c.next_scanline * w * components;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::fclose(f);
}

}  // namespace

TEST(Images, PngRoundTripAndZeroPaddedNames) {
  const fs::path d = sit::test::temp_dir("images_png");
  io::PngFolderWriter w((d / "png").string(), 3);
  EXPECT_EQ(w.file_name(2), (d / "png" / "000002.png").string());
  std::vector<uint8_t> two = pattern(5, 7, 1), second = pattern(5, 7, 2);
  two.insert(two.end(), second.begin(), second.end());
  w.write(two.data(), 2, 5, 7, 1);  // samples 1 and 2
  const io::Image im = io::read_image((d / "png" / "000002.png").string());
  EXPECT_EQ(im.height, 5);
  EXPECT_EQ(im.width, 7);
  EXPECT_EQ(im.rgb, second);
  EXPECT_EQ(io::PngFolderWriter((d / "big").string(), 12345678).file_name(7),
            (d / "big" / "00000007.png").string());
  test::expect_error([&] { w.write(two.data(), 2, 5, 7, 2); }, {"outside 0..2"});
}

TEST(Images, JpegRgbAndGrayscaleAreRead) {
  const fs::path d = sit::test::temp_dir("images_jpeg");
  const std::vector<uint8_t> flat(4 * 6 * 3, 200);  // flat colour survives JPEG exactly
  write_jpeg((d / "rgb.jpg").string(), flat.data(), 4, 6, 3);
  io::Image im = io::read_image((d / "rgb.jpg").string());
  ASSERT_EQ(im.rgb.size(), flat.size());
  for (uint8_t v : im.rgb)
    EXPECT_NEAR(v, 200, 1);
  const std::vector<uint8_t> gray(4 * 6, 90);
  write_jpeg((d / "gray.jpeg").string(), gray.data(), 4, 6, 1);
  im = io::read_image((d / "gray.jpeg").string());  // converted to RGB
  ASSERT_EQ(im.rgb.size(), 4u * 6 * 3);
  for (uint8_t v : im.rgb)
    EXPECT_NEAR(v, 90, 1);
  // the folder source takes both, in name order, and ignores other files
  std::ofstream(d / "notes.txt") << "x";
  EXPECT_EQ(io::list_image_files(d.string()),
            (std::vector<std::string>{(d / "gray.jpeg").string(), (d / "rgb.jpg").string()}));
  EXPECT_EQ(io::open_images(d.string())->count(), 2);
}

TEST(Images, AdmNpzWriterCountsAndLayout) {
  const fs::path d = sit::test::temp_dir("images_npz");
  const std::string path = (d / "s.npz").string();
  {
    io::AdmNpzWriter w(path, 2, 5, 7);
    const std::vector<uint8_t> img = pattern(5, 7, 3);
    const int64_t label = 9;
    w.write(img.data(), 1, &label);
    test::expect_error([&] { w.close(); }, {"1 images written, 2 announced"});
  }
  EXPECT_FALSE(fs::exists(path));  // nothing half-written appears
  io::AdmNpzWriter w(path, 1, 5, 7);
  const std::vector<uint8_t> img = pattern(5, 7, 4);
  const int64_t label = 3;
  w.write(img.data(), 1, &label);
  test::expect_error([&] { w.write(img.data(), 1, &label); }, {"more than the announced 1"});
  w.close();
  const auto source = io::open_images(path);
  EXPECT_EQ(source->count(), 1);
  EXPECT_EQ(source->next(10)[0].rgb, img);
  EXPECT_EQ(io::NpzReader(path).open("arr_1").read_all<int64_t>(), std::vector<int64_t>{3});
}

TEST(Images, BadInputsAreExplained) {
  const fs::path d = sit::test::temp_dir("images_bad");
  std::ofstream(d / "a.png") << "not really a png";
  test::expect_error([&] { io::read_image((d / "a.png").string()); },
                     {"a.png", "neither PNG nor JPEG"});
  std::ofstream(d / "b.jpg") << "\xFF\xD8\xFF garbage";
  test::expect_error([&] { io::read_image((d / "b.jpg").string()); }, {"b.jpg", "corrupt JPEG"});
  fs::create_directories(d / "empty");
  test::expect_error([&] { io::open_images((d / "empty").string()); }, {"no .png, .jpg or .jpeg"});
  test::expect_error([&] { io::open_images((d / "nothing").string()); },
                     {"no such file or folder"});
  {
    io::NpzWriter w((d / "f.npz").string());
    const std::vector<float> x(6, 1.0f);
    w.add("pool", {2, 3}, x.data());
    w.close();
  }
  test::expect_error([&] { io::open_images((d / "f.npz").string()); }, {"without arr_0"});
  {
    io::NpzWriter w((d / "g.npz").string());
    const std::vector<float> x(12, 1.0f);
    w.add("arr_0", {1, 2, 2, 3}, x.data());
    w.close();
  }
  test::expect_error([&] { io::open_images((d / "g.npz").string()); },
                     {"images must be uint8 [N, H, W, 3]", "<f4"});
}
