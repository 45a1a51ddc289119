// Published-baseline matching and the reproduction summary.
#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "reports/latex.h"
#include "test_util.h"
#include "reports/baselines.h"
#include "reports/html.h"
#include "reports/paper_tables.h"

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

/// The records of a real demo run (scripts/demo.sh, 222 configurations; provenance and
/// timings dropped): 40 samplers, failures with long reasons, guidance forms, FD values from
/// 0.137 to 8512.
std::vector<Record> demo_records() {
  return load_results(sit::test::fixture("demo_results.jsonl"));
}

}  // namespace

TEST(Results, RecordsOfTheWrongShapeAreRefusedWithFileLineAndField) {
  // Found by fuzz_results: a field of another JSON type than sit-eval writes reached the
  // tables and threw inside nlohmann::json (a protocol_overrides array, a line that is
  // not an object). Every such record is refused where the file is read.
  const auto dir = sit::test::temp_dir();
  const std::string good = record("sit:SiT-XL/2", "SDE", "Euler", 1.5, 250, 2.1).dump();
  struct Case {
    std::string line, fragment;
  };
  const Case cases[] = {
      {"[1, 2]", "results.jsonl:2: a result record must be a JSON object, got array"},
      {"\"ok\"", "results.jsonl:2: a result record must be a JSON object, got string"},
      {R"({"id": "x", "protocol": "sit-sde", "protocol_overrides": ["num_steps"]})",
       "results.jsonl:2: field 'protocol_overrides' must be a string, got array"},
      {R"({"id": "x", "cfg_scale": "1.5"})",
       "results.jsonl:2: field 'cfg_scale' must be a number, got \"1.5\""},
      {R"({"id": "x", "nfe_planned": 2.5})",
       "results.jsonl:2: field 'nfe_planned' must be an integer, got number"},
      {R"({"id": "x", "label": {"a": 1}})",
       "results.jsonl:2: field 'label' must be a string, got object"},
      {R"({"id": "x", "fid": "2.06"})", "results.jsonl:2: field 'fid' must be a number or null"},
      {R"({"id": "x", "published_fid": true})",
       "results.jsonl:2: field 'published_fid' must be a number or null, got boolean"},
      {R"({"id": "x", "fid": 2.0,)",  // with the parser's reason
       "results.jsonl:2: not a JSON record (parse error at line 1, column "},
  };
  for (const auto& c : cases) {
    const auto path = dir / "results.jsonl";
    std::ofstream(path) << good << "\n" << c.line << "\n";
    sit::test::expect_error([&] { load_results(path.string()); }, {c.fragment});
  }
  // what sit-eval writes passes: NaN metrics as null, fields the reports do not read as is
  const auto path = dir / "results.jsonl";
  std::ofstream(path) << good << "\n"
                      << R"({"id": "y", "fid": null, "warnings": ["w"], "provenance": {"t": 1}})"
                      << "\n";
  EXPECT_EQ(load_results(path.string()).size(), 2u);
  const auto demo = demo_records();  // a real run's records
  EXPECT_EQ(demo.size(), 222u);
  // a run directory given where its results file is expected (a libstdc++ message before)
  sit::test::expect_error([&] { load_results(dir.string()); },
                          {": is a directory, expected a results file (a run directory's is "
                           "RUN_DIR/results.jsonl)"});
  // a hand-written gate baseline naming one configuration twice (the last won before)
  const auto twice = dir / "baseline.json";
  std::ofstream(twice) << R"([{"id": "a", "fid": 2.0}, {"id": "a", "fid": 3.0}])";
  sit::test::expect_error([&] { load_gate_baseline(twice.string()); },
                          {"baseline.json: configuration a is given twice; each id once"});
  // JSON nested 100,000 deep overflowed the stack when gate / compare copied the record
  // (a helper session): refused where read, past 64 levels; 64 still reads
  const auto nested = [](int depth) {
    return R"({"id": "a", "fid": 2.0, "extra": )" + std::string(depth, '[') +
           std::string(depth, ']') + "}";
  };
  std::ofstream(path) << good << "\n" << nested(100000) << "\n";
  sit::test::expect_error([&] { load_results(path.string()); },
                          {"results.jsonl:2: JSON nested deeper than 64 levels"});
  std::ofstream(path) << good << "\n" << nested(63) << "\n";
  EXPECT_EQ(load_results(path.string()).size(), 2u);
  std::ofstream(twice) << "[" << nested(100000) << "]";
  sit::test::expect_error([&] { load_gate_baseline(twice.string()); },
                          {"baseline.json: JSON nested deeper than 64 levels"});
}

