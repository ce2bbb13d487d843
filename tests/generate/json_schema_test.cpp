// JSON Schema to GBNF: each supported keyword through the grammar matcher (documents that must
// pass and documents that must not), the refusals' messages, and random JSON values against the
// any-value and any-object schemas.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "generate/grammar.hpp"
#include "generate/json_schema.hpp"

using moevk::generate::Grammar;
using moevk::generate::GrammarMatcher;
using moevk::generate::json_schema_to_grammar;

namespace {

// Grammars by schema text, parsed once: the random test asks thousands of times.
std::shared_ptr<const Grammar> grammar_for(const std::string& schema) {
  static std::map<std::string, std::shared_ptr<const Grammar>> cache;
  auto it = cache.find(schema);
  if (it == cache.end()) it = cache.emplace(schema, Grammar::parse(json_schema_to_grammar(schema))).first;
  return it->second;
}

// Whether `doc` as a whole is a sentence of the schema's grammar.
bool accepts(const std::string& schema, const std::string& doc) {
  GrammarMatcher m(grammar_for(schema));
  return m.accept(doc) && m.accepting();
}

std::string refusal(const std::string& schema) {
  try {
    json_schema_to_grammar(schema);
  } catch (const moevk::Error& e) {
    EXPECT_EQ(e.status(), MOEVK_ERROR_INVALID_ARGUMENT);
    return e.what();
  }
  return "(converted)";
}

#define EXPECT_ACCEPTS(schema, doc) EXPECT_TRUE(accepts(schema, doc)) << "schema " << (schema) << "\ndoc " << (doc)
#define EXPECT_REJECTS(schema, doc) EXPECT_FALSE(accepts(schema, doc)) << "schema " << (schema) << "\ndoc " << (doc)

}  // namespace

TEST(JsonSchema, AnyValue) {
  for (const std::string schema : {"{}", "true", R"({"description": "anything", "title": "x"})"}) {
    for (const char* doc :
         {"1", "-0.5e+10", "\"hi\"", "true", "false", "null", "[]", "{}", "[1, \"a\", {\"b\": [null]}]",
          "{\"a\":{\"b\":{}},\"c\":[true,false]}", "{\n  \"a\": [\n    1\n  ]\n}", "\"\\u00e9\\n\""})
      EXPECT_ACCEPTS(schema, doc);
    for (const char* doc :
         {"",        " 1",    "1 ",  "01",      "[1,]",      "{\"a\":1,}", "{,}", "[,1]", "tru", "nul",
          "{\"a\"}", "{a:1}", "'a'", "[1  ,2]", "\"\\x41\"", "{\"a\":1}}", "1.",  ".5",   "+1",  "NaN"})
      EXPECT_REJECTS(schema, doc);
  }
}

TEST(JsonSchema, WhitespaceIsBounded) {
  EXPECT_ACCEPTS("{}", "[1, 2]");
  EXPECT_ACCEPTS("{}", "[\n" + std::string(20, ' ') + "1\n]");
  EXPECT_ACCEPTS("{}", "[\n\t\t1\n]");
  EXPECT_REJECTS("{}", "[\n" + std::string(21, ' ') + "1\n]");
  EXPECT_REJECTS("{}", "[  1]");
  EXPECT_REJECTS("{}", "[\n\n1]");
  EXPECT_REJECTS("{}", "[\t1]");
}

TEST(JsonSchema, PrimitiveTypes) {
  const std::string str = R"({"type": "string"})";
  for (const char* doc : {"\"\"", "\"abc\"", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\u00E9\\uabcd\"",
                          "\"h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\""})
    EXPECT_ACCEPTS(str, doc);
  for (const char* doc :
       {"abc", "\"abc", "\"\\q\"", "\"\\u12\"", "\"\\u12G4\"", "\"a\nb\"", "\"\t\"", "1", "null", "\"a\"\""})
    EXPECT_REJECTS(str, doc);

  const std::string number = R"({"type": "number"})";
  for (const char* doc : {"0", "-0", "12", "-3.25", "0.5", "1e10", "1E+5", "2e-007", "-1.5e-3", "1234567890123456",
                          "0.12345678901234567890", "-0.00020745634677353335"})
    EXPECT_ACCEPTS(number, doc);
  for (const char* doc : {"01", "-01", "00", "1.", ".5", "+1", "1e", "1e+", "--1", "0x1", "- 1", "1 .5", "\"1\"",
                          "12345678901234567", "0.123456789012345678901", "1e1234", "Infinity"})
    EXPECT_REJECTS(number, doc);

  const std::string integer = R"({"type": "integer"})";
  for (const char* doc : {"0", "-0", "7", "-42", "1234567890123456"}) EXPECT_ACCEPTS(integer, doc);
  for (const char* doc : {"1.0", "1e3", "01", "-", "\"1\"", "12345678901234567"}) EXPECT_REJECTS(integer, doc);

  EXPECT_ACCEPTS(R"({"type": "boolean"})", "true");
  EXPECT_ACCEPTS(R"({"type": "boolean"})", "false");
  EXPECT_REJECTS(R"({"type": "boolean"})", "1");
  EXPECT_REJECTS(R"({"type": "boolean"})", "True");
  EXPECT_ACCEPTS(R"({"type": "null"})", "null");
  EXPECT_REJECTS(R"({"type": "null"})", "0");

  const std::string either = R"({"type": ["string", "null"]})";
  EXPECT_ACCEPTS(either, "\"x\"");
  EXPECT_ACCEPTS(either, "null");
  EXPECT_REJECTS(either, "1");
  // number with integer: one reading for an integer, and both kinds accepted.
  EXPECT_ACCEPTS(R"({"type": ["integer", "number"]})", "3");
  EXPECT_ACCEPTS(R"({"type": ["integer", "number"]})", "3.5");
}

