// SiT backbone, checkpoint loading and VAE decoder against the independent Python
// reference (tests/python/model_reference.py) on random-weight checkpoints that
// tests/python/make_model_fixtures.py writes at test time.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "common/error.h"
#include "models/checkpoint.h"
#include "models/edm2_reference.h"
#include "models/lightningdit.h"
#include "models/pickle.h"
#include "models/sit.h"
#include "models/vae.h"
#include "samplers/discrete.h"
#include "samplers/sampler.h"
#include "test_util.h"
#include "torch_test_util.h"

using namespace sit;
using namespace sit::models;

namespace {

SiTOptions named(const char* name) {
  SiTOptions o;
  o.name = name;
  return o;
}

std::string fixture(const std::string& name) {
  return std::string(SIT_MODEL_FIXTURES) + "/" + name;
}

at::Tensor load_npy(const std::string& name) {
  return sit::testing::load_npy_tensor(fixture(name + ".npy"));
}

using sit::testing::relative_error;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const sit::Error& e) {
    return e.what();
  }
  return "(no error)";
}

void expect_forward_matches(const SiT& model, const std::string& tag, int size) {
  const std::string s = std::to_string(size);
  const at::Tensor out =
      model.forward(load_npy(tag + "_x" + s), load_npy(tag + "_t" + s), load_npy(tag + "_y" + s));
  const at::Tensor want = load_npy(tag + "_out" + s);
  ASSERT_EQ(out.sizes(), want.sizes());
  EXPECT_LT(relative_error(out, want), 1e-5) << tag << " at latent size " << size;
}

}  // namespace

TEST(SiTConfig, ParameterCountsOfAllTwelveConfigurations) {
  // Counted from the architecture: pos_embed T*D, patch conv D*4*p*p + D, t-MLP
  // 256D + D + D^2 + D, labels 1001 D, per block 12 D^2 + 9 D (qkv, proj, fc1, fc2 with
  // mlp ratio 4) + 6 D^2 + 6 D (adaLN), final 2 D^2 + 2 D + D * p^2 * 8 + p^2 * 8.
  struct Row {
    const char* size;
    int64_t depth, d;
  };
  for (const Row& r :
       {Row{"S", 12, 384}, Row{"B", 12, 768}, Row{"L", 24, 1024}, Row{"XL", 28, 1152}})
    for (int64_t p : {2, 4, 8}) {
      const int64_t d = r.d, t = (32 / p) * (32 / p), out = p * p * 8;
      const int64_t want = t * d + (d * 4 * p * p + d) + (256 * d + d + d * d + d) + 1001 * d +
                           r.depth * (18 * d * d + 15 * d) + (2 * d * d + 2 * d + d * out + out);
      const SiTConfig c = SiTConfig::named(std::string("SiT-") + r.size + "/" + std::to_string(p));
      EXPECT_EQ(sit_parameter_count(c), want) << c.name();
    }
  EXPECT_EQ(sit_parameter_count(SiTConfig::named("SiT-XL/2")), 675129632);
}

TEST(SiTConfig, NamesAndErrors) {
  EXPECT_EQ(SiTConfig::named("DiT-B/4").name(), "SiT-B/4");
  EXPECT_EQ(SiTConfig::named("XL/8").heads, 16);
  EXPECT_NE(error_of([] { SiTConfig::named("SiT-M/2"); }).find("SiT-{S,B,L,XL}/{2,4,8}"),
            std::string::npos);
}

TEST(SiTPosEmbed, FirstHalfEncodesTheColumn) {
  const at::Tensor p = sincos_pos_embed(8, 3).to(at::kDouble);  // q = 2, omega = {1, 1e-2}
  // token (i=1, j=2) is index 5
  const double want[8] = {std::sin(2.0), std::sin(0.02), std::cos(2.0), std::cos(0.02),
                          std::sin(1.0), std::sin(0.01), std::cos(1.0), std::cos(0.01)};
  for (int k = 0; k < 8; ++k)
    EXPECT_NEAR(p[0][5][k].item<double>(), want[k], 1e-7) << k;
}

TEST(SiTForward, S2PlainCheckpointMatchesPythonAtTwoResolutions) {
  const StateDict sd = load_state_dict(fixture("sit_s2_plain.pt"));
  EXPECT_EQ(sd.format, "torch zip");
  EXPECT_EQ(sd.entry, "");
  SiT native(sd, named("SiT-S/2"));
  EXPECT_EQ(native.config().input_size, 32);
  EXPECT_TRUE(native.config().learn_sigma);
  EXPECT_EQ(native.parameter_count(), sd.numel());
  expect_forward_matches(native, "s2", 32);
  SiTOptions half;
  half.input_size = 16;  // pos_embed recomputed for the 8 x 8 token grid
  expect_forward_matches(SiT(sd, half), "s2", 16);
}

