// Device choice and creation, memory, transfers and submission.
#include "vk/context.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <set>

#include "common/comma_list.hpp"
#include "common/mib.hpp"
#include "vk/check.hpp"

namespace moevk::vk {

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

int type_rank(const std::string& t) {  // discrete first, lavapipe (cpu) last
  if (t == "discrete") return 0;
  if (t == "integrated") return 1;
  if (t == "virtual") return 2;
  if (t == "other") return 3;
  return 4;
}

}  // namespace

std::string Features::describe() const {
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ',';
    s += name;
  };
  add(fp16, "fp16");
  add(int8, "int8");
  add(storage16, "storage16");
  add(storage8, "storage8");
  add(dot, "dot");
  add(coopmat_nv, "coopmat_nv");
  add(dot_decode, "dot_decode");
  add(wide_decode, "wide_decode");
  add(subgroup_size_control, "subgroup_size_control");
  add(subgroup_arithmetic, "subgroup_arithmetic");
  return s.empty() ? "none" : s;
}

std::shared_ptr<Context> Context::create(const ContextOptions& options) {
  std::shared_ptr<Context> ctx(new Context());
  ctx->init(options);
  return ctx;
}

void Context::init(const ContextOptions& options) {
  instance_ = Instance::create(options.validation);
  auto devices = instance_->physical_devices();
  auto described = instance_->describe_devices();
  if (described.empty())
    throw Error(MOEVK_ERROR_NO_DEVICE, "no Vulkan 1.2 device found (install a GPU driver, or Mesa's "
                                       "lavapipe: apt-get install mesa-vulkan-drivers)");

  std::string selector = options.device;
  if (selector.empty())
    if (const char* env = std::getenv("MOEVK_DEVICE")) selector = env;
  const Capabilities* chosen = nullptr;
  if (selector.empty()) {
    chosen = &*std::min_element(described.begin(), described.end(), [](const auto& a, const auto& b) {
      return type_rank(a.device_type) < type_rank(b.device_type);
    });
  } else {
    const bool numeric = std::all_of(selector.begin(), selector.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    // An index too large for uint32 matches no device (the error below lists them) rather than
    // escaping as an exception from the conversion.
    uint32_t wanted_index = 0;
    const bool index_fits =
        numeric && std::from_chars(selector.data(), selector.data() + selector.size(), wanted_index).ec == std::errc();
    for (const auto& d : described) {
      if (numeric ? index_fits && d.index == wanted_index
                  : lower(d.name).find(lower(selector)) != std::string::npos) {
        chosen = &d;
        break;
      }
    }
    if (!chosen) {
      std::string list;
      for (const auto& d : described) list += "\n  " + d.summary();
      throw Error(MOEVK_ERROR_NO_DEVICE, "no Vulkan device matches '" + selector + "'; devices:" + list);
    }
  }
  caps_ = *chosen;
  physical_ = devices.at(caps_.index);

  std::set<std::string> off = comma_list(options.disable);
  off.merge(env_comma_list("MOEVK_DISABLE"));
  features_.fp16 = caps_.shader_float16 && !off.count("fp16");
  features_.int8 = caps_.shader_int8 && !off.count("int8");
  features_.storage16 = caps_.storage_buffer_16bit && !off.count("storage16");
  features_.storage8 = caps_.storage_buffer_8bit && !off.count("storage8");
  features_.dot = caps_.integer_dot_product && !off.count("dot");
  // The cooperative-matrix kernels have not yet run on real hardware (no GPU was available when
  // they were written), so they are opt-in until they have been validated: MOEVK_ENABLE=coopmat.
  const std::set<std::string> on = env_comma_list("MOEVK_ENABLE");
  features_.coopmat_nv = caps_.coopmat_nv && features_.fp16 && features_.storage16 && on.count("coopmat") &&
                         !off.count("coopmat");
  features_.dot_decode = features_.dot && on.count("dot_decode") && !off.count("dot_decode");
  features_.wide_decode = on.count("wide_decode") && !off.count("wide_decode");
  features_.subgroup_size_control = caps_.subgroup_size_control && !off.count("subgroup_size_control");
  features_.subgroup_arithmetic = caps_.subgroup_compute && caps_.subgroup_arithmetic && !off.count("subgroup");

  if (caps_.compute_queue_family < 0) throw Error(MOEVK_ERROR_UNSUPPORTED, caps_.name + " has no compute queue");
  queue_family_ = static_cast<uint32_t>(caps_.compute_queue_family);  // the one caps_.timestamps describes

  const bool v13 = caps_.api_version >= VK_API_VERSION_1_3;
  std::vector<const char*> extensions;
  VkPhysicalDeviceFeatures2 feats{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceSubgroupSizeControlFeatures fsize{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES};
  VkPhysicalDeviceShaderIntegerDotProductFeatures fdot{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
  VkPhysicalDeviceCooperativeMatrixFeaturesNV fcoop{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
  feats.features.shaderInt16 = caps_.shader_int16;
  feats.features.shaderInt64 = caps_.shader_int64;
  feats.pNext = &f11;
  f11.pNext = &f12;
  f11.storageBuffer16BitAccess = features_.storage16;
  f12.shaderFloat16 = features_.fp16;
  f12.shaderInt8 = features_.int8;
  f12.storageBuffer8BitAccess = features_.storage8;
  void** tail = &f12.pNext;
  if (features_.subgroup_size_control) {
    fsize.subgroupSizeControl = VK_TRUE;
    fsize.computeFullSubgroups = VK_TRUE;
    *tail = &fsize;
    tail = &fsize.pNext;
    if (!v13) extensions.push_back("VK_EXT_subgroup_size_control");
  }
  if (features_.dot) {
    fdot.shaderIntegerDotProduct = VK_TRUE;
    *tail = &fdot;
    tail = &fdot.pNext;
    if (!v13) extensions.push_back("VK_KHR_shader_integer_dot_product");
  }
  if (features_.coopmat_nv) {
    fcoop.cooperativeMatrix = VK_TRUE;
    *tail = &fcoop;
    tail = &fcoop.pNext;
    extensions.push_back("VK_NV_cooperative_matrix");
  }
  if (caps_.memory_budget) extensions.push_back("VK_EXT_memory_budget");

  float priority = 1.0f;
  VkDeviceQueueCreateInfo qinfo{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  qinfo.queueFamilyIndex = queue_family_;
  qinfo.queueCount = 1;
  qinfo.pQueuePriorities = &priority;
  VkDeviceCreateInfo dinfo{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
  dinfo.pNext = &feats;
  dinfo.queueCreateInfoCount = 1;
  dinfo.pQueueCreateInfos = &qinfo;
  dinfo.enabledExtensionCount = static_cast<uint32_t>(extensions.size());
  dinfo.ppEnabledExtensionNames = extensions.data();
  check(vkCreateDevice(physical_, &dinfo, nullptr, &device_), "vkCreateDevice");
  vkGetDeviceQueue(device_, queue_family_, 0, &queue_);
  vkGetPhysicalDeviceMemoryProperties(physical_, &memory_props_);

  for (CommandPool& pool : transfer_commands_) pool = CommandPool(device_, queue_family_);

  double timeout_s = 600;
  if (const char* env = std::getenv("MOEVK_GPU_TIMEOUT_S")) timeout_s = std::max(1.0, std::atof(env));
  fence_timeout_ns_ = static_cast<uint64_t>(timeout_s * 1e9);
  simulate_loss_after_ = options.simulate_device_loss_after;
  simulate_memory_ = options.simulate_device_memory;
  if (simulate_memory_)
    for (auto& h : caps_.heaps)
      if (h.device_local) h.size = std::min(h.size, simulate_memory_);
  if (options.simulate_max_storage_buffer_range)
    caps_.max_storage_buffer_range = std::min(caps_.max_storage_buffer_range, options.simulate_max_storage_buffer_range);
  load_pipeline_cache();
}

Context::~Context() {
  if (!device_) return;
  // A destructor cannot report; a failure here (lost device, out of memory) leaves nothing
  // running that teardown could wait for.
  (void)vkDeviceWaitIdle(device_);
  try {
    save_pipeline_cache();
  } catch (...) {
    // The cache is an optimisation; failing to write it must not fail teardown.
  }
  for (Buffer& b : staging_) b = Buffer();
  tables_.clear();  // their sets go with the pool
  if (table_pool_) vkDestroyDescriptorPool(device_, table_pool_, nullptr);
  if (table_layout_) vkDestroyDescriptorSetLayout(device_, table_layout_, nullptr);
  for (auto& [key, p] : pipelines_) {
    vkDestroyPipeline(device_, p->pipeline, nullptr);
    vkDestroyPipelineLayout(device_, p->layout, nullptr);
    vkDestroyDescriptorSetLayout(device_, p->set_layout, nullptr);
  }
  if (pipeline_cache_) vkDestroyPipelineCache(device_, pipeline_cache_, nullptr);
  for (CommandPool& pool : transfer_commands_) pool = CommandPool();
  vkDestroyDevice(device_, nullptr);
}

void Context::check_usable() const {
  if (lost_)
    throw Error(MOEVK_ERROR_DEVICE_LOST, "the Vulkan device '" + caps_.name +
                                             "' was lost earlier; create a new context");
}

// ---------------------------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------------------------

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    if (ctx_) ctx_->release(*this);
    ctx_ = o.ctx_;
    buffer_ = o.buffer_;
    memory_ = o.memory_;
    size_ = o.size_;
    mapped_ = o.mapped_;
    device_kind_ = o.device_kind_;
    o.ctx_ = nullptr;
    o.buffer_ = VK_NULL_HANDLE;
    o.memory_ = VK_NULL_HANDLE;
    o.size_ = 0;
    o.mapped_ = nullptr;
  }
  return *this;
}

Buffer::~Buffer() {
  if (ctx_) ctx_->release(*this);
}

BufferRange Buffer::range(uint64_t offset, uint64_t size) const {
  if (offset > size_) throw Error(MOEVK_ERROR_INTERNAL, "buffer range offset past the end");
  return {buffer_, offset, size == ~0ull ? size_ - offset : std::min(size, size_ - offset)};
}

void Context::release(Buffer& b) {
  if (b.mapped_) vkUnmapMemory(device_, b.memory_);
  if (b.buffer_) vkDestroyBuffer(device_, b.buffer_, nullptr);
  if (b.memory_) {
    vkFreeMemory(device_, b.memory_, nullptr);
    allocated_bytes_ -= b.size_;
    if (b.device_kind_) device_allocated_bytes_ -= b.size_;
  }
  b.ctx_ = nullptr;
  b.buffer_ = VK_NULL_HANDLE;
  b.memory_ = VK_NULL_HANDLE;
  b.mapped_ = nullptr;
}

Buffer Context::create_buffer(uint64_t size, BufferKind kind, const std::string& what) {
  check_usable();
  size = std::max<uint64_t>(size, 4);
  size = (size + 3) & ~3ull;  // fill/copy need multiples of 4
  if (caps_.max_memory_allocation_size && size > caps_.max_memory_allocation_size)
    throw Error(MOEVK_ERROR_OUT_OF_DEVICE_MEMORY,
                what + " needs one allocation of " + mib(size) + ", more than " + caps_.name +
                    " allows (maxMemoryAllocationSize " + mib(caps_.max_memory_allocation_size) + ")");
  if (simulate_memory_ && kind == BufferKind::Device && device_allocated_bytes_.load() + size > simulate_memory_)
    throw Error(MOEVK_ERROR_OUT_OF_DEVICE_MEMORY,
                "out of device memory allocating " + mib(size) + " for " + what + " on " + caps_.name +
                    " (moevk already holds " + mib(device_allocated_bytes_.load()) + " of a simulated " +
                    mib(simulate_memory_) + ")");
  Buffer b;
  b.ctx_ = this;
  b.size_ = size;
  VkBufferCreateInfo info{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  info.size = size;
  info.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
               VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  if (kind == BufferKind::Device) info.usage |= VK_BUFFER_USAGE_INDIRECT_BUFFER_BIT;
  info.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  check(vkCreateBuffer(device_, &info, nullptr, &b.buffer_), ("vkCreateBuffer for " + what).c_str());

  VkMemoryRequirements req{};
  vkGetBufferMemoryRequirements(device_, b.buffer_, &req);
  VkMemoryPropertyFlags want = 0, nice = 0;
  switch (kind) {
    case BufferKind::Device: want = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT; break;
    case BufferKind::Upload:
      want = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
      break;
    case BufferKind::Readback:
      want = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
      nice = VK_MEMORY_PROPERTY_HOST_CACHED_BIT;
      break;
  }
  int type = -1;
  for (int pass = 0; pass < 2 && type < 0; ++pass) {
    VkMemoryPropertyFlags need = pass == 0 ? (want | nice) : want;
    for (uint32_t i = 0; i < memory_props_.memoryTypeCount; ++i)
      if ((req.memoryTypeBits & (1u << i)) &&
          (memory_props_.memoryTypes[i].propertyFlags & need) == need) {
        type = static_cast<int>(i);
        break;
      }
  }
  if (type < 0) throw Error(MOEVK_ERROR_UNSUPPORTED, "no suitable memory type for " + what);

  VkMemoryAllocateInfo ainfo{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
  ainfo.allocationSize = req.size;
  ainfo.memoryTypeIndex = static_cast<uint32_t>(type);
  VkResult r = vkAllocateMemory(device_, &ainfo, nullptr, &b.memory_);
  // Host-visible kinds may live in system memory, and drivers also run out of host memory for
  // their own bookkeeping: that is the host's shortage, not the device's, and says so.
  if (r == VK_ERROR_OUT_OF_HOST_MEMORY)
    throw Error(MOEVK_ERROR_OUT_OF_HOST_MEMORY, "out of host memory allocating " + mib(size) + " for " + what +
                                                    " on " + caps_.name + " (moevk already holds " +
                                                    mib(allocated_bytes_.load()) + " of Vulkan memory)");
  if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY) {
    throw Error(MOEVK_ERROR_OUT_OF_DEVICE_MEMORY,
                "out of device memory allocating " + mib(size) + " for " + what + " on " + caps_.name +
                    " (moevk already holds " + mib(allocated_bytes_.load()) + ", device-local heaps " +
                    mib(caps_.device_local_bytes()) + ")");
  }
  check(r, ("vkAllocateMemory for " + what).c_str());
  allocated_bytes_ += size;
  if (kind == BufferKind::Device) {
    b.device_kind_ = true;
    const uint64_t device_now = device_allocated_bytes_ += size;
    uint64_t device_peak = peak_device_allocated_bytes_.load();
    while (device_now > device_peak && !peak_device_allocated_bytes_.compare_exchange_weak(device_peak, device_now)) {}
  }
  uint64_t now = allocated_bytes_.load(), peak = peak_allocated_bytes_.load();
  while (now > peak && !peak_allocated_bytes_.compare_exchange_weak(peak, now)) {}
  check(vkBindBufferMemory(device_, b.buffer_, b.memory_, 0), "vkBindBufferMemory");
  if (kind != BufferKind::Device)
    check(vkMapMemory(device_, b.memory_, 0, VK_WHOLE_SIZE, 0, &b.mapped_), "vkMapMemory");
  return b;
}

void Context::submit_transfer_chunk(int slot, const BufferRange& device_range, uint64_t done, uint64_t n,
                                    bool to_device) {
  const VkCommandBuffer cb = transfer_commands_[slot].buffer();
  check(vkResetCommandBuffer(cb, 0), "vkResetCommandBuffer");
  VkCommandBufferBeginInfo begin{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  check(vkBeginCommandBuffer(cb, &begin), "vkBeginCommandBuffer");
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                       VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, nullptr, 0, nullptr);
  VkBufferCopy region{};
  region.size = n;
  if (to_device) {
    region.srcOffset = 0;
    region.dstOffset = device_range.offset + done;
    vkCmdCopyBuffer(cb, staging_[slot].handle(), device_range.buffer, 1, &region);
  } else {
    region.srcOffset = device_range.offset + done;
    region.dstOffset = 0;
    vkCmdCopyBuffer(cb, device_range.buffer, staging_[slot].handle(), 1, &region);
  }
  VkMemoryBarrier after{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  after.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
  after.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_HOST_READ_BIT;
  vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_HOST_BIT,
                       0, 1, &after, 0, nullptr, 0, nullptr);
  check(vkEndCommandBuffer(cb), "vkEndCommandBuffer");
  VkSubmitInfo submit{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  submit.commandBufferCount = 1;
  submit.pCommandBuffers = &cb;
  const VkResult r = vkQueueSubmit(queue_, 1, &submit, transfer_commands_[slot].fence());
  if (r == VK_ERROR_DEVICE_LOST) lost_ = true;
  check(r, "transfer submit");
}

void Context::wait_transfer_chunk(int slot) {
  const VkFence fence = transfer_commands_[slot].fence();
  const VkResult r = vkWaitForFences(device_, 1, &fence, VK_TRUE, fence_timeout_ns_);
  if (r != VK_SUCCESS) {
    if (r == VK_ERROR_DEVICE_LOST || r == VK_TIMEOUT) lost_ = true;
    if (r == VK_TIMEOUT) throw Error(MOEVK_ERROR_DEVICE_LOST, "a transfer did not finish within the GPU timeout");
    check(r, "transfer wait");
  }
  check(vkResetFences(device_, 1, &fence), "vkResetFences");
}

void Context::transfer(const BufferRange& device_range, void* host, uint64_t size, bool to_device,
                       const UploadFill* fill, uint64_t granule) {
  check_usable();
  if (size > device_range.size) throw Error(MOEVK_ERROR_INTERNAL, "transfer larger than its buffer range");
  constexpr uint64_t staging_bytes = kUploadGranuleLimit;
  if (granule == 0 || granule > staging_bytes)
    throw Error(MOEVK_ERROR_INTERNAL, "upload granule of " + std::to_string(granule) + " bytes");
  const uint64_t chunk = staging_bytes / granule * granule;
  std::lock_guard<std::mutex> lock(submit_mutex_);
  // Uploads alternate between the two staging chunks: the host copies chunk k + 1 in while the
  // GPU copies chunk k out (a 26 GB model is ~1700 chunks). Downloads use one, in turn.
  const int slots = to_device && size > chunk ? 2 : 1;
  for (int s = 0; s < slots; ++s)
    if (!staging_[s].valid()) staging_[s] = create_buffer(staging_bytes, BufferKind::Upload, "staging buffer");
  bool in_flight[2] = {false, false};
  auto finish = [&](int s) {  // the slot's copy done, if one was submitted
    if (!in_flight[s]) return;
    in_flight[s] = false;
    wait_transfer_chunk(s);
  };
  try {
    int slot = 0;
    for (uint64_t done = 0; done < size; slot = (slot + 1) % slots) {
      const uint64_t n = std::min(chunk, size - done);
      finish(slot);
      if (fill)
        (*fill)(static_cast<uint8_t*>(staging_[slot].mapped()), done, n);
      else if (to_device)
        std::memcpy(staging_[slot].mapped(), static_cast<const uint8_t*>(host) + done, n);
      submit_transfer_chunk(slot, device_range, done, n, to_device);
      in_flight[slot] = true;
      if (!to_device) {
        finish(slot);
        std::memcpy(static_cast<uint8_t*>(host) + done, staging_[slot].mapped(), n);
      }
      done += n;
    }
    for (int s = 0; s < slots; ++s) finish(s);
  } catch (...) {
    // A failed submit or wait: the other slot's copy may still be running, and its fence must
    // be unsignalled again before the next transfer submits with it. Not after a loss or a
    // timeout: the context is unusable then, and a hung GPU would hold this for another timeout.
    if (lost_) throw;
    for (int s = 0; s < slots; ++s)
      if (in_flight[s]) {
        const VkFence fence = transfer_commands_[s].fence();
        if (vkWaitForFences(device_, 1, &fence, VK_TRUE, fence_timeout_ns_) == VK_SUCCESS)
          (void)vkResetFences(device_, 1, &fence);
      }
    throw;
  }
}

void Context::upload(const BufferRange& dst, const void* data, uint64_t size) {
  transfer(dst, const_cast<void*>(data), size, true);
}

void Context::upload(const BufferRange& dst, uint64_t size, uint64_t granule, const UploadFill& fill) {
  transfer(dst, nullptr, size, true, &fill, granule);
}

void Context::download(const BufferRange& src, void* data, uint64_t size) {
  transfer(src, data, size, false);
}

void Context::submit_and_wait(VkCommandBuffer cb, VkFence fence) {
  submit(cb, fence);
  wait(fence);
}

void Context::submit(VkCommandBuffer cb, VkFence fence) {
  check_usable();
  VkSubmitInfo submit{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  submit.commandBufferCount = 1;
  submit.pCommandBuffers = &cb;
  VkResult r;
  {
    std::lock_guard<std::mutex> lock(submit_mutex_);  // the queue, and the simulated-loss count
    if (simulate_loss_after_ && ++submits_ > simulate_loss_after_) {
      lost_ = true;
      throw Error(MOEVK_ERROR_DEVICE_LOST, "the Vulkan device '" + caps_.name +
                                               "' was lost during a submit (simulated); this context cannot "
                                               "be used further, create a new one");
    }
    r = vkQueueSubmit(queue_, 1, &submit, fence);
  }
  if (r == VK_ERROR_DEVICE_LOST) lose(r);
  check(r, "vkQueueSubmit");
}

void Context::wait(VkFence fence) {
  const VkResult r = vkWaitForFences(device_, 1, &fence, VK_TRUE, fence_timeout_ns_);
  if (r == VK_SUCCESS) {
    check(vkResetFences(device_, 1, &fence), "vkResetFences");
    return;
  }
  if (r == VK_ERROR_DEVICE_LOST || r == VK_TIMEOUT) lose(r);
  check(r, "vkWaitForFences");
}

bool Context::wait_noexcept(VkFence fence) noexcept {
  const VkResult r = vkWaitForFences(device_, 1, &fence, VK_TRUE, fence_timeout_ns_);
  if (r == VK_SUCCESS) return vkResetFences(device_, 1, &fence) == VK_SUCCESS;
  lost_ = true;
  return false;
}

void Context::lose(VkResult r) {
  lost_ = true;
  throw Error(MOEVK_ERROR_DEVICE_LOST,
              std::string("the Vulkan device '") + caps_.name + "' was lost during a submit (" + result_name(r) +
                  "); this context cannot be used further, create a new one");
}

}  // namespace moevk::vk
