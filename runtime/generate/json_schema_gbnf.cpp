#include "generate/json_schema_gbnf.hpp"

#include <map>

#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace moevk::generate::json_schema_gbnf {

namespace {

constexpr char kHex[] = "0123456789ABCDEF";

bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

size_t utf8_length(unsigned char lead) {
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

// Whitespace between tokens is bounded: none, a space, or a newline and up to 20 spaces or tabs
// (what an indented dump writes to depth 10), so a model cannot pad forever.
const std::map<std::string_view, Primitive>& primitives() {
  static const std::string kDigits = "[0-9]{0,15}";  // after a leading [1-9]: 16 digits at most
  static const std::string kInt = "(\"0\" | [1-9] " + kDigits + ")";
  static const std::string kFracExp = " (\".\" [0-9]{1,20})? ([eE] [-+]? [0-9]{1,3})?";
  static const std::string kHex4 = "[0-9a-fA-F]{4}";
  static const std::map<std::string_view, Primitive> table = {
      {"ws", {"\"\" | \" \" | \"\\n\" [ \\t]{0,20}", {}}},
      {"escape", {"\"\\\\\" ([\"\\\\/bfnrt] | \"u\" " + kHex4 + ")", {}}},
      {"char", {"[^\"\\\\\\x00-\\x1F] | escape", {"escape"}}},
      {"string", {"\"\\\"\" char* \"\\\"\"", {"char"}}},
      {"string-tail", {"char* \"\\\"\"", {"char"}}},
      {"number", {"\"-\"? " + kInt + kFracExp, {}}},
      {"nonnegative-number", {kInt + kFracExp, {}}},
      {"integer", {"\"-\"? " + kInt, {}}},
      {"nonnegative-integer", {kInt, {}}},
      {"positive-integer", {"[1-9] " + kDigits, {}}},
      {"boolean", {"\"true\" | \"false\"", {}}},
      {"null", {"\"null\"", {}}},
      {"value", {"object | array | string | number | boolean | null",
                 {"object", "array", "string", "number", "boolean", "null"}}},
      {"object", {"\"{\" ws (string ws \":\" ws value ws (\",\" ws string ws \":\" ws value ws)*)? \"}\"",
                  {"ws", "string", "value"}}},
      {"array", {"\"[\" ws (value ws (\",\" ws value ws)*)? \"]\"", {"ws", "value"}}},
      {"date-body", {"[0-9]{4} \"-\" (\"0\" [1-9] | \"1\" [0-2]) \"-\" (\"0\" [1-9] | [12] [0-9] | \"3\" [01])", {}}},
      {"time-body",
       {"([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9] \":\" [0-5] [0-9] (\".\" [0-9]{1,9})? "
        "(\"Z\" | [+-] ([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9])?",
        {}}},
      {"date", {"\"\\\"\" date-body \"\\\"\"", {"date-body"}}},
      {"time", {"\"\\\"\" time-body \"\\\"\"", {"time-body"}}},
      {"date-time", {"\"\\\"\" date-body \"T\" time-body \"\\\"\"", {"date-body", "time-body"}}},
      {"uuid",
       {"\"\\\"\" [0-9a-fA-F]{8} \"-\" " + kHex4 + " \"-\" " + kHex4 + " \"-\" " + kHex4 +
            " \"-\" [0-9a-fA-F]{12} \"\\\"\"",
        {}}},
  };
  return table;
}

}  // namespace

std::string gbnf_literal(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out.append("\\n");
    } else if (b < 0x20 || b == 0x7F) {
      out.append("\\x").push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 15]);
    } else {
      out.push_back(c);  // UTF-8 goes through as it is; the parser decodes it
    }
  }
  out.push_back('"');
  return out;
}

std::string class_member(std::string_view utf8_char) {
  if (utf8_char.size() == 1) {
    const char c = utf8_char[0];
    if (c == ']' || c == '-' || c == '^' || c == '\\' || c == '[') return std::string("\\") + c;
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      std::string out = "\\x";
      out.push_back(kHex[static_cast<unsigned char>(c) >> 4]);
      out.push_back(kHex[c & 15]);
      return out;
    }
  }
  return std::string(utf8_char);
}