TEST(JsonSchema, SignBoundsOnNumbers) {
  for (const char* schema :
       {R"({"type": "integer", "minimum": 0})", R"({"type": "integer", "exclusiveMinimum": -1})"}) {
    EXPECT_ACCEPTS(schema, "0");
    EXPECT_ACCEPTS(schema, "17");
    EXPECT_REJECTS(schema, "-1");
    EXPECT_REJECTS(schema, "-0");
  }
  for (const char* schema : {R"({"type": "integer", "minimum": 1})", R"({"type": "integer", "exclusiveMinimum": 0})"}) {
    EXPECT_ACCEPTS(schema, "1");
    EXPECT_ACCEPTS(schema, "10");
    EXPECT_REJECTS(schema, "0");
    EXPECT_REJECTS(schema, "-3");
  }
  const std::string nonnegative = R"({"type": "number", "minimum": 0})";
  EXPECT_ACCEPTS(nonnegative, "0");
  EXPECT_ACCEPTS(nonnegative, "0.25e-3");
  EXPECT_REJECTS(nonnegative, "-0.5");
  // Without "type", "minimum" makes it a number.
  EXPECT_ACCEPTS(R"({"minimum": 0})", "2.5");
  EXPECT_REJECTS(R"({"minimum": 0})", "\"a\"");
}

TEST(JsonSchema, EnumAndConst) {
  const std::string schema = R"({"enum": ["red", "a\"b\\c", "\u00e9", 1, null, {"x": [1, true]}]})";
  for (const char* doc : {"\"red\"", "\"a\\\"b\\\\c\"", "\"\xC3\xA9\"", "1", "null", "{\"x\":[1,true]}"})
    EXPECT_ACCEPTS(schema, doc);
  for (const char* doc : {"\"blue\"", "\"re\"", "\"red\" ", "red", "2", "1.0", "{\"x\": [1, true]}", "\"\\u00e9\""})
    EXPECT_REJECTS(schema, doc);
  // "type" keeps the values of that type.
  EXPECT_ACCEPTS(R"({"type": "string", "enum": ["a", 1]})", "\"a\"");
  EXPECT_REJECTS(R"({"type": "string", "enum": ["a", 1]})", "1");
  EXPECT_ACCEPTS(R"({"const": "fixed"})", "\"fixed\"");
  EXPECT_REJECTS(R"({"const": "fixed"})", "\"other\"");
  EXPECT_ACCEPTS(R"({"const": 2.5})", "2.5");
  EXPECT_ACCEPTS(R"({"enum": ["x"], "nullable": true})", "null");
}

// Every presence of three properties, for every choice of which are required: accepted exactly
// when the required ones are there, in the schema's order, with or without whitespace.
TEST(JsonSchema, OptionalPropertiesGetTheirCommasRight) {
  const char* names[] = {"a", "b", "c"};
  const char* values[] = {"1", "\"s\"", "true"};
  for (int required_mask = 0; required_mask < 8; ++required_mask) {
    nlohmann::ordered_json schema = {
        {"type", "object"},
        {"properties", {{"a", {{"type", "integer"}}}, {"b", {{"type", "string"}}}, {"c", {{"type", "boolean"}}}}},
        {"required", nlohmann::json::array()}};
    for (int i = 0; i < 3; ++i)
      if (required_mask & (1 << i)) schema["required"].push_back(names[i]);
    const std::string text = schema.dump();
    for (int present = 0; present < 8; ++present) {
      std::string compact = "{", spaced = "{ ";
      for (int i = 0; i < 3; ++i) {
        if (!(present & (1 << i))) continue;
        if (compact.size() > 1) compact.append(","), spaced.append(",\n  ");
        compact.append("\"").append(names[i]).append("\":").append(values[i]);
        spaced.append("\"").append(names[i]).append("\": ").append(values[i]);
      }
      compact.append("}");
      spaced.append(present ? " }" : "}");
      const bool ok = (present & required_mask) == required_mask;
      EXPECT_EQ(accepts(text, compact), ok) << text << "\n" << compact;
      EXPECT_EQ(accepts(text, spaced), ok) << text << "\n" << spaced;
    }
    for (const char* doc :
         {"{,\"a\":1}", "{\"a\":1,}", "{\"a\":1,,\"b\":\"s\"}", "{\"b\":\"s\",\"a\":1}", "{\"c\":true,\"a\":1}",
          "{\"a\":1,\"a\":1}", "{\"a\":1,\"b\":\"s\",\"c\":true,\"d\":1}", "{\"a\":\"1\"}", "{\"a\" 1}"})
      EXPECT_REJECTS(text, doc);
  }
}

