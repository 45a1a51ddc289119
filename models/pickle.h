#pragma once
/// A Python pickle reader for the files `torch.save` writes (protocols 0-5). It builds
/// plain values, dicts, lists, tuples and tensors; any other Python object (an
/// argparse.Namespace in a training checkpoint's `args`, say) becomes an opaque object
/// that keeps its class name and arguments, so loading never needs the class.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace sit::models {

struct PyValue;
using PyRef = std::shared_ptr<PyValue>;

struct PyValue {
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kBytes,
    kTuple,
    kList,
    kDict,
    kGlobal,   ///< a class or function named by `text` ("module.name")
    kObject,   ///< an instance of an unknown class: `text` is the class, `items` the args
    kStorage,  ///< a tensor storage: `tensor` is its flat data
    kTensor,
  };
  Kind kind = Kind::kNone;
  bool boolean = false;
  int64_t integer = 0;
  double number = 0;
  std::string text;                              ///< string, bytes, global or class name
  std::vector<PyRef> items;                      ///< tuple, list, object args
  std::vector<std::pair<PyRef, PyRef>> entries;  ///< dict (insertion order)
  PyRef state;                                   ///< object state set by BUILD
  at::Tensor tensor;                             ///< storage or tensor

  bool is_string() const { return kind == Kind::kString; }
  /// The dict entry with this string key, or nullptr.
  PyRef get(const std::string& key) const;
};

/// Turns a persistent id (torch: the tuple ('storage', type, key, location, numel)) into
/// a storage value.
using PersistentLoad = std::function<PyRef(const PyRef& pid)>;

/// Runs the pickle in data[0, size) to its STOP. Errors name `where` and the byte offset.
PyRef unpickle(const uint8_t* data, size_t size, const PersistentLoad& load,
               const std::string& where);

/// A short description for error messages: "dict", "tensor float32 [3, 4]", ...
std::string describe(const PyValue& v);

}  // namespace sit::models
