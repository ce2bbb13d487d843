// The answer as it streams (text/chat_stream.hpp): what the deltas add up to is the message
// parse_response reads from the whole text, tool calls' text never shows as content, and what
// is certain is streamed as it comes, not at the end.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "text/chat_response.hpp"
#include "text/chat_stream.hpp"

using moevk::text::ResponseFormat;
using moevk::text::ResponseStream;
using json = nlohmann::ordered_json;

namespace {

const char* kTools = R"([{"type": "function", "function": {"name": "f", "parameters": {"type": "object",
    "properties": {"x": {"type": "integer"}, "s": {"type": "string"}}}}}])";

ResponseFormat form(ResponseFormat::Tools tools, bool reasoning) {
  ResponseFormat f;
  f.tools = tools;
  f.reasoning = reasoning;
  return f;
}

struct Streamed {
  std::string reasoning, content;  // the deltas added up, the last one applied
  json calls;                      // the last delta's
  std::string message;             // parse_response's
  bool replaced = false;
  std::vector<json> deltas;        // every push's
};

// Feeds `text` in pieces of 1..max_piece bytes.
Streamed stream(const std::string& text, const ResponseFormat& format, std::mt19937& rng, size_t max_piece,
                const std::string& prompt = "") {
  ResponseStream s(format, kTools, prompt);
  Streamed out;
  for (size_t i = 0; i < text.size();) {
    const size_t n = std::uniform_int_distribution<size_t>(1, max_piece)(rng);
    const json d = json::parse(s.push(std::string_view(text).substr(i, n)));
    out.deltas.push_back(d);
    EXPECT_FALSE(d.contains("tool_calls")) << d.dump();
    out.reasoning += d.value("reasoning_content", "");
    out.content += d.value("content", "");
    i += n;
  }
  const json last = json::parse(s.finish(out.message));
  out.replaced = last.value("replace", false);
  if (out.replaced) {
    out.reasoning = last.value("reasoning_content", "");
    out.content = last.value("content", "");
  } else {
    out.reasoning += last.value("reasoning_content", "");
    out.content += last.value("content", "");
  }
  out.calls = last.contains("tool_calls") ? last["tool_calls"] : json();
  return out;
}

void expect_matches_message(const Streamed& s, const std::string& text) {
  const json m = json::parse(s.message);
  EXPECT_EQ(s.content, m["content"].get<std::string>()) << json(text).dump();
  EXPECT_EQ(s.reasoning, m.value("reasoning_content", "")) << json(text).dump();
  EXPECT_EQ(s.calls, m.contains("tool_calls") ? m["tool_calls"] : json()) << json(text).dump();
}

// Answers as models write them in each form, from random parts.
std::string prose(std::mt19937& rng) {
  static const std::vector<std::string> words = {"Hello", "a<b", "x{y}", "é", "漢字", "<tool", "[TOOL", "</thi", "ok."};
  std::string out;
  for (int n = std::uniform_int_distribution<int>(1, 6)(rng); n > 0; --n) {
    if (!out.empty()) out += rng() % 4 ? " " : "\n";
    out += words[rng() % words.size()];
  }
  return out;
}

