// The Jinja2 subset of jinja.hpp: values and their Python semantics, then the lexer (Jinja's
// whitespace rules with trim_blocks and lstrip_blocks), the parser (Jinja's precedence), and the
// renderer (scopes as Jinja 3 keeps them: a for loop's body gets a fresh scope per iteration,
// if blocks none; filters, tests, methods and globals).
#include "text/jinja.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>
#include <limits>
#include <map>

#include "common/error.hpp"
#include "text/unicode.hpp"

namespace moevk::text::jinja {

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

Value Value::undefined(std::string name) {
  Value v;
  if (!name.empty()) v.s_ = std::make_shared<const std::string>(std::move(name));
  return v;
}
Value Value::none() {
  Value v;
  v.type_ = Type::None;
  return v;
}
Value Value::boolean(bool b) {
  Value v;
  v.type_ = Type::Bool;
  v.b_ = b;
  v.i_ = b ? 1 : 0;
  return v;
}
Value Value::integer(int64_t i) {
  Value v;
  v.type_ = Type::Int;
  v.i_ = i;
  return v;
}
Value Value::number(double f) {
  Value v;
  v.type_ = Type::Float;
  v.f_ = f;
  return v;
}
Value Value::string(std::string s) {
  Value v;
  v.type_ = Type::String;
  v.s_ = std::make_shared<const std::string>(std::move(s));
  return v;
}
Value Value::list(List items, bool tuple) {
  Value v;
  v.type_ = Type::List;
  v.tuple_ = tuple;
  v.list_ = std::make_shared<List>(std::move(items));
  return v;
}
Value Value::generator(List items) {
  Value v = list(std::move(items));
  v.generator_ = true;
  return v;
}
Value Value::dict(Dict items) {
  Value v;
  v.type_ = Type::Dict;
  v.dict_ = std::make_shared<Dict>(std::move(items));
  return v;
}
Value Value::name_space(Dict items) {
  Value v = dict(std::move(items));
  v.namespace_ = true;
  return v;
}
Value Value::function(std::string name, Native fn) {
  Value v;
  v.type_ = Type::Function;
  v.s_ = std::make_shared<const std::string>(std::move(name));
  v.fn_ = std::make_shared<Native>(std::move(fn));
  return v;
}

const std::string& Value::as_string() const {
  static const std::string empty;
  return s_ ? *s_ : empty;
}
double Value::as_float() const { return type_ == Type::Float ? f_ : static_cast<double>(i_); }
const Value::List& Value::items() const { return *list_; }
Value::List& Value::mutable_items() { return *list_; }
const Value::Dict& Value::entries() const { return *dict_; }
Value::Dict& Value::mutable_entries() { return *dict_; }
const Native& Value::native() const { return *fn_; }

bool Value::truthy() const {
  switch (type_) {
    case Type::Undefined:
    case Type::None: return false;
    case Type::Bool: return b_;
    case Type::Int: return i_ != 0;
    case Type::Float: return f_ != 0.0;
    case Type::String: return !s_->empty();
    case Type::List: return generator_ || !list_->empty();
    case Type::Dict: return namespace_ || !dict_->empty();  // a namespace() object is always true
    case Type::Function: return true;
  }
  return false;
}

const Value* Value::find(std::string_view key) const {
  if (type_ != Type::Dict) return nullptr;
  for (const auto& [k, v] : *dict_)
    if (k == key) return &v;
  return nullptr;
}

Value& Value::push(Value v) {
  list_->push_back(std::move(v));
  return list_->back();
}

Value& Value::set(std::string key, Value v) {
  for (auto& [k, old] : *dict_)
    if (k == key) return old = std::move(v);
  dict_->emplace_back(std::move(key), std::move(v));
  return dict_->back().second;
}

struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
};

namespace {

// ---------------------------------------------------------------------------------------------
// UTF-8 and Python's string rules
// ---------------------------------------------------------------------------------------------

// Byte offsets where each code point starts, plus the end. Bytes that are not valid UTF-8
// count as one code point each.
std::vector<size_t> code_points(std::string_view s) {
  std::vector<size_t> starts;
  starts.reserve(s.size() + 1);
  for (size_t i = 0; i < s.size();) {
    starts.push_back(i);
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (i + len > s.size()) len = 1;
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) len = 1;
    i += len;
  }
  starts.push_back(s.size());
  return starts;
}

uint32_t decode_at(std::string_view s, size_t start, size_t end) {
  const unsigned char c = static_cast<unsigned char>(s[start]);
  if (end - start == 1) return c;
  uint32_t cp = c & (end - start == 2 ? 0x1F : end - start == 3 ? 0x0F : 0x07);
  for (size_t k = start + 1; k < end; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[k]) & 0x3F);
  return cp;
}

size_t cp_length(std::string_view s) { return code_points(s).size() - 1; }

// Python's str.isspace.
bool py_space(uint32_t c) {
  return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// str.strip / lstrip / rstrip: whitespace, or the code points of `chars`.
std::string py_strip(std::string_view s, bool left, bool right, const std::string* chars) {
  std::vector<uint32_t> set;
  if (chars) {
    auto cps = code_points(*chars);
    for (size_t k = 0; k + 1 < cps.size(); ++k) set.push_back(decode_at(*chars, cps[k], cps[k + 1]));
  }
  auto strip_this = [&](uint32_t c) { return chars ? std::find(set.begin(), set.end(), c) != set.end() : py_space(c); };
  auto cps = code_points(s);
  size_t n = cps.size() - 1, a = 0, b = n;
  while (left && a < b && strip_this(decode_at(s, cps[a], cps[a + 1]))) ++a;
  while (right && b > a && strip_this(decode_at(s, cps[b - 1], cps[b]))) --b;
  return std::string(s.substr(cps[a], cps[b] - cps[a]));
}

bool ascii_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool ascii_digit(char c) { return c >= '0' && c <= '9'; }

// Simple (one code point to one) case mapping of the ASCII, Latin-1, Latin Extended-A, Greek,
// Cyrillic and fullwidth Latin letters; other code points are left as they are (Python maps
// all of Unicode, and ß to "SS": chat templates case-map role names and keywords).
uint32_t cp_lower(uint32_t c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7) || (c >= 0x391 && c <= 0x3AB && c != 0x3A2) ||
      (c >= 0x410 && c <= 0x42F))
    return c + 0x20;
  if (c >= 0x400 && c <= 0x40F) return c + 0x50;
  if (c >= 0xFF21 && c <= 0xFF3A) return c + 0x20;
  if (((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177) || (c >= 0x460 && c <= 0x481) ||
       (c >= 0x48A && c <= 0x4BF)) && c % 2 == 0)
    return c + 1;
  if (((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) && c % 2 == 1) return c + 1;
  if (c == 0x178) return 0xFF;
  if (c == 0x386) return 0x3AC;
  if (c >= 0x388 && c <= 0x38A) return c + 0x25;
  if (c == 0x38C) return 0x3CC;
  if (c == 0x38E || c == 0x38F) return c + 0x3F;
  return c;
}
uint32_t cp_upper(uint32_t c) {
  if ((c >= 'a' && c <= 'z') || (c >= 0xE0 && c <= 0xFE && c != 0xF7) || (c >= 0x3B1 && c <= 0x3CB && c != 0x3C2) ||
      (c >= 0x430 && c <= 0x44F))
    return c - 0x20;
  if (c == 0x3C2) return 0x3A3;
  if (c >= 0x450 && c <= 0x45F) return c - 0x50;
  if (c >= 0xFF41 && c <= 0xFF5A) return c - 0x20;
  if (((c >= 0x101 && c <= 0x137) || (c >= 0x14B && c <= 0x177) || (c >= 0x461 && c <= 0x481) ||
       (c >= 0x48B && c <= 0x4BF)) && c % 2 == 1)
    return c - 1;
  if (((c >= 0x13A && c <= 0x148) || (c >= 0x17A && c <= 0x17E)) && c % 2 == 0) return c - 1;
  if (c == 0xFF) return 0x178;
  if (c == 0x3AC) return 0x386;
  if (c >= 0x3AD && c <= 0x3AF) return c - 0x25;
  if (c == 0x3CC) return 0x38C;
  if (c == 0x3CD || c == 0x3CE) return c - 0x3F;
  return c;
}

// Rewrites each code point: fn(code point, its index) -> the new one.
template <class F>
std::string map_code_points(std::string_view s, F fn) {
  std::string out;
  out.reserve(s.size());
  auto cps = code_points(s);
  for (size_t k = 0; k + 1 < cps.size(); ++k) {
    if (cps[k + 1] - cps[k] == 1 && static_cast<unsigned char>(s[cps[k]]) >= 0x80) {
      out += s[cps[k]];  // a byte that is not UTF-8 stays as it is
      continue;
    }
    utf8_append(out, fn(decode_at(s, cps[k], cps[k + 1]), k));
  }
  return out;
}

// Python's str.islower (want_lower) and str.isupper: at least one cased letter, and none of the
// other case (ß, which has no one-code-point upper case, is lower case).
bool py_is_case(std::string_view s, bool want_lower) {
  bool cased = false;
  auto cps = code_points(s);
  for (size_t k = 0; k + 1 < cps.size(); ++k) {
    const uint32_t c = decode_at(s, cps[k], cps[k + 1]);
    const bool is_upper = cp_lower(c) != c, is_lower = cp_upper(c) != c || c == 0xDF;
    if (want_lower ? is_upper : is_lower) return false;
    cased = cased || (want_lower ? is_lower : is_upper);
  }
  return cased;
}

bool cp_letter(uint32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0xAA; }

std::string lower(std::string_view s) {
  return map_code_points(s, [](uint32_t c, size_t) { return cp_lower(c); });
}
std::string upper(std::string_view s) {
  return map_code_points(s, [](uint32_t c, size_t) { return cp_upper(c); });
}
// Python's str.title: a letter after a non-letter is upper-cased, every other letter lower-cased.
std::string py_title(std::string_view s) {
  bool prev_letter = false;
  return map_code_points(s, [&](uint32_t c, size_t) {
    const bool letter = cp_letter(c);
    uint32_t r = letter ? (prev_letter ? cp_lower(c) : cp_upper(c)) : c;
    prev_letter = letter;
    return r;
  });
}
// Jinja's |title: words start after whitespace or one of -({[< .
std::string jinja_title(std::string_view s) {
  bool start = true;
  return map_code_points(s, [&](uint32_t c, size_t) {
    if (py_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<') {
      start = true;
      return c;
    }
    uint32_t r = start ? cp_upper(c) : cp_lower(c);
    start = false;
    return r;
  });
}
std::string capitalize(std::string_view s) {
  return map_code_points(s, [](uint32_t c, size_t k) { return k == 0 ? cp_upper(c) : cp_lower(c); });
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

std::string replace_all(std::string_view s, std::string_view from, std::string_view to, int64_t count) {
  std::string out;
  if (from.empty()) {
    // Python inserts `to` between code points (and at both ends), up to count times.
    auto cps = code_points(s);
    int64_t done = 0;
    for (size_t k = 0; k + 1 < cps.size(); ++k) {
      if (count < 0 || done < count) out += to, ++done;
      out += s.substr(cps[k], cps[k + 1] - cps[k]);
    }
    if (count < 0 || done < count) out += to;
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t hit = s.find(from, pos);
    if (hit == std::string_view::npos) break;
    out += s.substr(pos, hit - pos);
    out += to;
    pos = hit + from.size();
    ++done;
  }
  out += s.substr(pos);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Printing: str(), repr() and JSON, as Python writes them
// ---------------------------------------------------------------------------------------------

std::string py_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, r.ptr);  // [-]d[.ddd]e[+-]xx, shortest round trip
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t e = sci.find('e');
  int exp = std::stoi(sci.substr(e + 1));
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  std::string out = neg ? "-" : "";
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out += "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    } else if (static_cast<size_t>(exp) + 1 >= digits.size()) {
      out += digits + std::string(exp + 1 - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, exp + 1) + "." + digits.substr(exp + 1);
    }
  } else {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char ebuf[16];
    std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += ebuf;
  }
  return out;
}

const char* type_name(const Value& v) {
  switch (v.type()) {
    case Value::Type::Undefined: return "Undefined";
    case Value::Type::None: return "NoneType";
    case Value::Type::Bool: return "bool";
    case Value::Type::Int: return "int";
    case Value::Type::Float: return "float";
    case Value::Type::String: return "str";
    case Value::Type::List: return v.is_generator_like() ? "generator" : v.is_tuple() ? "tuple" : "list";
    case Value::Type::Dict: return v.is_namespace() ? "Namespace" : "dict";
    case Value::Type::Function: return "function";
  }
  return "?";
}

// Characters Python's repr escapes (not str.isprintable()): controls, separators, a few formats.
bool py_unprintable(uint32_t c) {
  return c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD || c == 0x1680 || (c >= 0x2000 && c <= 0x200F) ||
         (c >= 0x2028 && c <= 0x202F) || (c >= 0x205F && c <= 0x2064) || c == 0x3000 || c == 0xFEFF ||
         (c >= 0xD800 && c <= 0xDFFF);
}

std::string py_repr_string(std::string_view s) {
  const bool dq = s.find('\'') != std::string_view::npos && s.find('"') == std::string_view::npos;
  const char q = dq ? '"' : '\'';
  std::string out(1, q);
  auto cps = code_points(s);
  for (size_t k = 0; k + 1 < cps.size(); ++k) {
    uint32_t c = decode_at(s, cps[k], cps[k + 1]);
    char buf[16];
    if (c == static_cast<uint32_t>(q) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (py_unprintable(c)) {
      std::snprintf(buf, sizeof buf, c < 0x100 ? "\\x%02x" : "\\u%04x", c);
      out += buf;
    } else {
      out += s.substr(cps[k], cps[k + 1] - cps[k]);
    }
  }
  out += q;
  return out;
}

std::string py_repr(const Value& v);

// str(): what {{ }} prints.
std::string py_str(const Value& v) {
  switch (v.type()) {
    case Value::Type::Undefined: return "";
    case Value::Type::String: return v.as_string();
    default: return py_repr(v);
  }
}

std::string py_repr(const Value& v) {
  switch (v.type()) {
    case Value::Type::Undefined: return "Undefined";
    case Value::Type::None: return "None";
    case Value::Type::Bool: return v.as_bool() ? "True" : "False";
    case Value::Type::Int: return std::to_string(v.as_int());
    case Value::Type::Float: return py_float(v.as_float());
    case Value::Type::String: return py_repr_string(v.as_string());
    case Value::Type::List: {
      if (v.is_generator_like()) return "<generator object>";
      std::string out = v.is_tuple() ? "(" : "[";
      for (size_t i = 0; i < v.items().size(); ++i) out += (i ? ", " : "") + py_repr(v.items()[i]);
      if (v.is_tuple() && v.items().size() == 1) out += ",";
      return out + (v.is_tuple() ? ")" : "]");
    }
    case Value::Type::Dict: {
      std::string out = v.is_namespace() ? "<Namespace {" : "{";
      bool first = true;
      for (const auto& [k, x] : v.entries()) {
        out += (first ? "" : ", ") + py_repr_string(k) + ": " + py_repr(x);
        first = false;
      }
      return out + (v.is_namespace() ? "}>" : "}");
    }
    case Value::Type::Function: return "<function " + v.as_string() + ">";
  }
  return "";
}

struct JsonStyle {
  bool pretty = false;  // json.dumps' indent is not None: a newline and `indent` per level
  std::string indent;
  std::string item_sep = ", ", key_sep = ": ";
  bool sort_keys = false, ensure_ascii = false;
  size_t max_bytes = std::numeric_limits<size_t>::max();  // the renderer's output limit: a long indent string adds up fast
};

void json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out += '"';
  auto cps = code_points(s);
  for (size_t k = 0; k + 1 < cps.size(); ++k) {
    uint32_t c = decode_at(s, cps[k], cps[k + 1]);
    char buf[16];
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
          if (c >= 0x10000) {
            uint32_t u = c - 0x10000;
            std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (u >> 10), 0xDC00 + (u & 0x3FF));
          } else {
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
          }
          out += buf;
        } else {
          out += s.substr(cps[k], cps[k + 1] - cps[k]);
        }
    }
  }
  out += '"';
}

