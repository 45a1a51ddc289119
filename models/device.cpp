#include "models/device.h"

#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/Device.h>

#include "common/error.h"
#include "common/format.h"

namespace sit::models {

void check_device(const std::string& name, const char* option) {
  const std::string device = lowercase(name);
  const bool index = device.rfind("cuda:", 0) == 0 && device.size() > 5 &&
                     device.find_first_not_of("0123456789", 5) == std::string::npos;
  if (device == "cpu") return;
  if (device != "cuda" && !index)
    fail(option, ": expected cpu, cuda or cuda:N, got '", device, "'");
  if (!at::detail::getCUDAHooks().hasCUDA()) {
    if (!at::detail::getCUDAHooks().hasCUDART())
      fail(option, " ", device,
           ": this sit-eval was built against a LibTorch without CUDA (Debian's libtorch-dev is "
           "CPU-only); rebuild against official LibTorch 2.x with CUDA: cmake -S . -B build-cuda "
           "-DCMAKE_PREFIX_PATH=/path/to/libtorch && cmake --build build-cuda");
    fail(option, " ", device, ": LibTorch has CUDA but sees no GPU (check nvidia-smi and "
         "CUDA_VISIBLE_DEVICES)");
  }
  const int visible = at::detail::getCUDAHooks().getNumGPUs();
  if (index && std::stoll(device.substr(5)) >= visible)
    fail(option, " ", device, ": only ", visible, " GPU(s) visible (cuda:0 to cuda:", visible - 1,
         ")");
}

int visible_gpus() {
  return at::detail::getCUDAHooks().hasCUDA() ? at::detail::getCUDAHooks().getNumGPUs() : 0;
}

std::string rank_device(int local_rank) {
  const int n = visible_gpus();
  return "cuda:" + std::to_string(n > 0 ? local_rank % n : local_rank);
}

}  // namespace sit::models
