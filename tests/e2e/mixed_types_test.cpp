// A file of mixed weight types, as published K-quant files are (Q4_K_M: Q4_K matrices, Q6_K
// downs in some layers and the output head) and as `--tensor-type` writes them: per layer a
// different down type, gate and up of different types in one layer (two passes), the output head
// and one attn_v in other types. Prefill (grouped expert tiles; on the plain ones, and on the
// integer-dot ones with int8 activations where the device has them) and one-token decode (the
// matrix-vector kernels, f32 activations) of the same prompt are independent computations of
// the same logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "convert/convert.hpp"
#include "e2e/e2e_support.hpp"
#include "generate/session.hpp"
#include "gguf/gguf.hpp"
#include "models/model.hpp"
#include "support/scoped_env.hpp"

using namespace moevk;
using generate::LogitsMode;
using generate::Session;
using generate::SessionOptions;

TEST(MixedTypes, PrefillAndDecodeAgreeOnAFileOfMixedTypes) {
  test::TempFile file("mixed-types.gguf");
  convert::MakeModelOverrides o;
  o.n_embd = 256;  // rows of 256: K-quant blocks fit the experts and q/k/v
  o.n_ff = 256;
  const auto rules = convert::TypeRules::parse({"blk\\.0\\.ffn_down_exps=q6_k", "blk\\.1\\.ffn_down_exps=q2_k",
                                                 "blk\\.2\\.ffn_up_exps=q5_k", "blk\\.1\\.attn_v=q8_0",
                                                 "^output\\.weight$=q6_k"});
  convert::make_model(convert::make_model_spec("tiny-qwen3moe", o), quant::Type::Q4_K, file.path(), 31, false, {},
                      rules);
  {
    auto gguf_file = gguf::File::open(file.path());
    std::map<std::string, quant::Type> types;
    for (const gguf::TensorInfo& t : gguf_file->tensors()) types[t.name] = t.type;
    ASSERT_EQ(types.at("blk.0.ffn_down_exps.weight"), quant::Type::Q6_K);
    ASSERT_EQ(types.at("blk.1.ffn_down_exps.weight"), quant::Type::Q2_K);
    ASSERT_EQ(types.at("blk.2.ffn_down_exps.weight"), quant::Type::Q4_K);
    ASSERT_EQ(types.at("blk.2.ffn_up_exps.weight"), quant::Type::Q5_K);
    ASSERT_EQ(types.at("blk.2.ffn_gate_exps.weight"), quant::Type::Q4_K);
    ASSERT_EQ(types.at("output.weight"), quant::Type::Q6_K);
  }
  // Per position: the relative rms difference of prefill's logits and one-by-one decode's.
  auto prefill_against_decode = [&](models::Model& model) {
    const std::vector<int32_t> prompt{1, 9, 200, 31, 77, 5, 12, 3, 100, 41, 2, 7, 8, 60, 33, 21, 4};
    Session prefill(model, SessionOptions{64, 32, false});
    prefill.decode(prompt, LogitsMode::All);
    Session one_by_one(model, SessionOptions{64, 32, false});
    std::vector<double> rel;
    for (size_t p = 0; p < prompt.size(); ++p) {
      const std::vector<int32_t> token{prompt[p]};
      one_by_one.decode(token, LogitsMode::Last);
      const auto a = prefill.logits(int(p)), b = one_by_one.logits(-1);
      EXPECT_EQ(a.size(), b.size());
      double diff = 0, norm = 0;
      for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
        diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
        norm += double(b[i]) * b[i];
      }
      rel.push_back(std::sqrt(diff / norm));
    }
    return rel;
  };
  {
    // Plain tiles (f32 activations): the same arithmetic as decode but for the order of its
    // sums; measured within 7e-5 at every position, so 1e-3 is f32 rounding through three
    // layers with margin. A product read in the wrong layout, or skipped, is off by order one.
    test::ScopedEnv plain("MOEVK_DISABLE", "dot,coopmat");
    auto model = models::Model::load(file.path(), test::e2e_load_options());
    const std::vector<double> rel = prefill_against_decode(*model);
    for (size_t p = 0; p < rel.size(); ++p) EXPECT_LT(rel[p], 1e-3) << "plain tiles, position " << p;
  }
  auto model = models::Model::load(file.path(), test::e2e_load_options());
  if (!model->context().features().dot) GTEST_SKIP() << "no integer dot product on this device";
  // The integer-dot tiles quantize prefill's activations to int8 per 32 elements (~0.5% rms per
  // product, the kernel tests' bound), ~1.2-1.6% rms in the logits here; a position whose
  // perturbed router scores swap two of the 16 experts' ranks (random weights leave close
  // scores) differs more: 6-10% at 1-3 of the 17 positions, the same in files of one type
  // (Q8_0, Q4_K). So the median is held to 3%: a wrong layout fails every position.
  std::vector<double> rel = prefill_against_decode(*model);
  std::sort(rel.begin(), rel.end());
  EXPECT_LT(rel[rel.size() / 2], 0.03) << "median over positions, integer-dot tiles";
}