void json_dump(std::string& out, const Value& v, const JsonStyle& st, int level) {
  auto newline = [&](int lvl) {
    if (!st.pretty) return;
    out += '\n';
    for (int k = 0; k < lvl; ++k) out += st.indent;
    if (out.size() > st.max_bytes) fail(MOEVK_ERROR_TOKENIZER, "tojson() builds more than the output limit");
  };
  switch (v.type()) {
    case Value::Type::None: out += "null"; return;
    case Value::Type::Bool: out += v.as_bool() ? "true" : "false"; return;
    case Value::Type::Int: out += std::to_string(v.as_int()); return;
    case Value::Type::Float: {
      double d = v.as_float();
      out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d < 0 ? "-Infinity" : "Infinity") : py_float(d);
      return;
    }
    case Value::Type::String: json_string(out, v.as_string(), st.ensure_ascii); return;
    case Value::Type::List: {
      if (v.items().empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < v.items().size(); ++i) {
        if (i) out += st.item_sep;
        newline(level + 1);
        json_dump(out, v.items()[i], st, level + 1);
      }
      newline(level);
      out += ']';
      return;
    }
    case Value::Type::Dict: {
      if (v.is_namespace()) fail(MOEVK_ERROR_TOKENIZER, "Object of type Namespace is not JSON serializable");
      if (v.entries().empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<std::string, Value>*> order;
      for (const auto& e : v.entries()) order.push_back(&e);
      if (st.sort_keys)
        std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->first < b->first; });
      out += '{';
      for (size_t i = 0; i < order.size(); ++i) {
        if (i) out += st.item_sep;
        newline(level + 1);
        json_string(out, order[i]->first, st.ensure_ascii);
        out += st.key_sep;
        json_dump(out, order[i]->second, st, level + 1);
      }
      newline(level);
      out += '}';
      return;
    }
    default: fail(MOEVK_ERROR_TOKENIZER, std::string("Object of type ") + type_name(v) + " is not JSON serializable");
  }
}

// ---------------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------------

enum class Tok { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, End };

struct Token {
  Tok kind;
  std::string text;
  int line = 1;
  int64_t ival = 0;
  double fval = 0.0;
};

[[noreturn]] void syntax_error(int line, const std::string& message) {
  fail(MOEVK_ERROR_TOKENIZER, "chat template line " + std::to_string(line) + ": " + message);
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Python's str.rstrip() of the text before a "{%-" (all whitespace, Unicode included).
std::string rstrip_all(std::string_view s) { return py_strip(s, false, true, nullptr); }

class Lexer {
 public:
  explicit Lexer(std::string_view source) {
    // Jinja turns every newline sequence into "\n" and drops one trailing newline.
    src_.reserve(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\r') {
        src_ += '\n';
        if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
      } else {
        src_ += source[i];
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();
  }

  std::vector<Token> run() {
    bool line_starting = true;
    while (pos_ < src_.size()) {
      size_t start = find_tag(pos_);
      std::string text = src_.substr(pos_, start - pos_);
      if (start == src_.size()) {
        emit_text(std::move(text));
        advance_to(start);
        break;
      }
      const char kind = src_[start + 1];  // '{', '%' or '#'
      const char sign = start + 2 < src_.size() ? src_[start + 2] : '\0';
      if (sign == '-') {
        text = rstrip_all(text);
      } else if (sign != '+' && kind != '{') {
        // lstrip_blocks: spaces and tabs from the line's start up to a block or comment tag.
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if (l_pos > 0 || line_starting) {
          std::string_view rest = std::string_view(text).substr(l_pos);
          if (!rest.empty() && py_strip(rest, true, true, nullptr).empty()) text.resize(l_pos);
        }
      }
      emit_text(std::move(text));
      advance_to(start + 2 + ((sign == '-' || sign == '+') ? 1 : 0));
      if (kind == '#') {
        line_starting = lex_comment();
      } else if (kind == '%' && lex_raw()) {
        line_starting = last_consumed_newline_;
      } else {
        tokens_.push_back({kind == '{' ? Tok::VarBegin : Tok::BlockBegin, "", line_});
        line_starting = lex_tag(kind == '{');
      }
    }
    tokens_.push_back({Tok::End, "", line_});
    return std::move(tokens_);
  }

 private:
  std::string src_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
  bool last_consumed_newline_ = false;

  void advance_to(size_t p) {
    for (size_t i = pos_; i < p && i < src_.size(); ++i) line_ += src_[i] == '\n';
    pos_ = p;
  }
  size_t find_tag(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i)
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    return src_.size();
  }
  void emit_text(std::string text) {
    if (!text.empty()) tokens_.push_back({Tok::Text, std::move(text), line_});
  }
  // After a tag's end: "-" strips all following whitespace; otherwise a block or comment
  // (trim_blocks) drops one newline, unless "+" is given. Returns whether the consumed text
  // ended in a newline (Jinja's line_starting, which lstrip_blocks reads).
  bool after_tag_end(bool strip, bool plus, bool block) {
    size_t p = pos_;
    if (strip) {
      while (p < src_.size() && is_space(src_[p])) ++p;
      // Python's \s also takes Unicode spaces; the common ones are ASCII.
    } else if (block && !plus && p < src_.size() && src_[p] == '\n') {
      ++p;
    }
    bool nl = p > pos_ && src_[p - 1] == '\n';
    advance_to(p);
    return nl;
  }

  bool lex_comment() {
    int line = line_;
    for (size_t i = pos_; i + 1 < src_.size(); ++i) {
      if (src_[i] == '#' && src_[i + 1] == '}') {
        bool strip = i > pos_ && src_[i - 1] == '-';
        bool plus = i > pos_ && src_[i - 1] == '+';
        advance_to(i + 2);
        return after_tag_end(strip, plus, true);
      }
    }
    syntax_error(line, "comment not closed ('{#' without '#}')");
  }

  // {% raw %} ... {% endraw %}: the text between is output as it is.
  bool lex_raw() {
    size_t p = pos_;
    while (p < src_.size() && is_space(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    while (p < src_.size() && is_space(src_[p])) ++p;
    bool strip_inner_left = p < src_.size() && src_[p] == '-';
    if (strip_inner_left) ++p;
    if (src_.compare(p, 2, "%}") != 0) return false;
    int line = line_;
    advance_to(p + 2);
    size_t body_start = pos_;
    if (strip_inner_left) {
      while (body_start < src_.size() && is_space(src_[body_start])) ++body_start;
    }
    for (size_t i = body_start; i + 1 < src_.size(); ++i) {
      if (src_[i] != '{' || src_[i + 1] != '%') continue;
      size_t q = i + 2;
      bool strip_body_right = q < src_.size() && src_[q] == '-';
      if (strip_body_right || (q < src_.size() && src_[q] == '+')) ++q;
      while (q < src_.size() && is_space(src_[q])) ++q;
      if (src_.compare(q, 6, "endraw") != 0) continue;
      q += 6;
      while (q < src_.size() && is_space(src_[q])) ++q;
      bool strip_after = q < src_.size() && src_[q] == '-';
      bool plus_after = q < src_.size() && src_[q] == '+';
      if (strip_after || plus_after) ++q;
      if (src_.compare(q, 2, "%}") != 0) continue;
      std::string body = src_.substr(body_start, i - body_start);
      if (strip_body_right) body = rstrip_all(body);
      emit_text(std::move(body));
      advance_to(q + 2);
      last_consumed_newline_ = after_tag_end(strip_after, plus_after, true);
      return true;
    }
    syntax_error(line, "'raw' block not closed");
  }

  bool lex_tag(bool variable) {
    int depth = 0;  // open brackets: inside them "}}" and "%}" are operators, as in Jinja
    const int line = line_;
    while (true) {
      while (pos_ < src_.size() && is_space(src_[pos_])) advance_to(pos_ + 1);
      if (pos_ >= src_.size()) syntax_error(line, variable ? "'{{' without '}}'" : "'{%' without '%}'");
      const char c = src_[pos_];
      const std::string_view rest = std::string_view(src_).substr(pos_);
      if (depth == 0) {
        const std::string_view end = variable ? "}}" : "%}";
        const bool minus = starts_with(rest, std::string("-").append(end));
        const bool plus = !variable && starts_with(rest, "+%}");
        if (minus || plus || starts_with(rest, end)) {
          tokens_.push_back({variable ? Tok::VarEnd : Tok::BlockEnd, "", line_});
          advance_to(pos_ + end.size() + (minus || plus ? 1 : 0));
          return after_tag_end(minus, plus, !variable);
        }
      }
      if (ascii_alpha(c) || c == '_') {
        size_t e = pos_;
        while (e < src_.size() && (ascii_alpha(src_[e]) || ascii_digit(src_[e]) || src_[e] == '_')) ++e;
        tokens_.push_back({Tok::Name, src_.substr(pos_, e - pos_), line_});
        advance_to(e);
      } else if (ascii_digit(c)) {
        lex_number();
      } else if (c == '\'' || c == '"') {
        lex_string(c);
      } else {
        static const char* const kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<",
                                           ">",  "=",  "(",  ")",  "[",  "]",  "{", "}", ",", ".", ":", "|"};
        const char* op = nullptr;
        for (const char* o : kOps)
          if (starts_with(rest, o)) {
            op = o;
            break;
          }
        if (!op) syntax_error(line_, std::string("unexpected character '") + c + "'");
        if (*op == '(' || *op == '[' || *op == '{') ++depth;
        if ((*op == ')' || *op == ']' || *op == '}') && depth > 0) --depth;
        tokens_.push_back({Tok::Op, op, line_});
        advance_to(pos_ + std::strlen(op));
      }
    }
  }

  void lex_number() {
    size_t e = pos_;
    auto digits = [&] {
      while (e < src_.size() && (ascii_digit(src_[e]) || (src_[e] == '_' && e + 1 < src_.size() && ascii_digit(src_[e + 1]))))
        ++e;
    };
    digits();
    bool is_float = false;
    if (e + 1 < src_.size() && src_[e] == '.' && ascii_digit(src_[e + 1])) {
      ++e;
      digits();
      is_float = true;
    }
    if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      size_t f = e + 1;
      if (f < src_.size() && (src_[f] == '+' || src_[f] == '-')) ++f;
      if (f < src_.size() && ascii_digit(src_[f])) {
        e = f;
        digits();
        is_float = true;
      }
    }
    std::string text = src_.substr(pos_, e - pos_);
    text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
    Token t{is_float ? Tok::Float : Tok::Int, text, line_};
    if (is_float) {
      t.fval = std::strtod(text.c_str(), nullptr);
    } else {
      auto r = std::from_chars(text.data(), text.data() + text.size(), t.ival);
      if (r.ec != std::errc()) syntax_error(line_, "integer literal out of range: " + text);
    }
    tokens_.push_back(std::move(t));
    advance_to(e);
  }

  // Python's escapes, as Jinja decodes string literals ("unicode-escape").
  void lex_string(char quote) {
    const int line = line_;
    std::string out;
    size_t i = pos_ + 1;
    auto hex = [&](size_t at, int n, uint32_t& cp) {
      cp = 0;
      for (int k = 0; k < n; ++k) {
        if (at + k >= src_.size()) return false;
        char h = src_[at + k];
        int d = ascii_digit(h) ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
        if (d < 0) return false;
        cp = cp * 16 + static_cast<uint32_t>(d);
      }
      return true;
    };
    for (; i < src_.size() && src_[i] != quote; ++i) {
      if (src_[i] != '\\' || i + 1 >= src_.size()) {
        out += src_[i];
        continue;
      }
      const char e = src_[++i];
      uint32_t cp = 0;
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case '\n': break;  // a backslash-newline joins lines
        case 'x':
        case 'u':
        case 'U': {
          int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (!hex(i + 1, n, cp) || cp > 0x10FFFF)
            syntax_error(line_, std::string("bad \\") + e + " escape in a string literal");
          utf8_append(out, cp);
          i += static_cast<size_t>(n);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            int n = 0;
            while (n < 3 && i < src_.size() && src_[i] >= '0' && src_[i] <= '7') cp = cp * 8 + (src_[i++] - '0'), ++n;
            --i;
            utf8_append(out, cp);
          } else {
            out += '\\';  // unknown escapes stay as written
            out += e;
          }
      }
    }
    if (i >= src_.size()) syntax_error(line, "string literal not closed");
    tokens_.push_back({Tok::String, std::move(out), line_});
    advance_to(i + 1);
  }
};

// ---------------------------------------------------------------------------------------------
// Syntax tree
// ---------------------------------------------------------------------------------------------

struct Expr;
using ExprP = std::unique_ptr<Expr>;

struct Expr {
  enum Kind {
    Literal, Name, ListLit, TupleLit, DictLit, Attr, Item, Slice, Call, Filter, Test, Neg, Pos, Not, And, Or,
    Binary, Concat, Compare, Cond
  };
  Kind kind;
  int line;
  Value value;                                       // Literal
  std::string name;                                  // Name, Attr, Filter, Test, Binary's operator
  std::vector<ExprP> args;                           // operands; null where a slice part is absent
  std::vector<std::pair<std::string, ExprP>> kwargs;  // Call, Filter, Test
  std::vector<std::string> ops;                      // Compare
  bool negated = false;                              // Test
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct Stmt {
  enum Kind { Text, Output, If, For, Set, SetBlock, Macro, Break, Continue, FilterBlock, With, Plain };
  Kind kind;
  int line;
  std::string text;                        // Text; Macro and SetBlock: the name; Set: namespace attr
  ExprP expr;                              // Output, Set value, For iterable, FilterBlock's filters
  std::vector<ExprP> conds;                // If: one per branch
  std::vector<Body> bodies;                // If: one per branch (+1 for else); others: [0] body, [1] else
  std::vector<std::string> targets;        // For, Set (names); Set of ns.attr: {ns}
  ExprP filter;                            // For ... if
  std::vector<std::pair<std::string, ExprP>> params;  // Macro: parameters and defaults; With
};

}  // namespace

struct Template::Parsed {
  Body body;
  // Names the template's top level assigns before it reads them: undefined, not the context's
  // value, until assigned (see hidden_context_names).
  std::vector<std::string> hidden;
};

namespace {

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

constexpr int kMaxNesting = 200;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Body parse_template() {
    std::string end;
    Body body = parse_body({}, end);
    return body;
  }

 private:
  std::vector<Token> t_;
  size_t p_ = 0;
  int depth_ = 0;
  int loops_ = 0;  // for bodies around the statement being parsed (macro bodies start again at 0)

