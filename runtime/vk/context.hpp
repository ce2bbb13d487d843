// Vulkan instance, device choice and the per-device Context: queue, memory, pipelines, submits.
// Everything is RAII; failures throw moevk::Error with a distinct status (see vk/check.hpp).
#pragma once
#include <vulkan/vulkan.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "vk/capabilities.hpp"

namespace moevk::vk {

class Instance {
 public:
  // Validation is on when `validation` is true or MOEVK_VALIDATE=1. Throws NO_DEVICE when no
  // Vulkan loader/driver is usable.
  static std::shared_ptr<Instance> create(bool validation);
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  VkInstance handle() const { return instance_; }
  bool validation() const { return validation_; }
  std::vector<VkPhysicalDevice> physical_devices() const;
  std::vector<Capabilities> describe_devices() const;

  // Errors and warnings reported by the validation layer since creation (or the last clear).
  std::vector<std::string> validation_messages() const;
  void clear_validation_messages();
  void add_validation_message(std::string m);
  // Messages of every instance of the process not cleared yet (tests fail on any at exit).
  static std::vector<std::string> process_validation_messages();

 private:
  Instance() = default;
  VkInstance instance_ = VK_NULL_HANDLE;
  VkDebugUtilsMessengerEXT messenger_ = VK_NULL_HANDLE;
  bool validation_ = false;
  mutable std::mutex messages_mutex_;
  std::vector<std::string> messages_;
};

// Device features the runtime uses: what the device has, minus what MOEVK_DISABLE turns off.
struct Features {
  bool fp16 = false, int8 = false, storage16 = false, storage8 = false;
  bool dot = false, coopmat_nv = false, subgroup_size_control = false;
  // Opt-in kernels not yet measured against the ones they would replace (MOEVK_ENABLE=dot_decode):
  // the one-token expert gate+up on the integer dot product (ops::MoeExpertsOptions::dot_decode).
  bool dot_decode = false;
  // MOEVK_ENABLE=wide_decode: the one-token products read two pair runs (16 quant bytes) a
  // thread step instead of one (ops::MoeExpertsOptions and MatMulOptions::wide_decode).
  bool wide_decode = false;
  bool subgroup_arithmetic = false;
  std::string describe() const;
};

struct ContextOptions {
  std::string device;   // index or name substring; empty: MOEVK_DEVICE, else the best device
  bool validation = false;
  std::string disable;  // comma list as MOEVK_DISABLE (which is also read)
  // Testing aid: after this many successful submits, the next one behaves as if the device
  // were lost (0: never). Real GPUs cannot be made to lose themselves on demand.
  uint32_t simulate_device_loss_after = 0;
  // Testing aid: behave as if the device had only this many bytes of device-local memory
  // (0: the real amount), so out-of-memory paths can be exercised on any machine.
  uint64_t simulate_device_memory = 0;
  // Testing aid: behave as if maxStorageBufferRange were this small (0: the real one), so that
  // tensors larger than one binding (split by rows or expert windows) can be tried on any model.
  uint64_t simulate_max_storage_buffer_range = 0;
};

enum class BufferKind {
  Device,    // device-local, read/written by shaders
  Upload,    // host-visible staging, CPU writes
  Readback,  // host-visible, CPU reads
};

struct BufferRange {
  VkBuffer buffer = VK_NULL_HANDLE;
  uint64_t offset = 0;
  uint64_t size = 0;
};

class Context;

class Buffer {
 public:
  Buffer() = default;
  Buffer(Buffer&& o) noexcept { *this = std::move(o); }
  Buffer& operator=(Buffer&& o) noexcept;
  ~Buffer();

  uint64_t size() const { return size_; }
  bool valid() const { return buffer_ != VK_NULL_HANDLE; }
  VkBuffer handle() const { return buffer_; }
  void* mapped() const { return mapped_; }  // non-null for Upload/Readback
  BufferRange range(uint64_t offset = 0, uint64_t size = ~0ull) const;