TEST(JsonSchema, AdditionalProperties) {
  const std::string closed = R"({"type": "object", "properties": {"name": {"type": "string"}}})";
  EXPECT_ACCEPTS(closed, R"({"name": "x"})");
  EXPECT_ACCEPTS(closed, "{}");
  EXPECT_REJECTS(closed, R"({"name": "x", "other": 1})");
  EXPECT_REJECTS(closed, R"({"other": 1})");
  const std::string explicitly_closed = R"({"properties": {"a": {}}, "additionalProperties": false})";
  EXPECT_ACCEPTS(explicitly_closed, R"({"a": [1]})");
  EXPECT_REJECTS(explicitly_closed, R"({"b": 1})");

  const std::string open = R"({"properties": {"name": {"type": "string"}}, "required": ["name"],
                               "additionalProperties": true})";
  EXPECT_ACCEPTS(open, R"({"name": "x"})");
  EXPECT_ACCEPTS(open, R"({"name": "x", "age": 3, "tags": ["a"]})");
  EXPECT_ACCEPTS(open, R"({"name": "x", "nam": 1, "names": 2, "": 3, "n\u0061me": 4})");
  EXPECT_REJECTS(open, R"({"age": 3, "name": "x"})");     // declared ones come first
  EXPECT_REJECTS(open, R"({"name": "x", "name": "y"})");  // not again as another key
  EXPECT_REJECTS(open, R"({"name": "x", "age": 3,})");

  const std::string typed = R"({"type": "object", "properties": {"id": {"type": "integer"}},
                                "additionalProperties": {"type": "string"}})";
  EXPECT_ACCEPTS(typed, R"({"id": 1, "x": "y"})");
  EXPECT_ACCEPTS(typed, R"({"x": "y", "z": "w"})");
  EXPECT_ACCEPTS(typed, "{}");
  EXPECT_REJECTS(typed, R"({"id": 1, "x": 2})");
  EXPECT_REJECTS(typed, R"({"x": "y", "id": 1})");

  // No "properties": any keys, or values of a schema.
  const std::string map = R"({"type": "object", "additionalProperties": {"type": "integer"}})";
  EXPECT_ACCEPTS(map, R"({"a": 1, "b": 2})");
  EXPECT_REJECTS(map, R"({"a": "1"})");
  EXPECT_ACCEPTS(R"({"type": "object"})", R"({"anything": [1, {"x": null}]})");
  EXPECT_REJECTS(R"({"type": "object"})", "[]");
  EXPECT_ACCEPTS(R"({"type": "object", "properties": {}})", "{ }");
  EXPECT_REJECTS(R"({"type": "object", "properties": {}})", R"({"a": 1})");

  // A property whose schema is false may not appear.
  const std::string banned = R"({"properties": {"a": {}, "b": false}, "additionalProperties": true})";
  EXPECT_ACCEPTS(banned, R"({"a": 1, "c": 2})");
  EXPECT_REJECTS(banned, R"({"a": 1, "b": 2})");

  // Property names that need escaping, as keys and as rule names.
  const std::string odd = R"({"properties": {"a\"b": {"const": 1}, "x/y~z": {"const": 2}}, "required": ["a\"b"]})";
  EXPECT_ACCEPTS(odd, R"({"a\"b": 1, "x/y~z": 2})");
  EXPECT_REJECTS(odd, R"({"ab": 1})");
}

TEST(JsonSchema, PropertyCountsOnlyWhereTheyHoldAlready) {
  EXPECT_ACCEPTS(R"({"properties": {"a": {}}, "required": ["a"], "minProperties": 1, "maxProperties": 1})",
                 R"({"a": 1})");
  EXPECT_EQ(refusal(R"({"properties": {"a": {}}, "minProperties": 1})"),
            "json_schema: /: \"minProperties\" is not supported (only up to the number of required properties)");
  EXPECT_EQ(refusal(R"({"type": "object", "maxProperties": 3})"),
            "json_schema: /: \"maxProperties\" is not supported (only with no other keys allowed, at least the number "
            "of properties)");
}

