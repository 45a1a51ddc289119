// Inception preprocessing and feature extraction against fixtures that
// tests/python/make_inception_fixtures.py writes at test time: a NumPy TF1 resize, a
// random-weight canonical extractor (tools/export_inception.py) and a random-weight
// module with the structure of NVIDIA's inception-2015-12-05.pt.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>

#include "common/error.h"
#include "models/inception.h"
#include "torch_test_util.h"

using namespace sit;
using namespace sit::models;

namespace {

std::string fx(const std::string& name) {
  return std::string(SIT_INCEPTION_FIXTURES) + "/" + name;
}

at::Tensor load(const std::string& name) {
  return sit::testing::load_npy_tensor(fx(name + ".npy"));
}

}  // namespace

TEST(Tf1Resize, UpsamplingByHand) {
  // 2x2 -> 3x3: scale 2/3, source rows/cols 0, 0.667 (0..1), 1.333 (clamped to 1..1)
  const at::Tensor img = at::tensor({0.f, 30.f, 60.f, 90.f}).view({1, 2, 2, 1});
  const at::Tensor r = tf1_resize_bilinear(img, 3, 3).view({3, 3});
  const float want[3][3] = {{0, 20, 30}, {40, 60, 70}, {60, 80, 90}};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      EXPECT_NEAR(r[i][j].item<float>(), want[i][j], 1e-4) << i << j;
}

TEST(Tf1Resize, DownsamplingAndOddSizesByHand) {
  // 1x5 -> 1x2: scale 2.5, columns 0 and 2.5 (lerp between 2 and 3); no antialiasing
  const at::Tensor row = at::tensor({0.f, 10.f, 20.f, 30.f, 40.f}).view({1, 1, 5, 1});
  const at::Tensor r = tf1_resize_bilinear(row, 1, 2).view({2});
  EXPECT_FLOAT_EQ(r[0].item<float>(), 0.f);
  EXPECT_FLOAT_EQ(r[1].item<float>(), 25.f);
  // 3 -> 5: scale 0.6, sources 0, 0.6, 1.2, 1.8, 2.4 (upper clamped to 2)
  const at::Tensor col = at::tensor({0.f, 100.f, 50.f}).view({1, 3, 1, 1});
  const at::Tensor c = tf1_resize_bilinear(col, 5, 1).view({5});
  const float want[5] = {0, 60, 90, 60, 50};
  for (int i = 0; i < 5; ++i)
    EXPECT_NEAR(c[i].item<float>(), want[i], 1e-4) << i;
}

TEST(Tf1Resize, MatchesIndependentNumpyImplementation) {
  const at::Tensor r = tf1_resize_bilinear(load("images"), 299, 299);
  const at::Tensor want = load("resized");
  ASSERT_EQ(r.sizes(), want.sizes());
  EXPECT_LE((r - want).abs().max().item<float>(), 1e-4f);
}

TEST(InceptionPreprocess, Size299PassesUnchangedAndNormalises) {
  const at::Tensor img = load("images_299");
  const at::Tensor x = inception_preprocess(img);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{2, 3, 299, 299}));
  EXPECT_TRUE(at::equal(x, (img.to(at::kFloat).permute({0, 3, 1, 2}) - 128) / 128));
  const at::Tensor white = at::full({1, 5, 5, 3}, 255, at::kByte);
  EXPECT_FLOAT_EQ(inception_preprocess(white).max().item<float>(), 0.9921875f);
  EXPECT_THROW(inception_preprocess(at::zeros({1, 5, 5, 4}, at::kByte)), sit::Error);
}

class ExtractorTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ExtractorTest, FeaturesMatchPythonModule) {
  const std::string tag = GetParam();
  const InceptionExtractor e(
      fx(tag == std::string("canonical") ? "canonical.pt" : "nvidia_like.pt"));
  EXPECT_EQ(e.kind(), tag);
  EXPECT_EQ(e.sha256().size(), 64u);
  const InceptionFeatures f = e.extract(load("images"));
  EXPECT_LT(sit::testing::relative_error(f.pool, load(tag + "_pool")), 1e-5) << tag;
  // the spatial rows are H, W, C (channel fastest): a C, H, W flatten fails this
  EXPECT_LT(sit::testing::relative_error(f.spatial, load(tag + "_spatial")), 1e-5) << tag;
  EXPECT_LT(sit::testing::relative_error(f.logits, load(tag + "_logits")), 1e-5) << tag;
  EXPECT_EQ(f.spatial.sizes(), (std::vector<int64_t>{6, 2023}));
}

INSTANTIATE_TEST_SUITE_P(BothKinds, ExtractorTest, ::testing::Values("canonical", "nvidia"));

TEST(InceptionExtractor, SpatialFlattenOrderIsHeightWidthChannel) {
  // Channel-major flattening of the same tap would put channel 1 of pixel (0, 0) at
  // index 289; H, W, C puts it at index 1.
  const InceptionExtractor e(fx("nvidia_like.pt"));
  const InceptionFeatures f = e.extract(load("images"));
  const at::Tensor s = f.spatial.view({6, 17, 17, 7});
  const at::Tensor want = load("nvidia_spatial").view({6, 17, 17, 7});
  EXPECT_LT(sit::testing::relative_error(s, want), 1e-5);
  EXPECT_FALSE(at::allclose(f.spatial, want.permute({0, 3, 1, 2}).reshape({6, 2023}), 1e-3, 1e-3));
}

TEST(InceptionExtractor, BadFilesAreExplained) {
  const std::string path = ::testing::TempDir() + "/not_torchscript.pt";
  std::ofstream(path) << "hello";
  try {
    InceptionExtractor e(path);
    FAIL() << "no error";
  } catch (const sit::Error& err) {
    EXPECT_NE(std::string(err.what()).find("not a TorchScript file"), std::string::npos)
        << err.what();
  }
}