TEST(SiTForward, TrainingCheckpointUsesEmaAndSkipsPickledArgs) {
  const StateDict sd = load_state_dict(fixture("sit_s2_train.pt"));
  EXPECT_EQ(sd.entry, "ema");
  EXPECT_EQ(sd.top_level_keys, (std::vector<std::string>{"model", "ema", "opt", "args"}));
  expect_forward_matches(SiT(sd, {}), "s2", 32);
}

TEST(SiTForward, SafetensorsFilesInFp32AndFp16) {
  const StateDict s2 = load_state_dict(fixture("sit_s2.safetensors"));
  EXPECT_EQ(s2.format, "safetensors");
  expect_forward_matches(SiT(s2, {}), "s2", 32);
  const StateDict b4 = load_state_dict(fixture("sit_b4_fp16.safetensors"));
  EXPECT_EQ(b4.tensors.front().second.scalar_type(), at::kHalf);
  SiT model(b4, named("SiT-B/4"));
  EXPECT_FALSE(model.config().learn_sigma);
  expect_forward_matches(model, "b4", 32);
  SiTOptions big;
  big.input_size = 64;
  expect_forward_matches(SiT(b4, big), "b4", 64);
}

TEST(SiTForward, Bf16RunsCloseToFp32) {
  const StateDict sd = load_state_dict(fixture("sit_s2.safetensors"));
  SiTOptions o;
  o.precision = Precision::kBf16;
  const at::Tensor out =
      SiT(sd, o).forward(load_npy("s2_x32"), load_npy("s2_t32"), load_npy("s2_y32"));
  EXPECT_EQ(out.scalar_type(), at::kFloat);
  EXPECT_LT(relative_error(out, load_npy("s2_out32")), 0.1);
}

