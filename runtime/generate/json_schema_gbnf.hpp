// The text side of json_schema.cpp: GBNF literals, rule names from schema locations, JSON
// pointers, and the fixed rules (whitespace, strings, numbers, any value, formats) that the
// schema's rules use.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moevk::generate::json_schema_gbnf {

// `text` as a GBNF string literal, quotes included.
std::string gbnf_literal(std::string_view text);
// A character (UTF-8, one code point) written to stand inside a GBNF class.
std::string class_member(std::string_view utf8_char);
// `text` as JSON writes it, for messages: "name".
std::string json_quoted(std::string_view text);

// JSON pointers: `pointer` with one more segment (~ and / escaped), and the segments of a
// pointer (unescaped; none where it is malformed). The root is "".
std::string pointer_join(const std::string& pointer, std::string_view segment);
std::optional<std::vector<std::string>> split_pointer(std::string_view pointer);
// A URI fragment with its %XX escapes resolved.
std::string percent_decoded(std::string_view fragment);

// "root" and the pointer's segments, each cut down to [a-zA-Z0-9-]: "root-properties-name".
std::string rule_name_for(const std::string& pointer, const std::string& root);
bool is_rule_name(std::string_view text);

// The content of a JSON string as written, cut into what reads as one character: a UTF-8
// character or an escape ("\n", "\u00e9").
std::vector<std::string> written_characters(std::string_view written);

std::string join(const std::vector<std::string>& parts, std::string_view separator);
// " " + text, or nothing for empty text: for appending an item that may be absent.
std::string then(const std::string& text);
// The GBNF suffix for lo..hi repetitions (hi none: unbounded): "*", "?", "{2,5}", ...
std::string repetition(uint64_t lo, std::optional<uint64_t> hi);

struct Primitive {
  std::string body;
  std::vector<std::string_view> uses;  // the other primitives it refers to
};
// The primitive rule `name` (ws, char, string, number, value, date, ...); throws for an unknown
// name (a bug here, not in a schema).
const Primitive& primitive(std::string_view name);

}  // namespace moevk::generate::json_schema_gbnf
