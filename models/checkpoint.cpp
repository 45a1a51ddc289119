#include "models/checkpoint.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/format.h"
#include "models/pickle.h"
#include "reference_stats/zip.h"

namespace sit::models {
namespace {

const char* const kExtractHint =
    "if the file holds Python objects that cannot be read, extract the state dict with "
    "/usr/bin/python3 -c \"import torch; c = torch.load('IN', map_location='cpu'); "
    "torch.save(c.get('ema', c), 'OUT.pt')\"";

/// torch storage class -> dtype.
at::ScalarType storage_dtype(const std::string& type, const std::string& where) {
  static const std::map<std::string, at::ScalarType> table = {
      {"torch.FloatStorage", at::kFloat},  {"torch.DoubleStorage", at::kDouble},
      {"torch.HalfStorage", at::kHalf},    {"torch.BFloat16Storage", at::kBFloat16},
      {"torch.LongStorage", at::kLong},    {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},  {"torch.CharStorage", at::kChar},
      {"torch.ByteStorage", at::kByte},    {"torch.BoolStorage", at::kBool},
      {"torch.UntypedStorage", at::kByte},
  };
  auto it = table.find(type);
  if (it == table.end()) fail(where, ": unsupported tensor storage type '", type, "'");
  return it->second;
}

PyRef load_torch_zip(const std::string& path) {
  const io::ZipReader zip(path);
  const io::ZipEntry* pkl = nullptr;
  for (const auto& e : zip.entries())
    if (e.name == "data.pkl" ||
        (e.name.size() > 9 && e.name.compare(e.name.size() - 9, 9, "/data.pkl") == 0 &&
         std::count(e.name.begin(), e.name.end(), '/') == 1)) {
      pkl = &e;
      break;
    }
  if (!pkl)
    fail(path, ": zip file without data.pkl: not a torch.save checkpoint (", zip.entries().size(),
         " members)");
  const std::string prefix = pkl->name.substr(0, pkl->name.size() - 8);  // "archive/"
  std::string bytes(pkl->uncompressed_size, '\0');
  zip.open(*pkl)->read(bytes.data(), bytes.size());

  std::map<std::string, PyRef> storages;
  auto load = [&](const PyRef& pid) -> PyRef {
    // ('storage', storage_type, key, location, numel)
    if (pid->kind != PyValue::Kind::kTuple || pid->items.size() < 5 ||
        pid->items[0]->text != "storage")
      fail(path, ": unexpected persistent id (", describe(*pid), ")");
    const std::string key = pid->items[2]->text;
    if (auto it = storages.find(key); it != storages.end()) return it->second;
    const at::ScalarType dtype = storage_dtype(pid->items[1]->text, path);
    const int64_t numel = pid->items[4]->integer;
    const io::ZipEntry* e = zip.find(prefix + "data/" + key);
    if (!e) fail(path, ": storage '", key, "' is missing (no member ", prefix, "data/", key, ")");
    const uint64_t nbytes = static_cast<uint64_t>(numel) * at::elementSize(dtype);
    if (e->uncompressed_size != nbytes)
      fail(path, ": storage '", key, "' has ", e->uncompressed_size, " bytes, expected ", nbytes,
           " (", numel, " x ", at::toString(dtype), ")");
    at::Tensor data = at::empty({numel}, at::TensorOptions().dtype(dtype));
    zip.open(*e)->read(data.data_ptr(), nbytes);
    auto s = std::make_shared<PyValue>();
    s->kind = PyValue::Kind::kStorage;
    s->tensor = data;
    storages[key] = s;
    return s;
  };
  return unpickle(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), load,
                  path + " (" + pkl->name + ")");
}

struct Mapping {
  void* addr = MAP_FAILED;
  size_t size = 0;
  ~Mapping() {
    if (addr != MAP_FAILED) munmap(addr, size);
  }
};

at::ScalarType safetensors_dtype(const std::string& name, const std::string& where) {
  static const std::map<std::string, at::ScalarType> table = {
      {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf},  {"BF16", at::kBFloat16},
      {"I64", at::kLong},   {"I32", at::kInt},   {"I16", at::kShort}, {"I8", at::kChar},
      {"U8", at::kByte},    {"BOOL", at::kBool},
  };
  auto it = table.find(name);
  if (it == table.end()) fail(where, ": unsupported dtype '", name, "'");
  return it->second;
}

// A safetensors shape or data_offsets: an array of non-negative integers that fit int64.
// nlohmann reads 2^64 and beyond as a double, and converting that to an integer is undefined
// behaviour (found by fuzz_checkpoint), as is reading a string or a 1.5 as one.
std::vector<int64_t> safetensors_integers(const nlohmann::json& v, const std::string& where,
                                          const char* field) {
  if (!v.is_array()) fail(where, ": ", field, " must be an array of integers, got ", v.dump());
  std::vector<int64_t> out;
  for (const auto& e : v) {
    if (!e.is_number_unsigned() || e.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(where, ": ", field, " must hold non-negative integers below 2^63, got ", v.dump());
    out.push_back(static_cast<int64_t>(e.get<uint64_t>()));
  }
  return out;
}

void load_safetensors(const std::string& path, StateDict& sd) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  ::fstat(fd, &st);
  auto map = std::make_shared<Mapping>();
  map->size = static_cast<size_t>(st.st_size);
  if (map->size > 0) map->addr = ::mmap(nullptr, map->size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map->size < 8 || map->addr == MAP_FAILED)
    fail(path, ": safetensors file too short (", map->size, " bytes)");
  const auto* base = static_cast<const uint8_t*>(map->addr);
  uint64_t header_len = 0;
  std::memcpy(&header_len, base, 8);
  if (header_len > map->size - 8)
    fail(path, ": safetensors header of ", header_len, " bytes does not fit in the file (",
         map->size, " bytes): truncated?");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(base + 8, base + 8 + header_len);
  } catch (const std::exception& e) {
    fail(path, ": safetensors header is not valid JSON: ", e.what());
  }
  if (!header.is_object()) fail(path, ": safetensors header must be a JSON object");
  const uint64_t data_start = 8 + header_len, data_size = map->size - data_start;
  struct Span {
    uint64_t begin, end;
    std::string key;
  };
  std::vector<Span> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const std::string where = cat(path, ": tensor '", it.key(), "'");
    const auto& h = it.value();
    if (!h.is_object() || !h.contains("dtype") || !h.contains("shape") ||
        !h.contains("data_offsets"))
      fail(where, " must have dtype, shape and data_offsets");
    if (!h["dtype"].is_string())
      fail(where, ": dtype must be a string, got ", h["dtype"].dump());
    const at::ScalarType dtype = safetensors_dtype(h["dtype"].get<std::string>(), where);
    const std::vector<int64_t> shape = safetensors_integers(h["shape"], where, "shape");
    const std::vector<int64_t> off = safetensors_integers(h["data_offsets"], where, "data_offsets");
    if (off.size() != 2 || off[0] > off[1])
      fail(where, ": data_offsets must be [begin, end], got ", h["data_offsets"].dump());
    int64_t numel = 1, nbytes_signed = 0;
    for (int64_t s : shape) {
      if (__builtin_mul_overflow(numel, s, &numel))
        fail(where, ": shape ", shape_string(shape), " has more elements than any file holds");
    }
    if (__builtin_mul_overflow(numel, static_cast<int64_t>(at::elementSize(dtype)), &nbytes_signed))
      fail(where, ": shape ", shape_string(shape), " needs more bytes than any file holds");
    const auto nbytes = static_cast<uint64_t>(nbytes_signed);
    if (static_cast<uint64_t>(off[1] - off[0]) != nbytes)
      fail(where, ": data_offsets span ", off[1] - off[0], " bytes, shape ", shape_string(shape),
           " x ", at::toString(dtype), " needs ", nbytes);
    if (static_cast<uint64_t>(off[1]) > data_size)
      fail(where, ": data ends at byte ", off[1], " of a ", data_size,
           "-byte data section: truncated file?");
    spans.push_back({static_cast<uint64_t>(off[0]), static_cast<uint64_t>(off[1]), it.key()});
    // Unaligned data is copied; aligned data is used in place, the mapping kept alive.
    const uint8_t* src = base + data_start + off[0];
    at::Tensor t;
    if (reinterpret_cast<uintptr_t>(src) % at::elementSize(dtype) == 0) {
      t = at::from_blob(
          const_cast<uint8_t*>(src), shape, [map](void*) {}, at::TensorOptions().dtype(dtype));
    } else {
      t = at::empty(shape, at::TensorOptions().dtype(dtype));
      std::memcpy(t.data_ptr(), src, nbytes);
    }
    sd.tensors.emplace_back(it.key(), t);
  }
  std::sort(spans.begin(), spans.end(),
            [](const Span& a, const Span& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < spans.size(); ++i)
    if (spans[i].begin < spans[i - 1].end)
      fail(path, ": tensors '", spans[i - 1].key, "' and '", spans[i].key, "' overlap");
  // nlohmann's object keeps keys sorted; order the tensors as they lie in the file.
  std::map<std::string, uint64_t> begin;
  for (const auto& s : spans)
    begin[s.key] = s.begin;
  std::stable_sort(sd.tensors.begin(), sd.tensors.end(),
                   [&](const auto& a, const auto& b) { return begin[a.first] < begin[b.first]; });
}

