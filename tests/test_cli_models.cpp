// End to end with a random SiT-S/2 and a tiny VAE (fixtures of make_model_fixtures.py):
// `sample` writes a valid ADM npz, PNGs and latents that agree with each other, sweeps
// run image models (with --save-images, resumable), and `inspect` describes checkpoints.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <png.h>

#include <filesystem>
#include <fstream>

#include "test_util.h"
// after test_util.h
#include "cli_runner.h"
#include "models/vae.h"
#include "reference_stats/npy.h"

namespace fs = std::filesystem;
using namespace sit;

namespace {

std::string mf(const std::string& name) {
  return std::string(SIT_MODEL_FIXTURES) + "/" + name;
}

std::vector<uint8_t> read_u8(const io::NpzReader& z, const std::string& key,
                             std::vector<int64_t>* shape) {
  io::NpyArray a = z.open(key);
  *shape = a.shape();
  int64_t n = 1;
  for (int64_t s : a.shape())
    n *= s;
  std::vector<uint8_t> v(static_cast<size_t>(n));
  a.read_rows_u8(0, a.shape()[0], v.data());
  return v;
}

std::vector<uint8_t> read_png(const std::string& path, int64_t* h, int64_t* w) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  EXPECT_NE(png_image_begin_read_from_file(&image, path.c_str()), 0) << path;
  image.format = PNG_FORMAT_RGB;
  std::vector<uint8_t> pixels(PNG_IMAGE_SIZE(image));
  EXPECT_NE(png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr), 0) << path;
  *h = image.height;
  *w = image.width;
  return pixels;
}

const std::string kSiT = "--model sit:SiT-S/2 --ckpt " + mf("sit_s2_train.pt") + " --vae " +
                         mf("vae_new") + " --image-size 32 ";

/// Runs `sweep DIR/s.toml --save-images npz --out DIR/run`; *line: its first result row.
::testing::AssertionResult sweep_first_record(const fs::path& d, std::string* line) {
  const CliRun r = run("sweep " + (d / "s.toml").string() + " --quiet --save-images npz --out " +
                       (d / "run").string());
  if (r.code != 0) return ::testing::AssertionFailure() << "sweep: " << r.err;
  std::ifstream in(d / "run" / "results.jsonl");
  std::getline(in, *line);
  return ::testing::AssertionSuccess();
}

/// A reference made of images of the random SiT-S/2 + tiny VAE (16 px, Euler ODE):
/// `sample` writes DIR/ref_images.npz, then `ref-stats ... REF_STATS_ARGS` DIR/ref.npz.
::testing::AssertionResult sampled_reference(const fs::path& d, int n, int seed, int steps,
                                             const std::string& ref_stats_args) {
  CliRun r = run("sample ODE --model sit:SiT-S/2 --ckpt " + mf("sit_s2.safetensors") + " --vae " +
                 mf("vae_new") + " --image-size 16 --num-samples " + std::to_string(n) +
                 " --global-seed " + std::to_string(seed) +
                 " --sampling-method euler --num-sampling-steps " + std::to_string(steps) +
                 " --out " + (d / "ref_images.npz").string());
  if (r.code != 0) return ::testing::AssertionFailure() << "sample: " << r.err;
  r = run("ref-stats " + (d / "ref_images.npz").string() + " --quiet " + ref_stats_args +
          " --out " + (d / "ref.npz").string());
  if (r.code != 0) return ::testing::AssertionFailure() << "ref-stats: " << r.err;
  return ::testing::AssertionSuccess();
}

}  // namespace

