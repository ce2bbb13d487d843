// End to end against Hugging Face: each tiny checkpoint (tests/data/hf/<name>, made by
// transformers in float32, see its README) is converted by our converter to F32, F16, Q8_0 and
// Q4_0, loaded, and run. Checks: prompt logits per position against HF's (relative L2 error),
// the greedy continuation (exact at F32/F16), chunked prefill == one-shot prefill, and
// one-token-at-a-time decode == prefill.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "convert/convert.hpp"
#include "e2e/cpu_reference.hpp"
#include "e2e/e2e_support.hpp"
#include "generate/session.hpp"
#include "models/model.hpp"

using namespace moevk;
using generate::LogitsMode;
using generate::Session;
using generate::SessionOptions;

namespace {

// Tolerances on max over positions of ||ours - HF|| / ||HF||, from the measured values (in the
// table below) with margin. F32: only summation order differs. F16/Q8_0/Q4_0: the weights'
// rounding, through 2-3 layers with routing.
//   measured (lavapipe):          F32        F16        Q8_0       Q4_0
//   mixtral-tiny                  MEAS       MEAS       MEAS       MEAS
//   qwen2moe-tiny                 MEAS       MEAS       MEAS       MEAS
//   qwen3moe-tiny                 MEAS       MEAS       MEAS       MEAS
double tolerance(quant::Type t) {
  switch (t) {
    case quant::Type::F32: return 1e-4;
    case quant::Type::F16: return 3e-3;
    case quant::Type::Q8_0: return 2e-2;
    default: return 1.5e-1;
  }
}

// Consistency of our own paths (chunked vs one-shot prefill, decode vs prefill): the same
// weights, only kernel choice (matrix-vector vs tiled, split-K attention) and summation order
// differ.
constexpr double kSelfConsistency = 1e-4;

const quant::Type kTypes[] = {quant::Type::F32, quant::Type::F16, quant::Type::Q8_0, quant::Type::Q4_0};

struct Row {
  std::string type;
  double max_err = 0;
  int greedy_matched = 0;
  double chunked_err = 0, decode_err = 0;
  double cpu_vs_hf = 0, gpu_vs_cpu = 0;  // where a mismatch comes from: converter or runtime
};

std::vector<float> decode_all(const models::Model& model, const std::vector<int32_t>& prompt, uint32_t n_batch) {
  Session s(model, SessionOptions{64, n_batch, false});
  s.decode(prompt, LogitsMode::All);
  std::vector<float> out;
  for (size_t i = 0; i < prompt.size(); ++i) {
    auto row = s.logits(int32_t(i));
    out.insert(out.end(), row.begin(), row.end());
  }
  return out;
}

void run_architecture(const std::string& name) {
  const test::HfReference ref = test::load_hf_reference(name);
  const uint32_t n_vocab = uint32_t(ref.logits.size() / ref.prompt.size());
  std::vector<Row> table;
  for (quant::Type type : kTypes) {
    SCOPED_TRACE(name + " " + quant::type_info(type).name);
    test::TempFile gguf(name + "-" + quant::type_info(type).name + ".gguf");
    convert::convert_hf(test::hf_fixture_dir(name), gguf.path(), type, {});
    auto model = models::Model::load(gguf.path(), test::e2e_load_options());
    ASSERT_EQ(model->hparams().n_vocab, n_vocab);
    Row row;
    row.type = quant::type_info(type).name;

    // Prompt logits against HF, one-shot prefill.
    const std::vector<float> ours = decode_all(*model, ref.prompt, 32);
    for (size_t p = 0; p < ref.prompt.size(); ++p) {
      const double err = test::relative_l2_error(&ours[p * n_vocab], &ref.logits[p * n_vocab], n_vocab);
      row.max_err = std::max(row.max_err, err);
    }
    EXPECT_LE(row.max_err, tolerance(type));

    // The CPU reference on the same file splits the error: converter (CPU vs HF) or GPU runtime
    // (GPU vs CPU, which sees the same rounded weights).
    {
      test::CpuReference cpu(gguf.path());
      const std::vector<double> ref_cpu = cpu.forward(ref.prompt);
      std::vector<float> cpu_f(ref_cpu.begin(), ref_cpu.end());
      for (size_t p = 0; p < ref.prompt.size(); ++p) {
        row.cpu_vs_hf = std::max(row.cpu_vs_hf, test::relative_l2_error(&cpu_f[p * n_vocab], &ref.logits[p * n_vocab], n_vocab));
        row.gpu_vs_cpu = std::max(row.gpu_vs_cpu, test::relative_l2_error(&ours[p * n_vocab], &cpu_f[p * n_vocab], n_vocab));
      }
      if (type == quant::Type::F32) EXPECT_LE(row.cpu_vs_hf, 1e-5) << "the converted F32 file differs from HF";
      EXPECT_LE(row.gpu_vs_cpu, tolerance(type));
    }

    // Chunked prefill (n_batch 7: chunks of 7, 7, 6) equals one-shot.
    const std::vector<float> chunked = decode_all(*model, ref.prompt, 7);
    row.chunked_err = test::relative_l2_error(chunked.data(), ours.data(), chunked.size());
    EXPECT_LE(row.chunked_err, kSelfConsistency);

    // Decode path: one token per call, Last logits each time, equals prefill row by row.
    {
      Session s(*model, SessionOptions{64, 32, false});
      for (size_t p = 0; p < ref.prompt.size(); ++p) {
        s.decode(std::span<const int32_t>(&ref.prompt[p], 1), LogitsMode::Last);
        auto got = s.logits(-1);
        row.decode_err = std::max(row.decode_err, test::relative_l2_error(got.data(), &ours[p * n_vocab], n_vocab));
      }
      EXPECT_LE(row.decode_err, kSelfConsistency);
    }

    // Greedy continuation: prompt, then one token at a time, argmax on the GPU.
    {
      Session s(*model, SessionOptions{64, 32, false});
      s.decode(ref.prompt, LogitsMode::ArgmaxOnly);
      std::vector<int32_t> greedy;
      for (size_t i = 0; i < ref.greedy.size(); ++i) {
        const int32_t next = s.argmax();
        greedy.push_back(next);
        if (i + 1 < ref.greedy.size()) s.decode(std::span<const int32_t>(&next, 1), LogitsMode::ArgmaxOnly);
      }
      while (row.greedy_matched < int(greedy.size()) && greedy[row.greedy_matched] == ref.greedy[row.greedy_matched])
        ++row.greedy_matched;
      if (type == quant::Type::F32 || type == quant::Type::F16) {
        EXPECT_EQ(greedy, ref.greedy);
      }
    }
    const auto messages = model->context().instance().validation_messages();
    EXPECT_TRUE(messages.empty()) << messages.size() << " validation messages, first: " << messages.front();
    table.push_back(row);
  }
  std::printf("\n%-14s %-5s %12s %8s %12s %12s %12s %12s\n", "model", "type", "max rel err", "greedy", "chunked",
              "decode", "cpu vs hf", "gpu vs cpu");
  for (const Row& r : table)
    std::printf("%-14s %-5s %12.3e %5d/%zu %12.3e %12.3e %12.3e %12.3e\n", name.c_str(), r.type.c_str(), r.max_err,
                r.greedy_matched, ref.greedy.size(), r.chunked_err, r.decode_err, r.cpu_vs_hf, r.gpu_vs_cpu);
  std::fflush(stdout);
}

}  // namespace

TEST(HfReference, MixtralTiny) { run_architecture("mixtral-tiny"); }
TEST(HfReference, Qwen2MoeTiny) { run_architecture("qwen2moe-tiny"); }
TEST(HfReference, Qwen3MoeTiny) { run_architecture("qwen3moe-tiny"); }
