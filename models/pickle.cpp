// A pickle virtual machine covering every opcode of protocols 0-5 that can appear in a
// `torch.save` file, with torch's tensor rebuild functions evaluated natively.
#include "models/pickle.h"

#include <ATen/ATen.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "common/error.h"

namespace sit::models {
namespace {

// Every value made while unpickling is also held here (see unpickle), so that a graph
// with a cycle or a very deep nesting can be taken apart without recursion.
thread_local std::vector<PyRef>* t_arena = nullptr;

PyRef make(PyValue::Kind kind) {
  auto v = std::make_shared<PyValue>();
  v->kind = kind;
  if (t_arena) t_arena->push_back(v);
  return v;
}

// Containers may nest this deep; a deeper file is refused (its shared_ptr chain would be
// freed by recursion, one stack frame per level).
constexpr size_t kMaxDepth = 1000;

/// Empty when the graph under `root` is a tree or a DAG no deeper than kMaxDepth; else
/// what is wrong. Iterative depth-first search; `state` ends up holding every value
/// reached (2 when finished).
std::string graph_problem(const PyRef& root, std::map<const PyValue*, int>& state) {
  struct Frame {
    const PyValue* v;
    std::vector<const PyValue*> children;
    size_t next = 0;
  };
  auto children_of = [](const PyValue* v) {
    std::vector<const PyValue*> out;
    for (const auto& i : v->items)
      if (i) out.push_back(i.get());
    for (const auto& [k, x] : v->entries) {
      if (k) out.push_back(k.get());
      if (x) out.push_back(x.get());
    }
    if (v->state) out.push_back(v->state.get());
    return out;
  };
  std::vector<Frame> stack;
  stack.push_back({root.get(), children_of(root.get())});
  state[root.get()] = 1;
  while (!stack.empty()) {
    Frame& f = stack.back();
    if (f.next == f.children.size()) {
      state[f.v] = 2;
      stack.pop_back();
      continue;
    }
    const PyValue* c = f.children[f.next++];
    const int s = state[c];
    if (s == 1) return "a reference cycle (a container inside itself)";
    if (s == 2) continue;
    if (stack.size() >= kMaxDepth) return cat("containers nested deeper than ", kMaxDepth, " levels");
    state[c] = 1;
    stack.push_back({c, children_of(c)});
  }
  return "";
}

PyRef make_int(int64_t i) {
  auto v = make(PyValue::Kind::kInt);
  v->integer = i;
  return v;
}

PyRef make_text(PyValue::Kind kind, std::string s) {
  auto v = make(kind);
  v->text = std::move(s);
  return v;
}

class Machine {
 public:
  Machine(const uint8_t* data, size_t size, const PersistentLoad& load, const std::string& where)
      : p_(data), size_(size), load_(load), where_(where) {}

  PyRef run();

