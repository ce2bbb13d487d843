// The Vulkan layer: device choice, capability report, buffers, transfers, pipeline cache, errors.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/error.hpp"
#include "ops/reduce.hpp"
#include "support/gpu.hpp"
#include "support/scoped_env.hpp"

using namespace moevk;
using moevk::test::GpuTest;

TEST_F(GpuTest, ReportsCapabilities) {
  const auto& c = ctx->caps();
  EXPECT_FALSE(c.name.empty());
  EXPECT_GE(c.api_version, static_cast<uint32_t>(VK_API_VERSION_1_2));
  EXPECT_GT(c.subgroup_size, 0u);
  EXPECT_GT(c.max_storage_buffer_range, 0u);
  EXPECT_GT(c.max_memory_allocation_size, 0u);
  EXPECT_GE(c.max_shared_memory, 16384u);
  EXPECT_FALSE(c.heaps.empty());
  EXPECT_TRUE(ctx->instance().validation());
  // Timestamps are described for the queue family the context submits to.
  ASSERT_GE(c.compute_queue_family, 0);
  EXPECT_EQ(ctx->queue_family(), static_cast<uint32_t>(c.compute_queue_family));
  EXPECT_EQ(c.timestamps, c.timestamp_valid_bits > 0);
  EXPECT_LE(c.timestamp_valid_bits, 64u);
  if (!c.coopmat_khr) {
    EXPECT_TRUE(c.coopmat_khr_types.empty());
  }
}

TEST_F(GpuTest, RecordersOnTwoThreadsShareOneContext) {
  // Contexts of one model record and submit on their own threads; each Recorder owns its command
  // and descriptor pools, so only the queue (under the Context's lock) is shared. The validation
  // layer's thread-safety checks report any pool used from two threads at once.
  constexpr uint32_t n = 1024;
  constexpr int kRepeats = 500;
  float sums[2] = {};
  std::string errors[2];
  {
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        try {
          ops::ReduceSum op(*ctx);
          auto in = test::upload(*ctx, std::vector<float>(n, float(t + 1)));
          auto scratch = test::poisoned(*ctx, ops::ReduceSum::scratch_bytes(n));
          auto out = test::poisoned(*ctx, 4);
          for (int i = 0; i < kRepeats; ++i) {
            vk::Recorder rec(*ctx, 2);  // a new recorder each time: pools made and freed concurrently
            rec.begin();
            rec.timestamp();
            op.record(rec, in.range(), scratch.range(), out.range(), n);
            rec.timestamp();
            rec.end();
            rec.submit();
            rec.timestamps_ms();
          }
          sums[t] = test::download<float>(*ctx, out, 1)[0];
        } catch (const std::exception& e) {
          errors[t] = e.what();
        }
      });
    }
    for (auto& th : threads) th.join();
  }
  for (int t = 0; t < 2; ++t) {
    EXPECT_TRUE(errors[t].empty()) << errors[t];
    EXPECT_FLOAT_EQ(sums[t], float(t + 1) * n);
  }
}

TEST_F(GpuTest, UploadDownloadRoundTripAcrossStagingChunks) {
  // 5 chunks of 16 MiB and an odd tail: uploads alternate between two staging chunks, so each is
  // refilled while the other's copy runs; the data must survive every reuse of both (a refill
  // before its own copy finished would corrupt it: on lavapipe, whose copies finish long before,
  // only where the wait is missing altogether, as a command buffer and fence the validation
  // layer sees in use).
  // The odd tail checks the last partial chunk.
  const size_t n = (72u << 20) + 3;
  std::vector<uint8_t> data(n);
  for (size_t i = 0; i < n; ++i) data[i] = static_cast<uint8_t>(i * 2654435761u >> 13);
  auto b = ctx->create_buffer(n, vk::BufferKind::Device, "round trip");
  ctx->upload(b.range(), data.data(), n);
  std::vector<uint8_t> back(n, 0xEE);
  ctx->download(b.range(), back.data(), n);
  EXPECT_EQ(data, back);
}

