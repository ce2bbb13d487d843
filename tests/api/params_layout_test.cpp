// The first layouts the C API checks struct_size against (api/api_internal.hpp) are those of
// moevk 0.1, copied here from its header, and copy_params keeps to them: below refused, a
// 0.1-sized struct read up to its size (later fields keep their defaults), a newer, larger one
// read up to ours.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <string>

#include "api/api_internal.hpp"
#include "moevk.h"

using moevk::api::copy_params;
using moevk::api::FirstLayout;

namespace {

// moevk.h of 0.1 (commits 023035b, 8d422e0), verbatim but for the names.
struct model_params_0_1 {
  size_t struct_size;
  const char* device;
  int validation;
  moevk_progress_fn progress;
  void* progress_user_data;
};
struct context_params_0_1 {
  size_t struct_size;
  uint32_t n_ctx;
  uint32_t n_batch;
  int expert_stats;
};
struct sampler_params_0_1 {
  size_t struct_size;
  float temperature;
  int32_t top_k;
  float top_p;
  float min_p;
  float repeat_penalty;
  int32_t repeat_last_n;
  float presence_penalty;
  float frequency_penalty;
  uint64_t seed;
};
struct generate_params_0_1 {
  size_t struct_size;
  const char* prompt;
  const int32_t* prompt_tokens;
  size_t n_prompt_tokens;
  int add_special;
  int parse_special;
  int32_t max_tokens;
  int ignore_eos;
  const char* const* stop_strings;
  size_t n_stop_strings;
  sampler_params_0_1 sampling;
  moevk_token_fn on_token;
  void* user_data;
};
struct generate_result_0_1 {
  size_t struct_size;
  int32_t n_prompt_tokens;
  int32_t n_generated;
  double prompt_ms;
  double generate_ms;
  moevk_stop_reason stop_reason;
};
struct convert_params_0_1 {
  size_t struct_size;
  const char* hf_dir;
  const char* output_path;
  const char* type;
  moevk_progress_fn progress;
  void* progress_user_data;
  moevk_log_fn log;
  void* log_user_data;
};
struct make_model_params_0_1 {
  size_t struct_size;
  const char* preset;
  const char* output_path;
  const char* type;
  uint64_t seed;
  int dry_run;
  const char* arch;
  uint32_t n_layer, n_embd, n_ff, n_ff_shexp, n_expert, n_expert_used;
  uint32_t n_head, n_head_kv, head_dim, n_vocab, n_ctx;
  moevk_progress_fn progress;
  void* progress_user_data;
  moevk_log_fn log;
  void* log_user_data;
};

// The end of the last field of a 0.1 struct: what FirstLayout must say.
#define END_OF(T, last) (offsetof(T, last) + sizeof(T::last))

}  // namespace

TEST(ApiParamsLayout, FirstLayoutsAreThoseOfVersion0_1) {
  EXPECT_EQ(FirstLayout<moevk_model_params>::size, END_OF(model_params_0_1, progress_user_data));
  EXPECT_EQ(FirstLayout<moevk_context_params>::size, END_OF(context_params_0_1, expert_stats));
  EXPECT_EQ(FirstLayout<moevk_sampler_params>::size, END_OF(sampler_params_0_1, seed));
  EXPECT_EQ(FirstLayout<moevk_generate_params>::size, END_OF(generate_params_0_1, user_data));
  EXPECT_EQ(FirstLayout<moevk_generate_result>::size, END_OF(generate_result_0_1, stop_reason));
  EXPECT_EQ(FirstLayout<moevk_convert_params>::size, END_OF(convert_params_0_1, log_user_data));
  EXPECT_EQ(FirstLayout<moevk_make_model_params>::size, END_OF(make_model_params_0_1, log_user_data));
  // A 0.1 caller passes sizeof of its struct, never less than the first layout.
  EXPECT_GE(sizeof(context_params_0_1), FirstLayout<moevk_context_params>::size);
  EXPECT_GE(sizeof(generate_result_0_1), FirstLayout<moevk_generate_result>::size);
}

TEST(ApiParamsLayout, CopyParamsRefusesShortStructsAndReadsNoFurtherThanTheSize) {
  const moevk_context_params defaults = moevk_context_default_params();
  for (size_t size : {size_t(0), sizeof(size_t), FirstLayout<moevk_context_params>::size - 1}) {
    moevk_context_params in = defaults, out = defaults;
    in.struct_size = size;
    in.n_ctx = 77;
    EXPECT_FALSE(copy_params(in, out)) << size;
    EXPECT_EQ(out.n_ctx, defaults.n_ctx) << "refused, yet copied";
  }
  // Exactly the 0.1 fields: profile, added later, keeps its default whatever lies there.
  moevk_context_params in = defaults, out = defaults;
  in.struct_size = FirstLayout<moevk_context_params>::size;
  in.n_ctx = 77;
  in.expert_stats = 1;
  in.profile = 12345;
  ASSERT_TRUE(copy_params(in, out));
  EXPECT_EQ(out.n_ctx, 77u);
  EXPECT_EQ(out.expert_stats, 1);
  EXPECT_EQ(out.profile, defaults.profile);
  EXPECT_EQ(out.struct_size, sizeof out);
  // What a 0.1 caller really passes: sizeof its struct, tail padding included (24 bytes on
  // LP64), whose bytes it never set; profile lies past them.
  in.struct_size = sizeof(context_params_0_1);
  in.reserved = 0x5A5A5A5A;  // the padding's garbage
  ASSERT_TRUE(copy_params(in, out));
  EXPECT_EQ(out.profile, defaults.profile);
  EXPECT_GE(offsetof(moevk_context_params, profile), sizeof(context_params_0_1));
  // A caller built against a newer header (a larger struct): our fields, our size.
  struct {
    moevk_sampler_params params;
    uint64_t newer_field;
  } newer{};
  newer.params = moevk_sampler_default_params();
  newer.params.struct_size = sizeof newer;
  newer.params.top_k = 5;
  newer.newer_field = ~0ull;
  moevk_sampler_params sampler = moevk_sampler_default_params();
  ASSERT_TRUE(copy_params(newer.params, sampler));
  EXPECT_EQ(sampler.top_k, 5);
  EXPECT_EQ(sampler.struct_size, sizeof sampler);
}

TEST(ApiParamsLayout, MessageNamesTheFieldTheStructAndWhereToGetOne) {
  const std::string m = moevk::api::struct_size_message<moevk_model_params>("moevk_model_load: params->struct_size", 0);
  EXPECT_NE(m.find("moevk_model_load: params->struct_size is 0"), std::string::npos) << m;
  EXPECT_NE(m.find("moevk_model_params"), std::string::npos) << m;
  EXPECT_NE(m.find(std::to_string(FirstLayout<moevk_model_params>::size) + " bytes"), std::string::npos) << m;
  EXPECT_NE(m.find("moevk_model_default_params()"), std::string::npos) << m;
  EXPECT_EQ(moevk::api::struct_size_error<moevk_generate_result>("moevk_generate: result->struct_size", 3),
            MOEVK_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(moevk_last_error()).find("sizeof(moevk_generate_result)"), std::string::npos)
      << moevk_last_error();
}