 private:
  [[noreturn]] void bad(const std::string& what) const {
    fail(where_, ": pickle byte ", pos_, ": ", what);
  }
  /// The whole of `s` as a decimal integer (protocol 0's text opcodes); anything else,
  /// out of range included, is a clean error (std::stoll threw std::invalid_argument).
  int64_t text_int(const std::string& s, const char* what) const {
    int64_t v = 0;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size())
      bad(cat(what, " must be a decimal integer, got '", s.substr(0, 40), "'"));
    return v;
  }
  double text_float(const std::string& s) const {
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size())
      bad(cat("FLOAT must be a decimal number, got '", s.substr(0, 40), "'"));
    return v;
  }
  uint64_t memo_key(const std::string& s) const {
    const int64_t k = text_int(s, "a memo key");
    if (k < 0) bad(cat("memo key ", k, " is negative"));
    return static_cast<uint64_t>(k);
  }
  /// A value from the persistent loader joins the values made here: opcodes can give it
  /// children (a storage appended to itself), so it is checked and unlinked like them.
  static PyRef loaded(PyRef v) {
    if (t_arena && v) t_arena->push_back(v);
    return v;
  }
  void need(size_t n) const {
    // n - not pos_ + n - against what is left: an 8-byte length near 2^64 wrapped the sum
    if (n > size_ - pos_) bad(cat("truncated (needs ", n, " more bytes, ", size_ - pos_, " left)"));
  }
  uint8_t u8() {
    need(1);
    return p_[pos_++];
  }
  template <class T>
  T le() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string bytes(size_t n) {
    need(n);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), n);
    pos_ += n;
    return s;
  }
  std::string line() {
    size_t end = pos_;
    while (end < size_ && p_[end] != '\n')
      ++end;
    if (end == size_) bad("unterminated text line");
    std::string s(reinterpret_cast<const char*>(p_ + pos_), end - pos_);
    pos_ = end + 1;
    return s;
  }
  PyRef pop() {
    if (stack_.empty()) bad("stack underflow");
    PyRef v = stack_.back();
    stack_.pop_back();
    return v;
  }
  PyRef& top() {
    if (stack_.empty()) bad("stack underflow");
    return stack_.back();
  }
  /// Pops everything above the last MARK.
  std::vector<PyRef> pop_mark() {
    if (marks_.empty()) bad("no MARK on the stack");
    const size_t m = marks_.back();
    marks_.pop_back();
    if (m > stack_.size()) bad("MARK above the stack");
    std::vector<PyRef> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  PyRef tuple(std::vector<PyRef> items) {
    auto t = make(PyValue::Kind::kTuple);
    t->items = std::move(items);
    return t;
  }
  void memo_put(uint64_t key) { memo_[key] = top(); }
  PyRef memo_get(uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) bad(cat("memo key ", key, " was never stored"));
    return it->second;
  }
  void set_items(PyRef& dict, const std::vector<PyRef>& kv) {
    if (kv.size() % 2) bad("SETITEMS with an odd number of items");
    for (size_t i = 0; i < kv.size(); i += 2)
      set_item(dict, kv[i], kv[i + 1]);
  }
  void set_item(PyRef& dict, const PyRef& key, const PyRef& value) {
    if (dict->kind == PyValue::Kind::kObject) {
      // An unknown mapping class (e.g. a dict subclass): keep its entries.
      dict->entries.emplace_back(key, value);
      return;
    }
    if (dict->kind != PyValue::Kind::kDict) bad("SETITEM on a " + describe(*dict));
    if (key->is_string())
      for (auto& e : dict->entries)
        if (e.first->is_string() && e.first->text == key->text) {
          e.second = value;
          return;
        }
    dict->entries.emplace_back(key, value);
  }
  PyRef global(const std::string& module, const std::string& name) {
    return make_text(PyValue::Kind::kGlobal, module + "." + name);
  }
  PyRef reduce(const PyRef& callable, const PyRef& args);
  PyRef rebuild_tensor(const std::vector<PyRef>& a);

  const uint8_t* p_;
  size_t size_, pos_ = 0;
  const PersistentLoad& load_;
  const std::string& where_;
  std::vector<PyRef> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, PyRef> memo_;
};

int64_t as_int(const PyRef& v, const char* what, const std::string& where) {
  if (!v || (v->kind != PyValue::Kind::kInt && v->kind != PyValue::Kind::kBool))
    fail(where, ": ", what, " must be an integer, got ", v ? describe(*v) : "nothing");
  return v->kind == PyValue::Kind::kBool ? v->boolean : v->integer;
}

std::vector<int64_t> int_tuple(const PyRef& v, const char* what, const std::string& where) {
  if (!v || (v->kind != PyValue::Kind::kTuple && v->kind != PyValue::Kind::kList))
    fail(where, ": ", what, " must be a tuple of integers, got ", v ? describe(*v) : "nothing");
  std::vector<int64_t> out;
  for (const auto& i : v->items)
    out.push_back(as_int(i, what, where));
  return out;
}

PyRef Machine::rebuild_tensor(const std::vector<PyRef>& a) {
  // torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
  // backward_hooks[, metadata]).
  if (a.size() < 4) bad("_rebuild_tensor_v2 needs at least 4 arguments");
  if (a[0]->kind != PyValue::Kind::kStorage) bad("tensor storage is a " + describe(*a[0]));
  const int64_t offset = as_int(a[1], "storage offset", where_);
  const auto sizes = int_tuple(a[2], "tensor size", where_);
  const auto strides = int_tuple(a[3], "tensor stride", where_);
  if (sizes.size() != strides.size()) bad("tensor size and stride differ in length");
  const at::Tensor& storage = a[0]->tensor;
  int64_t last = offset;  // the largest element index the view touches
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] < 0 || strides[d] < 0) bad("negative tensor size or stride");
    if (sizes[d] == 0) last = -1;
    int64_t span = 0;  // in checked arithmetic: a crafted size x stride must not wrap
    if (last >= 0 && (__builtin_mul_overflow(sizes[d] - 1, strides[d], &span) ||
                      __builtin_add_overflow(last, span, &last)))
      bad(cat("tensor view (size ", sizes[d], ", stride ", strides[d],
              ") reaches past any storage"));
  }
  if (offset < 0 || last >= storage.numel())
    bad(cat("tensor view (offset ", offset, ", last element ", last, ") outside its storage of ",
            storage.numel(), " elements"));
  auto t = make(PyValue::Kind::kTensor);
  t->tensor = storage.as_strided(sizes, strides, offset);
  return t;
}

