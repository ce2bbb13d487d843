// moevk_devices_json: the capability report of every Vulkan device.
#include <nlohmann/json.hpp>

#include "api/api_internal.hpp"
#include "vk/context.hpp"

extern "C" moevk_status moevk_devices_json(char** json_out) {
  if (!json_out) return moevk::api::invalid_argument("moevk_devices_json: json_out is NULL");
  *json_out = nullptr;
  return moevk::api::guard([&] {
    auto instance = moevk::vk::Instance::create(false);
    nlohmann::json devices = nlohmann::json::array();
    for (const auto& caps : instance->describe_devices()) devices.push_back(caps);
    *json_out = moevk::api::to_c_string(devices.dump(2));
  });
}