TEST(Checkpoint, StrictLoadingListsEveryProblem) {
  const StateDict sd = load_state_dict(fixture("sit_s2_broken_keys.pt"));
  const std::string e = error_of([&] { SiT(sd, {}); });
  EXPECT_NE(e.find("1 missing, 1 unexpected, 1 wrong-shape"), std::string::npos) << e;
  EXPECT_NE(e.find("blocks.3.mlp.fc1.bias (1536,)"), std::string::npos) << e;
  EXPECT_NE(e.find("blocks.0.extra.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("final_layer.adaLN_modulation.1.bias is (7,), expected (768,)"),
            std::string::npos)
      << e;
}

TEST(Checkpoint, WrongArchitectureNamed) {
  const StateDict sd = load_state_dict(fixture("sit_s2.safetensors"));
  const std::string e = error_of([&] { SiT(sd, named("SiT-B/2")); });
  EXPECT_NE(e.find("is SiT-S/2"), std::string::npos) << e;
  SiTOptions o;
  o.num_classes = 10;
  EXPECT_NE(error_of([&] { SiT(sd, o); }).find("label table (1001 rows"), std::string::npos);
}

TEST(Checkpoint, BadFilesGiveClearErrors) {
  std::string e = error_of([] { load_state_dict(fixture("not_a_checkpoint.pt")); });
  EXPECT_NE(e.find("not a checkpoint"), std::string::npos) << e;
  e = error_of([] { load_state_dict(fixture("sit_s2_truncated.safetensors")); });
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  e = error_of([] { load_state_dict(fixture("sit_s2_truncated.pt")); });
  EXPECT_NE(e.find("sit_s2_truncated.pt"), std::string::npos) << e;
  e = error_of([] { load_state_dict(fixture("no_such_file.pt")); });
  EXPECT_NE(e.find("cannot open"), std::string::npos) << e;
  // fuzzing finding (fuzz_checkpoint, out of memory): data.pkl's declared size (2.7 GB) was
  // allocated before reading from an 805-byte file
  e = error_of([] { load_state_dict(sit::test::fixture("fuzz_zip_declared_size_oom.pt")); });
  EXPECT_NE(e.find("declares"), std::string::npos) << e;
  // fuzzing finding (fuzz_checkpoint, undefined behaviour): a safetensors dimension of 2^64
  // or more, which nlohmann reads as a double, was converted to int64; every shape and
  // data_offsets entry must be a non-negative integer below 2^63, and dtype a string
  e = error_of([] {
    load_state_dict(sit::test::fixture("fuzz_safetensors_shape_beyond_2_64.safetensors"));
  });
  EXPECT_NE(e.find("tensor 'w': shape must hold non-negative integers below 2^63, got [2,3.5"),
            std::string::npos)
      << e;
  const auto dir = sit::test::temp_dir();
  const auto safetensors = [&](const std::string& name, const std::string& header) {
    std::string bytes(8, '\0');
    const uint64_t n = header.size();
    std::memcpy(bytes.data(), &n, 8);
    bytes += header + std::string(24, '\0');
    const std::string path = (dir / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  };
  for (const auto& [header, expected] : std::vector<std::pair<std::string, std::string>>{
           {R"({"w": {"dtype": "F32", "shape": [2, -3], "data_offsets": [0, 24]}})",
            "tensor 'w': shape must hold non-negative integers below 2^63, got [2,-3]"},
           {R"({"w": {"dtype": "F32", "shape": [2, 3.0], "data_offsets": [0, 24]}})",
            "tensor 'w': shape must hold non-negative integers below 2^63, got [2,3.0]"},
           {R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": "0-24"}})",
            "tensor 'w': data_offsets must be an array of integers, got \"0-24\""},
           {R"({"w": {"dtype": 5, "shape": [2, 3], "data_offsets": [0, 24]}})",
            "tensor 'w': dtype must be a string, got 5"}}) {
    e = error_of([&] { load_state_dict(safetensors("h.safetensors", header)); });
    EXPECT_NE(e.find("h.safetensors: " + expected), std::string::npos) << e;
  }
  // the well-formed file of the same layout reads
  e = error_of([&] {
    load_state_dict(safetensors(
        "ok.safetensors", R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}})"));
  });
  EXPECT_EQ(e, "(no error)") << e;
}

namespace {

/// The error of unpickling `bytes` as `where` ("(no error)" when it reads): persistent ids
/// are refused, or (with_storage) each becomes a 16-element float storage.
std::string unpickle_error(const std::string& bytes, const std::string& where,
                           bool with_storage = false) {
  return error_of([&] {
    unpickle(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
             [&](const PyRef&) -> PyRef {
               if (!with_storage) fail("no persistent ids here");
               auto s = std::make_shared<PyValue>();
               s->kind = PyValue::Kind::kStorage;
               s->tensor = at::zeros({16}, at::kFloat);
               return s;
             },
             where);
  });
}

}  // namespace

// Protocol 0's text opcodes (INT, LONG, FLOAT, PUT, GET) hold numbers as text; text that is
// not one threw std::invalid_argument from std::stoull (fuzzing finding, fuzz_checkpoint).
TEST(Checkpoint, PickleTextNumbersAreCheckedFuzzFinding) {
  auto unpickle_text = [](const std::string& bytes) { return unpickle_error(bytes, "t.pkl"); };
  EXPECT_NE(unpickle_text("I12x\n.").find("t.pkl: pickle byte 5: INT must be a decimal integer, "
                                          "got '12x'"),
            std::string::npos);
  EXPECT_NE(unpickle_text("L99999999999999999999999L\n.").find("LONG must be a decimal integer"),
            std::string::npos);
  EXPECT_NE(unpickle_text("F1.5e\n.").find("FLOAT must be a decimal number"), std::string::npos);
  EXPECT_NE(unpickle_text("I1\npabc\n.").find("a memo key must be a decimal integer"),
            std::string::npos);
  EXPECT_NE(unpickle_text("g-3\n.").find("memo key -3 is negative"), std::string::npos);
  EXPECT_EQ(unpickle_text("I7\np0\n0g0\n."), "(no error)");  // well-formed text opcodes read
  // an 8-byte length near 2^64 (BYTEARRAY8, BINBYTES8, BINUNICODE8) wrapped the bounds
  // check and reached std::string with it (std::length_error; fuzzing finding)
  for (const char op : {'\x96', '\x8e', '\x8d'})
    EXPECT_NE(unpickle_text(std::string(1, op) + std::string(8, '\xff') + "abc.")
                  .find("t.pkl: pickle byte 9: truncated (needs 18446744073709551615 more bytes"),
              std::string::npos)
        << int(op);
  // the fuzzer's input itself: a clean error
  const std::string e = unpickle_error(
      sit::test::slurp(sit::test::fixture("fuzz_pickle_memo_key.bin")), "found.bin", true);
  EXPECT_NE(e.find("found.bin: pickle byte "), std::string::npos) << e;
}

// A pickle can put a container inside itself (fuzzing finding: the shared_ptr cycle leaked,
// and any walk over the result would not end) or nest containers deep enough that freeing
// them recursed past the stack. Both are refused, and everything made is freed.
TEST(Checkpoint, PickleCyclesAndDeepNestingAreRefusedFuzzFinding) {
  auto unpickle_bytes = [](const std::string& bytes) { return unpickle_error(bytes, "c.pkl"); };
  EXPECT_NE(unpickle_bytes("]p0\ng0\na.").find(
                "c.pkl: the pickle holds a reference cycle (a container inside itself)"),
            std::string::npos);
  const std::string deep = std::string(2000, ']') + std::string(1999, 'a') + ".";
  EXPECT_NE(unpickle_bytes(deep).find("containers nested deeper than 1000 levels"),
            std::string::npos);
  const std::string ok_depth = std::string(900, ']') + std::string(899, 'a') + ".";
  EXPECT_EQ(unpickle_bytes(ok_depth), "(no error)");
  // one list under two keys is shared, not a cycle: {'a': [], 'b': <the same list>}
  const std::string dag = "(dp0\nVa\n(lp1\nsVb\ng1\ns.";
  const PyRef d = unpickle(reinterpret_cast<const uint8_t*>(dag.data()), dag.size(),
                           [](const PyRef&) -> PyRef { fail("none"); }, "dag.pkl");
  ASSERT_EQ(d->entries.size(), 2u);
  EXPECT_EQ(d->get("a").get(), d->get("b").get());
  // the fuzzer's input: refused (LeakSanitizer in scripts/fuzz.sh checks nothing leaks)
  const std::string e = unpickle_error(
      sit::test::slurp(sit::test::fixture("fuzz_pickle_cycle_leak.bin")), "found.bin", true);
  EXPECT_NE(e.find("found.bin"), std::string::npos) << e;
  // a storage from the persistent loader appended to itself (second leak finding): refused
  EXPECT_NE(unpickle_error("(S'x'\nQp0\ng0\ng0\na.", "s.pkl", true).find("reference cycle"),
            std::string::npos);
  const std::string e2 = unpickle_error(
      sit::test::slurp(sit::test::fixture("fuzz_pickle_storage_cycle_leak.bin")), "f2.bin", true);
  EXPECT_NE(e2.find("f2.bin"), std::string::npos) << e2;
}

// A tensor view whose size x stride wraps int64 (undefined behaviour in the bounds check)
// is refused as outside its storage.
TEST(Checkpoint, TensorViewsAreCheckedInOverflowSafeArithmetic) {
  const std::string e = unpickle_error(
      sit::test::slurp(sit::test::fixture("pickle_tensor_view_overflow.pkl")), "v.pkl", true);
  EXPECT_NE(e.find("reaches past any storage"), std::string::npos) << e;
}

TEST(Checkpoint, SafetensorsHeaderChecks) {
  const std::string path = ::testing::TempDir() + "/bad.safetensors";
  auto write = [&](const std::string& header, size_t data) {
    std::ofstream f(path, std::ios::binary);
    const uint64_t n = header.size();
    f.write(reinterpret_cast<const char*>(&n), 8);
    f << header << std::string(data, '\0');
  };
  write(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", 24);
  EXPECT_NE(error_of([&] { load_state_dict(path); }).find("needs 24"), std::string::npos);
  write(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
        12);
  EXPECT_NE(error_of([&] { load_state_dict(path); }).find("overlap"), std::string::npos);
  write(R"({"a":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}})", 8);
  EXPECT_NE(error_of([&] { load_state_dict(path); }).find("unsupported dtype 'Q9'"),
            std::string::npos);
  write(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8);
  EXPECT_NE(error_of([&] { load_state_dict(path); }).find("truncated"), std::string::npos);
  // element counts and byte sizes in checked arithmetic: a crafted shape must not wrap
  write(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})", 16);
  EXPECT_NE(error_of([&] { load_state_dict(path); }).find("has more elements than any file holds"),
            std::string::npos);
  write(R"({"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,16]}})", 16);
  EXPECT_NE(error_of([&] { load_state_dict(path); }).find("needs more bytes than any file holds"),
            std::string::npos);
}

