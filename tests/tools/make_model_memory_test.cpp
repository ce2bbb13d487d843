// `moevk make-model` streams: rows are generated, quantized and written chunk by chunk, so its
// memory must not grow with the model. This runs the command as a user would, at a shape whose
// file (~200 MB) and largest tensor (the stacked experts, 92 MB as f32) are each above the bound,
// and reads the child's peak RSS: buffering any whole tensor, or the file, fails it.
// The peak is the child's VmHWM (/proc/<pid>/status), read every few milliseconds while it runs
// (it only grows, so the last reading is the peak but for growth in the final milliseconds),
// not wait4()'s ru_maxrss: posix_spawn's child shares this process's memory until it execs, and
// Linux keeps that memory's high-water mark in ru_maxrss, so in a test process that has already
// loaded models (all of test_tools run in one process, outside CTest) it reported this
// process's size, not the command's.
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

struct ChildResult {
  int exit_code = -1;
  long peak_rss_kib = 0;  // the largest VmHWM read, KiB
  int readings = 0;       // VmHWM readings taken
};

// VmHWM of a live process, KiB; -1 once it has no memory (a zombie) or is gone.
long vm_hwm_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

ChildResult run_quietly(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);  // the summary
  pid_t pid = 0;
  ChildResult result;
  const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return result;
  int status = 0;
  for (;;) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0) return result;
    const long hwm = vm_hwm_kib(pid);
    if (hwm >= 0) {
      result.peak_rss_kib = std::max(result.peak_rss_kib, hwm);
      ++result.readings;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

TEST(MakeModelMemory, PeakRssStaysBoundedWhileTheFileIsLarger) {
  const std::filesystem::path out =
      std::filesystem::temp_directory_path() / ("moevk-rss-" + std::to_string(::getpid()) + ".gguf");
  // 4 layers, 1024 wide, 8 experts of width 2816, vocab 32000: ~340M parameters, ~200 MB as q4_0.
  const ChildResult r = run_quietly({MOEVK_CLI_PATH, "make-model", "--preset", "tiny", "--layers", "4", "--embd",
                                     "1024", "--ff", "2816", "--experts", "8", "--heads", "8", "--heads-kv", "2",
                                     "--vocab", "32000", "--type", "q4_0", "-o", out.string(), "--no-progress"});
  std::error_code ec;
  const uint64_t file_bytes = std::filesystem::file_size(out, ec);
  std::filesystem::remove(out, ec);
  ASSERT_EQ(r.exit_code, 0) << "moevk make-model failed";
  EXPECT_GT(file_bytes, 150ull << 20);
  // Writing 200 MB takes seconds: many readings, the peak among them.
  ASSERT_GE(r.readings, 20) << "too few readings of the child's memory to trust the peak";
  // Measured ~12 MB: the program, the two writer threads' chunk buffers, the vocabulary.
  constexpr long kBoundKib = 64 * 1024;
  EXPECT_LT(r.peak_rss_kib, kBoundKib) << "peak RSS " << r.peak_rss_kib / 1024 << " MiB for a "
                                       << (file_bytes >> 20) << " MiB file";
}

}  // namespace
