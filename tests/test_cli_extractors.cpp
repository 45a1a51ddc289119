// evaluate / features / ref-stats / metrics with Inception, DINOv2 and CLIP together
// (random-weight exports of tools/), end to end through the sit-eval program: one pass
// over the images gives every extractor's features, the two routes (evaluate on images,
// metrics on feature files) agree, and bad inputs are refused before any extraction.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_util.h"
// after test_util.h
#include "cli_runner.h"
#include "reference_stats/image_resize.h"
#include "reference_stats/npy.h"

namespace fs = std::filesystem;
using namespace sit;

namespace {

std::string ef(const std::string& name) {
  return std::string(SIT_EXTRACTOR_FIXTURES) + "/" + name;
}

const std::string kFiles = " --inception " + std::string(SIT_INCEPTION_FIXTURES) +
                           "/canonical.pt --dinov2 " + ef("dinov2.pt") + " --clip " +
                           ef("clip.pt") + " ";

/// An ADM-style batch: n smooth 48 x 48 images (arr_0) and labels i % classes (arr_1).
void write_batch(const fs::path& path, int n, uint32_t seed, int classes, bool labels = true) {
  std::vector<uint8_t> px(static_cast<size_t>(n) * 48 * 48 * 3);
  uint32_t s = seed;
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < 48; ++y)
      for (int x = 0; x < 48; ++x)
        for (int c = 0; c < 3; ++c) {
          s = s * 1664525u + 1013904223u;
          const int v = (x * (3 + i % 5) + y * (2 + c) + 17 * i) % 200 + static_cast<int>(s >> 27);
          px[((static_cast<size_t>(i) * 48 + y) * 48 + x) * 3 + c] = static_cast<uint8_t>(v);
        }
  std::vector<int64_t> y(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i)
    y[i] = i % classes;
  io::NpzWriter w(path.string());
  w.add("arr_0", {n, 48, 48, 3}, px.data());
  if (labels) w.add("arr_1", {n}, y.data());
  w.close();
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

}  // namespace

TEST(EvaluateModern, OnePassOfThreeExtractorsEqualsTheFeatureFileRoute) {
  const fs::path d = test::temp_dir();
  write_batch(d / "real.npz", 8, 1, 4);
  write_batch(d / "fake.npz", 8, 2, 4);
  // reference statistics of all three extractors in one pass (CLIP's rows: CMMD)
  CliRun r = run("ref-stats " + (d / "real.npz").string() + " --out " + (d / "ref.npz").string() +
                 " --extractor inception,dinov2,clip" + kFiles + "--batch-size 3");
  ASSERT_EQ(r.code, 0) << r.err;
  const io::NpzReader z((d / "ref.npz").string());
  for (const char* key : {"mu", "sigma", "mu_s", "sigma_s", "mu_dinov2", "sigma_dinov2", "clip"})
    EXPECT_TRUE(z.has(key)) << key;
  EXPECT_EQ(z.open("mu_dinov2").shape(), (std::vector<int64_t>{384}));
  EXPECT_EQ(z.open("clip").shape(), (std::vector<int64_t>{8, 64}));
  // evaluate picks the extractors the metrics need
  r = run("evaluate " + (d / "ref.npz").string() + " " + (d / "fake.npz").string() +
          " --metrics fid,fd_dinov2,cmmd --json " + (d / "e.json").string() + kFiles);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "FD_DINOv2: ") && contains(r.out, "CMMD: ")) << r.out;
  // the other route: feature files of both sets, then metrics
  for (const char* set : {"real", "fake"}) {
    r = run(std::string("features ") + (d / (std::string(set) + ".npz")).string() + " --out " +
            (d / (std::string(set) + ".h5")).string() + " --extractor inception,dinov2,clip" +
            kFiles + "--batch-size 5 --quiet");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(contains(r.err, "pool, spatial, logits, dinov2, clip, labels")) << r.err;
  }
  r = run("metrics --ref " + (d / "real.h5").string() + " --samples " + (d / "fake.h5").string() +
          " --metrics fid,fd_dinov2,cmmd,pr_dinov2,intra_fid --json " + (d / "m.json").string());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto e = read_json(d / "e.json"), m = read_json(d / "m.json");
  for (const char* key : {"fid", "fd_dinov2", "cmmd"}) {
    ASSERT_TRUE(e.contains(key) && m.contains(key)) << key;
    EXPECT_NEAR(e[key].get<double>(), m[key].get<double>(), 1e-8 * std::abs(m[key].get<double>()))
        << key;
    EXPECT_GT(m[key].get<double>(), 0.0) << key;
  }
  EXPECT_TRUE(m.contains("precision_dinov2") && m.contains("intra_fid"));
  // every result names the extractor files it came from
  for (const auto* j : {&e, &m}) {
    ASSERT_TRUE(j->contains("extractors")) << j->dump();
    EXPECT_TRUE(contains((*j)["extractors"]["dinov2"].get<std::string>(), "resize pil, sha256 "));
    EXPECT_TRUE(contains((*j)["extractors"]["clip"].get<std::string>(), "sha256 "));
    EXPECT_TRUE(contains((*j)["extractors"]["inception"].get<std::string>(), "sha256 "));
  }
  EXPECT_TRUE(contains(r.err, "intra-FID: mean FID of 4 classes")) << r.err;
  EXPECT_TRUE(contains(r.err, "2..2 samples per class")) << r.err;
  // EDM2's pickle of the reference's statistics scores alike
  r = run("convert-ref " + (d / "ref.npz").string() + " --out " + (d / "ref.pkl").string());
  ASSERT_EQ(r.code, 0) << r.err;
  r = run("evaluate " + (d / "ref.pkl").string() + " " + (d / "fake.npz").string() +
          " --metrics fd_dinov2 --json " + (d / "p.json").string() + kFiles + "--quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NEAR(read_json(d / "p.json")["fd_dinov2"].get<double>(), e["fd_dinov2"].get<double>(),
              1e-9 * e["fd_dinov2"].get<double>());
}