void collect_tensors(const PyRef& dict, StateDict& sd) {
  std::vector<std::string> bad;
  for (const auto& [k, v] : dict->entries) {
    if (!k->is_string()) {
      bad.push_back("(non-string key)");
      continue;
    }
    if (v->kind == PyValue::Kind::kTensor)
      sd.tensors.emplace_back(k->text, v->tensor);
    else
      bad.push_back(k->text + " (" + describe(*v) + ")");
  }
  if (sd.tensors.empty())
    fail(sd.path, ": no tensors in ", sd.entry.empty() ? "the file" : "entry '" + sd.entry + "'",
         "; top-level keys: ", sd.top_level_keys.empty() ? "(none)" : "", [&] {
           std::string s;
           for (const auto& k : sd.top_level_keys)
             s += (s.empty() ? "" : ", ") + k;
           return s;
         }());
  if (!bad.empty()) {
    std::string list;
    for (size_t i = 0; i < bad.size() && i < 5; ++i)
      list += (i ? ", " : "") + bad[i];
    fail(sd.path, ": ", bad.size(), " entries of ", sd.entry.empty() ? "the state dict" : sd.entry,
         " are not tensors: ", list, bad.size() > 5 ? ", ..." : "");
  }
}

}  // namespace

at::Tensor StateDict::find(const std::string& key) const {
  for (const auto& [k, t] : tensors)
    if (k == key) return t;
  return {};
}