TEST(SampleSiT, AdmNpzPngsAndLatentsAgree) {
  const fs::path d = sit::test::temp_dir("sample_sit");
  const CliRun r = run("sample SDE " + kSiT +
                       "--num-samples 5 --batch-size 2 --num-sampling-steps 4 --cfg-scale 1.5 "
                       "--out " +
                       (d / "s.npz").string() + " --sample-dir " + (d / "png").string() +
                       " --save-latents " + (d / "lat.npz").string());
  ASSERT_EQ(r.code, 0) << r.err;
  const io::NpzReader z((d / "s.npz").string());
  EXPECT_EQ(z.keys(), (std::vector<std::string>{"arr_0", "arr_1"}));
  std::vector<int64_t> shape;
  const std::vector<uint8_t> images = read_u8(z, "arr_0", &shape);
  EXPECT_EQ(shape, (std::vector<int64_t>{5, 32, 32, 3}));
  const auto labels = z.open("arr_1").read_all<int64_t>();
  ASSERT_EQ(labels.size(), 5u);
  for (int64_t y : labels)
    EXPECT_TRUE(y >= 0 && y < 1000) << y;

  // Each PNG holds the same pixels as arr_0.
  for (int i = 0; i < 5; ++i) {
    int64_t h = 0, w = 0;
    const auto png =
        read_png((d / "png" / ("00000" + std::to_string(i) + ".png")).string(), &h, &w);
    ASSERT_EQ(h, 32);
    ASSERT_EQ(w, 32);
    EXPECT_TRUE(std::equal(png.begin(), png.end(), images.begin() + i * 32 * 32 * 3)) << i;
  }
  // Decoding the saved latents reproduces the images, decoded in the sampler's batches
  // (2, 2, 1) with its one thread: convolution kernels may differ with the batch shape,
  // and a different rounding can move a pixel across a uint8 step.
  const io::NpzReader lat((d / "lat.npz").string());
  io::NpyArray l = lat.open("latents");
  EXPECT_EQ(l.shape(), (std::vector<int64_t>{5, 4, 16, 16}));
  const at::Tensor latents = at::tensor(l.read_all<float>(), at::kFloat).view({5, 4, 16, 16});
  const auto vae = models::VaeDecoder::load(mf("vae_new"));
  at::set_num_threads(1);
  std::vector<at::Tensor> parts;
  for (int64_t s = 0; s < 5; s += 2)
    parts.push_back(models::to_uint8_nhwc(vae.decode(latents.narrow(0, s, std::min<int64_t>(2, 5 - s)))));
  const at::Tensor u8 = at::cat(parts).contiguous();
  // A float32 decoder whose convolutions sum in another order (another BLAS kernel set)
  // moves a pixel only where its value lies within rounding of a uint8 step: allow one
  // level at a few pixels, nothing more.
  int64_t off_by_one = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    const int diff = std::abs(int(images[i]) - int(u8.data_ptr<uint8_t>()[i]));
    EXPECT_LE(diff, 1) << i;
    off_by_one += diff;
  }
  EXPECT_LE(off_by_one, static_cast<int64_t>(images.size() / 1000)) << off_by_one << " pixels";
  EXPECT_EQ(lat.open("labels").read_all<int64_t>(), labels);
}

TEST(SampleSiT, BadModelSettingsAreExplained) {
  const fs::path d = sit::test::temp_dir("sample_sit_bad");
  const std::string out = " --out " + (d / "s.npz").string();
  CliRun r = run("sample ODE --model sit:SiT-S/2 --num-samples 2" + out);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "needs a checkpoint")) << r.err;
  r = run("sample ODE --model sit:SiT-B/2 --ckpt " + mf("sit_s2.safetensors") + " --vae " +
          mf("vae_new") + out);
  EXPECT_TRUE(contains(r.err, "is SiT-S/2")) << r.err;
  r = run("sample ODE --model sit --ckpt " + mf("sit_s2.safetensors") + out);
  EXPECT_TRUE(contains(r.err, "no images")) << r.err;
  r = run("sample ODE --model sit:SiT-S/2 --ckpt " + mf("sit_s2.safetensors") + " --vae " +
          mf("vae_new") + " --image-size 33" + out);
  EXPECT_TRUE(contains(r.err, "multiple of the VAE's downsampling factor 2")) << r.err;
  for (const char* precision : {"fp64", "fp16"}) {
    r = run("sample ODE --model sit:SiT-S/2 --ckpt " + mf("sit_s2.safetensors") + " --vae " +
            mf("vae_new") + " --precision " + precision + out);
    EXPECT_EQ(r.code, 1);
    EXPECT_TRUE(contains(r.err, std::string("error: precision ") + precision +
                                    " is not available for a SiT network: fp32"))
        << r.err;
  }
  r = run("sample ODE --model sit:SiT-S/2 --ckpt " + mf("sit_s2.safetensors") + " --vae " +
          mf("vae_new") + " --image-size 4" + out);
  EXPECT_TRUE(contains(r.err, "error: --image-size: expected an integer in [8, 8192], got 4")) << r.err;
  EXPECT_FALSE(fs::exists(d / "s.npz"));
}

