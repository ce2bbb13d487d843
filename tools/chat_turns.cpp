#include "chat_turns.hpp"

namespace moevk_cli {

bool render_chat(moevk_model* model, const std::string& template_name, const ChatMessages& messages,
                 bool add_generation_prompt, std::string& prompt_out, int enable_thinking) {
  std::vector<moevk_chat_message> msgs;
  for (const auto& [role, content] : messages) msgs.push_back({role.c_str(), content.c_str()});
  moevk_chat_params params = moevk_chat_default_params();
  params.template_name = template_name.empty() ? nullptr : template_name.c_str();
  params.add_generation_prompt = add_generation_prompt ? 1 : 0;
  params.enable_thinking = enable_thinking;
  char* out = nullptr;
  if (moevk_chat_apply_template_with(model, msgs.data(), msgs.size(), &params, &out) != MOEVK_OK) return false;
  prompt_out = out;
  moevk_free_string(out);
  return true;
}

std::string assistant_content(moevk_model* model, const std::string& template_name, const ChatMessages& messages,
                              const std::string& prompt, const std::string& answer, int enable_thinking) {
  const std::string held = prompt + answer;
  std::vector<std::string> candidates = {answer};
  if (!answer.empty() && answer[0] == ' ') candidates.push_back(answer.substr(1));
  for (const std::string& content : candidates) {
    ChatMessages with_answer = messages;
    with_answer.emplace_back("assistant", content);
    std::string rendered;
    if (render_chat(model, template_name, with_answer, false, rendered, enable_thinking) &&
        rendered.compare(0, held.size(), held) == 0)
      return content;
  }
  return answer;
}

}  // namespace moevk_cli
