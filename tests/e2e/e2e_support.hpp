// Shared by the end-to-end tests (header-only: only *_test.cpp files are globbed here).
#pragma once
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/model.hpp"
#include "moevk.h"

namespace moevk::test {

// The Hugging Face fixtures live in the project: tests/data/hf/<name>.
inline std::string hf_fixture_dir(const std::string& name) { return std::string(MOEVK_TEST_DATA_DIR) + "/hf/" + name; }

struct HfReference {
  std::vector<int32_t> prompt, greedy;
  std::vector<float> logits;  // [prompt.size()][n_vocab]
};

inline HfReference load_hf_reference(const std::string& name) {
  std::ifstream in(hf_fixture_dir(name) + "/reference.json");
  if (!in) throw std::runtime_error("missing fixture " + hf_fixture_dir(name) + "/reference.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  HfReference r;
  r.prompt = j.at("prompt_ids").get<std::vector<int32_t>>();
  r.greedy = j.at("greedy_continuation_ids").get<std::vector<int32_t>>();
  for (const auto& row : j.at("logits"))
    for (const auto& v : row) r.logits.push_back(v.get<float>());
  return r;
}

// A file path in the temp directory, unique per process, removed at scope exit.
class TempFile {
 public:
  explicit TempFile(const std::string& name)
      : path_((std::filesystem::temp_directory_path() / ("moevk-e2e-" + std::to_string(::getpid()) + "-" + name))
                  .string()) {}
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline double relative_l2_error(const float* got, const float* want, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = double(got[i]) - double(want[i]);
    num += d * d;
    den += double(want[i]) * double(want[i]);
  }
  if (!std::isfinite(num)) return INFINITY;
  return std::sqrt(num / std::max(den, 1e-30));
}

// Validation on: any validation message of the model's context is a failure the test checks.
inline models::LoadOptions e2e_load_options() {
  models::LoadOptions o;
  o.device.validation = true;
  return o;
}

// Greedy tokens (temperature 0, end-of-generation ignored) that moevk_generate streams after
// `prompt`: n of them, the last left pending. Empty on failure, with the context's message in
// *error.
inline std::vector<int32_t> generate_greedy(moevk_context* ctx, const std::vector<int32_t>& prompt, int n,
                                            std::string* error) {
  std::vector<int32_t> tokens;
  moevk_generate_params g = moevk_generate_default_params();
  g.prompt_tokens = prompt.data();
  g.n_prompt_tokens = prompt.size();
  g.max_tokens = n;
  g.ignore_eos = 1;
  g.sampling.temperature = 0;
  g.on_token = [](const char*, size_t, int32_t token, void* user) {
    if (token >= 0) static_cast<std::vector<int32_t>*>(user)->push_back(token);
    return 0;
  };
  g.user_data = &tokens;
  if (moevk_generate(ctx, &g, nullptr) != MOEVK_OK) {
    *error = moevk_context_last_error(ctx);
    return {};
  }
  return tokens;
}

}  // namespace moevk::test
