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
  return "?";
}

/// Parses `name` (exact match, aliases allowed); throws listing every valid name.
template <class E>
E parse_name(const NameTable<E>& table, const std::string& name, const char* what) {
  for (const auto& [n, v] : table)
    if (name == n) return v;
  std::string valid;
  for (const auto& [n, v] : table)
    valid += (valid.empty() ? "" : ", ") + std::string(n);
  fail(what, " must be one of ", valid, "; got '", name, "'");
}

}  // namespace sit::samplers
