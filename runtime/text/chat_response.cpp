#include "text/chat_response.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "common/error.hpp"
#include "common/ordered_json.hpp"

namespace moevk::text {

bool is_trimmed_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

namespace {

using json = nlohmann::ordered_json;

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_trimmed_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_trimmed_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string_view strip_newlines(std::string_view s) {
  while (!s.empty() && s.front() == '\n') s.remove_prefix(1);
  while (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  return s;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// A JSON object, or nothing: model output is not the caller's input, so no error escapes.
bool parse_object(std::string_view text, json& out) {
  try {
    out = parse_ordered_json(text, "a tool call");
  } catch (const Error&) {
    return false;
  }
  return out.is_object();
}

struct Call {
  std::string name;
  json arguments;  // an object (or whatever the model wrote for it)
  std::string id;  // as written, or empty
};

// One {"name": ..., "arguments" | "parameters": ...} object.
bool call_of(const json& j, const char* arguments_key, Call& call) {
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string()) return false;
  call.name = j["name"].get<std::string>();
  call.arguments = j.contains(arguments_key) ? j[arguments_key] : json::object();
  if (j.contains("id") && j["id"].is_string()) call.id = j["id"].get<std::string>();
  return true;
}

// Pieces of the answer between and around tool-call blocks: content keeps what is not a call.
struct Split {
  std::string content;
  std::vector<Call> calls;
};

void append_content(std::string& content, std::string_view piece) {
  piece = trim(piece);
  if (piece.empty()) return;
  if (!content.empty()) content += "\n";
  content += piece;
}

// The JSON schema type of a tool's parameter, or "" when the tools do not say.
std::string parameter_type(const json& tools, const std::string& function, const std::string& parameter) {
  if (!tools.is_array()) return {};
  for (const auto& tool : tools) {
    const json& f = tool.is_object() && tool.contains("function") ? tool["function"] : tool;
    if (!f.is_object() || f.value("name", json()) != function) continue;
    const json* props = nullptr;
    if (f.contains("parameters") && f["parameters"].is_object() && f["parameters"].contains("properties"))
      props = &f["parameters"]["properties"];
    if (!props || !props->is_object() || !props->contains(parameter)) return {};
    const json& p = (*props)[parameter];
    if (p.is_object() && p.contains("type") && p["type"].is_string()) return p["type"].get<std::string>();
    return {};
  }
  return {};
}

// Qwen3-Coder's body: <function=NAME>\n<parameter=P>\nVALUE\n</parameter>\n...</function>.
bool qwen3_coder_call(std::string_view body, const json& tools, Call& call) {
  body = trim(body);
  constexpr std::string_view open = "<function=", close = "</function>";
  if (!starts_with(body, open) || body.size() < open.size() + close.size() ||
      body.substr(body.size() - close.size()) != close)
    return false;
  const size_t name_end = body.find('>');
  if (name_end == std::string_view::npos) return false;
  call.name = std::string(trim(body.substr(open.size(), name_end - open.size())));
  if (call.name.empty()) return false;
  call.arguments = json::object();
  std::string_view rest = body.substr(name_end + 1, body.size() - close.size() - name_end - 1);
  while (true) {
    rest = trim(rest);
    if (rest.empty()) return true;
    constexpr std::string_view popen = "<parameter=", pclose = "</parameter>";
    if (!starts_with(rest, popen)) return false;
    const size_t pname_end = rest.find('>');
    const size_t value_end = rest.find(pclose);
    if (pname_end == std::string_view::npos || value_end == std::string_view::npos || value_end < pname_end)
      return false;
    const std::string pname(trim(rest.substr(popen.size(), pname_end - popen.size())));
    std::string_view value = rest.substr(pname_end + 1, value_end - pname_end - 1);
    // The template writes "\n" + value + "\n".
    if (starts_with(value, "\n")) value.remove_prefix(1);
    if (!value.empty() && value.back() == '\n') value.remove_suffix(1);
    json parsed;
    bool as_json = parameter_type(tools, call.name, pname) != "string";
    if (as_json) {
      try {
        parsed = parse_ordered_json(value, "a parameter");
      } catch (const Error&) {
        as_json = false;
      }
    }
    call.arguments[pname] = as_json ? parsed : json(std::string(value));
    rest = rest.substr(value_end + pclose.size());
  }
}

// <tool_call>...</tool_call> blocks (hermes and qwen3_coder).
Split split_tagged(std::string_view text, bool coder, const json& tools) {
  Split out;
  constexpr std::string_view open = "<tool_call>", close = "</tool_call>";
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = text.find(open, pos);
    const size_t end = start == std::string_view::npos ? start : text.find(close, start + open.size());
    if (start == std::string_view::npos || end == std::string_view::npos) {
      append_content(out.content, text.substr(pos));
      break;
    }
    const std::string_view body = text.substr(start + open.size(), end - start - open.size());
    Call call;
    json j;
    const bool ok = coder ? qwen3_coder_call(body, tools, call) : parse_object(trim(body), j) && call_of(j, "arguments", call);
    append_content(out.content, text.substr(pos, (ok ? start : end + close.size()) - pos));
    if (ok) out.calls.push_back(std::move(call));
    pos = end + close.size();
  }
  return out;
}

Split split_mistral(std::string_view text) {
  Split out;
  constexpr std::string_view marker = "[TOOL_CALLS]";
  const size_t at = text.find(marker);
  if (at == std::string_view::npos) {
    out.content = std::string(trim(text));
    return out;
  }
  json list;
  std::vector<Call> calls;
  bool ok = false;
  try {
    list = parse_ordered_json(trim(text.substr(at + marker.size())), "tool calls");
    ok = list.is_array() && !list.empty();
  } catch (const Error&) {
  }
  for (size_t i = 0; ok && i < list.size(); ++i) {
    Call call;
    ok = call_of(list[i], "arguments", call);
    calls.push_back(std::move(call));
  }
  if (!ok) {
    out.content = std::string(trim(text));
    return out;
  }
  out.content = std::string(trim(text.substr(0, at)));
  out.calls = std::move(calls);
  return out;
}

Split split_llama3(std::string_view text) {
  Split out;
  std::string_view body = trim(text);
  if (starts_with(body, "<|python_tag|>")) body = trim(body.substr(14));
  json j;
  Call call;
  if (starts_with(body, "{") && parse_object(body, j) &&
      (call_of(j, "parameters", call) && (j.contains("parameters") || j.contains("arguments")))) {
    if (!j.contains("parameters")) call.arguments = j["arguments"];
    out.calls.push_back(std::move(call));
    return out;
  }
  out.content = std::string(trim(text));
  return out;
}

// 9 letters and digits from the text and the call's place (FNV-1a, then base 62).
std::string make_id(std::string_view text, size_t index) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](unsigned char c) { h = (h ^ c) * 1099511628211ull; };
  for (char c : text) mix(static_cast<unsigned char>(c));
  for (int i = 0; i < 8; ++i) mix(static_cast<unsigned char>(index >> (8 * i)));
  static constexpr char digits[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  std::string id(9, '0');
  for (char& c : id) {
    c = digits[h % 62];
    h = (h / 62) ^ (h * 6364136223846793005ull);  // remixed, so every digit draws on every bit
  }
  return id;
}

}  // namespace

