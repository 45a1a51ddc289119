#include <filesystem>
#include <fstream>

#include "reference_stats/npy.h"
#include "test_util.h"

using namespace sit::io;
namespace fs = std::filesystem;

using sit::test::slurp;

namespace {

void spit(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(s.data(), static_cast<std::streamsize>(s.size()));
}

// The arrays of make_fixtures.py's dtype_arrays(), checked through properties that do not
// need their exact values: shapes, dtypes, and self-consistency across the two files.
void check_fixture_npz(const std::string& name) {
  NpzReader z(sit::test::fixture(name));
  EXPECT_TRUE(z.has("u1") && z.has("i4") && z.has("i8") && z.has("f4") && z.has("f8"));
  EXPECT_EQ(z.open("u1").shape(), (std::vector<int64_t>{5, 4, 3}));
  EXPECT_EQ(z.open("u1").dtype(), DType::kU1);
  EXPECT_EQ(z.open("i4").dtype(), DType::kI4);
  EXPECT_EQ(z.open("i8").dtype(), DType::kI8);
  EXPECT_EQ(z.open("f4").dtype(), DType::kF4);
  EXPECT_EQ(z.open("f8").dtype(), DType::kF8);
  EXPECT_EQ(z.open("scalar").shape(), std::vector<int64_t>{});
  EXPECT_EQ(z.open("scalar").read_all<double>(), std::vector<double>{3.25});
  EXPECT_EQ(z.open("empty").shape(), (std::vector<int64_t>{0, 4}));
  EXPECT_TRUE(z.open("empty").read_all<float>().empty());
}

}  // namespace

TEST(Npz, ReadsNumpyStoredAndDeflatedAlike) {
  check_fixture_npz("npz_stored.npz");
  check_fixture_npz("npz_deflated.npz");
  NpzReader a(sit::test::fixture("npz_stored.npz")), b(sit::test::fixture("npz_deflated.npz"));
  EXPECT_EQ(a.open("u1").read_all<uint8_t>(), b.open("u1").read_all<uint8_t>());
  EXPECT_EQ(a.open("i4").read_all<int64_t>(), b.open("i4").read_all<int64_t>());
  EXPECT_EQ(a.open("i8").read_all<int64_t>(), b.open("i8").read_all<int64_t>());
  EXPECT_EQ(a.open("f4").read_all<float>(), b.open("f4").read_all<float>());
  EXPECT_EQ(a.open("f8").read_all<double>(), b.open("f8").read_all<double>());
}

TEST(Npz, AllHeaderVersions) {
  std::vector<double> expected(12);
  for (int i = 0; i < 12; ++i)
    expected[i] = i;
  for (int v = 1; v <= 3; ++v) {
    auto arr = open_npy(sit::test::fixture("npy_v" + std::to_string(v) + ".npy"));
    EXPECT_EQ(arr.shape(), (std::vector<int64_t>{3, 4}));
    EXPECT_EQ(arr.read_all<double>(), expected) << "version " << v;
  }
  NpzReader z(sit::test::fixture("npz_versions.npz"));
  for (int v = 1; v <= 3; ++v)
    EXPECT_EQ(z.open("v" + std::to_string(v)).read_all<double>(), expected) << "member v" << v;
}

TEST(Npz, RoundTripEveryDtypeStoredDeflatedAndZip64) {
  const auto dir = sit::test::temp_dir();
  std::vector<uint8_t> u8(2 * 3 * 3);
  for (size_t i = 0; i < u8.size(); ++i)
    u8[i] = static_cast<uint8_t>(i * 13);
  const std::vector<int32_t> i4 = {-5, 0, 7};
  const std::vector<int64_t> i8 = {1LL << 40, -3};
  const std::vector<float> f4 = {1.5f, -2.25f, 3e-8f, 6.0f};
  const std::vector<double> f8 = {0.1, 1e300};
  for (auto [compress, zip64] :
       {std::pair{false, false}, {true, false}, {false, true}, {true, true}}) {
    const auto path =
        (dir / ("rt" + std::to_string(compress) + std::to_string(zip64) + ".npz")).string();
    NpzWriter w(path, compress, zip64);
    w.add("u1", {2, 3, 3}, u8.data());
    w.add("i4", {3}, i4.data());
    w.add("i8", {2}, i8.data());
    w.add("f4", {2, 2}, f4.data());
    w.add("f8", {}, f8.data());  // 0-d
    w.close();
    NpzReader r(path);
    EXPECT_EQ(r.keys(), (std::vector<std::string>{"u1", "i4", "i8", "f4", "f8"}));
    EXPECT_EQ(r.open("u1").read_all<uint8_t>(), u8);
    EXPECT_EQ(r.open("i4").read_all<int64_t>(), (std::vector<int64_t>{-5, 0, 7}));
    EXPECT_EQ(r.open("i8").read_all<int64_t>(), i8);
    EXPECT_EQ(r.open("f4").read_all<float>(), f4);
    EXPECT_EQ(r.open("f8").read_all<double>(), std::vector<double>{0.1});
    EXPECT_EQ(r.open("f8").shape(), std::vector<int64_t>{});
  }
}

