// Shared plumbing of the C API: turning internal exceptions into a status plus a message.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <thread>

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

// The last-failure messages of one handle, one per calling thread. Calls on a model are
// documented thread-safe (tokenize, detokenize, context creation...), so two threads may fail
// on one model at once: each must read its own message, and one thread's failure must not free
// the string another thread is still reading.
class PerThreadMessage {
 public:
  void set(const std::string& message);
  const char* get() const;  // the calling thread's message, "" when it has none

 private:
  mutable std::mutex mutex_;
  std::map<std::thread::id, std::string> by_thread_;  // nodes are stable: c_str() stays valid
};

// Runs `body` (returning void) and converts any exception into a status and a message.
template <class F>
moevk_status run_guarded(F&& body, std::string& message) {
  try {
    body();
    return MOEVK_OK;
  } catch (const moevk::Error& e) {
    message = e.what();
    return e.status();
  } catch (const std::bad_alloc&) {
    message = "out of host memory";
    return MOEVK_ERROR_OUT_OF_HOST_MEMORY;
  } catch (const std::exception& e) {
    message = std::string("internal error: ") + e.what();
  } catch (...) {
    message = "internal error: unknown exception";
  }
  return MOEVK_ERROR_INTERNAL;
}

// Runs `body` through run_guarded. The message goes to `message_out` (a handle's last-error
// string) when given, and always to the thread's message.
template <class F>
moevk_status guard(F&& body, std::string* message_out = nullptr) {
  std::string message;
  const moevk_status status = run_guarded(body, message);
  if (status == MOEVK_OK) return status;
  if (message_out) *message_out = message;
  set_thread_error(status, message);
  return status;
}

// Structs with a struct_size: the size of each one's first layout (moevk 0.1), the smallest a
// caller can have been built with (fields added since lie past it; moevk.h marks them), its
// name and where a caller gets a valid one. A struct_size below it is refused everywhere: 0 (not
// set from moevk_*_default_params) or garbage, never read as the full size.
template <class T>
struct FirstLayout;
#define MOEVK_FIRST_LAYOUT(T, last_field_of_0_1, how_to_get)                                      \
  template <>                                                                                     \
  struct FirstLayout<T> {                                                                         \
    static constexpr size_t size = offsetof(T, last_field_of_0_1) + sizeof(T::last_field_of_0_1); \
    static constexpr const char* name = #T;                                                       \
    static constexpr const char* source = how_to_get;                                             \
  };
MOEVK_FIRST_LAYOUT(moevk_model_params, progress_user_data, "moevk_model_default_params()")
MOEVK_FIRST_LAYOUT(moevk_context_params, expert_stats, "moevk_context_default_params()")
MOEVK_FIRST_LAYOUT(moevk_sampler_params, seed, "moevk_sampler_default_params()")
MOEVK_FIRST_LAYOUT(moevk_generate_params, user_data, "moevk_generate_default_params()")
MOEVK_FIRST_LAYOUT(moevk_generate_result, stop_reason, "sizeof(moevk_generate_result)")
MOEVK_FIRST_LAYOUT(moevk_convert_params, log_user_data, "moevk_convert_default_params()")
MOEVK_FIRST_LAYOUT(moevk_make_model_params, log_user_data, "moevk_make_model_default_params()")
MOEVK_FIRST_LAYOUT(moevk_split_params, paths_json_out, "moevk_split_default_params()")
MOEVK_FIRST_LAYOUT(moevk_chat_params, enable_thinking, "moevk_chat_default_params()")
#undef MOEVK_FIRST_LAYOUT

// "moevk_model_load: params->struct_size is 0, smaller than moevk_model_params of moevk 0.1
// (40 bytes): set it from moevk_model_default_params()". `field` names the caller's field.
template <class T>
std::string struct_size_message(const char* field, size_t given) {
  return std::string(field) + " is " + std::to_string(given) + ", smaller than " + FirstLayout<T>::name +
         " of moevk 0.1 (" + std::to_string(FirstLayout<T>::size) + " bytes): set it from " + FirstLayout<T>::source;
}

// Records that failure for this thread and returns MOEVK_ERROR_INVALID_ARGUMENT.
template <class T>
moevk_status struct_size_error(const char* field, size_t given) {
  set_thread_error(MOEVK_ERROR_INVALID_ARGUMENT, struct_size_message<T>(field, given));
  return MOEVK_ERROR_INVALID_ARGUMENT;
}

// Copies a caller's parameter struct that may come from an older, smaller header: the fields its
// struct_size covers, the defaults already in `out` for the rest. False when struct_size is below
// the first layout.
template <class Params>
bool copy_params(const Params& in, Params& out) {
  if (in.struct_size < FirstLayout<Params>::size) return false;
  std::memcpy(&out, &in, std::min(in.struct_size, sizeof out));
  out.struct_size = sizeof out;
  return true;
}

// The same for a handle shared by threads: the message goes to the calling thread's slot.
template <class F>
moevk_status guard(F&& body, PerThreadMessage& message_out) {
  std::string message;
  const moevk_status status = run_guarded(body, message);
  if (status == MOEVK_OK) return status;
  message_out.set(message);
  set_thread_error(status, message);
  return status;
}

// Copies a std::string into a malloc'd C string owned by the caller (moevk_free_string).
char* to_c_string(const std::string& s);

}  // namespace moevk::api
