#include "models/edm2_reference.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/format.h"
#include "models/pickle.h"

namespace sit::models {
namespace {

using Kind = PyValue::Kind;

struct Array {
  std::vector<int64_t> shape;
  std::vector<double> values;  // C order
};

/// UTF-8 text of code points 0..255 back to bytes (_codecs.encode(s, 'latin1')).
std::string latin1_bytes(const std::string& utf8, const std::string& where) {
  std::string out;
  for (size_t i = 0; i < utf8.size(); ++i) {
    const auto c = static_cast<uint8_t>(utf8[i]);
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if ((c & 0xE0) == 0xC0 && i + 1 < utf8.size()) {
      const int cp = ((c & 0x1F) << 6) | (static_cast<uint8_t>(utf8[++i]) & 0x3F);
      if (cp > 255) fail(where, ": array data is not latin-1 text");
      out += static_cast<char>(cp);
    } else {
      fail(where, ": array data is not latin-1 text");
    }
  }
  return out;
}

std::vector<int64_t> shape_of(const PyRef& v, const std::string& where) {
  if (!v || v->kind != Kind::kTuple) fail(where, ": array shape is not a tuple");
  std::vector<int64_t> s;
  for (const auto& d : v->items) {
    if (d->kind != Kind::kInt) fail(where, ": array shape holds a non-integer");
    s.push_back(d->integer);
  }
  return s;
}

/// numpy.dtype('f8' | 'f4', ...) with its byte order from the BUILD state.
std::pair<int, bool> dtype_of(const PyRef& v, const std::string& where) {
  if (!v || v->kind != Kind::kObject || v->text.find("dtype") == std::string::npos ||
      v->items.empty() || !v->items[0]->is_string())
    fail(where, ": array has no numpy dtype");
  const std::string& code = v->items[0]->text;
  if (code != "f8" && code != "f4")
    fail(where, ": arrays must be float64 (or float32), got dtype '", code, "'");
  bool little = true;
  if (v->state && v->state->kind == Kind::kTuple && v->state->items.size() > 1 &&
      v->state->items[1]->is_string())
    little = v->state->items[1]->text != ">";
  if (!little) fail(where, ": big-endian arrays are not supported");
  return {code == "f8" ? 8 : 4, true};
}

Array array_of(const PyRef& v, const std::string& where) {
  if (!v || v->kind != Kind::kObject) fail(where, ": must be a numpy array, got ", v ? describe(*v) : "nothing");
  std::vector<int64_t> shape;
  int width = 8;
  bool fortran = false;
  PyRef data;
  const std::string& f = v->text;
  if (f.find("_reconstruct") != std::string::npos) {
    // state: (version, shape, dtype, is_fortran, raw data)
    const PyRef& st = v->state;
    if (!st || st->kind != Kind::kTuple || st->items.size() != 5)
      fail(where, ": numpy array without its state");
    shape = shape_of(st->items[1], where);
    width = dtype_of(st->items[2], where).first;
    fortran = st->items[3]->kind == Kind::kBool ? st->items[3]->boolean : st->items[3]->integer != 0;
    data = st->items[4];
  } else if (f.find("_frombuffer") != std::string::npos && v->items.size() == 4) {
    // protocol 5: _frombuffer(buffer, dtype, shape, order)
    data = v->items[0];
    width = dtype_of(v->items[1], where).first;
    shape = shape_of(v->items[2], where);
    fortran = v->items[3]->is_string() && v->items[3]->text == "F";
  } else {
    fail(where, ": must be a numpy array, got a ", f, " object");
  }
  std::string raw;
  if (data->kind == Kind::kBytes)
    raw = data->text;
  else if (data->kind == Kind::kObject && data->text == "_codecs.encode" && !data->items.empty() &&
           data->items[0]->is_string())
    raw = latin1_bytes(data->items[0]->text, where);
  else
    fail(where, ": array data must be bytes, got ", describe(*data));
  int64_t count = 1;
  for (int64_t d : shape)
    count *= d;
  if (static_cast<int64_t>(raw.size()) != count * width)
    fail(where, ": array of shape ", shape_string(shape), " needs ", count * width,
         " bytes, has ", raw.size());
  Array a;
  a.shape = shape;
  a.values.resize(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    if (width == 8) {
      std::memcpy(&a.values[i], raw.data() + i * 8, 8);
    } else {
      float x;
      std::memcpy(&x, raw.data() + i * 4, 4);
      a.values[i] = x;
    }
  if (fortran && shape.size() == 2) {  // column-major storage: transpose to C order
    std::vector<double> c(a.values.size());
    for (int64_t r = 0; r < shape[0]; ++r)
      for (int64_t k = 0; k < shape[1]; ++k)
        c[r * shape[1] + k] = a.values[k * shape[0] + r];
    a.values.swap(c);
  }
  return a;
}

metrics::FeatureStats stats_of(const PyRef& entry, const std::string& where) {
  if (entry->kind != Kind::kDict) fail(where, ": must be a dict with 'mu' and 'sigma'");
  const PyRef mu = entry->get("mu"), sigma = entry->get("sigma");
  if (!mu || !sigma) fail(where, ": must hold 'mu' and 'sigma'");
  const Array m = array_of(mu, where + "['mu']"), s = array_of(sigma, where + "['sigma']");
  if (m.shape.size() != 1) fail(where, "['mu'] must be 1-D [D], got shape ", shape_string(m.shape));
  const int64_t d = m.shape[0];
  if (s.shape != std::vector<int64_t>{d, d})
    fail(where, "['sigma'] must be [", d, ", ", d, "], got shape ", shape_string(s.shape));
  metrics::FeatureStats st;
  st.mu = Eigen::Map<const Eigen::VectorXd>(m.values.data(), d);
  st.sigma = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      s.values.data(), d, d);
  metrics::check_stored_stats(st, where + "['mu']", where + "['sigma']");
  return st;
}

// --- writing: protocol 3, numpy's own form --------------------------------------------

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out += static_cast<char>((v >> (8 * i)) & 0xFF);
}
void put_str(std::string& out, const std::string& s) {  // BINUNICODE
  out += 'X';
  put_u32(out, static_cast<uint32_t>(s.size()));
  out += s;
}
void put_int(std::string& out, int64_t v) {
  if (v >= INT32_MIN && v <= INT32_MAX) {
    out += 'J';
    put_u32(out, static_cast<uint32_t>(static_cast<int32_t>(v)));
    return;
  }
  out += '\x8a';  // LONG1, 8 bytes little-endian two's complement
  out += '\x08';
  for (int i = 0; i < 8; ++i)
    out += static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xFF);
}
void put_global(std::string& out, const char* module, const char* name) {
  out += 'c';
  out += module;
  out += '\n';
  out += name;
  out += '\n';
}

