// A byte count as error messages show it: "183.1 MiB".
#pragma once
#include <cstdint>
#include <sstream>
#include <string>

namespace moevk {

inline std::string mib(uint64_t bytes) {
  std::ostringstream s;
  s.precision(1);
  s << std::fixed << bytes / 1048576.0 << " MiB";
  return s.str();
}

}  // namespace moevk
