#include "bench/probe.hpp"

#include <algorithm>

#include "common/error.hpp"

namespace moevk::bench {

std::vector<double> time_recording(vk::Context& ctx, int repeats, const std::function<void(vk::Recorder&)>& record) {
  if (!ctx.caps().timestamps)
    throw Error(MOEVK_ERROR_UNSUPPORTED, ctx.caps().name + " has no compute-queue timestamps to time kernels with");
  vk::Recorder rec(ctx, 2);
  rec.begin();
  rec.timestamp();
  record(rec);
  rec.timestamp();
  rec.end();
  rec.submit();  // warm-up: first-use costs (pipeline compile, page faults) are not measured
  std::vector<double> ms;
  for (int i = 0; i < repeats; ++i) {
    rec.submit();
    auto ts = rec.timestamps_ms();
    ms.push_back(ts.at(1) - ts.at(0));
  }
  return ms;
}

DeviceRates measure_device(vk::Context& ctx) {
  DeviceRates r;
  const auto& caps = ctx.caps();
  uint64_t bytes = 256ull << 20;
  bytes = std::min<uint64_t>(bytes, caps.max_storage_buffer_range & ~0xFFFull);
  bytes = std::min<uint64_t>(bytes, caps.max_memory_allocation_size / 2);
  if (caps.is_cpu()) bytes = std::min<uint64_t>(bytes, 32ull << 20);  // lavapipe: keep it short
  r.copy_bytes = bytes;
  auto src = ctx.create_buffer(bytes, vk::BufferKind::Device, "bandwidth probe source");
  auto dst = ctx.create_buffer(bytes, vk::BufferKind::Device, "bandwidth probe destination");
  const uint32_t wg = 256;
  const auto& copy = ctx.pipeline({"bench_copy", 2, 4, {wg}});
  const uint32_t n = static_cast<uint32_t>(bytes / 16);
  const uint32_t groups = std::min<uint32_t>((n + wg - 1) / wg, 65535);
  {
    vk::Recorder init(ctx);  // defined contents, so the copy reads initialised memory
    init.begin();
    init.fill(src.range(), 0x3f800000u);
    init.end();
    init.submit();
  }
  auto ms = time_recording(ctx, caps.is_cpu() ? 2 : 10, [&](vk::Recorder& rec) {
    rec.dispatch(copy, {src.range(), dst.range()}, n, groups);
  });
  double best = *std::min_element(ms.begin(), ms.end());
  if (best > 0) r.copy_gbps = 2.0 * bytes / (best * 1e-3) / 1e9;

  const uint32_t fma_groups = caps.is_cpu() ? 16 : 4096;
  const uint32_t iters = caps.is_cpu() ? 64 : 4096;
  auto out = ctx.create_buffer(uint64_t(fma_groups) * wg * 4, vk::BufferKind::Device, "fma probe output");
  const auto& fma = ctx.pipeline({"bench_fma_peak", 1, 12, {wg}});
  struct {
    uint32_t iters;
    float a, b;
  } push{iters, 0.999f, 0.001f};
  auto fms = time_recording(ctx, caps.is_cpu() ? 2 : 10,
                            [&](vk::Recorder& rec) { rec.dispatch(fma, {out.range()}, push, fma_groups); });
  double fbest = *std::min_element(fms.begin(), fms.end());
  const double flops = double(fma_groups) * wg * iters * 16 * 2;
  if (fbest > 0) r.fma_gflops = flops / (fbest * 1e-3) / 1e9;
  return r;
}

}  // namespace moevk::bench
