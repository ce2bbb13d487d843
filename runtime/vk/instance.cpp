// Vulkan instance with the optional Khronos validation layer, and device enumeration.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "vk/check.hpp"
#include "vk/context.hpp"

namespace moevk::vk {

namespace {

VKAPI_ATTR VkBool32 VKAPI_CALL on_validation_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                     VkDebugUtilsMessageTypeFlagsEXT,
                                                     const VkDebugUtilsMessengerCallbackDataEXT* data,
                                                     void* user) {
  if (severity < VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) return VK_FALSE;
  std::string m = std::string(severity >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT ? "error: " : "warning: ") +
                  (data && data->pMessage ? data->pMessage : "");
  std::fprintf(stderr, "[moevk validation] %s\n", m.c_str());
  static_cast<Instance*>(user)->add_validation_message(std::move(m));
  return VK_FALSE;
}

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::strcmp(v, "0") != 0;
}

bool has_layer(const char* name) {
  uint32_t n = 0;
  check(vkEnumerateInstanceLayerProperties(&n, nullptr), "vkEnumerateInstanceLayerProperties");
  std::vector<VkLayerProperties> layers(n);
  check(vkEnumerateInstanceLayerProperties(&n, layers.data()), "vkEnumerateInstanceLayerProperties");
  layers.resize(n);  // fewer when a layer went away between the calls (VK_INCOMPLETE)
  for (const auto& l : layers)
    if (!std::strcmp(l.layerName, name)) return true;
  return false;
}

}  // namespace