TEST_F(GpuTest, UploadFromAFillWritesWholeGranulesIntoStaging) {
  // The loader's path for weights converted on the way (ops::to_device_layout): the fill writes
  // each piece straight into staging memory, pieces are whole granules (rows) but the last, in
  // order and without gaps, over both staging chunks.
  const uint64_t granule = 1000, n = (40ull << 20) + 123;
  auto b = ctx->create_buffer(n, vk::BufferKind::Device, "filled upload");
  auto value = [](uint64_t i) { return static_cast<uint8_t>((i * 7) % 251); };
  uint64_t expect_at = 0;
  int pieces = 0;
  ctx->upload(b.range(), n, granule, [&](uint8_t* out, uint64_t at, uint64_t len) {
    EXPECT_EQ(at, expect_at);
    if (at + len < n) {
      EXPECT_EQ(len % granule, 0u) << "piece at " << at;
    }
    for (uint64_t i = 0; i < len; ++i) out[i] = value(at + i);
    expect_at = at + len;
    ++pieces;
  });
  EXPECT_EQ(expect_at, n);
  EXPECT_EQ(pieces, 3);  // 16 MiB pieces rounded down to whole granules
  std::vector<uint8_t> back(n, 0xEE);
  ctx->download(b.range(), back.data(), n);
  for (uint64_t i = 0; i < n; ++i)
    if (back[i] != value(i)) FAIL() << "byte " << i << ": " << int(back[i]) << " != " << int(value(i));
  // A granule beyond the staging chunk is refused with a message, not split mid-row.
  EXPECT_THROW(ctx->upload(b.range(), n, vk::Context::kUploadGranuleLimit + 1, [](uint8_t*, uint64_t, uint64_t) {}),
               Error);
}

TEST_F(GpuTest, ReduceSumMatchesReference) {
  for (uint32_t n : {1u, 3u, 255u, 257u, 1000u, 65537u}) {
    auto x = test::random_floats(n, n);
    double want = 0;
    for (float v : x) want += v;
    auto in = test::upload(*ctx, x);
    auto scratch = test::poisoned(*ctx, ops::ReduceSum::scratch_bytes(n));
    auto out = test::poisoned(*ctx, 4);
    ops::ReduceSum op(*ctx);
    test::run_once(*ctx, [&](vk::Recorder& r) { op.record(r, in.range(), scratch.range(), out.range(), n); });
    auto got = test::download<float>(*ctx, out, 1);
    EXPECT_NEAR(got[0], want, 1e-4 * std::max(1.0, std::sqrt(double(n)))) << "n=" << n;
  }
}

TEST_F(GpuTest, RecordingReplaysWithNewInputs) {
  const uint32_t n = 1000;
  auto in = test::upload(*ctx, std::vector<float>(n, 1.0f));
  auto scratch = test::poisoned(*ctx, ops::ReduceSum::scratch_bytes(n));
  auto out = test::poisoned(*ctx, 4);
  ops::ReduceSum op(*ctx);
  vk::Recorder rec(*ctx, 4);
  rec.begin();
  rec.timestamp();
  op.record(rec, in.range(), scratch.range(), out.range(), n);
  rec.timestamp();
  rec.end();
  for (float v : {1.0f, 2.5f, -3.0f}) {
    std::vector<float> x(n, v);
    ctx->upload(in.range(), x.data(), n * 4);
    rec.submit();
    EXPECT_NEAR(test::download<float>(*ctx, out, 1)[0], v * n, 1e-3);
  }
  auto ts = rec.timestamps_ms();
  if (ctx->caps().timestamps) {
    ASSERT_EQ(ts.size(), 2u);
    EXPECT_GE(ts[1], ts[0]);
  }
}

TEST_F(GpuTest, BarrierRightAfterABarrierIsNotRecorded) {
  // A second barrier with nothing between (timestamps aside) orders nothing more; one with a
  // dispatch, copy or fill between is recorded; the first of a recording always is (it orders
  // the recording after earlier submissions). The work stays right: a chain of reductions each
  // reading the previous output.
  const uint32_t n = 300;
  auto in = test::upload(*ctx, std::vector<float>(n, 2.0f));
  auto scratch = test::poisoned(*ctx, ops::ReduceSum::scratch_bytes(n));
  auto out = test::poisoned(*ctx, 4), copy = test::poisoned(*ctx, 4);
  ops::ReduceSum op(*ctx);
  vk::Recorder rec(*ctx, 4);
  rec.begin();
  rec.barrier();
  EXPECT_EQ(rec.barrier_count(), 1u);
  rec.barrier();
  rec.timestamp();
  rec.barrier();
  EXPECT_EQ(rec.barrier_count(), 1u);
  op.record(rec, in.range(), scratch.range(), out.range(), n);
  rec.barrier();
  rec.barrier();
  const uint32_t after_dispatch = rec.barrier_count();
  EXPECT_GE(after_dispatch, 2u);
  rec.copy(out.range(), copy.range(), 4);
  rec.barrier();
  EXPECT_EQ(rec.barrier_count(), after_dispatch + 1);
  rec.fill(out.range(), 0u);
  rec.barrier();
  EXPECT_EQ(rec.barrier_count(), after_dispatch + 2);
  rec.end();
  rec.submit();
  EXPECT_EQ(test::download<float>(*ctx, copy, 1)[0], 2.0f * n);
  EXPECT_EQ(test::download<float>(*ctx, out, 1)[0], 0.0f);
  rec.begin();
  rec.barrier();
  EXPECT_EQ(rec.barrier_count(), 1u);  // a new recording starts afresh
  rec.end();
}