TEST(SampleDiT, DdpmAndDdimImagesIndependentOfBatchAndFamilyErrors) {
  const fs::path d = sit::test::temp_dir("sample_dit");
  const std::string dit = "--model dit --ckpt " + mf("dit_s2.pt") + " --vae " + mf("vae_new") +
                          " --num-samples 3 --respacing 10 --cfg-scale 1.5 ";
  CliRun r = run("sample DDPM " + dit + "--batch-size 2 --out " + (d / "a.npz").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "DiT-S/2")) << r.err;
  EXPECT_TRUE(contains(r.err, "DDPM 10 learned-range cfg 1.5")) << r.err;
  EXPECT_TRUE(contains(r.err, "mean NFE 10 per sample")) << r.err;
  r = run("sample DDPM " + dit + "--batch-size 3 --out " + (d / "b.npz").string());
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<int64_t> shape_a, shape_b;
  const auto a = read_u8(io::NpzReader((d / "a.npz").string()), "arr_0", &shape_a);
  const auto b = read_u8(io::NpzReader((d / "b.npz").string()), "arr_0", &shape_b);
  EXPECT_EQ(shape_a, (std::vector<int64_t>{3, 8, 8, 3}));
  EXPECT_EQ(a, b);  // per-sample noise: the batch size does not matter
  r = run("sample DDIM " + dit + "--eta 1 --out " + (d / "c.npz").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "DDIM 10 eta 1.0 cfg 1.5")) << r.err;

  const std::string out = " --out " + (d / "x.npz").string();
  r = run("sample ODE --model dit --ckpt " + mf("dit_s2.pt") + " --vae " + mf("vae_new") + out);
  EXPECT_TRUE(contains(r.err, "takes DiT's integer timesteps; sample it with DDPM or DDIM")) << r.err;
  r = run("sample DDPM --model dit:DiT-B/2 --ckpt " + mf("dit_s2.pt") + " --vae " +
          mf("vae_new") + out);
  EXPECT_TRUE(contains(r.err, "the checkpoint is DiT-S/2 (hidden 384, patch 2, depth 12), not "
                              "the requested DiT-B/2")) << r.err;
  r = run("sample DDPM " + kSiT + out);
  EXPECT_TRUE(contains(r.err, "takes continuous time in [0, 1] (SiT); DDPM/DDIM drive DiT")) << r.err;
  r = run("sample DDPM --model dit --ckpt " + mf("sit_b4_fp16.safetensors") + " --vae " +
          mf("vae_new") + out);
  EXPECT_TRUE(contains(r.err, "was trained without learn_sigma: use variance_type fixed-small"))
      << r.err;
  r = run("sample DDIM " + dit + "--eta -0.5" + out);
  EXPECT_TRUE(contains(r.err, "--eta: expected a number >= 0, got -0.5")) << r.err;
  const std::string dit_plain = "--model dit --ckpt " + mf("dit_s2.pt") + " --vae " + mf("vae_new") + " ";
  r = run("sample DDIM " + dit_plain + "--respacing 25,x" + out);
  EXPECT_TRUE(contains(r.err, "'x' is not a step count")) << r.err;
  r = run("sample DDPM " + dit_plain + "--respacing 1001" + out);
  EXPECT_TRUE(contains(r.err, "cannot take 1001 steps")) << r.err;
  EXPECT_FALSE(fs::exists(d / "x.npz"));
}

