// libFuzzer target for what reads model output and caller JSON back in: the response parser
// (text/chat_response.hpp: reasoning, the four tool-call forms) and parse_ordered_json (the
// linear JSON builder behind apply_json), and the same text read as it streams
// (text/chat_stream.hpp) in pieces of 1 to 8 bytes. The first byte picks the format; the rest is
// the text. The parser must never throw and must always give a JSON message with a string
// content; the stream's deltas must add up to that message, which its finish gives too; the
// JSON builder may only reject with moevk::Error. Crashes, sanitizer reports, leaks and
// timeouts are bugs.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/ordered_json.hpp"
#include "text/chat_response.hpp"
#include "text/chat_stream.hpp"

namespace {

const char* const kTools = R"([{"type": "function", "function": {"name": "f", "parameters": {"type": "object",
    "properties": {"s": {"type": "string"}, "n": {"type": "integer"}}}}}])";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  using moevk::text::ResponseFormat;
  ResponseFormat format;
  const uint8_t pick = data[0];
  format.tools = static_cast<ResponseFormat::Tools>(pick % 5);
  format.reasoning = (pick & 8) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string out = moevk::text::parse_response(text, format, (pick & 16) ? kTools : "");
  const auto message = nlohmann::json::parse(out);  // throws (a bug) unless valid JSON
  if (!message.is_object() || !message.at("content").is_string()) std::abort();
  {
    moevk::text::ResponseStream stream(format, (pick & 16) ? kTools : "", (pick & 32) ? "<think>\n" : "");
    std::string reasoning, content;
    const size_t step = 1 + (pick >> 5) % 8;
    for (size_t i = 0; i < text.size(); i += step) {
      const auto d = nlohmann::json::parse(stream.push(text.substr(i, step)));
      if (d.contains("tool_calls") || d.contains("replace")) std::abort();
      reasoning += d.value("reasoning_content", "");
      content += d.value("content", "");
    }
    std::string streamed;
    const auto last = nlohmann::json::parse(stream.finish(streamed));
    // The same message: parse_response's, of the text after the prompt's <think> where it opened one.
    const bool opened = (pick & 32) && format.reasoning;
    if (streamed != (opened ? moevk::text::parse_response("<think>\n" + std::string(text), format,
                                                            (pick & 16) ? kTools : "")
                            : out))
      std::abort();
    const auto m = nlohmann::json::parse(streamed);
    if (last.value("replace", false)) {
      reasoning = last.value("reasoning_content", "");
      content = last.value("content", "");
    } else {
      reasoning += last.value("reasoning_content", "");
      content += last.value("content", "");
    }
    // Compared as JSON writes them: a character cut by the text's end reads as U+FFFD.
    if (nlohmann::json(content).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) != m["content"].dump() ||
        nlohmann::json(reasoning).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) !=
            nlohmann::json(m.value("reasoning_content", "")).dump())
      std::abort();
  }
  try {
    const auto j = moevk::parse_ordered_json(text, "fuzz input", 16);
    (void)j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } catch (const moevk::Error&) {
  }
  return 0;
}
