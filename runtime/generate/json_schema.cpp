// JSON Schema to GBNF: one rule per schema location, built depth first; primitive rules (ws,
// string, number, ...) are added the first time something uses them.
//
// Two things keep the grammar within what the parser takes. Whitespace is written once between
// tokens (after "{", ":", "," and every value inside a container), never twice in a row, so no
// text reads two ways for its spaces. And nothing repeated can match the empty string: every
// repeated item begins with "," or a character.
#include "generate/json_schema.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "common/error.hpp"
#include "common/ordered_json.hpp"
#include "generate/json_schema_gbnf.hpp"

namespace moevk::generate {

namespace {

using Json = nlohmann::ordered_json;
using namespace json_schema_gbnf;

constexpr uint64_t kMaxItemsBound = 1000;
constexpr uint64_t kMaxLengthBound = 10000;
constexpr size_t kMaxOpen = 256;  // schemas being converted at once: bounds the recursion

enum class Role { Annotation, Supported, Unsupported };

std::optional<Role> keyword_role(std::string_view key) {
  static const std::map<std::string_view, Role> roles = {
      {"title", Role::Annotation}, {"description", Role::Annotation}, {"default", Role::Annotation},
      {"examples", Role::Annotation}, {"$schema", Role::Annotation}, {"$id", Role::Annotation},
      {"$anchor", Role::Annotation}, {"$comment", Role::Annotation}, {"deprecated", Role::Annotation},
      {"readOnly", Role::Annotation}, {"writeOnly", Role::Annotation}, {"$defs", Role::Annotation},
      {"definitions", Role::Annotation},
      {"type", Role::Supported}, {"enum", Role::Supported}, {"const", Role::Supported},
      {"properties", Role::Supported}, {"required", Role::Supported}, {"additionalProperties", Role::Supported},
      {"minProperties", Role::Supported}, {"maxProperties", Role::Supported}, {"items", Role::Supported},
      {"prefixItems", Role::Supported}, {"additionalItems", Role::Supported}, {"minItems", Role::Supported},
      {"maxItems", Role::Supported}, {"minLength", Role::Supported}, {"maxLength", Role::Supported},
      {"format", Role::Supported}, {"minimum", Role::Supported}, {"maximum", Role::Supported},
      {"exclusiveMinimum", Role::Supported}, {"exclusiveMaximum", Role::Supported}, {"multipleOf", Role::Supported},
      {"anyOf", Role::Supported}, {"oneOf", Role::Supported}, {"allOf", Role::Supported}, {"$ref", Role::Supported},
      {"nullable", Role::Supported}, {"uniqueItems", Role::Supported},
      {"pattern", Role::Unsupported}, {"not", Role::Unsupported}, {"if", Role::Unsupported},
      {"then", Role::Unsupported}, {"else", Role::Unsupported}, {"patternProperties", Role::Unsupported},
      {"dependentRequired", Role::Unsupported}, {"dependentSchemas", Role::Unsupported},
      {"dependencies", Role::Unsupported}, {"propertyNames", Role::Unsupported}, {"contains", Role::Unsupported},
      {"minContains", Role::Unsupported}, {"maxContains", Role::Unsupported},
      {"unevaluatedProperties", Role::Unsupported}, {"unevaluatedItems", Role::Unsupported},
      {"$dynamicRef", Role::Unsupported}, {"$dynamicAnchor", Role::Unsupported}, {"$recursiveRef", Role::Unsupported},
      {"$recursiveAnchor", Role::Unsupported}, {"$vocabulary", Role::Unsupported},
      {"contentEncoding", Role::Unsupported}, {"contentMediaType", Role::Unsupported},
      {"contentSchema", Role::Unsupported}, {"discriminator", Role::Unsupported},
  };
  auto it = roles.find(key);
  if (it == roles.end()) return std::nullopt;
  return it->second;
}

// The keywords that compose other schemas; each stands alone (with annotations and "nullable").
constexpr std::string_view kComposers[] = {"$ref", "anyOf", "oneOf", "allOf"};

const std::vector<std::string_view>& keywords_of(std::string_view type) {
  static const std::map<std::string_view, std::vector<std::string_view>> by_type = {
      {"object", {"properties", "required", "additionalProperties", "minProperties", "maxProperties"}},
      {"array", {"items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems"}},
      {"string", {"minLength", "maxLength", "format"}},
      {"number", {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}},
  };
  static const std::vector<std::string_view> none;
  auto it = by_type.find(type);
  return it == by_type.end() ? none : it->second;
}

bool is_known_type(std::string_view t) {
  return t == "string" || t == "number" || t == "integer" || t == "boolean" || t == "null" || t == "object" ||
         t == "array";
}

bool has_type(const Json& value, std::string_view type) {
  if (type == "string") return value.is_string();
  if (type == "number") return value.is_number();
  if (type == "integer")
    return value.is_number_integer() || (value.is_number_float() && std::isfinite(value.get<double>()) &&
                                         std::floor(value.get<double>()) == value.get<double>());
  if (type == "boolean") return value.is_boolean();
  if (type == "null") return value.is_null();
  if (type == "object") return value.is_object();
  return value.is_array();
}

class Converter {
 public:
  Converter(const Json& document, std::string root) : document_(document), root_(std::move(root)) {}