TEST(SweepSiT, ImagesSavedResumedAndScoredAgainstAFeatureFile) {
  const fs::path d = sit::test::temp_dir("sweep_sit");
  auto write_sweep = [&](const std::string& name, const std::string& extra) {
    std::ofstream f(d / name);
    f << "[sweep]\nname = \"sit\"\nmodel = \"sit:SiT-S/2\"\nckpt = \"" << mf("sit_s2.safetensors")
      << "\"\nvae = \"" << mf("vae_new") << "\"\nimage_size = 16\nsamples = 5\nbatch_size = 2\n"
      << "metrics = [\"fid\"]\n"
      << extra << "[grid]\node_methods = [\"euler\", \"heun2\"]\node_steps = [3]\n";
  };
  write_sweep("a.toml", "");
  const fs::path run_a = d / "a";
  CliRun r = run("sweep " + (d / "a.toml").string() + " --save-images npz --out " + run_a.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "no reference, no metrics")) << r.err;
  std::ifstream results(run_a / "results.jsonl");
  std::string line, first;
  int lines = 0;
  while (std::getline(results, line)) {
    EXPECT_TRUE(contains(line, "\"status\":\"ok\"")) << line;
    EXPECT_TRUE(contains(line, "\"checkpoint_sha256\":\"")) << line;
    EXPECT_FALSE(contains(line, "\"fid\"")) << line;
    if (lines++ == 0) first = line;
  }
  ASSERT_EQ(lines, 2);
  const std::string id = first.substr(first.find("\"id\":\"") + 6, 12);
  const io::NpzReader z((run_a / "images" / (id + ".npz")).string());
  std::vector<int64_t> shape;
  read_u8(z, "arr_0", &shape);
  EXPECT_EQ(shape, (std::vector<int64_t>{5, 16, 16, 3}));

  // Two shards, one after the other (the second finds the first's batches on disk and
  // completes): images byte-identical to the single-process run.
  const fs::path run_c = d / "c";
  for (const char* shard : {"0/2", "1/2"}) {
    r = run("sweep " + (d / "a.toml").string() + " --quiet --save-images npz --shard " + shard +
            " --out " + run_c.string());
    ASSERT_EQ(r.code, 0) << r.err;
  }
  auto bytes = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string name = id + ".npz";
  EXPECT_EQ(bytes(run_c / "images" / name), bytes(run_a / "images" / name));
  r = run("sweep " + (d / "a.toml").string() + " --quiet --save-images png --out " +
          run_c.string());
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "would mix formats")) << r.err;
  // PNGs of the same sweep: one file per sample, the same pixels as the npz
  r = run("sweep " + (d / "a.toml").string() + " --quiet --save-images png --out " +
          (d / "p").string());
  ASSERT_EQ(r.code, 0) << r.err;
  for (int i = 0; i < 5; ++i)
    EXPECT_TRUE(fs::exists(d / "p" / "images" / id / ("00000" + std::to_string(i) + ".png"))) << i;
  {
    int64_t h = 0, w = 0;
    const auto png = read_png((d / "p" / "images" / id / "000004.png").string(), &h, &w);
    std::vector<int64_t> shape;
    const auto all = read_u8(io::NpzReader((run_a / "images" / name).string()), "arr_0", &shape);
    EXPECT_TRUE(std::equal(png.begin(), png.end(), all.begin() + 4 * 16 * 16 * 3));
  }

  // The file's save_images key is remembered like the flag: a later run may not mix formats.
  write_sweep("k.toml", "save_images = \"png\"\n");
  r = run("sweep " + (d / "k.toml").string() + " --quiet --out " + (d / "k").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(bytes(d / "k" / "save_images.txt"), "png\n");
  r = run("sweep " + (d / "a.toml").string() + " --quiet --save-images npz --out " +
          (d / "k").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "this run saves images as 'png'; --save-images npz would mix")) << r.err;

  // The same sweep scored against run a's features of the first configuration: that
  // configuration reproduces them exactly (FD 0), the other does not.
  write_sweep("b.toml", "reference = \"" + (run_a / "features" / (id + ".h5")).string() + "\"\n");
  r = run("sweep " + (d / "b.toml").string() + " --quiet --out " + (d / "b").string());
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream rb(d / "b" / "results.jsonl");
  std::vector<double> fd;
  while (std::getline(rb, line)) {
    const auto at = line.find("\"fid\":");
    ASSERT_NE(at, std::string::npos) << line;
    fd.push_back(std::stod(line.substr(at + 6)));
  }
  ASSERT_EQ(fd.size(), 2u);
  // 5 samples of 256 features: singular covariances, so FD 0 holds to about 1e-6 relative
  EXPECT_GT(fd[1], 1.0);
  EXPECT_LT(std::abs(fd[0]), 1e-4 * fd[1]);
  EXPECT_FALSE(fs::exists(d / "b" / "images"));
}

