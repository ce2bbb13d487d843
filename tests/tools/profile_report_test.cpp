// The profile arithmetic of `moevk bench --profile` (tools/profile_report): a row's profile is the
// difference of two snapshots of its context's totals, and a stage table's missing half is a
// profile of no steps.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "profile_report.hpp"

namespace moevk_cli {
namespace {

nlohmann::json snapshot(int64_t steps, int64_t tokens, double gpu_ms, double attention_ms) {
  nlohmann::json kind = {{"steps", steps}, {"tokens", tokens}, {"gpu_ms", gpu_ms},
                         {"stage_ms", {{"attention", attention_ms}, {"experts", 2 * attention_ms}}},
                         {"dispatches_per_step", 21}};
  return {{"enabled", true}, {"decode", kind}, {"prefill", kind}};
}

TEST(ProfileReport, BetweenTwoSnapshotsIsTheirDifference) {
  const nlohmann::json d = profile_between(snapshot(2, 2, 10.0, 3.0), snapshot(6, 10, 30.0, 7.0))["decode"];
  EXPECT_EQ(d["steps"], 4);
  EXPECT_EQ(d["tokens"], 8);
  EXPECT_DOUBLE_EQ(d["gpu_ms"].get<double>(), 20.0);
  EXPECT_DOUBLE_EQ(d["gpu_ms_per_token"].get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(d["stage_ms"]["attention"].get<double>(), 4.0);
  EXPECT_DOUBLE_EQ(d["stage_ms_per_token"]["experts"].get<double>(), 1.0);
  EXPECT_EQ(d["dispatches_per_step"], 21);  // the latest step's count, not a difference
}

TEST(ProfileReport, EmptyProfileKeepsTheStagesAtZero) {
  const nlohmann::json e = empty_profile(snapshot(6, 10, 30.0, 7.0));
  for (const char* kind : {"decode", "prefill"}) {
    SCOPED_TRACE(kind);
    EXPECT_EQ(e[kind]["steps"], 0);
    EXPECT_EQ(e[kind]["tokens"], 0);
    EXPECT_DOUBLE_EQ(e[kind]["gpu_ms"].get<double>(), 0.0);
    EXPECT_DOUBLE_EQ(e[kind]["gpu_ms_per_token"].get<double>(), 0.0);
    ASSERT_TRUE(e[kind]["stage_ms"].contains("attention"));
    EXPECT_DOUBLE_EQ(e[kind]["stage_ms"]["experts"].get<double>(), 0.0);
  }
  EXPECT_TRUE(e["enabled"].get<bool>());
}

}  // namespace
}  // namespace moevk_cli