/// An ndarray of float64 as numpy pickles it at protocol 3.
void put_array(std::string& out, const std::vector<int64_t>& shape, const double* data) {
  put_global(out, "numpy.core.multiarray", "_reconstruct");
  put_global(out, "numpy", "ndarray");
  out.append("(K\0t", 4);  // (0,)
  out += "C\x01" "b";       // b'b'
  out += "\x87R";           // TUPLE3 REDUCE
  out += "(K\x01(";         // state: (1, shape, dtype, False, data)
  for (int64_t d : shape)
    put_int(out, d);
  out += 't';
  put_global(out, "numpy", "dtype");
  put_str(out, "f8");
  out += "\x89\x88\x87R";   // ('f8', False, True) REDUCE
  out += "(K\x03";
  put_str(out, "<");
  out += "NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xff";  // (3, '<', None, None, None, -1, -1, 0)
  out.append("K\0tb", 4);
  out += '\x89';           // not Fortran order
  int64_t count = 1;
  for (int64_t d : shape)
    count *= d;
  out += 'B';
  put_u32(out, static_cast<uint32_t>(count * 8));
  out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(count * 8));
  out += "tb";
}

}  // namespace

bool is_pickle_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char head[2] = {0, 0};
  in.read(reinterpret_cast<char*>(head), 2);
  return in.gcount() == 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5;
}

io::FeatureSet load_edm2_reference(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open file");
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  const PyRef root = unpickle(
      reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
      [&](const PyRef&) -> PyRef {
        fail(path, ": a pickle with persistent ids (a torch.save file?) is not an EDM2 reference");
      },
      path);
  if (root->kind != Kind::kDict)
    fail(path, ": an EDM2 reference pickle must hold a dict with 'fid' and/or 'fd_dinov2', got ",
         describe(*root));
  io::FeatureSet set;
  set.path = path;
  if (const PyRef n = root->get("num_images"); n && n->kind == Kind::kInt)
    set.provenance.count = n->integer;
  if (const PyRef fid = root->get("fid")) set.stats[io::kPool] = stats_of(fid, path + ": ['fid']");
  if (const PyRef dino = root->get("fd_dinov2"))
    set.stats["dinov2"] = stats_of(dino, path + ": ['fd_dinov2']");
  for (auto& [block, s] : set.stats)
    s.count = set.provenance.count;
  if (set.stats.empty()) {
    std::string keys;
    for (const auto& [k, v] : root->entries)
      keys += (keys.empty() ? "" : ", ") + (k->is_string() ? "'" + k->text + "'" : describe(*k));
    fail(path, ": an EDM2 reference pickle must hold 'fid' and/or 'fd_dinov2' statistics, got keys ",
         keys.empty() ? "none" : keys);
  }
  set.provenance.source = cat("EDM2 reference pickle ", path, " (", set.provenance.count, " images)");
  return set;
}

void save_edm2_reference(const std::string& path, const io::FeatureSet& set) {
  const metrics::FeatureStats* fid = set.statistics(io::kPool);
  const metrics::FeatureStats* dino = set.statistics("dinov2");
  if (!fid && !dino)
    fail(path, ": an EDM2 reference needs pool (FID) or dinov2 (FD_DINOv2) statistics; ", set.path,
         " has neither");
  std::string out = "\x80\x03}(";
  put_str(out, "num_images");
  put_int(out, set.provenance.count);
  for (const auto& [key, s] : {std::pair<const char*, const metrics::FeatureStats*>{"fid", fid},
                               {"fd_dinov2", dino}}) {
    if (!s) continue;
    put_str(out, key);
    out += "}(";
    const int64_t d = s->dim();
    put_str(out, "mu");
    put_array(out, {d}, s->mu.data());
    put_str(out, "sigma");
    const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rows = s->sigma;
    put_array(out, {d, d}, rows.data());
    out += 'u';
  }
  out += "u.";
  write_file_atomic(path, out);
}

io::FeatureSet load_any_feature_set(const std::string& path, const io::LoadOptions& options) {
  if (is_pickle_file(path)) return load_edm2_reference(path);
  return io::load_feature_set(path, options);
}

}  // namespace sit::models