TEST_F(GpuTest, AllocationBeyondTheDeviceLimitIsAClearError) {
  const uint64_t too_big = ctx->caps().max_memory_allocation_size + (1ull << 20);
  try {
    ctx->create_buffer(too_big, vk::BufferKind::Device, "a tensor too large");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_OUT_OF_DEVICE_MEMORY);
    EXPECT_NE(std::string(e.what()).find("a tensor too large"), std::string::npos) << e.what();
  }
  // The context stays usable.
  auto b = ctx->create_buffer(64, vk::BufferKind::Device, "small");
  EXPECT_TRUE(b.valid());
}

TEST_F(GpuTest, BindingLargerThanMaxStorageBufferRangeIsRejected) {
  const uint64_t range = ctx->caps().max_storage_buffer_range;
  if (range >= ctx->caps().max_memory_allocation_size) GTEST_SKIP() << "device allows any range";
  auto big = ctx->create_buffer(range + 16, vk::BufferKind::Device, "big");
  auto out = ctx->create_buffer(1024, vk::BufferKind::Device, "out");
  ops::ReduceSum op(*ctx);
  vk::Recorder rec(*ctx);
  rec.begin();
  try {
    op.record(rec, big.range(), out.range(), out.range(), 16);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_UNSUPPORTED);
    EXPECT_NE(std::string(e.what()).find("maxStorageBufferRange"), std::string::npos);
  }
  rec.end();
}

TEST(DeviceChoice, UnknownNameListsDevices) {
  vk::ContextOptions opt;
  opt.device = "no-such-gpu-xyz";
  try {
    vk::Context::create(opt);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_NO_DEVICE);
    EXPECT_NE(std::string(e.what()).find("no-such-gpu-xyz"), std::string::npos);
  }
}

TEST(DeviceChoice, IndexTooLargeForAnyDeviceIsNoDevice) {
  // Larger than uint32 and than unsigned long: once an uncaught out_of_range (INTERNAL).
  const std::string huge = "99999999999999999999999";
  auto expect_no_device = [&](const vk::ContextOptions& opt) {
    try {
      vk::Context::create(opt);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), MOEVK_ERROR_NO_DEVICE) << e.what();
      EXPECT_NE(std::string(e.what()).find(huge), std::string::npos) << e.what();
    }
  };
  vk::ContextOptions opt;
  opt.device = huge;
  expect_no_device(opt);
  test::ScopedEnv device("MOEVK_DEVICE", huge);
  expect_no_device(vk::ContextOptions{});
  device.set("4294967296");  // 2^32: would wrap to index 0 in a uint32
  try {
    vk::Context::create({});
    ADD_FAILURE() << "2^32 chose a device";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_NO_DEVICE) << e.what();
  }
}

TEST(DeviceChoice, ByIndexAndByName) {
  auto inst = vk::Instance::create(true);
  auto devices = inst->describe_devices();
  ASSERT_FALSE(devices.empty());
  vk::ContextOptions opt;
  opt.validation = true;
  opt.device = std::to_string(devices.back().index);
  auto a = vk::Context::create(opt);
  EXPECT_EQ(a->caps().name, devices.back().name);
  opt.device = devices.front().name.substr(0, 4);
  auto b = vk::Context::create(opt);
  EXPECT_NE(b->caps().name.find(opt.device), std::string::npos);
  test::expect_no_validation_messages(*a);
}

