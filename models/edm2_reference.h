#pragma once
/// EDM2's reference statistics (NVlabs/edm2 calculate_metrics.py `ref`, e.g. img512.pkl):
/// a Python pickle of the dict
///   {'num_images': int,
///    'fid':       {'mu': ndarray float64 [2048], 'sigma': ndarray float64 [2048, 2048]},
///    'fd_dinov2': {'mu': ndarray float64 [1024], 'sigma': ndarray float64 [1024, 1024]}}
/// (metrics_modern.md section 1.3). Read with sit-eval's pickle reader (numpy arrays as
/// numpy pickles them at protocols 2 to 5); written at protocol 3, as numpy's own reduce
/// does, so Python's pickle.load returns the same dict. 'fid' is the Inception pool block,
/// 'fd_dinov2' the dinov2 block; EDM2 made its files with DINOv2's 'torch' resize.

#include <string>

#include "reference_stats/feature_set.h"

namespace sit::models {

/// True when the file starts with a pickle protocol-2+ header (0x80, protocol).
bool is_pickle_file(const std::string& path);

/// The statistics of an EDM2 reference pickle: stats[pool] from 'fid', stats[dinov2]
/// from 'fd_dinov2' (either may be absent, not both), provenance.count = num_images.
/// Throws sit::Error naming the file and key for anything else (missing keys, arrays of
/// the wrong rank or dtype, sigma not D x D).
io::FeatureSet load_edm2_reference(const std::string& path);

/// Writes `set`'s pool and dinov2 statistics as an EDM2 reference pickle (atomically);
/// num_images = set.provenance.count. Throws sit::Error when it has neither.
void save_edm2_reference(const std::string& path, const io::FeatureSet& set);

/// A reference or feature file of any kind sit-eval reads: EDM2 pickle, npz or HDF5 (these
/// two with `options`; an EDM2 pickle holds statistics only).
io::FeatureSet load_any_feature_set(const std::string& path, const io::LoadOptions& options = {});

}  // namespace sit::models