int64_t StateDict::numel() const {
  int64_t n = 0;
  for (const auto& kv : tensors)
    n += kv.second.numel();
  return n;
}

StateDict load_state_dict(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open checkpoint");
  unsigned char head[16] = {};
  in.read(reinterpret_cast<char*>(head), sizeof head);
  const auto got = in.gcount();
  StateDict sd;
  sd.path = path;
  if (got >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) {
    sd.format = "torch zip";
    PyRef top;
    try {
      top = load_torch_zip(path);
    } catch (const Error& e) {
      fail(e.what(), "; ", kExtractHint);
    }
    if (top->kind != PyValue::Kind::kDict)
      fail(path, ": the checkpoint holds a ", describe(*top), ", expected a dict; ", kExtractHint);
    for (const auto& kv : top->entries)
      if (kv.first->is_string()) sd.top_level_keys.push_back(kv.first->text);
    PyRef chosen = top;
    for (const char* entry : {"ema", "model", "state_dict", "module"}) {
      PyRef v = top->get(entry);
      if (v && v->kind == PyValue::Kind::kDict) {
        chosen = v;
        sd.entry = entry;
        break;
      }
    }
    collect_tensors(chosen, sd);
  } else if (got >= 9 && head[8] == '{') {
    sd.format = "safetensors";
    load_safetensors(path, sd);
  } else if (got >= 2 && head[0] == 0x80) {
    fail(path,
         ": legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with "
         "/usr/bin/python3 -c \"import torch; torch.save(torch.load('IN', "
         "map_location='cpu'), 'OUT.pt')\"");
  } else {
    fail(path,
         ": not a checkpoint: expected a torch.save zip (starts with PK) or a safetensors "
         "file (8-byte header length then '{'), got ",
         got, " bytes starting 0x", [&] {
           std::string s;
           const char* hex = "0123456789abcdef";
           for (int i = 0; i < std::min<int>(8, static_cast<int>(got)); ++i)
             s += std::string{hex[head[i] >> 4], hex[head[i] & 15]};
           return s;
         }());
  }
  // DistributedDataParallel wraps the model as `module`.
  const std::string ddp = "module.";
  if (!sd.tensors.empty() && std::all_of(sd.tensors.begin(), sd.tensors.end(), [&](const auto& kv) {
        return kv.first.compare(0, ddp.size(), ddp) == 0;
      }))
    for (auto& kv : sd.tensors)
      kv.first.erase(0, ddp.size());
  return sd;
}