  std::string run() {
    const std::string root = visit(document_, "");
    if (root != root_) fail(MOEVK_ERROR_INVALID_ARGUMENT, "json_schema: internal error: root rule not kept");
    return rules_text();
  }

  // The rules for the schemas at `pointers` within the document ("$ref"s resolve against all of
  // it), the rule that starts each in `starts`: a schema rule, or a primitive one ("string").
  std::string run_at(const std::vector<std::string>& pointers, std::vector<std::string>& starts) {
    starts.clear();
    for (const auto& pointer : pointers) {
      const auto segments = split_pointer(pointer);
      if (!segments) refuse(pointer, "is not a JSON pointer");
      std::string at;
      starts.push_back(visit(*resolve(*segments, at, [&] { refuse(pointer, "does not resolve"); }), at));
    }
    return rules_text();
  }

 private:
  // The schema at the pointer's `segments` (its location written to `at`); `missing` when none.
  template <class F>
  const Json* resolve(const std::vector<std::string>& segments, std::string& at, F missing) {
    const Json* target = &document_;
    at.clear();
    for (const auto& segment : segments) {
      if (target->is_object() && target->contains(segment)) {
        target = &(*target)[segment];
      } else if (target->is_array() && !segment.empty() && segment.size() < 10 &&
                 segment.find_first_not_of("0123456789") == std::string::npos && std::stoul(segment) < target->size()) {
        target = &(*target)[std::stoul(segment)];
      } else {
        missing();
      }
      at = pointer_join(at, segment);
    }
    return target;
  }

  std::string rules_text() const {
    // The schema's rules first, the root leading; the primitive ones after them.
    std::string out, primitive_rules;
    for (const auto& r : rules_)
      if (!r.name.empty())  // not a dropped one (see visit)
        (primitives_.count(r.name) ? primitive_rules : out).append(r.name).append(" ::= ").append(r.body).append("\n");
    return out.append(primitive_rules);
  }

  struct Rule {
    std::string name, body;
  };
  struct Open {
    size_t rule;      // index in rules_
    size_t depth;     // place in the chain of open locations
    bool referenced;  // used before its body was done (a recursive reference)
  };

  [[noreturn]] static void refuse(const std::string& pointer, const std::string& what) {
    std::string message = "json_schema: ";
    message.append(pointer.empty() ? "/" : pointer).append(": ").append(what);
    fail(MOEVK_ERROR_INVALID_ARGUMENT, std::move(message));
  }

  std::string unique_name(const std::string& base) {
    std::string name = base;
    for (int n = 2; names_.count(name); ++n) name = base + "-" + std::to_string(n);
    names_.insert(name);
    return name;
  }

