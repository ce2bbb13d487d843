// A chat model's answer read as it streams: the reasoning and the content it is writing, told
// apart while the tokens come (parse_response reads the whole answer only at the end), so that
// a client can show each as it grows and keep the tool calls' text out of the content.
//
// What is streamed is only what the whole answer's parse is sure to begin with: text that may
// still become a tool call ("<tool_call>" until its "</tool_call>", "[TOOL_CALLS]" to the end,
// a Llama-3.1 answer that begins with "{"), a part of a marker ("<tool_", "</thi"), and the
// spaces and newlines that parse_response may trim are held back until what follows decides.
// Tool calls come whole, at the end, with the final message's ids (made from the whole text).
// At the end, the last delta completes the content and reasoning of parse_response's message;
// where that message does not begin with what was streamed (rare: a reply that opens with
// spaces and then calls a tool, whose content the message trims; a "</think>" that was not
// opened), the last delta carries the whole fields and "replace": true.
#pragma once
#include <string>
#include <string_view>

#include "text/chat_response.hpp"

namespace moevk::text {

class ResponseStream {
 public:
  // `prompt` is the rendered prompt the answer follows: when it ends inside an open <think>
  // (Qwen3-2507 thinking writes "<think>\n" into the generation prompt), the answer starts as
  // reasoning. `tools_json` as parse_response takes it (checked here, so that finish cannot fail).
  ResponseStream(const ResponseFormat& format, std::string tools_json, std::string_view prompt = {});

  // Appends generated text; returns the delta as JSON: {"reasoning_content": ..., "content": ...},
  // each key only when it has new text ({} when nothing is certain yet).
  std::string push(std::string_view text);
  // Ends the answer: the last delta (as push, with "tool_calls" when there are calls, and
  // "replace" as above) and, in `message`, parse_response's message for the whole text (after a
  // prompt that opened <think>, for "<think>\n" and the text: an answer cut off while reasoning
  // is reasoning, and the calls' ids, made from the text, differ from parse_response's alone).
  std::string finish(std::string& message);

  const std::string& text() const { return text_; }

 private:
  enum class Mode { Start, Reasoning, Content, Call, Rest };
  void advance();
  void emit_content(std::string_view piece);

  ResponseFormat format_;
  std::string tools_json_;
  std::string text_;
  size_t pos_ = 0;           // text_ before it is decided (streamed, skipped or a whole call)
  size_t call_start_ = 0;    // Mode::Call: where its "<tool_call>" begins
  size_t call_scan_ = 0;     // Mode::Call: where the search for its "</tool_call>" goes on
  Mode mode_ = Mode::Start;
  bool at_content_start_ = true;  // no content character decided yet
  bool after_reasoning_ = false;  // content after </think>: its leading newlines are dropped
  bool after_call_ = false;       // content after a call: a piece, joined with "\n"
  bool finished_ = false;
  bool opened_think_ = false;     // the prompt ended inside <think>
  std::string reasoning_, content_;            // streamed so far, as bytes of the text
  std::string sent_reasoning_, sent_content_;  // the same as the deltas' JSON reads
  std::string delta_reasoning_, delta_content_;  // streamed by the current push
};

}  // namespace moevk::text