class VaeTest : public ::testing::TestWithParam<const char*> {};

TEST_P(VaeTest, DecoderMatchesPythonAndQuantisesAsReference) {
  const std::string kind = GetParam();
  const VaeDecoder vae = VaeDecoder::load(fixture(kind));
  EXPECT_EQ(vae.config().upsampling(), 2);
  for (const char* res : {"8x8", "6x10"}) {
    const at::Tensor img = vae.decode(load_npy(kind + "_z" + res));
    const at::Tensor want = load_npy(kind + "_img" + res);
    ASSERT_EQ(img.sizes(), want.sizes());
    EXPECT_LT(relative_error(img, want), 1e-5) << kind << " " << res;
    // uint8 from the reference images: identical except where the two float results
    // straddle an integer boundary
    const at::Tensor u8 = to_uint8_nhwc(want);
    EXPECT_TRUE(at::equal(u8, load_npy(kind + "_u8_" + std::string(res))));
  }
}

INSTANTIATE_TEST_SUITE_P(BothFileKinds, VaeTest, ::testing::Values("vae_new", "vae_old"));

TEST(Vae, QuantisationClampsAndTruncates) {
  const at::Tensor x = at::tensor({-2.0f, -1.0f, -0.999f, 0.0f, 0.5f, 0.996f, 1.0f, 3.0f})
                           .view({1, 1, 2, 4})
                           .expand({1, 3, 2, 4});
  const at::Tensor u = to_uint8_nhwc(x);  // (1, 2, 4, 3)
  const std::vector<int> want = {0, 0, 0, 128, 191, 254, 255, 255};
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(u[0][i / 4][i % 4][1].item<int>(), want[i]) << i;
}