TEST(EvaluateModern, BadInputsAreRefusedBeforeExtraction) {
  const fs::path d = test::temp_dir();
  write_batch(d / "real.npz", 8, 1, 4);
  write_batch(d / "fake.npz", 8, 2, 4);
  write_batch(d / "unlabelled.npz", 8, 2, 4, /*labels=*/false);
  write_batch(d / "one_class.npz", 8, 2, 1);
  CliRun r = run("features " + (d / "real.npz").string() + " --out " + (d / "real.h5").string() +
                 " --extractor inception,dinov2" + kFiles + "--quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  // a reference whose DINOv2 statistics are 10-d
  {
    std::vector<double> mu(10, 0.0), sigma(100, 0.0);
    io::NpzWriter w((d / "wide.npz").string());
    w.add("mu_dinov2", {10}, mu.data());
    w.add("sigma_dinov2", {10, 10}, sigma.data());
    w.close();
  }
  struct Case {
    std::string args;
    std::vector<std::string> fragments;
  };
  const std::string real = (d / "real.h5").string() + " ";
  const Case cases[] = {
      {"evaluate " + real + (d / "fake.npz").string() + " --metrics fd_dinov2 --inception x.pt",
       {"no dinov2 file: pass --dinov2 FILE", "tools/export_dinov2.py", "SIT_EVAL_DINOV2"}},
      {"evaluate " + real + (d / "fake.npz").string() + " --metrics fd_dinov2 --dinov2 " +
           (d / "missing.pt").string(),
       {"--dinov2 ", "missing.pt: no such file", "tools/export_dinov2.py"}},
      {"evaluate " + real + (d / "fake.npz").string() + " --metrics fid --inception " + ef("clip.pt"),
       {"--inception: ", "not an Inception extractor", "pass it as --dinov2 / --clip"}},
      {"evaluate " + (d / "wide.npz").string() + " " + (d / "fake.npz").string() +
           " --metrics fd_dinov2" + kFiles,
       {"'mu_dinov2' has 10 dimensions, but the extractor gives 384 for 'dinov2'"}},
      {"evaluate " + real + (d / "unlabelled.npz").string() + " --metrics intra_fid" + kFiles,
       {"intra_fid: ", "unlabelled.npz has no labels"}},
      {"evaluate " + real + (d / "one_class.npz").string() + " --metrics intra_fid" + kFiles,
       {"class 1 has 0 generated samples"}},
      {"evaluate " + real + (d / "fake.npz").string() + " --metrics fd_dinov2 --dinov2-resize torch" +
           kFiles,
       {"real.h5: its features were made by", "resize pil", "resize torch", "--dinov2 file"}},
      {"evaluate " + real + (d / "fake.npz").string() + " --metrics fd_dinov2 --dinov2-resize box" +
           kFiles,
       {"resize mode must be pil", "got 'box'"}},
      {"ref-stats " + (d / "real.npz").string() + " --out " + (d / "r.npz").string() +
           " --extractor inception,dino" + kFiles,
       {"--extractor: feature extractor must be one of inception, dinov2, clip; got 'dino'"}},
  };
  // ref-stats records its extractors: another resize mode is refused against it
  r = run("ref-stats " + (d / "real.npz").string() + " --extractor dinov2 --quiet" + kFiles +
          "--out " + (d / "ref_pil.npz").string());
  ASSERT_EQ(r.code, 0) << r.err;
  r = run("evaluate " + (d / "ref_pil.npz").string() + " " + (d / "fake.npz").string() +
          " --metrics fd_dinov2 --dinov2-resize torch" + kFiles);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "ref_pil.npz: its features were made by") &&
              contains(r.err, "resize torch")) << r.err;
  ::unsetenv("SIT_EVAL_DINOV2");
  for (const auto& c : cases) {
    r = run(c.args);
    EXPECT_EQ(r.code, 1) << c.args << "\n" << r.err;
    EXPECT_TRUE(contains(r.err, "error: ")) << r.err;
    for (const auto& f : c.fragments)
      EXPECT_TRUE(contains(r.err, f)) << c.args << "\nmissing: " << f << "\n" << r.err;
    EXPECT_FALSE(contains(r.err, "/8 images")) << "extraction started: " << r.err;
  }
}

