#include "support/gpu.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace moevk::test {

std::shared_ptr<vk::Context> make_context(const std::string& disable) {
  vk::ContextOptions opt;
  opt.validation = true;
  opt.disable = disable;
  return vk::Context::create(opt);
}

void expect_no_validation_messages(vk::Context& ctx) {
  auto messages = ctx.instance().validation_messages();
  EXPECT_TRUE(messages.empty()) << messages.size() << " validation message(s), first: "
                                << (messages.empty() ? "" : messages.front());
}

vk::Buffer poisoned(vk::Context& ctx, uint64_t bytes, const std::string& what) {
  vk::Buffer b = ctx.create_buffer(bytes, vk::BufferKind::Device, what);
  std::vector<uint32_t> fill((b.size() + 3) / 4, kPoison);
  ctx.upload(b.range(), fill.data(), b.size());
  return b;
}

void run_once(vk::Context& ctx, const std::function<void(vk::Recorder&)>& body) {
  vk::Recorder rec(ctx);
  rec.begin();
  body(rec);
  rec.end();
  rec.submit();
}

std::vector<float> random_floats(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::vector<float> random_normal(size_t n, uint32_t seed, float stddev) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

::testing::AssertionResult all_close(const std::vector<float>& got, const std::vector<double>& want,
                                     double atol, double rtol) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "size " << got.size() << " != " << want.size();
  size_t bad = 0, worst = 0;
  double worst_excess = -1;
  for (size_t i = 0; i < got.size(); ++i) {
    double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    double allowed = atol + rtol * std::fabs(want[i]);
    if (!(err <= allowed)) {  // NaN (poison) fails too
      ++bad;
      double excess = std::isnan(err) ? 1e300 : err - allowed;
      if (excess > worst_excess) {
        worst_excess = excess;
        worst = i;
      }
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << got.size() << " elements differ (atol " << atol
                                       << ", rtol " << rtol << "); worst at [" << worst << "]: got "
                                       << got[worst] << ", want " << want[worst];
}

::testing::AssertionResult all_close(const std::vector<float>& got, const std::vector<float>& want,
                                     double atol, double rtol) {
  return all_close(got, std::vector<double>(want.begin(), want.end()), atol, rtol);
}

::testing::AssertionResult relative_l2(const std::vector<float>& got, const std::vector<double>& want, double tol) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "size " << got.size() << " != " << want.size();
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double d = got[i] - want[i];
    num += d * d;
    den += want[i] * want[i];
  }
  double rel = std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
  if (rel <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "relative L2 error " << rel << " > " << tol;
}

void GpuTest::SetUp() { ctx = make_context(); }

void GpuTest::TearDown() {
  if (ctx) expect_no_validation_messages(*ctx);
  ctx.reset();
}

}  // namespace moevk::test
