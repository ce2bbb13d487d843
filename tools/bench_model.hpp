// `moevk bench -m FILE`: end-to-end speed in the style of llama-bench (bench_plan.hpp's tests),
// through the public C API only.
#pragma once

namespace moevk_cli {

// argv[0] is "bench". Returns the exit status; throws std::runtime_error for a bad option.
int bench_model(int argc, char** argv);

}  // namespace moevk_cli
