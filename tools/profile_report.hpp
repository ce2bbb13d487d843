// The per-stage GPU profile of a context (moevk_context_params.profile) as a table, for
// `moevk bench --profile` and `moevk run --profile`.
#pragma once
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "moevk.h"

namespace moevk_cli {

// The context's stats (moevk_context_stats_json; an empty object on failure, with the error
// printed) and their "profile" object.
nlohmann::json context_stats(moevk_context* ctx);
nlohmann::json context_profile(moevk_context* ctx);
// Prints stage | tg ms per token | share | pp ms per prompt | share, then dispatches and
// barriers per step (and per layer when n_layer > 0). pp columns are per prompt of
// `prompt_tokens` tokens (per token times that count).
// `heading`, when given, is added to the table's title ("at depth 4096").
void print_profile(const nlohmann::json& profile, double prompt_tokens, uint32_t n_layer, std::FILE* out,
                   const std::string& heading = "");
// The profile of the steps run between two snapshots of one context's profile: steps, tokens and
// GPU times are the differences, per-token times recomputed from them; the per-step dispatch
// and barrier counts are `after`'s (the latest step's).
nlohmann::json profile_between(const nlohmann::json& before, const nlohmann::json& after);
// A profile of no steps in the shape of `like` (its stages, zero steps, tokens and times): the
// missing half of a stage table whose depth had only a pp or only a tg test.
nlohmann::json empty_profile(const nlohmann::json& like);

}  // namespace moevk_cli