  std::string add_rule(const std::string& base, std::string body) {
    std::string name = unique_name(base);
    rules_.push_back({name, std::move(body)});
    return name;
  }

  // A primitive rule (and those it uses), defined on first use.
  std::string use(std::string_view name) {
    if (!primitives_.count(std::string(name))) {
      const Primitive& p = primitive(name);
      primitives_.insert(std::string(name));
      names_.insert(std::string(name));
      rules_.push_back({std::string(name), p.body});
      for (auto dep : p.uses) use(dep);
    }
    return std::string(name);
  }

  // The rule for the schema at `pointer`, made once per location.
  std::string visit(const Json& schema, const std::string& pointer) {
    if (auto done = done_.find(pointer); done != done_.end()) return done->second;
    if (auto open = open_.find(pointer); open != open_.end()) {
      // A location reached again while its rule is being made: fine when a "{" or "[" has been read
      // on the way (the rule then starts with a character), left recursion otherwise.
      if (open->second.depth >= barrier_)
        refuse(pointer, "refers to itself through \"$ref\" without any object or array in between");
      open->second.referenced = true;
      return rules_[open->second.rule].name;
    }
    if (chain_ >= kMaxOpen)
      refuse(pointer, "schemas nest (through \"$ref\") deeper than " + std::to_string(kMaxOpen));
    const size_t index = rules_.size();
    const std::string name = add_rule(rule_name_for(pointer, root_), "");
    open_[pointer] = {index, chain_++, false};
    std::string body = schema_body(schema, pointer);
    const bool referenced = open_[pointer].referenced;
    open_.erase(pointer);
    --chain_;
    // A location that is just another rule ({"type": "string"}) gets no rule of its own.
    if (!referenced && !pointer.empty() && is_rule_name(body)) {
      rules_[index].name.clear();
      names_.erase(name);
      return done_[pointer] = body;
    }
    rules_[index].body = std::move(body);
    return done_[pointer] = name;
  }

  // Runs `make` with the chain of open locations behind a "{" or "[" (see visit).
  template <class F>
  auto after_bracket(F make) {
    const size_t saved = barrier_;
    barrier_ = chain_;
    auto result = make();
    barrier_ = saved;
    return result;
  }

  std::string schema_body(const Json& schema, const std::string& pointer) {
    if (schema.is_boolean()) {
      if (!schema.get<bool>()) refuse(pointer, "the schema false accepts no value");
      return use("value");
    }
    if (!schema.is_object()) refuse(pointer, "a schema must be an object or a boolean");
    std::vector<std::string> constraints;  // supported keywords other than "nullable", in order
    for (const auto& [key, value] : schema.items()) {
      const auto role = keyword_role(key);
      if (!role) refuse(pointer, "unknown keyword " + json_quoted(key));
      if (*role == Role::Unsupported) refuse(pointer, json_quoted(key) + " is not supported");
      if ((key == "$defs" || key == "definitions") && !value.is_object())
        refuse(pointer_join(pointer, key), "must be an object of schemas");
      if (key == "nullable" && !value.is_boolean()) refuse(pointer_join(pointer, key), "must be true or false");
      if (key == "uniqueItems" && value != Json(false)) refuse(pointer, "\"uniqueItems\" is not supported");
      if (*role == Role::Supported && key != "nullable" && key != "uniqueItems") constraints.push_back(key);
    }
    const bool nullable = schema.contains("nullable") && schema["nullable"].get<bool>();

    std::vector<std::string> alternatives;
    auto composer = std::find_first_of(constraints.begin(), constraints.end(), std::begin(kComposers),
                                       std::end(kComposers));
    auto literal = std::find_if(constraints.begin(), constraints.end(),
                                [](const std::string& k) { return k == "enum" || k == "const"; });
    if (composer != constraints.end()) {
      for (const auto& other : constraints)
        if (other != *composer)
          refuse(pointer, json_quoted(other) + " alongside " + json_quoted(*composer) + " is not supported");
      alternatives = composed(schema, pointer, *composer);
    } else if (literal != constraints.end()) {
      for (const auto& other : constraints)
        if (other != *literal && other != "type")
          refuse(pointer, json_quoted(other) + " alongside " + json_quoted(*literal) + " is not supported");
      alternatives = literals(schema, pointer, *literal);
    } else {
      const std::vector<std::string> types = types_of(schema, pointer);
      if (types.empty()) return use("value");
      for (const auto& type : types) alternatives.push_back(typed(schema, pointer, type));
    }
    const auto has = [&](const char* rule) {
      return std::find(alternatives.begin(), alternatives.end(), rule) != alternatives.end();
    };
    if (nullable && !has("value") && !has("null") && !has("\"null\""))
      alternatives.push_back(use("null"));
    return join(alternatives, " | ");
  }