TEST(Vae, MissingWeightsAndBadConfig) {
  EXPECT_NE(error_of([] { VaeDecoder::load(fixture("no_such_vae")); }).find("does not exist"),
            std::string::npos);
  const StateDict sd = load_state_dict(fixture("vae_new/diffusion_pytorch_model.safetensors"));
  VaeConfig c = VaeConfig::from_json(fixture("vae_new/config.json"));
  c.layers_per_block = 2;
  const std::string e = error_of([&] { VaeDecoder(c, sd, "cpu", Precision::kFp32); });
  EXPECT_NE(e.find("missing"), std::string::npos) << e;
  EXPECT_NE(e.find("decoder.up_blocks.0.resnets.2.conv1.weight"), std::string::npos) << e;
}

TEST(Vae, ConfigErrorsNameTheFileAndKey) {
  const std::string dir = ::testing::TempDir() + "/vae_config";
  std::filesystem::create_directories(dir);
  auto err = [&](const std::string& json) {
    std::ofstream(dir + "/config.json") << json;
    return error_of([&] { VaeConfig::from_json(dir + "/config.json"); });
  };
  EXPECT_NE(err("{\"act_fn\": \"gelu\"}").find("act_fn must be \"silu\", got \"gelu\""),
            std::string::npos);
  EXPECT_NE(
      err("{\"layers_per_block\": \"two\"}").find("key 'layers_per_block' has the wrong type"),
      std::string::npos);
  EXPECT_NE(err("{\"block_out_channels\": [30], \"norm_num_groups\": 32}")
                .find("block_out_channels 30 must be a positive multiple of norm_num_groups 32"),
            std::string::npos);
  EXPECT_NE(err("{not json").find("not valid JSON"), std::string::npos);
  EXPECT_NE(err("{\"up_block_types\": [\"CrossAttnUpBlock2D\"]}").find("UpDecoderBlock2D"),
            std::string::npos);
}

// DiT-S/2 (random weights, latent 4) sampled with DDPM-250 (learned sigma, cfg 1.5, both
// guidance variants) and DDIM-50 (eta 0 with cfg 1.5, eta 1 without) from the noise and
// labels of the fixture, against tests/python/dit_reference.py (written from the spec).
TEST(DiT, DdpmAndDdimLatentsAndImagesMatchThePythonReference) {
  using namespace sit::samplers;
  SiTOptions o;
  o.name = "DiT-S/2";
  o.keep_learned_sigma = true;
  const SiT net(load_state_dict(fixture("dit_s2.pt")), o);
  ASSERT_EQ(net.config().input_size, 4);
  ASSERT_TRUE(net.config().learn_sigma);
  const VaeDecoder vae = VaeDecoder::load(fixture("vae_new"));
  const at::Tensor x_T = load_npy("dit_xT"), y = load_npy("dit_y");
  const ModelFn fn = [&](const at::Tensor& x, const at::Tensor& t, const at::Tensor& yy) {
    return net.forward(x, t, yy);
  };
  struct Case {
    const char* tag;
    SamplerFamily family;
    const char* respacing;
    double scale;
    CfgChannels channels;
    double eta;
  };
  const Case cases[] = {
      {"ddpm250_cfg3", SamplerFamily::kDdpm, "250", 1.5, CfgChannels::kFirst3, 0},
      {"ddpm250_cfgall", SamplerFamily::kDdpm, "250", 1.5, CfgChannels::kAll, 0},
      {"ddim50_eta0", SamplerFamily::kDdim, "ddim50", 1.5, CfgChannels::kFirst3, 0},
      {"ddim50_eta1", SamplerFamily::kDdim, "ddim50", 1.0, CfgChannels::kFirst3, 1}};
  for (const Case& c : cases) {
    const std::string tag = std::string("dit_") + c.tag;
    const GaussianDiffusion d = GaussianDiffusion::spaced(c.respacing);
    const at::Tensor noise = load_npy(tag + "_noise");  // (T', B, 4, 4, 4)
    ASSERT_EQ(noise.size(0), d.num_timesteps());
    const bool guided = c.scale != 1.0;
    GuidanceOptions g;
    g.scale = c.scale;
    g.channels = c.channels;
    DiscreteOptions options;
    options.respacing = c.respacing;
    options.eta = c.eta;
    const auto twice = [&](const at::Tensor& t) { return guided ? at::cat({t, t}) : t; };
    const at::Tensor labels = guided ? at::cat({y, at::full_like(y, 1000)}) : y;
    const DiscreteResult r = sample_discrete(
        guided ? guided_model(fn, g) : fn, d, c.family, options, twice(x_T), labels,
        [&](int64_t step) { return twice(noise[step]); });
    const at::Tensor latent = r.x.narrow(0, 0, x_T.size(0));
    const at::Tensor want = load_npy(tag + "_latent");
    const double diff = (latent - want).abs().max().item<double>();
    EXPECT_LT(diff, 1e-5 * std::max(1.0, want.abs().max().item<double>())) << c.tag;

    // uint8 images: equal except where the reference's 127.5 x + 128 lies within 1e-3 of
    // an integer (the truncation boundary), where float round-off may fall either side
    const at::Tensor u8 = to_uint8_nhwc(vae.decode(latent));
    const at::Tensor want_u8 = load_npy(tag + "_u8"), pixels = load_npy(tag + "_pixels");
    ASSERT_EQ(u8.sizes(), want_u8.sizes());
    const at::Tensor differ = u8.to(at::kInt) != want_u8.to(at::kInt);
    const at::Tensor distance = (pixels - pixels.round()).abs();
    const at::Tensor tie = distance < 1e-3;
    EXPECT_EQ((differ & ~tie).sum().item<int64_t>(), 0) << c.tag;
    std::cout << c.tag << ": max |latent difference| " << diff << " (latents up to "
              << want.abs().max().item<double>() << "), " << differ.sum().item<int64_t>()
              << " of " << differ.numel() << " uint8 values differ (ties)\n";
    EXPECT_LE((u8.to(at::kInt) - want_u8.to(at::kInt)).abs().max().item<int>(), 1) << c.tag;
    EXPECT_GT(want_u8.to(at::kFloat).std().item<double>(), 1.0) << c.tag << ": images not flat";
  }
}

