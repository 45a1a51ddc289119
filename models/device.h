#pragma once
/// The --device / `device` setting, checked before any work: "cpu", "cuda" or "cuda:N".

#include <string>

namespace sit::models {

/// Throws sit::Error (one line, naming `option`) for a malformed name, a CUDA device in a
/// build whose LibTorch has no CUDA (Debian's libtorch-dev is CPU-only; the message says
/// how to rebuild against official LibTorch 2.x), no visible GPU, or an index past the
/// visible GPUs.
void check_device(const std::string& device, const char* option = "--device");

}  // namespace sit::models