std::string json_quoted(std::string_view text) { return nlohmann::json(std::string(text)).dump(); }

std::string pointer_join(const std::string& pointer, std::string_view segment) {
  std::string out = pointer;
  out.push_back('/');
  for (char c : segment) {
    if (c == '~') out.append("~0");
    else if (c == '/') out.append("~1");
    else out.push_back(c);
  }
  return out;
}

std::optional<std::vector<std::string>> split_pointer(std::string_view pointer) {
  std::vector<std::string> segments;
  if (pointer.empty()) return segments;
  if (pointer[0] != '/') return std::nullopt;
  for (size_t i = 1;; ++i) {
    std::string segment;
    for (; i < pointer.size() && pointer[i] != '/'; ++i) {
      if (pointer[i] != '~') {
        segment.push_back(pointer[i]);
        continue;
      }
      if (i + 1 >= pointer.size() || (pointer[i + 1] != '0' && pointer[i + 1] != '1')) return std::nullopt;
      segment.push_back(pointer[++i] == '0' ? '~' : '/');
    }
    segments.push_back(std::move(segment));
    if (i >= pointer.size()) return segments;
  }
}

std::string percent_decoded(std::string_view fragment) {
  std::string out;
  for (size_t i = 0; i < fragment.size(); ++i) {
    if (fragment[i] == '%' && i + 2 < fragment.size() && hex_value(fragment[i + 1]) >= 0 &&
        hex_value(fragment[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(fragment[i + 1]) * 16 + hex_value(fragment[i + 2])));
      i += 2;
    } else {
      out.push_back(fragment[i]);
    }
  }
  return out;
}

std::string rule_name_for(const std::string& pointer, const std::string& root) {
  std::string name = root;
  for (const auto& segment : split_pointer(pointer).value_or(std::vector<std::string>{})) {
    std::string part;
    for (char c : segment) {
      if (is_alnum(c)) part.push_back(c);
      else if (!part.empty() && part.back() != '-') part.push_back('-');
    }
    while (!part.empty() && part.back() == '-') part.pop_back();
    if (!part.empty()) name.append("-").append(part);
  }
  return name;
}

bool is_rule_name(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text)
    if (!is_alnum(c) && c != '-' && c != '_') return false;
  return true;
}

std::vector<std::string> written_characters(std::string_view written) {
  std::vector<std::string> out;
  for (size_t i = 0; i < written.size();) {
    size_t n = utf8_length(static_cast<unsigned char>(written[i]));
    if (written[i] == '\\') n = i + 1 < written.size() && written[i + 1] == 'u' ? 6 : 2;
    n = std::min(n, written.size() - i);
    out.emplace_back(written.substr(i, n));
    i += n;
  }
  return out;
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out.append(separator);
    out.append(parts[i]);
  }
  return out;
}

std::string then(const std::string& text) {
  std::string out;
  if (!text.empty()) out.append(" ").append(text);
  return out;
}

std::string repetition(uint64_t lo, std::optional<uint64_t> hi) {
  if (!hi && lo <= 1) return lo == 0 ? "*" : "+";
  if (hi && lo == *hi && lo == 1) return "";
  if (hi && lo == 0 && *hi == 1) return "?";
  std::string out = "{";  // appended, not "{" + to_string(): GCC 12 warns falsely (-Wrestrict) on that
  out.append(std::to_string(lo));
  if (!hi) out.append(",");
  else if (*hi != lo) out.append(",").append(std::to_string(*hi));
  return out.append("}");
}

const Primitive& primitive(std::string_view name) {
  auto it = primitives().find(name);
  if (it == primitives().end())
    fail(MOEVK_ERROR_INTERNAL, "json_schema: no primitive rule \"" + std::string(name) + "\"");
  return it->second;
}

}  // namespace moevk::generate::json_schema_gbnf