TEST(EvaluateModern, CenterCropAsTheImageNetReferencesWereMade) {
  // --center-crop applies ADM's center_crop_arr to each image before every extractor:
  // the features equal those of images cropped beforehand (io::adm_center_crop, tested
  // byte-exact against Pillow in test_images), and --keep-images stores the crops.
  const fs::path d = test::temp_dir();
  std::vector<uint8_t> px(4 * 70 * 90 * 3), crops;
  for (size_t i = 0; i < px.size(); ++i)
    px[i] = static_cast<uint8_t>((i * 2654435761u) >> 24);
  for (int i = 0; i < 4; ++i) {
    const auto c = io::adm_center_crop(px.data() + i * 70 * 90 * 3, 70, 90, 3, 32);
    crops.insert(crops.end(), c.begin(), c.end());
  }
  {
    io::NpzWriter w((d / "big.npz").string());
    w.add("arr_0", {4, 70, 90, 3}, px.data());
    w.close();
    io::NpzWriter c((d / "cropped.npz").string());
    c.add("arr_0", {4, 32, 32, 3}, crops.data());
    c.close();
  }
  CliRun r = run("ref-stats " + (d / "big.npz").string() + " --center-crop 32 --keep-images 4" +
                 " --extractor clip" + kFiles + "--quiet --out " + (d / "ref_big.npz").string());
  ASSERT_EQ(r.code, 0) << r.err;
  r = run("ref-stats " + (d / "cropped.npz").string() + " --extractor clip" + kFiles +
          "--quiet --out " + (d / "ref_cropped.npz").string());
  ASSERT_EQ(r.code, 0) << r.err;
  const io::NpzReader a((d / "ref_big.npz").string()), b((d / "ref_cropped.npz").string());
  EXPECT_EQ(a.open("clip").read_all<float>(), b.open("clip").read_all<float>());
  io::NpyArray kept = a.open("arr_0");
  EXPECT_EQ(kept.shape(), (std::vector<int64_t>{4, 32, 32, 3}));
  EXPECT_EQ(kept.read_all<uint8_t>(), crops);
  // the reference cache keys the crop: cropped and uncropped runs never share rows
  const std::string cache = " --cache-dir " + (d / "cache").string() + " --quiet --json ";
  r = run("evaluate " + (d / "big.npz").string() + " " + (d / "cropped.npz").string() +
          " --metrics cmmd" + kFiles + cache + (d / "plain.json").string());
  ASSERT_EQ(r.code, 0) << r.err;
  r = run("evaluate " + (d / "big.npz").string() + " " + (d / "cropped.npz").string() +
          " --metrics cmmd --center-crop 32" + kFiles + cache + (d / "crop.json").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_GT(read_json(d / "plain.json")["cmmd"].get<double>(), 1e-6);
  EXPECT_NEAR(read_json(d / "crop.json")["cmmd"].get<double>(), 0.0, 1e-9);  // the same images
  r = run("features " + (d / "big.npz").string() + " --center-crop 0 --extractor clip" + kFiles +
          "--out " + (d / "x.h5").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "--center-crop")) << r.err;
}

