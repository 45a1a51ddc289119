// Writes npz files with sit-eval's writer for tests/check_numpy_interop.py to load with
// numpy: usage write_npz_samples OUT_DIR.
#include <cstdio>
#include <string>
#include <vector>

#include "common/error.h"
#include "reference_stats/npy.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: write_npz_samples OUT_DIR\n");
    return 1;
  }
  const std::string dir = argv[1];
  try {
    // Values are simple functions of the index so the checker can recompute them.
    std::vector<uint8_t> u1(4 * 5 * 5 * 3);
    for (size_t i = 0; i < u1.size(); ++i)
      u1[i] = static_cast<uint8_t>(i % 251);
    std::vector<int64_t> i8(4);
    for (size_t i = 0; i < i8.size(); ++i)
      i8[i] = static_cast<int64_t>(i) * 1000 - 1;
    std::vector<float> f4(4 * 6);
    for (size_t i = 0; i < f4.size(); ++i)
      f4[i] = static_cast<float>(i) / 8.0f;
    std::vector<double> f8(3 * 3);
    for (size_t i = 0; i < f8.size(); ++i)
      f8[i] = 1.0 / (1.0 + static_cast<double>(i));
    const std::vector<int32_t> i4 = {-7, 0, 7};
    for (auto [name, compress, zip64] : {std::tuple{"stored.npz", false, false},
                                         {"deflated.npz", true, false},
                                         {"zip64.npz", false, true},
                                         {"zip64_deflated.npz", true, true}}) {
      sit::io::NpzWriter w(dir + "/" + name, compress, zip64);
      w.add("arr_0", {4, 5, 5, 3}, u1.data());
      w.add("arr_1", {4}, i8.data());
      w.add("f4", {4, 6}, f4.data());
      w.add("f8", {3, 3}, f8.data());
      w.add("i4", {3}, i4.data());
      w.close();
    }
  } catch (const sit::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