ResponseFormat ResponseFormat::of_template(std::string_view source) {
  ResponseFormat f;
  if (source == "chatml") {
    f.tools = Tools::Hermes;
    f.reasoning = true;
    return f;
  }
  auto has = [&](std::string_view s) { return source.find(s) != std::string_view::npos; };
  if (has("<tool_call>"))
    f.tools = has("<function=") ? Tools::Qwen3Coder : Tools::Hermes;
  else if (has("[TOOL_CALLS]"))
    f.tools = Tools::Mistral;
  else if (has("<|python_tag|>") || (has("\"parameters\"") && has("ipython")))
    f.tools = Tools::Llama3Json;
  f.reasoning = has("</think>");
  return f;
}

const char* ResponseFormat::tools_name() const {
  switch (tools) {
    case Tools::Hermes: return "hermes";
    case Tools::Qwen3Coder: return "qwen3_coder";
    case Tools::Mistral: return "mistral";
    case Tools::Llama3Json: return "llama3_json";
    case Tools::None: break;
  }
  return "none";
}

std::string parse_response(std::string_view text, const ResponseFormat& format, std::string_view tools_json) {
  json tools;
  if (!trim(tools_json).empty()) {
    tools = parse_ordered_json(tools_json, "tools_json");
    if (!tools.is_array() && !tools.is_null())
      fail(MOEVK_ERROR_INVALID_ARGUMENT, "tools_json is not a JSON array of tool definitions (or null)");
  }
  const std::string_view whole = text;
  json message = json::object();
  message["role"] = "assistant";
  // Qwen3: reasoning is what comes before </think> (the generation prompt may have written the
  // <think> itself), as the template reads reasoning back out of a stored answer.
  std::string_view answer = text;
  bool has_reasoning = false;
  std::string reasoning;
  if (format.reasoning) {
    const size_t end = text.find("</think>");
    const std::string_view lead = trim(text);
    if (end != std::string_view::npos) {
      std::string_view r = text.substr(0, end);
      const size_t open = r.find("<think>");
      if (open != std::string_view::npos) r = r.substr(open + 7);
      reasoning = std::string(strip_newlines(r));
      answer = text.substr(end + 8);
      has_reasoning = true;
    } else if (starts_with(lead, "<think>")) {  // cut off while reasoning
      reasoning = std::string(strip_newlines(lead.substr(7)));
      answer = {};
      has_reasoning = true;
    }
  }
  Split split;
  switch (format.tools) {
    case ResponseFormat::Tools::Hermes: split = split_tagged(answer, false, tools); break;
    case ResponseFormat::Tools::Qwen3Coder: split = split_tagged(answer, true, tools); break;
    case ResponseFormat::Tools::Mistral: split = split_mistral(answer); break;
    case ResponseFormat::Tools::Llama3Json: split = split_llama3(answer); break;
    case ResponseFormat::Tools::None: split.content = std::string(answer); break;
  }
  // Without calls the answer is kept as written (its spaces are the model's; after a think block
  // without the newlines that follow it, as the template's lstrip('\n')), but for Mistral v3,
  // whose template trims it; with calls, the text around them, trimmed.
  if (split.calls.empty() && format.tools == ResponseFormat::Tools::Mistral) {
    message["content"] = split.content;  // trimmed: Mistral v3 renders " " + content|trim
  } else if (split.calls.empty()) {
    if (has_reasoning) answer = answer.substr(std::min(answer.size(), answer.find_first_not_of('\n')));
    message["content"] = std::string(answer);
  } else {
    message["content"] = split.content;
  }
  if (has_reasoning) message["reasoning_content"] = reasoning;
  if (!split.calls.empty()) {
    json calls = json::array();
    for (size_t i = 0; i < split.calls.size(); ++i) {
      Call& c = split.calls[i];
      json call = json::object();
      call["id"] = c.id.empty() ? make_id(whole, i) : c.id;
      call["type"] = "function";
      call["function"] = json::object();
      call["function"]["name"] = c.name;
      call["function"]["arguments"] = std::move(c.arguments);
      calls.push_back(std::move(call));
    }
    message["tool_calls"] = std::move(calls);
  }
  return message.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace moevk::text
