// Helpers shared by GPU tests: a validated Context per test, buffers from vectors, poisoning,
// one-shot recording, and tolerant comparison with readable failure reports.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "vk/context.hpp"
#include "vk/recorder.hpp"

namespace moevk::test {

// A context on the default device (lavapipe here) with the validation layer on.
std::shared_ptr<vk::Context> make_context(const std::string& disable = "");

// Fails the current test when the validation layer reported anything since creation.
void expect_no_validation_messages(vk::Context& ctx);

// The poison written over outputs before a run: a NaN bit pattern, so an element the kernel
// forgets to write fails any comparison.
constexpr uint32_t kPoison = 0x7FBADBADu;

template <class T>
vk::Buffer upload(vk::Context& ctx, const std::vector<T>& data, const std::string& what = "test input") {
  vk::Buffer b = ctx.create_buffer(std::max<uint64_t>(data.size() * sizeof(T), 4), vk::BufferKind::Device, what);
  if (!data.empty()) ctx.upload(b.range(), data.data(), data.size() * sizeof(T));
  return b;
}

// A device buffer of `bytes`, filled with kPoison.
vk::Buffer poisoned(vk::Context& ctx, uint64_t bytes, const std::string& what = "test output");

template <class T>
std::vector<T> download(vk::Context& ctx, const vk::Buffer& b, size_t count) {
  std::vector<T> out(count);
  if (count) ctx.download(b.range(), out.data(), count * sizeof(T));
  return out;
}

// Records with `body`, submits once and waits.
void run_once(vk::Context& ctx, const std::function<void(vk::Recorder&)>& body);

std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f);
std::vector<float> random_normal(size_t n, uint32_t seed, float stddev = 1.0f);

// |got - want| <= atol + rtol * |want| for every element; reports the worst elements.
::testing::AssertionResult all_close(const std::vector<float>& got, const std::vector<double>& want,
                                     double atol, double rtol);
::testing::AssertionResult all_close(const std::vector<float>& got, const std::vector<float>& want,
                                     double atol, double rtol);
// ||got - want|| / ||want|| <= tol
::testing::AssertionResult relative_l2(const std::vector<float>& got, const std::vector<double>& want, double tol);

// Base fixture: ctx on the default device with validation; fails at teardown on any message.
class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  std::shared_ptr<vk::Context> ctx;
};

}  // namespace moevk::test
