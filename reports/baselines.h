#pragma once
/// Published SiT / DiT numbers (reports/baselines/sit_paper.toml, compiled into the
/// program) matched to result records, for "published" and "difference" columns and a
/// reproduction summary.
///
/// Matching rules: the record's model must be a SiT model (`sit:SiT-XL/2`); then
///  - Table 7 rows ([[system]], guided): same model, same cfg scale, sampler family equal
///    to the record's mode (ODE / SDE). A row whose sampler names a method (dopri5)
///    matches only that method; plain rows match the family's other methods.
///  - Table 8 rows ([[size]], no guidance, 250 NFE): same model, cfg 1, planned NFE 250,
///    ode or sde by the record's mode. SiT-XL/2 has a 400K and a 7M row; the 7M row (the
///    released checkpoint) is used.
///  - [[protocol]] rows (published protocols, eval/protocols.h): a record that ran the
///    preset of that name unchanged (it carries `protocol` and no `protocol_overrides`),
///    any model kind. Checked first.
/// Tables 1, 4-6 (ablations at 400K steps) are in the file but not matched.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "reports/results.h"

namespace sit::reports {

struct Published {
  std::string where;                      ///< "SiT paper Table 7: SiT-XL/2 SDE, cfg 1.5"
  std::map<std::string, double> metrics;  ///< fid, sfid, inception_score, precision, recall
  std::string note;
};

class Baselines {
 public:
  /// "sit-paper" (built in) or a TOML file of the same layout.
  static Baselines load(const std::string& name_or_path);
  std::optional<Published> match(const Record& r) const;
  const std::string& source() const { return source_; }

 private:
  struct Row {
    std::string table, model, sampler, family, method, note;
    std::string protocol;  ///< [[protocol]] rows: the preset's name
    double cfg = 1.0;
    int64_t nfe = -1;  ///< -1: any
    std::map<std::string, double> metrics;
  };
  std::string source_;
  std::vector<Row> rows_;
};

/// "FID 2.09 vs published 2.06: +0.03" for every matched metric of the record, one line
/// per record, with its label and where the number was published.
std::string reproduction_summary(const std::vector<Record>& records, const Baselines& b,
                                 int digits = 2);

/// Adds "published_<metric>" and "delta_<metric>" fields to matched records.
void annotate_with_baseline(std::vector<Record>& records, const Baselines& b);

}  // namespace sit::reports
