// Compute pipelines from embedded SPIR-V, and the on-disk pipeline cache.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "vk/check.hpp"
#include "vk/context.hpp"
#include "vk/shader_registry.hpp"

namespace moevk::vk {

namespace fs = std::filesystem;

std::string PipelineDesc::key() const {
  std::ostringstream s;
  s << shader << "|" << bindings << "|" << push_constant_bytes << "|" << required_subgroup_size;
  for (auto c : spec_constants) s << "," << c;
  if (!table.empty()) s << "|table@" << static_cast<const void*>(table.data()) << "+" << table.size();
  return s.str();
}

std::string Context::pipeline_cache_path() const {
  fs::path dir;
  if (const char* env = std::getenv("MOEVK_CACHE_DIR"); env && *env) dir = env;
  else if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) dir = fs::path(xdg) / "moevk";
  else if (const char* home = std::getenv("HOME"); home && *home) dir = fs::path(home) / ".cache" / "moevk";
  else return {};
  char name[96];
  std::snprintf(name, sizeof name, "pipelines-%04x-%04x-%08x.bin", caps_.vendor_id, caps_.device_id,
                caps_.driver_version_raw);
  return (dir / name).string();
}

void Context::load_pipeline_cache() {
  std::vector<char> data;
  const std::string path = pipeline_cache_path();
  if (!path.empty()) {
    std::ifstream in(path, std::ios::binary);
    if (in) data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  // Only hand the driver data whose header says it was written by this very driver and device:
  // a corrupt or foreign cache is ignored rather than trusted.
  bool valid = data.size() >= 16 + VK_UUID_SIZE;
  if (valid) {
    uint32_t header[4];
    std::memcpy(header, data.data(), sizeof header);
    valid = header[0] >= 16 + VK_UUID_SIZE && header[0] <= data.size() &&
            header[1] == VK_PIPELINE_CACHE_HEADER_VERSION_ONE && header[2] == caps_.vendor_id &&
            header[3] == caps_.device_id &&
            std::memcmp(data.data() + 16, caps_.pipeline_cache_uuid, VK_UUID_SIZE) == 0;
  }
  VkPipelineCacheCreateInfo info{VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
  if (valid) {
    info.initialDataSize = data.size();
    info.pInitialData = data.data();
  }
  if (vkCreatePipelineCache(device_, &info, nullptr, &pipeline_cache_) != VK_SUCCESS) {
    info.initialDataSize = 0;
    info.pInitialData = nullptr;
    check(vkCreatePipelineCache(device_, &info, nullptr, &pipeline_cache_), "vkCreatePipelineCache");
  }
}

void Context::save_pipeline_cache() {
  const std::string path = pipeline_cache_path();
  if (path.empty() || !pipeline_cache_ || pipelines_.empty()) return;
  size_t size = 0;
  if (vkGetPipelineCacheData(device_, pipeline_cache_, &size, nullptr) != VK_SUCCESS || size == 0) return;
  std::vector<char> data(size);
  if (vkGetPipelineCacheData(device_, pipeline_cache_, &size, data.data()) != VK_SUCCESS) return;
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  // Write then rename, so a crash or a concurrent writer never leaves a torn file. The temp name
  // is unique per process and per Context: two processes may hold Contexts at the same address.
  const std::string tmp = path + ".tmp" + std::to_string(::getpid()) + "-" +
                          std::to_string(reinterpret_cast<uintptr_t>(this));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return;
    out.write(data.data(), static_cast<std::streamsize>(size));
    if (!out) {
      fs::remove(tmp, ec);
      return;
    }
  }
  fs::rename(tmp, path, ec);
  if (ec) fs::remove(tmp, ec);
}

const Pipeline& Context::pipeline(const PipelineDesc& desc) {
  check_usable();
  std::lock_guard<std::mutex> lock(pipelines_mutex_);
  const std::string key = desc.key();
  if (auto it = pipelines_.find(key); it != pipelines_.end()) return *it->second;

  auto spirv = find_shader(desc.shader);
  if (spirv.empty()) throw Error(MOEVK_ERROR_INTERNAL, "no embedded shader named '" + desc.shader + "'");
  if (caps_.max_per_stage_storage_buffers && desc.bindings > caps_.max_per_stage_storage_buffers)
    throw Error(MOEVK_ERROR_UNSUPPORTED, desc.shader + " binds " + std::to_string(desc.bindings) +
                                             " storage buffers; the device allows " +
                                             std::to_string(caps_.max_per_stage_storage_buffers) + " per shader");
  if (desc.push_constant_bytes > caps_.max_push_constants)
    throw Error(MOEVK_ERROR_UNSUPPORTED, desc.shader + " needs " + std::to_string(desc.push_constant_bytes) +
                                             " bytes of push constants; the device allows " +
                                             std::to_string(caps_.max_push_constants));

  auto p = std::make_unique<Pipeline>();
  if (!desc.table.empty()) p->table_set = table_set(desc.table);
  p->name = desc.shader;
  p->bindings = desc.bindings;
  p->push_constant_bytes = desc.push_constant_bytes;
  struct Cleanup {  // destroys what was made if a later step throws
    VkDevice d;
    Pipeline* p;
    VkShaderModule m = VK_NULL_HANDLE;
    bool keep = false;
    ~Cleanup() {
      if (m) vkDestroyShaderModule(d, m, nullptr);
      if (keep) return;
      if (p->pipeline) vkDestroyPipeline(d, p->pipeline, nullptr);
      if (p->layout) vkDestroyPipelineLayout(d, p->layout, nullptr);
      if (p->set_layout) vkDestroyDescriptorSetLayout(d, p->set_layout, nullptr);
    }
  } cleanup{device_, p.get()};

  std::vector<VkDescriptorSetLayoutBinding> bindings(desc.bindings);
  for (uint32_t i = 0; i < desc.bindings; ++i) {
    bindings[i].binding = i;
    bindings[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    bindings[i].descriptorCount = 1;
    bindings[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
  }
  VkDescriptorSetLayoutCreateInfo sl{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
  sl.bindingCount = desc.bindings;
  sl.pBindings = bindings.data();
  check(vkCreateDescriptorSetLayout(device_, &sl, nullptr, &p->set_layout), "vkCreateDescriptorSetLayout");

  VkPushConstantRange pc{VK_SHADER_STAGE_COMPUTE_BIT, 0, desc.push_constant_bytes};
  VkPipelineLayoutCreateInfo pl{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
  const VkDescriptorSetLayout set_layouts[2] = {p->set_layout, table_layout_};
  pl.setLayoutCount = p->table_set ? 2 : 1;
  pl.pSetLayouts = set_layouts;
  pl.pushConstantRangeCount = desc.push_constant_bytes ? 1 : 0;
  pl.pPushConstantRanges = &pc;
  check(vkCreatePipelineLayout(device_, &pl, nullptr, &p->layout), "vkCreatePipelineLayout");

  VkShaderModuleCreateInfo sm{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
  sm.codeSize = spirv.size() * 4;
  sm.pCode = spirv.data();
  check(vkCreateShaderModule(device_, &sm, nullptr, &cleanup.m), "vkCreateShaderModule");

  std::vector<VkSpecializationMapEntry> entries(desc.spec_constants.size());
  for (uint32_t i = 0; i < entries.size(); ++i) entries[i] = {i, i * 4, 4};
  VkSpecializationInfo spec{};
  spec.mapEntryCount = static_cast<uint32_t>(entries.size());
  spec.pMapEntries = entries.data();
  spec.dataSize = desc.spec_constants.size() * 4;
  spec.pData = desc.spec_constants.data();

  VkPipelineShaderStageRequiredSubgroupSizeCreateInfo req{
      VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO};
  VkComputePipelineCreateInfo ci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
  ci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
  ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  ci.stage.module = cleanup.m;
  ci.stage.pName = "main";
  ci.stage.pSpecializationInfo = entries.empty() ? nullptr : &spec;
  if (desc.required_subgroup_size) {
    if (!features_.subgroup_size_control)
      throw Error(MOEVK_ERROR_UNSUPPORTED, desc.shader + " asks for a subgroup size but the device "
                                                         "has no subgroup size control");
    req.requiredSubgroupSize = desc.required_subgroup_size;
    ci.stage.pNext = &req;
    ci.stage.flags = VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT;
  }
  ci.layout = p->layout;
  check(vkCreateComputePipelines(device_, pipeline_cache_, 1, &ci, nullptr, &p->pipeline),
        ("creating pipeline " + desc.shader).c_str());
  cleanup.keep = true;
  return *pipelines_.emplace(key, std::move(p)).first->second;
}

VkDescriptorSet Context::table_set(std::span<const uint32_t> table) {
  if (auto it = tables_.find(table.data()); it != tables_.end()) return it->second.set;
  if (!table_layout_) {
    VkDescriptorSetLayoutBinding b{};
    b.binding = 0;
    b.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    b.descriptorCount = 1;
    b.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
    VkDescriptorSetLayoutCreateInfo sl{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
    sl.bindingCount = 1;
    sl.pBindings = &b;
    check(vkCreateDescriptorSetLayout(device_, &sl, nullptr, &table_layout_), "vkCreateDescriptorSetLayout");
  }
  if (!table_pool_) {
    // A handful of tables exist (one per codebook family); 16 sets is room to spare.
    VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 16};
    VkDescriptorPoolCreateInfo info{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    info.maxSets = 16;
    info.poolSizeCount = 1;
    info.pPoolSizes = &size;
    check(vkCreateDescriptorPool(device_, &info, nullptr, &table_pool_), "vkCreateDescriptorPool");
  }
  Table t;
  const uint64_t bytes = table.size_bytes();
  t.buffer = create_buffer(bytes, BufferKind::Device, "shader constant table");
  upload(t.buffer.range(), table.data(), bytes);
  VkDescriptorSetAllocateInfo info{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
  info.descriptorPool = table_pool_;
  info.descriptorSetCount = 1;
  info.pSetLayouts = &table_layout_;
  check(vkAllocateDescriptorSets(device_, &info, &t.set), "vkAllocateDescriptorSets");
  const VkDescriptorBufferInfo buffer_info{t.buffer.range().buffer, 0, bytes};
  VkWriteDescriptorSet write{VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
  write.dstSet = t.set;
  write.dstBinding = 0;
  write.descriptorCount = 1;
  write.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
  write.pBufferInfo = &buffer_info;
  vkUpdateDescriptorSets(device_, 1, &write, 0, nullptr);
  const VkDescriptorSet set = t.set;
  tables_.emplace(table.data(), std::move(t));
  return set;
}

}  // namespace moevk::vk
