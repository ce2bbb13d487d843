// JSON Schema to GBNF (grammar.hpp), for generation constrained to a tool's or a response's
// schema. The grammar's sentences are JSON texts the schema accepts, written with bounded
// whitespace between tokens (none, one space, or a newline and up to 20 spaces or tabs) so that a
// model cannot pad forever; the text starts with the value and ends with it.
//
// What the schema may say, and how it is read:
//   type            string, number, integer, boolean, null, object, array, or a list of them.
//                   Without "type", the types are those the schema's keywords speak of
//                   ("properties" makes it an object, "minLength" a string, ...); a schema with
//                   none of them ({} or true) is any JSON value.
//   enum, const     each value's compact JSON text (no whitespace inside), kept to those of the
//                   "type" when one is given; no other keyword beside them.
//   properties      in the schema's order; a property not "required" may be left out.
//   additionalProperties
//                   false: no other keys; true or a schema: more "key": value pairs after the
//                   declared ones, their keys any string but a declared one (as JSON writes it: a
//                   declared key spelled with other escapes, "\u0061ge" for "age", gets through).
//                   Absent: no other keys when "properties" is given (as OpenAI's strict
//                   structured outputs read it), any keys when it is not ({"type": "object"} is
//                   any object).
//   minProperties, maxProperties
//                   only where they hold already (the required keys reach the minimum, the
//                   declared keys stay under the maximum with no other keys allowed).
//   items, prefixItems (and draft-7 "items" as a list with "additionalItems"), minItems and
//                   maxItems (up to 1000).
//   minLength, maxLength (characters, an escape being one; up to 10000), format date, time,
//                   date-time and uuid.
//   numbers         "-"? ("0" | [1-9] up to 15 more digits), a fraction of up to 20 digits (what
//                   a shortest round-trip double takes: 0.00020745634677353335) and an exponent
//                   of up to 3: a model cannot write digits forever. Bounds only where
//                   they drop the sign: minimum 0 (or exclusiveMinimum -1) and, for integers,
//                   minimum 1 (or exclusiveMinimum 0).
//   anyOf, oneOf    alternatives; oneOf is read as anyOf (a value that two alternatives accept is
//                   not refused, as a grammar cannot tell cheaply).
//   allOf           with exactly one schema.
//   $ref            "#" or "#/..." within this schema (#/$defs/NAME, #/definitions/NAME); one rule
//                   per referenced schema, so recursive schemas work.
//   nullable: true  (OpenAPI) null as well.
// "$ref", anyOf, oneOf and allOf take no other keyword beside them but "nullable" and annotations.
// Annotations (title, description, default, examples, $schema, $id, $anchor, $comment,
// deprecated, readOnly, writeOnly, and the $defs and definitions containers) are ignored.
//
// Rules are named after the schema's location ("root-properties-name"). Every other keyword is
// refused rather than ignored, so that a schema never silently allows more than it says:
// moevk::Error(MOEVK_ERROR_INVALID_ARGUMENT, "json_schema: <JSON pointer>: <what>"), the pointer
// that of the schema ("/" for the root) or of the keyword at fault:
//   json_schema: /properties/age: "minimum" is not supported ...
//   json_schema: /$ref: "#/$defs/missing" does not resolve
//   json_schema: /type: unknown type "strng"
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace moevk::generate {

// GBNF text (start rule "root") whose sentences are the JSON texts `schema_json` accepts.
// `root` names the start rule instead, and begins the names of the schema's rules, so the
// grammar can be a part of a larger one (the primitive rules keep their names: ws, string, ...).
std::string json_schema_to_grammar(std::string_view schema_json, const std::string& root = "root");

// The rules for the schemas at several JSON `pointers` within one document (a tool's parameters
// and "/properties/city"): "$ref"s resolve against the whole document, and each location gets
// one rule however many pointers reach it. `starts` gets the rule that begins each (a schema's
// rule, root + its location, or a primitive one such as "string"). The document's own keywords
// outside those locations are not read. Throws as json_schema_to_grammar, and for a pointer
// that does not resolve.
std::string json_schema_rules_at(std::string_view schema_json, const std::vector<std::string>& pointers,
                                 const std::string& root, std::vector<std::string>& starts);

}  // namespace moevk::generate