TEST(Results, NullSubnormalAndHugeMetricsRenderInEveryTable) {
  // Found by a helper session: a NaN result (null in the file) threw inside nlohmann::json in
  // the system / nfe / ode-sde layouts, a subnormal FID made std::stod throw on its printed
  // text, and 1e300 was cut at 63 digits by a fixed buffer.
  std::vector<Record> rs;
  for (const double fid : {0.0, 5e-324, 1e300}) {
    rs.push_back(record("sit:SiT-XL/2", "SDE", "Euler", 1.5, 250, fid));
    rs.back()["nfe"] = 250.0;
    rs.back()["num_steps"] = 250;
  }
  rs[0]["fid"] = nullptr;
  for (const char* layout : {"diffusion", "ode-sde", "system", "nfe"})
    EXPECT_NO_THROW(paper_table(rs, layout)) << layout;
  for (const TableFormat f : {TableFormat::kMarkdown, TableFormat::kCsv, TableFormat::kLatex,
                              TableFormat::kHtml})
    EXPECT_NO_THROW(long_table(rs, f));
  EXPECT_EQ(format_metric(1e300, "fid", kSignificant4), "1e+300");
  EXPECT_EQ(format_metric(123456.7, "fid", kSignificant4), "123457");
  const std::string full = format_metric(1e300, "fid", 2);  // every digit, as printf gives
  EXPECT_EQ(full.size(), 304u);
  EXPECT_EQ(full.substr(0, 20), "10000000000000000525");
  EXPECT_EQ(format_metric(5e-324, "fid", kSignificant4), "4.941e-324");
}

TEST(Baselines, BadBaselineFilesNameLineAndKey) {
  // Found by a helper session: a NaN published value printed "published nan", a number for
  // a text key dropped the row silently, and a [[system]] element that is not a table was
  // dereferenced as one.
  const auto dir = sit::test::temp_dir();
  struct Case {
    std::string text, fragment;
  };
  const Case cases[] = {
      {"[[system]]\nmodel = \"SiT-XL/2\"\nsampler = \"SDE\"\nfid = nan\n",
       "b.toml:4: 'fid' must be a finite number"},
      {"[[system]]\nmodel = 5\nsampler = \"SDE\"\nfid = 2.0\n", "b.toml:2: 'model' must be a string"},
      {"system = [1, 2]\n", "b.toml:1: each [[system]] must be a table"},
      {"system = 3\n", "b.toml:1: 'system' must be [[system]] tables"},
      {"[[size]]\nmodel = \"SiT-XL/2\"\n[size.ode]\nfid = \"x\"\n",
       "b.toml:4: 'fid' must be a finite number"},
      {"[[system]]\nmodel = \"SiT-XL/2\"\nsampler = \"SDE\"\ncfg = \"1.5\"\n",
       "b.toml:4: 'cfg' must be a finite number"},
  };
  for (const auto& c : cases) {
    const auto path = dir / "b.toml";
    std::ofstream(path) << c.text;
    sit::test::expect_error([&] { Baselines::load(path.string()); }, {c.fragment});
  }
}

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

TEST(Baselines, DitRecordsMatchTable7AndTable1) {
  const Baselines b = Baselines::load("sit-paper");
  Record ddpm = record("dit:DiT-XL/2", "DDPM", "", 1.5, 250, 2.3);
  const auto p = b.match(ddpm);
  ASSERT_TRUE(p);
  EXPECT_DOUBLE_EQ(p->metrics.at("fid"), 2.27);
  EXPECT_DOUBLE_EQ(p->metrics.at("sfid"), 4.60);
  EXPECT_DOUBLE_EQ(p->metrics.at("recall"), 0.57);
  EXPECT_NE(p->where.find("Table 7: DiT-XL/2 DDPM 250 steps, cfg 1.5"), std::string::npos)
      << p->where;
  // Table 1: DiT at 400K steps without guidance, DDPM 250
  EXPECT_DOUBLE_EQ(b.match(record("dit:DiT-S/2", "DDPM", "", 1.0, 250, 70))->metrics.at("fid"),
                   68.4);
  EXPECT_DOUBLE_EQ(b.match(record("dit:DiT-XL/2", "DDPM", "", 1.0, 250, 20))->metrics.at("fid"),
                   19.5);
  // sample_ddp.py's settings only: "250" with learned-range variance, no clipping
  Record fixed = ddpm;
  fixed["variance_type"] = "fixed-small";
  EXPECT_FALSE(b.match(fixed));
  Record ddim250 = ddpm;
  ddim250["respacing"] = "ddim250";
  EXPECT_FALSE(b.match(ddim250));
  Record own = ddpm;
  own["respacing"] = "250";
  own["variance_type"] = "learned-range";
  own["feature_space"] = "Inception-v3 (ADM, pool/spatial/logits) of the decoded uint8 images";
  EXPECT_TRUE(b.match(own));
  // an FD of latents is not the published FID
  own["feature_space"] = "latent (flattened SiT latents, C x H x W order)";
  EXPECT_FALSE(b.match(own));
  // another budget, another family or a SiT model is not DiT's row
  EXPECT_FALSE(b.match(record("dit:DiT-XL/2", "DDPM", "", 1.5, 50, 3)));
  EXPECT_FALSE(b.match(record("dit:DiT-XL/2", "DDIM", "", 1.5, 250, 3)));
  EXPECT_FALSE(b.match(record("sit:SiT-XL/2", "DDPM", "", 1.5, 250, 3)));
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
  EXPECT_NE(md.find("| published FID | Δ FID |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 2.00 | 2.06 | -0.06 |"), std::string::npos) << md;
}

