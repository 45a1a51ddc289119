// libFuzzer target: checkpoint loading on arbitrary bytes — a torch.save zip through our
// pickle machine (models/pickle) and storage reader, or a safetensors file — as
// `sit-eval sample --ckpt FILE` reads a file from the internet (models/checkpoint). Also
// the pickle machine alone on the raw bytes, and the bytes as an EDM2 reference pickle
// (models/edm2_reference: numpy arrays as numpy pickles them, the statistics dict). A
// clean error is the expected outcome for bad input; a crash, a hang, an unbounded
// allocation or a sanitizer report is a finding. Built and run by scripts/fuzz.sh.
#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "common/error.h"
#include "models/checkpoint.h"
#include "models/edm2_reference.h"
#include "models/pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/sit-fuzz-checkpoint-" + std::to_string(::getpid());
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  try {
    const sit::models::StateDict sd = sit::models::load_state_dict(path);
    for (const auto& [name, t] : sd.tensors)
      if (t.numel() > 0) (void)t.sum();  // every tensor's bytes are readable
  } catch (const sit::Error&) {
  } catch (const c10::Error&) {
  }
  try {  // the pickle machine alone: persistent ids become small storages
    const auto storage = [](const sit::models::PyRef&) {
      auto s = std::make_shared<sit::models::PyValue>();
      s->kind = sit::models::PyValue::Kind::kStorage;
      s->tensor = at::arange(16, at::kFloat);
      return s;
    };
    const sit::models::PyRef root = sit::models::unpickle(data, size, storage, "fuzz input");
    (void)sit::models::describe(*root);
  } catch (const sit::Error&) {
  } catch (const c10::Error&) {
  }
  try {  // an EDM2 reference: {'num_images', 'fid': {'mu', 'sigma'}, 'fd_dinov2': ...}
    (void)sit::models::load_edm2_reference(path);
  } catch (const sit::Error&) {
  }
  return 0;
}