TEST(Inspect, DescribesSiTCheckpoints) {
  const CliRun r = run("inspect " + mf("sit_s2_train.pt"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "top-level keys: model ema opt args")) << r.out;
  EXPECT_TRUE(contains(r.out, "tensors from: 'ema'")) << r.out;
  EXPECT_TRUE(contains(r.out, "SiT-S/2 / DiT-S/2 (depth 12, hidden 384, heads 6, patch 2)")) << r.out;
  EXPECT_TRUE(contains(r.out, "sample it as: sit:SiT-S/2 (ODE/SDE, time in [0, 1]) or dit:DiT-S/2")) << r.out;
  EXPECT_TRUE(contains(r.out, "parameters: 32,963,360 (matches the tensors)")) << r.out;
  const CliRun b = run("inspect " + mf("sit_b4_fp16.safetensors") + " --keys");
  EXPECT_TRUE(contains(b.out, "Half x ")) << b.out;
  EXPECT_TRUE(contains(b.out, "learn_sigma false")) << b.out;
  EXPECT_TRUE(contains(b.out, "blocks.11.mlp.fc2.weight (768, 3072) Half")) << b.out;
  const CliRun bad = run("inspect " + mf("not_a_checkpoint.pt"));
  EXPECT_EQ(bad.code, 1);
  EXPECT_TRUE(contains(bad.err, "not a checkpoint")) << bad.err;
}

TEST(SweepSiT, InceptionFeaturesOfDecodedImagesMatchTheFileRoute) {
  // A random SiT + tiny VAE + the random NVIDIA-structured Inception: the sweep scores the
  // decoded uint8 images directly; `evaluate` on the images it saved agrees.
  const fs::path d = sit::test::temp_dir("sweep_inception");
  const std::string inception = std::string(SIT_INCEPTION_FIXTURES) + "/nvidia_like.pt";
  ASSERT_TRUE(sampled_reference(d, 8, 9, 6, "--keep-images 8 --inception " + inception));
  CliRun r;
  {
    std::ofstream f(d / "s.toml");
    f << "[sweep]\nname = \"inc\"\nmodel = \"sit:SiT-S/2\"\nckpt = \"" << mf("sit_s2.safetensors")
      << "\"\nvae = \"" << mf("vae_new") << "\"\nimage_size = 16\nsamples = 6\nbatch_size = 4\n"
      << "inception = \"" << inception << "\"\nreference = \"" << (d / "ref.npz").string()
      << "\"\nmetrics = [\"fid\", \"sfid\", \"is\", \"pr\"]\n"
      << "[grid]\node_methods = [\"euler\"]\node_steps = [3]\n";
  }
  ::setenv("SIT_EVAL_CACHE", (d / "cache").c_str(), 1);
  std::string line;
  ASSERT_TRUE(sweep_first_record(d, &line));
  for (const char* key : {"\"fid\":", "\"sfid\":", "\"inception_score\":", "\"precision\":",
                          "\"recall\":", "\"inception_sha256\":"})
    EXPECT_TRUE(contains(line, key)) << key << " in " << line;
  const std::string id = line.substr(line.find("\"id\":\"") + 6, 12);
  const double fid = std::stod(line.substr(line.find("\"fid\":") + 6));
  r = run("evaluate " + (d / "ref.npz").string() + " " +
          (d / "run" / "images" / (id + ".npz")).string() + " --quiet --metrics fid --inception " +
          inception + " --cache-dir " + (d / "cache").string());
  ASSERT_EQ(r.code, 0) << r.err;
  const double fid_file = std::stod(r.out.substr(r.out.find("FID: ") + 5));
  EXPECT_NEAR(fid, fid_file, 1e-4 * std::abs(fid_file) + 1e-6) << r.out;

  // compare bootstraps the image metrics from the saved features (spatial rows, logits);
  // all-ones weights give the recorded values. (FID takes sFID's code path; this random
  // Inception's features are rank-deficient, so each distance takes the slow eigen route.)
  r = run("compare " + (d / "run").string() + " " + (d / "run").string() +
          " --replicates 2 --digits 6 --metrics sfid,inception_score,precision,recall");
  ASSERT_EQ(r.code, 0) << r.err;
  const double is = std::stod(line.substr(line.find("\"inception_score\":") + 18));
  char want[96];
  std::snprintf(want, sizeof want, "| inception_score | %.6f | %.6f | 0.000000 |", is, is);
  EXPECT_TRUE(contains(r.out, want)) << want << "\n" << r.out;
  for (const char* metric : {"| sfid |", "| precision |", "| recall |"})
    EXPECT_TRUE(contains(r.out, metric)) << metric << "\n" << r.out;
}

