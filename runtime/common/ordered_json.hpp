// JSON parsed as Python's json.loads reads it: objects keep their key order, and a repeated key
// keeps its first place and its last value. nlohmann::ordered_json::parse would give the same
// tree, but looks every key up among the keys before it (quadratic in an object's width); this
// builds the tree from the parser's SAX events in time linear in the text, with a depth limit.
#pragma once
#include <cstddef>
#include <string_view>

#include <nlohmann/json.hpp>

namespace moevk {

// Throws moevk::Error(MOEVK_ERROR_INVALID_ARGUMENT) "<what> is not JSON: <where and why>" or
// "<what> nests deeper than <max_depth> levels".
nlohmann::ordered_json parse_ordered_json(std::string_view text, const char* what, size_t max_depth = 64);

}  // namespace moevk
