// Rendering a conversation for `moevk chat` so that the KV cache can carry it from turn to turn:
// each turn feeds only the text the template adds after what the context already holds, which
// works as long as re-rendering the conversation reproduces that text. Only the public C API.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "moevk.h"

namespace moevk_cli {

using ChatMessages = std::vector<std::pair<std::string, std::string>>;  // (role, content)

// The conversation through the model's template (`template_name` empty) or a named one, with
// enable_thinking passed when it is 0 or 1. False on failure, with the reason in
// moevk_model_last_error.
bool render_chat(moevk_model* model, const std::string& template_name, const ChatMessages& messages,
                 bool add_generation_prompt, std::string& prompt_out, int enable_thinking = -1);

// What to store as the assistant message after `answer` was streamed in reply to `prompt`
// (`messages` rendered with the generation prompt): the content whose rendering starts with
// prompt + answer, i.e. what the context holds. The spaced Mistral format writes " " + content,
// while the model streams that space as the start of its answer (" Hello"), so the stored
// content is "Hello". `answer` itself when no candidate renders back to the same text.
std::string assistant_content(moevk_model* model, const std::string& template_name, const ChatMessages& messages,
                              const std::string& prompt, const std::string& answer, int enable_thinking = -1);

}  // namespace moevk_cli