namespace {

std::vector<Record> sweep_like_records() {
  std::vector<Record> rs;
  for (const char* method : {"euler", "heun2"})
    for (int64_t steps : {5, 9, 17}) {
      Record r = record("gmm:demo", "ODE", method, 1.0,
                        std::string(method) == "euler" ? steps - 1 : 2 * (steps - 1),
                        1.0 / static_cast<double>(steps));
      r["id"] = std::string(method) + std::to_string(steps);
      r["path_type"] = "Linear";
      r["prediction"] = "velocity";
      r["num_steps"] = steps;
      r["nfe"] = r["nfe_planned"].get<int64_t>();
      rs.push_back(r);
    }
  rs.back()["label"] = "a <b> & \"c\"";
  return rs;
}

}  // namespace

TEST(HtmlReport, PlotsWithGnuplotAndANoteWithout) {
  HtmlOptions o;
  o.gnuplot = "gnuplot";  // scripts/deps.sh installs gnuplot-nox
  const std::string page = html_report(sweep_like_records(), o);
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(page.find("<svg"), std::string::npos)
      << "gnuplot-nox missing? " << page.substr(0, 2000);
  EXPECT_NE(page.find("FID per configuration at 16 NFE"), std::string::npos);
  EXPECT_EQ(page.find("Plots omitted"), std::string::npos);
  EXPECT_EQ(page.find("http"), page.find("http://www.w3.org"));  // no external resources
  EXPECT_NE(page.find("<table>"), std::string::npos);

  o.gnuplot = "/nonexistent/gnuplot";
  const std::string bare = html_report(sweep_like_records(), o);
  EXPECT_EQ(bare.find("<svg"), std::string::npos);
  EXPECT_NE(bare.find("Plots omitted: gnuplot was not found"), std::string::npos) << bare;
  EXPECT_NE(bare.find("<td>heun2</td>"), std::string::npos);  // tables still there
}

namespace {

bool have_program(const std::string& name) {
  return std::system(("command -v " + name + " > /dev/null 2>&1").c_str()) == 0;
}

/// Headless Chromium's screenshot of `html` (a file) at `width` x `height` CSS pixels as
/// RGB rows; empty on failure.
std::vector<uint8_t> screenshot(const std::string& html, const std::string& png, int width,
                                int height) {
  const std::string cmd = "timeout 120 chromium --headless --no-sandbox --disable-gpu "
                          "--hide-scrollbars --force-device-scale-factor=1 --screenshot='" +
                          png + "' --window-size=" + std::to_string(width) + "," +
                          std::to_string(height) + " 'file://" + html + "' > '" + png +
                          ".log' 2>&1";
  if (std::system(cmd.c_str()) != 0) return {};
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, png.c_str())) return {};
  image.format = PNG_FORMAT_RGB;
  std::vector<uint8_t> rgb(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, rgb.data(), 0, nullptr)) return {};
  if (static_cast<int>(image.width) != width || static_cast<int>(image.height) != height) return {};
  return rgb;
}

struct Ink {
  double any = 0;  ///< fraction of pixels that are not white
  int64_t coloured = 0;  ///< pixels of a clear hue (data lines; axes and text are grey)
};