std::shared_ptr<Instance> Instance::create(bool validation) {
  std::shared_ptr<Instance> inst(new Instance());
  inst->validation_ = validation || env_flag("MOEVK_VALIDATE");

  uint32_t loader_version = VK_API_VERSION_1_0;
  if (vkEnumerateInstanceVersion(&loader_version) != VK_SUCCESS || loader_version < VK_API_VERSION_1_2)
    throw Error(MOEVK_ERROR_NO_DEVICE, "the Vulkan loader supports only Vulkan " +
                                           std::to_string(VK_API_VERSION_MAJOR(loader_version)) + "." +
                                           std::to_string(VK_API_VERSION_MINOR(loader_version)) +
                                           "; moevk needs 1.2 or later");

  VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
  app.pApplicationName = "moevk";
  app.pEngineName = "moevk";
  app.apiVersion = loader_version >= VK_API_VERSION_1_3 ? VK_API_VERSION_1_3 : VK_API_VERSION_1_2;

  std::vector<const char*> layers, extensions;
  const char* validation_layer = "VK_LAYER_KHRONOS_validation";
  if (inst->validation_) {
    if (!has_layer(validation_layer))
      throw Error(MOEVK_ERROR_UNSUPPORTED,
                  "validation requested (MOEVK_VALIDATE=1) but VK_LAYER_KHRONOS_validation is not "
                  "installed (Debian: apt-get install vulkan-validationlayers)");
    layers.push_back(validation_layer);
    extensions.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
  }

  VkDebugUtilsMessengerCreateInfoEXT messenger_info{VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
  messenger_info.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                                   VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
  messenger_info.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                               VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                               VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
  messenger_info.pfnUserCallback = on_validation_message;
  messenger_info.pUserData = inst.get();

  VkInstanceCreateInfo info{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  info.pApplicationInfo = &app;
  info.enabledLayerCount = static_cast<uint32_t>(layers.size());
  info.ppEnabledLayerNames = layers.data();
  info.enabledExtensionCount = static_cast<uint32_t>(extensions.size());
  info.ppEnabledExtensionNames = extensions.data();
  if (inst->validation_) info.pNext = &messenger_info;  // also catch create/destroy messages
  VkResult r = vkCreateInstance(&info, nullptr, &inst->instance_);
  if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
    throw Error(MOEVK_ERROR_NO_DEVICE, "no Vulkan driver found (install a GPU driver, or Mesa's "
                                       "lavapipe: apt-get install mesa-vulkan-drivers)");
  check(r, "vkCreateInstance");

  if (inst->validation_) {
    auto create = reinterpret_cast<PFN_vkCreateDebugUtilsMessengerEXT>(
        vkGetInstanceProcAddr(inst->instance_, "vkCreateDebugUtilsMessengerEXT"));
    if (create) check(create(inst->instance_, &messenger_info, nullptr, &inst->messenger_),
                      "vkCreateDebugUtilsMessengerEXT");
  }
  return inst;
}

Instance::~Instance() {
  if (messenger_) {
    auto destroy = reinterpret_cast<PFN_vkDestroyDebugUtilsMessengerEXT>(
        vkGetInstanceProcAddr(instance_, "vkDestroyDebugUtilsMessengerEXT"));
    if (destroy) destroy(instance_, messenger_, nullptr);
  }
  if (instance_) vkDestroyInstance(instance_, nullptr);
}

std::vector<VkPhysicalDevice> Instance::physical_devices() const {
  uint32_t n = 0;
  check(vkEnumeratePhysicalDevices(instance_, &n, nullptr), "vkEnumeratePhysicalDevices");
  std::vector<VkPhysicalDevice> devices(n);
  check(vkEnumeratePhysicalDevices(instance_, &n, devices.data()), "vkEnumeratePhysicalDevices");
  devices.resize(n);
  return devices;
}

std::vector<Capabilities> Instance::describe_devices() const {
  std::vector<Capabilities> out;
  auto devices = physical_devices();
  for (uint32_t i = 0; i < devices.size(); ++i) {
    VkPhysicalDeviceProperties p{};
    vkGetPhysicalDeviceProperties(devices[i], &p);
    if (p.apiVersion < VK_API_VERSION_1_2) continue;  // not usable, not listed as usable
    out.push_back(query_capabilities(instance_, devices[i], i));
  }
  return out;
}

namespace {
std::mutex process_messages_mutex;
std::vector<std::pair<const Instance*, std::string>> process_messages;
}  // namespace

std::vector<std::string> Instance::process_validation_messages() {
  std::lock_guard<std::mutex> lock(process_messages_mutex);
  std::vector<std::string> out;
  for (const auto& [owner, m] : process_messages) out.push_back(m);
  return out;
}

std::vector<std::string> Instance::validation_messages() const {
  std::lock_guard<std::mutex> lock(messages_mutex_);
  return messages_;
}

void Instance::clear_validation_messages() {
  std::lock_guard<std::mutex> lock(messages_mutex_);
  messages_.clear();
  std::lock_guard<std::mutex> plock(process_messages_mutex);
  std::erase_if(process_messages, [this](const auto& e) { return e.first == this; });
}

void Instance::add_validation_message(std::string m) {
  {
    std::lock_guard<std::mutex> plock(process_messages_mutex);
    process_messages.emplace_back(this, m);
  }
  std::lock_guard<std::mutex> lock(messages_mutex_);
  messages_.push_back(std::move(m));
}

const char* result_name(VkResult r) {
  switch (r) {
#define MOEVK_CASE(x) case x: return #x;
    MOEVK_CASE(VK_SUCCESS) MOEVK_CASE(VK_NOT_READY) MOEVK_CASE(VK_TIMEOUT) MOEVK_CASE(VK_INCOMPLETE)
    MOEVK_CASE(VK_ERROR_OUT_OF_HOST_MEMORY) MOEVK_CASE(VK_ERROR_OUT_OF_DEVICE_MEMORY)
    MOEVK_CASE(VK_ERROR_INITIALIZATION_FAILED) MOEVK_CASE(VK_ERROR_DEVICE_LOST)
    MOEVK_CASE(VK_ERROR_MEMORY_MAP_FAILED) MOEVK_CASE(VK_ERROR_LAYER_NOT_PRESENT)
    MOEVK_CASE(VK_ERROR_EXTENSION_NOT_PRESENT) MOEVK_CASE(VK_ERROR_FEATURE_NOT_PRESENT)
    MOEVK_CASE(VK_ERROR_INCOMPATIBLE_DRIVER) MOEVK_CASE(VK_ERROR_TOO_MANY_OBJECTS)
    MOEVK_CASE(VK_ERROR_FORMAT_NOT_SUPPORTED) MOEVK_CASE(VK_ERROR_FRAGMENTED_POOL)
    MOEVK_CASE(VK_ERROR_OUT_OF_POOL_MEMORY) MOEVK_CASE(VK_ERROR_INVALID_SHADER_NV)
    MOEVK_CASE(VK_ERROR_UNKNOWN)
#undef MOEVK_CASE
    default: return "VkResult(unknown)";
  }
}

moevk_status status_of(VkResult r) {
  switch (r) {
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return MOEVK_ERROR_OUT_OF_DEVICE_MEMORY;
    case VK_ERROR_OUT_OF_HOST_MEMORY: return MOEVK_ERROR_OUT_OF_HOST_MEMORY;
    case VK_ERROR_DEVICE_LOST: return MOEVK_ERROR_DEVICE_LOST;
    case VK_ERROR_FEATURE_NOT_PRESENT:
    case VK_ERROR_EXTENSION_NOT_PRESENT:
    case VK_ERROR_LAYER_NOT_PRESENT:
    case VK_ERROR_FORMAT_NOT_SUPPORTED: return MOEVK_ERROR_UNSUPPORTED;
    case VK_ERROR_INCOMPATIBLE_DRIVER: return MOEVK_ERROR_NO_DEVICE;
    default: return MOEVK_ERROR_VULKAN;
  }
}

}  // namespace moevk::vk
