#pragma once
/// "FILE:LINE" of a node of a TOML file, for errors that name where a key is (sweep files,
/// mixtures, published baselines). Header-only: only readers that parse TOML include it.

#include <toml++/toml.h>

#include <string>

namespace sit {

inline std::string toml_where(const std::string& file, const toml::node& n) {
  return file + ":" + std::to_string(n.source().begin.line);
}

}  // namespace sit
