// Shared plumbing of the C API: turning internal exceptions into a status plus a message.
#pragma once
#include <algorithm>
#include <cstring>
#include <new>
#include <string>

#include "common/error.hpp"
#include "moevk.h"

namespace moevk::api {

// The per-thread message behind moevk_last_error().
void set_thread_error(moevk_status status, const std::string& message);
void clear_thread_error();

// Records an invalid-argument failure for this thread and returns its status.
inline moevk_status invalid_argument(const char* message) {
  set_thread_error(MOEVK_ERROR_INVALID_ARGUMENT, message);
  return MOEVK_ERROR_INVALID_ARGUMENT;
}

// Runs `body` (returning void) and converts any exception into a status. The message goes to
// `message_out` (a handle's last-error string) when given, and always to the thread's message.
template <class F>
moevk_status guard(F&& body, std::string* message_out = nullptr) {
  moevk_status status = MOEVK_OK;
  std::string message;
  try {
    body();
    return MOEVK_OK;
  } catch (const moevk::Error& e) {
    status = e.status();
    message = e.what();
  } catch (const std::bad_alloc&) {
    status = MOEVK_ERROR_OUT_OF_HOST_MEMORY;
    message = "out of host memory";
  } catch (const std::exception& e) {
    status = MOEVK_ERROR_INTERNAL;
    message = std::string("internal error: ") + e.what();
  } catch (...) {
    status = MOEVK_ERROR_INTERNAL;
    message = "internal error: unknown exception";
  }
  if (message_out) *message_out = message;
  set_thread_error(status, message);
  return status;
}

// Copies a caller's parameter struct that may come from an older, smaller header: the fields its
// struct_size covers, the defaults already in `out` for the rest. False when struct_size is below
// `first_layout_size` (the 0.1 layout): not set from moevk_*_default_params, or garbage.
template <class Params>
bool copy_params(const Params& in, size_t first_layout_size, Params& out) {
  if (in.struct_size < first_layout_size) return false;
  std::memcpy(&out, &in, std::min(in.struct_size, sizeof out));
  out.struct_size = sizeof out;
  return true;
}

// Copies a std::string into a malloc'd C string owned by the caller (moevk_free_string).
char* to_c_string(const std::string& s);

}  // namespace moevk::api
