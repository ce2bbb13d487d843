// moevk_context_truncate through the C API: a context rewound to a prefix continues exactly as
// a context that only ever decoded that prefix (same logits and greedy tokens), the pending token
// and the last logits are dropped, and a truncation past n_past is refused with nothing changed.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "convert/convert.hpp"
#include "e2e/e2e_support.hpp"
#include "moevk.h"

using namespace moevk;

namespace {

std::vector<float> last_logits(moevk_context* ctx, size_t n_vocab) {
  const float* p = nullptr;
  EXPECT_EQ(moevk_get_logits(ctx, -1, &p), MOEVK_OK) << moevk_context_last_error(ctx);
  return p ? std::vector<float>(p, p + n_vocab) : std::vector<float>();
}

// n greedy tokens after `prompt`; the last one stays pending.
std::vector<int32_t> greedy(moevk_context* ctx, const std::vector<int32_t>& prompt, int n) {
  std::string error;
  std::vector<int32_t> tokens = test::generate_greedy(ctx, prompt, n, &error);
  EXPECT_EQ(tokens.size(), size_t(n)) << error;
  return tokens;
}

}  // namespace

TEST(ContextTruncateE2E, ContinuesAsIfOnlyThePrefixHadBeenDecoded) {
  test::TempFile file("truncate-qwen3moe-f32.gguf");
  convert::convert_hf(test::hf_fixture_dir("qwen3moe-tiny"), file.path(), quant::Type::F32, {});
  moevk_model_params mp = moevk_model_default_params();
  mp.validation = 1;
  moevk_model* model = nullptr;
  ASSERT_EQ(moevk_model_load(file.path().c_str(), &mp, &model), MOEVK_OK) << moevk_last_error();
  const size_t n_vocab = static_cast<size_t>(moevk_model_n_vocab(model));
  moevk_context_params cp = moevk_context_default_params();
  cp.n_ctx = 64;
  cp.n_batch = 8;
  moevk_context *rewound = nullptr, *fresh = nullptr;
  ASSERT_EQ(moevk_context_create(model, &cp, &rewound), MOEVK_OK) << moevk_last_error();
  ASSERT_EQ(moevk_context_create(model, &cp, &fresh), MOEVK_OK) << moevk_last_error();

  const std::vector<int32_t> prefix{1, 40, 7, 99, 3, 250}, dropped{17, 5, 200, 31, 77, 12, 8, 64, 2},
      next{11, 300, 42};
  // rewound: prefix + dropped (two calls), a generation that leaves a pending token, then back
  // to the prefix; fresh: the prefix alone.
  ASSERT_EQ(moevk_decode(rewound, prefix.data(), prefix.size(), 0), MOEVK_OK);
  ASSERT_EQ(moevk_decode(rewound, dropped.data(), dropped.size(), 0), MOEVK_OK);
  greedy(rewound, {5}, 3);
  ASSERT_GE(moevk_context_pending_token(rewound), 0);
  const uint32_t before = moevk_context_n_past(rewound);
  EXPECT_EQ(moevk_context_truncate(rewound, before + 1), MOEVK_ERROR_INVALID_ARGUMENT);  // past n_past
  EXPECT_NE(std::string(moevk_context_last_error(rewound)).find("truncate"), std::string::npos);
  EXPECT_EQ(moevk_context_n_past(rewound), before);  // refused: nothing changed
  EXPECT_GE(moevk_context_pending_token(rewound), 0);
  ASSERT_EQ(moevk_context_truncate(rewound, uint32_t(prefix.size())), MOEVK_OK) << moevk_context_last_error(rewound);
  EXPECT_EQ(moevk_context_n_past(rewound), prefix.size());
  EXPECT_EQ(moevk_context_pending_token(rewound), -1);
  const float* stale = nullptr;
  EXPECT_EQ(moevk_get_logits(rewound, -1, &stale), MOEVK_ERROR_INVALID_ARGUMENT);  // the last logits are gone
  ASSERT_EQ(moevk_decode(fresh, prefix.data(), prefix.size(), 0), MOEVK_OK);

  // Both continue with the same tokens: the same logits (the same positions and cache contents)
  // and the same greedy run.
  ASSERT_EQ(moevk_decode(rewound, next.data(), next.size(), 0), MOEVK_OK) << moevk_context_last_error(rewound);
  ASSERT_EQ(moevk_decode(fresh, next.data(), next.size(), 0), MOEVK_OK);
  const std::vector<float> a = last_logits(rewound, n_vocab), b = last_logits(fresh, n_vocab);
  ASSERT_EQ(a.size(), b.size());
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    norm += double(b[i]) * b[i];
  }
  // The same dispatches over the same cache contents: identical here (measured 0); 1e-4 leaves
  // room for a device whose reductions are not run-to-run deterministic.
  EXPECT_LT(std::sqrt(diff / norm), 1e-4);
  EXPECT_EQ(greedy(rewound, {9}, 6), greedy(fresh, {9}, 6));
  EXPECT_EQ(moevk_context_n_past(rewound), moevk_context_n_past(fresh));

  EXPECT_EQ(moevk_context_truncate(nullptr, 0), MOEVK_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ(moevk_context_truncate(rewound, 0), MOEVK_OK);  // to nothing: as after a reset
  EXPECT_EQ(moevk_context_n_past(rewound), 0u);
  moevk_context_free(rewound);
  moevk_context_free(fresh);
  moevk_model_free(model);
}
