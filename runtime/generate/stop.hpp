// Stop strings over streamed text: text that may be the beginning of a stop string is held back
// until it is known not to be one, so a caller never sees part of a stop string.
#pragma once
#include <string>
#include <vector>

namespace moevk::generate {

class StopStrings {
 public:
  explicit StopStrings(std::vector<std::string> stops = {});
  // Adds text; returns what can be shown now. At a complete match `stopped` becomes true and
  // the stop string and anything after it are dropped.
  std::string push(const std::string& text, bool& stopped);
  // What is still held back (the end of the stream was reached without a match).
  std::string flush();

 private:
  std::vector<std::string> stops_;
  std::string pending_;
};

}  // namespace moevk::generate
