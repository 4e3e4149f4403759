#pragma once
// Parsing of one `Range` request header (RFC 9110 §14.1-14.2) against a representation of known
// length. Pure functions; the stream handler applies the result (206 + Content-Range, 416, or 200).
//
// Choices (all allowed by RFC 9110, which lets a server ignore Range):
//  - Only the "bytes" unit (case-insensitive) is understood; another unit is ignored (kNone: 200).
//  - A single range-spec is served: "a-b" (b clipped to length-1), "a-" (to the end), "-n" (the
//    last n bytes, the whole representation when n >= length).
//  - Several range-specs ("bytes=0-1,5-6") are not supported: kNone, the full 200 response
//    (multipart/byteranges is not implemented; players ask for one range).
//  - Unsatisfiable: a first-pos >= length, a suffix "-0", or any range of an empty representation
//    -> kUnsatisfiable (416 with `Content-Range: bytes */length`).
//  - Malformed (no '=', empty or non-digit positions, "a-b" with b < a, signs, garbage, "bytes=-")
//    -> kNone: the header is ignored, as RFC 9110 §14.2 requires for an invalid range.
//  - Numbers too large for 64 bits are well formed: they saturate (a huge first-pos is
//    unsatisfiable, a huge last-pos or suffix means "to the end"/"everything"). No overflow.
//  - Optional whitespace around the range set and around commas is accepted.

#include <cstdint>
#include <string>
#include <string_view>

namespace dispotify::api::http {

struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;  // inclusive
  uint64_t length() const { return last - first + 1; }
  bool operator==(const ByteRange&) const = default;
};

enum class RangeKind {
  kNone,           // no usable Range: send the whole representation (200)
  kSatisfiable,    // send `range` (206)
  kUnsatisfiable,  // 416 with UnsatisfiedContentRange(length)
};

struct RangeResult {
  RangeKind kind = RangeKind::kNone;
  ByteRange range;  // kSatisfiable only
};

RangeResult ParseRange(std::string_view header, uint64_t content_length);

// "bytes 0-99/1000"
std::string ContentRangeHeader(const ByteRange& range, uint64_t content_length);
// "bytes */1000"
std::string UnsatisfiedContentRange(uint64_t content_length);

}  // namespace dispotify::api::http
