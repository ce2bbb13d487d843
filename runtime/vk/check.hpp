// Turning VkResult into moevk::Error with the right status.
#pragma once
#include <vulkan/vulkan.h>

#include <string>

#include "common/error.hpp"

namespace moevk::vk {

const char* result_name(VkResult r);
moevk_status status_of(VkResult r);

// Throws moevk::Error when r is not VK_SUCCESS (or VK_INCOMPLETE), naming `what`.
inline void check(VkResult r, const char* what) {
  if (r == VK_SUCCESS || r == VK_INCOMPLETE) return;
  throw Error(status_of(r), std::string(what) + " failed: " + result_name(r));
}

}  // namespace moevk::vk
