#include <fstream>
#include <nlohmann/json.hpp>

#include "common/format.h"
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
