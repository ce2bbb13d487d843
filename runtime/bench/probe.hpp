// Device probes for honest percentages: achieved copy bandwidth (bytes read + written per
// second, the convention of a device-to-device copy) and fp32 FMA throughput.
#pragma once
#include <functional>
#include <vector>

#include "vk/context.hpp"
#include "vk/recorder.hpp"

namespace moevk::bench {

struct DeviceRates {
  double copy_gbps = 0;      // GB/s (1e9 bytes), read + write
  double fma_gflops = 0;     // GFLOP/s (an FMA is 2 flops)
  uint64_t copy_bytes = 0;   // size of the buffer copied
};

// Runs each probe a few times with GPU timestamps and keeps the best run.
DeviceRates measure_device(vk::Context& ctx);

// Times `record` (which records dispatches into the recorder) over `repeats` replays of one
// recording, returning per-replay GPU milliseconds (timestamps around the recorded work).
std::vector<double> time_recording(vk::Context& ctx, int repeats,
                                   const std::function<void(vk::Recorder&)>& record);

}  // namespace moevk::bench
