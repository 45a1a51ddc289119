// Pillow's bicubic resize (uint8 and mode F) and the centre crop, against the worked
// values of metrics_modern.md section 6 and against Pillow itself (fixtures written by
// tests/python/make_image_fixtures.py with python3-pil).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "reference_stats/image_resize.h"
#include "reference_stats/npy.h"
#include "test_util.h"

using namespace sit;

namespace {

/// The spec's 8 x 8 example: value at row y, column x = (17x + 29y + 3xy) mod 256.
std::vector<uint8_t> example_8x8() {
  std::vector<uint8_t> v(64);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x)
      v[y * 8 + x] = static_cast<uint8_t>((17 * x + 29 * y + 3 * x * y) % 256);
  return v;
}

std::vector<int32_t> fixed_row(const io::ResampleCoefficients& c, int64_t o) {
  const int32_t* q = c.fixed.data() + o * c.taps;
  return {q, q + c.count[o]};
}

}  // namespace

TEST(PilBicubic, CoefficientsOfTheWorkedExamples) {
  const auto c = io::pil_bicubic_coefficients(8, 3);
  EXPECT_EQ(c.taps, 13);
  EXPECT_EQ(c.first, (std::vector<int64_t>{0, 0, 1}));
  EXPECT_EQ(c.count, (std::vector<int64_t>{7, 8, 7}));
  EXPECT_EQ(fixed_row(c, 0),
            (std::vector<int32_t>{1357984, 1678094, 1096189, 261175, -104842, -91194, -3102}));
  EXPECT_EQ(fixed_row(c, 1), (std::vector<int32_t>{-113649, 59548, 732425, 1418827, 1418827,
                                                   732425, 59548, -113649}));
  EXPECT_EQ(fixed_row(c, 2),
            (std::vector<int32_t>{-3102, -91194, -104842, 261175, 1096189, 1678094, 1357984}));
  const double w0[] = {0.3237686733, 0.4000887443, 0.2613518710, 0.0622688951,
                       -0.0249963023, -0.0217423458, -0.0007395356};
  for (int j = 0; j < 7; ++j)
    EXPECT_NEAR(c.weights[j], w0[j], 1e-10);

  const auto up = io::pil_bicubic_coefficients(3, 5);  // edge taps dropped, rest renormalised
  EXPECT_EQ(fixed_row(up, 0), (std::vector<int32_t>{4510855, -316551}));
  EXPECT_EQ(fixed_row(up, 1), (std::vector<int32_t>{2723168, 1658941, -187805}));
  EXPECT_EQ(fixed_row(up, 2), (std::vector<int32_t>{0, 4194304, 0}));

  // first rows and the middle output of the sizes DINOv2 and CLIP inputs come from
  struct Case {
    int64_t in, out, ksize, mid;
    std::vector<int32_t> first, middle;
  };
  const Case cases[] = {
      {256, 224, 7, 112, {3739072, 581941, -126709}, {-52750, 142921, 3658688, 569430, -123985}},
      {512, 224, 11, 112, {1646897, 1861860, 852664, -28900, -130367, -7849},
       {-89779, -101914, 486420, 1531172, 1731030, 792749, -26870, -121206, -7298}},
      {64, 224, 5, 112, {4652420, -458116}, {-171960, 1532358, 3143435, -309529}},
      {256, 336, 5, 168, {4404702, -210398}, {-26183, 357932, 4056311, -193756}},
      {512, 336, 9, 168, {2702304, 1689853, -150278, -47576},
       {-177407, 378573, 2572698, 1608805, -143070, -45294}},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(testing::Message() << k.in << " -> " << k.out);
    const auto r = io::pil_bicubic_coefficients(k.in, k.out);
    EXPECT_EQ(r.taps, k.ksize);
    EXPECT_EQ(r.first[0], 0);
    EXPECT_EQ(fixed_row(r, 0), k.first);
    EXPECT_EQ(fixed_row(r, k.mid), k.middle);
  }
  // the fixed-point sums are not renormalised
  const auto s = io::pil_bicubic_coefficients(512, 224);
  int64_t sum = 0;
  for (int32_t q : fixed_row(s, 0))
    sum += q;
  EXPECT_EQ(sum, 4194305);
}

TEST(PilBicubic, WorkedExampleDownAndUp) {
  const auto in = example_8x8();
  // the horizontal pass alone (height unchanged) gives the spec's intermediate image
  const auto mid = io::pil_bicubic_resize(in.data(), 8, 8, 1, 8, 3);
  EXPECT_EQ(mid, (std::vector<uint8_t>{15, 59, 104, 47, 99, 151, 79, 138, 198, 110, 185, 163,
                                       148, 176, 41, 186, 129, 72, 202, 82, 126, 166, 77, 179}));
  const auto out = io::pil_bicubic_resize(in.data(), 8, 8, 1, 3, 3);
  EXPECT_EQ(out, (std::vector<uint8_t>{43, 99, 153, 132, 168, 112, 188, 95, 121}));
  const auto up = io::pil_bicubic_resize(out.data(), 3, 3, 1, 5, 5);
  EXPECT_EQ(up, (std::vector<uint8_t>{32,  53,  94,  137, 161, 68,  90,  126, 137, 139, 129, 147, 168,
                                      133, 108, 176, 155, 124, 117, 116, 200, 155, 89,  106, 124}));
  // every channel alike (RGB)
  std::vector<uint8_t> rgb(8 * 8 * 3);
  for (size_t i = 0; i < in.size(); ++i)
    for (int c = 0; c < 3; ++c)
      rgb[i * 3 + c] = in[i];
  const auto out_rgb = io::pil_bicubic_resize(rgb.data(), 8, 8, 3, 3, 3);
  for (size_t i = 0; i < out.size(); ++i)
    for (int c = 0; c < 3; ++c)
      EXPECT_EQ(out_rgb[i * 3 + c], out[i]);
  // mode F: no fixed point, no rounding
  std::vector<float> f(in.begin(), in.end());
  const auto out_f = io::pil_bicubic_resize(f.data(), 8, 8, 1, 3, 3);
  const double expect_f[] = {43.24301,  99.31892,  153.33954, 132.08386, 167.71881,
                             112.3912,  187.78928, 94.57291,  121.134674};
  for (int i = 0; i < 9; ++i)
    EXPECT_NEAR(out_f[i], expect_f[i], 1e-4);
}

