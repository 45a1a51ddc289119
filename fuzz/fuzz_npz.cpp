// libFuzzer target: the zip, .npz and .npy readers (reference_stats/zip, npy) on arbitrary
// bytes. A clean sit::Error is the expected outcome for bad input; a crash, a hang, an
// unbounded allocation or a sanitizer report is a finding. Built and run by
// scripts/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined).
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "common/error.h"
#include "reference_stats/npy.h"

namespace {

/// Reads every array (up to 2^22 elements each: the readers check sizes against the
/// data present before allocating, so a larger declared shape has failed already).
void read_arrays(sit::io::NpyArray a) {
  if (a.header().count() > (int64_t{1} << 22)) return;
  if (a.dtype() == sit::io::DType::kU1 && a.shape().size() >= 1) {
    std::vector<uint8_t> out(static_cast<size_t>(a.header().count()));
    a.read_rows_u8(0, a.shape()[0], out.data());
  } else if (a.dtype() == sit::io::DType::kI8 || a.dtype() == sit::io::DType::kI4) {
    a.read_all<int64_t>();
  } else {
    a.read_all<double>();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/sit-fuzz-npz-" + std::to_string(::getpid());
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  try {
    if (size >= 6 && std::string(reinterpret_cast<const char*>(data), 6) == "\x93NUMPY") {
      read_arrays(sit::io::open_npy(path));
    } else {
      const sit::io::NpzReader z(path);
      for (const auto& key : z.keys())
        read_arrays(z.open(key));
    }
  } catch (const sit::Error&) {
    // refused with a message: what bad input should get
  }
  return 0;
}