  std::vector<std::string> composed(const Json& schema, const std::string& pointer, const std::string& keyword) {
    const std::string at = pointer_join(pointer, keyword);
    const Json& value = schema[keyword];
    if (keyword == "$ref") return {reference(value, at)};
    if (!value.is_array() || value.empty()) refuse(at, "must be a non-empty array of schemas");
    if (keyword == "allOf") {
      if (value.size() != 1) refuse(at, "\"allOf\" with more than one schema is not supported");
      return {visit(value[0], pointer_join(at, "0"))};
    }
    // oneOf is read as anyOf: a grammar cannot cheaply refuse a value that two alternatives accept.
    std::vector<std::string> alternatives;
    for (size_t i = 0; i < value.size(); ++i) {
      if (value[i] == Json(false)) continue;
      const std::string name = visit(value[i], pointer_join(at, std::to_string(i)));
      if (std::find(alternatives.begin(), alternatives.end(), name) == alternatives.end()) alternatives.push_back(name);
    }
    if (alternatives.empty()) refuse(at, "every alternative is the schema false");
    return alternatives;
  }

  std::string reference(const Json& ref, const std::string& at) {
    if (!ref.is_string()) refuse(at, "must be a string");
    const std::string text = ref.get<std::string>();
    if (text.empty() || text[0] != '#')
      refuse(at, json_quoted(text) + " is not supported (only references within the schema: \"#\", \"#/$defs/...\")");
    const auto segments = split_pointer(percent_decoded(text.substr(1)));
    if (!segments) refuse(at, json_quoted(text) + " does not resolve");
    std::string pointer;
    const Json* target = resolve(*segments, pointer, [&] { refuse(at, json_quoted(text) + " does not resolve"); });
    return visit(*target, pointer);
  }

  std::vector<std::string> literals(const Json& schema, const std::string& pointer, const std::string& keyword) {
    const std::string at = pointer_join(pointer, keyword);
    std::vector<Json> values;
    if (keyword == "const") {
      values.push_back(schema[keyword]);
    } else {
      if (!schema[keyword].is_array() || schema[keyword].empty()) refuse(at, "must be a non-empty array");
      for (const auto& v : schema[keyword]) values.push_back(v);
    }
    std::vector<std::string> types;
    if (schema.contains("type")) types = types_of(schema, pointer);
    std::vector<std::string> alternatives;
    for (const auto& v : values) {
      const bool typed = types.empty() || std::any_of(types.begin(), types.end(),
                                                      [&](const std::string& t) { return has_type(v, t); });
      const std::string text = gbnf_literal(v.dump());
      if (typed && std::find(alternatives.begin(), alternatives.end(), text) == alternatives.end())
        alternatives.push_back(text);
    }
    if (alternatives.empty()) refuse(at, "no value is of the schema's \"type\"");
    return alternatives;
  }