std::string answer_in(ResponseFormat::Tools tools, bool reasoning, std::mt19937& rng) {
  using Tools = ResponseFormat::Tools;
  std::string out;
  if (reasoning && rng() % 2) out += "<think>\n" + prose(rng) + "\n</think>\n\n";
  const bool text = rng() % 3 != 0;
  switch (tools) {
    case Tools::Hermes:
    case Tools::Qwen3Coder: {
      if (text) out += prose(rng);
      for (int n = std::uniform_int_distribution<int>(0, 2)(rng); n > 0; --n) {
        const int kind = rng() % 4;
        // A call that opens the answer comes first thing (a reply that opens with spaces and then
        // calls a tool is the case "replace" is for).
        if (!out.empty()) out += "\n";
        if (kind == 0) {
          out += "<tool_call>not a call</tool_call>";
        } else if (tools == Tools::Hermes) {
          out += "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": " + std::to_string(kind) + "}}\n</tool_call>";
        } else {
          out += "<tool_call>\n<function=f>\n<parameter=s>\n" + prose(rng) + "\n</parameter>\n</function>\n</tool_call>";
        }
        if (kind == 1 && rng() % 2) out += "\n" + prose(rng);  // text between or after calls
      }
      break;
    }
    case Tools::Mistral:
      if (text) out += " " + prose(rng);  // Mistral v3's answers begin with a space
      if (rng() % 2) out += " [TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {\"x\": 2}}]";
      break;
    case Tools::Llama3Json:
      out += rng() % 2 ? prose(rng) : "{\"name\": \"f\", \"parameters\": {\"x\": 3}}";
      break;
    case Tools::None: out += prose(rng); break;
  }
  return out;
}

}  // namespace

// For answers in each form, fed in pieces of every size: the deltas add up to the message, the
// last delta never has to replace what was streamed, and no call's text is streamed as content.
TEST(ResponseStream, DeltasAddUpToTheMessage) {
  using Tools = ResponseFormat::Tools;
  std::mt19937 rng(20261208);
  int streamed_early = 0, with_calls = 0;
  for (const auto& [tools, reasoning] : std::vector<std::pair<Tools, bool>>{{Tools::Hermes, true},
                                                                           {Tools::Hermes, false},
                                                                           {Tools::Qwen3Coder, false},
                                                                           {Tools::Mistral, false},
                                                                           {Tools::Llama3Json, false},
                                                                           {Tools::None, true}}) {
    const ResponseFormat format = form(tools, reasoning);
    SCOPED_TRACE(std::string(format.tools_name()) + (reasoning ? " with reasoning" : ""));
    for (int i = 0; i < 150; ++i) {
      const std::string text = answer_in(tools, reasoning, rng);
      const Streamed s = stream(text, format, rng, 1 + i % 7);
      expect_matches_message(s, text);
      EXPECT_FALSE(s.replaced) << json(text).dump();
      std::string before_end;
      for (const auto& d : s.deltas) before_end += d.value("content", "");
      EXPECT_EQ(before_end.find("<tool_call>\n{"), std::string::npos) << json(text).dump();
      EXPECT_EQ(before_end.find("<function="), std::string::npos) << json(text).dump();
      EXPECT_EQ(before_end.find("[TOOL_CALLS] ["), std::string::npos) << json(text).dump();
      EXPECT_EQ(before_end.find("\"parameters\""), std::string::npos) << json(text).dump();
      streamed_early += !before_end.empty();
      with_calls += !s.calls.is_null();
    }
  }
  EXPECT_GT(streamed_early, 300);
  EXPECT_GT(with_calls, 200);
}

// Any text at all: the deltas still add up to the message (with "replace" where they must).
TEST(ResponseStream, AnyTextAddsUpToTheMessage) {
  using Tools = ResponseFormat::Tools;
  static const std::vector<std::string> parts = {
      " ", "\n", "\n\n", "<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_", "[TOOL_CALLS]", "{",
      "{\"name\": \"f\", \"arguments\": {}}", "{\"name\": \"f\", \"parameters\": {}}", "<function=f>", "</function>",
      "<|python_tag|>", "text", "\xc3", "\xa9", "é", "]"};
  std::mt19937 rng(7);
  for (Tools tools : {Tools::Hermes, Tools::Qwen3Coder, Tools::Mistral, Tools::Llama3Json, Tools::None}) {
    for (int i = 0; i < 300; ++i) {
      std::string text;
      for (int n = std::uniform_int_distribution<int>(0, 10)(rng); n > 0; --n) text += parts[rng() % parts.size()];
      const ResponseFormat format = form(tools, i % 2 == 0);
      const Streamed s = stream(text, format, rng, 1 + i % 5, i % 3 == 0 ? "<|im_start|>assistant\n<think>\n" : "");
      expect_matches_message(s, text);
    }
  }
}

