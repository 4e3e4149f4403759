#pragma once
// What an HTTP handler returns. The body is one of:
//  - a string held in memory (small JSON documents, errors);
//  - a region of a file, sent with sendfile(2) (audio streaming: no copy through user space);
//  - a stream pulled from a producer callback (proxying bytes from another node), sent with
//    Content-Length when the length is known and chunked otherwise; bounded memory.
// The server owns the framing headers (Content-Length, Transfer-Encoding, Connection): a handler
// that sets them has them ignored. For HEAD the server sends the head only, with the Content-Length
// the body would have had, and never calls a producer.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/status.h"

namespace dispotify::api::http {

// An owned file descriptor, closed on destruction.
class OwnedFd {
 public:
  OwnedFd() = default;
  explicit OwnedFd(int fd) : fd_(fd) {}
  ~OwnedFd();
  OwnedFd(OwnedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  OwnedFd& operator=(OwnedFd&& other) noexcept;
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

// Fills up to `max` bytes of `buf`; 0 at the end of the stream; an error aborts the response
// (the connection is closed, so the client sees a truncated body rather than a complete one).
using Producer = std::function<Result<size_t>(char* buf, size_t max)>;

struct FileRegion {
  OwnedFd fd;
  uint64_t offset = 0;
  uint64_t length = 0;
};

struct StreamBody {
  Producer produce;
  std::optional<uint64_t> length;  // nullopt: chunked (HTTP/1.1) or until close (HTTP/1.0)
};

class Response {
 public:
  // 200, empty body.
  Response() = default;
  Response(Response&&) noexcept = default;
  Response& operator=(Response&&) noexcept = default;

  static Response Text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
  static Response Json(int status, std::string json) {
    return Text(status, std::move(json), "application/json");
  }
  static Response Empty(int status);
  // Sends bytes [offset, offset + length) of `fd`, which the response owns from now on.
  static Response File(int status, OwnedFd fd, uint64_t offset, uint64_t length, std::string content_type);
  // Opens `path` now (so a later unlink or rename does not matter) and checks that the region lies
  // inside the file; `length` nullopt means up to the end. kNotFound, kInvalidArgument, kIoError.
  static Result<Response> FileAtPath(int status, const std::string& path, uint64_t offset,
                                     std::optional<uint64_t> length, std::string content_type);
  static Response Stream(int status, Producer produce, std::optional<uint64_t> length,
                         std::string content_type);

  // Adds a header line (several lines with one name are allowed). Names and values containing CR
  // or LF are dropped when sending (no response splitting).
  Response& AddHeader(std::string name, std::string value) {
    headers_.emplace_back(std::move(name), std::move(value));
    return *this;
  }

  int status() const { return status_; }
  const std::string& content_type() const { return content_type_; }
  const std::vector<std::pair<std::string, std::string>>& headers() const { return headers_; }
  std::optional<std::string_view> Header(std::string_view name) const;

  // The body, for the server and for tests of handlers.
  using Body = std::variant<std::string, FileRegion, StreamBody>;
  Body& body() { return body_; }
  const Body& body() const { return body_; }
  // Content-Length of the body; nullopt for a stream of unknown length.
  std::optional<uint64_t> body_length() const;

 private:
  int status_ = 200;
  std::string content_type_;
  std::vector<std::pair<std::string, std::string>> headers_;
  Body body_;
};

// `{"error": {"code": "<code>", "message": "<message>"}}` with `status`. Every error the server
// produces itself uses it (codes: bad_request, not_found, method_not_allowed, payload_too_large,
// header_too_large, request_timeout, expectation_failed, service_unavailable, internal).
Response JsonError(int status, std::string_view code, std::string_view message);

// A JsonError for a Status: kInvalidArgument 400, kNotFound 404, kAlreadyExists 409,
// kFailedPrecondition 412, kTimeout 408 (for a body read; a handler's own deadline should say 504),
// kNotLeader/kRetry/kUnavailable/kCommitUnknown 503, kNoSpace 507, others 500. The code is the
// snake_case StatusCode name.
Response ErrorResponse(const Status& status);

// `s` as the contents of a JSON string (quotes not included); control characters are \u-escaped,
// invalid UTF-8 is passed through as is.
std::string JsonEscape(std::string_view s);

}  // namespace dispotify::api::http
