// Records compute dispatches into a reusable command buffer: record once, submit many times.
// Descriptor sets live as long as the recording (until the next begin()).
#pragma once
#include <vulkan/vulkan.h>

#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "vk/context.hpp"

namespace moevk::vk {

class Recorder {
 public:
  explicit Recorder(Context& ctx, uint32_t max_timestamps = 0);
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  Context& context() const { return ctx_; }

  void begin();  // starts a new recording (drops the previous one)
  void end();
  bool recorded() const { return recorded_; }

  // Binds `bindings` to 0..n-1 (their count must equal the pipeline's), pushes `push`, dispatches.
  void dispatch(const Pipeline& p, std::span<const BufferRange> bindings, const void* push,
                uint32_t push_bytes, uint32_t groups_x, uint32_t groups_y = 1, uint32_t groups_z = 1);
  template <class Push>
  void dispatch(const Pipeline& p, std::initializer_list<BufferRange> bindings, const Push& push,
                uint32_t groups_x, uint32_t groups_y = 1, uint32_t groups_z = 1) {
    dispatch(p, std::span<const BufferRange>(bindings.begin(), bindings.size()), &push, sizeof(Push),
             groups_x, groups_y, groups_z);
  }
  // Group counts read from `args` (3 x uint32) at execution time.
  void dispatch_indirect(const Pipeline& p, std::span<const BufferRange> bindings, const void* push,
                         uint32_t push_bytes, const BufferRange& args);

  // Makes all earlier shader/transfer writes visible to later shader/transfer reads and writes
  // (nothing is recorded when the previous command was a barrier too).
  void barrier();
  // Makes earlier transfer/shader writes visible to the host (before reading mapped Readback
  // buffers after submit(): a fence wait alone does not make device writes host-visible).
  void host_barrier();
  void copy(const BufferRange& src, const BufferRange& dst, uint64_t bytes);
  void fill(const BufferRange& dst, uint32_t value);  // size a multiple of 4
  void update(const BufferRange& dst, const void* data, uint32_t bytes);  // <= 65536, multiple of 4

  // Writes a GPU timestamp after all earlier work; returns its slot (~0u when the recorder has
  // no query pool or its slots are used up). `tag` is the caller's label of the interval that
  // ends at this timestamp (e.g. a profiling stage); timestamp_tags() returns them by slot.
  uint32_t timestamp(uint32_t tag = 0);
  // After submit(): raw ticks converted to ms since slot 0.
  std::vector<double> timestamps_ms();
  const std::vector<uint32_t>& timestamp_tags() const { return timestamp_tags_; }

  // What the current recording holds (reset by begin()): the work a replay costs beyond the
  // kernels themselves (each dispatch and each barrier is a GPU-side synchronisation point).
  uint32_t dispatch_count() const { return dispatch_count_; }
  // barrier() and host_barrier() recorded; a barrier() right after another is not recorded, nor counted.
  uint32_t barrier_count() const { return barrier_count_; }

  // Submits the recording and waits for it (replay: call again without re-recording).
  void submit();
  // The two halves: submit_async() returns at once (the recording may not be submitted or
  // re-recorded again until wait()); wait() blocks until it has run (nothing when not in
  // flight). Recordings of one queue run in submission order where their first command is a
  // barrier: it orders them after everything submitted before. Destroying a recorder in flight
  // waits for it.
  void submit_async();
  void wait();
  bool in_flight() const { return in_flight_; }

 private:
  VkDescriptorSet allocate_set(const Pipeline& p);
  void bind(const Pipeline& p, std::span<const BufferRange> bindings, const void* push, uint32_t push_bytes);

  Context& ctx_;
  CommandPool commands_;  // this recorder's own: recorders of one Context may run on several threads
  VkCommandBuffer cb_ = VK_NULL_HANDLE;
  std::vector<VkDescriptorPool> pools_;
  size_t current_pool_ = 0;
  uint32_t sets_in_pool_ = 0;
  VkQueryPool query_pool_ = VK_NULL_HANDLE;
  uint32_t max_timestamps_ = 0, timestamps_used_ = 0;
  std::vector<uint32_t> timestamp_tags_;
  uint32_t dispatch_count_ = 0, barrier_count_ = 0;
  // The last command recorded was barrier() (timestamps aside): a second one is skipped.
  bool after_barrier_ = false;
  bool recording_ = false, recorded_ = false;
  bool in_flight_ = false;  // submit_async() without its wait() yet
};

}  // namespace moevk::vk
