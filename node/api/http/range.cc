#include "node/api/http/range.h"

#include <cstdint>
#include <optional>

#include "node/api/http/request.h"

namespace dispotify::api::http {

namespace {

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// 1*DIGIT, saturating at UINT64_MAX; nullopt when empty or not all digits.
std::optional<uint64_t> ParseDigits(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) {
      v = UINT64_MAX;
    } else {
      v = v * 10 + d;
    }
  }
  return v;
}

}  // namespace

RangeResult ParseRange(std::string_view header, uint64_t content_length) {
  RangeResult none;
  header = TrimOws(header);
  size_t eq = header.find('=');
  if (eq == std::string_view::npos) return none;
  if (!EqualsIgnoreCase(TrimOws(header.substr(0, eq)), "bytes")) return none;
  std::string_view set = TrimOws(header.substr(eq + 1));

  // RFC 9110's #rule allows empty list elements ("bytes=0-1,"); count the non-empty ones.
  std::string_view spec;
  int specs = 0;
  while (true) {
    size_t comma = set.find(',');
    std::string_view element = TrimOws(set.substr(0, comma));
    if (!element.empty()) {
      ++specs;
      spec = element;
    }
    if (comma == std::string_view::npos) break;
    set.remove_prefix(comma + 1);
  }
  if (specs != 1) return none;  // no range, or several: not supported, send everything

  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return none;
  std::string_view first_text = spec.substr(0, dash);
  std::string_view last_text = spec.substr(dash + 1);

  RangeResult result;
  if (first_text.empty()) {  // suffix-range "-n"
    std::optional<uint64_t> suffix = ParseDigits(last_text);
    if (!suffix) return none;
    if (*suffix == 0 || content_length == 0) {
      result.kind = RangeKind::kUnsatisfiable;
      return result;
    }
    uint64_t n = *suffix < content_length ? *suffix : content_length;
    result.kind = RangeKind::kSatisfiable;
    result.range = {content_length - n, content_length - 1};
    return result;
  }

  std::optional<uint64_t> first = ParseDigits(first_text);
  if (!first) return none;
  uint64_t last = UINT64_MAX;
  if (!last_text.empty()) {
    std::optional<uint64_t> parsed = ParseDigits(last_text);
    if (!parsed || *parsed < *first) return none;
    last = *parsed;
  }
  if (*first >= content_length) {
    result.kind = RangeKind::kUnsatisfiable;
    return result;
  }
  result.kind = RangeKind::kSatisfiable;
  result.range = {*first, last < content_length - 1 ? last : content_length - 1};
  return result;
}

std::string ContentRangeHeader(const ByteRange& range, uint64_t content_length) {
  return "bytes " + std::to_string(range.first) + "-" + std::to_string(range.last) + "/" +
         std::to_string(content_length);
}

std::string UnsatisfiedContentRange(uint64_t content_length) {
  return "bytes */" + std::to_string(content_length);
}

}  // namespace dispotify::api::http
