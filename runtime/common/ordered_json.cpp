#include "common/ordered_json.hpp"

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace moevk {

namespace {

using json = nlohmann::ordered_json;

class Builder {
 public:
  Builder(const char* what, size_t max_depth) : what_(what), max_depth_(max_depth) {}

  bool null() { return put(json(nullptr)); }
  bool boolean(bool b) { return put(json(b)); }
  bool number_integer(json::number_integer_t i) { return put(json(i)); }
  bool number_unsigned(json::number_unsigned_t u) { return put(json(u)); }
  bool number_float(json::number_float_t f, const std::string&) { return put(json(f)); }
  bool string(std::string& s) { return put(json(std::move(s))); }
  bool binary(json::binary_t& b) { return put(json::binary(std::move(b))); }
  bool start_object(size_t) { return open(json::object()); }
  bool key(std::string& k) {
    stack_.back().key = std::move(k);
    return true;
  }
  bool end_object() { return close(); }
  bool start_array(size_t) { return open(json::array()); }
  bool end_array() { return close(); }
  bool parse_error(size_t, const std::string&, const nlohmann::json::exception& e) {
    error_ = std::string(what_) + " is not JSON: " + e.what();
    return false;
  }

  json result;
  std::string error_;

 private:
  struct Frame {
    json value;
    std::string key;
    std::unordered_map<std::string, size_t> index;  // objects: key -> entry
  };

  bool put(json v) {
    if (stack_.empty()) {
      result = std::move(v);
      return true;
    }
    Frame& f = stack_.back();
    if (f.value.is_array()) {
      f.value.get_ref<json::array_t&>().push_back(std::move(v));
      return true;
    }
    // ordered_map is a vector of pairs: append without its linear search for the key.
    auto& entries = static_cast<json::object_t::Container&>(f.value.get_ref<json::object_t&>());
    const auto [it, fresh] = f.index.emplace(f.key, entries.size());
    if (fresh)
      entries.emplace_back(std::move(f.key), std::move(v));
    else
      entries[it->second].second = std::move(v);
    return true;
  }
  bool open(json v) {
    if (stack_.size() >= max_depth_) {
      error_ = std::string(what_) + " nests deeper than " + std::to_string(max_depth_) + " levels";
      return false;
    }
    stack_.push_back({std::move(v), {}, {}});
    return true;
  }
  bool close() {
    json v = std::move(stack_.back().value);
    stack_.pop_back();
    return put(std::move(v));
  }

  const char* what_;
  size_t max_depth_;
  std::vector<Frame> stack_;
};

}  // namespace

nlohmann::ordered_json parse_ordered_json(std::string_view text, const char* what, size_t max_depth) {
  Builder builder(what, max_depth);
  const bool ok = json::sax_parse(text, &builder);
  if (!ok || !builder.error_.empty())
    fail(MOEVK_ERROR_INVALID_ARGUMENT, builder.error_.empty() ? std::string(what) + " is not JSON" : builder.error_);
  return std::move(builder.result);
}

}  // namespace moevk
