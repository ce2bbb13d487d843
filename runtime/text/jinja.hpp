// A Jinja2 interpreter for chat templates: the subset Hugging Face's apply_chat_template runs
// (its environment: trim_blocks, lstrip_blocks, the loopcontrols extension, the `generation`
// tag, a JSON `tojson`, the globals raise_exception and strftime_now), with Python's semantics
// for the values templates touch: strings are UTF-8 and measured, sliced and iterated by code
// point; ints are 64-bit; floats print as Python's repr; undefined values print as nothing and
// fail when used as objects. Checked byte for byte against Jinja2 itself
// (tests/data/text/expected_jinja.json and expected_chat.json).
//
// A template is untrusted input (it comes from the model file): parsing and rendering are
// bounded in nesting depth, work, output size and the size of any value built, and every
// failure is a moevk::Error(MOEVK_ERROR_TOKENIZER) naming the template line; nothing else
// escapes. Supported statements: if/elif/else, for (with loop.*, `if` filters, else, tuple
// targets, break/continue), set (names, tuples, namespace attributes, block form), macro (with
// defaults and keyword arguments), filter blocks, with, generation, raw. Not supported, and
// refused by name: include, import, extends, block, call.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moevk::text::jinja {

class Value;
struct CallArgs;
class Renderer;
using Native = std::function<Value(Renderer&, CallArgs&)>;

class Value {
 public:
  enum class Type { Undefined, None, Bool, Int, Float, String, List, Dict, Function };
  using List = std::vector<Value>;
  using Dict = std::vector<std::pair<std::string, Value>>;  // insertion order, as Python's dict

  Value() = default;  // undefined
  static Value undefined(std::string name = {});
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value number(double f);
  static Value string(std::string s);
  static Value list(List items = {}, bool tuple = false);
  // What Jinja's select, map, reverse and unique return: iterable once, with no len() and no
  // index, and always true.
  static Value generator(List items);
  static Value dict(Dict items = {});
  static Value function(std::string name, Native fn);
  // A namespace() object: a dict whose attributes `set ns.x = ...` may assign.
  static Value name_space(Dict items = {});

  Type type() const { return type_; }
  bool is_undefined() const { return type_ == Type::Undefined; }
  bool is_none() const { return type_ == Type::None; }
  bool is_string() const { return type_ == Type::String; }
  bool is_number() const { return type_ == Type::Int || type_ == Type::Float || type_ == Type::Bool; }
  bool is_list() const { return type_ == Type::List; }
  bool is_dict() const { return type_ == Type::Dict; }
  bool is_tuple() const { return type_ == Type::List && tuple_; }
  bool is_generator_like() const { return type_ == Type::List && generator_; }
  bool is_namespace() const { return type_ == Type::Dict && namespace_; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return i_; }
  double as_float() const;  // ints and bools too
  const std::string& as_string() const;  // the string; for undefined its message, for a function its name
  const List& items() const;
  List& mutable_items();
  const Dict& entries() const;
  Dict& mutable_entries();  // for `set ns.x` and the renderer's loop object
  const Native& native() const;

  // Python truthiness.
  bool truthy() const;
  // Dict lookup: nullptr when absent.
  const Value* find(std::string_view key) const;
  // Builders for callers filling a context.
  Value& push(Value v);
  Value& set(std::string key, Value v);

 private:
  Type type_ = Type::Undefined;
  bool b_ = false;
  bool tuple_ = false;
  bool generator_ = false;
  bool namespace_ = false;
  int64_t i_ = 0;
  double f_ = 0.0;
  std::shared_ptr<const std::string> s_;  // shared: values are copied on every variable read
  std::shared_ptr<List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<Native> fn_;
};

struct RenderOptions {
  // strftime_now's clock, seconds since the epoch in local time; -1: the system clock.
  int64_t now = -1;
  size_t max_output_bytes = size_t(32) << 20;
  uint64_t max_steps = 5'000'000;  // expressions, statements and loop passes evaluated
};

class Template {
 public:
  // Throws moevk::Error(MOEVK_ERROR_TOKENIZER, "chat template line N: ...") for syntax it does
  // not accept.
  explicit Template(std::string_view source);
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  // `context`: a dict of the template's variables (messages, add_generation_prompt, bos_token,
  // ...). raise_exception, strftime_now, namespace, range and dict are provided.
  std::string render(const Value& context, const RenderOptions& options = {}) const;

  struct Parsed;

 private:
  std::shared_ptr<const Parsed> parsed_;
};

}  // namespace moevk::text::jinja