TEST(SweepSiT, DinoV2AndClipFeaturesOfTheSameDecodedImages) {
  // One decode of each batch feeds Inception, DINOv2 and CLIP; the sweep's FD_DINOv2 and
  // CMMD equal `evaluate` on the images it saved, and compare bootstraps FD_DINOv2 while
  // saying why CMMD has no bootstrap.
  const fs::path d = sit::test::temp_dir("sweep_dinov2_clip");
  const std::string ex = SIT_EXTRACTOR_FIXTURES;
  const std::string files = " --inception " + std::string(SIT_INCEPTION_FIXTURES) +
                            "/canonical.pt --dinov2 " + ex + "/dinov2.pt --clip " + ex +
                            "/clip.pt ";
  ASSERT_TRUE(sampled_reference(d, 6, 4, 4, "--extractor inception,dinov2,clip" + files));
  CliRun r;
  {
    std::ofstream f(d / "s.toml");
    f << "[sweep]\nname = \"modern\"\nmodel = \"sit:SiT-S/2\"\nckpt = \""
      << mf("sit_s2.safetensors") << "\"\nvae = \"" << mf("vae_new")
      << "\"\nimage_size = 16\nsamples = 5\nbatch_size = 3\n"
      << "inception = \"" << SIT_INCEPTION_FIXTURES << "/canonical.pt\"\n"
      << "dinov2 = \"" << ex << "/dinov2.pt\"\nclip = \"" << ex << "/clip.pt\"\n"
      << "reference = \"" << (d / "ref.npz").string()
      << "\"\nmetrics = [\"fd_dinov2\", \"cmmd\"]\n"
      << "[grid]\node_methods = [\"euler\"]\node_steps = [3]\n";
  }
  std::string line;
  ASSERT_TRUE(sweep_first_record(d, &line));
  for (const char* key : {"\"fd_dinov2\":", "\"cmmd\":", "\"dinov2_sha256\":", "\"clip_sha256\":",
                          "\"dinov2_resize\":\"pil\""})
    EXPECT_TRUE(contains(line, key)) << key << " in " << line;
  const std::string id = line.substr(line.find("\"id\":\"") + 6, 12);
  r = run("evaluate " + (d / "ref.npz").string() + " " +
          (d / "run" / "images" / (id + ".npz")).string() + " --quiet --metrics fd_dinov2,cmmd" +
          files);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const std::string key : {"fd_dinov2", "cmmd"}) {
    const std::string label = key == "cmmd" ? "CMMD: " : "FD_DINOv2: ";
    const double swept = std::stod(line.substr(line.find("\"" + key + "\":") + key.size() + 3));
    const double file = std::stod(r.out.substr(r.out.find(label) + label.size()));
    EXPECT_NEAR(swept, file, 1e-4 * std::abs(file) + 1e-9) << key << "\n" << r.out;
  }
  // reports of a run without FID: the long table, and the system layout with the modern
  // columns (the default metric falls back to the first the results have)
  r = run("report " + (d / "run").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "FD_DINOv2") && contains(r.out, "CMMD")) << r.out;
  r = run("report " + (d / "run").string() + " --layout system");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "FD\\_DINOv2$\\downarrow$ & CMMD$\\downarrow$")) << r.out;
  // every recorded metric: CMMD skipped with the reason; asked for by name: refused
  r = run("compare " + (d / "run").string() + " " + (d / "run").string() + " --replicates 2");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "| fd_dinov2 |")) << r.out;
  EXPECT_TRUE(contains(r.err, "skipping cmmd") && contains(r.err, "has no bootstrap")) << r.err;
  r = run("compare " + (d / "run").string() + " " + (d / "run").string() +
          " --replicates 2 --metrics cmmd");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "cannot compare cmmd") && contains(r.err, "m x m kernel")) << r.err;
}

