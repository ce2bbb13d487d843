// Comma lists of names, as the MOEVK_DISABLE and MOEVK_ENABLE environment variables hold them:
// items lower-cased, empty ones dropped ("FP16,,dot" is {"fp16", "dot"}).
#pragma once
#include <cctype>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>

namespace moevk {

inline std::set<std::string> comma_list(const std::string& list) {
  std::set<std::string> items;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');) {
    for (char& c : item) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!item.empty()) items.insert(item);
  }
  return items;
}

// The items of environment variable `name` (none when it is unset).
inline std::set<std::string> env_comma_list(const char* name) {
  const char* value = std::getenv(name);
  return value ? comma_list(value) : std::set<std::string>{};
}

}  // namespace moevk