PyRef Machine::reduce(const PyRef& callable, const PyRef& args) {
  const std::vector<PyRef>& a = args->items;
  if (callable->kind == PyValue::Kind::kGlobal) {
    const std::string& f = callable->text;
    if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor")
      return rebuild_tensor(a);
    if (f == "torch._utils._rebuild_parameter" ||
        f == "torch._utils._rebuild_parameter_with_state") {
      if (a.empty() || a[0]->kind != PyValue::Kind::kTensor) bad("parameter without a tensor");
      return a[0];
    }
    if (f == "collections.OrderedDict" || f == "builtins.dict" || f == "__builtin__.dict") {
      auto d = make(PyValue::Kind::kDict);
      if (!a.empty() && (a[0]->kind == PyValue::Kind::kList || a[0]->kind == PyValue::Kind::kTuple))
        for (const auto& kv : a[0]->items)
          if (kv->items.size() == 2) set_item(d, kv->items[0], kv->items[1]);
      return d;
    }
  }
  auto obj = make_text(PyValue::Kind::kObject,
                       callable->kind == PyValue::Kind::kGlobal ? callable->text : "<callable>");
  obj->items = a;
  return obj;
}

PyRef Machine::run() {
  for (;;) {
    const uint8_t op = u8();
    switch (op) {
      case 0x80:
        u8();
        break;  // PROTO
      case 0x95:
        le<uint64_t>();
        break;  // FRAME
      case '.':
        return pop();  // STOP
      case '(':
        marks_.push_back(stack_.size());
        break;  // MARK
      case '0':
        pop();
        break;  // POP
      case '1':
        pop_mark();
        break;  // POP_MARK
      case '2':
        stack_.push_back(top());
        break;  // DUP
      case 'N':
        stack_.push_back(make(PyValue::Kind::kNone));
        break;
      case 0x88:
      case 0x89: {  // NEWTRUE, NEWFALSE
        auto b = make(PyValue::Kind::kBool);
        b->boolean = op == 0x88;
        stack_.push_back(b);
        break;
      }
      case 'J':
        stack_.push_back(make_int(le<int32_t>()));
        break;  // BININT
      case 'K':
        stack_.push_back(make_int(u8()));
        break;  // BININT1
      case 'M':
        stack_.push_back(make_int(le<uint16_t>()));
        break;  // BININT2
      case 0x8a:
      case 0x8b: {  // LONG1, LONG4: little-endian two's complement
        const uint64_t n = op == 0x8a ? u8() : le<uint32_t>();
        if (n > 8) bad(cat("integer of ", n, " bytes does not fit in 64 bits"));
        const std::string b = bytes(n);
        uint64_t v = 0;
        for (size_t i = 0; i < n; ++i)
          v |= uint64_t(uint8_t(b[i])) << (8 * i);
        if (n > 0 && n < 8 && (uint8_t(b[n - 1]) & 0x80)) v |= ~uint64_t(0) << (8 * n);
        stack_.push_back(make_int(static_cast<int64_t>(v)));
        break;
      }
      case 'I': {  // INT (text); "01"/"00" are True/False
        const std::string s = line();
        if (s == "01" || s == "00") {
          auto b = make(PyValue::Kind::kBool);
          b->boolean = s == "01";
          stack_.push_back(b);
        } else {
          stack_.push_back(make_int(text_int(s, "INT")));
        }
        break;
      }
      case 'L': {  // LONG (text, trailing L)
        std::string s = line();
        if (!s.empty() && s.back() == 'L') s.pop_back();
        stack_.push_back(make_int(text_int(s, "LONG")));
        break;
      }
      case 'G': {  // BINFLOAT, big-endian double
        const std::string b = bytes(8);
        uint64_t u = 0;
        for (int i = 0; i < 8; ++i)
          u = (u << 8) | uint8_t(b[i]);
        auto f = make(PyValue::Kind::kFloat);
        std::memcpy(&f->number, &u, 8);
        stack_.push_back(f);
        break;
      }
      case 'F': {
        auto f = make(PyValue::Kind::kFloat);
        f->number = text_float(line());
        stack_.push_back(f);
        break;
      }
      case 'X':
        stack_.push_back(make_text(PyValue::Kind::kString, bytes(le<uint32_t>())));
        break;
      case 0x8c:
        stack_.push_back(make_text(PyValue::Kind::kString, bytes(u8())));
        break;
      case 0x8d:
        stack_.push_back(make_text(PyValue::Kind::kString, bytes(le<uint64_t>())));
        break;
      case 'V':
        stack_.push_back(make_text(PyValue::Kind::kString, line()));
        break;
      case 'T':
        stack_.push_back(make_text(PyValue::Kind::kString, bytes(le<uint32_t>())));
        break;
      case 'U':
        stack_.push_back(make_text(PyValue::Kind::kString, bytes(u8())));
        break;
      case 'S': {  // STRING: a quoted repr; keep the text between the quotes
        std::string s = line();
        if (s.size() >= 2) s = s.substr(1, s.size() - 2);
        stack_.push_back(make_text(PyValue::Kind::kString, s));
        break;
      }
      case 'B':
        stack_.push_back(make_text(PyValue::Kind::kBytes, bytes(le<uint32_t>())));
        break;
      case 'C':
        stack_.push_back(make_text(PyValue::Kind::kBytes, bytes(u8())));
        break;
      case 0x8e:
      case 0x96:
        stack_.push_back(make_text(PyValue::Kind::kBytes, bytes(le<uint64_t>())));
        break;
      case ')':
        stack_.push_back(tuple({}));
        break;
      case 't':
        stack_.push_back(tuple(pop_mark()));
        break;
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        const size_t n = op - 0x84;
        if (stack_.size() < n) bad("stack underflow");
        std::vector<PyRef> items(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
        stack_.resize(stack_.size() - n);
        stack_.push_back(tuple(std::move(items)));
        break;
      }
      case ']':
        stack_.push_back(make(PyValue::Kind::kList));
        break;
      case 'l': {
        auto l = make(PyValue::Kind::kList);
        l->items = pop_mark();
        stack_.push_back(l);
        break;
      }
      case 'a': {
        PyRef v = pop();
        top()->items.push_back(v);
        break;
      }
      case 'e': {
        std::vector<PyRef> items = pop_mark();
        PyRef& l = top();
        l->items.insert(l->items.end(), items.begin(), items.end());
        break;
      }
      case 0x8f:
      case '}':
        stack_.push_back(make(op == '}' ? PyValue::Kind::kDict : PyValue::Kind::kList));
        break;
      case 'd': {
        auto d = make(PyValue::Kind::kDict);
        set_items(d, pop_mark());
        stack_.push_back(d);
        break;
      }
      case 's': {
        PyRef v = pop(), k = pop();
        set_item(top(), k, v);
        break;
      }
      case 'u': {
        std::vector<PyRef> kv = pop_mark();
        set_items(top(), kv);
        break;
      }
      case 0x90: {  // ADDITEMS (sets become lists)
        std::vector<PyRef> items = pop_mark();
        PyRef& s = top();
        s->items.insert(s->items.end(), items.begin(), items.end());
        break;
      }
      case 0x91: {  // FROZENSET
        auto l = make(PyValue::Kind::kList);
        l->items = pop_mark();
        stack_.push_back(l);
        break;
      }
      case 'p':
        memo_put(memo_key(line()));
        break;
      case 'q':
        memo_put(u8());
        break;
      case 'r':
        memo_put(le<uint32_t>());
        break;
      case 0x94:
        memo_put(memo_.size());
        break;  // MEMOIZE
      case 'g':
        stack_.push_back(memo_get(memo_key(line())));
        break;
      case 'h':
        stack_.push_back(memo_get(u8()));
        break;
      case 'j':
        stack_.push_back(memo_get(le<uint32_t>()));
        break;
      case 'c': {  // GLOBAL "module\nname\n"
        const std::string module = line();
        stack_.push_back(global(module, line()));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        PyRef name = pop(), module = pop();
        stack_.push_back(global(module->text, name->text));
        break;
      }
      case 'Q': {  // BINPERSID
        PyRef pid = pop();
        if (!load_) bad("persistent id without a loader");
        stack_.push_back(loaded(load_(pid)));
        break;
      }
      case 'P': {  // PERSID (text)
        if (!load_) bad("persistent id without a loader");
        stack_.push_back(loaded(load_(make_text(PyValue::Kind::kString, line()))));
        break;
      }
      case 'R': {  // REDUCE
        PyRef args = pop(), callable = pop();
        if (args->kind != PyValue::Kind::kTuple) bad("REDUCE arguments are not a tuple");
        stack_.push_back(reduce(callable, args));
        break;
      }
      case 0x81: {  // NEWOBJ cls args
        PyRef args = pop(), cls = pop();
        stack_.push_back(reduce(cls, args));
        break;
      }
      case 0x92: {  // NEWOBJ_EX cls args kwargs
        pop();
        PyRef args = pop(), cls = pop();
        stack_.push_back(reduce(cls, args));
        break;
      }
      case 'o': {  // OBJ: MARK cls args...
        std::vector<PyRef> items = pop_mark();
        if (items.empty()) bad("OBJ without a class");
        stack_.push_back(reduce(items[0], tuple({items.begin() + 1, items.end()})));
        break;
      }
      case 'i': {  // INST module name, MARK args
        const std::string module = line();
        const std::string name = line();
        stack_.push_back(reduce(global(module, name), tuple(pop_mark())));
        break;
      }
      case 'b': {  // BUILD: objects keep their state; dicts and tensors ignore it
        PyRef state = pop();
        PyRef& target = top();
        if (target->kind == PyValue::Kind::kObject) target->state = state;
        break;
      }
      default:
        bad(cat("unsupported opcode 0x", std::hex, int(op)));
    }
  }
}

}  // namespace