// REPA (protocols.md §3): its checkpoint (projection heads ignored, qk_norm, the legacy
// decoder_blocks layout) and its samplers as sit-eval's SiT samplers on the REPA adapter
// (tau = 1 - t, v = -v_R): Heun with REPA's quirks = heun-last-euler with the interval
// decided at each step's start, Euler, and Euler-Maruyama = SiT's EM (sigma form, Mean last
// step 0.04); all-channel guidance on tau <= 0.7 = guidance_interval 0.3,1 in code time.
TEST(Repa, CheckpointsAndSamplersMatchThePythonReference) {
  using namespace sit::samplers;
  SiTOptions o;
  o.ignore_prefixes = {"projectors."};
  StateDict plain = load_state_dict(fixture("repa_s2.pt"));
  StateDict legacy = load_state_dict(fixture("repa_s2_legacy.pt"));
  EXPECT_EQ(rename_repa_legacy_keys(plain), 0);
  EXPECT_EQ(rename_repa_legacy_keys(legacy), 4 * 14);  // 4 blocks of 14 tensors (qk_norm)
  EXPECT_TRUE(legacy.find("blocks.11.attn.q_norm.weight").defined());
  const SiT net(plain, o), from_legacy(legacy, o);
  ASSERT_TRUE(net.config().qk_norm);
  ASSERT_FALSE(net.config().learn_sigma);
  // without the prefix rule the heads are unexpected keys (strict loading)
  sit::test::expect_error([&] { SiT(load_state_dict(fixture("repa_s2.pt")), SiTOptions()); },
                          {"unexpected", "projectors.0.0.weight"});

  const at::Tensor z = load_npy("repa_z").to(at::kDouble), y = load_npy("repa_y");
  const ModelFn fn = [&](const at::Tensor& x, const at::Tensor& t, const at::Tensor& yy) {
    return net.forward_repa(x, t, yy);
  };
  const at::Tensor legacy_out =
      from_legacy.forward_repa(z, at::full({2}, 0.3, at::kDouble), y);
  EXPECT_TRUE(legacy_out.equal(fn(z, at::full({2}, 0.3, at::kDouble), y)));
  const VaeDecoder vae = VaeDecoder::load(fixture("vae_new"));
  const at::Tensor sde_noise = load_npy("repa_sde_noise");  // (19, B, 4, 4, 4) float64

  struct Case {
    const char* tag;
    SamplerFamily family;
    OdeMethod method;
    int64_t points;
    double scale;
    bool interval;
  };
  const Case cases[] = {
      {"ode_heun", SamplerFamily::kOde, OdeMethod::kHeunLastEuler, 11, 1.8, true},
      {"ode_euler", SamplerFamily::kOde, OdeMethod::kEuler, 11, 1.5, false},
      {"sde", SamplerFamily::kSde, OdeMethod::kEuler, 20, 1.8, true}};
  for (const Case& c : cases) {
    const std::string tag = std::string("repa_") + c.tag;
    SamplerConfig cfg;
    cfg.family = c.family;
    cfg.ode.method = c.method;
    cfg.num_steps = c.points;
    cfg.guidance.scale = c.scale;
    cfg.guidance.channels = CfgChannels::kAll;
    if (c.interval) cfg.guidance.interval.time = std::make_pair(0.3, 1.0);
    SampleResult r;
    if (c.family == SamplerFamily::kSde) {
      // sample()'s wiring with the reference's noise draws in place of the per-sample streams
      auto state = std::make_shared<GuidanceState>();
      Field field(guided_model(fn, cfg.guidance, state), Prediction::kVelocity,
                  Interpolant(PathType::kLinear));
      const auto twice = [](const at::Tensor& t) { return at::cat({t, t}); };
      const std::vector<double> grid = linspace_grid(0.0, 0.96, c.points);
      r.x = integrate_sde(field, twice(z), at::cat({y, at::full_like(y, 1000)}), grid,
                          cfg.sde_options, [&](int64_t k) { return twice(sde_noise[k]); },
                          [&](int64_t step, double t) {
                            state->step = step;
                            state->step_time = t;
                          })
                .narrow(0, 0, 2);
      r.nfe_uncond = {state->guided_evaluations};
      r.nfe = {field.calls()};
    } else {
      r = sample(fn, cfg, z, y, {0, 1}, 0);
    }
    const at::Tensor want = load_npy(tag + "_latent");
    const double diff = (r.x - want).abs().max().item<double>();
    EXPECT_LT(diff, 1e-5 * std::max(1.0, want.abs().max().item<double>())) << c.tag;
    EXPECT_EQ(r.nfe_uncond[0], load_npy(tag + "_guided")[0].item<int64_t>()) << c.tag;
    EXPECT_EQ(r.nfe[0], c.method == OdeMethod::kHeunLastEuler ? 19 : c.points - 1 +
                        (c.family == SamplerFamily::kSde ? 1 : 0)) << c.tag;

    // REPA's uint8 rule, equal except at truncation ties
    const at::Tensor u8 = to_uint8_nhwc(vae.decode(r.x.to(at::kFloat)), Quantization::kRepa);
    const at::Tensor want_u8 = load_npy(tag + "_u8"), pixels = load_npy(tag + "_pixels");
    const at::Tensor differ = u8.to(at::kInt) != want_u8.to(at::kInt);
    const at::Tensor tie = (pixels - pixels.round()).abs() < 1e-3;
    EXPECT_EQ((differ & ~tie).sum().item<int64_t>(), 0) << c.tag;
    std::cout << c.tag << ": max |latent difference| " << diff << ", guided evaluations "
              << r.nfe_uncond[0] << ", " << differ.sum().item<int64_t>() << " of "
              << differ.numel() << " uint8 values differ (ties)\n";
    // REPA's rule is half a level below DiT's: floor(127.5 x + 127.5) vs floor(127.5 x + 128)
    const at::Tensor dit_u8 = to_uint8_nhwc(vae.decode(r.x.to(at::kFloat)));
    const at::Tensor step = dit_u8.to(at::kInt) - u8.to(at::kInt);
    EXPECT_GE(step.min().item<int>(), 0);
    EXPECT_LE(step.max().item<int>(), 1);
    EXPECT_GT(step.sum().item<int64_t>(), 0);
  }
}

