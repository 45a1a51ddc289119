// libFuzzer target: a sweep's results.jsonl as `sit-eval report`, `compare` and `gate` read
// it (reports/results: load_results), then every table made from the records — the long
// table and the pivot in Markdown, CSV, LaTeX and HTML, the paper layouts — and the
// comparison with the built-in published baselines; and the bytes as a `gate` baseline
// file (reports/results: load_gate_baseline, JSON). Results files are read from other
// people's runs and other machines; a clean sit::Error is the expected outcome for bad
// input; a crash, a hang, an unbounded allocation or a sanitizer report is a finding.
// Built and run by scripts/fuzz.sh.
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "common/error.h"
#include "reports/baselines.h"
#include "reports/paper_tables.h"
#include "reports/results.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sit::reports;
  static const std::string path = "/tmp/sit-fuzz-results-" + std::to_string(::getpid()) + ".jsonl";
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  try {  // the same bytes as a `gate` baseline file (JSON: records or {"configurations"})
    (void)load_gate_baseline(path);
  } catch (const sit::Error&) {
  }
  std::vector<Record> records;
  try {
    records = load_results(path);
  } catch (const sit::Error&) {
    return 0;  // refused with a message: what bad input should get
  }
  for (const TableFormat f : {TableFormat::kMarkdown, TableFormat::kCsv, TableFormat::kLatex,
                              TableFormat::kHtml}) {
    try {
      (void)long_table(records, f);
    } catch (const sit::Error&) {
    }
    try {
      (void)pivot_table(records, "fid", f, kPaper);
    } catch (const sit::Error&) {
    }
  }
  for (const char* layout : {"diffusion", "ode-sde", "system", "nfe"}) {
    try {
      (void)paper_table(records, layout);
    } catch (const sit::Error&) {
    }
  }
  try {
    const Baselines b = Baselines::load("sit-paper");
    (void)reproduction_summary(records, b);
    annotate_with_baseline(records, b);
    (void)long_table(records, TableFormat::kMarkdown);
  } catch (const sit::Error&) {
  }
  return 0;
}
