// DINOv2 and CLIP extractors: random-weight exports from tools/ (written at test time by
// tests/python/make_extractor_fixtures.py, which checks them against float64 forwards
// written from the spec) load, preprocess images as dgm-eval / EDM2 / CMMD do, and give
// the Python modules' features.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>

#include "models/feature_extractor.h"
#include "models/vit_extractors.h"
#include "test_util.h"
#include "torch_test_util.h"

using namespace sit;
using sit::testing::load_npy_tensor;
using sit::testing::relative_error;

namespace {

std::string fx(const std::string& name) {
  return std::string(SIT_EXTRACTOR_FIXTURES) + "/" + name;
}

std::unique_ptr<models::FeatureExtractor> dinov2(const std::string& resize) {
  models::ExtractorSettings s;
  s.dinov2_resize = resize;
  return models::load_extractor("dinov2", fx("dinov2.pt"), s);
}

}  // namespace

TEST(Dinov2, PilModeMatchesDgmEvalPreprocessingAndThePythonModule) {
  const auto e = dinov2("pil");
  ASSERT_EQ(e->blocks().size(), 1u);
  EXPECT_EQ(e->blocks()[0].name, "dinov2");
  EXPECT_EQ(e->blocks()[0].width, 384);  // ViT-S/14
  const at::Tensor images = load_npy_tensor(fx("images_256.npy"));
  // Pillow's uint8 bicubic is byte-exact, and /255 then (x - mean) / std in float32 is
  // ToTensor + Normalize's arithmetic: the inputs agree to the last bit
  const at::Tensor x = e->preprocess(images);
  EXPECT_EQ((x - load_npy_tensor(fx("dinov2_input_pil.npy"))).abs().max().item<float>(), 0.0f);
  const auto f = e->extract_blocks(x);
  EXPECT_LT(relative_error(f[0], load_npy_tensor(fx("dinov2_features_pil.npy"))), 1e-5);
  // batch size does not change a row
  const auto one = e->extract_images(images.narrow(0, 1, 1));
  EXPECT_LT(relative_error(one[0], f[0].narrow(0, 1, 1)), 1e-5);
  EXPECT_NE(e->identity().find("resize pil, 224 px, sha256 "), std::string::npos) << e->identity();
}

TEST(Dinov2, TorchModeMatchesEdm2Preprocessing) {
  const auto e = dinov2("torch");
  const at::Tensor x = e->preprocess(load_npy_tensor(fx("images_256.npy")));
  // LibTorch's own antialiased bicubic, as EDM2 calls it
  EXPECT_LT((x - load_npy_tensor(fx("dinov2_input_torch.npy"))).abs().max().item<float>(), 1e-5f);
  EXPECT_LT(relative_error(e->extract_blocks(x)[0],
                           load_npy_tensor(fx("dinov2_features_torch.npy"))),
            1e-5);
  EXPECT_NE(e->identity().find("resize torch"), std::string::npos);
  // EDM2's mode keeps bicubic overshoot: values beyond [0, 255] before normalising
  const at::Tensor board = (at::arange(64 * 64, at::kLong).view({64, 64}) % 2 * 255)
                               .to(at::kByte).view({1, 64, 64, 1}).expand({1, 64, 64, 3}).contiguous();
  const at::Tensor t = e->preprocess(board);
  const at::Tensor raw = (t * 0.229f + 0.485f) * 255.0f;  // channel 0 back to 0..255
  EXPECT_LT(raw.select(1, 0).min().item<float>(), -1.0f);
  EXPECT_GT(raw.select(1, 0).max().item<float>(), 256.0f);
}

TEST(Dinov2, PilFloatModeMatchesDgmEvalCleanResize) {
  const auto e = dinov2("pil-float");
  const at::Tensor x = e->preprocess(load_npy_tensor(fx("images_256.npy")));
  // Pillow's mode-F sums in double, stored as float32: the same to the last float32 bit
  EXPECT_LT((x - load_npy_tensor(fx("dinov2_input_pil_float.npy"))).abs().max().item<float>(), 1e-5f);
  EXPECT_GT((x - load_npy_tensor(fx("dinov2_input_pil.npy"))).abs().max().item<float>(), 1e-3f);
  EXPECT_NE(e->identity().find("resize pil-float"), std::string::npos);
}

TEST(Clip, CentreCropPilResizeAndThePythonModule) {
  const auto e = models::load_extractor("clip", fx("clip.pt"));
  EXPECT_EQ(e->blocks()[0].name, "clip");
  EXPECT_EQ(e->blocks()[0].width, 64);
  const at::Tensor images = load_npy_tensor(fx("images_260x300.npy"));
  const at::Tensor x = e->preprocess(images);
  EXPECT_EQ(x.sizes().vec(), (std::vector<int64_t>{3, 3, 336, 336}));
  EXPECT_EQ((x - load_npy_tensor(fx("clip_input.npy"))).abs().max().item<float>(), 0.0f);
  EXPECT_LT(relative_error(e->extract_blocks(x)[0], load_npy_tensor(fx("clip_features.npy"))),
            1e-5);
}

TEST(ExtractorGroup, OnePassGivesEachMembersBlocks) {
  std::vector<std::unique_ptr<models::FeatureExtractor>> members;
  members.push_back(dinov2("pil"));
  members.push_back(models::load_extractor("clip", fx("clip.pt")));
  const models::ExtractorGroup g(std::move(members));
  ASSERT_EQ(g.blocks().size(), 2u);
  EXPECT_EQ(g.blocks()[1].name, "clip");
  // square 256 px images serve both: DINOv2 downsamples to 224, CLIP upsamples to 336
  const at::Tensor images = load_npy_tensor(fx("images_256.npy"));
  const auto f = g.extract_images(images);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_LT(relative_error(f[0], load_npy_tensor(fx("dinov2_features_pil.npy"))), 1e-5);
  EXPECT_EQ(f[1].sizes().vec(), (std::vector<int64_t>{3, 64}));
  EXPECT_NE(g.identity().find("; clip "), std::string::npos) << g.identity();
}

TEST(Extractors, BadFilesAndSettingsAreExplained) {
  test::expect_error([] { dinov2("bilinear"); }, {"resize mode must be pil", "got 'bilinear'"});
  // a CLIP file loaded as DINOv2 does not take 224 px input
  test::expect_error([] { models::load_extractor("dinov2", fx("clip.pt")); },
                     {"clip.pt", "does not take a (1, 3, 224, 224)", "tools/export_dinov2.py"});
  test::expect_error([] { models::load_extractor("clip", fx("manifest.json")); },
                     {"manifest.json", "not a TorchScript file"});
  test::expect_error([] { models::load_extractor("dino", fx("dinov2.pt")); },
                     {"must be one of inception, dinov2, clip", "got 'dino'"});
  const auto e = dinov2("pil");
  test::expect_error([&] { e->preprocess(at::zeros({1, 8, 8, 3}, at::kFloat)); },
                     {"uint8 RGB images"});
}
