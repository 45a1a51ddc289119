#pragma once
/// Subcommands of the sit-eval program. Each adds itself to the CLI11 app and returns
/// the function that runs it after parsing (exit code; errors are thrown as sit::Error).

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace CLI {
class App;
}

namespace sit::eval {

struct GlobalOptions {
  int threads = 0;  ///< 0: every core
  bool quiet = false;
};

using Command = std::function<int()>;

Command add_metrics_command(CLI::App& app, const GlobalOptions& global);
Command add_version_command(CLI::App& app);
/// Only in builds with LibTorch (SIT_HAVE_TORCH).
Command add_sample_command(CLI::App& app);
Command add_sweep_command(CLI::App& app);
Command add_report_command(CLI::App& app);
Command add_merge_command(CLI::App& app);
Command add_inspect_command(CLI::App& app);
Command add_compare_command(CLI::App& app);
Command add_gate_command(CLI::App& app);
/// `evaluate` (returned) plus `features` and `ref-stats` (appended to `more`).
Command add_evaluate_commands(CLI::App& app, std::vector<std::pair<std::string, Command>>& more);

}  // namespace sit::eval