  // The types a schema allows: its "type", or those its keywords speak of; none: any value.
  std::vector<std::string> types_of(const Json& schema, const std::string& pointer) {
    std::vector<std::string> types;
    if (schema.contains("type")) {
      const std::string at = pointer_join(pointer, "type");
      const Json& type = schema["type"];
      const std::vector<Json> listed =
          type.is_array() ? std::vector<Json>(type.begin(), type.end()) : std::vector<Json>{type};
      if (listed.empty()) refuse(at, "must name at least one type");
      for (const auto& t : listed) {
        if (!t.is_string()) refuse(at, "must be a type name or a list of them");
        const std::string name = t.get<std::string>();
        if (!is_known_type(name)) refuse(at, "unknown type " + json_quoted(name));
        if (std::find(types.begin(), types.end(), name) == types.end()) types.push_back(name);
      }
    } else {
      for (std::string_view type : {"object", "array", "string", "number"})
        for (auto keyword : keywords_of(type))
          if (schema.contains(keyword) && keyword != "uniqueItems") {
            types.emplace_back(type);
            break;
          }
    }
    // Every integer is a number; both would read an integer two ways.
    if (std::find(types.begin(), types.end(), "number") != types.end())
      types.erase(std::remove(types.begin(), types.end(), "integer"), types.end());
    return types;
  }

  std::string typed(const Json& schema, const std::string& pointer, const std::string& type) {
    if (type == "boolean") return use("boolean");
    if (type == "null") return use("null");
    if (type == "string") return string_rule(schema, pointer);
    if (type == "number" || type == "integer") return number_rule(schema, pointer, type == "integer");
    if (type == "object") return after_bracket([&] { return object_rule(schema, pointer); });
    return after_bracket([&] { return array_rule(schema, pointer); });
  }

  // A count keyword's value (minLength, maxItems, ...): a whole number up to `limit`.
  static std::optional<uint64_t> count_of(const Json& schema, const std::string& pointer, const char* keyword,
                                          uint64_t limit) {
    if (!schema.contains(keyword)) return std::nullopt;
    const std::string at = pointer_join(pointer, keyword);
    const Json& v = schema[keyword];
    const double d = v.is_number() ? v.get<double>() : -1;
    if (d < 0 || std::floor(d) != d) refuse(at, "must be a whole number, 0 or more");
    if (d > double(limit)) refuse(at, v.dump() + " is above the limit of " + std::to_string(limit));
    return v.is_number_unsigned() ? v.get<uint64_t>() : uint64_t(d);
  }

  std::string string_rule(const Json& schema, const std::string& pointer) {
    const auto min = count_of(schema, pointer, "minLength", kMaxLengthBound);
    const auto max = count_of(schema, pointer, "maxLength", kMaxLengthBound);
    if (schema.contains("format")) {
      const std::string at = pointer_join(pointer, "format");
      if (min || max)
        refuse(pointer, std::string(min ? "\"minLength\"" : "\"maxLength\"") +
                            " alongside \"format\" is not supported");
      const Json& format = schema["format"];
      if (!format.is_string()) refuse(at, "must be a string");
      const std::string name = format.get<std::string>();
      if (name != "date" && name != "time" && name != "date-time" && name != "uuid")
        refuse(at, "format " + json_quoted(name) + " is not supported (only date, time, date-time and uuid)");
      return use(name);
    }
    if (min && max && *min > *max) refuse(pointer, "\"minLength\" is above \"maxLength\"");
    if (!max && min.value_or(0) == 0) return use("string");
    return "\"\\\"\" " + use("char") + repetition(min.value_or(0), max) + " \"\\\"\"";
  }