TEST(JsonSchema, Arrays) {
  const std::string ints = R"({"type": "array", "items": {"type": "integer"}})";
  for (const char* doc : {"[]", "[1]", "[1,2,3]", "[ 1, 2 ]", "[\n  1,\n  2\n]"}) EXPECT_ACCEPTS(ints, doc);
  for (const char* doc : {"[1,]", "[,]", "[\"1\"]", "[1 2]", "1", "[1,,2]"}) EXPECT_REJECTS(ints, doc);

  const std::string bounded = R"({"items": {"type": "string"}, "minItems": 2, "maxItems": 3})";
  EXPECT_REJECTS(bounded, "[]");
  EXPECT_REJECTS(bounded, R"(["a"])");
  EXPECT_ACCEPTS(bounded, R"(["a", "b"])");
  EXPECT_ACCEPTS(bounded, R"(["a", "b", "c"])");
  EXPECT_REJECTS(bounded, R"(["a", "b", "c", "d"])");
  EXPECT_ACCEPTS(R"({"type": "array", "maxItems": 0})", "[]");
  EXPECT_REJECTS(R"({"type": "array", "maxItems": 0})", "[1]");
  EXPECT_ACCEPTS(R"({"type": "array", "minItems": 1})", R"([1, "x"])");
  EXPECT_REJECTS(R"({"type": "array", "minItems": 1})", "[]");

  const std::string tuple = R"({"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false})";
  EXPECT_ACCEPTS(tuple, R"(["a", 1])");
  EXPECT_ACCEPTS(tuple, R"(["a"])");
  EXPECT_ACCEPTS(tuple, "[]");
  EXPECT_REJECTS(tuple, R"(["a", 1, 2])");
  EXPECT_REJECTS(tuple, R"([1, "a"])");
  const std::string tuple_then_more =
      R"({"prefixItems": [{"type": "string"}], "items": {"type": "boolean"}, "minItems": 2, "maxItems": 4})";
  EXPECT_ACCEPTS(tuple_then_more, R"(["a", true])");
  EXPECT_ACCEPTS(tuple_then_more, R"(["a", true, false, true])");
  EXPECT_REJECTS(tuple_then_more, R"(["a"])");
  EXPECT_REJECTS(tuple_then_more, R"(["a", true, false, true, false])");
  EXPECT_REJECTS(tuple_then_more, R"(["a", "b"])");
  // Draft 7: "items" as a list, "additionalItems" for the rest.
  const std::string draft7 = R"({"items": [{"const": 1}, {"const": 2}], "additionalItems": {"const": 3}})";
  EXPECT_ACCEPTS(draft7, "[1,2,3,3]");
  EXPECT_ACCEPTS(draft7, "[1]");
  EXPECT_REJECTS(draft7, "[1,3]");
  EXPECT_ACCEPTS(R"({"type": "array", "uniqueItems": false})", "[1,1]");

  // The limits: 1000 items at most, expanded without trouble.
  const std::string thousand = R"({"items": {"const": 0}, "minItems": 1000, "maxItems": 1000})";
  std::string doc = "[0";
  for (int i = 1; i < 1000; ++i) doc.append(",0");
  EXPECT_ACCEPTS(thousand, doc + "]");
  EXPECT_REJECTS(thousand, doc + ",0]");
}

TEST(JsonSchema, StringLengthCountsCharacters) {
  const std::string schema = R"({"type": "string", "minLength": 2, "maxLength": 3})";
  for (const char* doc :
       {"\"ab\"", "\"abc\"", "\"\\n\\t\"", "\"a\\u00e9b\"", "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\""})
    EXPECT_ACCEPTS(schema, doc);
  for (const char* doc : {"\"a\"", "\"abcd\"", "\"\\n\"", "\"\"", "\"\\u00e9\\u00e9\\u00e9\\u00e9\""})
    EXPECT_REJECTS(schema, doc);
  EXPECT_ACCEPTS(R"({"maxLength": 0})", "\"\"");
  EXPECT_REJECTS(R"({"maxLength": 0})", "\"a\"");
  EXPECT_ACCEPTS(R"({"minLength": 1})", "\"abcdefgh\"");
  EXPECT_REJECTS(R"({"minLength": 1})", "\"\"");
  // Quoted by hand: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string&&.
  auto quoted = [](size_t n) {
    std::string s(n + 2, 'x');
    s.front() = s.back() = '"';
    return s;
  };
  EXPECT_ACCEPTS(R"({"type": "string", "maxLength": 10000})", quoted(10000));
  EXPECT_REJECTS(R"({"type": "string", "maxLength": 10000})", quoted(10001));
}

