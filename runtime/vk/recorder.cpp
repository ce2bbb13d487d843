// Command recording: dispatches, barriers, copies, timestamps.
#include "vk/recorder.hpp"

#include <utility>

#include "vk/check.hpp"

namespace moevk::vk {

namespace {
constexpr uint32_t kSetsPerPool = 256;
constexpr uint32_t kMaxBindings = 16;
}  // namespace

CommandPool::CommandPool(VkDevice device, uint32_t queue_family) : device_(device) {
  VkCommandPoolCreateInfo pinfo{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pinfo.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pinfo.queueFamilyIndex = queue_family;
  check(vkCreateCommandPool(device_, &pinfo, nullptr, &pool_), "vkCreateCommandPool");
  VkCommandBufferAllocateInfo ainfo{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  ainfo.commandPool = pool_;
  ainfo.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ainfo.commandBufferCount = 1;
  VkResult r = vkAllocateCommandBuffers(device_, &ainfo, &buffer_);
  if (r != VK_SUCCESS) {
    vkDestroyCommandPool(device_, pool_, nullptr);
    pool_ = VK_NULL_HANDLE;
    check(r, "vkAllocateCommandBuffers");
  }
  VkFenceCreateInfo finfo{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  r = vkCreateFence(device_, &finfo, nullptr, &fence_);
  if (r != VK_SUCCESS) {
    vkDestroyCommandPool(device_, pool_, nullptr);
    pool_ = VK_NULL_HANDLE;
    check(r, "vkCreateFence");
  }
}

CommandPool& CommandPool::operator=(CommandPool&& o) noexcept {
  if (this != &o) {
    if (pool_) vkDestroyCommandPool(device_, pool_, nullptr);
    if (fence_) vkDestroyFence(device_, fence_, nullptr);
    device_ = std::exchange(o.device_, VK_NULL_HANDLE);
    pool_ = std::exchange(o.pool_, VK_NULL_HANDLE);
    buffer_ = std::exchange(o.buffer_, VK_NULL_HANDLE);
    fence_ = std::exchange(o.fence_, VK_NULL_HANDLE);
  }
  return *this;
}

CommandPool::~CommandPool() {
  if (pool_) vkDestroyCommandPool(device_, pool_, nullptr);
  if (fence_) vkDestroyFence(device_, fence_, nullptr);
}

Recorder::Recorder(Context& ctx, uint32_t max_timestamps)
    : ctx_(ctx), commands_(ctx.device(), ctx.queue_family()), cb_(commands_.buffer()),
      max_timestamps_(max_timestamps) {
  ctx_.check_usable();
  if (max_timestamps_ && ctx_.caps().timestamps) {
    VkQueryPoolCreateInfo q{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
    q.queryType = VK_QUERY_TYPE_TIMESTAMP;
    q.queryCount = max_timestamps_;
    check(vkCreateQueryPool(ctx_.device(), &q, nullptr, &query_pool_), "vkCreateQueryPool");
  }
}

Recorder::~Recorder() {
  // A recording still in flight must finish before its command buffer and sets go.
  if (in_flight_ && !ctx_.lost()) ctx_.wait_noexcept(commands_.fence());
  VkDevice d = ctx_.device();
  for (auto p : pools_) vkDestroyDescriptorPool(d, p, nullptr);
  if (query_pool_) vkDestroyQueryPool(d, query_pool_, nullptr);
  // commands_ frees the command buffer with its pool.
}

void Recorder::begin() {
  ctx_.check_usable();
  if (in_flight_) throw Error(MOEVK_ERROR_INTERNAL, "re-recording a command buffer still in flight");
  check(vkResetCommandBuffer(cb_, 0), "vkResetCommandBuffer");
  for (auto p : pools_) check(vkResetDescriptorPool(ctx_.device(), p, 0), "vkResetDescriptorPool");
  sets_in_pool_ = 0;
  current_pool_ = 0;
  VkCommandBufferBeginInfo info{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  check(vkBeginCommandBuffer(cb_, &info), "vkBeginCommandBuffer");
  if (query_pool_) vkCmdResetQueryPool(cb_, query_pool_, 0, max_timestamps_);
  timestamps_used_ = 0;
  timestamp_tags_.clear();
  dispatch_count_ = barrier_count_ = 0;
  after_barrier_ = false;  // a first barrier orders this recording after earlier submissions
  recording_ = true;
  recorded_ = false;
}

void Recorder::end() {
  if (!recording_) throw Error(MOEVK_ERROR_INTERNAL, "Recorder::end without begin");
  check(vkEndCommandBuffer(cb_), "vkEndCommandBuffer");
  recording_ = false;
  recorded_ = true;
}

VkDescriptorSet Recorder::allocate_set(const Pipeline& p) {
  // Pools are kept across recordings (reset in begin()); a new one is added when a recording
  // needs more sets than the existing ones hold.
  if (pools_.empty() || sets_in_pool_ == kSetsPerPool) {
    if (!pools_.empty()) ++current_pool_;
    if (current_pool_ >= pools_.size()) {
      VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, kSetsPerPool * kMaxBindings};
      VkDescriptorPoolCreateInfo info{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
      info.maxSets = kSetsPerPool;
      info.poolSizeCount = 1;
      info.pPoolSizes = &size;
      VkDescriptorPool pool;
      check(vkCreateDescriptorPool(ctx_.device(), &info, nullptr, &pool), "vkCreateDescriptorPool");
      pools_.push_back(pool);
      current_pool_ = pools_.size() - 1;
    }
    sets_in_pool_ = 0;
  }
  VkDescriptorSetAllocateInfo info{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
  info.descriptorPool = pools_[current_pool_];
  info.descriptorSetCount = 1;
  info.pSetLayouts = &p.set_layout;
  VkDescriptorSet set;
  check(vkAllocateDescriptorSets(ctx_.device(), &info, &set), "vkAllocateDescriptorSets");
  ++sets_in_pool_;
  return set;
}

void Recorder::bind(const Pipeline& p, std::span<const BufferRange> bindings, const void* push,
                    uint32_t push_bytes) {
  if (!recording_) throw Error(MOEVK_ERROR_INTERNAL, "dispatch outside begin/end");
  after_barrier_ = false;
  if (bindings.size() != p.bindings || bindings.size() > kMaxBindings)
    throw Error(MOEVK_ERROR_INTERNAL, p.name + ": " + std::to_string(bindings.size()) +
                                          " buffers bound, pipeline has " + std::to_string(p.bindings));
  if (push_bytes != p.push_constant_bytes)
    throw Error(MOEVK_ERROR_INTERNAL, p.name + ": push constant size " + std::to_string(push_bytes) +
                                          " != " + std::to_string(p.push_constant_bytes));
  const auto& caps = ctx_.caps();
  VkDescriptorSet set = allocate_set(p);
  VkDescriptorBufferInfo infos[kMaxBindings];
  VkWriteDescriptorSet writes[kMaxBindings];
  for (size_t i = 0; i < bindings.size(); ++i) {
    const auto& b = bindings[i];
    if (!b.buffer || b.size == 0)
      throw Error(MOEVK_ERROR_INTERNAL, p.name + ": binding " + std::to_string(i) + " is empty");
    if (b.size > caps.max_storage_buffer_range)
      throw Error(MOEVK_ERROR_UNSUPPORTED,
                  p.name + ": binding " + std::to_string(i) + " spans " + std::to_string(b.size) +
                      " bytes, more than the device's maxStorageBufferRange (" +
                      std::to_string(caps.max_storage_buffer_range) + ")");
    if (b.offset % caps.min_storage_buffer_offset_alignment)
      throw Error(MOEVK_ERROR_INTERNAL, p.name + ": binding " + std::to_string(i) + " offset " +
                                            std::to_string(b.offset) + " is not aligned to " +
                                            std::to_string(caps.min_storage_buffer_offset_alignment));
    infos[i] = {b.buffer, b.offset, b.size};
    writes[i] = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
    writes[i].dstSet = set;
    writes[i].dstBinding = static_cast<uint32_t>(i);
    writes[i].descriptorCount = 1;
    writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    writes[i].pBufferInfo = &infos[i];
  }
  vkUpdateDescriptorSets(ctx_.device(), static_cast<uint32_t>(bindings.size()), writes, 0, nullptr);
  vkCmdBindPipeline(cb_, VK_PIPELINE_BIND_POINT_COMPUTE, p.pipeline);
  vkCmdBindDescriptorSets(cb_, VK_PIPELINE_BIND_POINT_COMPUTE, p.layout, 0, 1, &set, 0, nullptr);
  if (p.table_set)
    vkCmdBindDescriptorSets(cb_, VK_PIPELINE_BIND_POINT_COMPUTE, p.layout, 1, 1, &p.table_set, 0, nullptr);
  if (push_bytes) vkCmdPushConstants(cb_, p.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes, push);
}

void Recorder::dispatch(const Pipeline& p, std::span<const BufferRange> bindings, const void* push,
                        uint32_t push_bytes, uint32_t gx, uint32_t gy, uint32_t gz) {
  const auto& caps = ctx_.caps();
  if (gx == 0 || gy == 0 || gz == 0) return;  // nothing to do (an empty batch)
  if (gx > caps.max_workgroup_count[0] || gy > caps.max_workgroup_count[1] || gz > caps.max_workgroup_count[2])
    throw Error(MOEVK_ERROR_UNSUPPORTED, p.name + ": dispatch of " + std::to_string(gx) + "x" +
                                             std::to_string(gy) + "x" + std::to_string(gz) +
                                             " workgroups exceeds the device's maxComputeWorkGroupCount");
  bind(p, bindings, push, push_bytes);
  vkCmdDispatch(cb_, gx, gy, gz);
  ++dispatch_count_;
}

void Recorder::dispatch_indirect(const Pipeline& p, std::span<const BufferRange> bindings,
                                 const void* push, uint32_t push_bytes, const BufferRange& args) {
  bind(p, bindings, push, push_bytes);
  vkCmdDispatchIndirect(cb_, args.buffer, args.offset);
  ++dispatch_count_;
}

void Recorder::barrier() {
  // A barrier right after another orders nothing the first did not: every command before the
  // first is already ordered before every command after it. Ops fence their own inputs, so
  // such pairs are common (a block's closing barrier, then the next product's own).
  if (after_barrier_) return;
  after_barrier_ = true;
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                     VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT |
                     VK_ACCESS_INDIRECT_COMMAND_READ_BIT;
  vkCmdPipelineBarrier(cb_, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                       VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT |
                           VK_PIPELINE_STAGE_DRAW_INDIRECT_BIT,
                       0, 1, &mb, 0, nullptr, 0, nullptr);
  ++barrier_count_;
}

void Recorder::host_barrier() {
  after_barrier_ = false;
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
  vkCmdPipelineBarrier(cb_, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                       VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, nullptr, 0, nullptr);
  ++barrier_count_;
}

void Recorder::copy(const BufferRange& src, const BufferRange& dst, uint64_t bytes) {
  after_barrier_ = false;
  if (bytes > src.size || bytes > dst.size) throw Error(MOEVK_ERROR_INTERNAL, "copy past a range");
  VkBufferCopy region{src.offset, dst.offset, bytes};
  vkCmdCopyBuffer(cb_, src.buffer, dst.buffer, 1, &region);
}

void Recorder::fill(const BufferRange& dst, uint32_t value) {
  after_barrier_ = false;
  vkCmdFillBuffer(cb_, dst.buffer, dst.offset, dst.size & ~3ull, value);
}

void Recorder::update(const BufferRange& dst, const void* data, uint32_t bytes) {
  if (bytes > 65536 || bytes % 4 || bytes > dst.size) throw Error(MOEVK_ERROR_INTERNAL, "bad update size");
  after_barrier_ = false;
  vkCmdUpdateBuffer(cb_, dst.buffer, dst.offset, bytes, data);
}

uint32_t Recorder::timestamp(uint32_t tag) {
  if (!query_pool_ || timestamps_used_ >= max_timestamps_) return ~0u;
  vkCmdWriteTimestamp(cb_, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, query_pool_, timestamps_used_);
  timestamp_tags_.push_back(tag);
  return timestamps_used_++;
}

std::vector<double> Recorder::timestamps_ms() {
  std::vector<double> out;
  if (!query_pool_ || timestamps_used_ == 0) return out;
  std::vector<uint64_t> ticks(timestamps_used_);
  check(vkGetQueryPoolResults(ctx_.device(), query_pool_, 0, timestamps_used_, ticks.size() * 8,
                              ticks.data(), 8, VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT),
        "vkGetQueryPoolResults");
  // Bits above the queue's timestampValidBits are undefined; masking the difference drops them
  // and also survives one wrap of a narrow counter.
  const uint32_t bits = ctx_.caps().timestamp_valid_bits;
  const uint64_t valid = bits >= 64 ? ~0ull : (1ull << bits) - 1;
  const double period = ctx_.caps().timestamp_period_ns;
  for (auto t : ticks) out.push_back(static_cast<double>((t - ticks[0]) & valid) * period * 1e-6);
  return out;
}

void Recorder::submit() {
  submit_async();
  wait();
}

void Recorder::submit_async() {
  if (!recorded_) throw Error(MOEVK_ERROR_INTERNAL, "submit of an unfinished recording");
  if (in_flight_) throw Error(MOEVK_ERROR_INTERNAL, "submit of a recording still in flight");
  ctx_.submit(cb_, commands_.fence());
  in_flight_ = true;
}

void Recorder::wait() {
  if (!in_flight_) return;
  in_flight_ = false;  // a lost device leaves nothing to wait for either
  ctx_.wait(commands_.fence());
}

}  // namespace moevk::vk
