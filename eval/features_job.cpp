#include "eval/features_job.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "common/build_info.h"
#include "common/error.h"
#include "common/sha256.h"
#include "metrics/feature_stats.h"
#include "models/feature_extractor.h"
#include "reference_stats/h5_store.h"
#include "reference_stats/image_reader.h"

namespace fs = std::filesystem;

namespace sit::eval {
namespace {

void append_rows(io::FeatureMatrix& m, const at::Tensor& rows, int64_t at_row) {
  std::copy(rows.data_ptr<float>(), rows.data_ptr<float>() + rows.numel(),
            m.data.begin() + at_row * m.cols);
}

io::FeatureMatrix matrix(int64_t rows, int64_t cols) {
  io::FeatureMatrix m;
  m.rows = rows;
  m.cols = cols;
  m.data.assign(static_cast<size_t>(rows * cols), 0.0f);
  return m;
}

}  // namespace

io::FeatureSet extract_features(io::ImageSource& source, const models::FeatureExtractor& e,
                                const ExtractOptions& o) {
  const int64_t n = source.count();
  if (n < 1) fail(source.describe(), ": no images");
  if (o.batch_size < 1) fail("batch size must be >= 1, got ", o.batch_size);
  const std::vector<models::FeatureBlockInfo> blocks = e.blocks();
  io::FeatureSet f;
  f.path = source.describe();
  std::map<std::string, metrics::StatsAccumulator> accumulators;
  for (const auto& b : blocks)
    if (o.skip.count(b.name))
      continue;
    else if (o.stats_only.count(b.name))
      accumulators.emplace(b.name, metrics::StatsAccumulator(b.width));
    else
      f.blocks[b.name] = matrix(n, b.width);
  int64_t done = 0;
  using clock = std::chrono::steady_clock;
  auto add = [&](double ExtractOptions::Timings::*field, clock::time_point since) {
    if (o.timings) o.timings->*field += std::chrono::duration<double>(clock::now() - since).count();
  };
  while (done < n) {
    auto t0 = clock::now();
    std::vector<io::Image> batch = source.next(o.batch_size);
    add(&ExtractOptions::Timings::read_s, t0);
    t0 = clock::now();
    if (batch.empty()) fail(source.describe(), ": ended after ", done, " of ", n, " images");
    const int64_t b = static_cast<int64_t>(batch.size());
    const bool same = std::all_of(batch.begin(), batch.end(), [&](const io::Image& im) {
      return im.height == batch[0].height && im.width == batch[0].width;
    });
    at::Tensor x;
    if (same) {
      at::Tensor u8 = at::empty({b, batch[0].height, batch[0].width, 3}, at::kByte);
      const int64_t per = batch[0].height * batch[0].width * 3;
      for (int64_t i = 0; i < b; ++i)
        std::copy(batch[i].rgb.begin(), batch[i].rgb.end(), u8.data_ptr<uint8_t>() + i * per);
      if (o.on_batch) o.on_batch(u8.data_ptr<uint8_t>(), b, batch[0].height, batch[0].width);
      x = e.preprocess(u8);
    } else {
      if (o.on_batch)
        fail(source.describe(), ": images of different sizes cannot be copied into one array");
      std::vector<at::Tensor> parts;
      for (auto& im : batch)
        parts.push_back(e.preprocess(at::from_blob(im.rgb.data(), {1, im.height, im.width, 3}, at::kByte)));
      x = at::cat(parts, 0);
    }
    add(&ExtractOptions::Timings::preprocess_s, t0);
    t0 = clock::now();
    const std::vector<at::Tensor> rows = e.extract_blocks(x);
    add(&ExtractOptions::Timings::network_s, t0);
    for (size_t i = 0; i < blocks.size(); ++i) {
      const auto acc = accumulators.find(blocks[i].name);
      if (acc != accumulators.end())
        acc->second.add(rows[i].data_ptr<float>(), b);
      else if (!o.skip.count(blocks[i].name))
        append_rows(f.blocks.at(blocks[i].name), rows[i], done);
    }
    done += b;
    if (o.progress) o.progress(done, n);
  }
  for (auto& [name, acc] : accumulators)
    f.stats[name] = acc.finalize();
  f.provenance.source = source.describe();
  f.provenance.extractor = e.identity();
  f.provenance.count = n;
  f.provenance.created = io::utc_now_iso8601();
  return f;
}

std::string default_cache_dir() {
  if (const char* d = std::getenv("SIT_EVAL_CACHE")) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME")) return std::string(x) + "/sit-eval";
  if (const char* h = std::getenv("HOME")) return std::string(h) + "/.cache/sit-eval";
  return ".sit-eval-cache";
}

std::pair<io::FeatureSet, bool> cached_reference_pool(const std::string& ref_path,
                                                      const models::FeatureExtractor& e,
                                                      const std::string& cache_dir,
                                                      const ExtractOptions& o) {
  const std::string key = sha256_file(ref_path).substr(0, 16) + "-" + e.sha256().substr(0, 16);
  const fs::path file = fs::path(cache_dir) / ("ref-" + key + ".h5");
  if (fs::exists(file)) {
    io::FeatureSet f = io::load_feature_set(file.string());
    if (f.rows(io::kPool) && f.extractor_sha256() == e.sha256()) return {std::move(f), true};
  }
  const auto source = io::open_images(ref_path);
  // FID/sFID use the reference's stored statistics; precision/recall and KID need pool rows
  ExtractOptions only_pool = o;
  for (const auto& b : e.blocks())
    if (b.name != io::kPool) only_pool.skip.insert(b.name);
  io::FeatureSet f = extract_features(*source, e, only_pool);
  fs::create_directories(cache_dir);
  io::save_feature_set(file.string(), f);
  return {std::move(f), false};
}

}  // namespace sit::eval
