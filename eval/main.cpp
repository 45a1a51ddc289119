// sit-eval: evaluation and benchmarking harness for SiT / DiT image generators.

#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>
#include <map>

#include "common/error.h"
#include "eval/commands.h"
#include "metrics/linalg.h"

#ifdef SIT_HAVE_TORCH
#include <ATen/Parallel.h>
#endif

int main(int argc, char** argv) {
  using namespace sit::eval;
  CLI::App app{
      "sit-eval: reproducible evaluation of SiT / DiT samplers (FID, sFID, IS, "
      "precision/recall, KID with ADM evaluator semantics)",
      "sit-eval"};
  app.require_subcommand(1);
  GlobalOptions global;
  global.threads = sit::linalg::hardware_threads();
  app.add_option("--threads", global.threads,
                 "threads for BLAS, LibTorch and parallel loops (default: the CPUs this "
                 "process may use)")
      ->capture_default_str();

  std::map<std::string, Command> commands;
  commands["metrics"] = add_metrics_command(app, global);
  commands["version"] = add_version_command(app);
#ifdef SIT_HAVE_TORCH
  commands["sample"] = add_sample_command(app);
  commands["sweep"] = add_sweep_command(app);
  commands["report"] = add_report_command(app);
  commands["merge"] = add_merge_command(app);
  commands["inspect"] = add_inspect_command(app);
  commands["compare"] = add_compare_command(app);
  commands["gate"] = add_gate_command(app);
  std::vector<std::pair<std::string, Command>> more;
  commands["evaluate"] = add_evaluate_commands(app, more);
  for (auto& [name, command] : more)
    commands[name] = std::move(command);
#endif

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help or the usage error
    return rc == 0 ? 0 : 1;
  }
  try {
    sit::linalg::set_num_threads(global.threads);
#ifdef SIT_HAVE_TORCH
    // Debian's LibTorch starts with one intra-op thread.
    at::set_num_threads(global.threads > 0 ? global.threads : sit::linalg::hardware_threads());
#endif
    for (CLI::App* sub : app.get_subcommands())
      return commands.at(sub->get_name())();
  } catch (const sit::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 1;
}
