// libFuzzer target for the chat-template interpreter (a template is untrusted input: it comes
// from the model file). Parse arbitrary bytes as a template, render it over a small conversation
// with tight work and output limits; any moevk::Error is a correct rejection, and crashes,
// sanitizer reports, leaks and timeouts are bugs.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/error.hpp"
#include "text/jinja.hpp"

namespace {

using moevk::text::jinja::Value;

Value message(const char* role, const char* content) {
  Value m = Value::dict();
  m.set("role", Value::string(role));
  m.set("content", Value::string(content));
  return m;
}

Value make_context() {
  Value messages = Value::list();
  messages.push(message("system", "Be brief."));
  messages.push(message("user", "What is 2+2? \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80"));
  messages.push(message("assistant", "<think>\nadd\n</think>\n\n4."));
  messages.push(message("tool", "42"));
  messages.push(message("user", " \tpadded\n"));
  Value context = Value::dict();
  context.set("messages", messages);
  context.set("add_generation_prompt", Value::boolean(true));
  context.set("bos_token", Value::string("<s>"));
  context.set("eos_token", Value::string("</s>"));
  context.set("tools", Value::none());
  Value n = Value::dict();
  n.set("x", Value::integer(-3));
  n.set("f", Value::number(2.5));
  n.set("l", Value::list({Value::integer(1), Value::string("a"), Value::none()}));
  context.set("data", n);
  return context;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Value context = make_context();
  moevk::text::jinja::RenderOptions options;
  options.now = 1796657400;
  options.max_steps = 200000;
  options.max_output_bytes = size_t(1) << 20;
  try {
    moevk::text::jinja::Template t(std::string_view(reinterpret_cast<const char*>(data), size));
    volatile size_t n = t.render(context, options).size();
    (void)n;
  } catch (const moevk::Error&) {
  }
  return 0;
}