  std::string number_rule(const Json& schema, const std::string& pointer, bool integer) {
    for (const char* keyword : {"maximum", "exclusiveMaximum", "multipleOf"})
      if (schema.contains(keyword)) refuse(pointer, json_quoted(keyword) + " is not supported");
    // The lower bounds that drop the sign: 0 = no minus, 1 = no minus and not zero (integers).
    int floor = -1;
    for (const char* keyword : {"minimum", "exclusiveMinimum"}) {
      if (!schema.contains(keyword)) continue;
      const Json& v = schema[keyword];
      const bool exclusive = keyword[0] == 'e';
      const double bound = v.is_number() ? v.get<double>() + (exclusive ? 1 : 0) : -2;
      if (bound != 0 && !(integer && bound == 1))
        refuse(pointer, json_quoted(keyword) + " is not supported (only " + (exclusive ? "-1" : "0") +
                            (integer ? (exclusive ? " or 0" : " or 1") : "") +
                            (integer ? " on an integer)" : " on a number)"));
      floor = std::max(floor, int(bound));
    }
    if (!integer) return use(floor == 0 ? "nonnegative-number" : "number");
    return use(floor == 1 ? "positive-integer" : floor == 0 ? "nonnegative-integer" : "integer");
  }

  std::string object_rule(const Json& schema, const std::string& pointer);
  std::string array_rule(const Json& schema, const std::string& pointer);
  std::string key_except(const std::vector<std::string>& declared, const std::string& base);

