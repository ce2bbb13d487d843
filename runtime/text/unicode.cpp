#include "text/unicode.hpp"

#include <algorithm>
#include <array>

namespace moevk::text {

uint8_t codepoint_flags(uint32_t cp) {
  using unicode_data::kRanges;
  const auto* end = kRanges + unicode_data::kRangeCount;
  // First range whose last >= cp; the table is sorted and non-overlapping.
  const auto* it = std::lower_bound(kRanges, end, cp,
                                    [](const unicode_data::CodepointRange& r, uint32_t v) { return r.last < v; });
  if (it == end || it->first > cp) return 0;
  return it->flags;
}

size_t utf8_sequence_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

// Decodes a complete sequence of `len` bytes at `p`; returns false when it is malformed
// (bad continuation, overlong form, surrogate, beyond U+10FFFF).
static bool decode_sequence(const uint8_t* p, size_t len, uint32_t& cp) {
  if (len == 1) {
    cp = p[0];
    return p[0] < 0x80;
  }
  for (size_t i = 1; i < len; ++i)
    if ((p[i] & 0xC0) != 0x80) return false;
  if (len == 2) cp = ((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu);
  if (len == 3) cp = ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
  if (len == 4) cp = ((p[0] & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
  static constexpr uint32_t kMinForLength[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMinForLength[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
  return true;
}

// Decodes at `pos`; on a malformed or truncated sequence returns false and skips the lead byte
// with the continuation bytes that follow it (one U+FFFD per broken sequence, as browsers do).
static bool utf8_decode_at(std::string_view text, size_t& pos, uint32_t& cp) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data()) + pos;
  size_t len = utf8_sequence_length(p[0]);
  if (pos + len <= text.size() && decode_sequence(p, len, cp)) {
    pos += len;
    return true;
  }
  size_t skip = 1;
  while (len > 1 && skip < len && pos + skip < text.size() && (p[skip] & 0xC0) == 0x80) ++skip;
  pos += skip;
  cp = kReplacementChar;
  return false;
}

size_t utf8_valid_length(std::string_view text, size_t pos) {
  size_t start = pos;
  uint32_t cp;
  return utf8_decode_at(text, pos, cp) ? pos - start : 1;
}

uint32_t utf8_next(std::string_view text, size_t& pos) {
  uint32_t cp;
  utf8_decode_at(text, pos, cp);
  return cp;
}

void utf8_split(std::string_view text, std::vector<uint32_t>& codepoints, std::vector<size_t>& offsets) {
  codepoints.clear();
  offsets.clear();
  size_t pos = 0;
  while (pos < text.size()) {
    offsets.push_back(pos);
    codepoints.push_back(utf8_next(text, pos));
  }
  offsets.push_back(text.size());
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

size_t utf8_incomplete_tail(std::string_view bytes) {
  // A sequence is at most 4 bytes: look back at most 3 bytes for a lead byte.
  size_t n = bytes.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    uint8_t b = static_cast<uint8_t>(bytes[n - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t len = utf8_sequence_length(b);
    if (len > back) {
      // Only hold back bytes that could still become valid (the lead and continuations so far).
      if (len == 1) return 0;
      return back;
    }
    return 0;
  }
  return 0;
}

std::string utf8_sanitize(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  uint32_t cp;
  while (pos < bytes.size()) {
    size_t start = pos;
    if (utf8_decode_at(bytes, pos, cp)) out.append(bytes.substr(start, pos - start));
    else utf8_append(out, kReplacementChar);
  }
  return out;
}

// GPT-2 keeps printable Latin-1 bytes as themselves and moves the rest (controls, space, 0x7F..0xA0,
// 0xAD) to U+0100 onwards, in byte order.
static std::array<uint32_t, 256> make_byte_codepoints() {
  std::array<uint32_t, 256> cps{};
  uint32_t next_extra = 0x100;
  for (uint32_t b = 0; b < 256; ++b) {
    bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    cps[b] = printable ? b : next_extra++;
  }
  return cps;
}

const std::vector<std::string>& byte_to_unicode() {
  static const std::vector<std::string> table = [] {
    std::vector<std::string> t(256);
    auto cps = make_byte_codepoints();
    for (int b = 0; b < 256; ++b) utf8_append(t[b], cps[b]);
    return t;
  }();
  return table;
}

int unicode_to_byte(uint32_t cp) {
  static const std::array<int16_t, 0x144> inverse = [] {
    std::array<int16_t, 0x144> inv{};
    inv.fill(-1);
    auto cps = make_byte_codepoints();
    for (int b = 0; b < 256; ++b) inv[cps[b]] = static_cast<int16_t>(b);
    return inv;
  }();
  return cp < inverse.size() ? inverse[cp] : -1;
}

}  // namespace moevk::text