PyRef PyValue::get(const std::string& key) const {
  for (const auto& e : entries)
    if (e.first->is_string() && e.first->text == key) return e.second;
  return nullptr;
}

PyRef unpickle(const uint8_t* data, size_t size, const PersistentLoad& load,
               const std::string& where) {
  std::vector<PyRef> arena;
  std::vector<PyRef>* const outer = t_arena;
  t_arena = &arena;
  // Unlinks every value made here: a cyclic or deep graph is then freed value by value.
  auto take_apart = [&] {
    t_arena = outer;
    for (const PyRef& v : arena) {
      v->items.clear();
      v->entries.clear();
      v->state.reset();
    }
  };
  PyRef root;
  try {
    root = Machine(data, size, load, where).run();
  } catch (...) {
    take_apart();
    throw;
  }
  t_arena = outer;
  if (root) {
    std::map<const PyValue*, int> reached;
    const std::string problem = graph_problem(root, reached);
    if (!problem.empty()) {
      root.reset();
      take_apart();
      fail(where, ": the pickle holds ", problem,
           "; checkpoints and reference statistics never do (a crafted file?)");
    }
    // values left on the machine's stack or memo: unlinked, so none is freed by recursion
    for (const PyRef& v : arena)
      if (!reached.count(v.get())) {
        v->items.clear();
        v->entries.clear();
        v->state.reset();
      }
  }
  return root;
}

std::string describe(const PyValue& v) {
  switch (v.kind) {
    case PyValue::Kind::kNone:
      return "None";
    case PyValue::Kind::kBool:
      return "bool";
    case PyValue::Kind::kInt:
      return "int";
    case PyValue::Kind::kFloat:
      return "float";
    case PyValue::Kind::kString:
      return "str";
    case PyValue::Kind::kBytes:
      return "bytes";
    case PyValue::Kind::kTuple:
      return "tuple";
    case PyValue::Kind::kList:
      return "list";
    case PyValue::Kind::kDict:
      return cat("dict of ", v.entries.size());
    case PyValue::Kind::kGlobal:
      return "global " + v.text;
    case PyValue::Kind::kObject:
      return "object of class " + v.text;
    case PyValue::Kind::kStorage:
      return "storage";
    case PyValue::Kind::kTensor: {
      std::string s = cat("tensor ", v.tensor.scalar_type(), " [");
      for (int64_t d = 0; d < v.tensor.dim(); ++d)
        s += cat(d ? ", " : "", v.tensor.size(d));
      return s + "]";
    }
  }
  unreachable("PyValue kind ", static_cast<int>(v.kind));
}

}  // namespace sit::models
