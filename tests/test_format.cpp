#include <fstream>
#include <nlohmann/json.hpp>

#include "common/format.h"
#include "common/sha256.h"
#include "test_util.h"

TEST(PythonRepr, MatchesPythonForFixtureValues) {
  std::ifstream in(sit::test::fixture("python_repr.json"));
  const auto cases = nlohmann::json::parse(in);
  ASSERT_GT(cases.size(), 10u);
  for (const auto& c : cases) {
    const double v = std::strtod(c[0].get<std::string>().c_str(), nullptr);  // hex float
    EXPECT_EQ(sit::python_repr(v), c[1].get<std::string>()) << c[0];
  }
}

TEST(PythonRepr, SpecialValues) {
  EXPECT_EQ(sit::python_repr(0.0), "0.0");
  EXPECT_EQ(sit::python_repr(-0.0), "-0.0");
  EXPECT_EQ(sit::python_repr(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(sit::python_repr(std::nan("")), "nan");
}

TEST(ShapeString, NumpyNotation) {
  EXPECT_EQ(sit::shape_string({}), "()");
  EXPECT_EQ(sit::shape_string({7}), "(7,)");
  EXPECT_EQ(sit::shape_string({3, 4}), "(3, 4)");
}

TEST(Sha256, KnownDigests) {
  auto digest = [](const std::string& s) {
    sit::Sha256 h;
    h.update(s.data(), s.size());
    return h.hex();
  };
  EXPECT_EQ(digest(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // pieces of every size give the digest of the whole
  const std::string million(1000000, 'a');
  sit::Sha256 h;
  for (size_t i = 0, step = 1; i < million.size(); i += step, step = step % 97 + 1)
    h.update(million.data() + i, std::min(step, million.size() - i));
  EXPECT_EQ(h.hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Bytes from files in messages and `inspect` output: control bytes escaped (a terminal
// escape in an npz member name or a provenance string does nothing), long texts cut.
TEST(Printable, EscapesControlBytesAndCuts) {
  EXPECT_EQ(sit::printable("pool.npy"), "pool.npy");
  EXPECT_EQ(sit::printable("a\x1b[2J\x07" "b\n"), "a\\x1b[2J\\x07b\\x0a");
  EXPECT_EQ(sit::printable(std::string("\xff\x00", 2)), "\\xff\\x00");
  EXPECT_EQ(sit::printable(std::string(10, 'x'), 4), "xxxx...");
}
