// ExpertHistogram: counts accumulate across calls, land in the right layer's slice, and leave
// every other counter untouched.
#include <gtest/gtest.h>

#include <random>

#include "ops/expert_histogram.hpp"
#include "support/gpu.hpp"

using namespace moevk;
using moevk::test::GpuTest;

TEST_F(GpuTest, ExpertHistogramCountsPerLayerAndAccumulates) {
  const uint32_t n_layer = 3, n_expert = 13;
  ops::ExpertHistogram op(*ctx);
  std::vector<uint32_t> want(n_layer * n_expert, 7);  // start from a non-zero state
  auto counts = test::upload(*ctx, want);
  std::mt19937 rng(5);
  // n_ids not multiples of the workgroup; several calls per layer to check accumulation.
  for (uint32_t n_ids : {1u, 3u, 17u, 130u, 255u}) {
    const uint32_t layer = n_ids % n_layer;
    std::vector<uint32_t> ids(n_ids);
    for (auto& id : ids) id = rng() % n_expert;
    ids[0] = n_expert + 4;  // out of range: must be ignored, not spill into the next layer
    for (size_t i = 1; i < ids.size(); ++i) want[layer * n_expert + ids[i]]++;
    auto ids_buf = test::upload(*ctx, ids);
    test::run_once(*ctx, [&](vk::Recorder& r) {
      op.record(r, ids_buf.range(), counts.range(), n_ids, n_expert, layer * n_expert);
    });
  }
  EXPECT_EQ(test::download<uint32_t>(*ctx, counts, want.size()), want);
}