Ink ink(const std::vector<uint8_t>& rgb, int width, int x0, int y0, int w, int h) {
  Ink k;
  int64_t n = 0;
  for (int y = y0; y < y0 + h; ++y)
    for (int x = x0; x < x0 + w; ++x) {
      const uint8_t* p = &rgb[(static_cast<size_t>(y) * width + x) * 3];
      const int hi = std::max({p[0], p[1], p[2]}), lo = std::min({p[0], p[1], p[2]});
      if (lo < 235) k.any += 1;
      if (hi - lo > 80) k.coloured += 1;
      ++n;
    }
  k.any /= static_cast<double>(n);
  return k;
}

}  // namespace

// The demo's page as a reader sees it: rendered by headless Chromium (Debian's chromium),
// with every panel non-blank and showing coloured data, legends bounded, FD named as FD,
// the diverging cells listed as out of range, and the best configuration per budget.
// Screenshots stay in build/tests/screenshots.
TEST(HtmlReport, DemoPageRendersInChromium) {
  if (!have_program("gnuplot")) GTEST_SKIP() << "gnuplot not installed (Debian: gnuplot-nox)";
  if (!have_program("chromium")) GTEST_SKIP() << "chromium not installed (Debian: chromium)";
  const std::vector<Record> rs = demo_records();
  HtmlOptions o;
  o.gnuplot = "gnuplot";
  const std::string page = html_report(rs, o);
  // names: a data-space Frechet distance is FD, nowhere FID
  EXPECT_EQ(page.find("FID"), std::string::npos);
  EXPECT_NE(page.find("FD against NFE, one panel per interpolant / prediction"), std::string::npos);
  // the answer: each front entry better than every configuration with fewer NFE
  const auto front = pareto_front(rs, "fid");
  ASSERT_FALSE(front.empty());
  for (const auto& r : rs)
    if (text_field(r, "status") == "ok")
      for (const Record* f : front)
        if (r["nfe"].get<double>() <= (*f)["nfe"].get<double>() && &r != f) {
          EXPECT_GE(r["fid"].get<double>(), (*f)["fid"].get<double>()) << text_field(r, "id");
        }
  EXPECT_NE(page.find("<td>" + text_field(*front.back(), "id") + "</td>"), std::string::npos);
  // the diverging SBDM cells (8512) lie beyond the robust range and are listed
  EXPECT_NE(page.find("<h3>Out of range</h3>"), std::string::npos);
  EXPECT_NE(page.find("<td>8512</td>"), std::string::npos);
  // panels: their SVGs, legend entries (the key's 9 pt texts) at most kMaxLegendEntries
  std::vector<std::string> panels;
  for (size_t at = 0; (at = page.find("<figure class=\"panel\"", at)) != std::string::npos;) {
    const size_t end = page.find("</figure>", at);
    panels.push_back(page.substr(at, end - at));
    at = end;
  }
  ASSERT_GE(panels.size(), 9u);  // 9 interpolant / prediction pairs, DDPM, DDIM
  for (const auto& p : panels) {
    int entries = 0;
    for (size_t at = 0; (at = p.find("font-size=\"9.00\"", at)) != std::string::npos; ++at)
      ++entries;
    EXPECT_GE(entries, 1);
    EXPECT_LE(entries, kMaxLegendEntries) << p.substr(0, 300);
  }
  const std::string dir = std::string(SIT_TEST_OUTPUT_DIR) + "/screenshots";
  std::filesystem::create_directories(dir);
  // the page itself
  std::ofstream(dir + "/demo_report.html") << page;
  const int width = 1400, height = 4000;
  const auto shot = screenshot(dir + "/demo_report.html", dir + "/demo_report.png", width, height);
  ASSERT_FALSE(shot.empty()) << "chromium failed; see " << dir << "/demo_report.png.log";
  EXPECT_GT(ink(shot, width, 0, 0, width, height).coloured, 5000);
  // every panel on its own tile of a grid: non-blank, with coloured data drawn
  const int tile_w = 480, tile_h = 440, cols = 4;
  const int rows = static_cast<int>((panels.size() + cols - 1) / cols);
  std::ofstream grid(dir + "/demo_panels.html");
  grid << "<!DOCTYPE html><html><head><style>body{margin:0;background:#fff}"
          ".t{position:absolute;width:460px;height:400px;overflow:hidden}"
          ".t svg{width:460px;height:400px}</style></head><body>\n";
  for (size_t i = 0; i < panels.size(); ++i)
    grid << "<div class=\"t\" style=\"left:" << (i % cols) * tile_w << "px;top:"
         << (i / cols) * tile_h << "px\">" << panels[i].substr(panels[i].find("<svg"))
         << "</div>\n";
  grid << "</body></html>\n";
  grid.close();
  const auto tiles = screenshot(dir + "/demo_panels.html", dir + "/demo_panels.png",
                                cols * tile_w, rows * tile_h);
  ASSERT_FALSE(tiles.empty()) << "chromium failed; see " << dir << "/demo_panels.png.log";
  for (size_t i = 0; i < panels.size(); ++i) {
    const Ink k = ink(tiles, cols * tile_w, static_cast<int>(i % cols) * tile_w,
                      static_cast<int>(i / cols) * tile_h, 460, 400);
    EXPECT_GT(k.any, 0.02) << "panel " << i << " is blank";
    EXPECT_GT(k.coloured, 30) << "panel " << i << " shows no data";
  }
}