TEST(PipelineCache, CorruptOrForeignCacheFilesAreIgnored) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("moevk-cache-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  ::setenv("MOEVK_CACHE_DIR", dir.c_str(), 1);
  std::string path;
  {
    auto ctx = test::make_context();
    path = ctx->pipeline_cache_path();
    ops::ReduceSum op(*ctx);  // creates a pipeline, so the cache is written at teardown
  }
  ASSERT_TRUE(fs::exists(path)) << path;
  for (int variant = 0; variant < 3; ++variant) {
    {
      std::ofstream f(path, std::ios::binary | std::ios::trunc);
      if (variant == 0) f << "garbage";
      if (variant == 1) {  // a plausible header of another vendor
        uint32_t header[4] = {32, 1, 0x1234, 0x5678};
        f.write(reinterpret_cast<const char*>(header), sizeof header);
        f << std::string(64, 'x');
      }
      // variant 2: empty file
    }
    auto ctx = test::make_context();
    ops::ReduceSum op(*ctx);
    auto in = test::upload(*ctx, std::vector<float>(10, 2.0f));
    auto scratch = test::poisoned(*ctx, ops::ReduceSum::scratch_bytes(10));
    auto out = test::poisoned(*ctx, 4);
    test::run_once(*ctx, [&](vk::Recorder& r) { op.record(r, in.range(), scratch.range(), out.range(), 10); });
    EXPECT_FLOAT_EQ(test::download<float>(*ctx, out, 1)[0], 20.0f);
    test::expect_no_validation_messages(*ctx);
  }
  fs::remove_all(dir);
}

TEST(Validation, LayerReportsMisuseToTheInstance) {
  // Proves the messenger is live: every other test relies on it to fail on validation messages.
  auto ctx = test::make_context();
  ASSERT_TRUE(ctx->instance().validation());
  auto b = ctx->create_buffer(64, vk::BufferKind::Device, "misuse");
  vk::Recorder rec(*ctx);
  rec.begin();
  vk::BufferRange unaligned = b.range(2, 8);  // vkCmdFillBuffer requires a 4-byte aligned offset
  rec.fill(unaligned, 0);
  rec.end();
  EXPECT_FALSE(ctx->instance().validation_messages().empty());
  ctx->instance().clear_validation_messages();
}

TEST(DeviceLoss, LostContextFailsClearlyAndOthersKeepWorking) {
  vk::ContextOptions opt;
  opt.validation = true;
  opt.simulate_device_loss_after = 1;
  auto doomed = vk::Context::create(opt);
  auto healthy = test::make_context();
  auto run_sum = [](vk::Context& ctx) {
    ops::ReduceSum op(ctx);
    auto in = test::upload(ctx, std::vector<float>(100, 1.0f));
    auto scratch = test::poisoned(ctx, ops::ReduceSum::scratch_bytes(100));
    auto out = test::poisoned(ctx, 4);
    test::run_once(ctx, [&](vk::Recorder& r) { op.record(r, in.range(), scratch.range(), out.range(), 100); });
    return test::download<float>(ctx, out, 1)[0];
  };
  EXPECT_FLOAT_EQ(run_sum(*doomed), 100.0f);  // the first submit succeeds
  try {
    run_sum(*doomed);
    FAIL() << "expected DEVICE_LOST";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_DEVICE_LOST);
    EXPECT_NE(std::string(e.what()).find("lost"), std::string::npos);
  }
  EXPECT_TRUE(doomed->lost());
  // Every later use of the lost context fails the same way, without crashing.
  try {
    doomed->create_buffer(16, vk::BufferKind::Device, "after loss");
    FAIL() << "expected DEVICE_LOST";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_DEVICE_LOST);
  }
  EXPECT_FLOAT_EQ(run_sum(*healthy), 100.0f);
  test::expect_no_validation_messages(*healthy);
}

TEST_F(GpuTest, PipelineBindingMoreStorageBuffersThanTheDeviceAllowsIsAClearError) {
  // Vulkan guarantees 4 storage buffers per shader; moevk's kernels bind up to 8. A pipeline
  // asking for more than the device's limit is refused before any layout is made.
  const uint32_t limit = ctx->caps().max_per_stage_storage_buffers;
  ASSERT_GE(limit, 8u) << "every kernel of moevk binds at most 8";
  try {
    ctx->pipeline({"reduce_sum_f32", limit + 1, 0, {}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_UNSUPPORTED);
    EXPECT_NE(std::string(e.what()).find("storage buffers"), std::string::npos) << e.what();
  }
}
