#include "bench_plan.hpp"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "common.hpp"

namespace moevk_cli {

std::string BenchTest::name() const {
  std::string s;
  if (n_prompt > 0) s = "pp" + std::to_string(n_prompt);
  if (n_gen > 0) s += (s.empty() ? "tg" : "+tg") + std::to_string(n_gen);
  if (n_depth > 0) s += " @ d" + std::to_string(n_depth);
  return s;
}

uint64_t BenchTest::positions() const {
  return uint64_t(n_depth) + std::max<uint64_t>(n_prompt, n_gen > 0 ? 1 : 0) + n_gen;
}

std::vector<BenchTest> plan_bench(const BenchPlanOptions& o) {
  std::vector<BenchTest> tests;
  auto add = [&](const BenchTest& t) {
    if (t.n_prompt == 0 && t.n_gen == 0) return;
    for (const BenchTest& have : tests)
      if (have.n_prompt == t.n_prompt && have.n_gen == t.n_gen && have.n_depth == t.n_depth) return;
    tests.push_back(t);
  };
  for (uint32_t d : o.n_depth) {
    for (uint32_t p : o.n_prompt) add({p, 0, d});
    for (uint32_t n : o.n_gen) add({0, n, d});
    for (auto [p, n] : o.pg) add({p, n, d});
  }
  return tests;
}

std::vector<uint32_t> parse_uint_list(const std::string& text, const char* option, uint32_t min, uint32_t max) {
  std::vector<uint32_t> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');)
    out.push_back(static_cast<uint32_t>(unsigned_option(item.c_str(), option, min, max)));
  if (out.empty() || (!text.empty() && text.back() == ','))
    throw std::runtime_error(std::string("option ") + option + ": '" + text +
                             "' is not a list of integers such as 512,1024");
  return out;
}

moevk_status go_to_depth(DepthHeld& h, uint32_t d, const std::vector<int32_t>& depth_tokens) {
  const uint32_t held = h.depth;
  h.depth = 0;
  moevk_status st = MOEVK_OK;
  if (d == 0 || d > held) {
    st = moevk_context_reset(h.ctx);
    if (st == MOEVK_OK && d > 0) st = moevk_decode(h.ctx, depth_tokens.data(), d, 0);
  } else {
    st = moevk_context_truncate(h.ctx, d);
  }
  if (st == MOEVK_OK) h.depth = d;
  return st;
}

}  // namespace moevk_cli
