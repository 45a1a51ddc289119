// Published-baseline matching and the reproduction summary.
#include <gtest/gtest.h>

#include "common/error.h"
#include "reports/baselines.h"

using namespace sit::reports;

namespace {

Record record(const std::string& model, const std::string& mode, const std::string& method,
              double cfg, int64_t nfe_planned, double fid) {
  Record r;
  r["id"] = "abcdef012345";
  r["label"] = mode + " " + method;
  r["model"] = model;
  r["mode"] = mode;
  r["method"] = method;
  r["cfg_scale"] = cfg;
  r["nfe_planned"] = nfe_planned;
  r["fid"] = fid;
  r["status"] = "ok";
  return r;
}

}  // namespace

TEST(Baselines, GuidedXL2MatchesTable7AndSummarises) {
  const Baselines b = Baselines::load("sit-paper");
  const Record sde = record("sit:SiT-XL/2", "SDE", "Euler", 1.5, 250, 2.09);
  const auto p = b.match(sde);
  ASSERT_TRUE(p);
  EXPECT_DOUBLE_EQ(p->metrics.at("fid"), 2.06);
  EXPECT_DOUBLE_EQ(p->metrics.at("inception_score"), 277.50);
  EXPECT_NE(p->where.find("Table 7"), std::string::npos);
  EXPECT_EQ(reproduction_summary({sde}, b),
            "abcdef012345 SDE Euler: FID 2.09 vs published 2.06: +0.03 (SiT paper Table 7: "
            "SiT-XL/2 SDE, cfg 1.5)\n");
}

TEST(Baselines, MethodSpecificRowsAndUnguidedTable8) {
  const Baselines b = Baselines::load("sit-paper");
  // dopri5 has its own (user reproduction) row; heun2 falls back to the plain ODE row
  EXPECT_DOUBLE_EQ(
      b.match(record("sit:SiT-XL/2", "ODE", "dopri5", 1.5, -1, 2.1))->metrics.at("fid"), 2.08);
  EXPECT_DOUBLE_EQ(
      b.match(record("sit:SiT-XL/2", "ODE", "heun2", 1.5, 250, 2.1))->metrics.at("fid"), 2.15);
  // no guidance, 250 NFE: Table 8; XL/2 uses the 7M-step row
  EXPECT_DOUBLE_EQ(b.match(record("sit:SiT-S/2", "ODE", "heun2", 1.0, 250, 60))->metrics.at("fid"),
                   58.97);
  EXPECT_DOUBLE_EQ(b.match(record("sit:SiT-XL/2", "SDE", "Euler", 1.0, 250, 9))->metrics.at("fid"),
                   8.26);
}

TEST(Baselines, NonMatchingRecords) {
  const Baselines b = Baselines::load("sit-paper");
  EXPECT_FALSE(b.match(record("gmm:demo", "SDE", "Euler", 1.5, 250, 0.1)));
  EXPECT_FALSE(b.match(record("sit:SiT-XL/2", "SDE", "Euler", 4.0, 250, 3)));  // other cfg
  EXPECT_FALSE(b.match(record("sit:SiT-S/2", "ODE", "heun2", 1.0, 100, 60)));  // other NFE
  EXPECT_THROW(Baselines::load("/no/such/file.toml"), sit::Error);
}

TEST(Baselines, AnnotateAddsPublishedAndDelta) {
  const Baselines b = Baselines::load("sit-paper");
  std::vector<Record> rs = {record("sit:SiT-XL/2", "SDE", "Euler", 1.5, 250, 2.0),
                            record("gmm:demo", "ODE", "euler", 1.0, 8, 0.1)};
  annotate_with_baseline(rs, b);
  EXPECT_DOUBLE_EQ(rs[0]["published_fid"].get<double>(), 2.06);
  EXPECT_NEAR(rs[0]["delta_fid"].get<double>(), -0.06, 1e-12);
  EXPECT_FALSE(rs[1].contains("published_fid"));
  const std::string md = long_table(rs, TableFormat::kMarkdown, kPaper);
  EXPECT_NE(md.find("| published FD | Δ FD |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 2.00 | 2.06 | -0.06 |"), std::string::npos) << md;
}