TEST(EvaluateModern, InspectNamesTheNewFilesAndNumbersNeverComeOutNan) {
  const fs::path d = test::temp_dir();
  CliRun r = run("inspect " + ef("dinov2.pt"));
  EXPECT_TRUE(contains(r.out, "a dinov2 feature extractor (384-d features; use it as --dinov2)"))
      << r.out << r.err;
  r = run("inspect " + ef("clip.pt"));
  EXPECT_TRUE(contains(r.out, "a clip feature extractor (64-d")) << r.out << r.err;
  // an EDM2 reference pickle, from statistics of rows
  std::vector<float> rows(40 * 4);
  for (size_t i = 0; i < rows.size(); ++i)
    rows[i] = static_cast<float>((i * 37) % 11) - 5.0f;
  {
    io::NpzWriter w((d / "rows.npz").string());
    w.add("pool", {40, 4}, rows.data());
    w.close();
  }
  r = run("convert-ref " + (d / "rows.npz").string() + " --out " + (d / "ref.pkl").string());
  ASSERT_EQ(r.code, 0) << r.err;
  r = run("inspect " + (d / "ref.pkl").string());
  EXPECT_TRUE(contains(r.out, "EDM2 reference statistics pickle of 40 images") &&
              contains(r.out, "fid: mu [4], sigma [4, 4]"))
      << r.out << r.err;
  // `metrics` with an EDM2 pickle (read on sit-eval-torch's side): the rows' own statistics
  r = run("metrics --metrics fid --ref " + (d / "ref.pkl").string() + " --samples " +
          (d / "rows.npz").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "FID: ")) << r.out;
  EXPECT_LT(std::abs(std::stod(r.out.substr(r.out.find("FID: ") + 5))), 1e-9) << r.out;
  // stored statistics with a NaN are refused when read, naming file and key
  {
    std::vector<double> mu = {0, std::nan(""), 0, 0}, sigma(16, 0.0);
    io::NpzWriter w((d / "nan.npz").string());
    w.add("mu", {4}, mu.data());
    w.add("sigma", {4, 4}, sigma.data());
    w.close();
  }
  r = run("metrics --ref " + (d / "nan.npz").string() + " --samples " + (d / "rows.npz").string() +
          " --metrics fid");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "nan.npz: 'mu' holds NaN or Inf (entry 1)")) << r.err;
  // features so large that KID's cubic kernel overflows: an error, not "KID: nan"
  for (auto& v : rows)
    v *= 1e30f;
  {
    io::NpzWriter w((d / "huge.npz").string());
    w.add("pool", {40, 4}, rows.data());
    w.close();
  }
  r = run("metrics --ref " + (d / "rows.npz").string() + " --samples " +
          (d / "huge.npz").string() + " --metrics kid --kid-subset-size 20");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(contains(r.err, "KID: the value (kid) is not finite") && !contains(r.out, "nan"))
      << r.out << r.err;
}
