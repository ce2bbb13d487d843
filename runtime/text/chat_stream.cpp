#include "text/chat_stream.hpp"

#include <algorithm>

#include "common/error.hpp"
#include "common/ordered_json.hpp"
#include "text/unicode.hpp"

namespace moevk::text {

namespace {

using json = nlohmann::ordered_json;
constexpr size_t npos = std::string_view::npos;


// The longest proper prefix of `marker` that `text` ends with: text a marker may still become.
size_t held_suffix(std::string_view text, std::string_view marker) {
  for (size_t n = std::min(text.size(), marker.size() - 1); n > 0; --n)
    if (text.substr(text.size() - n) == marker.substr(0, n)) return n;
  return 0;
}

// `piece` without a UTF-8 character cut at its end (text pushed in pieces of bytes).
size_t whole_characters(std::string_view piece) { return piece.size() - utf8_incomplete_tail(piece); }

std::string_view marker_of(const ResponseFormat& format) {
  switch (format.tools) {
    case ResponseFormat::Tools::Hermes:
    case ResponseFormat::Tools::Qwen3Coder: return "<tool_call>";
    case ResponseFormat::Tools::Mistral: return "[TOOL_CALLS]";
    default: return {};
  }
}

std::string delta_json(const std::string& reasoning, const std::string& content) {
  json d = json::object();
  if (!reasoning.empty()) d["reasoning_content"] = reasoning;
  if (!content.empty()) d["content"] = content;
  return d.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

ResponseStream::ResponseStream(const ResponseFormat& format, std::string tools_json, std::string_view prompt)
    : format_(format), tools_json_(std::move(tools_json)) {
  parse_response("", format_, tools_json_);  // throws for tools_json that is not a tool list
  const size_t open = prompt.rfind("<think>"), close = prompt.rfind("</think>");
  if (format_.reasoning && open != npos && (close == npos || close < open)) {
    opened_think_ = true;
    mode_ = Mode::Reasoning;
    at_content_start_ = true;
  }
}

void ResponseStream::emit_content(std::string_view piece) {
  content_.append(piece);
  delta_content_.append(piece);
}

void ResponseStream::advance() {
  const std::string_view marker = marker_of(format_);
  for (;;) {
    const std::string_view rest = std::string_view(text_).substr(pos_);
    switch (mode_) {
      case Mode::Start: {
        // Qwen3 reasons in a <think> block it opens itself; anything else is the answer.
        if (!format_.reasoning) {
          mode_ = Mode::Content;
          continue;
        }
        const size_t lead = rest.find_first_not_of(" \n\t\r");
        if (lead == npos) return;
        const std::string_view from = rest.substr(lead);
        if (from.starts_with("<think>")) {
          pos_ += lead + 7;
          mode_ = Mode::Reasoning;
          continue;
        }
        if (std::string_view("<think>").starts_with(from)) return;  // a part of it
        mode_ = Mode::Content;
        continue;
      }
      case Mode::Reasoning: {
        if (reasoning_.empty()) {  // the reasoning's leading newlines are not its own
          const size_t n = rest.find_first_not_of('\n');
          pos_ += n == npos ? rest.size() : n;
          if (n == npos) return;
          if (n > 0) continue;
        }
        const size_t end = rest.find("</think>");
        std::string_view piece = end == npos ? rest.substr(0, rest.size() - held_suffix(rest, "</think>")) : rest.substr(0, end);
        size_t keep = piece.size();
        while (keep > 0 && piece[keep - 1] == '\n') --keep;  // nor its trailing ones, if it ends here
        if (end == npos) keep = whole_characters(piece.substr(0, keep));
        reasoning_.append(piece.substr(0, keep));
        delta_reasoning_.append(piece.substr(0, keep));
        if (end == npos) {
          pos_ += keep;
          return;
        }
        pos_ += end + 8;
        mode_ = Mode::Content;
        after_reasoning_ = true;
        continue;
      }
      case Mode::Content: {
        if (at_content_start_) {
          // What parse_response drops at the start of the content: the newlines after </think>;
          // all spaces where it trims (Mistral v3's answer; the text after a call).
          const bool trims = format_.tools == ResponseFormat::Tools::Mistral || after_call_;
          size_t n = 0;
          while (n < rest.size() && (trims ? is_trimmed_space(rest[n]) : after_reasoning_ && rest[n] == '\n')) ++n;
          if (n > 0) {
            pos_ += n;
            continue;
          }
          if (rest.empty()) return;
          if (format_.tools == ResponseFormat::Tools::Llama3Json) {
            // A whole answer that is one JSON object (after <|python_tag|>) is a call.
            const size_t lead = rest.find_first_not_of(" \n\t\r");
            if (lead == npos) return;
            const std::string_view from = rest.substr(lead);
            if (from[0] == '{' || from.starts_with("<|python_tag|>")) {
              mode_ = Mode::Rest;
              return;
            }
            if (std::string_view("<|python_tag|>").starts_with(from)) return;  // a part of it
          }
        }
        const size_t m = marker.empty() ? npos : rest.find(marker);
        const std::string_view piece =
            m != npos ? rest.substr(0, m) : rest.substr(0, rest.size() - (marker.empty() ? 0 : held_suffix(rest, marker)));
        size_t keep = piece.size();
        while (keep > 0 && is_trimmed_space(piece[keep - 1])) --keep;  // trimmed if a call follows
        keep = whole_characters(piece.substr(0, keep));
        if (keep > 0) {
          if (at_content_start_ && after_call_ && !content_.empty()) emit_content("\n");  // pieces joined
          emit_content(piece.substr(0, keep));
          at_content_start_ = false;
        }
        if (m == npos) {
          pos_ += keep;
          return;
        }
        call_start_ = pos_ + m;
        call_scan_ = call_start_ + 11;
        pos_ += keep;
        mode_ = format_.tools == ResponseFormat::Tools::Mistral ? Mode::Rest : Mode::Call;
        continue;
      }
      case Mode::Call: {
        // From where the last push's search stopped, so a long call is read once, not per push.
        const size_t close = text_.find("</tool_call>", call_scan_);
        if (close == npos) {
          call_scan_ = std::max(call_scan_, text_.size() >= 11 ? text_.size() - 11 : 0);
          return;
        }
        const size_t end = close + 12;
        ResponseFormat calls_only = format_;
        calls_only.reasoning = false;
        const json block = json::parse(parse_response(std::string_view(text_).substr(call_start_, end - call_start_),
                                                      calls_only, tools_json_));
        if (block.contains("tool_calls")) {
          after_call_ = true;
          at_content_start_ = true;
        } else {  // not a call: text, as parse_response keeps it
          if (at_content_start_ && after_call_ && !content_.empty()) emit_content("\n");
          emit_content(std::string_view(text_).substr(pos_, end - pos_));
          at_content_start_ = false;
        }
        pos_ = end;
        mode_ = Mode::Content;
        continue;
      }
      case Mode::Rest: return;  // held to the end
    }
  }
}

std::string ResponseStream::push(std::string_view text) {
  if (finished_) fail(MOEVK_ERROR_INVALID_ARGUMENT, "chat stream: text pushed after the end");
  text_.append(text);
  delta_reasoning_.clear();
  delta_content_.clear();
  advance();
  const std::string delta = delta_json(delta_reasoning_, delta_content_);
  // What the client reads from it (bytes that are not UTF-8 come out as U+FFFD), for finish to
  // compare the message with.
  const json d = json::parse(delta);
  sent_reasoning_ += d.value("reasoning_content", "");
  sent_content_ += d.value("content", "");
  return delta;
}

std::string ResponseStream::finish(std::string& message) {
  if (finished_) fail(MOEVK_ERROR_INVALID_ARGUMENT, "chat stream: finished twice");
  finished_ = true;
  // After a prompt that opened <think>, the answer reads as the rest of that block, so one cut
  // off while reasoning is reasoning (parse_response alone would call it content).
  message = parse_response(opened_think_ ? "<think>\n" + text_ : text_, format_, tools_json_);
  const json m = json::parse(message);
  const std::string content = m["content"].is_string() ? m["content"].get<std::string>() : std::string();
  const std::string reasoning = m.contains("reasoning_content") ? m["reasoning_content"].get<std::string>() : "";
  json d = json::object();
  if (content.starts_with(sent_content_) && reasoning.starts_with(sent_reasoning_)) {
    if (reasoning.size() > sent_reasoning_.size()) d["reasoning_content"] = reasoning.substr(sent_reasoning_.size());
    if (content.size() > sent_content_.size()) d["content"] = content.substr(sent_content_.size());
  } else {
    d["reasoning_content"] = reasoning;
    d["content"] = content;
    d["replace"] = true;
  }
  if (m.contains("tool_calls")) d["tool_calls"] = m["tool_calls"];
  return d.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace moevk::text
