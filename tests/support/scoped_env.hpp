// An environment variable set for a scope and restored after it (to its old value, or unset),
// for tests of what the runtime reads from the environment (MOEVK_DISABLE, MOEVK_DEVICE, ...).
#pragma once
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

namespace moevk::test {

class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::string& value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) saved_ = old;
    set(value);
  }
  ~ScopedEnv() {
    if (saved_) ::setenv(name_.c_str(), saved_->c_str(), 1);
    else ::unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  void set(const std::string& value) { ::setenv(name_.c_str(), value.c_str(), 1); }

 private:
  std::string name_;
  std::optional<std::string> saved_;
};

}  // namespace moevk::test