TEST(JsonSchema, Formats) {
  const std::string date = R"({"type": "string", "format": "date"})";
  for (const char* doc : {"\"2024-01-31\"", "\"1999-12-01\"", "\"0000-10-10\""}) EXPECT_ACCEPTS(date, doc);
  for (const char* doc : {"\"2024-13-01\"", "\"2024-00-10\"", "\"2024-01-32\"", "\"2024-01-00\"", "\"2024-1-01\"",
                          "\"24-01-01\"", "2024-01-01", "\"2024-01-01T00:00:00Z\""})
    EXPECT_REJECTS(date, doc);
  const std::string time = R"({"format": "time"})";
  for (const char* doc :
       {"\"23:59:59\"", "\"00:00:00.123\"", "\"12:30:00Z\"", "\"12:30:00+05:30\"", "\"01:02:03.5-08:00\""})
    EXPECT_ACCEPTS(time, doc);
  for (const char* doc :
       {"\"24:00:00\"", "\"12:60:00\"", "\"12:00\"", "\"12:00:00.\"", "\"12:00:00+5:00\"", "\"12:00:00 Z\""})
    EXPECT_REJECTS(time, doc);
  const std::string date_time = R"({"format": "date-time"})";
  EXPECT_ACCEPTS(date_time, "\"2024-02-29T08:15:00Z\"");
  EXPECT_ACCEPTS(date_time, "\"2024-02-29T08:15:00.25+01:00\"");
  EXPECT_REJECTS(date_time, "\"2024-02-29 08:15:00Z\"");
  EXPECT_REJECTS(date_time, "\"2024-02-29\"");
  const std::string uuid = R"({"format": "uuid"})";
  EXPECT_ACCEPTS(uuid, "\"123e4567-e89b-12d3-A456-426614174000\"");
  EXPECT_REJECTS(uuid, "\"123e4567e89b12d3a456426614174000\"");
  EXPECT_REJECTS(uuid, "\"123e4567-e89b-12d3-a456-42661417400g\"");
}

TEST(JsonSchema, Alternatives) {
  const std::string any_of = R"({"anyOf": [{"type": "string", "maxLength": 2}, {"type": "integer"}, false]})";
  EXPECT_ACCEPTS(any_of, "\"ab\"");
  EXPECT_ACCEPTS(any_of, "12");
  EXPECT_REJECTS(any_of, "\"abc\"");
  EXPECT_REJECTS(any_of, "1.5");
  // oneOf is read as anyOf.
  EXPECT_ACCEPTS(R"({"oneOf": [{"type": "string"}, {"type": "null"}]})", "null");
  EXPECT_ACCEPTS(R"({"allOf": [{"type": "boolean"}], "description": "one"})", "true");
  EXPECT_REJECTS(R"({"allOf": [{"type": "boolean"}]})", "1");
  // OpenAPI's nullable.
  EXPECT_ACCEPTS(R"({"type": "integer", "nullable": true})", "null");
  EXPECT_ACCEPTS(R"({"type": "integer", "nullable": true})", "5");
  EXPECT_REJECTS(R"({"type": "integer", "nullable": false})", "null");
  EXPECT_ACCEPTS(R"({"type": "object", "properties": {"a": {"allOf": [{"$ref": "#/$defs/x"}], "nullable": true}},
                     "$defs": {"x": {"type": "string"}}})",
                 R"({"a": null})");
}

TEST(JsonSchema, References) {
  const std::string tree = R"({
    "$defs": {"node": {"type": "object",
                       "properties": {"value": {"type": "integer"},
                                      "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
                       "required": ["value"]}},
    "$ref": "#/$defs/node"})";
  EXPECT_ACCEPTS(tree, R"({"value": 1})");
  EXPECT_ACCEPTS(tree, R"({"value": 1, "children": []})");
  EXPECT_ACCEPTS(
      tree, R"({"value": 1, "children": [{"value": 2}, {"value": 3, "children": [{"value": 4, "children": []}]}]})");
  EXPECT_REJECTS(tree, R"({"value": 1, "children": [{"children": []}]})");
  EXPECT_REJECTS(tree, R"({"value": 1, "children": [{"value": "2"}]})");
  const std::string grammar = json_schema_to_grammar(tree);
  EXPECT_NE(grammar.find("\nroot-defs-node ::= "), std::string::npos) << grammar;

  // "#" itself, and the draft-7 definitions.
  const std::string list = R"({"type": "object", "properties": {"next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]},
                                                                 "v": {"$ref": "#/definitions/v"}},
                               "required": ["next"], "definitions": {"v": {"enum": [1, 2]}}})";
  EXPECT_ACCEPTS(list, R"({"next": {"next": {"next": null, "v": 2}}, "v": 1})");
  EXPECT_REJECTS(list, R"({"next": {"v": 1}})");
  EXPECT_REJECTS(list, R"({"next": null, "v": 3})");

  // JSON pointer escapes (~0 ~1) and percent escapes in the fragment.
  const std::string escaped =
      R"({"$defs": {"a/b": {"const": "slash"}, "c~d": {"const": "tilde"}, "e f": {"const": "space"}},
          "anyOf": [{"$ref": "#/$defs/a~1b"}, {"$ref": "#/$defs/c~0d"}, {"$ref": "#/$defs/e%20f"}]})";
  EXPECT_ACCEPTS(escaped, "\"slash\"");
  EXPECT_ACCEPTS(escaped, "\"tilde\"");
  EXPECT_ACCEPTS(escaped, "\"space\"");
  // Two references to one definition share its rule.
  const std::string shared = R"({"$defs": {"p": {"type": "object", "properties": {"x": {"type": "number"}}}},
                                 "properties": {"from": {"$ref": "#/$defs/p"}, "to": {"$ref": "#/$defs/p"}}})";
  EXPECT_ACCEPTS(shared, R"({"from": {"x": 1}, "to": {}})");
  const std::string shared_grammar = json_schema_to_grammar(shared);
  EXPECT_EQ(shared_grammar.find("root-defs-p-2"), std::string::npos) << shared_grammar;
}