// LightningDiT (protocols.md §4.2): a random-weight LightningDiT-B/1 in the released
// layout (training checkpoint, ema entry, float16 storage, RoPE buffers) matches the
// independent Python forward; a two-block qk-norm variant sampled with LightningDiT's
// protocol (Euler on the 0.3-shifted grid, channels 0..2 of 32 guided from t >= 0.125)
// gives the Python reference's latents.
TEST(LightningDiT, ReleasedLayoutForwardAndSamplerMatchThePythonReference) {
  using namespace sit::samplers;
  const StateDict sd = load_state_dict(fixture("lightningdit_b1.pt"));
  EXPECT_EQ(sd.entry, "ema");
  const LightningDiT net(sd, LightningDiTOptions());
  EXPECT_EQ(net.config().name(), "LightningDiT-B/1");
  EXPECT_EQ(net.config().mlp_hidden(), 2048);
  EXPECT_FALSE(net.config().qk_norm);
  const at::Tensor want = load_npy("lightningdit_b1_out");
  const at::Tensor got =
      net.forward(load_npy("lightningdit_x"), load_npy("lightningdit_t"), load_npy("lightningdit_y"));
  const double diff = (got - want).abs().max().item<double>();
  std::cout << "LightningDiT-B/1: max |difference| " << diff << " (outputs up to "
              << want.abs().max().item<double>() << ")\n";
  EXPECT_LT(diff, 1e-5 * std::max(1.0, want.abs().max().item<double>()));
  // the XL RoPE tables at the spec's check 11: token (h = 2, w = 5), pair 0 and pair 18
  const auto [cos, sin] = lightningdit_rope_tables(72, 16);
  const int64_t token = 2 * 16 + 5;
  EXPECT_NEAR(cos[token][0].item<float>(), std::cos(2.0), 1e-6);
  EXPECT_NEAR(sin[token][1].item<float>(), std::sin(2.0), 1e-6);
  EXPECT_NEAR(cos[token][36].item<float>(), std::cos(5.0), 1e-6);
  EXPECT_NEAR(sin[token][2].item<float>(), std::sin(2.0 * std::pow(10000.0, -2.0 / 36)), 1e-6);
  EXPECT_EQ(LightningDiTConfig::named("LightningDiT-XL/1").mlp_hidden(), 3072);
  EXPECT_EQ(LightningDiTConfig::named("L/1").mlp_hidden(), 2730);
  sit::test::expect_error([&] { LightningDiT(load_state_dict(fixture("dit_s2.pt")), {}); },
                          {"not a LightningDiT checkpoint", "blocks.0.mlp.w12.weight"});

  const LightningDiT small(load_state_dict(fixture("lightningdit_qk2.pt")), {});
  ASSERT_TRUE(small.config().qk_norm);
  ASSERT_EQ(small.config().depth, 2);
  SamplerConfig cfg;
  cfg.ode.method = OdeMethod::kEuler;
  cfg.num_steps = 20;
  cfg.time_shift = 0.3;
  cfg.guidance.scale = 6.7;
  cfg.guidance.interval.start = 0.125;
  const ModelFn fn = [&](const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
    return small.forward(x, t, y);
  };
  const SampleResult r = sample(fn, cfg, load_npy("lightningdit_z"),
                                load_npy("lightningdit_labels"), {0, 1}, 0);
  const at::Tensor sampled = load_npy("lightningdit_sample");
  const double sdiff = (r.x - sampled).abs().max().item<double>();
  std::cout << "LightningDiT sampler: max |latent difference| " << sdiff << "\n";
  EXPECT_LT(sdiff, 1e-5 * std::max(1.0, sampled.abs().max().item<double>()));
  EXPECT_EQ(r.nfe[0], 19);
}

