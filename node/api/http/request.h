#pragma once
// What an HTTP handler receives: the request head (Request) and a pull interface over the request
// body (BodyReader), so that an upload of any size is handled with bounded memory.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace dispotify::auth {
struct Principal;
}  // namespace dispotify::auth

namespace dispotify::api::http {

// Header fields in arrival order; names compare case-insensitively (RFC 9110 §5.1).
class HeaderMap {
 public:
  void Add(std::string name, std::string value) { fields_.emplace_back(std::move(name), std::move(value)); }
  // The first field named `name`.
  std::optional<std::string_view> Get(std::string_view name) const;
  // Every value of the fields named `name`, in order.
  std::vector<std::string_view> GetAll(std::string_view name) const;
  bool Has(std::string_view name) const { return Get(name).has_value(); }
  const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// Whether an If-None-Match field value matches `etag` (RFC 9110 §13.1.2: "*", or any listed tag
// by weak comparison, W/ prefixes aside): the client's copy is current, answer 304.
bool IfNoneMatchMatches(std::string_view if_none_match, std::string_view etag);

// Decodes %XX escapes (and '+' as a space when plus_as_space, for query strings). nullopt for a
// malformed escape ("%", "%4", "%zz").
std::optional<std::string> PercentDecode(std::string_view in, bool plus_as_space);

// Splits "a=1&b=x%20y&flag" into decoded pairs ({"flag", ""} for a key without '='); empty pieces
// ("a=1&&b=2") are skipped. false for a malformed escape.
bool ParseQuery(std::string_view query, std::vector<std::pair<std::string, std::string>>* out);

struct Request {
  std::string method;     // as sent, e.g. "GET"
  std::string target;     // the raw request-target, e.g. "/music/search?q=a%20b"
  std::string path;       // the target's path, still percent-encoded
  std::string query;      // the raw query string, without '?'
  unsigned version = 11;  // 10 or 11
  HeaderMap headers;
  // Decoded values of the route's {param} segments.
  std::map<std::string, std::string, std::less<>> path_params;
  // Decoded query parameters in order (a key may repeat).
  std::vector<std::pair<std::string, std::string>> query_params;
  // From Content-Length; nullopt for a chunked body (or no body).
  std::optional<uint64_t> content_length;
  bool chunked = false;
  std::string remote_address;  // "ip:port" of the client
  // The client's X-Request-Id when sane, else one the server made; echoed in the response.
  std::string request_id;
  // Who is calling, set by the server's RequestGuard before the handler runs; null when the
  // server has no guard (security off).
  std::shared_ptr<const auth::Principal> principal;

  std::optional<std::string_view> Header(std::string_view name) const { return headers.Get(name); }
  // "" when the route has no such parameter.
  std::string_view PathParam(std::string_view name) const;
  // The first query parameter named `name`.
  std::optional<std::string_view> Query(std::string_view name) const;
  // Whether the request announces a body (Content-Length > 0 or chunked).
  bool HasBody() const { return chunked || content_length.value_or(0) > 0; }
};

// The request body, pulled by the handler. Read fills up to `max` bytes and returns how many,
// 0 once the whole body has been read (at once for a request without a body). Errors:
//   kTimeout          the client sent nothing for the server's body read timeout;
//   kAborted          the client closed the connection before the end of the body (truncated);
//   kInvalidArgument  the body is larger than the route allows, or its chunked framing is broken.
// The server answers these itself (408, 400, 413) whatever the handler returns, and closes the
// connection. An error is sticky: every later call returns it again.
class BodyReader {
 public:
  virtual ~BodyReader() = default;
  virtual Result<size_t> Read(char* buf, size_t max) = 0;
};

// The whole body as a string; kInvalidArgument when it is longer than `max_bytes`.
Result<std::string> ReadBodyToString(BodyReader& body, size_t max_bytes);

// A BodyReader over a string, delivering at most `chunk` bytes per call and then, if `final_error`
// is set, returning it instead of 0 (a truncated body). For tests and for composing parsers.
class StringBodyReader final : public BodyReader {
 public:
  explicit StringBodyReader(std::string data, size_t chunk = SIZE_MAX,
                            std::optional<Status> final_error = std::nullopt)
      : data_(std::move(data)), chunk_(chunk == 0 ? 1 : chunk), final_error_(std::move(final_error)) {}
  Result<size_t> Read(char* buf, size_t max) override;

 private:
  std::string data_;
  size_t pos_ = 0;
  size_t chunk_;
  std::optional<Status> final_error_;
};

}  // namespace dispotify::api::http
