// Internal error type. Library code throws moevk::Error; the C API (runtime/api/) catches it and
// turns it into a moevk_status plus a message. Nothing else crosses the public boundary.
#pragma once
#include <stdexcept>
#include <string>

#include "moevk.h"

namespace moevk {

class Error : public std::runtime_error {
 public:
  Error(moevk_status status, std::string message)
      : std::runtime_error(std::move(message)), status_(status) {}
  moevk_status status() const { return status_; }

 private:
  moevk_status status_;
};

[[noreturn]] inline void fail(moevk_status status, std::string message) {
  throw Error(status, std::move(message));
}

inline void require(bool ok, moevk_status status, const std::string& message) {
  if (!ok) fail(status, message);
}

}  // namespace moevk
