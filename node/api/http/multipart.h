#pragma once
// A streaming multipart/form-data parser (RFC 7578 over RFC 2046 §5.1) that pulls from a
// BodyReader through one fixed buffer, so a part of any size is read with bounded memory.
//
// Framing, as parsed here: an optional preamble; then parts, each introduced by a delimiter line
// "--<boundary>" (the first may start the body, every other is preceded by CRLF, which belongs to
// the delimiter, not to the previous part's content), optional spaces/tabs, CRLF; the part's header
// lines; an empty line; the content, up to the next "\r\n--<boundary>". The close delimiter
// "--<boundary>--" ends the parts; the epilogue after it is read and discarded.
// Errors (kInvalidArgument, sticky): no delimiter at all, a body that ends before the close
// delimiter (truncated / missing final boundary), part headers larger than the limit, a header line
// without ':', obsolete line folding, junk after a delimiter. Errors of the BodyReader are
// returned as they are.
//
// Usage:
//   MultipartReader mp(body, boundary);
//   for (;;) {
//     Result<bool> next = mp.NextPart();
//     if (!next.ok()) return ErrorResponse(next.status());
//     if (!*next) break;                  // close delimiter seen
//     ... mp.part().name, mp.part().filename ...
//     ... mp.Read(buf, n) until it returns 0 ...
//   }

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "node/api/http/request.h"

namespace dispotify::api::http {

// The boundary parameter of a "multipart/form-data; boundary=..." Content-Type (quoted or not).
// kInvalidArgument when the type is not multipart/form-data or the boundary is missing, empty,
// longer than 70 characters or ends with a space (RFC 2046 bchars).
Result<std::string> BoundaryFromContentType(std::string_view content_type);

struct MultipartPart {
  HeaderMap headers;
  std::string name;                     // Content-Disposition name
  std::optional<std::string> filename;  // Content-Disposition filename (filename* preferred)
  std::string content_type;             // "text/plain" when absent (RFC 7578 §4.4)
};

struct MultipartLimits {
  // Bytes of one part's header section (all lines, CRLFs included).
  size_t max_header_bytes = 16 * 1024;
};

class MultipartReader final : public BodyReader {
 public:
  // The parser's buffer; the most body bytes it holds at any time.
  static constexpr size_t kBufferSize = 64 * 1024;

  MultipartReader(BodyReader& body, std::string boundary, MultipartLimits limits = {});

  // Moves to the next part, skipping the unread content of the current one. true: part()
  // describes it and Read returns its content; false: the close delimiter was reached (the
  // epilogue has been drained from the body).
  Result<bool> NextPart();
  const MultipartPart& part() const { return part_; }

  // The current part's content; 0 at its end (and before the first NextPart / after the last).
  Result<size_t> Read(char* buf, size_t max) override;

 private:
  enum class State { kStart, kContent, kAfterDelimiter, kDone, kFailed };

  // Reads more of the body into the buffer (compacting it first); sets eof_ at the end.
  Status Fill();
  // Skips to just after the first delimiter (preamble).
  Status SkipPreamble();
  // After a delimiter: "--" (done) or padding + CRLF + headers (a new part).
  Result<bool> ParseAfterDelimiter();
  Status ParseHeaders();
  Status Fail(Status s);
  std::string_view Buffered() const { return {buf_.data() + begin_, end_ - begin_}; }

  BodyReader& body_;
  const std::string delimiter_;  // "\r\n--" + boundary
  const MultipartLimits limits_;
  std::vector<char> buf_;
  size_t begin_ = 0;
  size_t end_ = 0;
  bool eof_ = false;
  State state_ = State::kStart;
  Status error_;
  MultipartPart part_;
};

}  // namespace dispotify::api::http
