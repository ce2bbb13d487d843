// Version, status names, per-thread error messages, string ownership.
#include <cstdlib>
#include <cstring>

#include "api/api_internal.hpp"

namespace moevk::api {

namespace {
thread_local std::string thread_message;
}

void set_thread_error(moevk_status status, const std::string& message) {
  thread_message = std::string(moevk_status_name(status)) + ": " + message;
}

void clear_thread_error() { thread_message.clear(); }

void PerThreadMessage::set(const std::string& message) {
  std::lock_guard<std::mutex> lock(mutex_);
  by_thread_[std::this_thread::get_id()] = message;
}

const char* PerThreadMessage::get() const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = by_thread_.find(std::this_thread::get_id());
  return it == by_thread_.end() ? "" : it->second.c_str();
}

char* to_c_string(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (!out) throw std::bad_alloc();
  std::memcpy(out, s.data(), s.size());
  out[s.size()] = '\0';
  return out;
}

}  // namespace moevk::api

extern "C" {

const char* moevk_version(void) { return MOEVK_VERSION_STRING; }

const char* moevk_status_name(moevk_status status) {
  switch (status) {
    case MOEVK_OK: return "MOEVK_OK";
    case MOEVK_ERROR_INVALID_ARGUMENT: return "MOEVK_ERROR_INVALID_ARGUMENT";
    case MOEVK_ERROR_IO: return "MOEVK_ERROR_IO";
    case MOEVK_ERROR_INVALID_FILE: return "MOEVK_ERROR_INVALID_FILE";
    case MOEVK_ERROR_MISSING_TENSOR: return "MOEVK_ERROR_MISSING_TENSOR";
    case MOEVK_ERROR_UNSUPPORTED: return "MOEVK_ERROR_UNSUPPORTED";
    case MOEVK_ERROR_NO_DEVICE: return "MOEVK_ERROR_NO_DEVICE";
    case MOEVK_ERROR_OUT_OF_DEVICE_MEMORY: return "MOEVK_ERROR_OUT_OF_DEVICE_MEMORY";
    case MOEVK_ERROR_OUT_OF_HOST_MEMORY: return "MOEVK_ERROR_OUT_OF_HOST_MEMORY";
    case MOEVK_ERROR_DEVICE_LOST: return "MOEVK_ERROR_DEVICE_LOST";
    case MOEVK_ERROR_VULKAN: return "MOEVK_ERROR_VULKAN";
    case MOEVK_ERROR_CONTEXT_FULL: return "MOEVK_ERROR_CONTEXT_FULL";
    case MOEVK_ERROR_CANCELLED: return "MOEVK_ERROR_CANCELLED";
    case MOEVK_ERROR_TOKENIZER: return "MOEVK_ERROR_TOKENIZER";
    case MOEVK_ERROR_INTERNAL: return "MOEVK_ERROR_INTERNAL";
  }
  return "MOEVK_ERROR_UNKNOWN";
}

const char* moevk_last_error(void) { return moevk::api::thread_message.c_str(); }

void moevk_free_string(char* s) { std::free(s); }

}  // extern "C"