TEST(PilBicubic, SameSizeIsACopyAndOvershootIsClipped) {
  const auto in = example_8x8();
  EXPECT_EQ(io::pil_bicubic_resize(in.data(), 8, 8, 1, 8, 8), in);
  std::vector<uint8_t> board(32 * 32);
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x)
      board[y * 32 + x] = ((x + y) % 2) * 255;
  const auto up = io::pil_bicubic_resize(board.data(), 32, 32, 1, 70, 70);
  int zeros = 0, full = 0;
  for (uint8_t v : up) {
    zeros += v == 0;
    full += v == 255;
  }
  // the kernel's negative lobes overshoot on a checkerboard: clipped, never wrapped
  EXPECT_GT(zeros, 0);
  EXPECT_GT(full, 0);
  std::vector<float> fb(board.begin(), board.end());
  const auto up_f = io::pil_bicubic_resize(fb.data(), 32, 32, 1, 70, 70);
  EXPECT_LT(*std::min_element(up_f.begin(), up_f.end()), 0.0f);    // mode F keeps overshoot
  EXPECT_GT(*std::max_element(up_f.begin(), up_f.end()), 255.0f);
}

TEST(PilBicubic, ByteExactAgainstPillow) {
  const std::string dir = std::string(SIT_IMAGE_FIXTURES) + "/resize";
  std::ifstream in(dir + "/manifest.json");
  ASSERT_TRUE(in) << "missing " << dir << "/manifest.json (the image_fixtures test makes it)";
  const nlohmann::json manifest = nlohmann::json::parse(in);
  ASSERT_GE(manifest.size(), 9u);
  int resized = 0, boxed = 0, cropped = 0;
  for (const auto& e : manifest) {
    SCOPED_TRACE(e["input"].get<std::string>());
    io::NpyArray image = io::open_npy(dir + "/" + e["input"].get<std::string>());
    if (e.contains("box") || e.contains("adm_crop")) {
      const int64_t h = image.shape()[0], w = image.shape()[1];
      const auto pixels = image.read_all<uint8_t>();
      if (e.contains("box")) {
        EXPECT_EQ(io::pil_resize(pixels.data(), h, w, 3, e["size"][1], e["size"][0],
                                 io::PilFilter::kBox),
                  io::open_npy(dir + "/" + e["box"].get<std::string>()).read_all<uint8_t>());
        ++boxed;
      } else {
        EXPECT_EQ(io::adm_center_crop(pixels.data(), h, w, 3, e["crop"]),
                  io::open_npy(dir + "/" + e["adm_crop"].get<std::string>()).read_all<uint8_t>());
        ++cropped;
      }
      continue;
    }
    ++resized;
    const int64_t h = image.shape()[0], w = image.shape()[1];
    const int64_t ow = e["size"][0], oh = e["size"][1];
    const auto pixels = image.read_all<uint8_t>();
    EXPECT_EQ(io::pil_bicubic_resize(pixels.data(), h, w, 3, oh, ow),
              io::open_npy(dir + "/" + e["pil"].get<std::string>()).read_all<uint8_t>());
    // mode F: the same double sums stored as float32 between passes; the sums' order is
    // Pillow's, so only the last float32 bit may differ
    const std::vector<float> f(pixels.begin(), pixels.end());
    const auto got = io::pil_bicubic_resize(f.data(), h, w, 3, oh, ow);
    const auto expect = io::open_npy(dir + "/" + e["pil_f"].get<std::string>()).read_all<float>();
    ASSERT_EQ(got.size(), expect.size());
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i)
      worst = std::max(worst, std::fabs(static_cast<double>(got[i]) - expect[i]) /
                                  std::max(1.0, std::fabs(static_cast<double>(expect[i]))));
    EXPECT_LT(worst, 1e-6);
  }
  EXPECT_GE(resized, 9);
  EXPECT_EQ(boxed, 2);
  EXPECT_EQ(cropped, 6);
}

TEST(PilBicubic, BadSizesAndCropsAreExplained) {
  const auto in = example_8x8();
  test::expect_error([&] { io::pil_bicubic_resize(in.data(), 8, 8, 1, 0, 3); },
                     {"sizes must be positive", "8x8x1 -> 0x3"});
  test::expect_error([&] { io::center_crop(in.data(), 8, 8, 1, 9); },
                     {"9x9 crop", "got 8x8"});
  // crop offsets floor: 8 x 7 -> rows 0..5 + 1 ... as (H - S) // 2
  std::vector<uint8_t> v(7 * 8);
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<uint8_t>(i);
  const auto c = io::center_crop(v.data(), 7, 8, 1, 4);  // top 1, left 2
  EXPECT_EQ(c, (std::vector<uint8_t>{10, 11, 12, 13, 18, 19, 20, 21, 26, 27, 28, 29, 34, 35, 36, 37}));
}