  struct Nest {
    Parser& p;
    explicit Nest(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxNesting) syntax_error(p.cur().line, "nested too deeply");
    }
    ~Nest() { --p.depth_; }
  };

  const Token& cur() const { return t_[p_]; }
  const Token& peek(size_t k = 1) const { return t_[std::min(p_ + k, t_.size() - 1)]; }
  bool is_op(const char* op) const { return cur().kind == Tok::Op && cur().text == op; }
  bool is_name(const char* n) const { return cur().kind == Tok::Name && cur().text == n; }
  void next() {
    if (p_ + 1 < t_.size()) ++p_;
  }
  [[noreturn]] void unexpected(const std::string& wanted) const {
    const Token& t = cur();
    std::string got = t.kind == Tok::End         ? "the end of the template"
                      : t.kind == Tok::BlockEnd  ? "'%}'"
                      : t.kind == Tok::VarEnd    ? "'}}'"
                      : t.kind == Tok::String    ? "a string"
                      : t.kind == Tok::Text      ? "text"
                      : "'" + t.text + "'";
    syntax_error(t.line, "expected " + wanted + ", found " + got);
  }
  void expect_op(const char* op) {
    if (!is_op(op)) unexpected(std::string("'") + op + "'");
    next();
  }
  std::string expect_name() {
    if (cur().kind != Tok::Name) unexpected("a name");
    std::string n = cur().text;
    next();
    return n;
  }
  void expect_block_end() {
    if (cur().kind != Tok::BlockEnd) unexpected("'%}'");
    next();
  }

  ExprP make(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // Statements up to one of `ends` (a tag name); `found` gets the tag that ended the body (its
  // "{% name" consumed, the rest of the tag not). No ends: up to the end of the template.
  Body parse_body(const std::vector<std::string>& ends, std::string& found) {
    Nest nest(*this);
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.kind == Tok::End) {
        if (!ends.empty()) {
          std::string list;
          for (const auto& e : ends) list += (list.empty() ? "'" : " or '") + e + "'";
          syntax_error(t.line, "expected " + list + " before the end of the template");
        }
        found.clear();
        return body;
      }
      if (t.kind == Tok::Text) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Text;
        s->line = t.line;
        s->text = t.text;
        body.push_back(std::move(s));
        next();
      } else if (t.kind == Tok::VarBegin) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Output;
        s->line = t.line;
        next();
        s->expr = parse_tuple(true);
        if (cur().kind != Tok::VarEnd) unexpected("'}}'");
        next();
        body.push_back(std::move(s));
      } else if (t.kind == Tok::BlockBegin) {
        next();
        if (cur().kind != Tok::Name) unexpected("a statement name");
        const std::string name = cur().text;
        if (std::find(ends.begin(), ends.end(), name) != ends.end()) {
          next();
          found = name;
          return body;
        }
        body.push_back(parse_statement());
      } else {
        unexpected("text or a tag");
      }
    }
  }

  std::unique_ptr<Stmt> parse_statement() {
    const int line = cur().line;
    const std::string name = expect_name();
    auto s = std::make_unique<Stmt>();
    s->line = line;
    std::string end;
    if (name == "if") {
      s->kind = Stmt::If;
      // As Jinja2: the condition of an if or elif takes no inline if (`{% if a if b %}` fails).
      s->conds.push_back(parse_tuple(false));
      expect_block_end();
      while (true) {
        s->bodies.push_back(parse_body({"elif", "else", "endif"}, end));
        if (end == "elif") {
          s->conds.push_back(parse_tuple(false));
          expect_block_end();
        } else if (end == "else") {
          expect_block_end();
          s->bodies.push_back(parse_body({"endif"}, end));
          expect_block_end();
          break;
        } else {
          expect_block_end();
          break;
        }
      }
    } else if (name == "for") {
      s->kind = Stmt::For;
      s->targets = parse_targets();
      if (!is_name("in")) unexpected("'in'");
      next();
      s->expr = parse_tuple(false);
      if (is_name("if")) {
        next();
        s->filter = parse_expression(true);
      }
      if (is_name("recursive")) syntax_error(line, "recursive loops are not supported");
      expect_block_end();
      ++loops_;
      s->bodies.push_back(parse_body({"else", "endfor"}, end));
      --loops_;
      expect_block_end();
      if (end == "else") {
        s->bodies.push_back(parse_body({"endfor"}, end));
        expect_block_end();
      }
    } else if (name == "set") {
      const std::string first = expect_name();
      if (is_op(".")) {
        next();
        s->kind = Stmt::Set;
        s->targets = {first};
        s->text = expect_name();
        expect_op("=");
        s->expr = parse_tuple(true);
        expect_block_end();
      } else if (cur().kind == Tok::BlockEnd || is_op("|")) {
        s->kind = Stmt::SetBlock;
        s->text = first;
        if (is_op("|")) s->filter = parse_filter_chain(nullptr);
        expect_block_end();
        s->bodies.push_back(parse_body({"endset"}, end));
        expect_block_end();
      } else {
        s->kind = Stmt::Set;
        s->targets = {first};
        while (is_op(",")) {
          next();
          s->targets.push_back(expect_name());
        }
        expect_op("=");
        s->expr = parse_tuple(true);
        expect_block_end();
      }
    } else if (name == "macro") {
      s->kind = Stmt::Macro;
      s->text = expect_name();
      expect_op("(");
      while (!is_op(")")) {
        std::string param = expect_name();
        ExprP def;
        if (is_op("=")) {
          next();
          def = parse_expression(true);
        }
        s->params.emplace_back(std::move(param), std::move(def));
        if (!is_op(",")) break;
        next();
      }
      expect_op(")");
      expect_block_end();
      const int outer_loops = loops_;
      loops_ = 0;
      s->bodies.push_back(parse_body({"endmacro"}, end));
      loops_ = outer_loops;
      if (cur().kind == Tok::Name) next();  // {% endmacro name %}
      expect_block_end();
    } else if (name == "break" || name == "continue") {
      s->kind = name == "break" ? Stmt::Break : Stmt::Continue;
      if (loops_ == 0) syntax_error(line, "'" + name + "' outside a for loop");
      expect_block_end();
    } else if (name == "filter") {
      s->kind = Stmt::FilterBlock;
      s->expr = parse_filter_chain(nullptr, true);
      expect_block_end();
      s->bodies.push_back(parse_body({"endfilter"}, end));
      expect_block_end();
    } else if (name == "with") {
      s->kind = Stmt::With;
      while (cur().kind != Tok::BlockEnd) {
        std::string var = expect_name();
        expect_op("=");
        s->params.emplace_back(std::move(var), parse_expression(true));
        if (!is_op(",")) break;
        next();
      }
      expect_block_end();
      s->bodies.push_back(parse_body({"endwith"}, end));
      expect_block_end();
    } else if (name == "generation") {
      // Hugging Face's tag marking the assistant's text for training masks; it renders its body.
      s->kind = Stmt::Plain;
      expect_block_end();
      s->bodies.push_back(parse_body({"endgeneration"}, end));
      expect_block_end();
    } else {
      static const char* const kKnown[] = {"include", "import", "from", "extends", "block", "call", "do", "autoescape"};
      for (const char* k : kKnown)
        if (name == k) syntax_error(line, "the '" + name + "' statement is not supported in chat templates");
      syntax_error(line, "unknown statement '" + name + "'");
    }
    return s;
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    bool paren = is_op("(");
    if (paren) next();
    names.push_back(expect_name());
    while (is_op(",")) {
      next();
      if (cur().kind != Tok::Name) break;
      names.push_back(expect_name());
    }
    if (paren) expect_op(")");
    return names;
  }

  // An expression, or several separated by commas: a tuple (Jinja's parse_tuple).
  ExprP parse_tuple(bool with_condexpr) {
    const int line = cur().line;
    ExprP first = parse_expression(with_condexpr);
    if (!is_op(",")) return first;
    auto tuple = make(Expr::TupleLit, line);
    tuple->args.push_back(std::move(first));
    while (is_op(",")) {
      next();
      if (cur().kind == Tok::BlockEnd || cur().kind == Tok::VarEnd || is_op(")") || is_name("if")) break;
      tuple->args.push_back(parse_expression(with_condexpr));
    }
    return tuple;
  }

  ExprP parse_expression(bool with_condexpr) {
    Nest nest(*this);
    if (!with_condexpr) return parse_or();
    const int line = cur().line;
    ExprP e = parse_or();
    while (is_name("if")) {
      next();
      auto c = make(Expr::Cond, line);
      ExprP cond = parse_or();
      ExprP other;
      if (is_name("else")) {
        next();
        other = parse_expression(true);
      }
      c->args.push_back(std::move(e));
      c->args.push_back(std::move(cond));
      c->args.push_back(std::move(other));
      e = std::move(c);
    }
    return e;
  }

  ExprP binary(Expr::Kind kind, ExprP a, ExprP b, std::string op = {}) {
    auto e = make(kind, a->line);
    e->name = std::move(op);
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return e;
  }

  ExprP parse_or() {
    ExprP e = parse_and();
    while (is_name("or")) {
      next();
      e = binary(Expr::Or, std::move(e), parse_and());
    }
    return e;
  }
  ExprP parse_and() {
    ExprP e = parse_not();
    while (is_name("and")) {
      next();
      e = binary(Expr::And, std::move(e), parse_not());
    }
    return e;
  }
  ExprP parse_not() {
    if (is_name("not")) {
      const int line = cur().line;
      next();
      Nest nest(*this);
      auto e = make(Expr::Not, line);
      e->args.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }
  ExprP parse_compare() {
    const int line = cur().line;
    ExprP first = parse_math1();
    ExprP cmp;
    while (true) {
      std::string op;
      if (cur().kind == Tok::Op && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                    cur().text == ">" || cur().text == "<=" || cur().text == ">=")) {
        op = cur().text;
        next();
      } else if (is_name("in")) {
        op = "in";
        next();
      } else if (is_name("not") && peek().kind == Tok::Name && peek().text == "in") {
        op = "not in";
        next();
        next();
      } else {
        break;
      }
      if (!cmp) {
        cmp = make(Expr::Compare, line);
        cmp->args.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->args.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }
  ExprP parse_math1() {
    ExprP e = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = cur().text;
      next();
      e = binary(Expr::Binary, std::move(e), parse_concat(), op);
    }
    return e;
  }
  ExprP parse_concat() {
    ExprP e = parse_math2();
    if (!is_op("~")) return e;
    auto c = make(Expr::Concat, e->line);
    c->args.push_back(std::move(e));
    while (is_op("~")) {
      next();
      c->args.push_back(parse_math2());
    }
    return c;
  }
  ExprP parse_math2() {
    ExprP e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = cur().text;
      next();
      e = binary(Expr::Binary, std::move(e), parse_pow(), op);
    }
    return e;
  }
  ExprP parse_pow() {
    ExprP e = parse_unary(true);
    while (is_op("**")) {
      next();
      e = binary(Expr::Binary, std::move(e), parse_unary(true), "**");
    }
    return e;
  }
  ExprP parse_unary(bool with_filter) {
    Nest nest(*this);
    const int line = cur().line;
    ExprP e;
    if (is_op("-") || is_op("+")) {
      const bool neg = is_op("-");
      next();
      e = make(neg ? Expr::Neg : Expr::Pos, line);
      e->args.push_back(parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprP parse_primary() {
    const Token& t = cur();
    const int line = t.line;
    if (t.kind == Tok::Name) {
      const std::string& n = t.text;
      auto lit = [&](Value v) {
        auto e = make(Expr::Literal, line);
        e->value = std::move(v);
        next();
        return e;
      };
      if (n == "true" || n == "True") return lit(Value::boolean(true));
      if (n == "false" || n == "False") return lit(Value::boolean(false));
      if (n == "none" || n == "None") return lit(Value::none());
      auto e = make(Expr::Name, line);
      e->name = n;
      next();
      return e;
    }
    if (t.kind == Tok::String) {
      std::string s;
      while (cur().kind == Tok::String) {  // adjacent literals join, as in Python
        s += cur().text;
        next();
      }
      auto e = make(Expr::Literal, line);
      e->value = Value::string(std::move(s));
      return e;
    }
    if (t.kind == Tok::Int || t.kind == Tok::Float) {
      auto e = make(Expr::Literal, line);
      e->value = t.kind == Tok::Int ? Value::integer(t.ival) : Value::number(t.fval);
      next();
      return e;
    }
    if (is_op("(")) {
      next();
      if (is_op(")")) {
        next();
        return make(Expr::TupleLit, line);
      }
      ExprP inner = parse_expression(true);
      if (is_op(",")) {
        auto tuple = make(Expr::TupleLit, line);
        tuple->args.push_back(std::move(inner));
        while (is_op(",")) {
          next();
          if (is_op(")")) break;
          tuple->args.push_back(parse_expression(true));
        }
        inner = std::move(tuple);
      }
      expect_op(")");
      return inner;
    }
    if (is_op("[")) {
      next();
      auto e = make(Expr::ListLit, line);
      while (!is_op("]")) {
        e->args.push_back(parse_expression(true));
        if (!is_op(",")) break;
        next();
      }
      expect_op("]");
      return e;
    }
    if (is_op("{")) {
      next();
      auto e = make(Expr::DictLit, line);
      while (!is_op("}")) {
        e->args.push_back(parse_expression(true));
        expect_op(":");
        e->args.push_back(parse_expression(true));
        if (!is_op(",")) break;
        next();
      }
      expect_op("}");
      return e;
    }
    unexpected("an expression");
  }

  ExprP parse_postfix(ExprP e) {
    while (true) {
      const int line = cur().line;
      if (is_op(".")) {
        next();
        auto a = make(Expr::Attr, line);
        if (cur().kind == Tok::Int) {
          // x.0 is x[0] in Jinja.
          a->kind = Expr::Item;
          a->args.push_back(std::move(e));
          auto idx = make(Expr::Literal, line);
          idx->value = Value::integer(cur().ival);
          a->args.push_back(std::move(idx));
          next();
        } else {
          a->name = expect_name();
          a->args.push_back(std::move(e));
        }
        e = std::move(a);
      } else if (is_op("[")) {
        next();
        e = parse_subscript(std::move(e), line);
      } else if (is_op("(")) {
        auto c = make(Expr::Call, line);
        c->args.push_back(std::move(e));
        parse_call_args(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  ExprP parse_subscript(ExprP target, int line) {
    ExprP parts[3];
    bool slice = false;
    for (int k = 0; k < 3; ++k) {
      if (!is_op(":") && !is_op("]")) parts[k] = parse_expression(true);
      if (k < 2 && is_op(":")) {
        slice = true;
        next();
      } else {
        break;
      }
    }
    expect_op("]");
    auto e = make(slice ? Expr::Slice : Expr::Item, line);
    e->args.push_back(std::move(target));
    if (!slice) {
      if (!parts[0]) syntax_error(line, "empty subscript");
      e->args.push_back(std::move(parts[0]));
    } else {
      for (auto& p : parts) e->args.push_back(std::move(p));
    }
    return e;
  }

  void parse_call_args(Expr& call) {
    expect_op("(");
    while (!is_op(")")) {
      if (is_op("*") || is_op("**")) syntax_error(cur().line, "*args and **kwargs in calls are not supported");
      if (cur().kind == Tok::Name && peek().kind == Tok::Op && peek().text == "=") {
        std::string key = cur().text;
        // Jinja2 compiles a call to Python, where a repeated keyword does not compile.
        for (const auto& kw : call.kwargs)
          if (kw.first == key) syntax_error(cur().line, "keyword argument repeated: " + key);
        next();
        next();
        call.kwargs.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (!call.kwargs.empty()) syntax_error(cur().line, "a positional argument follows a keyword argument");
        call.args.push_back(parse_expression(true));
      }
      if (!is_op(",")) break;
      next();
    }
    expect_op(")");
  }

  // | filter and `is` test chains after a unary expression.
  ExprP parse_filter_expr(ExprP e) {
    while (true) {
      if (is_op("|")) {
        e = parse_filter_chain(std::move(e));
      } else if (is_name("is")) {
        const int line = cur().line;
        next();
        auto t = make(Expr::Test, line);
        if (is_name("not")) {
          t->negated = true;
          next();
        }
        t->name = expect_name();
        t->args.push_back(std::move(e));
        if (is_op("(")) {
          parse_call_args(*t);
        } else if ((cur().kind == Tok::Name || cur().kind == Tok::String || cur().kind == Tok::Int ||
                    cur().kind == Tok::Float || is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and")) {
          // `x is divisibleby 3`, `x is equalto 'user'`: one argument without parentheses. As in
          // Jinja2, any other name is taken as that argument (so `x is defined if c` does not
          // parse), and a second `is` is refused.
          if (is_name("is")) syntax_error(cur().line, "you cannot chain multiple tests with is");
          t->args.push_back(parse_postfix(parse_primary()));
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

  // One or more "| name(args)"; `subject` may be null (filter blocks, set blocks).
  ExprP parse_filter_chain(ExprP subject, bool first_without_bar = false) {
    bool first = true;
    do {
      if (!(first && first_without_bar)) expect_op("|");
      first = false;
      const int line = cur().line;
      auto f = make(Expr::Filter, line);
      f->name = expect_name();
      f->args.push_back(std::move(subject));
      if (is_op("(")) parse_call_args(*f);
      subject = std::move(f);
    } while (is_op("|"));
    return subject;
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Renderer
// ---------------------------------------------------------------------------------------------

namespace {

struct Scope {
  Scope* parent = nullptr;
  std::vector<std::pair<std::string, Value>> vars;

  Value* find(std::string_view name) {
    for (Scope* s = this; s; s = s->parent)
      for (auto& [k, v] : s->vars)
        if (k == name) return &v;
    return nullptr;
  }
  void set(const std::string& name, Value v) {
    for (auto& [k, old] : vars)
      if (k == name) {
        old = std::move(v);
        return;
      }
    vars.emplace_back(name, std::move(v));
  }
};

enum class Flow { Normal, Break, Continue };

constexpr int kMaxCallDepth = 100;
constexpr size_t kMaxSequence = 1u << 20;  // range(), list * n, string * n

}  // namespace

class Renderer {
 public:
  Renderer(const RenderOptions& options, Scope* root) : opt_(options), root_(root) {}

  std::string out;

  [[noreturn]] void error(const std::string& message) const {
    fail(MOEVK_ERROR_TOKENIZER, "chat template line " + std::to_string(line_) + ": " + message);
  }
  [[noreturn]] void raised(const std::string& message) const {
    fail(MOEVK_ERROR_TOKENIZER, "chat template raised an error (line " + std::to_string(line_) + "): " + message);
  }

  Flow exec_body(const Body& body, Scope& scope) {
    for (const auto& s : body) {
      Flow f = exec(*s, scope);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

  int64_t now() const { return opt_.now >= 0 ? opt_.now : static_cast<int64_t>(std::time(nullptr)); }
  bool use_local_time() const { return opt_.now < 0; }
  void check_size(size_t bytes) const {
    if (bytes > opt_.max_output_bytes)
      error("the template builds more than " + std::to_string(opt_.max_output_bytes >> 20) + " MiB of text");
  }

  Value call(const Value& fn, CallArgs& args) {
    if (fn.is_undefined()) error(undefined_message(fn) + " (called as a function)");
    if (fn.type() != Value::Type::Function) error(std::string("'") + type_name(fn) + "' object is not callable");
    if (++call_depth_ > kMaxCallDepth) error("macro calls nested more than " + std::to_string(kMaxCallDepth) + " deep");
    struct Leave {
      Renderer& r;
      Value saved;
      ~Leave() {
        --r.call_depth_;
        r.callee_ = std::move(saved);
      }
    } leave{*this, std::move(callee_)};
    callee_ = fn;
    return fn.native()(*this, args);
  }
  // The function being called (read by a macro as it starts).
  const Value& callee() const { return callee_; }

  Scope* root() const { return root_; }

  std::string undefined_message(const Value& v) const {
    return v.as_string().empty() ? std::string("a value is undefined") : v.as_string();
  }

  // ----- expressions -----
  Value eval(const Expr& e, Scope& scope);
  Value apply_filter(const std::string& name, Value subject, CallArgs& args, Scope& scope);
  bool apply_test(const std::string& name, const Value& subject, CallArgs& args);
  Value get_attr(const Value& obj, const std::string& name);
  Value get_item(const Value& obj, const Value& key);

 private:
  const RenderOptions& opt_;
  Scope* root_;
  uint64_t steps_ = 0;
  int line_ = 1;
  int call_depth_ = 0;
  Value callee_;

  void step(int line) {
    line_ = line;
    if (++steps_ > opt_.max_steps) error("the template takes too long to render (more than " +
                                         std::to_string(opt_.max_steps) + " steps)");
  }

  Flow exec(const Stmt& s, Scope& scope);
  void emit(std::string_view text) {
    check_size(out.size() + text.size());
    out += text;
  }
  std::string capture(const Body& body, Scope& scope) {
    std::string saved = std::move(out);
    out.clear();
    exec_body(body, scope);
    std::string text = std::move(out);
    out = std::move(saved);
    return text;
  }
  // A block's filters (`{% filter a|b %}`, `{% set x | a %}`): parsed as a chain whose innermost
  // filter has no subject; `v` goes in there and comes out of `last`.
  Value apply_filter_chain(const Expr& last, Value v, Scope& scope) {
    std::vector<const Expr*> chain;
    for (const Expr* f = &last; f; f = f->args[0].get()) chain.push_back(f);
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      CallArgs args;
      eval_args(**it, 1, scope, args);
      v = apply_filter((*it)->name, std::move(v), args, scope);
    }
    return v;
  }
  void eval_args(const Expr& e, size_t first, Scope& scope, CallArgs& args) {
    for (size_t i = first; i < e.args.size(); ++i) args.pos.push_back(eval(*e.args[i], scope));
    for (const auto& [k, x] : e.kwargs) args.kw.emplace_back(k, eval(*x, scope));
  }
  Value make_macro(const Stmt& s, Scope& where);
  Value binary(const std::string& op, const Value& a, const Value& b);
  bool compare(const std::string& op, const Value& a, const Value& b);
  Value method(const Value& obj, const std::string& name);
};

namespace {

// ----- value helpers shared by the renderer -----

bool py_eq(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.type() != Value::Type::Float && b.type() != Value::Type::Float) return a.as_int() == b.as_int();
    return a.as_float() == b.as_float();
  }
  if (a.type() != b.type()) return false;
  // A generator equals only itself (Python compares generator objects by identity).
  if (a.is_generator_like() || b.is_generator_like()) return a.is_list() && b.is_list() && &a.items() == &b.items();
  switch (a.type()) {
    case Value::Type::Undefined:
    case Value::Type::None: return true;
    case Value::Type::String: return a.as_string() == b.as_string();
    case Value::Type::List: {
      if (a.is_tuple() != b.is_tuple() || a.items().size() != b.items().size()) return false;
      for (size_t i = 0; i < a.items().size(); ++i)
        if (!py_eq(a.items()[i], b.items()[i])) return false;
      return true;
    }
    case Value::Type::Dict: {
      if (a.entries().size() != b.entries().size()) return false;
      for (const auto& [k, v] : a.entries()) {
        const Value* o = b.find(k);
        if (!o || !py_eq(v, *o)) return false;
      }
      return true;
    }
    case Value::Type::Function: return &a.native() == &b.native();
    default: return false;
  }
}

}  // namespace

// The items a for loop or a filter walks: a list's items, a dict's keys, a string's code points,
// nothing for undefined.
static Value::List iterate(Renderer& r, const Value& v) {
  switch (v.type()) {
    case Value::Type::Undefined: return {};
    case Value::Type::List: return v.items();
    case Value::Type::Dict: {
      if (v.is_namespace()) r.error("'Namespace' object is not iterable");
      Value::List keys;
      for (const auto& [k, x] : v.entries()) keys.push_back(Value::string(k));
      return keys;
    }
    case Value::Type::String: {
      Value::List chars;
      const std::string& s = v.as_string();
      auto cps = code_points(s);
      for (size_t k = 0; k + 1 < cps.size(); ++k) chars.push_back(Value::string(s.substr(cps[k], cps[k + 1] - cps[k])));
      return chars;
    }
    default: r.error(std::string("'") + type_name(v) + "' object is not iterable");
  }
}

static int64_t to_index(Renderer& r, const Value& v, const char* what) {
  if (v.type() == Value::Type::Int || v.type() == Value::Type::Bool) return v.as_int();
  r.error(std::string(what) + " must be an integer, not '" + type_name(v) + "'");
}

static int64_t checked(Renderer& r, bool overflow, int64_t v) {
  if (overflow) r.error("integer overflow (moevk's template integers are 64-bit)");
  return v;
}

// Python's slice indices for a sequence of n items.
static std::vector<size_t> slice_indices(Renderer& r, int64_t n, const Value& start, const Value& stop,
                                         const Value& step_v) {
  int64_t step = step_v.is_undefined() || step_v.is_none() ? 1 : to_index(r, step_v, "slice step");
  if (step == 0) r.error("slice step cannot be zero");
  auto clamp = [&](const Value& v, int64_t def) {
    if (v.is_undefined() || v.is_none()) return def;
    int64_t i = to_index(r, v, "slice index");
    if (i < 0) i += n;
    if (step > 0) return std::clamp<int64_t>(i, 0, n);
    return std::clamp<int64_t>(i, -1, n - 1);
  };
  int64_t a = clamp(start, step > 0 ? 0 : n - 1), b = clamp(stop, step > 0 ? n : -1);
  std::vector<size_t> idx;
  for (int64_t i = a; step > 0 ? i < b : i > b; i += step) idx.push_back(static_cast<size_t>(i));
  return idx;
}

Value Renderer::get_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) error(undefined_message(obj));
  if (obj.is_dict() && !obj.is_namespace()) {
    static const char* const kMethods[] = {"items", "keys", "values", "get", "copy"};
    for (const char* m : kMethods)
      if (name == m) return method(obj, name);
  }
  // The list methods the immutable sandbox leaves: those that do not modify the list (a tuple
  // has no copy()).
  if (obj.is_list() && !obj.is_generator_like() && (name == "count" || name == "index" || (name == "copy" && !obj.is_tuple())))
    return method(obj, name);
  if (obj.is_dict()) {
    if (const Value* v = obj.find(name)) return *v;
    return Value::undefined("'" + std::string(type_name(obj)) + " object' has no attribute '" + name + "'");
  }
  if (obj.is_string()) return method(obj, name);
  return Value::undefined("'" + std::string(type_name(obj)) + " object' has no attribute '" + name + "'");
}

Value Renderer::get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) error(undefined_message(obj));
  if (obj.is_dict()) {
    if (key.is_string()) {
      if (const Value* v = obj.find(key.as_string())) return *v;
      return get_attr(obj, key.as_string());
    }
    return Value::undefined("'" + std::string(type_name(obj)) + " object' has no attribute " + py_repr(key));
  }
  if (obj.is_generator_like()) return Value::undefined("'generator' object is not subscriptable");
  if ((obj.is_list() || obj.is_string()) && (key.type() == Value::Type::Int || key.type() == Value::Type::Bool)) {
    int64_t i = key.as_int();
    if (obj.is_list()) {
      const int64_t n = static_cast<int64_t>(obj.items().size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::undefined(std::string(type_name(obj)) + " object has no element " + py_repr(key));
      return obj.items()[static_cast<size_t>(i)];
    }
    auto cps = code_points(obj.as_string());
    const int64_t n = static_cast<int64_t>(cps.size()) - 1;
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value::undefined("str object has no element " + py_repr(key));
    return Value::string(obj.as_string().substr(cps[i], cps[i + 1] - cps[i]));
  }
  if (key.is_string()) return get_attr(obj, key.as_string());
  return Value::undefined(std::string(type_name(obj)) + " object has no element " + py_repr(key));
}

namespace {

// Positional-or-keyword argument lookup for natives.
struct Args {
  Renderer& r;
  CallArgs& a;
  const char* fname;
  std::vector<bool> used_kw;

  Args(Renderer& renderer, CallArgs& args, const char* name)
      : r(renderer), a(args), fname(name), used_kw(args.kw.size(), false) {}

  const Value* get(size_t index, const char* name) {
    if (index < a.pos.size()) return &a.pos[index];
    for (size_t k = 0; k < a.kw.size(); ++k)
      if (a.kw[k].first == name) {
        used_kw[k] = true;
        return &a.kw[k].second;
      }
    return nullptr;
  }
  Value value(size_t index, const char* name, Value def) {
    const Value* v = get(index, name);
    return v ? *v : std::move(def);
  }
  void done(size_t max_positional) {
    if (a.pos.size() > max_positional)
      r.error(std::string(fname) + "() takes at most " + std::to_string(max_positional) + " positional arguments (" +
              std::to_string(a.pos.size()) + " given)");
    for (size_t k = 0; k < a.kw.size(); ++k)
      if (!used_kw[k]) r.error(std::string(fname) + "() got an unexpected keyword argument '" + a.kw[k].first + "'");
  }
  std::string str(size_t index, const char* name) {
    const Value* v = get(index, name);
    if (!v) r.error(std::string(fname) + "() missing argument '" + name + "'");
    if (!v->is_string()) r.error(std::string(fname) + "() argument '" + name + "' must be a string, not '" +
                                 type_name(*v) + "'");
    return v->as_string();
  }
};

std::vector<std::string> py_split(std::string_view s, const Value& sep, int64_t maxsplit) {
  std::vector<std::string> parts;
  if (sep.is_undefined() || sep.is_none()) {
    auto cps = code_points(s);
    size_t n = cps.size() - 1, k = 0;
    while (k < n) {
      while (k < n && py_space(decode_at(s, cps[k], cps[k + 1]))) ++k;
      if (k == n) break;
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
        std::string rest(s.substr(cps[k]));
        parts.push_back(py_strip(rest, false, true, nullptr));
        return parts;
      }
      size_t start = k;
      while (k < n && !py_space(decode_at(s, cps[k], cps[k + 1]))) ++k;
      parts.emplace_back(s.substr(cps[start], cps[k] - cps[start]));
    }
    return parts;
  }
  const std::string& d = sep.as_string();
  size_t pos = 0;
  while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
    size_t hit = s.find(d, pos);
    if (hit == std::string_view::npos) break;
    parts.emplace_back(s.substr(pos, hit - pos));
    pos = hit + d.size();
  }
  parts.emplace_back(s.substr(pos));
  return parts;
}

Value string_list(const std::vector<std::string>& parts) {
  Value::List items;
  for (const auto& p : parts) items.push_back(Value::string(p));
  return Value::list(std::move(items));
}

// Python's str.splitlines (without keepends).
std::vector<std::string> py_splitlines(std::string_view s, bool keepends = false) {
  std::vector<std::string> lines;
  auto cps = code_points(s);
  size_t start = 0;
  for (size_t k = 0; k + 1 < cps.size(); ++k) {
    uint32_t c = decode_at(s, cps[k], cps[k + 1]);
    bool brk = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) || c == 0x85 ||
               c == 0x2028 || c == 0x2029;
    if (!brk) continue;
    const size_t line_end = cps[k];
    if (c == '\r' && k + 2 < cps.size() && s[cps[k + 1]] == '\n') ++k;
    lines.emplace_back(s.substr(start, (keepends ? cps[k + 1] : line_end) - start));
    start = cps[k + 1];
  }
  if (start < s.size()) lines.emplace_back(s.substr(start));
  return lines;
}

// The window that the optional start and end arguments (positions `first` and `first` + 1) of
// str.find, count, startswith and endswith pick: code point indices, negative ones from the
// end, clamped as Python's ADJUST_INDICES does. False when start is past end: nothing matches
// there, not even "".
struct StrWindow {
  size_t begin = 0, end = 0;  // byte offsets
  int64_t start = 0;          // code point index of begin
};
bool str_window(Renderer& r, const std::string& s, Args& a, size_t first, StrWindow& w) {
  Value start = a.value(first, "start", Value::none()), end = a.value(first + 1, "end", Value::none());
  a.done(first + 2);
  auto cps = code_points(s);
  const int64_t n = static_cast<int64_t>(cps.size()) - 1;
  auto adjust = [&](const Value& v, int64_t def) {
    if (v.is_none()) return def;
    int64_t i = to_index(r, v, "slice index");
    return i < 0 ? std::max<int64_t>(i + n, 0) : i;
  };
  const int64_t b = std::min(adjust(end, n), n);
  w.start = adjust(start, 0);
  if (w.start > b) return false;
  w.begin = cps[static_cast<size_t>(w.start)];
  w.end = cps[static_cast<size_t>(b)];
  return true;
}

Value find_in(Renderer& r, const Value& s, Args& a, bool from_right) {
  std::string sub = a.str(0, "sub");
  StrWindow w;
  if (!str_window(r, s.as_string(), a, 1, w)) return Value::integer(-1);
  std::string_view in = std::string_view(s.as_string()).substr(w.begin, w.end - w.begin);
  size_t hit = from_right ? in.rfind(sub) : in.find(sub);
  if (hit == std::string_view::npos) return Value::integer(-1);
  return Value::integer(w.start + static_cast<int64_t>(cp_length(in.substr(0, hit))));
}

// str.startswith / str.endswith: a string or a tuple of strings, and an optional window.
Value affix_test(Renderer& r, const Value& s, Args& a, const char* what, bool prefix) {
  Value p = a.value(0, what, Value());
  StrWindow w;
  const bool in_range = str_window(r, s.as_string(), a, 1, w);
  std::string_view in = std::string_view(s.as_string()).substr(w.begin, w.end - w.begin);
  auto test = [&](const Value& x) {
    if (!x.is_string()) r.error(std::string(prefix ? "startswith" : "endswith") + "() takes a string or a tuple of strings");
    return in_range && (prefix ? starts_with(in, x.as_string()) : ends_with(in, x.as_string()));
  };
  if (p.is_tuple()) return Value::boolean(std::any_of(p.items().begin(), p.items().end(), test));
  return Value::boolean(test(p));
}

// Letters as far as the case tables know them (Python's isalpha also takes the letters that
// have no case, CJK among them).
bool cased_letter(uint32_t c) {
  return (c < 0x80 && ascii_alpha(static_cast<char>(c))) || cp_lower(c) != c || cp_upper(c) != c || c == 0xDF;
}
// Python's str.isX(): not empty, and every code point passes.
bool cp_all(std::string_view s, bool (*pred)(uint32_t)) {
  auto cps = code_points(s);
  if (cps.size() < 2) return false;
  for (size_t k = 0; k + 1 < cps.size(); ++k)
    if (!pred(decode_at(s, cps[k], cps[k + 1]))) return false;
  return true;
}

bool str_all(std::string_view s, bool (*pred)(char)) {
  if (s.empty()) return false;
  for (char c : s)
    if (!pred(c)) return false;
  return true;
}

}  // namespace

Value Renderer::method(const Value& obj, const std::string& name) {
  auto bound = [&](auto fn) {
    Value self = obj;
    return Value::function(name, [self, fn, name](Renderer& r, CallArgs& a) {
      Args args(r, a, name.c_str());
      return fn(r, self, args);
    });
  };
  if (obj.is_list()) {
    if (name == "copy")
      return bound([](Renderer&, const Value& self, Args& args) {
        args.done(0);
        return Value::list(self.items(), self.is_tuple());
      });
    if (name == "count")
      return bound([](Renderer& r, const Value& self, Args& args) {
        const Value* x = args.get(0, "value");
        args.done(1);
        if (!x) r.error("count() takes exactly one argument");
        return Value::integer(std::count_if(self.items().begin(), self.items().end(), [&](const Value& y) { return py_eq(y, *x); }));
      });
    if (name == "index")
      return bound([](Renderer& r, const Value& self, Args& args) {
        const Value* x = args.get(0, "value");
        args.done(1);
        if (!x) r.error("index() takes at least one argument");
        for (size_t k = 0; k < self.items().size(); ++k)
          if (py_eq(self.items()[k], *x)) return Value::integer(static_cast<int64_t>(k));
        r.error(py_repr(*x) + " is not in list");
      });
  }
  if (obj.is_dict()) {
    if (name == "copy")
      return bound([](Renderer&, const Value& self, Args& args) {
        args.done(0);
        return Value::dict(self.entries());
      });
    if (name == "items")
      return bound([](Renderer&, const Value& self, Args& args) {
        args.done(0);
        Value::List out;
        for (const auto& [k, v] : self.entries()) out.push_back(Value::list({Value::string(k), v}, true));
        return Value::list(std::move(out));
      });
    if (name == "keys" || name == "values")
      return bound([keys = name == "keys"](Renderer&, const Value& self, Args& args) {
        args.done(0);
        Value::List out;
        for (const auto& [k, v] : self.entries()) out.push_back(keys ? Value::string(k) : v);
        return Value::list(std::move(out));
      });
    if (name == "get")
      return bound([](Renderer& r, const Value& self, Args& args) {
        const Value* key = args.get(0, "key");
        Value def = args.value(1, "default", Value::none());
        args.done(2);
        if (!key) r.error("get() missing argument 'key'");
        if (key->is_string())
          if (const Value* v = self.find(key->as_string())) return *v;
        return def;
      });
  }
  if (!obj.is_string()) return Value::undefined("'" + std::string(type_name(obj)) + " object' has no attribute '" + name + "'");
  using F = Value (*)(Renderer&, const Value&, Args&);
  static const std::map<std::string, F, std::less<>> kStr = {
      {"strip", [](Renderer&, const Value& s, Args& a) {
         Value c = a.value(0, "chars", Value::none());
         a.done(1);
         return Value::string(py_strip(s.as_string(), true, true, c.is_string() ? &c.as_string() : nullptr));
       }},
      {"lstrip", [](Renderer&, const Value& s, Args& a) {
         Value c = a.value(0, "chars", Value::none());
         a.done(1);
         return Value::string(py_strip(s.as_string(), true, false, c.is_string() ? &c.as_string() : nullptr));
       }},
      {"rstrip", [](Renderer&, const Value& s, Args& a) {
         Value c = a.value(0, "chars", Value::none());
         a.done(1);
         return Value::string(py_strip(s.as_string(), false, true, c.is_string() ? &c.as_string() : nullptr));
       }},
      {"split", [](Renderer& r, const Value& s, Args& a) {
         Value sep = a.value(0, "sep", Value::none());
         int64_t max = to_index(r, a.value(1, "maxsplit", Value::integer(-1)), "maxsplit");
         a.done(2);
         if (sep.is_string() && sep.as_string().empty()) r.error("split(): empty separator");
         if (!sep.is_none() && !sep.is_string()) r.error("split(): the separator must be a string or None");
         return string_list(py_split(s.as_string(), sep, max));
       }},
      {"rsplit", [](Renderer& r, const Value& s, Args& a) {
         Value sep = a.value(0, "sep", Value::none());
         int64_t max = to_index(r, a.value(1, "maxsplit", Value::integer(-1)), "maxsplit");
         a.done(2);
         if (!sep.is_string() || sep.as_string().empty()) {
           if (max < 0) return string_list(py_split(s.as_string(), sep, -1));
           r.error("rsplit(): only a non-empty string separator is supported with maxsplit");
         }
         std::vector<std::string> parts;
         std::string_view rest = s.as_string();
         const std::string& d = sep.as_string();
         while (max < 0 || static_cast<int64_t>(parts.size()) < max) {
           size_t hit = rest.rfind(d);
           if (hit == std::string_view::npos) break;
           parts.emplace_back(rest.substr(hit + d.size()));
           rest = rest.substr(0, hit);
         }
         parts.emplace_back(rest);
         std::reverse(parts.begin(), parts.end());
         return string_list(parts);
       }},
      {"startswith", [](Renderer& r, const Value& s, Args& a) { return affix_test(r, s, a, "prefix", true); }},
      {"endswith", [](Renderer& r, const Value& s, Args& a) { return affix_test(r, s, a, "suffix", false); }},
      {"replace", [](Renderer& r, const Value& s, Args& a) {
         std::string from = a.str(0, "old"), to = a.str(1, "new");
         int64_t count = to_index(r, a.value(2, "count", Value::integer(-1)), "count");
         a.done(3);
         std::string out = replace_all(s.as_string(), from, to, count);
         r.check_size(out.size());
         return Value::string(std::move(out));
       }},
      {"upper", [](Renderer&, const Value& s, Args& a) { a.done(0); return Value::string(upper(s.as_string())); }},
      {"lower", [](Renderer&, const Value& s, Args& a) { a.done(0); return Value::string(lower(s.as_string())); }},
      {"title", [](Renderer&, const Value& s, Args& a) { a.done(0); return Value::string(py_title(s.as_string())); }},
      {"capitalize", [](Renderer&, const Value& s, Args& a) {
         a.done(0);
         return Value::string(capitalize(s.as_string()));
       }},
      {"find", [](Renderer& r, const Value& s, Args& a) { return find_in(r, s, a, false); }},
      {"rfind", [](Renderer& r, const Value& s, Args& a) { return find_in(r, s, a, true); }},
      {"count", [](Renderer& r, const Value& s, Args& a) {
         std::string sub = a.str(0, "sub");
         StrWindow w;
         if (!str_window(r, s.as_string(), a, 1, w)) return Value::integer(0);
         std::string_view in = std::string_view(s.as_string()).substr(w.begin, w.end - w.begin);
         if (sub.empty()) return Value::integer(static_cast<int64_t>(cp_length(in)) + 1);
         int64_t n = 0;
         for (size_t p = in.find(sub); p != std::string::npos; p = in.find(sub, p + sub.size())) ++n;
         return Value::integer(n);
       }},
      {"join", [](Renderer& r, const Value& s, Args& a) {
         const Value* it = a.get(0, "iterable");
         a.done(1);
         if (!it) r.error("join() missing argument");
         std::string out;
         bool first = true;
         for (const Value& x : iterate(r, *it)) {
           if (!x.is_string()) r.error(std::string("join(): expected str items, found '") + type_name(x) + "'");
           if (!first) out += s.as_string();
           out += x.as_string();
           first = false;
           r.check_size(out.size());
         }
         return Value::string(std::move(out));
       }},
      {"splitlines", [](Renderer&, const Value& s, Args& a) {
         const bool keepends = a.value(0, "keepends", Value::boolean(false)).truthy();
         a.done(1);
         return string_list(py_splitlines(s.as_string(), keepends));
       }},
      {"removeprefix", [](Renderer&, const Value& s, Args& a) {
         std::string p = a.str(0, "prefix");
         a.done(1);
         return Value::string(starts_with(s.as_string(), p) ? s.as_string().substr(p.size()) : s.as_string());
       }},
      {"removesuffix", [](Renderer&, const Value& s, Args& a) {
         std::string p = a.str(0, "suffix");
         a.done(1);
         return Value::string(!p.empty() && ends_with(s.as_string(), p) ? s.as_string().substr(0, s.as_string().size() - p.size())
                                                                        : s.as_string());
       }},
      {"isdigit", [](Renderer&, const Value& s, Args& a) {
         a.done(0);
         return Value::boolean(str_all(s.as_string(), ascii_digit));
       }},
      {"isalpha", [](Renderer&, const Value& s, Args& a) {
         a.done(0);
         return Value::boolean(cp_all(s.as_string(), cased_letter));
       }},
      {"isalnum", [](Renderer&, const Value& s, Args& a) {
         a.done(0);
         return Value::boolean(cp_all(s.as_string(), [](uint32_t c) { return cased_letter(c) || (c >= '0' && c <= '9'); }));
       }},
      {"isspace", [](Renderer&, const Value& s, Args& a) {
         a.done(0);
         return Value::boolean(!s.as_string().empty() && py_strip(s.as_string(), true, true, nullptr).empty());
       }},
      {"islower", [](Renderer&, const Value& s, Args& a) {
         a.done(0);
         return Value::boolean(py_is_case(s.as_string(), true));
       }},
      {"isupper", [](Renderer&, const Value& s, Args& a) {
         a.done(0);
         return Value::boolean(py_is_case(s.as_string(), false));
       }},
  };
  auto it = kStr.find(name);
  if (it == kStr.end()) return Value::undefined("'str object' has no attribute '" + name + "'");
  return bound(it->second);
}

// ----- operators -----

Value Renderer::binary(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) error(undefined_message(a));
  if (b.is_undefined()) error(undefined_message(b));
  const bool nums = a.is_number() && b.is_number();
  const bool ints = nums && a.type() != Value::Type::Float && b.type() != Value::Type::Float;
  auto unsupported = [&]() -> Value {
    error("unsupported operand types for " + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
  };
  if (op == "+") {
    if (ints) {
      int64_t r = 0;
      const bool overflow = __builtin_add_overflow(a.as_int(), b.as_int(), &r);
      return Value::integer(checked(*this, overflow, r));
    }
    if (nums) return Value::number(a.as_float() + b.as_float());
    if (a.is_string() && b.is_string()) {
      check_size(a.as_string().size() + b.as_string().size());
      return Value::string(a.as_string() + b.as_string());
    }
    if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple() && !a.is_generator_like() && !b.is_generator_like()) {
      Value::List items = a.items();
      items.insert(items.end(), b.items().begin(), b.items().end());
      return Value::list(std::move(items), a.is_tuple());
    }
    return unsupported();
  }
  if (op == "-") {
    if (ints) {
      int64_t r = 0;
      const bool overflow = __builtin_sub_overflow(a.as_int(), b.as_int(), &r);
      return Value::integer(checked(*this, overflow, r));
    }
    if (nums) return Value::number(a.as_float() - b.as_float());
    return unsupported();
  }
  if (op == "*") {
    if (ints) {
      int64_t r = 0;
      const bool overflow = __builtin_mul_overflow(a.as_int(), b.as_int(), &r);
      return Value::integer(checked(*this, overflow, r));
    }
    if (nums) return Value::number(a.as_float() * b.as_float());
    auto repeatable = [](const Value& x) { return x.is_string() || (x.is_list() && !x.is_generator_like()); };
    const Value* seq = repeatable(a) ? &a : repeatable(b) ? &b : nullptr;
    const Value* count = seq == &a ? &b : &a;
    if (!seq || (count->type() != Value::Type::Int && count->type() != Value::Type::Bool)) return unsupported();
    const int64_t n = std::max<int64_t>(0, count->as_int());
    if (seq->is_string()) {
      if (n > 0 && seq->as_string().size() > 0) check_size(static_cast<size_t>(n) * seq->as_string().size());
      std::string out;
      for (int64_t k = 0; k < n; ++k) out += seq->as_string();
      return Value::string(std::move(out));
    }
    if (n > 0 && static_cast<size_t>(n) * seq->items().size() > kMaxSequence) error("a list of more than 2^20 items");
    Value::List items;
    for (int64_t k = 0; k < n; ++k) items.insert(items.end(), seq->items().begin(), seq->items().end());
    return Value::list(std::move(items), seq->is_tuple());
  }
  if (op == "/") {
    if (!nums) return unsupported();
    if (b.as_float() == 0.0) error("division by zero");
    return Value::number(a.as_float() / b.as_float());
  }
  if (op == "//" || op == "%") {
    if (!nums) {
      if (op == "%" && a.is_string()) error("string formatting with % is not supported");
      return unsupported();
    }
    if (ints) {
      const int64_t x = a.as_int(), y = b.as_int();
      if (y == 0) error(op == "//" ? "integer division by zero" : "integer modulo by zero");
      if (x == std::numeric_limits<int64_t>::min() && y == -1) checked(*this, true, 0);
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        --q;
        m += y;
      }
      return Value::integer(op == "//" ? q : m);
    }
    const double x = a.as_float(), y = b.as_float();
    if (y == 0.0) error("float division by zero");
    if (op == "//") return Value::number(std::floor(x / y));
    double m = std::fmod(x, y);
    if (m != 0.0 && ((m < 0) != (y < 0))) m += y;
    return Value::number(m);
  }
  if (op == "**") {
    if (!nums) return unsupported();
    if (ints && b.as_int() >= 0) {
      int64_t result = 1, base = a.as_int();
      for (int64_t e = b.as_int(); e > 0; --e) {
        if (__builtin_mul_overflow(result, base, &result)) checked(*this, true, 0);
        if (result == 0 || result == 1 || (result == -1 && base == -1)) {
          if (base == -1) result = (e - 1) % 2 == 0 ? result : -result;  // finish the sign quickly
          break;
        }
      }
      return Value::integer(result);
    }
    const double r = std::pow(a.as_float(), b.as_float());
    if (std::isinf(r) && std::isfinite(a.as_float()) && std::isfinite(b.as_float()))
      error("numerical result out of range");  // Python's OverflowError
    return Value::number(r);
  }
  error("unknown operator " + op);
}

bool Renderer::compare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return py_eq(a, b);
  if (op == "!=") return !py_eq(a, b);
  if (op == "in" || op == "not in") {
    bool found = false;
    if (b.is_string()) {
      if (!a.is_string()) error(std::string("'in <string>' requires a string on the left, not '") + type_name(a) + "'");
      found = b.as_string().find(a.as_string()) != std::string::npos;
    } else if (b.is_list()) {
      found = std::any_of(b.items().begin(), b.items().end(), [&](const Value& x) { return py_eq(a, x); });
    } else if (b.is_dict() && !b.is_namespace()) {
      found = a.is_string() && b.find(a.as_string()) != nullptr;
    } else if (!b.is_undefined()) {
      error(std::string("argument of type '") + type_name(b) + "' is not iterable");
    }
    return op == "in" ? found : !found;
  }
  // Ordering.
  int c = 0;
  if (a.is_number() && b.is_number()) {
    if (a.type() != Value::Type::Float && b.type() != Value::Type::Float)
      c = a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int();
    else
      c = a.as_float() < b.as_float() ? -1 : a.as_float() > b.as_float() ? 1 : 0;
    if (std::isnan(a.as_float()) || std::isnan(b.as_float())) return false;
  } else if (a.is_string() && b.is_string()) {
    c = a.as_string().compare(b.as_string());
    c = c < 0 ? -1 : c > 0;
  } else if (a.is_list() && b.is_list() && !a.is_generator_like() && !b.is_generator_like() && a.is_tuple() == b.is_tuple()) {
    size_t n = std::min(a.items().size(), b.items().size()), i = 0;
    for (; i < n; ++i)
      if (!py_eq(a.items()[i], b.items()[i])) break;
    if (i < n) return compare(op, a.items()[i], b.items()[i]);
    c = a.items().size() < b.items().size() ? -1 : a.items().size() > b.items().size();
  } else {
    if (a.is_undefined()) error(undefined_message(a));
    if (b.is_undefined()) error(undefined_message(b));
    error("'" + op + "' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) + "'");
  }
  if (op == "<") return c < 0;
  if (op == ">") return c > 0;
  if (op == "<=") return c <= 0;
  return c >= 0;
}

// ----- expressions -----

Value Renderer::eval(const Expr& e, Scope& scope) {
  step(e.line);
  switch (e.kind) {
    case Expr::Literal: return e.value;
    case Expr::Name: {
      if (Value* v = scope.find(e.name)) return *v;
      return Value::undefined("'" + e.name + "' is undefined");
    }
    case Expr::ListLit:
    case Expr::TupleLit: {
      Value::List items;
      for (const auto& a : e.args) items.push_back(eval(*a, scope));
      return Value::list(std::move(items), e.kind == Expr::TupleLit);
    }
    case Expr::DictLit: {
      Value d = Value::dict();
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
        Value k = eval(*e.args[i], scope);
        if (!k.is_string()) error(std::string("dictionary keys must be strings here, not '") + type_name(k) + "'");
        d.set(k.as_string(), eval(*e.args[i + 1], scope));
      }
      return d;
    }
    case Expr::Attr: return get_attr(eval(*e.args[0], scope), e.name);
    case Expr::Item: {
      Value obj = eval(*e.args[0], scope);
      return get_item(obj, eval(*e.args[1], scope));
    }
    case Expr::Slice: {
      Value obj = eval(*e.args[0], scope);
      Value parts[3] = {Value::none(), Value::none(), Value::none()};  // an omitted part is None
      for (int k = 0; k < 3; ++k)
        if (e.args[k + 1]) parts[k] = eval(*e.args[k + 1], scope);
      if (obj.is_undefined()) error(undefined_message(obj));
      // Jinja2 slices with Python's own [] (not its lenient getitem): a generator, a dict, a
      // number or None cannot be sliced, and a bound must be an integer or None (an undefined
      // one fails too).
      if (!((obj.is_list() && !obj.is_generator_like()) || obj.is_string()))
        error(std::string("'") + (obj.is_generator_like() ? "generator" : type_name(obj)) + "' object cannot be sliced");
      for (const Value& p : parts)
        if (!p.is_none() && p.type() != Value::Type::Int && p.type() != Value::Type::Bool)
          error("slice indices must be integers or None");
      if (obj.is_list()) {
        Value::List items;
        for (size_t i : slice_indices(*this, static_cast<int64_t>(obj.items().size()), parts[0], parts[1], parts[2]))
          items.push_back(obj.items()[i]);
        return Value::list(std::move(items), obj.is_tuple());
      }
      if (obj.is_string()) {
        auto cps = code_points(obj.as_string());
        std::string out;
        for (size_t i : slice_indices(*this, static_cast<int64_t>(cps.size()) - 1, parts[0], parts[1], parts[2]))
          out += obj.as_string().substr(cps[i], cps[i + 1] - cps[i]);
        return Value::string(std::move(out));
      }
      error("unreachable slice");
    }
    case Expr::Call: {
      Value fn = eval(*e.args[0], scope);
      CallArgs args;
      eval_args(e, 1, scope, args);
      return call(fn, args);
    }
    case Expr::Filter: {
      if (!e.args[0]) error("a filter without a value");
      Value subject = eval(*e.args[0], scope);
      CallArgs args;
      eval_args(e, 1, scope, args);
      return apply_filter(e.name, std::move(subject), args, scope);
    }
    case Expr::Test: {
      Value subject = eval(*e.args[0], scope);
      CallArgs args;
      eval_args(e, 1, scope, args);
      return Value::boolean(apply_test(e.name, subject, args) != e.negated);
    }
    case Expr::Neg:
    case Expr::Pos: {
      Value v = eval(*e.args[0], scope);
      if (v.is_undefined()) error(undefined_message(v));
      if (!v.is_number()) error(std::string("bad operand type for unary ") + (e.kind == Expr::Neg ? "-" : "+") + ": '" +
                                type_name(v) + "'");
      if (e.kind == Expr::Pos) return v.type() == Value::Type::Float ? v : Value::integer(v.as_int());
      if (v.type() == Value::Type::Float) return Value::number(-v.as_float());
      return Value::integer(checked(*this, v.as_int() == std::numeric_limits<int64_t>::min(), -v.as_int()));
    }
    case Expr::Not: return Value::boolean(!eval(*e.args[0], scope).truthy());
    case Expr::And: {
      Value a = eval(*e.args[0], scope);
      return a.truthy() ? eval(*e.args[1], scope) : a;
    }
    case Expr::Or: {
      Value a = eval(*e.args[0], scope);
      return a.truthy() ? a : eval(*e.args[1], scope);
    }
    case Expr::Binary: {
      Value a = eval(*e.args[0], scope);
      Value b = eval(*e.args[1], scope);
      return binary(e.name, a, b);
    }
    case Expr::Concat: {
      std::string s;
      for (const auto& a : e.args) {
        s += py_str(eval(*a, scope));
        check_size(s.size());
      }
      return Value::string(std::move(s));
    }
    case Expr::Compare: {
      Value left = eval(*e.args[0], scope);
      for (size_t i = 0; i < e.ops.size(); ++i) {
        Value right = eval(*e.args[i + 1], scope);
        line_ = e.line;
        if (!compare(e.ops[i], left, right)) return Value::boolean(false);
        left = std::move(right);
      }
      return Value::boolean(true);
    }
    case Expr::Cond: {
      if (eval(*e.args[1], scope).truthy()) return eval(*e.args[0], scope);
      return e.args[2] ? eval(*e.args[2], scope) : Value::undefined("the condition of an inline if was false");
    }
  }
  error("unknown expression");
}

// ----- statements -----

Value Renderer::make_macro(const Stmt& s, Scope& where) {
  const Stmt* def = &s;
  // A macro is a closure: defined inside a loop, a with block or another macro, it sees their
  // variables (loop included). They are copied as they are now (Jinja2 reads them when the
  // macro runs; the two differ only for a variable set between the definition and the call);
  // the template's own variables are read when it runs, so it sees a later top-level set.
  std::shared_ptr<Scope> closure;
  for (Scope* sc = &where; sc && sc != root_; sc = sc->parent) {
    if (!closure) {
      closure = std::make_shared<Scope>();
      closure->parent = root_;
    }
    for (const auto& var : sc->vars) {
      const std::string& key = var.first;  // not a structured binding: clang 14 cannot capture one
      if (!std::any_of(closure->vars.begin(), closure->vars.end(), [&](const auto& kv) { return kv.first == key; }))
        closure->vars.emplace_back(key, var.second);
    }
  }
  Scope* root = root_;
  return Value::function(s.text, [def, root, closure](Renderer& r, CallArgs& args) {
    Scope scope;
    scope.parent = closure ? closure.get() : root;
    // The macro's own name, for recursion: the closure was copied before the macro existed.
    if (closure) scope.set(def->text, r.callee());
    if (args.pos.size() > def->params.size())
      r.error("macro '" + def->text + "' takes " + std::to_string(def->params.size()) + " arguments (" +
              std::to_string(args.pos.size()) + " given)");
    for (size_t i = 0; i < def->params.size(); ++i) {
      const auto& [name, dflt] = def->params[i];
      Value v = i < args.pos.size() ? args.pos[i] : Value::undefined("'" + name + "' is undefined");
      bool given = i < args.pos.size();
      for (auto& [k, x] : args.kw)
        if (k == name) {
          if (given) r.error("macro '" + def->text + "' got two values for '" + name + "'");
          v = x;
          given = true;
        }
      if (!given && dflt) v = r.eval(*dflt, scope);
      scope.set(name, std::move(v));
    }
    for (const auto& kw : args.kw) {
      const std::string& key = kw.first;
      bool known = std::any_of(def->params.begin(), def->params.end(), [&](const auto& p) { return p.first == key; });
      if (!known) r.error("macro '" + def->text + "' takes no keyword argument '" + key + "'");
    }
    return Value::string(r.capture(def->bodies[0], scope));
  });
}

Flow Renderer::exec(const Stmt& s, Scope& scope) {
  step(s.line);
  switch (s.kind) {
    case Stmt::Text: emit(s.text); return Flow::Normal;
    case Stmt::Output: {
      Value v = eval(*s.expr, scope);
      emit(py_str(v));
      return Flow::Normal;
    }
    case Stmt::If: {
      for (size_t i = 0; i < s.conds.size(); ++i)
        if (eval(*s.conds[i], scope).truthy()) return exec_body(s.bodies[i], scope);
      if (s.bodies.size() > s.conds.size()) return exec_body(s.bodies.back(), scope);
      return Flow::Normal;
    }
    case Stmt::For: {
      Value iterable = eval(*s.expr, scope);
      Value::List all = iterate(*this, iterable);
      auto bind = [&](Scope& into, const Value& item) {
        if (s.targets.size() == 1) {
          into.set(s.targets[0], item);
          return;
        }
        Value::List parts = iterate(*this, item);
        if (parts.size() != s.targets.size())
          error("cannot unpack " + std::to_string(parts.size()) + " values into " + std::to_string(s.targets.size()) +
                " loop variables");
        for (size_t k = 0; k < parts.size(); ++k) into.set(s.targets[k], parts[k]);
      };
      Value::List items;
      if (s.filter) {
        for (const Value& item : all) {
          Scope probe;
          probe.parent = &scope;
          bind(probe, item);
          if (eval(*s.filter, probe).truthy()) items.push_back(item);
        }
      } else {
        items = std::move(all);
      }
      // Jinja runs the else block unless some pass reached the end of the body: a loop left by
      // a break in its first pass, or whose every pass ended in continue, runs it too.
      bool completed = false;
      const int64_t n = static_cast<int64_t>(items.size());
      auto pass = std::make_shared<int64_t>(0);
      Value loop = Value::dict();
      for (const char* key : {"index", "index0", "revindex", "revindex0", "first", "last"}) loop.set(key, Value());
      loop.set("length", Value::integer(n));
      loop.set("depth", Value::integer(1));
      loop.set("depth0", Value::integer(0));
      loop.set("previtem", Value());
      loop.set("nextitem", Value());
      loop.set("cycle", Value::function("cycle", [pass](Renderer& r, CallArgs& a) {
                 if (a.pos.empty()) r.error("loop.cycle() needs at least one value");
                 return a.pos[static_cast<size_t>(*pass) % a.pos.size()];
               }));
      for (int64_t i = 0; i < n; ++i) {
        step(s.line);  // an empty body still costs its passes
        Scope body;
        body.parent = &scope;
        // One loop object for all passes, updated in place (Jinja's is one object too).
        Value::Dict& e = loop.mutable_entries();
        e[0].second = Value::integer(i + 1);
        e[1].second = Value::integer(i);
        e[2].second = Value::integer(n - i);
        e[3].second = Value::integer(n - i - 1);
        e[4].second = Value::boolean(i == 0);
        e[5].second = Value::boolean(i == n - 1);
        e[9].second = i > 0 ? items[i - 1] : Value::undefined("there is no previous item");
        e[10].second = i + 1 < n ? items[i + 1] : Value::undefined("there is no next item");
        *pass = i;
        body.set("loop", loop);
        bind(body, items[i]);
        Flow f = exec_body(s.bodies[0], body);
        if (f == Flow::Break) break;
        completed = completed || f == Flow::Normal;
      }
      if (!completed && s.bodies.size() > 1) return exec_body(s.bodies[1], scope);
      return Flow::Normal;
    }
    case Stmt::Set: {
      Value v = eval(*s.expr, scope);
      if (!s.text.empty()) {
        Value* ns = scope.find(s.targets[0]);
        if (!ns || !ns->is_namespace())
          error("cannot assign the attribute '" + s.text + "' of '" + s.targets[0] + "': not a namespace()");
        ns->set(s.text, std::move(v));
        return Flow::Normal;
      }
      if (s.targets.size() == 1) {
        scope.set(s.targets[0], std::move(v));
        return Flow::Normal;
      }
      Value::List parts = iterate(*this, v);
      if (parts.size() != s.targets.size())
        error("cannot unpack " + std::to_string(parts.size()) + " values into " + std::to_string(s.targets.size()) +
              " names");
      for (size_t k = 0; k < parts.size(); ++k) scope.set(s.targets[k], parts[k]);
      return Flow::Normal;
    }
    case Stmt::SetBlock: {
      Value v = Value::string(capture(s.bodies[0], scope));
      if (s.filter) v = apply_filter_chain(*s.filter, std::move(v), scope);
      scope.set(s.text, std::move(v));
      return Flow::Normal;
    }
    case Stmt::Macro: scope.set(s.text, make_macro(s, scope)); return Flow::Normal;
    case Stmt::Break: return Flow::Break;
    case Stmt::Continue: return Flow::Continue;
    case Stmt::FilterBlock: {
      Value v = apply_filter_chain(*s.expr, Value::string(capture(s.bodies[0], scope)), scope);
      // Jinja2 emits a filter block's result as it is, and its output join takes only strings:
      // a block filtered to a number or a list (`{% filter length %}`) fails.
      if (!v.is_string()) error(std::string("a filter block must give a string, not '") + type_name(v) + "'");
      emit(v.as_string());
      return Flow::Normal;
    }
    case Stmt::With: {
      Scope inner;
      inner.parent = &scope;
      // The values are computed outside the block: `{% with a = 1, b = a %}` reads the outer a.
      for (const auto& [name, x] : s.params) inner.set(name, eval(*x, scope));
      return exec_body(s.bodies[0], inner);
    }
    case Stmt::Plain: return exec_body(s.bodies[0], scope);
  }
  return Flow::Normal;
}

// ----- filters and tests -----

namespace {

// Jinja's "ignore case" key for sort, unique, min and max.
Value sort_key(const Value& v, bool case_sensitive) {
  return v.is_string() && !case_sensitive ? Value::string(lower(v.as_string())) : v;
}

// Whether Python could put the value in a set (a tuple only of such values; not a list or dict).
bool hashable(const Value& v) {
  if (v.is_dict()) return v.is_namespace();
  if (v.is_list() && !v.is_generator_like()) {
    if (!v.is_tuple()) return false;
    return std::all_of(v.items().begin(), v.items().end(), hashable);
  }
  return true;
}

}  // namespace

// The item a filter's `attribute=` names: "a.b" walks into dicts, a part of digits indexes.
static Value walk_attribute(Renderer& r, const Value& v, const Value& attr) {
  if (attr.type() == Value::Type::Int) return r.get_item(v, attr);
  if (!attr.is_string()) r.error("an attribute name must be a string");
  Value cur = v;
  for (const std::string& part : py_split(attr.as_string(), Value::string("."), -1)) {
    int64_t index = 0;
    auto parsed = std::from_chars(part.data(), part.data() + part.size(), index);
    const bool digits = !part.empty() && std::all_of(part.begin(), part.end(), ascii_digit);
    if (digits && parsed.ec != std::errc()) r.error("attribute index out of range: " + part);
    cur = r.get_item(cur, digits ? Value::integer(index) : Value::string(part));
  }
  return cur;
}

Value Renderer::apply_filter(const std::string& name, Value v, CallArgs& call_args, Scope& scope) {
  Args a(*this, call_args, name.c_str());
  auto item_attr = [&](const Value& x, const Value& attr) { return walk_attribute(*this, x, attr); };
  auto require_str = [&](const Value& x) -> std::string {
    if (x.is_undefined()) return "";
    return py_str(x);
  };
  auto seq = [&](const Value& x) {
    if (x.is_generator_like()) return x.items();
    return iterate(*this, x);
  };
  if (name == "trim") {
    Value chars = a.value(0, "chars", Value::none());
    a.done(1);
    return Value::string(py_strip(require_str(v), true, true, chars.is_string() ? &chars.as_string() : nullptr));
  }
  if (name == "length" || name == "count") {
    a.done(0);
    if (v.is_undefined()) return Value::integer(0);
    if (v.is_string()) return Value::integer(static_cast<int64_t>(cp_length(v.as_string())));
    if (v.is_list() && !v.is_generator_like()) return Value::integer(static_cast<int64_t>(v.items().size()));
    if (v.is_dict() && !v.is_namespace()) return Value::integer(static_cast<int64_t>(v.entries().size()));
    error(std::string("object of type '") + (v.is_generator_like() ? "generator" : type_name(v)) + "' has no len()");
  }
  if (name == "list") {
    a.done(0);
    return Value::list(seq(v));
  }
  if (name == "tojson") {
    JsonStyle st;
    st.ensure_ascii = a.value(0, "ensure_ascii", Value::boolean(false)).truthy();
    Value indent = a.value(1, "indent", Value::none());
    Value separators = a.value(2, "separators", Value::none());
    st.sort_keys = a.value(3, "sort_keys", Value::boolean(false)).truthy();
    a.done(4);
    if (!indent.is_none()) {
      // json.dumps: a string is the indent itself, an integer that many spaces (none if <= 0).
      if (indent.is_string()) {
        st.indent = indent.as_string();
      } else if (indent.type() == Value::Type::Int || indent.type() == Value::Type::Bool) {
        st.indent.assign(static_cast<size_t>(std::clamp<int64_t>(indent.as_int(), 0, 1024)), ' ');
      } else {
        error("tojson(): indent must be an integer or a string");
      }
      st.pretty = true;
      st.item_sep = ",";
      st.max_bytes = opt_.max_output_bytes;
    }
    if (!separators.is_none()) {
      if (!separators.is_list() || separators.items().size() != 2 || !separators.items()[0].is_string() ||
          !separators.items()[1].is_string())
        error("tojson(): separators must be a pair of strings");
      st.item_sep = separators.items()[0].as_string();
      st.key_sep = separators.items()[1].as_string();
    }
    if (v.is_generator_like()) error("Object of type generator is not JSON serializable");
    std::string out;
    try {
      json_dump(out, v, st, 0);
    } catch (const Error& e) {
      error(e.what());
    }
    check_size(out.size());
    return Value::string(std::move(out));
  }
  if (name == "string") {
    a.done(0);
    return Value::string(py_str(v));
  }
  if (name == "lower" || name == "upper" || name == "capitalize" || name == "title") {
    a.done(0);
    std::string s = require_str(v);
    return Value::string(name == "lower" ? lower(s) : name == "upper" ? upper(s) : name == "capitalize" ? capitalize(s)
                                                                                                      : jinja_title(s));
  }
  if (name == "replace") {  // str(s).replace(str(old), str(new), count)
    const Value* old_v = a.get(0, "old");
    const Value* new_v = a.get(1, "new");
    if (!old_v || !new_v) error("replace() needs the old and the new text");
    const std::string from = py_str(*old_v), to = py_str(*new_v);
    Value count = a.value(2, "count", Value::none());
    a.done(3);
    std::string out = replace_all(require_str(v), from, to, count.is_none() ? -1 : to_index(*this, count, "count"));
    check_size(out.size());
    return Value::string(std::move(out));
  }
  if (name == "join") {
    Value sep = a.value(0, "d", Value::string(""));
    Value attr = a.value(1, "attribute", Value::none());
    a.done(2);
    std::string out;
    bool first = true;
    for (const Value& x : seq(v)) {
      if (!first) out += py_str(sep);
      out += py_str(attr.is_none() ? x : item_attr(x, attr));
      first = false;
      check_size(out.size());
    }
    return Value::string(std::move(out));
  }
  if (name == "first" || name == "last") {
    a.done(0);
    if (name == "last" && v.is_generator_like()) error("'generator' object is not reversible");
    Value::List items = seq(v);
    if (items.empty()) return Value::undefined("No " + name + " item, sequence was empty.");
    return name == "first" ? items.front() : items.back();
  }
  if (name == "default" || name == "d") {
    Value def = a.value(0, "default_value", Value::string(""));
    bool boolean = a.value(1, "boolean", Value::boolean(false)).truthy();
    a.done(2);
    if (v.is_undefined() || (boolean && !v.truthy())) return def;
    return v;
  }
  if (name == "selectattr" || name == "rejectattr" || name == "select" || name == "reject") {
    const bool by_attr = name == "selectattr" || name == "rejectattr";
    const bool keep = name == "selectattr" || name == "select";
    Value attr;
    if (by_attr) {
      if (call_args.pos.empty()) error(name + "() needs an attribute name");
      attr = call_args.pos[0];
    }
    const size_t first_test = by_attr ? 1 : 0;
    Value test_name = call_args.pos.size() > first_test ? call_args.pos[first_test] : Value();
    CallArgs test_args;
    for (size_t k = first_test + 1; k < call_args.pos.size(); ++k) test_args.pos.push_back(call_args.pos[k]);
    test_args.kw = call_args.kw;
    if (!test_name.is_undefined() && !test_name.is_string()) error(name + "(): the test name must be a string");
    Value::List out;
    for (const Value& x : seq(v)) {
      Value subject = by_attr ? item_attr(x, attr) : x;
      CallArgs args_copy = test_args;
      bool ok = test_name.is_undefined() ? subject.truthy() : apply_test(test_name.as_string(), subject, args_copy);
      if (ok == keep) out.push_back(x);
    }
    return Value::generator(std::move(out));
  }
  if (name == "map") {
    Value::List out;
    const Value* attr = nullptr;
    for (auto& [k, x] : call_args.kw)
      if (k == "attribute") attr = &x;
    if (attr) {
      Value def;
      bool has_default = false;
      for (auto& [k, x] : call_args.kw) {
        if (k == "default") def = x, has_default = true;
        else if (k != "attribute") error("map() got an unexpected keyword argument '" + k + "'");
      }
      for (const Value& x : seq(v)) {
        Value got = item_attr(x, *attr);
        out.push_back(got.is_undefined() && has_default ? def : got);
      }
      return Value::generator(std::move(out));
    }
    if (call_args.pos.empty() || !call_args.pos[0].is_string()) error("map() needs a filter name or attribute=");
    std::string filter = call_args.pos[0].as_string();
    for (const Value& x : seq(v)) {
      CallArgs fa;
      fa.pos.assign(call_args.pos.begin() + 1, call_args.pos.end());
      fa.kw = call_args.kw;
      out.push_back(apply_filter(filter, x, fa, scope));
    }
    return Value::generator(std::move(out));
  }
  if (name == "items") {
    a.done(0);
    // Jinja's items is a generator function: even for undefined it gives a (true) generator.
    if (v.is_undefined()) return Value::generator({});
    if (!v.is_dict() || v.is_namespace()) error(std::string("items(): a mapping is needed, not '") + type_name(v) + "'");
    Value::List out;
    for (const auto& [k, x] : v.entries()) out.push_back(Value::list({Value::string(k), x}, true));
    return Value::generator(std::move(out));
  }
  if (name == "int" || name == "float") {
    Value def = a.value(0, "default", name == "int" ? Value::integer(0) : Value::number(0.0));
    const int64_t base = name == "int" ? to_index(*this, a.value(1, "base", Value::integer(10)), "base") : 10;
    a.done(name == "int" ? 2 : 1);
    if (base < 2 || base > 36) error("int(): base must be between 2 and 36");
    if (v.is_undefined()) error(undefined_message(v));
    double d = 0.0;
    bool ok = true;
    if (v.is_number()) {
      d = v.as_float();
      if (name == "int" && v.type() != Value::Type::Float) return Value::integer(v.as_int());
    } else if (v.is_string()) {
      std::string s = py_strip(v.as_string(), true, true, nullptr);
      s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
      if (name == "int") {
        int64_t i = 0;
        auto r = std::from_chars(s.data() + (!s.empty() && s[0] == '+'), s.data() + s.size(), i, static_cast<int>(base));
        if (r.ec == std::errc() && r.ptr == s.data() + s.size() && !s.empty()) return Value::integer(i);
        if (base != 10) return def;
      }
      char* end = nullptr;
      d = s.empty() ? 0.0 : std::strtod(s.c_str(), &end);
      // strtod also reads hexadecimal floats, which Python's float() does not.
      ok = !s.empty() && end == s.c_str() + s.size() && s.find_first_of("xX") == std::string::npos;
    } else {
      ok = false;
    }
    if (!ok) return def;
    if (name == "float") return Value::number(d);
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return def;
    return Value::integer(static_cast<int64_t>(d));
  }
  if (name == "abs") {
    a.done(0);
    if (!v.is_number()) error(std::string("bad operand type for abs(): '") + type_name(v) + "'");
    if (v.type() == Value::Type::Float) return Value::number(std::fabs(v.as_float()));
    return Value::integer(checked(*this, v.as_int() == std::numeric_limits<int64_t>::min(), std::llabs(v.as_int())));
  }
  if (name == "round") {
    int64_t precision = to_index(*this, a.value(0, "precision", Value::integer(0)), "precision");
    Value method_v = a.value(1, "method", Value::string("common"));
    a.done(2);
    if (!v.is_number()) error(std::string("round(): a number is needed, not '") + type_name(v) + "'");
    const std::string method_name = method_v.is_string() ? method_v.as_string() : "";
    if (method_name != "common" && method_name != "ceil" && method_name != "floor")
      error("round(): method must be 'common', 'ceil' or 'floor'");
    if (v.type() != Value::Type::Float && method_name == "common") {
      // Python's round(int, n) stays an int; a negative n rounds to a multiple of 10^-n, ties
      // to even.
      if (precision >= 0) return Value::integer(v.as_int());
      const int64_t x = v.as_int();
      if (precision < -19) return Value::integer(0);
      if (precision == -19) {  // 10^19 does not fit: only 0 or an overflow
        if (x > 5'000'000'000'000'000'000 || x < -5'000'000'000'000'000'000) checked(*this, true, 0);
        return Value::integer(0);
      }
      int64_t m = 1;
      for (int64_t k = 0; k < -precision; ++k) m *= 10;
      int64_t q = x / m, r = x % m;
      if (r < 0) {  // floor division
        --q;
        r += m;
      }
      if (r > m - r || (r == m - r && q % 2 != 0)) ++q;
      int64_t out = 0;
      const bool overflow = __builtin_mul_overflow(q, m, &out);
      return Value::integer(checked(*this, overflow, out));
    }
    if (method_name == "common" && precision >= 0 && std::isfinite(v.as_float())) {
      // Python rounds the exact binary value to the nearest decimal, ties to even (2.675 -> 2.67);
      // printf does the same.
      char buf[512];
      std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(std::min<int64_t>(precision, 300)), v.as_float());
      return Value::number(std::strtod(buf, nullptr));
    }
    if (method_name == "common" && std::isfinite(v.as_float())) {
      // A negative precision: Python divides by 10^-n and rounds ties to even.
      const double scale = std::pow(10.0, static_cast<double>(-precision));
      if (std::isinf(scale)) return Value::number(std::copysign(0.0, v.as_float()));
      return Value::number(std::nearbyint(v.as_float() / scale) * scale);
    }
    const double scale = std::pow(10.0, static_cast<double>(precision));
    const double x = v.as_float() * scale;
    const double r = method_name == "ceil" ? std::ceil(x) : method_name == "floor" ? std::floor(x) : std::nearbyint(x);
    return Value::number(r / scale);
  }
  if (name == "reverse") {
    a.done(0);
    if (v.is_string()) {
      auto cps = code_points(v.as_string());
      std::string out;
      for (size_t k = cps.size() - 1; k-- > 0;) out += v.as_string().substr(cps[k], cps[k + 1] - cps[k]);
      return Value::string(std::move(out));
    }
    Value::List items = seq(v);
    std::reverse(items.begin(), items.end());
    return Value::generator(std::move(items));
  }
  if (name == "sort" || name == "unique" || name == "min" || name == "max") {
    bool reverse = false;
    if (name == "sort") reverse = a.value(0, "reverse", Value::boolean(false)).truthy();
    const size_t base = name == "sort" ? 1 : 0;
    const bool case_sensitive = a.value(base, "case_sensitive", Value::boolean(false)).truthy();
    Value attr = a.value(base + 1, "attribute", Value::none());
    a.done(base + 2);
    Value::List items = seq(v);
    auto key = [&](const Value& x) { return sort_key(attr.is_none() ? x : item_attr(x, attr), case_sensitive); };
    if (name == "unique") {
      Value::List out, seen;
      for (const Value& x : items) {
        Value k = key(x);
        // Jinja keeps a set of the keys seen: a list or a dict cannot be one.
        if (!hashable(k)) error(std::string("unhashable type: '") + type_name(k) + "'");
        if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return py_eq(s, k); })) {
          seen.push_back(k);
          out.push_back(x);
        }
      }
      return Value::generator(std::move(out));
    }
    if (name == "min" || name == "max") {
      // Python's min(key=...) and max(key=...): a later item replaces the best one only when
      // strictly smaller (larger), and a single item is never compared.
      if (items.empty()) return Value::undefined("No " + name + " item, sequence was empty.");
      const Value* best = &items[0];
      Value best_key = key(*best);
      for (size_t k = 1; k < items.size(); ++k) {
        Value x_key = key(items[k]);
        if (compare(name == "min" ? "<" : ">", x_key, best_key)) {
          best = &items[k];
          best_key = std::move(x_key);
        }
      }
      return *best;
    }
    // Jinja sorts by a list of keys, one per comma-separated attribute (just the item without
    // one), and Python compares lists item by item with == before <: equal keys, even
    // undefined ones, are never ordered.
    std::vector<Value> attrs;
    if (attr.is_string()) {
      for (const std::string& part : py_split(attr.as_string(), Value::string(","), -1)) attrs.push_back(Value::string(part));
    } else {
      attrs.push_back(attr);
    }
    std::vector<std::pair<Value::List, size_t>> keyed;  // (keys, original index)
    for (size_t k = 0; k < items.size(); ++k) {
      Value::List keys;
      for (const Value& at : attrs) keys.push_back(sort_key(at.is_none() ? items[k] : item_attr(items[k], at), case_sensitive));
      keyed.emplace_back(std::move(keys), k);
    }
    auto less = [&](const Value::List& x, const Value::List& y) {
      for (size_t k = 0; k < x.size(); ++k)
        if (!py_eq(x[k], y[k])) return compare("<", x[k], y[k]);
      return false;
    };
    std::stable_sort(keyed.begin(), keyed.end(),
                     [&](const auto& x, const auto& y) { return reverse ? less(y.first, x.first) : less(x.first, y.first); });
    Value::List sorted;
    for (const auto& [keys, k] : keyed) sorted.push_back(items[k]);
    return Value::list(std::move(sorted));
  }
  if (name == "sum") {
    Value attr = a.value(0, "attribute", Value::none());
    Value total = a.value(1, "start", Value::integer(0));
    a.done(2);
    for (const Value& x : seq(v)) total = binary("+", total, attr.is_none() ? x : item_attr(x, attr));
    return total;
  }
  if (name == "indent") {
    Value width = a.value(0, "width", Value::integer(4));
    bool first = a.value(1, "first", Value::boolean(false)).truthy();
    bool blank = a.value(2, "blank", Value::boolean(false)).truthy();
    a.done(3);
    std::string ind = width.is_string() ? width.as_string()
                                        : std::string(static_cast<size_t>(std::clamp<int64_t>(to_index(*this, width, "width"), 0, 256)), ' ');
    // Jinja's indent starts with `s += "\n"`: anything but a string fails there.
    if (!v.is_string()) error(std::string("indent(): expected a string, not '") + type_name(v) + "'");
    std::vector<std::string> lines = py_splitlines(v.as_string() + "\n");
    std::string out;
    for (size_t k = 0; k < lines.size(); ++k) {
      if (k > 0) out += "\n";
      if (k > 0 && (blank || !lines[k].empty())) out += ind;
      out += lines[k];
    }
    if (first) out = ind + out;
    check_size(out.size());
    return Value::string(std::move(out));
  }
  if (name == "wordcount") {
    a.done(0);
    std::string s = require_str(v);
    int64_t n = 0;
    bool in_word = false;
    for (char c : s) {
      bool w = ascii_alpha(c) || ascii_digit(c) || c == '_' || static_cast<unsigned char>(c) >= 0x80;
      if (w && !in_word) ++n;
      in_word = w;
    }
    return Value::integer(n);
  }
  if (name == "safe") {  // Markup(value): a string
    a.done(0);
    return Value::string(py_str(v));
  }
  if (name == "e" || name == "escape" || name == "forceescape") {
    a.done(0);
    std::string out;
    for (char c : require_str(v)) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&#34;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
      }
    }
    return Value::string(std::move(out));
  }
  error("unknown filter '" + name + "'");
}

