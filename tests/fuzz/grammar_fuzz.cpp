// libFuzzer target for constrained generation's input: GBNF text (generate/grammar.hpp), JSON
// Schemas (generate/json_schema.hpp), tool definitions (generate/tool_grammar.hpp) and the bytes
// the matcher is fed. The input is split at its first NUL: before it the grammar (first byte
// even), the schema (odd) or the tools (7 mod 8; bits 4-5 the call form, 6-7 the tool_choice),
// after it the text fed in pieces. Only moevk::Error may come out; a schema or tool list that
// converts must give a grammar that parses; and what the matcher accepts piece by piece it must
// accept again in one piece, with the same verdict on a whole sentence. Crashes, sanitizer
// reports, leaks and timeouts are bugs.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "generate/grammar.hpp"
#include "generate/json_schema.hpp"
#include "generate/tool_grammar.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t nul = input.find('\0');
  const std::string_view source = input.substr(0, nul);
  const std::string_view text = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
  std::shared_ptr<const moevk::generate::Grammar> grammar;
  if (data[0] % 8 == 7) {
    // The source as tool definitions, for a tool-call grammar of one of the four forms (bits 4
    // and 5: hermes, mistral, qwen3_coder, llama3_json).
    using Tools = moevk::text::ResponseFormat::Tools;
    static constexpr Tools forms[] = {Tools::Hermes, Tools::Mistral, Tools::Qwen3Coder, Tools::Llama3Json};
    moevk::text::ResponseFormat format;
    format.tools = forms[data[0] >> 4 & 3];
    // Bits 6-7: tool_choice auto, required, none, or the tool "f".
    static constexpr const char* choices[] = {"auto", "required", "none", "f"};
    moevk::generate::ToolCallGrammar tools;
    try {
      tools = moevk::generate::tool_call_grammar(format, source,
                                                 moevk::generate::ToolChoice::parse(choices[data[0] >> 6 & 3]));
    } catch (const moevk::Error&) {
      return 0;
    }
    grammar = moevk::generate::Grammar::parse(tools.grammar);  // throws (a bug) if it wrote bad GBNF
  } else if (data[0] % 2 == 0) {
    try {
      grammar = moevk::generate::Grammar::parse(source);
    } catch (const moevk::Error&) {
      return 0;
    }
  } else {
    std::string gbnf;
    try {
      gbnf = moevk::generate::json_schema_to_grammar(source);
    } catch (const moevk::Error&) {
      return 0;
    }
    grammar = moevk::generate::Grammar::parse(gbnf);  // throws (a bug) if the converter wrote bad GBNF
  }
  try {
    moevk::generate::GrammarMatcher pieces(grammar), whole(grammar);
    // Pieces of 1..4 bytes, the length taken from the first byte, as tokens split text.
    const size_t step = 1 + data[0] / 2 % 4;
    std::string accepted;
    for (size_t i = 0; i < text.size(); i += step) {
      const std::string_view piece = text.substr(i, step);
      if (!pieces.accept(piece)) break;
      accepted.append(piece);
    }
    if (!whole.accept(accepted)) std::abort();
    if (whole.accepting() != pieces.accepting() || whole.complete() != pieces.complete()) std::abort();
    (void)pieces.expected();
  } catch (const moevk::Error&) {
  }
  return 0;
}
