// libFuzzer target for what reads model output and caller JSON back in: the response parser
// (text/chat_response.hpp: reasoning, the four tool-call forms) and parse_ordered_json (the
// linear JSON builder behind apply_json). The first byte picks the format; the rest is the
// text. The parser must never throw and must always give a JSON message with a string content;
// the JSON builder may only reject with moevk::Error. Crashes, sanitizer reports, leaks and
// timeouts are bugs.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/ordered_json.hpp"
#include "text/chat_response.hpp"

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
  try {
    const auto j = moevk::parse_ordered_json(text, "fuzz input", 16);
    (void)j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } catch (const moevk::Error&) {
  }
  return 0;
}