// REPA and LightningDiT checkpoints from the command line: inspect names the kind to load,
// a protocol preset samples them (REPA with its uint8 rule, LightningDiT latents out), and
// loading one as another kind is refused naming the right one.
TEST(SampleProtocols, RepaAndLightningDiTCheckpoints) {
  CliRun r = run("inspect " + mf("repa_s2_legacy.pt"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "REPA SiT-S/2 (depth 12, hidden 384, heads 6, patch 2, qk-norm)"))
      << r.out;
  EXPECT_TRUE(contains(r.out, "legacy layout (56 decoder_blocks keys)")) << r.out;
  EXPECT_TRUE(contains(r.out, "sample it as: repa:SiT-S/2")) << r.out;
  r = run("inspect " + mf("lightningdit_qk2.pt"));
  EXPECT_TRUE(contains(r.out, "LightningDiT-B/1 (depth 2, hidden 768, heads 12, patch 1, RMSNorm, "
                              "SwiGLU 2048, RoPE, qk-norm), latent 8 x 8 x 32"))
      << r.out;

  const auto dir = sit::test::temp_dir();
  const std::string out = (dir / "r.npz").string(), png = (dir / "png").string();
  r = run("sample SDE --model repa --ckpt " + mf("repa_s2_legacy.pt") + " --vae " +
          mf("vae_new") + " --protocol repa-sde --num-samples 3 --num-sampling-steps 20 --out " +
          out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "from REPA SiT-S/2")) << r.err;
  EXPECT_TRUE(contains(r.err, "num_steps 250 -> 20, samples 50000 -> 3")) << r.err;
  // REPA's uint8 rule by default; --quantization dit is half a level higher
  const std::string dit_out = (dir / "d.npz").string();
  r = run("sample SDE --model repa --ckpt " + mf("repa_s2.pt") + " --vae " + mf("vae_new") +
          " --protocol repa-sde --num-samples 3 --num-sampling-steps 20 --quantization dit --out " +
          dit_out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "quantization repa -> dit")) << r.err;
  std::vector<int64_t> shape;
  const auto repa_u8 = read_u8(io::NpzReader(out), "arr_0", &shape);
  const auto dit_u8 = read_u8(io::NpzReader(dit_out), "arr_0", &shape);
  int64_t higher = 0;
  for (size_t i = 0; i < repa_u8.size(); ++i) {
    ASSERT_LE(repa_u8[i], dit_u8[i]);
    ASSERT_LE(dit_u8[i] - repa_u8[i], 1);
    higher += dit_u8[i] > repa_u8[i];
  }
  EXPECT_GT(higher, static_cast<int64_t>(repa_u8.size()) / 4);  // about half of all pixels

  const std::string lat = (dir / "l.npz").string();
  r = run("sample ODE --model lightningdit --ckpt " + mf("lightningdit_qk2.pt") +
          " --protocol lightningdit --num-samples 2 --num-sampling-steps 8 --save-latents " + lat);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "mean NFE 7 per sample (4 guided)")) << r.err;
  EXPECT_EQ(io::NpzReader(lat).open("latents").shape(), (std::vector<int64_t>{2, 32, 8, 8}));

  const std::pair<std::string, std::string> bad[] = {
      {"sample ODE --model sit --ckpt " + mf("repa_s2.pt") + " --save-latents " + lat,
       "load it with --model repa"},
      {"sample ODE --model sit --ckpt " + mf("lightningdit_qk2.pt") + " --save-latents " + lat,
       "load it with --model lightningdit"},
      {"sample ODE --model lightningdit --ckpt " + mf("lightningdit_qk2.pt") + " --vae " +
           mf("vae_new") + " --out " + out,
       "VA-VAE"},
      {"sample DDPM --model lightningdit --ckpt " + mf("lightningdit_qk2.pt") + " --save-latents " +
           lat,
       "mode DDPM"},
      {"sample ODE --model lightningdit --ckpt " + mf("dit_s2.pt") + " --save-latents " + lat,
       "not a LightningDiT checkpoint"},
      {"sample ODE --model repa --ckpt " + mf("sit_s2_plain.pt") + " --save-latents " + lat,
       "REPA's networks have none: a SiT or DiT checkpoint"},
      {"sample ODE --model lightningdit --ckpt " + mf("lightningdit_qk2.pt") +
           " --image-size 256 --save-latents " + lat,
       "takes 8 x 8 latents (128 px with the f16 VA-VAE)"},
  };
  for (const auto& [args, fragment] : bad) {
    r = run(args);
    EXPECT_EQ(r.code, 1) << args;
    EXPECT_TRUE(contains(r.err, fragment)) << args << "\n" << r.err;
  }
}