// Several locations of one document converted together (the qwen3_coder tool-call form takes
// each parameter's schema on its own): references resolve against the whole document, and a
// location reached twice has one rule.
TEST(JsonSchema, RulesAtSeveralLocations) {
  const std::string schema = R"({"type": "object", "$defs": {"n": {"type": "number"}},
      "properties": {"a": {"$ref": "#/$defs/n"}, "b": {"$ref": "#/$defs/n"}, "s": {"type": "string"},
                     "list": {"type": "array", "items": {"$ref": "#/$defs/n"}, "maxItems": 2}},
      "required": ["a"]})";
  std::vector<std::string> starts;
  const std::string rules = moevk::generate::json_schema_rules_at(
      schema, {"/properties/a", "/properties/b", "/properties/s", "/properties/list"}, "t", starts);
  ASSERT_EQ(starts.size(), 4u);
  EXPECT_EQ(starts[0], starts[1]);
  EXPECT_EQ(starts[2], "string");
  EXPECT_EQ(starts[3], "t-properties-list");
  for (const auto& [start, doc, ok] : std::vector<std::tuple<std::string, std::string, bool>>{
           {starts[0], "-1.5", true}, {starts[0], "\"1\"", false}, {starts[2], "\"x\"", true},
           {starts[3], "[1, 2]", true}, {starts[3], "[1, 2, 3]", false}, {starts[3], "[\"a\"]", false}}) {
    GrammarMatcher m(Grammar::parse("root ::= " + start + "\n" + rules));
    EXPECT_EQ(m.accept(doc) && m.accepting(), ok) << start << " " << doc << "\n" << rules;
  }
  // No rule for the document's root, which was not asked for.
  EXPECT_EQ(rules.find("\nt ::= "), std::string::npos) << rules;
  EXPECT_NE(rules.rfind("t ::= ", 0), 0u) << rules;
  auto refusal_at = [&](const std::string& pointer) {
    try {
      moevk::generate::json_schema_rules_at(schema, {pointer}, "t", starts);
    } catch (const moevk::Error& e) {
      return std::string(e.what());
    }
    return std::string("(converted)");
  };
  EXPECT_EQ(refusal_at("/properties/c"), "json_schema: /properties/c: does not resolve");
  EXPECT_EQ(refusal_at("properties"), "json_schema: properties: is not a JSON pointer");
}

TEST(JsonSchema, RuleNamesFollowTheSchemaAndOutputIsDeterministic) {
  const std::string schema = R"({"type": "object",
      "properties": {"user_name": {"type": "string", "maxLength": 8},
                     "tags": {"type": "array", "items": {"enum": ["a", "b"]}}},
      "required": ["user_name"]})";
  const std::string grammar = json_schema_to_grammar(schema);
  EXPECT_EQ(grammar, json_schema_to_grammar(schema));
  EXPECT_EQ(grammar.rfind("root ::= ", 0), 0u) << grammar;
  for (const char* rule : {"\nroot-properties-user-name ::= ", "\nroot-properties-tags-items ::= ", "\nws ::= "})
    EXPECT_NE(grammar.find(rule), std::string::npos) << rule << "\n" << grammar;
}

