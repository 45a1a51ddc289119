#pragma once
/// The --device / `device` setting, checked before any work: "cpu", "cuda" or "cuda:N".

#include <string>

namespace sit::models {

/// Throws sit::Error (one line, naming `option`) for a malformed name, a CUDA device in a
/// build whose LibTorch has no CUDA (Debian's libtorch-dev is CPU-only; the message says
/// how to rebuild against official LibTorch 2.x), no visible GPU, or an index past the
/// visible GPUs.
void check_device(const std::string& device, const char* option = "--device");

/// The GPUs this process sees (CUDA_VISIBLE_DEVICES applied); 0 without CUDA.
int visible_gpus();

/// The device of a launcher rank for the setting "cuda": cuda:(local_rank mod the visible
/// GPUs) — cuda:LOCAL_RANK with one process per GPU of a node, cuda:0 when the launcher
/// gives each task its own GPU (srun --gpus-per-task=1); "cuda:LOCAL_RANK" without CUDA
/// (check_device then says why it cannot run).
std::string rank_device(int local_rank);

}  // namespace sit::models