bool Renderer::apply_test(const std::string& name, const Value& v, CallArgs& call_args) {
  Args a(*this, call_args, name.c_str());
  auto arg = [&]() {
    const Value* x = a.get(0, "other");
    a.done(1);
    if (!x) error("the test '" + name + "' needs an argument");
    return *x;
  };
  using T = Value::Type;
  if (name == "defined") return a.done(0), !v.is_undefined();
  if (name == "undefined") return a.done(0), v.is_undefined();
  if (name == "none") return a.done(0), v.is_none();
  if (name == "boolean") return a.done(0), v.type() == T::Bool;
  if (name == "true") return a.done(0), v.type() == T::Bool && v.as_bool();
  if (name == "false") return a.done(0), v.type() == T::Bool && !v.as_bool();
  if (name == "integer") return a.done(0), v.type() == T::Int;
  if (name == "float") return a.done(0), v.type() == T::Float;
  if (name == "number") return a.done(0), v.is_number();
  if (name == "string") return a.done(0), v.is_string();
  // A namespace() object is neither a mapping nor iterable.
  const bool dict = v.is_dict() && !v.is_namespace();
  if (name == "mapping") return a.done(0), dict;
  if (name == "iterable") return a.done(0), v.is_list() || dict || v.is_string() || v.is_undefined();
  if (name == "sequence") return a.done(0), (v.is_list() && !v.is_generator_like()) || dict || v.is_string() || v.is_undefined();
  // Jinja's Undefined has a __call__ (that fails), so Python's callable() says yes.
  if (name == "callable") return a.done(0), v.type() == T::Function || v.is_undefined();
  if (name == "odd" || name == "even") {
    a.done(0);
    if (v.type() != T::Int && v.type() != T::Bool) {
      if (v.type() == T::Float) return std::fmod(std::fabs(v.as_float()), 2.0) == (name == "odd" ? 1.0 : 0.0);
      error("the test '" + name + "' needs a number");
    }
    return (v.as_int() % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    Value n = arg();
    Value m = binary("%", v, n);
    return !m.truthy();
  }
  if (name == "eq" || name == "equalto" || name == "==") return py_eq(v, arg());
  if (name == "ne" || name == "!=") return !py_eq(v, arg());
  if (name == "lt" || name == "lessthan" || name == "<") return compare("<", v, arg());
  if (name == "le" || name == "<=") return compare("<=", v, arg());
  if (name == "gt" || name == "greaterthan" || name == ">") return compare(">", v, arg());
  if (name == "ge" || name == ">=") return compare(">=", v, arg());
  if (name == "in") {
    Value seq = arg();
    return compare("in", v, seq);
  }
  if (name == "sameas") {
    Value o = arg();
    if (v.type() != o.type()) return false;
    if (v.is_none() || v.is_undefined()) return true;
    if (v.type() == T::Bool) return v.as_bool() == o.as_bool();
    return false;
  }
  if (name == "lower" || name == "upper") {  // Jinja's str(value).islower() / .isupper()
    a.done(0);
    return py_is_case(v.is_undefined() ? std::string() : py_str(v), name == "lower");
  }
  if (name == "escaped") return a.done(0), false;
  error("unknown test '" + name + "'");
}

// ---------------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------------

namespace {

void add_globals(Scope& g) {
  g.set("range", Value::function("range", [](Renderer& r, CallArgs& a) {
          if (!a.kw.empty()) r.error("range() takes no keyword arguments");
          if (a.pos.empty() || a.pos.size() > 3) r.error("range() takes 1 to 3 arguments");
          int64_t start = 0, stop = 0, step = 1;
          if (a.pos.size() == 1) {
            stop = to_index(r, a.pos[0], "range() argument");
          } else {
            start = to_index(r, a.pos[0], "range() argument");
            stop = to_index(r, a.pos[1], "range() argument");
            if (a.pos.size() == 3) step = to_index(r, a.pos[2], "range() argument");
          }
          if (step == 0) r.error("range() step must not be zero");
          Value::List items;
          for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
            if (items.size() >= kMaxSequence) r.error("range() of more than 2^20 items");
            items.push_back(Value::integer(i));
          }
          return Value::list(std::move(items));
        }));
  auto make_dict = [](bool ns) {
    return [ns](Renderer& r, CallArgs& a) {
      Value::Dict entries;
      if (a.pos.size() > 1) r.error(std::string(ns ? "namespace" : "dict") + "() takes at most one positional argument");
      Value d = ns ? Value::name_space() : Value::dict();
      if (!a.pos.empty()) {
        // As Python's dict(): a mapping, or an iterable of key-value pairs (here with string keys).
        const Value& src = a.pos[0];
        if (src.is_dict() && !src.is_namespace()) {
          d.mutable_entries() = src.entries();
        } else {
          for (const Value& pair : iterate(r, src)) {
            Value::List kv = pair.is_list() && !pair.is_generator_like() ? pair.items() : iterate(r, pair);
            if (kv.size() != 2) r.error("dictionary update sequence element has length " + std::to_string(kv.size()) + "; 2 is required");
            if (!kv[0].is_string()) r.error("dictionary keys must be strings here");
            d.set(kv[0].as_string(), kv[1]);
          }
        }
      }
      for (auto& [k, v] : a.kw) d.set(k, v);
      return d;
    };
  };
  g.set("namespace", Value::function("namespace", make_dict(true)));
  g.set("dict", Value::function("dict", make_dict(false)));
  g.set("raise_exception", Value::function("raise_exception", [](Renderer& r, CallArgs& a) -> Value {
          r.raised(a.pos.empty() ? std::string("(no message)") : py_str(a.pos[0]));
        }));
  g.set("strftime_now", Value::function("strftime_now", [](Renderer& r, CallArgs& a) {
          if (a.pos.size() != 1 || !a.pos[0].is_string()) r.error("strftime_now() takes one format string");
          const std::string& fmt = a.pos[0].as_string();
          std::time_t t = static_cast<std::time_t>(r.now());
          std::tm tm{};
          if (r.use_local_time()) {
            localtime_r(&t, &tm);
          } else {
            gmtime_r(&t, &tm);
          }
          if (fmt.size() > 256) r.error("strftime_now(): format too long");
          char buf[1024];
          size_t n = fmt.empty() ? 0 : std::strftime(buf, sizeof buf, fmt.c_str(), &tm);
          return Value::string(std::string(buf, n));
        }));
}

}  // namespace

