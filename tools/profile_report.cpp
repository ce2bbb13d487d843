#include "profile_report.hpp"

#include <string>

namespace moevk_cli {

nlohmann::json context_stats(moevk_context* ctx) {
  char* text = nullptr;
  if (moevk_context_stats_json(ctx, &text) != MOEVK_OK) {
    std::fprintf(stderr, "error: %s\n", moevk_context_last_error(ctx));
    return nlohmann::json::object();
  }
  nlohmann::json stats = nlohmann::json::parse(text);
  moevk_free_string(text);
  return stats;
}

nlohmann::json context_profile(moevk_context* ctx) {
  return context_stats(ctx).value("profile", nlohmann::json::object());
}

nlohmann::json profile_between(const nlohmann::json& before, const nlohmann::json& after) {
  nlohmann::json out = after;
  if (!after.is_object()) return out;
  for (const char* kind : {"decode", "prefill"}) {
    if (!after.contains(kind)) continue;
    const nlohmann::json& a = after[kind];
    const nlohmann::json none = nlohmann::json::object();
    const nlohmann::json b = before.is_object() ? before.value(kind, none) : none;
    nlohmann::json& d = out[kind];
    const int64_t tokens = a.value("tokens", int64_t(0)) - b.value("tokens", int64_t(0));
    d["steps"] = a.value("steps", int64_t(0)) - b.value("steps", int64_t(0));
    d["tokens"] = tokens;
    d["gpu_ms"] = a.value("gpu_ms", 0.0) - b.value("gpu_ms", 0.0);
    d["gpu_ms_per_token"] = tokens > 0 ? d["gpu_ms"].get<double>() / double(tokens) : 0.0;
    const nlohmann::json b_stage = b.value("stage_ms", nlohmann::json::object());
    const nlohmann::json a_stage = a.value("stage_ms", nlohmann::json::object());
    for (auto& [stage, ms] : a_stage.items()) {
      const double diff = ms.get<double>() - b_stage.value(stage, 0.0);
      d["stage_ms"][stage] = diff;
      d["stage_ms_per_token"][stage] = tokens > 0 ? diff / double(tokens) : 0.0;
    }
  }
  return out;
}

nlohmann::json empty_profile(const nlohmann::json& like) { return profile_between(like, like); }

void print_profile(const nlohmann::json& profile, double prompt_tokens, uint32_t n_layer, std::FILE* out,
                   const std::string& heading) {
  if (profile.is_null() || !profile.contains("decode")) return;
  if (!profile.value("enabled", false)) {
    std::fprintf(out, "\nno GPU profile: the device has no timestamps (or profiling was off)\n");
  } else {
    const nlohmann::json& tg = profile["decode"];
    const nlohmann::json& pp = profile["prefill"];
    const double tg_total = tg.value("gpu_ms_per_token", 0.0);
    const double pp_total = pp.value("gpu_ms_per_token", 0.0) * prompt_tokens;
    auto share = [](double part, double total) { return total > 0 ? 100.0 * part / total : 0.0; };
    std::fprintf(out, "\nGPU time per stage%s%s (timestamps; tg: per decoded token, pp: per %.0f-token prompt)\n",
                 heading.empty() ? "" : " ", heading.c_str(), prompt_tokens);
    std::fprintf(out, "| stage | tg ms/token | tg share | pp ms/prompt | pp share |\n");
    std::fprintf(out, "| --- | ---: | ---: | ---: | ---: |\n");
    for (const auto& stage : profile["stages"]) {
      const std::string name = stage.get<std::string>();
      const double t = tg["stage_ms_per_token"].value(name, 0.0);
      const double p = pp["stage_ms_per_token"].value(name, 0.0) * prompt_tokens;
      std::fprintf(out, "| %s | %.3f | %.1f%% | %.3f | %.1f%% |\n", name.c_str(), t, share(t, tg_total), p,
                   share(p, pp_total));
    }
    std::fprintf(out, "| total | %.3f | 100%% | %.3f | 100%% |\n", tg_total, pp_total);
  }
  for (const char* kind : {"decode", "prefill"}) {
    const nlohmann::json& k = profile[kind];
    if (k.value("steps", 0) == 0) continue;
    const unsigned d = k.value("dispatches_per_step", 0u), b = k.value("barriers_per_step", 0u);
    std::fprintf(out, "%s step: %u dispatches, %u barriers", kind, d, b);
    if (n_layer) std::fprintf(out, " (%.1f and %.1f per layer)", double(d) / n_layer, double(b) / n_layer);
    std::fprintf(out, "\n");
  }
}

}  // namespace moevk_cli
