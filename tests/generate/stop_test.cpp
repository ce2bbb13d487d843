// Stop strings over streamed text.
#include <gtest/gtest.h>

#include "generate/stop.hpp"

using moevk::generate::StopStrings;

namespace {
// Feeds pieces one by one; returns everything shown and whether a stop string matched.
std::pair<std::string, bool> feed(StopStrings& s, const std::vector<std::string>& pieces) {
  std::string shown;
  bool stopped = false;
  for (const auto& p : pieces) {
    shown += s.push(p, stopped);
    if (stopped) return {shown, true};
  }
  return {shown + s.flush(), false};
}
}  // namespace

TEST(StopStrings, StopsAtAMatchSplitAcrossPieces) {
  StopStrings s({"</answer>"});
  auto [shown, stopped] = feed(s, {"The result is 42", "</ans", "wer> and more"});
  EXPECT_TRUE(stopped);
  EXPECT_EQ(shown, "The result is 42");
}

TEST(StopStrings, HoldsBackOnlyWhatCouldStartAStopString) {
  StopStrings s({"STOP"});
  bool stopped = false;
  EXPECT_EQ(s.push("abc S", stopped), "abc ");
  EXPECT_EQ(s.push("T", stopped), "");
  EXPECT_EQ(s.push("x", stopped), "STx");  // not a stop string after all: released
  EXPECT_FALSE(stopped);
}

TEST(StopStrings, UnfinishedPrefixIsReleasedAtTheEnd) {
  StopStrings s({"\n\nUser:"});
  auto [shown, stopped] = feed(s, {"hello", "\n\nUs"});
  EXPECT_FALSE(stopped);
  EXPECT_EQ(shown, "hello\n\nUs");
}

TEST(StopStrings, EarliestOfSeveralStopStringsWins) {
  StopStrings s({"world", "lo w"});
  auto [shown, stopped] = feed(s, {"hello world"});
  EXPECT_TRUE(stopped);
  EXPECT_EQ(shown, "hel");
}

TEST(StopStrings, NoStopStringsPassesEverything) {
  StopStrings s;
  auto [shown, stopped] = feed(s, {"a", "b", ""});
  EXPECT_FALSE(stopped);
  EXPECT_EQ(shown, "ab");
}