 private:
  friend class Context;
  Context* ctx_ = nullptr;
  VkBuffer buffer_ = VK_NULL_HANDLE;
  VkDeviceMemory memory_ = VK_NULL_HANDLE;
  uint64_t size_ = 0;
  void* mapped_ = nullptr;
  bool device_kind_ = false;  // BufferKind::Device: counted against (simulated) device memory
};

struct PipelineDesc {
  std::string shader;                   // variant name in shaders/shaders.cmake
  uint32_t bindings = 0;                // storage buffers at binding 0..n-1 of set 0
  uint32_t push_constant_bytes = 0;
  std::vector<uint32_t> spec_constants; // constant_id 0..n-1
  uint32_t required_subgroup_size = 0;  // 0: driver's choice
  // A constant table the shader reads as a storage buffer at set 1, binding 0 (the IQ formats'
  // codebooks): static data, uploaded once per Context and bound by the Recorder with the
  // pipeline. Empty: the pipeline has set 0 only.
  std::span<const uint32_t> table;
  std::string key() const;
};

// A command pool with its one primary command buffer and a fence for its submits. Vulkan requires
// a pool (and the buffers allocated from it) and a fence to be externally synchronized, so each
// user that records on its own thread owns one: every Recorder (contexts of one model may record
// and wait on different threads at once), and the Context for its transfers (those run under its
// submit mutex).
class CommandPool {
 public:
  CommandPool() = default;
  CommandPool(VkDevice device, uint32_t queue_family);
  CommandPool(CommandPool&& o) noexcept { *this = std::move(o); }
  CommandPool& operator=(CommandPool&& o) noexcept;
  ~CommandPool();

  VkCommandBuffer buffer() const { return buffer_; }
  VkFence fence() const { return fence_; }  // unsignalled between submits

 private:
  VkDevice device_ = VK_NULL_HANDLE;
  VkCommandPool pool_ = VK_NULL_HANDLE;
  VkCommandBuffer buffer_ = VK_NULL_HANDLE;  // freed with the pool
  VkFence fence_ = VK_NULL_HANDLE;
};

struct Pipeline {
  std::string name;
  uint32_t bindings = 0;
  uint32_t push_constant_bytes = 0;
  VkDescriptorSet table_set = VK_NULL_HANDLE;  // set 1 (PipelineDesc::table), owned by the Context
  VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
  VkPipelineLayout layout = VK_NULL_HANDLE;
  VkPipeline pipeline = VK_NULL_HANDLE;
};

class Context {
 public:
  static std::shared_ptr<Context> create(const ContextOptions& options = {});
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  Instance& instance() const { return *instance_; }
  const Capabilities& caps() const { return caps_; }
  const Features& features() const { return features_; }
  VkDevice device() const { return device_; }
  VkQueue queue() const { return queue_; }
  uint32_t queue_family() const { return queue_family_; }

  // Memory. `what` names the allocation in error messages ("weights of blk.3.ffn_up_exps").
  Buffer create_buffer(uint64_t size, BufferKind kind, const std::string& what);
  void upload(const BufferRange& dst, const void* data, uint64_t size);
  // Uploads `size` bytes that `fill(out, offset, n)` writes straight into the staging memory
  // (bytes [offset, offset + n) of what goes to dst), in pieces that are whole multiples of
  // `granule` bytes (1..kUploadGranuleLimit): a conversion on the way (ops::to_device_layout,
  // whole rows) without a copy of its own.
  static constexpr uint64_t kUploadGranuleLimit = 16ull << 20;  // the staging chunk
  using UploadFill = std::function<void(uint8_t* out, uint64_t offset, uint64_t n)>;
  void upload(const BufferRange& dst, uint64_t size, uint64_t granule, const UploadFill& fill);
  void download(const BufferRange& src, void* data, uint64_t size);
  uint64_t allocated_bytes() const { return allocated_bytes_.load(); }
  uint64_t peak_allocated_bytes() const { return peak_allocated_bytes_.load(); }
  // Device-local buffers only (BufferKind::Device): what the GPU's own memory holds, now and at
  // its highest since the Context was made (weights, KV caches and activations of every session).
  uint64_t device_allocated_bytes() const { return device_allocated_bytes_.load(); }
  uint64_t peak_device_allocated_bytes() const { return peak_device_allocated_bytes_.load(); }

