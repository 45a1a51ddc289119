// Image readers and writers: PNG and JPEG files (the JPEG written here with libjpeg),
// ADM npz and PNG-folder writers, and the errors for bad inputs.
#include <gtest/gtest.h>
#include <jpeglib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

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

// Every PNG colour type and bit depth (with gAMA, cHRM, sRGB and iCCP chunks that must
// be ignored, plain and interlaced) and JPEGs with ICC/EXIF decode to exactly the values
// Pillow hands to a network; transparency is refused. Files and expected arrays from
// tests/python/make_image_fixtures.py (python3-pil), written at test time.
TEST(Images, DecodedAsStoredLikePillow) {
  const std::string dir = SIT_IMAGE_FIXTURES;
  std::ifstream in(dir + "/manifest.json");
  ASSERT_TRUE(in) << "missing " << dir << "/manifest.json (the image_fixtures test makes it)";
  const nlohmann::json manifest = nlohmann::json::parse(in);
  ASSERT_GE(manifest.size(), 40u);
  int decoded = 0, refused = 0;
  for (const auto& entry : manifest) {
    const std::string file = dir + "/" + entry["file"].get<std::string>();
    SCOPED_TRACE(file);
    if (entry.contains("refused")) {
      test::expect_error([&] { io::read_image(file); },
                         {entry["file"].get<std::string>(), entry["refused"].get<std::string>(),
                          "does not guess a background"});
      ++refused;
      continue;
    }
    io::NpyArray expected = io::open_npy(dir + "/" + entry["expect"].get<std::string>());
    ASSERT_EQ(expected.shape().size(), 3u);
    const io::Image im = io::read_image(file);
    EXPECT_EQ(im.height, expected.shape()[0]);
    EXPECT_EQ(im.width, expected.shape()[1]);
    EXPECT_EQ(im.rgb, expected.read_all<uint8_t>());
    ++decoded;
  }
  EXPECT_GE(decoded, 40);
  EXPECT_EQ(refused, 7);
}
