// The Jinja2 interpreter against Jinja2 itself: tests/data/text/make_jinja_expected.py renders
// several hundred small templates, one feature each, in Hugging Face's chat-template environment
// and writes expected_jinja.json; every case must come out byte for byte the same, and the cases
// Jinja2 rejects must be rejected. Then the limits that keep a hostile template from hanging or
// exhausting the process.
#include "text/jinja.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "text_test_data.hpp"

namespace moevk::text::jinja {

namespace {

using Json = nlohmann::ordered_json;  // keeps keys in file order, as Python's dicts do

Value from_json(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return Value::none();
    case Json::value_t::boolean: return Value::boolean(j.get<bool>());
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return Value::integer(j.get<int64_t>());
    case Json::value_t::number_float: return Value::number(j.get<double>());
    case Json::value_t::string: return Value::string(j.get<std::string>());
    case Json::value_t::array: {
      Value v = Value::list();
      for (const auto& x : j) v.push(from_json(x));
      return v;
    }
    case Json::value_t::object: {
      Value v = Value::dict();
      for (const auto& [k, x] : j.items()) v.set(k, from_json(x));
      return v;
    }
    default: return Value();
  }
}


// make_jinja_expected.py's strftime_now clock: 2026-12-07 15:30:00.
constexpr int64_t kFixedNow = 1796657400;

std::string render(const std::string& source, const Value& context = Value::dict(), RenderOptions options = {}) {
  options.now = kFixedNow;
  return Template(source).render(context, options);
}

TEST(Jinja, MatchesJinja2) {
  std::string text = testdata::read_text_file(std::string(MOEVK_TEST_DATA_DIR) + "/text/expected_jinja.json");
  ASSERT_FALSE(text.empty()) << "missing tests/data/text/expected_jinja.json";
  Json expected = Json::parse(text);
  ASSERT_GE(expected["cases"].size(), 400u);
  int failures = 0;
  for (const auto& c : expected["cases"]) {
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    const Value context = from_json(c["context"]);
    const std::string source = c["template"];
    if (c["error"].get<bool>()) {
      try {
        std::string got = render(source, context);
        ADD_FAILURE() << "Jinja2 rejects this template; we rendered: " << got << "\ntemplate: " << source;
        ++failures;
      } catch (const Error& e) {
        EXPECT_EQ(e.status(), MOEVK_ERROR_TOKENIZER);
      }
      continue;
    }
    try {
      std::string got = render(source, context);
      if (got != c["expected"].get<std::string>()) ++failures;
      EXPECT_EQ(got, c["expected"].get<std::string>()) << "template: " << source;
    } catch (const Error& e) {
      ADD_FAILURE() << e.what() << "\ntemplate: " << source;
      ++failures;
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST(Jinja, ErrorsNameTheLine) {
  try {
    Template("line one\n{% if x %}\n{{ 1 + }}\n{% endif %}");
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_TOKENIZER);
    EXPECT_NE(std::string(e.what()).find("line 3"), std::string::npos) << e.what();
  }
  try {
    render("a\nb\n{{ raise_exception('roles must alternate') }}");
    ADD_FAILURE() << "did not raise";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("roles must alternate"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("line 3"), std::string::npos) << e.what();
  }
  for (const char* unsupported : {"{% include 'x' %}", "{% extends 'x' %}", "{% call m() %}{% endcall %}"}) {
    try {
      Template t(unsupported);
      ADD_FAILURE() << "accepted " << unsupported;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("not supported"), std::string::npos) << e.what();
    }
  }
}

// A template comes from the model file: whatever it asks for, rendering ends, in bounded
// memory, with an error rather than a crash.
TEST(Jinja, HostileTemplatesEndWithAnError) {
  auto expect_error = [](const std::string& source, const char* what, RenderOptions options = {}) {
    SCOPED_TRACE(source.substr(0, 120));
    auto start = std::chrono::steady_clock::now();
    try {
      std::string out = Template(source).render(Value::dict(), options);
      ADD_FAILURE() << "rendered " << out.size() << " bytes";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), MOEVK_ERROR_TOKENIZER);
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  };
  expect_error("{% for i in range(1000000) %}{% for j in range(1000000) %}{{ 'x' * 1000 }}{% endfor %}{% endfor %}", "MiB");
  expect_error("{% for i in range(1000000) %}{% for j in range(1000000) %}{% endfor %}{% endfor %}", "steps");
  expect_error("{{ 'x' * 100000000000 }}", "MiB");
  expect_error("{{ [1] * 100000000000 }}", "2^20");
  expect_error("{{ range(100000000000) | length }}", "2^20");
  expect_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "nested more than");
  expect_error("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}", "nested too deeply");
  expect_error("{{ " + std::string(5000, '[') + std::string(5000, ']') + " }}", "nested too deeply");
  std::string ifs;
  for (int i = 0; i < 1000; ++i) ifs += "{% if true %}";
  expect_error(ifs, "nested too deeply");
  expect_error("{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "MiB");
  expect_error("{{ 9223372036854775807 + 1 }}", "overflow");
  RenderOptions small;
  small.max_output_bytes = 1000;
  expect_error("{% for i in range(2000) %}x{% endfor %}", "MiB", small);
}

TEST(Jinja, ContextValuesAndClock) {
  Value ctx = Value::dict();
  Value messages = Value::list();
  Value m = Value::dict();
  m.set("role", Value::string("user"));
  m.set("content", Value::string("héllo 😀"));
  messages.push(m);
  ctx.set("messages", messages);
  EXPECT_EQ(render("{% for m in messages %}{{ m.role }}:{{ m['content'] | length }}{% endfor %}", ctx), "user:7");
  EXPECT_EQ(render("{{ strftime_now('%Y-%m-%d %H:%M') }}"), "2026-12-07 15:30");
  // Without a fixed clock it is today's date.
  RenderOptions live;
  std::string year = Template("{{ strftime_now('%Y') }}").render(Value::dict(), live);
  EXPECT_EQ(year.size(), 4u);
}

}  // namespace
}  // namespace moevk::text::jinja