namespace {

void collect_loads(const Expr* e, std::vector<std::string>& seen) {
  if (!e) return;
  if (e->kind == Expr::Name && std::find(seen.begin(), seen.end(), e->name) == seen.end()) seen.push_back(e->name);
  for (const auto& a : e->args) collect_loads(a.get(), seen);
  for (const auto& kw : e->kwargs) collect_loads(kw.second.get(), seen);
}

void first_uses(const Body& body, bool conditional, std::vector<std::string>& seen, std::vector<std::string>& hidden) {
  auto store = [&](const std::string& name) {
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) return;
    seen.push_back(name);
    if (!conditional) hidden.push_back(name);
  };
  for (const auto& s : body) {
    switch (s->kind) {
      case Stmt::Output:
      case Stmt::For: collect_loads(s->expr.get(), seen); break;  // a loop's body and filter are its own
      case Stmt::If:
        for (size_t k = 0; k < s->bodies.size(); ++k) {
          if (k < s->conds.size()) collect_loads(s->conds[k].get(), seen);
          first_uses(s->bodies[k], true, seen, hidden);
        }
        break;
      case Stmt::Set:
        collect_loads(s->expr.get(), seen);
        if (!s->text.empty()) {  // `set ns.attr` reads ns
          if (std::find(seen.begin(), seen.end(), s->targets[0]) == seen.end()) seen.push_back(s->targets[0]);
        } else {
          for (const auto& t : s->targets) store(t);
        }
        break;
      case Stmt::SetBlock:
      case Stmt::Macro: store(s->text); break;
      case Stmt::FilterBlock:
        for (const Expr* f = s->expr.get(); f; f = f->args[0].get())
          for (size_t k = 1; k < f->args.size(); ++k) collect_loads(f->args[k].get(), seen);
        break;
      case Stmt::With:
        for (const auto& p : s->params) collect_loads(p.second.get(), seen);
        break;
      default: break;
    }
  }
}

