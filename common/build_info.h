#pragma once
/// What this binary is and what it was built with (provenance for results).

#include <string>

namespace sit {

struct BuildInfo {
  std::string version;        ///< "0.1.0"
  std::string git_revision;   ///< short hash at configure time, or "unknown"
  std::string compiler;       ///< e.g. "GNU 12.2.0"
  std::string eigen_version;  ///< e.g. "3.4.0"
  std::string hdf5_version;
  std::string blas;           ///< BLAS vendor the build links (e.g. "OpenBLAS")
  std::string torch_version;  ///< LibTorch found at configure time, or "not used"
};

const BuildInfo& build_info();

}  // namespace sit
