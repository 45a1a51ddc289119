#include "metrics/per_class_fid.h"

#include <map>
#include <optional>

#include "common/error.h"

namespace sit::metrics {
namespace {

std::map<int64_t, std::vector<int64_t>> rows_by_class(const std::vector<int64_t>& labels) {
  std::map<int64_t, std::vector<int64_t>> out;
  for (size_t i = 0; i < labels.size(); ++i)
    out[labels[i]].push_back(static_cast<int64_t>(i));
  return out;
}

FeatureStats stats_of(const FeatureView& rows, const std::vector<int64_t>& which) {
  StatsAccumulator acc(rows.cols);
  for (int64_t i : which)
    acc.add(rows.row(i), 1);
  return acc.finalize();
}

}  // namespace

void check_class_counts(const std::vector<int64_t>& sample_labels,
                        const std::vector<int64_t>& reference_labels,
                        const PerClassFidOptions& o) {
  if (o.min_per_class < 2)
    fail("per-class FID: min_per_class must be >= 2 (a covariance needs 2 rows), got ",
         o.min_per_class);
  if (reference_labels.empty()) fail("per-class FID: the reference has no labels");
  if (sample_labels.empty()) fail("per-class FID: the samples have no labels");
  const auto ref = rows_by_class(reference_labels), smp = rows_by_class(sample_labels);
  for (const auto& [c, rows] : smp)
    if (!ref.count(c))
      fail("per-class FID: samples are labelled ", c, " (", rows.size(),
           " rows), a class the reference does not have (its classes: ", ref.begin()->first,
           "..", ref.rbegin()->first, ", ", ref.size(), " in all)");
  for (const auto& [c, rows] : ref) {
    const auto it = smp.find(c);
    const size_t have = it == smp.end() ? 0 : it->second.size();
    if (have < static_cast<size_t>(o.min_per_class))
      fail("per-class FID: class ", c, " has ", have, " generated samples, at least ",
           o.min_per_class, " are needed (", smp.size(), " of the reference's ", ref.size(),
           " classes are present; sample class-balanced labels or more samples)");
    if (!o.against_whole_reference && rows.size() < static_cast<size_t>(o.min_per_class))
      fail("per-class FID: class ", c, " has ", rows.size(), " reference rows, at least ",
           o.min_per_class, " are needed");
  }
}

PerClassFidResult per_class_fid(const FeatureView& samples,
                                const std::vector<int64_t>& sample_labels,
                                const FeatureView& reference,
                                const std::vector<int64_t>& reference_labels,
                                const PerClassFidOptions& o) {
  if (samples.cols != reference.cols)
    fail("per-class FID: feature dimensions must match, got ", samples.cols, " (samples) and ",
         reference.cols, " (reference)");
  if (static_cast<int64_t>(sample_labels.size()) != samples.rows)
    fail("per-class FID: ", sample_labels.size(), " sample labels for ", samples.rows, " rows");
  if (static_cast<int64_t>(reference_labels.size()) != reference.rows)
    fail("per-class FID: ", reference_labels.size(), " reference labels for ", reference.rows,
         " rows");
  check_class_counts(sample_labels, reference_labels, o);
  check_finite(samples, "per-class FID samples");
  check_finite(reference, "per-class FID reference");
  const auto ref = rows_by_class(reference_labels), smp = rows_by_class(sample_labels);
  std::optional<FeatureStats> whole;
  if (o.against_whole_reference) whole = compute_stats(reference);
  PerClassFidResult r;
  double sum = 0;
  for (const auto& [c, rows] : ref) {
    const FeatureStats s = stats_of(samples, smp.at(c));
    const double fid = frechet_distance(s, whole ? *whole : stats_of(reference, rows), o.frechet)
                           .distance;
    r.classes.push_back(c);
    r.fid.push_back(fid);
    r.sample_count.push_back(static_cast<int64_t>(smp.at(c).size()));
    r.reference_count.push_back(static_cast<int64_t>(rows.size()));
    sum += fid;
  }
  r.intra_fid = sum / static_cast<double>(r.classes.size());
  return r;
}

}  // namespace sit::metrics