// Jinja2 compiles the template's top level into one Python function whose locals are the names
// it assigns; loops, macros, with, filter and set blocks are nested functions that read those
// locals. A local starts as the context's value only when the top level reads the name before
// it first assigns it (or assigns it only inside an if); otherwise it starts undefined, so
// `{% for m in messages %}{{ tools }}{% endfor %}{% set tools = ... %}` prints nothing for tools
// even when the context has one. (The top level itself never reads such a name before assigning
// it, so only the nested bodies see the difference.)
std::vector<std::string> hidden_context_names(const Body& body) {
  std::vector<std::string> seen, hidden;
  first_uses(body, false, seen, hidden);
  return hidden;
}

}  // namespace

Template::Template(std::string_view source) {
  auto parsed = std::make_shared<Parsed>();
  Lexer lexer(source);
  Parser parser(lexer.run());
  parsed->body = parser.parse_template();
  parsed->hidden = hidden_context_names(parsed->body);
  parsed_ = std::move(parsed);
}

Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

std::string Template::render(const Value& context, const RenderOptions& options) const {
  Scope globals;
  add_globals(globals);
  Scope root;
  root.parent = &globals;
  if (context.is_dict())
    for (const auto& [k, v] : context.entries()) root.set(k, v);
  for (const std::string& name : parsed_->hidden) root.set(name, Value::undefined("'" + name + "' is undefined"));
  Renderer r(options, &root);
  r.exec_body(parsed_->body, root);
  return std::move(r.out);
}

}  // namespace moevk::text::jinja