// Reasoning and content stream as they come; a marker's first bytes are held, and a call's
// whole text never reaches the content.
TEST(ResponseStream, StreamsWhatIsCertainAsItComes) {
  ResponseStream s(form(ResponseFormat::Tools::Hermes, true), kTools);
  EXPECT_EQ(s.push("<thi"), "{}");
  EXPECT_EQ(s.push("nk>\nLet me see"), R"({"reasoning_content":"Let me see"})");
  EXPECT_EQ(s.push(".\n</th"), R"({"reasoning_content":"."})");
  EXPECT_EQ(s.push("ink>\n\nIt is"), R"({"content":"It is"})");
  EXPECT_EQ(s.push(" sunny. <tool_"), R"({"content":" sunny."})");
  EXPECT_EQ(s.push("call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n</tool_call>"), "{}");
  std::string message;
  const json last = json::parse(s.finish(message));
  EXPECT_FALSE(last.contains("content")) << last.dump();
  ASSERT_TRUE(last.contains("tool_calls")) << last.dump();
  EXPECT_EQ(last["tool_calls"], json::parse(message)["tool_calls"]);
  EXPECT_EQ(json::parse(message)["content"], "It is sunny.");
  EXPECT_THROW(s.push("more"), moevk::Error);
  EXPECT_THROW(s.finish(message), moevk::Error);

  // A prompt that opened <think> (Qwen3-2507 thinking): the answer begins as reasoning.
  ResponseStream thinking(form(ResponseFormat::Tools::Hermes, true), "", "<|im_start|>assistant\n<think>\n");
  EXPECT_EQ(thinking.push("Hmm"), R"({"reasoning_content":"Hmm"})");
  EXPECT_EQ(thinking.push("</think>\n\nYes"), R"({"content":"Yes"})");
  // ... and one cut off while reasoning is reasoning, not content.
  ResponseStream cut(form(ResponseFormat::Tools::Hermes, true), "", "<|im_start|>assistant\n<think>\n");
  EXPECT_EQ(cut.push("Still thinking\n"), R"({"reasoning_content":"Still thinking"})");
  std::string cut_message;
  EXPECT_EQ(cut.finish(cut_message), "{}");
  EXPECT_EQ(json::parse(cut_message)["reasoning_content"], "Still thinking");
  EXPECT_EQ(json::parse(cut_message)["content"], "");
  // A character in two pushes comes out whole.
  ResponseStream bytes(form(ResponseFormat::Tools::None, false), "");
  EXPECT_EQ(bytes.push("caf\xc3"), R"({"content":"caf"})");
  EXPECT_EQ(bytes.push("\xa9!"), R"({"content":"é!"})");
  // Bytes that are not UTF-8 read as U+FFFD, in the deltas as in the message.
  ResponseStream broken(form(ResponseFormat::Tools::None, false), "");
  std::string got;
  for (const char* piece : {"a\xef", "\xef", "b\xff"}) got += json::parse(broken.push(piece)).value("content", "");
  std::string broken_message;
  got += json::parse(broken.finish(broken_message)).value("content", "");
  EXPECT_EQ(got, json::parse(broken_message)["content"].get<std::string>());
  EXPECT_EQ(got, "a\xef\xbf\xbd\xef\xbf\xbd" "b\xef\xbf\xbd");
  // Llama-3.1: an answer that begins with "{" is held whole; prose streams.
  ResponseStream llama(form(ResponseFormat::Tools::Llama3Json, false), kTools);
  EXPECT_EQ(llama.push("{\"name\": \"f\", "), "{}");
  ResponseStream llama_prose(form(ResponseFormat::Tools::Llama3Json, false), kTools);
  EXPECT_EQ(llama_prose.push("Sure: {x}"), R"({"content":"Sure: {x}"})");
  // Tools that are not a tool list are refused at the start.
  EXPECT_THROW(ResponseStream(form(ResponseFormat::Tools::Hermes, false), "{"), moevk::Error);
}