  // Pipelines are created once per description and kept for the Context's life.
  const Pipeline& pipeline(const PipelineDesc& desc);

  // Submits one recorded command buffer and waits for it on `fence` (unsignalled, the caller's
  // own: see CommandPool). The queue is locked for the submit only, so contexts of one model
  // waiting on their steps do not hold each other's next submit back. Throws DEVICE_LOST (and
  // marks the context lost: every later call fails the same way) or VULKAN on other failures.
  void submit_and_wait(VkCommandBuffer cb, VkFence fence);
  // The two halves, for work kept in flight while the host goes on (several command buffers,
  // each with its own fence): wait() blocks until `fence` signals and resets it.
  void submit(VkCommandBuffer cb, VkFence fence);
  void wait(VkFence fence);
  // wait() for destructors: never throws; false (and the context marked lost) where the fence
  // did not signal within the device timeout.
  bool wait_noexcept(VkFence fence) noexcept;
  bool lost() const { return lost_; }
  void check_usable() const;

  // Pipeline cache on disk (MOEVK_CACHE_DIR, else $XDG_CACHE_HOME/moevk, else ~/.cache/moevk).
  std::string pipeline_cache_path() const;
  void save_pipeline_cache();

 private:
  friend class Buffer;
  Context() = default;
  void init(const ContextOptions& options);
  void load_pipeline_cache();
  // The descriptor set holding `table` (uploaded on first use); under pipelines_mutex_.
  VkDescriptorSet table_set(std::span<const uint32_t> table);
  void release(Buffer& b);
  // fill (uploads only): the bytes come from it instead of host; pieces are multiples of granule.
  void transfer(const BufferRange& device_range, void* host, uint64_t size, bool to_device,
                const UploadFill* fill = nullptr, uint64_t granule = 1);
  // Records and submits the copy of n bytes between staging slot `slot` and device_range at
  // `done`, signalling the slot's fence.
  void submit_transfer_chunk(int slot, const BufferRange& device_range, uint64_t done, uint64_t n, bool to_device);
  // Waits for the slot's submitted copy and resets its fence (DEVICE_LOST on loss or timeout).
  void wait_transfer_chunk(int slot);

  std::shared_ptr<Instance> instance_;
  VkPhysicalDevice physical_ = VK_NULL_HANDLE;
  Capabilities caps_;
  Features features_;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  uint32_t queue_family_ = 0;
  // Two staging chunks, each with its command buffer and fence (used under submit_mutex_ only):
  // an upload fills one while the GPU copies the other.
  CommandPool transfer_commands_[2];
  VkPipelineCache pipeline_cache_ = VK_NULL_HANDLE;
  VkPhysicalDeviceMemoryProperties memory_props_{};
  std::mutex submit_mutex_;
  std::mutex pipelines_mutex_;
  std::map<std::string, std::unique_ptr<Pipeline>> pipelines_;
  // PipelineDesc::table: one buffer and set per table, all sets of one layout and pool.
  struct Table {
    Buffer buffer;
    VkDescriptorSet set = VK_NULL_HANDLE;
  };
  std::map<const uint32_t*, Table> tables_;
  VkDescriptorSetLayout table_layout_ = VK_NULL_HANDLE;
  VkDescriptorPool table_pool_ = VK_NULL_HANDLE;
  Buffer staging_[2];
  std::atomic<uint64_t> allocated_bytes_{0}, peak_allocated_bytes_{0}, device_allocated_bytes_{0},
      peak_device_allocated_bytes_{0};
  [[noreturn]] void lose(VkResult r);  // marks the context lost, throws DEVICE_LOST
  std::atomic<bool> lost_{false};  // set by the thread that sees the loss, read by every thread
  uint64_t fence_timeout_ns_ = 0;
  uint32_t simulate_loss_after_ = 0;
  uint64_t simulate_memory_ = 0;
  uint32_t submits_ = 0;
};

}  // namespace moevk::vk
