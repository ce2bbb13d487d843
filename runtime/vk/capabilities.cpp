// Capability report of a physical device.
#include "vk/capabilities.hpp"

#include <algorithm>
#include <cstring>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "vk/check.hpp"

namespace moevk::vk {

namespace {

std::string version_string(uint32_t v) {
  return std::to_string(VK_API_VERSION_MAJOR(v)) + "." + std::to_string(VK_API_VERSION_MINOR(v)) +
         "." + std::to_string(VK_API_VERSION_PATCH(v));
}

std::string driver_version_string(uint32_t vendor, uint32_t v) {
  if (vendor == 0x10DE) {  // NVIDIA packs 10.8.8.6 bits
    return std::to_string((v >> 22) & 0x3ff) + "." + std::to_string((v >> 14) & 0xff) + "." +
           std::to_string((v >> 6) & 0xff);
  }
  return version_string(v);
}

std::string vendor_name(uint32_t id, const std::string& device_name) {
  switch (id) {
    case 0x10DE: return "NVIDIA";
    case 0x1002: return "AMD";
    case 0x8086: return "Intel";
    case 0x13B5: return "ARM";
    case 0x5143: return "Qualcomm";
    case 0x106B: return "Apple";
    case 0x10005: return device_name.find("llvmpipe") != std::string::npos ? "Mesa (lavapipe)" : "Mesa";
    default: return "vendor 0x" + [&] { std::ostringstream s; s << std::hex << id; return s.str(); }();
  }
}

const char* type_name(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
  }
}

// NV and KHR cooperative-matrix component types share their values (KHR adds bf16, NV the
// packed and 8-bit float types), so one table names both.
const char* component_name(int32_t t) {
  switch (t) {
    case VK_COMPONENT_TYPE_FLOAT16_NV: return "f16";
    case VK_COMPONENT_TYPE_FLOAT32_NV: return "f32";
    case VK_COMPONENT_TYPE_FLOAT64_NV: return "f64";
    case VK_COMPONENT_TYPE_SINT8_NV: return "s8";
    case VK_COMPONENT_TYPE_SINT16_NV: return "s16";
    case VK_COMPONENT_TYPE_SINT32_NV: return "s32";
    case VK_COMPONENT_TYPE_SINT64_NV: return "s64";
    case VK_COMPONENT_TYPE_UINT8_NV: return "u8";
    case VK_COMPONENT_TYPE_UINT16_NV: return "u16";
    case VK_COMPONENT_TYPE_UINT32_NV: return "u32";
    case VK_COMPONENT_TYPE_UINT64_NV: return "u64";
    case 1000141000: return "bf16";       // VK_COMPONENT_TYPE_BFLOAT16_KHR
    case 1000491000: return "s8_packed";  // VK_COMPONENT_TYPE_SINT8_PACKED_NV
    case 1000491001: return "u8_packed";  // VK_COMPONENT_TYPE_UINT8_PACKED_NV
    case 1000491002: return "e4m3";       // VK_COMPONENT_TYPE_FLOAT_E4M3_NV
    case 1000491003: return "e5m2";       // VK_COMPONENT_TYPE_FLOAT_E5M2_NV
    default: return "other";
  }
}

const char* scope_name(int32_t s) { return s == VK_SCOPE_SUBGROUP_NV ? "subgroup" : "other"; }  // same value in KHR

// VK_KHR_cooperative_matrix reached the Vulkan headers in 1.3.255; Debian 12 ships 1.3.239. Without
// the header's definitions, mirror the one structure read here (layout and values as in the
// registry: its enums are 32-bit).
#ifdef VK_KHR_cooperative_matrix
using CoopMatPropertiesKHR = VkCooperativeMatrixPropertiesKHR;
constexpr VkStructureType kCoopMatPropertiesKHR = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR;
#else
struct CoopMatPropertiesKHR {
  VkStructureType sType;
  void* pNext;
  uint32_t MSize, NSize, KSize;
  int32_t AType, BType, CType, ResultType;  // VkComponentTypeKHR
  VkBool32 saturatingAccumulation;
  int32_t scope;  // VkScopeKHR
};
constexpr VkStructureType kCoopMatPropertiesKHR = static_cast<VkStructureType>(1000506001);
#endif
using GetCoopMatPropertiesKHR = VkResult(VKAPI_PTR*)(VkPhysicalDevice, uint32_t*, CoopMatPropertiesKHR*);

std::vector<CoopMatType> coopmat_khr_types(VkInstance instance, VkPhysicalDevice pd) {
  std::vector<CoopMatType> out;
  auto fn = reinterpret_cast<GetCoopMatPropertiesKHR>(
      vkGetInstanceProcAddr(instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR"));
  if (!fn) return out;
  uint32_t n = 0;
  check(fn(pd, &n, nullptr), "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
  CoopMatPropertiesKHR blank{};
  blank.sType = kCoopMatPropertiesKHR;
  std::vector<CoopMatPropertiesKHR> props(n, blank);
  check(fn(pd, &n, props.data()), "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
  props.resize(n);
  for (const auto& t : props)
    out.push_back({t.MSize, t.NSize, t.KSize, component_name(t.AType), component_name(t.BType),
                   component_name(t.CType), component_name(t.ResultType), scope_name(t.scope),
                   t.saturatingAccumulation == VK_TRUE});
  return out;
}

int32_t pick_compute_queue_family(const std::vector<VkQueueFamilyProperties>& families) {
  // Prefer a compute-only family (async compute on discrete GPUs), else any with compute.
  int32_t family = -1;
  for (size_t i = 0; i < families.size(); ++i)
    if ((families[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && !(families[i].queueFlags & VK_QUEUE_GRAPHICS_BIT))
      family = static_cast<int32_t>(i);
  if (family < 0)
    for (size_t i = 0; i < families.size(); ++i)
      if (families[i].queueFlags & VK_QUEUE_COMPUTE_BIT) return static_cast<int32_t>(i);
  return family;
}

}  // namespace

uint64_t Capabilities::device_local_bytes() const {
  uint64_t total = 0;
  for (const auto& h : heaps)
    if (h.device_local) total += h.size;
  return total;
}

std::string Capabilities::summary() const {
  std::ostringstream s;
  s << "[" << index << "] " << name << " (" << vendor << ", " << device_type << ", Vulkan "
    << api_version_string << ", driver " << driver_name << " " << driver_version_string << ")";
  return s.str();
}

Capabilities query_capabilities(VkInstance instance, VkPhysicalDevice pd, uint32_t index) {
  Capabilities c;
  c.index = index;

  uint32_t n_ext = 0;
  check(vkEnumerateDeviceExtensionProperties(pd, nullptr, &n_ext, nullptr), "vkEnumerateDeviceExtensionProperties");
  std::vector<VkExtensionProperties> exts(n_ext);
  check(vkEnumerateDeviceExtensionProperties(pd, nullptr, &n_ext, exts.data()),
        "vkEnumerateDeviceExtensionProperties");
  exts.resize(n_ext);
  std::set<std::string> ext;
  for (const auto& e : exts) ext.insert(e.extensionName);

  VkPhysicalDeviceProperties base{};
  vkGetPhysicalDeviceProperties(pd, &base);
  const bool v13 = base.apiVersion >= VK_API_VERSION_1_3;

  VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  VkPhysicalDeviceSubgroupProperties subgroup{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceMaintenance3Properties maint3{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
  VkPhysicalDeviceDriverProperties driver{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
  VkPhysicalDeviceSubgroupSizeControlProperties sizectl{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES};
  VkPhysicalDeviceShaderIntegerDotProductProperties dotp{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_PROPERTIES};
  props.pNext = &subgroup;
  subgroup.pNext = &maint3;
  maint3.pNext = &driver;
  void** tail = &driver.pNext;
  const bool has_sizectl = v13 || ext.count("VK_EXT_subgroup_size_control");
  const bool has_dot = v13 || ext.count("VK_KHR_shader_integer_dot_product");
  if (has_sizectl) { *tail = &sizectl; tail = &sizectl.pNext; }
  if (has_dot) { *tail = &dotp; tail = &dotp.pNext; }
  vkGetPhysicalDeviceProperties2(pd, &props);

  VkPhysicalDeviceFeatures2 feats{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceSubgroupSizeControlFeatures fsize{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES};
  VkPhysicalDeviceShaderIntegerDotProductFeatures fdot{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
  VkPhysicalDeviceCooperativeMatrixFeaturesNV fcoop{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
  feats.pNext = &f11;
  f11.pNext = &f12;
  tail = &f12.pNext;
  if (has_sizectl) { *tail = &fsize; tail = &fsize.pNext; }
  if (has_dot) { *tail = &fdot; tail = &fdot.pNext; }
  if (ext.count("VK_NV_cooperative_matrix")) { *tail = &fcoop; tail = &fcoop.pNext; }
  vkGetPhysicalDeviceFeatures2(pd, &feats);

  c.name = base.deviceName;
  c.vendor_id = base.vendorID;
  c.device_id = base.deviceID;
  c.vendor = vendor_name(base.vendorID, c.name);
  c.device_type = type_name(base.deviceType);
  c.driver_name = driver.driverName;
  c.driver_info = driver.driverInfo;
  c.api_version = base.apiVersion;
  c.driver_version_raw = base.driverVersion;
  c.api_version_string = version_string(base.apiVersion);
  c.driver_version_string = driver_version_string(base.vendorID, base.driverVersion);
  std::memcpy(c.pipeline_cache_uuid, base.pipelineCacheUUID, VK_UUID_SIZE);

  c.subgroup_size = subgroup.subgroupSize;
  c.subgroup_compute = subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT;
  const auto ops = subgroup.supportedOperations;
  c.subgroup_basic = ops & VK_SUBGROUP_FEATURE_BASIC_BIT;
  c.subgroup_vote = ops & VK_SUBGROUP_FEATURE_VOTE_BIT;
  c.subgroup_arithmetic = ops & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT;
  c.subgroup_ballot = ops & VK_SUBGROUP_FEATURE_BALLOT_BIT;
  c.subgroup_shuffle = ops & VK_SUBGROUP_FEATURE_SHUFFLE_BIT;
  c.subgroup_shuffle_relative = ops & VK_SUBGROUP_FEATURE_SHUFFLE_RELATIVE_BIT;
  c.subgroup_clustered = ops & VK_SUBGROUP_FEATURE_CLUSTERED_BIT;
  c.subgroup_quad = ops & VK_SUBGROUP_FEATURE_QUAD_BIT;
  // The range is what a pipeline without a required size may run with, so it is taken wherever
  // it is reported, also where the features to require a size are missing: kernels that size
  // per-subgroup storage (mul_mv) rely on its minimum. Without the extension subgroupSize is all
  // there is.
  c.subgroup_size_control = has_sizectl && fsize.subgroupSizeControl && fsize.computeFullSubgroups &&
                            (sizectl.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT) != 0;
  if (has_sizectl && sizectl.minSubgroupSize > 0 && sizectl.maxSubgroupSize >= sizectl.minSubgroupSize) {
    c.min_subgroup_size = sizectl.minSubgroupSize;
    c.max_subgroup_size = sizectl.maxSubgroupSize;
  } else {
    c.min_subgroup_size = c.max_subgroup_size = c.subgroup_size;
  }

  c.shader_float16 = f12.shaderFloat16;
  c.shader_int8 = f12.shaderInt8;
  c.shader_int16 = feats.features.shaderInt16;
  c.shader_int64 = feats.features.shaderInt64;
  c.storage_buffer_16bit = f11.storageBuffer16BitAccess;
  c.storage_buffer_8bit = f12.storageBuffer8BitAccess;
  c.integer_dot_product = has_dot && fdot.shaderIntegerDotProduct;
  c.integer_dot_product_4x8_packed_accelerated =
      c.integer_dot_product && dotp.integerDotProduct4x8BitPackedSignedAccelerated;
  c.coopmat_nv = ext.count("VK_NV_cooperative_matrix") && fcoop.cooperativeMatrix;
  c.coopmat_khr = ext.count("VK_KHR_cooperative_matrix") > 0;
  c.coopmat2_nv = ext.count("VK_NV_cooperative_matrix2") > 0;
  c.memory_budget = ext.count("VK_EXT_memory_budget") > 0;

  if (c.coopmat_nv) {
    auto fn = reinterpret_cast<PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV>(
        vkGetInstanceProcAddr(instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV"));
    if (fn) {
      uint32_t n = 0;
      check(fn(pd, &n, nullptr), "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
      std::vector<VkCooperativeMatrixPropertiesNV> p(n, {VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV});
      check(fn(pd, &n, p.data()), "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
      p.resize(n);
      for (const auto& t : p)
        c.coopmat_nv_types.push_back({t.MSize, t.NSize, t.KSize, component_name(t.AType),
                                      component_name(t.BType), component_name(t.CType),
                                      component_name(t.DType), scope_name(t.scope)});
    }
  }
  if (c.coopmat_khr) c.coopmat_khr_types = coopmat_khr_types(instance, pd);

  const auto& lim = base.limits;
  c.max_shared_memory = lim.maxComputeSharedMemorySize;
  c.max_workgroup_invocations = lim.maxComputeWorkGroupInvocations;
  for (int i = 0; i < 3; ++i) {
    c.max_workgroup_size[i] = lim.maxComputeWorkGroupSize[i];
    c.max_workgroup_count[i] = lim.maxComputeWorkGroupCount[i];
  }
  c.max_storage_buffer_range = lim.maxStorageBufferRange;
  c.max_memory_allocation_size = maint3.maxMemoryAllocationSize;
  c.max_push_constants = lim.maxPushConstantsSize;
  c.max_bound_descriptor_sets = lim.maxBoundDescriptorSets;
  c.max_per_stage_storage_buffers = std::min(lim.maxPerStageDescriptorStorageBuffers, lim.maxDescriptorSetStorageBuffers);
  c.min_storage_buffer_offset_alignment = lim.minStorageBufferOffsetAlignment;
  c.timestamp_period_ns = lim.timestampPeriod;

  uint32_t n_qf = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(pd, &n_qf, nullptr);
  std::vector<VkQueueFamilyProperties> qf(n_qf);
  vkGetPhysicalDeviceQueueFamilyProperties(pd, &n_qf, qf.data());
  c.compute_queue_family = pick_compute_queue_family(qf);
  if (c.compute_queue_family >= 0) c.timestamp_valid_bits = qf[c.compute_queue_family].timestampValidBits;
  c.timestamps = c.timestamp_valid_bits > 0;

  VkPhysicalDeviceMemoryProperties2 mem{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2};
  VkPhysicalDeviceMemoryBudgetPropertiesEXT budget{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
  if (c.memory_budget) mem.pNext = &budget;
  vkGetPhysicalDeviceMemoryProperties2(pd, &mem);
  for (uint32_t i = 0; i < mem.memoryProperties.memoryHeapCount; ++i) {
    MemoryHeap h;
    h.size = mem.memoryProperties.memoryHeaps[i].size;
    h.device_local = mem.memoryProperties.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT;
    if (c.memory_budget) {
      h.budget = budget.heapBudget[i];
      h.usage = budget.heapUsage[i];
    }
    c.heaps.push_back(h);
  }
  return c;
}

void to_json(nlohmann::json& j, const Capabilities& c) {
  char uuid[2 * VK_UUID_SIZE + 1];
  for (uint32_t i = 0; i < VK_UUID_SIZE; ++i) std::snprintf(uuid + 2 * i, 3, "%02x", c.pipeline_cache_uuid[i]);
  nlohmann::json heaps = nlohmann::json::array();
  for (const auto& h : c.heaps)
    heaps.push_back({{"size", h.size}, {"budget", h.budget}, {"usage", h.usage}, {"device_local", h.device_local}});
  nlohmann::json coop_nv = nlohmann::json::array(), coop_khr = nlohmann::json::array();
  for (const auto& t : c.coopmat_nv_types)
    coop_nv.push_back({{"m", t.m}, {"n", t.n}, {"k", t.k}, {"a", t.a_type}, {"b", t.b_type},
                       {"c", t.c_type}, {"result", t.result_type}, {"scope", t.scope}});
  for (const auto& t : c.coopmat_khr_types)
    coop_khr.push_back({{"m", t.m}, {"n", t.n}, {"k", t.k}, {"a", t.a_type}, {"b", t.b_type},
                        {"c", t.c_type}, {"result", t.result_type}, {"scope", t.scope},
                        {"saturating", t.saturating}});
  j = {
      {"index", c.index},
      {"name", c.name},
      {"vendor", c.vendor},
      {"vendor_id", c.vendor_id},
      {"device_id", c.device_id},
      {"type", c.device_type},
      {"driver_name", c.driver_name},
      {"driver_info", c.driver_info},
      {"driver_version", c.driver_version_string},
      {"vulkan_version", c.api_version_string},
      {"pipeline_cache_uuid", uuid},
      {"subgroup",
       {{"size", c.subgroup_size},
        {"min_size", c.min_subgroup_size},
        {"max_size", c.max_subgroup_size},
        {"size_control", c.subgroup_size_control},
        {"compute_stage", c.subgroup_compute},
        {"operations",
         {{"basic", c.subgroup_basic}, {"vote", c.subgroup_vote}, {"arithmetic", c.subgroup_arithmetic},
          {"ballot", c.subgroup_ballot}, {"shuffle", c.subgroup_shuffle},
          {"shuffle_relative", c.subgroup_shuffle_relative}, {"clustered", c.subgroup_clustered},
          {"quad", c.subgroup_quad}}}}},
      {"arithmetic",
       {{"float16", c.shader_float16}, {"int8", c.shader_int8}, {"int16", c.shader_int16},
        {"int64", c.shader_int64}}},
      {"storage", {{"buffer_16bit", c.storage_buffer_16bit}, {"buffer_8bit", c.storage_buffer_8bit}}},
      {"integer_dot_product",
       {{"supported", c.integer_dot_product},
        {"4x8_packed_accelerated", c.integer_dot_product_4x8_packed_accelerated}}},
      {"cooperative_matrix",
       {{"nv", c.coopmat_nv}, {"khr", c.coopmat_khr}, {"nv2", c.coopmat2_nv}, {"nv_types", coop_nv},
        {"khr_types", coop_khr}}},
      {"limits",
       {{"max_shared_memory", c.max_shared_memory},
        {"max_workgroup_invocations", c.max_workgroup_invocations},
        {"max_workgroup_size", {c.max_workgroup_size[0], c.max_workgroup_size[1], c.max_workgroup_size[2]}},
        {"max_workgroup_count", {c.max_workgroup_count[0], c.max_workgroup_count[1], c.max_workgroup_count[2]}},
        {"max_storage_buffer_range", c.max_storage_buffer_range},
        {"max_memory_allocation_size", c.max_memory_allocation_size},
        {"max_push_constants", c.max_push_constants},
        {"max_per_stage_storage_buffers", c.max_per_stage_storage_buffers},
        {"min_storage_buffer_offset_alignment", c.min_storage_buffer_offset_alignment},
        {"timestamp_period_ns", c.timestamp_period_ns},
        {"timestamps", c.timestamps},
        {"timestamp_valid_bits", c.timestamp_valid_bits}}},
      {"compute_queue_family", c.compute_queue_family},
      {"memory_budget_supported", c.memory_budget},
      {"heaps", heaps},
  };
}

}  // namespace moevk::vk
