// libFuzzer target: PNG and JPEG decoding (reference_stats/image_reader: libpng, libjpeg,
// the conversions to 8-bit RGB and the refusals) on arbitrary bytes. A clean sit::Error is
// the expected outcome for bad input. Built and run by scripts/fuzz.sh.
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "common/error.h"
#include "reference_stats/image_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/sit-fuzz-image-" + std::to_string(::getpid());
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  try {
    const sit::io::Image image = sit::io::read_image(path);
    if (image.rgb.size() != static_cast<size_t>(image.height * image.width * 3)) __builtin_trap();
  } catch (const sit::Error&) {
    // refused with a message: what bad input should get
  }
  return 0;
}
