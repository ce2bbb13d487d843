// What a physical device offers, as reported by `moevk devices` and used to pick shader paths.
#pragma once
#include <vulkan/vulkan.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace moevk::vk {

struct MemoryHeap {
  uint64_t size = 0;
  uint64_t budget = 0;  // VK_EXT_memory_budget, 0 when unknown
  uint64_t usage = 0;
  bool device_local = false;
};

struct CoopMatType {  // one supported cooperative-matrix shape (NV or KHR)
  uint32_t m = 0, n = 0, k = 0;
  std::string a_type, b_type, c_type, result_type;
  std::string scope;
  bool saturating = false;  // KHR: saturatingAccumulation
};

struct Capabilities {
  uint32_t index = 0;
  std::string name;
  uint32_t vendor_id = 0, device_id = 0;
  std::string vendor;        // "NVIDIA", "AMD", "Intel", "Mesa (lavapipe)", ...
  std::string device_type;   // "discrete", "integrated", "virtual", "cpu", "other"
  std::string driver_name, driver_info;
  uint32_t api_version = 0, driver_version_raw = 0;
  std::string api_version_string, driver_version_string;
  uint8_t pipeline_cache_uuid[VK_UUID_SIZE] = {};

  // Subgroups. min/max: the sizes a pipeline without a required size may run with (as
  // VK_EXT_subgroup_size_control, core in 1.3, reports them; else both are subgroup_size).
  uint32_t subgroup_size = 0, min_subgroup_size = 0, max_subgroup_size = 0;
  // The most subgroups a workgroup of `workgroup` invocations may be split into: as many as the
  // smallest size gives (without a required size the driver may pick any in [min, max]), one
  // per invocation when the device reports no size. A shader keeping one slot per subgroup
  // (gl_SubgroupID) needs this many.
  uint32_t max_subgroups(uint32_t workgroup) const {
    const uint32_t smallest = min_subgroup_size ? min_subgroup_size : 1;
    return (workgroup + smallest - 1) / smallest;
  }
  bool subgroup_size_control = false;
  bool subgroup_compute = false;
  bool subgroup_basic = false, subgroup_vote = false, subgroup_arithmetic = false,
       subgroup_ballot = false, subgroup_shuffle = false, subgroup_shuffle_relative = false,
       subgroup_clustered = false, subgroup_quad = false;

  // Arithmetic and storage (beyond core Vulkan 1.2).
  bool shader_float16 = false, shader_int8 = false, shader_int16 = false, shader_int64 = false;
  bool storage_buffer_16bit = false, storage_buffer_8bit = false;
  bool integer_dot_product = false, integer_dot_product_4x8_packed_accelerated = false;
  bool coopmat_nv = false, coopmat_khr = false, coopmat2_nv = false;
  std::vector<CoopMatType> coopmat_nv_types, coopmat_khr_types;
  bool memory_budget = false;

  // Limits.
  uint32_t max_shared_memory = 0;
  uint32_t max_workgroup_invocations = 0;
  uint32_t max_workgroup_size[3] = {};
  uint32_t max_workgroup_count[3] = {};
  uint64_t max_storage_buffer_range = 0;
  uint64_t max_memory_allocation_size = 0;
  uint32_t max_push_constants = 0;
  uint32_t max_bound_descriptor_sets = 0;
  // Storage buffers one compute shader may bind. Vulkan guarantees only 4; moevk's kernels bind
  // up to 8 (every driver we know allows 32 or far more), so a pipeline that needs more than the
  // device allows fails with a clear UNSUPPORTED instead of an invalid pipeline layout.
  uint32_t max_per_stage_storage_buffers = 0;
  uint64_t min_storage_buffer_offset_alignment = 0;
  float timestamp_period_ns = 0;
  // The queue family a Context submits to (-1: none has compute), and its timestamps: a
  // device may support them on some families only, and counters may have fewer than 64 bits.
  int32_t compute_queue_family = -1;
  uint32_t timestamp_valid_bits = 0;
  bool timestamps = false;  // timestamp_valid_bits > 0
  std::vector<MemoryHeap> heaps;

  bool is_cpu() const { return device_type == "cpu"; }
  uint64_t device_local_bytes() const;
  std::string summary() const;  // one line
};

// Fills Capabilities for a physical device (instance must have VK 1.1+ properties2).
Capabilities query_capabilities(VkInstance instance, VkPhysicalDevice pd, uint32_t index);
void to_json(nlohmann::json& j, const Capabilities& c);

}  // namespace moevk::vk