// EDM2 reference pickles get the checks of stored statistics in npz / HDF5 files
// (metrics::check_stored_stats): a sigma that is no covariance matrix gave a negative FID.
TEST(Edm2Reference, StatisticsThatAreNoCovarianceAreRefused) {
  const auto dir = sit::test::temp_dir();
  const auto write = [&](const std::string& name, const Eigen::MatrixXd& sigma) {
    sit::io::FeatureSet set;
    set.path = name;
    set.provenance.count = 10;
    set.stats[sit::io::kPool].mu = Eigen::VectorXd::Zero(sigma.rows());
    set.stats[sit::io::kPool].sigma = sigma;
    const std::string path = (dir / name).string();
    sit::models::save_edm2_reference(path, set);
    return path;
  };
  Eigen::MatrixXd good = Eigen::MatrixXd::Identity(3, 3);
  good(0, 1) = good(1, 0) = 0.5;
  EXPECT_NEAR(sit::models::load_edm2_reference(write("good.pkl", good))
                  .stats.at(sit::io::kPool).sigma(0, 1),
              0.5, 0.0);
  const Eigen::MatrixXd negative = -5.0 * Eigen::MatrixXd::Identity(3, 3);
  sit::test::expect_error(
      [&] { sit::models::load_edm2_reference(write("neg.pkl", negative)); },
      {"neg.pkl: ['fid']['sigma'] is not a covariance matrix: diagonal entry 0 is -5"});
  Eigen::MatrixXd asymmetric = good;
  asymmetric(2, 0) = 0.25;
  sit::test::expect_error(
      [&] { sit::models::load_edm2_reference(write("asym.pkl", asymmetric)); },
      {"asym.pkl: ['fid']['sigma'] is not a covariance matrix: entries (2, 0) and (0, 2)"});
  Eigen::MatrixXd nan = good;
  nan(1, 2) = std::nan("");
  sit::test::expect_error([&] { sit::models::load_edm2_reference(write("nan.pkl", nan)); },
                          {"nan.pkl: ['fid']['sigma'] holds NaN or Inf (entry (1, 2))"});
}
