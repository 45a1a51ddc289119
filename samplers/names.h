#pragma once
/// Name tables for enums: parsing (with errors that list the valid names) and printing.

#include <string>
#include <utility>
#include <vector>

#include "common/error.h"

namespace sit::samplers {

template <class E>
using NameTable = std::vector<std::pair<const char*, E>>;

/// The first name of `value` in `table`.
template <class E>
const char* name_of(const NameTable<E>& table, E value) {
  for (const auto& [name, v] : table)
    if (v == value) return name;
  unreachable("enum value ", static_cast<int>(value), " has no name");
}

/// ASCII case-insensitive equality ("Euler" = "euler", "SBDM" = "sbdm").
inline bool same_name(const std::string& a, const char* b) {
  size_t i = 0;
  for (; i < a.size() && b[i]; ++i) {
    const auto lower = [](unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; };
    if (lower(static_cast<unsigned char>(a[i])) != lower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return i == a.size() && !b[i];
}

/// The name table of a family's stepper rows (each with name, aliases and method):
/// canonical names first, then the aliases (the order error messages list them in).
template <class Row>
auto stepper_name_table(const std::vector<Row>& rows) {
  NameTable<decltype(Row::method)> names;
  for (const auto& r : rows)
    names.emplace_back(r.name, r.method);
  for (const auto& r : rows)
    for (const char* alias : r.aliases)
      names.emplace_back(alias, r.method);
  return names;
}

/// Parses `name` (any letter case, aliases allowed); throws listing every valid name.
template <class E>
E parse_name(const NameTable<E>& table, const std::string& name, const char* what) {
  for (const auto& [n, v] : table)
    if (same_name(name, n)) return v;
  std::string valid;
  for (const auto& [n, v] : table)
    valid += (valid.empty() ? "" : ", ") + std::string(n);
  fail(what, " must be one of ", valid, "; got '", name, "'");
}

}  // namespace sit::samplers