TEST(HtmlReport, EscapesText) {
  EXPECT_EQ(html_escape("a <b> & \"c\""), "a &lt;b&gt; &amp; &quot;c&quot;");
  EXPECT_EQ(parse_table_format("html"), TableFormat::kHtml);
  const std::string t =
      long_table({record("x<y", "ODE", "euler", 1.0, 4, 0.5)}, TableFormat::kHtml);
  EXPECT_EQ(t.find("x<y"), std::string::npos);
}

namespace {

Record sde(const std::string& path, const std::string& pred, const std::string& form, double fid) {
  Record r = record("sit:SiT-B/2", "SDE", "Euler", 1.0, 250, fid);
  r["path_type"] = path;
  r["prediction"] = pred;
  r["diffusion_form"] = form;
  r["n_samples"] = 50000;
  return r;
}

}  // namespace

TEST(PaperTables, DiffusionLayoutBoldsTheBestPerColumn) {
  const std::vector<Record> rs = {
      sde("Linear", "velocity", "SBDM", 33.6), sde("Linear", "velocity", "sigma", 33.5),
      sde("VP", "score", "SBDM", 35.7), sde("VP", "score", "sigma", 37.1)};
  // a longtable in \footnotesize (fits portrait: no landscape), the header repeated on
  // continuation pages
  const std::string head =
      "\\toprule\nInterpolant / model & $w(t)$ = SBDM & $w(t)$ = sigma \\\\\n\\midrule\n";
  EXPECT_EQ(paper_table(rs, "diffusion", "fid", kPaper),
            "\\begingroup\n\\footnotesize\n\\setlength{\\tabcolsep}{4pt}\n"
            "\\begin{longtable}{@{}lcc@{}}\n"
            "\\caption{FID of SDE sampling by diffusion coefficient (D = w/2); 50000 samples per "
            "configuration; NFE 250.}\\\\\n" +
                head + "\\endfirsthead\n\\caption[]{(continued)}\\\\\n" + head +
                "\\endhead\n\\bottomrule\n\\endlastfoot\n"
                "Linear / velocity & \\textbf{33.60} & \\textbf{33.50} \\\\\n"
                "VP / score & 35.70 & 37.10 \\\\\n"
                "\\end{longtable}\n\\endgroup\n");
  // four significant digits by default; the caption counts only the cells shown, and a
  // Frechet distance off Inception features is FD
  std::vector<Record> mixed = rs;
  mixed.push_back(record("sit:SiT-B/2", "ODE", "heun2", 1.0, 64, 1.0));
  for (auto& r : mixed)
    r["feature_space"] = "identity (data-space features)";
  const std::string t = paper_table(mixed, "diffusion");
  EXPECT_NE(t.find("\\caption{FD of SDE sampling by diffusion coefficient (D = w/2); 50000 "
                   "samples per configuration; NFE 250.}"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("Linear / velocity & \\textbf{33.6} & \\textbf{33.5} \\\\"), std::string::npos)
      << t;
}

TEST(PaperTables, OdeSdeAndSystemLayouts) {
  Record ode = record("sit:SiT-S/2", "ODE", "heun2", 1.0, 250, 58.97);
  ode["inception_score"] = 23.34;
  Record sde_r = record("sit:SiT-S/2", "SDE", "Euler", 1.0, 250, 57.64);
  sde_r["inception_score"] = 24.78;
  const std::string t = paper_table({ode, sde_r}, "ode-sde");
  // the ADM metrics the records have (FID and IS here; no empty sFID, P, R columns)
  EXPECT_NE(t.find("& \\multicolumn{2}{c}{ODE} & \\multicolumn{2}{c}{SDE}"), std::string::npos)
      << t;
  EXPECT_NE(t.find("Model & FID$\\downarrow$ & IS$\\uparrow$ & FID$\\downarrow$ & IS$\\uparrow$"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("sit:SiT-S/2 & \\textbf{58.97} & \\textbf{23.34} & \\textbf{57.64} & "
                   "\\textbf{24.78}"),
            std::string::npos)
      << t;
  Record worse = record("sit:SiT-XL/2", "SDE", "Heun", 1.5, 250, 2.5);
  const std::string s = paper_table({sde_r, worse}, "system");
  EXPECT_NE(s.find("sit:SiT-XL/2 SDE Heun & \\textbf{2.5}"), std::string::npos) << s;
  EXPECT_NE(s.find("sit:SiT-S/2 SDE Euler & 57.64"), std::string::npos) << s;
  // the modern metrics a record carries join the system table, names escaped for LaTeX
  Record modern = record("sit:SiT-XL/2", "SDE", "Euler", 1.5, 250, 2.2);
  modern["fd_dinov2"] = 95.5;
  modern["cmmd"] = 0.4321;
  const std::string m = paper_table({modern}, "system");
  EXPECT_NE(m.find("FID$\\downarrow$ & FD\\_DINOv2$\\downarrow$ & CMMD$\\downarrow$"),
            std::string::npos) << m;
  EXPECT_NE(m.find("& \\textbf{95.5} & \\textbf{0.4321}"), std::string::npos) << m;
  EXPECT_NE(paper_table({modern}, "system", "fid", kPaper).find("& \\textbf{95.50} & \\textbf{0.432}"),
            std::string::npos);
  EXPECT_NE(paper_table({modern}, "nfe", "fd_dinov2").find("FD\\_DINOv2"), std::string::npos);
  EXPECT_THROW(paper_table({ode}, "diffusion"), sit::Error);  // no SDE rows
  EXPECT_THROW(paper_table({ode}, "poster"), sit::Error);
}

TEST(PaperTables, NfeLayoutPutsDitBesideSiTAtMatchedNfe) {
  auto sampler = [](Record r, const std::string& label) {
    r["sampler"] = label;
    return r;
  };
  Record ddpm = sampler(record("dit:DiT-B/2", "DDPM", "", 1.0, 250, 43.5), "DDPM 250 learned-range");
  ddpm["respacing"] = "250";
  Record ddpm50 = sampler(record("dit:DiT-B/2", "DDPM", "", 1.0, 50, 60.1), "DDPM 50 learned-range");
  ddpm50["respacing"] = "50";
  Record sde_r = sampler(record("sit:SiT-B/2", "SDE", "Euler", 1.0, 250, 33.0), "SDE Euler 250 sigma");
  sde_r["path_type"] = "Linear";
  sde_r["prediction"] = "velocity";
  sde_r["num_steps"] = 250;
  // two samplers, two budgets: NFE rows (turned: the sampler names are wide)
  const std::string two = paper_table({ddpm, ddpm50, sde_r}, "nfe", "fid", kPaper);
  EXPECT_NE(two.find("\\caption{FID at matched NFE (one network evaluation per sample and step; "
                     "a guided pair counts once), best per NFE in bold; NFE 50, 250.}"),
            std::string::npos)
      << two;
  EXPECT_NE(two.find("NFE & DiT-B/2 DDPM learned-range & SiT-B/2 Linear/velocity SDE Euler "
                     "sigma \\\\\n\\midrule\n\\endfirsthead"),
            std::string::npos)
      << two;
  EXPECT_NE(two.find("\\endlastfoot\n50 & \\textbf{60.10} & -- \\\\\n250 & 43.50 & "
                     "\\textbf{33.00} \\\\\n\\end{longtable}"),
            std::string::npos)
      << two;
  // more samplers than budgets: the samplers run down the page
  Record ode = sampler(record("sit:SiT-B/2", "ODE", "heun2", 1.0, 250, 35.0), "ODE heun2 126");
  ode["path_type"] = "Linear";
  ode["prediction"] = "velocity";
  ode["num_steps"] = 126;
  const std::string three = paper_table({ddpm, sde_r, ode}, "nfe");
  EXPECT_NE(three.find("Sampler & NFE 250 \\\\"), std::string::npos) << three;
  EXPECT_NE(three.find("SiT-B/2 Linear/velocity SDE Euler sigma & \\textbf{33} \\\\"),
            std::string::npos)
      << three;
  EXPECT_THROW(paper_table({record("x", "ODE", "dopri5", 1.0, -1, 1)}, "nfe"), sit::Error);
  // "ddim50" is another sampler than "50" at the same NFE; two records that still share a
  // cell get a column each
  Record stride = sampler(record("dit:DiT-B/2", "DDPM", "", 1.0, 50, 61.0), "DDPM ddim50 learned-range");
  stride["respacing"] = "ddim50";
  Record twin = ddpm50;
  twin["id"] = "0123456789ab";
  const std::string t = paper_table({ddpm50, stride, twin}, "nfe");
  EXPECT_NE(t.find("DiT-B/2 DDPM ddim-stride learned-range"), std::string::npos) << t;
  EXPECT_NE(t.find("DiT-B/2 DDPM learned-range [0123456789ab]"), std::string::npos) << t;
  EXPECT_THROW(paper_table({ddpm}, "ode-sde"), sit::Error);  // no ODE/SDE rows
  // --digits sig4: four significant digits, as in the long tables
  Record small = sampler(record("gmm:demo", "DDPM", "", 1.0, 8, 0.0012345), "DDPM 8 fixed-small");
  small["respacing"] = "8";
  EXPECT_NE(paper_table({small}, "nfe", "fid", kSignificant4).find("\\textbf{0.001234}"),
            std::string::npos)
      << paper_table({small}, "nfe", "fid", kSignificant4);
}

TEST(PaperTables, LatexEscaping) {
  EXPECT_EQ(latex_escape("a_b & 50% #1 $x$ {y} ~ ^ \\"),
            "a\\_b \\& 50\\% \\#1 \\$x\\$ \\{y\\} \\textasciitilde{} \\textasciicircum{} "
            "\\textbackslash{}");
  EXPECT_EQ(latex_escape("t0 > 0, a < b"), "t0 $>$ 0, a $<$ b");
  EXPECT_EQ(latex_escape("(--t0 1e-3) a-b ---"), "(-{}-t0 1e-3) a-b -{}-{}-");
  // symbols the default fonts lack become math; other UTF-8 passes through
  EXPECT_EQ(latex_escape("\u0394 FD \u2212 1 \u00d7 2 \u03c3 caf\u00e9"),
            "$\\Delta$ FD $-$ 1 $\\times$ 2 $\\sigma$ caf\u00e9");
}

namespace {

/// pdflatex's complaints about `doc` that matter: errors, and overfull boxes beyond 1 pt
/// (what does not fit the page). Empty when the document compiles cleanly.
std::string pdflatex_problems(const std::string& doc, const std::string& name) {
  const std::string dir = std::filesystem::temp_directory_path() / "sit-eval-tests" /
                          ("latex." + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/" + name + ".tex") << doc;
  const int rc = std::system(("cd '" + dir + "' && pdflatex -interaction=nonstopmode -halt-on-error " +
                              name + ".tex > " + name + ".out 2>&1")
                                 .c_str());
  std::ifstream log(dir + "/" + name + ".out");
  std::string problems, line;
  if (rc != 0) problems += "pdflatex failed\n";
  while (std::getline(log, line)) {
    if (line.rfind("!", 0) == 0 || line.find("Missing character") != std::string::npos)
      problems += line + "\n";
    const auto o = line.find("Overfull \\");
    if (o != std::string::npos) {
      const auto paren = line.find('(', o);
      const double pt = paren == std::string::npos ? 1e9 : std::strtod(line.c_str() + paren + 1, nullptr);
      if (pt > 1.0) problems += line + "\n";
    }
  }
  if (!std::filesystem::exists(dir + "/" + name + ".pdf")) problems += "no PDF\n";
  return problems;
}

std::string document(const std::string& body) {
  return std::string("\\documentclass{article}\n\\usepackage{") + kLatexPackages +
         "}\n\\begin{document}\n" + body + "\\end{document}\n";
}

}  // namespace

TEST(PaperTables, EveryLatexOutputCompilesWithPdflatex) {
  if (std::system("command -v pdflatex > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "pdflatex not installed (Debian: texlive-latex-recommended)";
  // Published columns (with their Delta header), awkward names, and each layout.
  std::vector<Record> rs = {record("sit:SiT-XL/2", "SDE", "Euler", 1.5, 250, 2.09),
                            record("sit:my_model#1 & 50%~{x}^$\\", "ODE", "heun2", 1.0, 250, 3)};
  rs[0]["inception_score"] = 270.1;
  rs[1]["precision"] = 0.5;
  annotate_with_baseline(rs, Baselines::load("sit-paper"));
  std::vector<Record> diffusion = {sde("Linear", "velocity", "SBDM", 33.6),
                                   sde("VP", "score_{x}", "sigma", 37.1)};
  std::string body = long_table(rs, TableFormat::kLatex, kPaper);
  body += pivot_table(diffusion, "fid", TableFormat::kLatex);
  body += paper_table(diffusion, "diffusion");
  body += paper_table(rs, "ode-sde");
  body += paper_table(rs, "system");
  body += paper_table(rs, "nfe");
  ASSERT_NE(body.find("published FID"), std::string::npos);
  EXPECT_EQ(pdflatex_problems(document(body), "small"), "") << body;
}

// The demo's tables fit the page: every table of a real 222-configuration run compiles
// with no overfull box beyond 1 pt (before: the long table 625 pt too wide with a blank
// first page, the pivot 1820 pt); the long ones break across pages.
TEST(PaperTables, DemoSizedTablesFitThePage) {
  if (std::system("command -v pdflatex > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "pdflatex not installed (Debian: texlive-latex-recommended)";
  const std::vector<Record> rs = demo_records();
  ASSERT_EQ(rs.size(), 222u);
  const std::vector<std::pair<std::string, std::string>> tables = {
      {"long", long_table(rs, TableFormat::kLatex)},
      {"pivot", pivot_table(rs, "fid", TableFormat::kLatex)},
      {"diffusion", paper_table(rs, "diffusion")},
      {"odesde", paper_table(rs, "ode-sde")},
      {"system", paper_table(rs, "system")},
      {"nfe", paper_table(rs, "nfe", "recall")}};
  for (const auto& [name, tex] : tables) {
    EXPECT_EQ(pdflatex_problems(document(tex), name), "") << name << ":\n" << tex.substr(0, 3000);
    EXPECT_EQ(tex.find("resizebox"), std::string::npos) << name;
  }
  // data-space features: FD, not FID, in headers and captions
  EXPECT_NE(tables[0].second.find("& FD & "), std::string::npos);
  EXPECT_EQ(tables[1].second.find("FID"), std::string::npos);
  EXPECT_NE(tables[2].second.find("\\caption{FD of SDE sampling"), std::string::npos);
  // the diffusion layout's caption lists the NFE of its own cells (SDE Euler 9, 17, 33 and
  // Heun 17, 33, 65), not the ODE and DDPM budgets of the run
  EXPECT_NE(tables[2].second.find("NFE 9, 17, 33, 65.}"), std::string::npos) << tables[2].second;
  // the ode-sde row names its configurations
  EXPECT_NE(tables[3].second.find("gmm:demo ODE: ODE "), std::string::npos) << tables[3].second;
  EXPECT_NE(tables[3].second.find("gmm:demo SDE: SDE "), std::string::npos) << tables[3].second;
}

// Published protocols: a record that ran a preset unchanged (no protocol_overrides) with
// Inception features matches its [[protocol]] row, whatever the model kind; a changed one
// falls back to the table rules (and a REPA model matches none of them).
TEST(Baselines, UnchangedProtocolRunsMatchTheirPublishedNumbers) {
  const Baselines b = Baselines::load("sit-paper");
  Record repa = record("repa:SiT-XL/2", "SDE", "Euler", 1.8, 250, 1.5);
  repa["protocol"] = "repa-sde";
  repa["protocol_fingerprint"] = "c999d9081323";
  repa["feature_space"] = "Inception-v3 (pool_3) of the decoded uint8 images";
  const auto p = b.match(repa);
  ASSERT_TRUE(p);
  EXPECT_DOUBLE_EQ(p->metrics.at("fid"), 1.42);
  EXPECT_NE(p->where.find("REPA README"), std::string::npos) << p->where;
  repa["protocol_overrides"] = "samples 50000 -> 10000";
  EXPECT_FALSE(b.match(repa));
  Record light = record("lightningdit:LightningDiT-XL/1", "ODE", "euler", 6.7, 249, 1.4);
  light["protocol"] = "lightningdit";
  EXPECT_DOUBLE_EQ(b.match(light)->metrics.at("fid"), 1.35);
  light["feature_space"] = "latent (flattened SiT latents, C x H x W order)";
  EXPECT_FALSE(b.match(light));  // not FID
  Record sde = record("sit:SiT-XL/2", "SDE", "Euler", 1.5, 250, 2.1);
  sde["protocol"] = "sit-sde";
  sde["protocol_overrides"] = "samples 50000 -> 10000";
  EXPECT_DOUBLE_EQ(b.match(sde)->metrics.at("fid"), 2.06);  // Table 7's rule still holds
}