std::vector<at::Tensor> match_state_dict(const StateDict& sd, const ShapeList& expected,
                                         const std::string& architecture, const LoadCheck& check) {
  std::map<std::string, at::Tensor> have(sd.tensors.begin(), sd.tensors.end());
  std::vector<std::string> missing, wrong, unexpected;
  std::vector<at::Tensor> out;
  std::map<std::string, bool> wanted;
  for (const auto& [key, shape] : expected) {
    wanted[key] = true;
    auto it = have.find(key);
    if (it == have.end()) {
      missing.push_back(key + " " + shape_string(shape));
      out.emplace_back();
      continue;
    }
    if (it->second.sizes().vec() != shape)
      wrong.push_back(cat(key, " is ", shape_string(it->second.sizes().vec()), ", expected ",
                          shape_string(shape)));
    out.push_back(it->second);
  }
  for (const auto& named : sd.tensors) {
    const std::string& key = named.first;  // a plain reference: clang's C++17 cannot capture a binding
    const at::Tensor& t = named.second;
    if (wanted.count(key)) continue;
    const bool ignored = std::any_of(check.ignore_prefixes.begin(), check.ignore_prefixes.end(),
                                     [&](const std::string& p) { return key.rfind(p, 0) == 0; });
    if (!ignored) unexpected.push_back(key + " " + shape_string(t.sizes().vec()));
  }
  if (missing.empty() && wrong.empty() && unexpected.empty()) return out;
  std::string msg =
      cat(sd.path, ": does not match ", architecture, " (", missing.size(), " missing, ",
          unexpected.size(), " unexpected, ", wrong.size(), " wrong-shape keys)");
  auto list = [&](const char* title, const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    msg += cat("\n  ", title, ":");
    for (size_t i = 0; i < keys.size(); ++i) {
      if (i == 20) {
        msg += cat("\n    ... and ", keys.size() - 20, " more");
        break;
      }
      msg += "\n    " + keys[i];
    }
  };
  list("missing", missing);
  list("unexpected", unexpected);
  list("wrong shape", wrong);
  fail(msg);
}

}  // namespace sit::models