  const Json& document_;
  const std::string root_;  // the start rule's name, which begins every schema rule's name
  std::vector<Rule> rules_;                  // in the order made; the root's first
  std::set<std::string> names_;              // every rule name taken
  std::set<std::string> primitives_;         // primitive rules defined so far
  std::map<std::string, std::string> done_;  // schema location -> its rule
  std::map<std::string, Open> open_;         // locations whose rules are being made
  size_t chain_ = 0;                         // how many are open
  size_t barrier_ = 0;                       // open locations from here on have read no bracket yet
};

// An object: the declared properties in order, each optional one possibly left out, then (where
// allowed) further pairs. Commas are right in every combination because the first property
// written takes no comma and every later one does: `first` lists where the object can begin (at
// property i, when none before it is written; never past a required one), and after-i the
// properties from i on once something is written.
std::string Converter::object_rule(const Json& schema, const std::string& pointer) {
  const std::string base = rule_name_for(pointer, root_);
  const Json* properties = nullptr;
  if (schema.contains("properties")) {
    properties = &schema["properties"];
    if (!properties->is_object()) refuse(pointer_join(pointer, "properties"), "must be an object of schemas");
  }
  std::set<std::string> required;
  if (schema.contains("required")) {
    const std::string at = pointer_join(pointer, "required");
    const Json& list = schema["required"];
    if (!list.is_array()) refuse(at, "must be an array of property names");
    for (const auto& name : list) {
      if (!name.is_string()) refuse(at, "must be an array of property names");
      if (!properties || !properties->contains(name.get<std::string>()))
        refuse(at, json_quoted(name.get<std::string>()) + " is required but not in \"properties\"");
      required.insert(name.get<std::string>());
    }
  }
  std::optional<std::string> additional;  // the rule for further values; none: no other keys
  if (schema.contains("additionalProperties")) {
    const Json& more = schema["additionalProperties"];
    if (more != Json(false)) additional = visit(more, pointer_join(pointer, "additionalProperties"));
  } else if (!properties) {
    additional = use("value");
  }

  struct Property {
    std::string pair;  // the rule for `"key": value` and the whitespace after it
    bool required;
  };
  std::vector<Property> declared;
  std::vector<std::string> declared_keys;
  if (properties) {
    for (const auto& [key, value] : properties->items()) {
      const std::string at = pointer_join(pointer_join(pointer, "properties"), key);
      declared_keys.push_back(key);
      if (value == Json(false)) {  // the key may not appear
        if (required.count(key)) refuse(at, "a required property cannot have the schema false");
        continue;
      }
      const std::string value_rule = visit(value, at);
      std::string body = gbnf_literal(Json(key).dump());
      body.append(" ").append(use("ws")).append(" \":\" ws ").append(value_rule).append(" ws");
      declared.push_back({add_rule(rule_name_for(at, root_) + "-pair", std::move(body)), required.count(key) > 0});
    }
  }
  if (auto min = count_of(schema, pointer, "minProperties", UINT64_MAX); min && *min > required.size())
    refuse(pointer, "\"minProperties\" is not supported (only up to the number of required properties)");
  if (auto max = count_of(schema, pointer, "maxProperties", UINT64_MAX); max && (additional || *max < declared.size()))
    refuse(pointer, "\"maxProperties\" is not supported (only with no other keys allowed, at least the "
                    "number of properties)");
  if (!properties && additional == "value") return use("object");

  std::string more_pairs;  // further pairs after something was written
  std::string first_more;  // further pairs when nothing was written before them
  if (additional) {
    const std::string key = declared_keys.empty() ? use("string") : key_except(declared_keys, base + "-additional-key");
    std::string body = key;
    body.append(" ").append(use("ws")).append(" \":\" ws ").append(*additional).append(" ws");
    const std::string pair = add_rule(base + "-additional-pair", std::move(body));
    more_pairs = "(\",\" ws " + pair + ")*";
    first_more = pair + " " + more_pairs;
  }

  const size_t n = declared.size();
  size_t first_required = n;
  for (size_t i = 0; i < n && first_required == n; ++i)
    if (declared[i].required) first_required = i;
  // after[i]: properties i.. with a comma each. after[i] is its own rule where both after[i - 1]
  // and a place in `first` use it, inlined otherwise.
  std::vector<std::string> after(n + 1);
  after[n] = more_pairs;
  for (size_t i = n; i-- > 1;) {
    std::string piece = "\",\" ws " + declared[i].pair;
    std::string text = declared[i].required ? piece + then(after[i + 1]) : "(" + piece + ")?" + then(after[i + 1]);
    after[i] = i >= 2 && i - 1 <= first_required ? add_rule(base + "-after-" + std::to_string(i), std::move(text))
                                                  : std::move(text);
  }
  std::vector<std::string> first;
  for (size_t i = 0; i < n && i <= first_required; ++i) first.push_back(declared[i].pair + then(after[i + 1]));
  if (first_required == n && additional) first.push_back(first_more);

  std::string body = "\"{\" " + use("ws");
  if (first.size() == 1 && first_required < n) body.append(" ").append(first[0]);
  else if (!first.empty()) body.append(" (").append(join(first, " | ")).append(first_required < n ? ")" : ")?");
  return body.append(" \"}\"");
}

// A key that is none of `declared`: a trie over the keys as JSON writes them, left as soon as
// the key being written differs. (A key spelled with other escapes than JSON's own, "\u0061ge"
// for "age", is not caught.)
std::string Converter::key_except(const std::vector<std::string>& declared, const std::string& base) {
  struct Node {
    std::map<std::string, size_t> next;  // written character -> node
    bool is_key = false;
  };
  std::vector<Node> nodes(1);
  for (const auto& key : declared) {
    const std::string written = Json(key).dump();
    size_t at = 0;
    for (const auto& c : written_characters(std::string_view(written).substr(1, written.size() - 2))) {
      auto it = nodes[at].next.find(c);
      if (it == nodes[at].next.end()) {
        it = nodes[at].next.emplace(c, nodes.size()).first;
        nodes.emplace_back();
      }
      at = it->second;
    }
    nodes[at].is_key = true;
  }
  std::vector<std::string> names(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) names[i] = unique_name(base + "-" + std::to_string(i));
  const std::string tail = use("string-tail");
  for (size_t i = 0; i < nodes.size(); ++i) {
    std::vector<std::string> alternatives;
    std::string others = "[^\"\\\\\\x00-\\x1F";
    for (const auto& [c, child] : nodes[i].next) {
      alternatives.push_back(gbnf_literal(c) + " " + names[child]);
      if (c[0] != '\\') others.append(class_member(c));
    }
    alternatives.push_back(others + "] " + tail);
    alternatives.push_back(use("escape") + " " + tail);  // may spell a declared key's escape: see above
    if (!nodes[i].is_key) alternatives.push_back("\"\\\"\"");
    rules_.push_back({names[i], join(alternatives, " | ")});
  }
  return add_rule(base, "\"\\\"\" " + names[0]);
}

// An array: prefixItems (or draft-7 "items" as a list) for the first elements, "items" (or
// "additionalItems") for the rest, between minItems and maxItems of them.
std::string Converter::array_rule(const Json& schema, const std::string& pointer) {
  const std::string base = rule_name_for(pointer, root_);
  const Json* prefix = nullptr;
  std::string prefix_at;
  const Json* rest = nullptr;
  std::string rest_at;
  auto take = [&](const Json*& slot, std::string& slot_at, const char* keyword) {
    if (!schema.contains(keyword)) return;
    slot = &schema[keyword];
    slot_at = pointer_join(pointer, keyword);
  };
  if (schema.contains("prefixItems")) {
    take(prefix, prefix_at, "prefixItems");
    take(rest, rest_at, "items");
    if (rest && rest->is_array()) refuse(rest_at, "must be a schema when \"prefixItems\" is given");
  } else if (schema.contains("items") && schema["items"].is_array()) {
    take(prefix, prefix_at, "items");
    take(rest, rest_at, "additionalItems");
  } else {
    take(rest, rest_at, "items");
  }
  if (prefix && !prefix->is_array()) refuse(prefix_at, "must be an array of schemas");
  const uint64_t min = count_of(schema, pointer, "minItems", kMaxItemsBound).value_or(0);
  std::optional<uint64_t> cap = count_of(schema, pointer, "maxItems", kMaxItemsBound);
  if (!prefix && !rest && min == 0 && !cap) return use("array");

  std::vector<std::string> elements;  // the prefix's rules, up to one that is false
  bool prefix_closed = false;
  for (size_t i = 0; prefix && i < prefix->size() && !prefix_closed; ++i) {
    if ((*prefix)[i] == Json(false)) prefix_closed = true;
    else elements.push_back(visit((*prefix)[i], pointer_join(prefix_at, std::to_string(i))));
  }
  std::optional<std::string> rest_rule;
  if (!prefix_closed && !(rest && *rest == Json(false))) rest_rule = rest ? visit(*rest, rest_at) : use("value");
  if (!rest_rule) cap = std::min<uint64_t>(cap.value_or(UINT64_MAX), elements.size());
  if (cap && min > *cap)
    refuse(pointer, "\"minItems\" " + std::to_string(min) + " cannot be met: at most " + std::to_string(*cap) +
                        " items are allowed");
  if (cap && *cap == 0) return "\"[\" " + use("ws") + " \"]\"";
  use("ws");

  // tail(j): the elements from j on, once j are written.
  auto tail = [&](auto&& self, uint64_t j) -> std::string {
    if (cap && j >= *cap) return "";
    if (j >= elements.size()) {
      const uint64_t lo = min > j ? min - j : 0;
      const std::optional<uint64_t> hi = cap ? std::optional<uint64_t>(*cap - j) : std::nullopt;
      return "(\",\" ws " + *rest_rule + " ws)" + repetition(lo, hi);
    }
    std::string piece = "\",\" ws " + elements[j] + " ws" + then(self(self, j + 1));
    if (j < min) return piece;
    return add_rule(base + "-tail-" + std::to_string(j), std::move(piece)) + "?";
  };
  const std::string first = (elements.empty() ? *rest_rule : elements[0]) + " ws" + then(tail(tail, 1));
  if (min >= 1) return "\"[\" ws " + first + " \"]\"";
  return "\"[\" ws (" + first + ")? \"]\"";
}

}  // namespace

std::string json_schema_to_grammar(std::string_view schema_json, const std::string& root) {
  const Json schema = parse_ordered_json(schema_json, "json_schema", 64);
  return Converter(schema, root).run();
}

std::string json_schema_rules_at(std::string_view schema_json, const std::vector<std::string>& pointers,
                                 const std::string& root, std::vector<std::string>& starts) {
  const Json schema = parse_ordered_json(schema_json, "json_schema", 64);
  return Converter(schema, root).run_at(pointers, starts);
}

}  // namespace moevk::generate