TEST(JsonSchema, RefusalsNameTheKeywordAndWhere) {
  EXPECT_EQ(refusal(R"({"properties": {"age": {"type": "integer", "minimum": 18}}})"),
            "json_schema: /properties/age: \"minimum\" is not supported (only 0 or 1 on an integer)");
  EXPECT_EQ(refusal(R"({"$ref": "#/$defs/missing"})"), "json_schema: /$ref: \"#/$defs/missing\" does not resolve");
  EXPECT_EQ(refusal(R"({"type": "strng"})"), "json_schema: /type: unknown type \"strng\"");
  EXPECT_EQ(refusal(R"({"type": "object", "propertys": {}})"), "json_schema: /: unknown keyword \"propertys\"");
  EXPECT_EQ(refusal(R"({"type": "string", "pattern": "^a"})"), "json_schema: /: \"pattern\" is not supported");
  EXPECT_EQ(refusal(R"({"items": {"not": {}}})"), "json_schema: /items: \"not\" is not supported");
  EXPECT_EQ(refusal(R"({"type": "array", "uniqueItems": true})"), "json_schema: /: \"uniqueItems\" is not supported");
  EXPECT_EQ(refusal(R"({"format": "email"})"),
            "json_schema: /format: format \"email\" is not supported (only date, time, date-time and uuid)");
  EXPECT_EQ(refusal(R"({"type": "number", "maximum": 5})"), "json_schema: /: \"maximum\" is not supported");
  EXPECT_EQ(refusal(R"({"type": "number", "minimum": 1})"),
            "json_schema: /: \"minimum\" is not supported (only 0 on a number)");
  EXPECT_EQ(refusal(R"({"allOf": [{}, {}]})"),
            "json_schema: /allOf: \"allOf\" with more than one schema is not supported");
  EXPECT_EQ(refusal(R"({"type": "object", "anyOf": [{}]})"),
            "json_schema: /: \"type\" alongside \"anyOf\" is not supported");
  EXPECT_EQ(refusal(R"({"$ref": "other.json#/a"})"),
            "json_schema: /$ref: \"other.json#/a\" is not supported (only references within the schema: \"#\", "
            "\"#/$defs/...\")");
  EXPECT_EQ(refusal(R"({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"})"),
            "json_schema: /$defs/a: refers to itself through \"$ref\" without any object or array in between");
  EXPECT_EQ(refusal(R"({"maxItems": 1001})"), "json_schema: /maxItems: 1001 is above the limit of 1000");
  EXPECT_EQ(refusal(R"({"minItems": 1001})"), "json_schema: /minItems: 1001 is above the limit of 1000");
  EXPECT_EQ(refusal(R"({"maxLength": 10001})"), "json_schema: /maxLength: 10001 is above the limit of 10000");
  EXPECT_EQ(refusal(R"({"minLength": 3, "maxLength": 2})"), "json_schema: /: \"minLength\" is above \"maxLength\"");
  EXPECT_EQ(refusal(R"({"prefixItems": [{}], "items": false, "minItems": 2})"),
            "json_schema: /: \"minItems\" 2 cannot be met: at most 1 items are allowed");
  EXPECT_EQ(refusal(R"({"required": ["a"]})"), "json_schema: /required: \"a\" is required but not in \"properties\"");
  std::string chain = R"({"$defs": {)";
  for (int i = 0; i < 300; ++i)
    chain.append("\"d" + std::to_string(i) + "\": {\"$ref\": \"#/$defs/d" + std::to_string(i + 1) + "\"}, ");
  chain.append(R"("d300": {"type": "null"}}, "$ref": "#/$defs/d0"})");
  EXPECT_EQ(refusal(chain), "json_schema: /$defs/d255: schemas nest (through \"$ref\") deeper than 256");
  EXPECT_EQ(refusal("false"), "json_schema: /: the schema false accepts no value");
  EXPECT_EQ(refusal("[]"), "json_schema: /: a schema must be an object or a boolean");
  EXPECT_EQ(refusal(R"({"type": "string", "enum": [1]})"), "json_schema: /enum: no value is of the schema's \"type\"");
  EXPECT_EQ(refusal(R"({"enum": ["a"], "maxLength": 3})"),
            "json_schema: /: \"maxLength\" alongside \"enum\" is not supported");
  EXPECT_EQ(refusal("{").rfind("json_schema is not JSON", 0), 0u) << refusal("{");
}

// Random JSON values (nested to depth 3, strings with escapes and UTF-8, numbers of every size
// the grammar bounds allow): the any-value schema takes each as dump() and dump(2) writes it,
// and {"type": "object"} takes exactly the objects.
TEST(JsonSchema, RandomValuesMatchAnyValueAndAnyObject) {
  std::mt19937 rng(1234);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  auto random_string = [&] {
    std::string s;
    for (int n = pick(8); n > 0; --n) {
      uint32_t cp;
      switch (pick(6)) {
        case 0: cp = uint32_t(pick(0x20)); break;  // control: written as an escape
        case 1: cp = "\"\\/"[pick(3)]; break;
        case 2: cp = 0x80 + uint32_t(pick(0x780)); break;        // two bytes
        case 3: cp = 0x800 + uint32_t(pick(0xD000)); break;      // three, below the surrogates
        case 4: cp = 0x10000 + uint32_t(pick(0x100000)); break;  // four
        default: cp = 0x20 + uint32_t(pick(0x5F)); break;        // printable ASCII
      }
      if (cp < 0x80) s.push_back(char(cp));
      else if (cp < 0x800) s += {char(0xC0 | (cp >> 6)), char(0x80 | (cp & 0x3F))};
      else if (cp < 0x10000) s += {char(0xE0 | (cp >> 12)), char(0x80 | ((cp >> 6) & 0x3F)), char(0x80 | (cp & 0x3F))};
      else
        s += {char(0xF0 | (cp >> 18)), char(0x80 | ((cp >> 12) & 0x3F)), char(0x80 | ((cp >> 6) & 0x3F)),
              char(0x80 | (cp & 0x3F))};
    }
    return s;
  };
  auto random_value = [&](auto&& self, int depth) -> nlohmann::ordered_json {
    switch (pick(depth < 3 ? 8 : 6)) {
      case 0: return nullptr;
      case 1: return pick(2) == 0;
      case 2: return std::uniform_int_distribution<int64_t>(-9999999999999999, 9999999999999999)(rng) >> pick(54);
      case 3: return std::ldexp(std::uniform_real_distribution<double>(-1, 1)(rng), pick(1800) - 900);
      case 4: return std::uniform_real_distribution<double>(-1e6, 1e6)(rng);
      case 5: return random_string();
      case 6: {
        auto a = nlohmann::ordered_json::array();
        for (int n = pick(4); n > 0; --n) a.push_back(self(self, depth + 1));
        return a;
      }
      default: {
        auto o = nlohmann::ordered_json::object();
        for (int n = pick(4); n > 0; --n) o[random_string()] = self(self, depth + 1);
        return o;
      }
    }
  };
  int objects = 0;
  for (int i = 0; i < 1000; ++i) {
    const auto value = random_value(random_value, 0);
    for (const std::string& text : {value.dump(), value.dump(2)}) {
      EXPECT_TRUE(accepts("{}", text)) << text;
      EXPECT_EQ(accepts(R"({"type": "object"})", text), value.is_object()) << text;
    }
    objects += value.is_object();
  }
  EXPECT_GT(objects, 100);
}

// A tool schema as an API client sends it, with a reply a model would write.
TEST(JsonSchema, ToolSchemaEndToEnd) {
  const std::string schema = R"({
    "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "create_event", "type": "object",
    "properties": {
      "title": {"type": "string", "minLength": 1, "maxLength": 100, "description": "what"},
      "start": {"type": "string", "format": "date-time"},
      "attendees": {"type": "array", "items": {"$ref": "#/$defs/person"}, "maxItems": 20},
      "priority": {"enum": ["low", "normal", "high"], "default": "normal"},
      "reminder_minutes": {"type": ["integer", "null"], "minimum": 0},
      "location": {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/place"}]}
    },
    "required": ["title", "start"], "additionalProperties": false,
    "$defs": {
      "person": {"type": "object", "properties": {"name": {"type": "string"}, "email": {"type": "string"}},
                 "required": ["name"]},
      "place": {"type": "object", "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
                "required": ["lat", "lon"]}
    }})";
  EXPECT_ACCEPTS(schema, R"({"title": "Standup", "start": "2024-05-01T09:00:00Z"})");
  EXPECT_ACCEPTS(schema, R"({
  "title": "Review",
  "start": "2024-05-01T09:00:00+02:00",
  "attendees": [
    {"name": "Ann", "email": "ann@example.com"},
    {"name": "Bo"}
  ],
  "priority": "high",
  "reminder_minutes": null,
  "location": {"lat": 52.5, "lon": 13.4}
})");
  EXPECT_ACCEPTS(schema, R"({"title":"x","start":"2024-05-01T09:00:00Z","reminder_minutes":15,"location":"Room 1"})");
  EXPECT_REJECTS(schema, R"({"title": "", "start": "2024-05-01T09:00:00Z"})");
  EXPECT_REJECTS(schema, R"({"start": "2024-05-01T09:00:00Z", "title": "x"})");
  EXPECT_REJECTS(schema, R"({"title": "x", "start": "2024-05-01"})");
  EXPECT_REJECTS(schema, R"({"title": "x", "start": "2024-05-01T09:00:00Z", "priority": "urgent"})");
  EXPECT_REJECTS(schema, R"({"title": "x", "start": "2024-05-01T09:00:00Z", "reminder_minutes": -5})");
  EXPECT_REJECTS(schema, R"({"title": "x", "start": "2024-05-01T09:00:00Z", "attendees": [{"email": "a@b"}]})");
  EXPECT_REJECTS(schema, R"({"title": "x", "start": "2024-05-01T09:00:00Z", "location": {"lat": 1}})");
  EXPECT_REJECTS(schema, R"({"title": "x", "start": "2024-05-01T09:00:00Z", "notes": "y"})");
}
