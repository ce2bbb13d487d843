// `moevk devices`: every Vulkan device and what it offers.
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "moevk.h"

namespace {

const char* yes(const nlohmann::json& j) { return j.get<bool>() ? "yes" : "no"; }

// MiB below 1 GiB: a 128 MiB limit must not read "0.12 GiB".
std::string memory_size(double bytes) {
  char buf[32];
  if (bytes < 1024.0 * 1024 * 1024) std::snprintf(buf, sizeof buf, "%.4g MiB", bytes / (1024.0 * 1024));
  else std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
  return buf;
}

// " 16x16x16:f16->f32 ..." for the subgroup-scope shapes (the ones kernels can use).
std::string coopmat_shapes(const nlohmann::json& types) {
  std::ostringstream shapes;
  for (const auto& t : types)
    if (t["scope"] == "subgroup")
      shapes << ' ' << t["m"].get<int>() << 'x' << t["n"].get<int>() << 'x' << t["k"].get<int>() << ':'
             << t["a"].get<std::string>() << "->" << t["result"].get<std::string>();
  return shapes.str();
}

int run_devices(int argc, char** argv) {
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json")) json = true;
    else if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::printf("usage: moevk devices [--json]\n\n"
                  "Lists every Vulkan device with its capabilities: vendor, driver, Vulkan version,\n"
                  "subgroup sizes and operations, fp16/int8 arithmetic, 8/16-bit storage, integer dot\n"
                  "product, cooperative matrix, limits and memory heaps.\n\n"
                  "  --json   one JSON array, for scripts\n");
      return 0;
    } else {
      std::fprintf(stderr, "moevk devices: unknown option '%s'\n", argv[i]);
      return 2;
    }
  }
  char* text = nullptr;
  if (moevk_devices_json(&text) != MOEVK_OK) {
    std::fprintf(stderr, "moevk devices: %s\n", moevk_last_error());
    return 1;
  }
  std::string s = text;
  moevk_free_string(text);
  if (json) {
    std::printf("%s\n", s.c_str());
    return 0;
  }
  auto devices = nlohmann::json::parse(s);
  if (devices.empty()) std::printf("no Vulkan 1.2 devices found\n");
  for (const auto& d : devices) {
    const auto& sg = d["subgroup"];
    const auto& lim = d["limits"];
    std::printf("[%d] %s\n", d["index"].get<int>(), d["name"].get<std::string>().c_str());
    std::printf("    vendor            %s (0x%04x), %s\n", d["vendor"].get<std::string>().c_str(),
                d["vendor_id"].get<unsigned>(), d["type"].get<std::string>().c_str());
    std::printf("    driver            %s %s (%s)\n", d["driver_name"].get<std::string>().c_str(),
                d["driver_version"].get<std::string>().c_str(), d["driver_info"].get<std::string>().c_str());
    std::printf("    vulkan            %s\n", d["vulkan_version"].get<std::string>().c_str());
    std::string ops;
    for (auto& [k, v] : sg["operations"].items())
      if (v.get<bool>()) ops += (ops.empty() ? "" : ",") + k;
    std::printf("    subgroup          size %u (min %u, max %u), size control %s, ops %s\n",
                sg["size"].get<unsigned>(), sg["min_size"].get<unsigned>(), sg["max_size"].get<unsigned>(),
                yes(sg["size_control"]), ops.c_str());
    std::printf("    arithmetic        fp16 %s, int8 %s, int16 %s, int64 %s\n", yes(d["arithmetic"]["float16"]),
                yes(d["arithmetic"]["int8"]), yes(d["arithmetic"]["int16"]), yes(d["arithmetic"]["int64"]));
    std::printf("    storage           16-bit %s, 8-bit %s\n", yes(d["storage"]["buffer_16bit"]),
                yes(d["storage"]["buffer_8bit"]));
    std::printf("    integer dot       %s (4x8 packed accelerated: %s)\n",
                yes(d["integer_dot_product"]["supported"]),
                yes(d["integer_dot_product"]["4x8_packed_accelerated"]));
    const auto& cm = d["cooperative_matrix"];
    const std::string nv_shapes = coopmat_shapes(cm["nv_types"]), khr_shapes = coopmat_shapes(cm["khr_types"]);
    std::printf("    cooperative mat.  NV %s, KHR %s, NV2 %s%s%s%s%s\n", yes(cm["nv"]), yes(cm["khr"]), yes(cm["nv2"]),
                nv_shapes.empty() ? "" : ", NV shapes", nv_shapes.c_str(),
                khr_shapes.empty() ? "" : ", KHR shapes", khr_shapes.c_str());
    std::printf("    shared memory     %u KiB per workgroup, %u invocations max\n",
                lim["max_shared_memory"].get<unsigned>() / 1024, lim["max_workgroup_invocations"].get<unsigned>());
    std::printf("    buffers           maxStorageBufferRange %s, maxMemoryAllocationSize %s, "
                "%u storage buffers per shader\n",
                memory_size(lim["max_storage_buffer_range"].get<double>()).c_str(),
                memory_size(lim["max_memory_allocation_size"].get<double>()).c_str(),
                lim.value("max_per_stage_storage_buffers", 0u));
    std::printf("    timestamps        %s (period %.2f ns, %u valid bits on queue family %d)\n",
                yes(lim["timestamps"]), lim["timestamp_period_ns"].get<double>(),
                lim["timestamp_valid_bits"].get<unsigned>(), d["compute_queue_family"].get<int>());
    int h = 0;
    for (const auto& heap : d["heaps"]) {
      std::printf("    heap %d            %s%s", h++, memory_size(heap["size"].get<double>()).c_str(),
                  heap["device_local"].get<bool>() ? " device-local" : " host");
      if (heap["budget"].get<double>() > 0)
        std::printf(", budget %s, used %s", memory_size(heap["budget"].get<double>()).c_str(),
                    memory_size(heap["usage"].get<double>()).c_str());
      std::printf("\n");
    }
  }
  return 0;
}

moevk_cli::RegisterCommand reg("devices", "list Vulkan devices and their capabilities", run_devices);

}  // namespace
