#include "eval/features_job.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

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
#include "reference_stats/image_resize.h"

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
  // a group's members run one after the other on each decoded batch; a member none of
  // whose blocks is kept does not run, and provenance names those that do
  const std::vector<const models::FeatureExtractor*> stages = e.stages();
  std::vector<bool> runs(stages.size(), false);
  std::string identity;
  for (size_t st = 0, block = 0; st < stages.size(); ++st) {
    for (size_t i = 0; i < stages[st]->blocks().size(); ++i, ++block)
      if (!o.skip.count(blocks[block].name)) runs[st] = true;
    if (runs[st]) identity += (identity.empty() ? "" : "; ") + stages[st]->identity();
  }
  int64_t done = 0;
  using clock = std::chrono::steady_clock;
  auto add = [&](double ExtractOptions::Timings::*field, clock::time_point since) {
    if (o.timings) o.timings->*field += std::chrono::duration<double>(clock::now() - since).count();
  };
  while (done < n) {
    auto t0 = clock::now();
    std::vector<io::Image> batch = source.next(o.batch_size);
    if (batch.empty()) fail(source.describe(), ": ended after ", done, " of ", n, " images");
    const int64_t b = static_cast<int64_t>(batch.size());
    if (o.center_crop > 0)
      at::parallel_for(0, b, 1, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          io::Image& im = batch[i];
          im.rgb = io::adm_center_crop(im.rgb.data(), im.height, im.width, 3, o.center_crop);
          im.height = im.width = o.center_crop;
        }
      });
    const bool same = std::all_of(batch.begin(), batch.end(), [&](const io::Image& im) {
      return im.height == batch[0].height && im.width == batch[0].width;
    });
    at::Tensor u8;
    if (same) {
      u8 = at::empty({b, batch[0].height, batch[0].width, 3}, at::kByte);
      const int64_t per = batch[0].height * batch[0].width * 3;
      for (int64_t i = 0; i < b; ++i)
        std::copy(batch[i].rgb.begin(), batch[i].rgb.end(), u8.data_ptr<uint8_t>() + i * per);
      if (o.on_batch) o.on_batch(u8.data_ptr<uint8_t>(), b, batch[0].height, batch[0].width);
    } else if (o.on_batch) {
      fail(source.describe(), ": images of different sizes cannot be copied into one array "
           "(--keep-images); crop them to one size with --center-crop SIZE");
    }
    add(&ExtractOptions::Timings::read_s, t0);
    // each extractor of a group preprocesses the decoded batch its own way
    size_t block = 0;
    for (size_t st = 0; st < stages.size(); ++st) {
      const models::FeatureExtractor* stage = stages[st];
      const size_t n_blocks = stage->blocks().size();
      if (!runs[st]) {
        block += n_blocks;
        continue;
      }
      t0 = clock::now();
      at::Tensor x;
      if (same) {
        x = stage->preprocess(u8);
      } else {  // a folder of mixed sizes: each image to the network's input size
        std::vector<at::Tensor> parts;
        for (auto& im : batch)
          parts.push_back(
              stage->preprocess(at::from_blob(im.rgb.data(), {1, im.height, im.width, 3}, at::kByte)));
        x = at::cat(parts, 0);
      }
      add(&ExtractOptions::Timings::preprocess_s, t0);
      t0 = clock::now();
      const std::vector<at::Tensor> rows = stage->extract_blocks(x);
      add(&ExtractOptions::Timings::network_s, t0);
      for (size_t i = 0; i < n_blocks; ++i, ++block) {
        const auto acc = accumulators.find(blocks[block].name);
        if (acc != accumulators.end())
          acc->second.add(rows[i].data_ptr<float>(), b);
        else if (!o.skip.count(blocks[block].name))
          append_rows(f.blocks.at(blocks[block].name), rows[i], done);
      }
    }
    done += b;
    if (o.progress) o.progress(done, n);
  }
  for (auto& [name, acc] : accumulators)
    f.stats[name] = acc.finalize();
  f.provenance.source = source.describe();
  if (o.center_crop > 0)
    f.provenance.source += " (ADM centre crop to " + std::to_string(o.center_crop) + " px)";
  f.provenance.extractor = identity;
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

std::pair<io::FeatureSet, bool> cached_reference_rows(const std::string& ref_path,
                                                      const models::FeatureExtractor& e,
                                                      const std::set<std::string>& blocks,
                                                      const std::string& cache_dir,
                                                      const ExtractOptions& o) {
  // the key: the reference file, the blocks, and what identifies each extractor (its
  // SHA-256 and resize mode: the same files at other paths share the cache)
  std::string what = o.center_crop > 0 ? "center-crop " + std::to_string(o.center_crop) + ";" : "";
  for (const auto& b : blocks)
    what += b + ",";
  for (const auto& [kind, signature] : io::extractor_signatures(e.identity()))
    what += kind + " " + signature + ";";
  Sha256 h;
  h.update(what.data(), what.size());
  const std::string key = sha256_file(ref_path).substr(0, 16) + "-" + h.hex().substr(0, 16);
  const fs::path file = fs::path(cache_dir) / ("ref-" + key + ".h5");
  if (fs::exists(file)) {
    io::FeatureSet f = io::load_feature_set(file.string());
    bool complete = true;
    for (const auto& b : blocks)
      complete = complete && f.rows(b);
    if (complete) return {std::move(f), true};
  }
  const auto source = io::open_images(ref_path);
  // FID/sFID use the reference's stored statistics; the row metrics need rows
  ExtractOptions only_rows = o;
  for (const auto& b : e.blocks())
    if (!blocks.count(b.name)) only_rows.skip.insert(b.name);
  io::FeatureSet f = extract_features(*source, e, only_rows);
  fs::create_directories(cache_dir);
  io::save_feature_set(file.string(), f);
  return {std::move(f), false};
}

}  // namespace sit::eval