TEST(Npz, StreamsRowBatchesWithoutReadingWhole) {
  const auto dir = sit::test::temp_dir();
  const int64_t n = 1000, d = 7;
  for (bool compress : {false, true}) {
    const auto path = (dir / (compress ? "z.npz" : "s.npz")).string();
    {
      NpzWriter w(path, compress);
      w.begin("x", DType::kF4, {n, d});
      std::vector<float> rows(10 * d);
      for (int64_t b = 0; b < n; b += 10) {
        for (int64_t i = 0; i < 10 * d; ++i)
          rows[i] = static_cast<float>(b * d + i);
        w.append_rows(rows.data(), 10);
      }
      w.end();
      w.close();
    }
    NpzReader r(path);
    auto arr = r.open("x");
    std::vector<float> batch(33 * d);
    for (int64_t start : {0, 33, 500, 967, 100}) {  // includes a backwards seek
      arr.read_rows(start, 33, batch.data());
      for (int64_t i = 0; i < 33 * d; ++i)
        ASSERT_EQ(batch[i], float(start * d + i));
    }
    std::vector<double> as_double(5 * d);
    arr.read_rows(995, 5, as_double.data());
    EXPECT_EQ(as_double.back(), double(n * d - 1));
    // An array keeps its file open after its reader is gone.
    NpyArray kept = NpzReader(path).open("x");
    kept.read_rows(967, 33, batch.data());
    EXPECT_EQ(batch.back(), float(n * d - 1));
  }
}

