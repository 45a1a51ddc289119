#include <CLI/CLI.hpp>
#include <iostream>

#include "common/build_info.h"
#include "eval/commands.h"
#include "metrics/linalg.h"

namespace sit::eval {

Command add_version_command(CLI::App& app) {
  app.add_subcommand("version", "print the program version and the libraries it was built with");
  return [] {
    const BuildInfo& b = build_info();
    std::cout << "sit-eval " << b.version << " (git " << b.git_revision << ")\n"
              << "compiler: " << b.compiler << "\n"
              << "eigen: " << b.eigen_version << "\n"
              << "hdf5: " << b.hdf5_version << "\n"
              << "blas: " << b.blas << ": " << linalg::blas_description() << "\n"
              << "libtorch: " << b.torch_version << "\n";
    return 0;
  };
}

}  // namespace sit::eval
