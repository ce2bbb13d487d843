// The tests `moevk bench` runs, as llama-bench plans them from its lists: -p 512,1024 (a pp test
// per prompt length), -n 128 (a tg test per generation length), -pg 512,128 (prompt then
// generation, timed together) and -d 0,4096 (each of them again after that many tokens already
// in the context). Kept apart from the timing loop so the plan is tested on its own.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "moevk.h"

namespace moevk_cli {

struct BenchTest {
  uint32_t n_prompt = 0;  // tokens decoded in one moevk_decode (pp), or the prompt of a pg test
  uint32_t n_gen = 0;     // tokens generated one at a time (tg, pg)
  uint32_t n_depth = 0;   // tokens in the context before the test (not timed)

  bool is_pp() const { return n_gen == 0; }
  bool is_tg() const { return n_gen > 0 && n_prompt == 0; }
  bool is_pg() const { return n_gen > 0 && n_prompt > 0; }
  // llama-bench's names: "pp512", "tg128", "pp512+tg128", with " @ d4096" at a depth.
  std::string name() const;
  // Positions the test fills: the depth, the prompt (tg: the one token it starts from) and one
  // per generated token (the last streamed token stays pending, moevk.h, but is counted).
  uint64_t positions() const;
};

struct BenchPlanOptions {
  std::vector<uint32_t> n_prompt{512};
  std::vector<uint32_t> n_gen{128};
  std::vector<std::pair<uint32_t, uint32_t>> pg;  // (prompt, gen) pairs
  std::vector<uint32_t> n_depth{0};
};

// Depth by depth (each depth's tokens are decoded once per context and kept for its tests):
// the pp tests in list order, then tg, then pg. Zero lengths in -p / -n make no test; repeated
// values make one.
std::vector<BenchTest> plan_bench(const BenchPlanOptions& o);

// "512,1024" -> {512, 1024}; each a decimal in [min, max]. Throws std::runtime_error naming
// `option` for an empty list or a bad entry.
std::vector<uint32_t> parse_uint_list(const std::string& text, const char* option, uint32_t min, uint32_t max);

// A context and how many of the -d tokens its first positions hold: a test appends after them,
// and the next test overwrites what it appended, so only that prefix is ever reused.
struct DepthHeld {
  moevk_context* ctx = nullptr;
  uint32_t depth = 0;
};
// Leaves h.ctx holding exactly depth_tokens[0, d): a reset for 0, a truncation where it holds at
// least d of them already, else they are decoded afresh (untimed, as llama-bench's -d; once per
// depth when a context's tests go depth by depth). d <= depth_tokens.size(). On an error h holds
// none (the context's message says what failed).
moevk_status go_to_depth(DepthHeld& h, uint32_t d, const std::vector<int32_t>& depth_tokens);

}  // namespace moevk_cli