TEST(Npz, WriterMisuseAndAbandonedFilesLeaveNothingBehind) {
  const auto dir = sit::test::temp_dir();
  const auto path = (dir / "out.npz").string();
  spit(path, "precious");
  {
    NpzWriter w(path);
    w.begin("x", DType::kF4, {4, 2});
    std::vector<float> rows(2 * 2);
    w.append_rows(rows.data(), 2);
    sit::test::expect_error([&] { w.end(); }, {"'x' got 2 rows", "(4, 2)", "needs 4"});
    sit::test::expect_error([&] { w.append_rows(rows.data(), 3); }, {"gets 5 rows"});
  }  // destroyed without close(): the old file stays, no temporary is left
  EXPECT_EQ(slurp(path), "precious");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

TEST(NpzErrors, MissingKeyNamesFileKeyAndKeysPresent) {
  NpzReader z(sit::test::fixture("features_ref.npz"));
  sit::test::expect_error(
      [&] { z.open("logits"); },
      {"features_ref.npz", "required key 'logits' is missing", "pool, spatial"});
}

TEST(NpzErrors, UnsupportedDtypesAndFortranOrder) {
  sit::test::expect_error([] { open_npy(sit::test::fixture("bad_bigendian.npy")); },
                          {"bad_bigendian.npy", "dtype must be one of", "'>f4'"});
  sit::test::expect_error([] { open_npy(sit::test::fixture("bad_complex.npy")); }, {"'<c8'"});
  sit::test::expect_error([] { open_npy(sit::test::fixture("bad_fortran.npy")); },
                          {"bad_fortran.npy", "Fortran-ordered"});
  // A header's bytes are echoed printable (a terminal escape as \x1b) and cut at 200.
  const auto dir = sit::test::temp_dir();
  const auto npy = [&](const std::string& name, const std::string& header) {
    std::string bytes = "\x93NUMPY\x01";
    bytes += '\0';
    bytes += static_cast<char>(header.size() & 0xff);
    bytes += static_cast<char>(header.size() >> 8);
    bytes += header + std::string(8, '\0');
    spit(dir / name, bytes);
    return (dir / name).string();
  };
  sit::test::expect_error(
      [&] { open_npy(npy("esc.npy", "{'descr': '\x1b[31m<f4', 'fortran_order': False, "
                                    "'shape': (2,), }\n")); },
      {"esc.npy: dtype must be one of |u1, <i4, <i8, <f4, <f8 (little-endian), got "
       "'\\x1b[31m<f4'"});
  sit::test::expect_error([&] { open_npy(npy("long.npy", std::string(300, '~') + "\n")); },
                          {"long.npy: malformed .npy header", std::string(200, '~') + "..."});
}

TEST(NpzErrors, WrongMagicTruncatedAndCorrupt) {
  const auto dir = sit::test::temp_dir();
  const std::string good = slurp(sit::test::fixture("npz_deflated.npz"));
  // Not a zip at all.
  spit(dir / "text.npz", "hello, this is not a zip file at all......");
  sit::test::expect_error([&] { NpzReader((dir / "text.npz").string()); },
                          {"text.npz", "end-of-central-directory record not found"});
  // Truncated: the directory is gone.
  spit(dir / "cut.npz", good.substr(0, good.size() / 2));
  sit::test::expect_error([&] { NpzReader((dir / "cut.npz").string()); }, {"cut.npz", "truncated"});
  // Corrupt deflate data: flip bytes inside the first member's compressed stream.
  std::string bad = good;
  for (size_t i = 60; i < 90; ++i)
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
  spit(dir / "flip.npz", bad);
  sit::test::expect_error(
      [&] {
        NpzReader z((dir / "flip.npz").string());
        for (const auto& k : z.keys())
          z.open(k).read_all<double>();
      },
      {"flip.npz", "corrupt"});
  // A .npy member with the wrong magic.
  {
    sit::io::ZipWriter w((dir / "magic.npz").string(), false);
    const std::string junk = "NOTNUMPY and some more bytes";
    w.begin_member("x.npy", junk.size());
    w.write(junk.data(), junk.size());
    w.end_member();
    w.close();
  }
  sit::test::expect_error([&] { NpzReader((dir / "magic.npz").string()).open("x"); },
                          {"magic.npz member 'x'", "wrong magic"});
}

// Declared shapes are checked in overflow-safe arithmetic against the data present: a
// 2^40-row header over 16 bytes and a shape whose element count wraps around int64 are
// errors before anything is allocated (the second crashed before).
TEST(NpzErrors, HugeAndOverflowingShapesAreRefused) {
  const auto dir = sit::test::temp_dir();
  auto write_npz = [&](const std::string& name, const std::string& shape) {
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
    header += std::string(118 - header.size(), ' ') + "\n";
    std::string npy = std::string("\x93NUMPY\x01\x00", 8);
    npy += static_cast<char>(header.size() & 0xff);
    npy += static_cast<char>(header.size() >> 8);
    npy += header + std::string(16, '\0');
    sit::io::ZipWriter w((dir / name).string(), false);
    w.begin_member("pool.npy", npy.size());
    w.write(npy.data(), npy.size());
    w.end_member();
    w.close();
  };
  write_npz("huge.npz", "(1099511627776, 2048)");
  write_npz("wrap.npz", "(100000000000000000, 100000)");  // 10^22 wraps int64
  write_npz("long.npz", "(99999999999999999999999, 8)");
  write_npz("empty.npz", "(0, 8888888888888, 2522222)");  // 0 rows, a row size that wraps
  sit::test::expect_error([&] { NpzReader((dir / "huge.npz").string()).open("pool"); },
                          {"huge.npz member 'pool'", "truncated array", "(1099511627776, 2048)"});
  sit::test::expect_error([&] { NpzReader((dir / "wrap.npz").string()).open("pool"); },
                          {"wrap.npz member 'pool'", "more elements than any file can hold"});
  sit::test::expect_error([&] { NpzReader((dir / "empty.npz").string()).open("pool"); },
                          {"empty.npz member 'pool'", "more elements than any file can hold"});
  sit::test::expect_error([&] { NpzReader((dir / "long.npz").string()).open("pool"); },
                          {"long.npz member 'pool'", "dimension 99999999999999999999999 is out of range"});
}

// Fuzzing findings (scripts/fuzz.sh), each a fixture that must give a clean error: a ZIP64
// extra field whose length wrapped the 16-bit field position (a hang); an empty array whose
// row size overflowed int64 (undefined behaviour in row_size()).
TEST(NpzErrors, FuzzFindingsGiveCleanErrors) {
  sit::test::expect_error(
      [] { NpzReader(sit::test::fixture("fuzz_zip_extra_field_hang.npz")); },
      {"fuzz_zip_extra_field_hang.npz", "truncated zip"});
  sit::test::expect_error([] { open_npy(sit::test::fixture("fuzz_npy_empty_row_overflow.npy")); },
                          {"fuzz_npy_empty_row_overflow.npy", "more elements than any file can hold"});
}

// A zip of something else — a TorchScript module or torch.save checkpoint (members like
// "inception/data/0") — is named as not an npz, not as an npz missing a key.
TEST(NpzErrors, AZipWithoutNpyMembersIsNotAnNpz) {
  const auto dir = sit::test::temp_dir();
  {
    sit::io::ZipWriter w((dir / "module.pt").string(), false);
    for (const char* name : {"inception/data.pkl", "inception/data/0"}) {
      w.begin_member(name, 4);
      w.write("abcd", 4);
      w.end_member();
    }
    w.close();
  }
  sit::test::expect_error([&] { NpzReader z((dir / "module.pt").string()); },
                          {"module.pt: not an npz file: none of its 2 zip members is a .npy array",
                           "'inception/data.pkl'", "TorchScript"});
}

TEST(NpzErrors, UnsupportedCompressionMethod) {
  const auto dir = sit::test::temp_dir();
  std::string z = slurp(sit::test::fixture("npz_stored.npz"));
  // Patch every central-directory entry's method field to 12 (bzip2).
  for (size_t p = 0; (p = z.find("PK\x01\x02", p)) != std::string::npos; p += 4)
    z[p + 10] = 12;
  spit(dir / "bz.npz", z);
  sit::test::expect_error([&] { NpzReader((dir / "bz.npz").string()); },
                          {"compression method 12", "stored (0) and deflated (8)"});
}

TEST(NpzErrors, TruncatedArrayData) {
  const auto dir = sit::test::temp_dir();
  const std::string npy = slurp(sit::test::fixture("npy_v1.npy"));
  spit(dir / "short.npy", npy.substr(0, npy.size() - 8));
  sit::test::expect_error([&] { open_npy((dir / "short.npy").string()); },
                          {"short.npy", "truncated array", "(3, 4)"});
}

TEST(NpzErrors, ConversionsThatLoseMeaningAreRefused) {
  NpzReader z(sit::test::fixture("npz_stored.npz"));
  sit::test::expect_error([&] { z.open("f4").read_all<int64_t>(); },
                          {"member 'f4'", "convertible to <i8", "got <f4"});
  std::vector<uint8_t> buf(100);
  sit::test::expect_error([&] { z.open("f8").read_rows_u8(0, 1, buf.data()); },
                          {"must be |u1", "got <f8"});
}

// Pieces of 8 MiB and more are read by every thread, each part checksummed and the CRCs
// joined: the data and the verdict must be those of the one-thread read.
TEST(Npz, LargePiecesReadInParallelKeepDataAndChecksum) {
  const auto dir = sit::test::temp_dir();
  const int64_t n = 2600, d = 1024;  // 10.2 MiB of float32: one piece spans both threads
  std::vector<float> x(static_cast<size_t>(n * d));
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(i % 9973) * 0.5f;
  const auto path = (dir / "big.npz").string();
  {
    NpzWriter w(path, false);
    w.add("x", {n, d}, x.data());
    w.close();
  }
  std::vector<float> back(x.size());
  NpzReader(path).open("x").read_rows(0, n, back.data());  // one piece: the parallel path
  EXPECT_EQ(back, x);
  std::vector<float> half(static_cast<size_t>(1300 * d));
  auto arr = NpzReader(path).open("x");
  arr.read_rows(0, 1300, half.data());  // two 5 MiB pieces: in order, checked at the end
  arr.read_rows(1300, 1300, half.data());
  EXPECT_TRUE(std::equal(half.begin(), half.end(), x.begin() + 1300 * d));
  // one flipped bit deep in the second thread's part is a CRC mismatch
  std::string bytes = slurp(path);
  bytes[bytes.size() - 40 - 200000] ^= 0x10;
  spit(dir / "flip.npz", bytes);
  sit::test::expect_error(
      [&] { NpzReader((dir / "flip.npz").string()).open("x").read_rows(0, n, back.data()); },
      {"flip.npz", "member 'x.npy' is corrupt (CRC-32 mismatch)"});
  // cut short: the member's bytes are not all there
  spit(dir / "cut.npz", slurp(path).substr(0, 6 << 20));
  sit::test::expect_error([&] { NpzReader((dir / "cut.npz").string()); }, {"cut.npz", "truncated"});
}

// A member's declared size is what readers allocate: it must be one its data can produce
// (stored: the bytes present; deflated: deflate's 1032:1 at most). A zip bomb's directory
// or a damaged one is refused when the file is opened.
TEST(NpzErrors, DeclaredSizesBeyondTheDataAreRefused) {
  const auto dir = sit::test::temp_dir();
  for (const char* name : {"npz_deflated.npz", "npz_stored.npz"}) {
    std::string bytes = slurp(sit::test::fixture(name));
    const size_t cd = bytes.find("PK\x01\x02");
    ASSERT_NE(cd, std::string::npos);
    for (int i = 0; i < 4; ++i)  // uncompressed size of the first member: 0x7fffffff
      bytes[cd + 24 + i] = static_cast<char>(i == 3 ? 0x7f : 0xff);
    spit(dir / name, bytes);
    sit::test::expect_error([&] { NpzReader((dir / name).string()); },
                            {name, "corrupt zip", "declares 2147483647 bytes"});
  }
}
