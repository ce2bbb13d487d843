// Model summary table and the progress bar of file-writing commands.
#include "model_summary.hpp"

#include <chrono>

#include <cstdio>
#include <cstring>

#include <unistd.h>

#include <nlohmann/json.hpp>

namespace moevk_cli {

namespace {

std::string human_bytes(double b) {
  char buf[64];
  if (b >= 1e9) std::snprintf(buf, sizeof buf, "%.2f GB (%.2f GiB)", b / 1e9, b / (1024.0 * 1024 * 1024));
  else if (b >= 1e6) std::snprintf(buf, sizeof buf, "%.2f MB (%.2f MiB)", b / 1e6, b / (1024.0 * 1024));
  else if (b >= 1e3) std::snprintf(buf, sizeof buf, "%.2f kB (%.2f KiB)", b / 1e3, b / 1024.0);
  else std::snprintf(buf, sizeof buf, "%.0f B", b);
  return buf;
}

std::string human_count(double n) {
  char buf[48];
  if (n >= 1e9) std::snprintf(buf, sizeof buf, "%.2f B", n / 1e9);
  else if (n >= 1e6) std::snprintf(buf, sizeof buf, "%.2f M", n / 1e6);
  else if (n >= 1e3) std::snprintf(buf, sizeof buf, "%.2f K", n / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", n);
  return buf;
}

const char* yes_no(bool v) { return v ? "yes" : "no"; }

bool progress_line_open = false;
auto progress_start = std::chrono::steady_clock::now();
auto progress_last = std::chrono::steady_clock::time_point{};

}  // namespace

bool print_model_summary(const std::string& info_json, const std::string& title) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(info_json);
    const auto& h = j.at("hparams");
    auto u = [&](const char* k) { return h.at(k).get<uint64_t>(); };
    const bool moe = u("n_expert") > 0;
    std::printf("%s\n", title.c_str());
    if (j.contains("gguf") && j["gguf"].contains("files") && j["gguf"]["files"].size() > 1) {
      const auto& files = j["gguf"]["files"];
      std::printf("  files             %zu, a split set (%s)\n", files.size(),
                  human_bytes(j["gguf"].at("file_size").get<double>()).c_str());
      for (const auto& f : files)
        std::printf("                    %s  %llu tensors\n", f.at("path").get<std::string>().c_str(),
                    (unsigned long long)f.at("n_tensors").get<uint64_t>());
    }
    std::printf("  architecture      %s%s\n", h.at("architecture").get<std::string>().c_str(),
                moe ? " (mixture of experts)" : " (dense)");
    if (j.contains("file_type")) {
      const auto& ft = j["file_type"];
      const std::string name = ft.at("name").is_string() ? ft.at("name").get<std::string>() : "unknown";
      std::printf("  file type         %s (general.file_type %llu)\n", name.c_str(),
                  (unsigned long long)ft.at("id").get<uint64_t>());
    }
    std::printf("  layers            %llu (%llu MoE)\n", (unsigned long long)u("n_layer"),
                (unsigned long long)u("n_moe_layers"));
    std::printf("  embedding         %llu\n", (unsigned long long)u("n_embd"));
    std::printf("  attention         %llu heads, %llu kv heads, head dim %llu (v %llu), rope %s dims %llu base %g\n",
                (unsigned long long)u("n_head"), (unsigned long long)u("n_head_kv"), (unsigned long long)u("head_dim"),
                (unsigned long long)u("head_dim_v"), h.at("rope_type").get<std::string>().c_str(),
                (unsigned long long)u("n_rot"), h.at("rope_freq_base").get<double>());
    if (moe) {
      std::printf("  experts           %llu, %llu used per token, expert ffn %llu, top-k renormalised: %s\n",
                  (unsigned long long)u("n_expert"), (unsigned long long)u("n_expert_used"),
                  (unsigned long long)u("n_ff_exp"), yes_no(h.at("expert_weights_norm").get<bool>()));
      if (h.at("has_shared_expert").get<bool>())
        std::printf("  shared expert     ffn %llu (sigmoid-gated)\n", (unsigned long long)u("n_ff_shexp"));
    }
    if (u("n_layer") > u("n_moe_layers")) std::printf("  dense ffn         %llu\n", (unsigned long long)u("n_ff"));
    std::printf("  vocabulary        %llu\n", (unsigned long long)u("n_vocab"));
    std::printf("  training context  %llu\n", (unsigned long long)u("n_ctx_train"));
    if (j.contains("chat_template")) {
      const auto& ct = j["chat_template"];
      const uint64_t bytes = ct.at("bytes").get<uint64_t>();
      if (bytes == 0)
        std::printf("  chat template     none (chat needs --chat-template chatml|mistral|llama3)\n");
      else if (ct.at("renders").get<bool>()) {
        std::string extras;
        if (!ct.at("system_message").get<bool>()) extras += " (refuses a system message)";
        if (ct.value("tools", false)) extras += ", tools (calls: " + ct.value("tool_calls", std::string("none")) + ")";
        if (ct.value("reasoning", false)) extras += ", reasoning";
        std::printf("  chat template     %s, renders%s\n", human_bytes(double(bytes)).c_str(), extras.c_str());
      }
      else
        std::printf("  chat template     %s, %s\n", human_bytes(double(bytes)).c_str(),
                    ct.at("error").is_string() ? ct.at("error").get<std::string>().c_str() : "does not render");
    }
    std::printf("  rms norm eps      %g\n", h.at("norm_eps").get<double>());
    std::printf("  qkv bias          %s, q/k norm %s, tied output %s\n", yes_no(h.at("qkv_bias").get<bool>()),
                yes_no(h.at("qk_norm").get<bool>()), yes_no(h.at("tied_output").get<bool>()));
    const double total = j.at("total_params").get<double>(), active = j.at("active_params").get<double>();
    std::printf("  parameters        %s total, %s active per token (%.1f%%), routed experts %s\n",
                human_count(total).c_str(), human_count(active).c_str(), total > 0 ? 100.0 * active / total : 0.0,
                human_count(j.at("expert_params").get<double>()).c_str());
    std::printf("  weights           %s in %llu tensors\n", human_bytes(j.at("weight_bytes").get<double>()).c_str(),
                (unsigned long long)j.at("n_tensors").get<uint64_t>());
    std::printf("  read per token    %s (weights read to decode one token)\n",
                human_bytes(j.at("active_bytes_per_token").get<double>()).c_str());
    std::printf("  KV cache (F16)    %s per token, %s at %llu tokens\n",
                human_bytes(j.at("kv_bytes_per_token").get<double>()).c_str(),
                human_bytes(j.at("kv_bytes_full_context").get<double>()).c_str(), (unsigned long long)u("n_ctx_train"));
    std::printf("  tensor types      %-6s %8s %16s %24s\n", "type", "tensors", "elements", "bytes");
    for (const auto& t : j.at("types"))
      std::printf("                    %-6s %8llu %16llu %24s\n", t.at("type").get<std::string>().c_str(),
                  (unsigned long long)t.at("tensors").get<uint64_t>(),
                  (unsigned long long)t.at("elements").get<uint64_t>(), human_bytes(t.at("bytes").get<double>()).c_str());
  } catch (const nlohmann::json::exception& e) {
    std::fprintf(stderr, "moevk: malformed model summary: %s\n", e.what());
    return false;
  }
  return true;
}

int file_progress_bar(float fraction, const char* stage, void*) {
  const auto now = std::chrono::steady_clock::now();
  if (!progress_line_open) progress_start = now;
  // In a log (not a terminal) a redrawn bar is noise: one line at the start, none after.
  static const bool tty = isatty(fileno(stderr));
  if (!tty) {
    if (!progress_line_open) std::fprintf(stderr, "working... (%s)", stage ? stage : "");
    progress_line_open = true;
    return 0;
  }
  // At most ~10 redraws a second, and always the final one.
  if (progress_line_open && fraction < 1.0f && now - progress_last < std::chrono::milliseconds(100)) return 0;
  progress_last = now;
  const int width = 30;
  const int filled = int(fraction * width + 0.5f);
  char bar[width + 1];
  for (int i = 0; i < width; ++i) bar[i] = i < filled ? '#' : '.';
  bar[width] = '\0';
  const double seconds = std::chrono::duration<double>(now - progress_start).count();
  std::fprintf(stderr, "\r[%s] %5.1f%% %6.1fs  %-40.40s", bar, 100.0 * fraction, seconds, stage ? stage : "");
  std::fflush(stderr);
  progress_line_open = true;
  return 0;
}

void file_progress_done() {
  if (progress_line_open) std::fprintf(stderr, "\n");
  progress_line_open = false;
}

void file_log_line(const char* line, void*) {
  file_progress_done();
  std::fprintf(stderr, "note: %s\n", line);
}

}  // namespace moevk_cli
