#pragma once
// A client of the nodes' REST API (used by dispotifyctl and the operator): requests to a list of
// nodes, with failover.
//
// Any node serves the whole API (admin calls are forwarded to the leader by the server), so the
// client only needs to move on when a node is unreachable or answers 503 (no quorum or leader right
// now): it tries the endpoints in order, starting with the last one that answered, and after a
// round with no usable answer waits (Retry-After of a 503, else a short backoff) and goes round
// again, until `timeout` has passed (or `max_rounds` rounds). Any other HTTP answer, an error
// included, is final.
//
// Bodies stream with bounded memory in both directions: an upload reads its file in chunks as the
// socket takes them; a download hands each chunk to a DownloadTarget as it arrives, and a download
// cut short resumes on the next attempt with a Range request for the rest.
//
// cpprestsdk (the project's HTTP client) does the HTTP; it stays out of this header.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace dispotify::rest {

struct ClientOptions {
  std::vector<std::string> endpoints;  // base URLs ("http://127.0.0.1:8081")
  // Sent as "Authorization: Bearer" on every request when set: an API token, the static admin
  // token, or a JWT (docs/security.md).
  std::string token;
  // How long to keep trying (failover and 503 retries); also how long a connection may stay silent.
  std::chrono::milliseconds timeout{30000};
  // Told (on the calling thread) before each wait for another round, e.g. to tell the user why
  // nothing seems to happen.
  std::function<void(const std::string& note)> on_retry;
  // How many times at most to go round the endpoints (0: until `timeout`). 1 sends one request per
  // endpoint and never waits, for a caller that has its own retry loop (the operator).
  int max_rounds = 0;
  // https:// endpoints: a PEM file of the CA(s) that signed the nodes' certificates, trusted on top
  // of the system's roots (a private CA such as dispotify-pki's). "": the system's roots only. The
  // certificate must name the endpoint's host (DNS or IP SAN) either way.
  std::string ca_file;
};

struct HttpReply {
  int status = 0;
  std::string body;               // the answer's text (for a download: only an error's body)
  std::string endpoint;           // the node that answered
  bool already_complete = false;  // a download whose target already held the whole song
  // An earlier attempt of the same call got no answer or a 503: a request that is not idempotent
  // (a DELETE) may have taken effect then, so this answer can be about the state it left.
  bool retried = false;
  // The node said its answer may be stale (header "Dispotify-Consistency: stale", sent when the
  // request opted in with consistency=stale).
  bool stale = false;
  std::string set_cookie;  // the answer's Set-Cookie (a login's session cookie), "" when none
};

// Header fields added to a request, in order.
using Headers = std::vector<std::pair<std::string, std::string>>;

// Bytes done so far and the total (0 when not known yet). Called on a network thread.
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

// Where a download's bytes go. The client calls Begin once per answer that carries the song
// (200 or 206), then Write for each chunk in order.
class DownloadTarget {
 public:
  virtual ~DownloadTarget() = default;
  // Bytes already held: a later attempt asks for the rest from here.
  virtual uint64_t size() const = 0;
  // The answer's bytes start at `from` (0 for a whole-file 200, even when a range was asked).
  // Returns how many of the coming bytes to drop (already held and not rewindable, e.g. stdout),
  // after making room for them (e.g. truncating a file).
  virtual Result<uint64_t> Begin(uint64_t from) = 0;
  virtual Status Write(const char* data, size_t n) = 0;
};

class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // One request with an optional JSON body and extra header fields. `target` is the path and
  // query, already encoded. Not OK only when no node gave an HTTP answer in time (kUnavailable,
  // naming each failure).
  //
  // Retries: a 503 or no answer moves on to the next node (and waits for its Retry-After once
  // every node was tried). A 429 (rate limited) waits for its Retry-After and asks the same node
  // again: limits are per node, and going elsewhere would only spread the load the limit is there
  // to slow down. Either is returned as it is when the wait would pass the timeout.
  Result<HttpReply> Call(std::string_view method, const std::string& target,
                         const std::string* json_body = nullptr, const Headers& headers = {});

  // POSTs `size` bytes of the file at `path` as a raw body to `target`, re-reading it from the
  // start on each attempt, with `headers` added (e.g. Repr-Digest).
  Result<HttpReply> Upload(const std::string& path, uint64_t size, const std::string& target,
                           const ProgressFn& progress, const Headers& headers = {});

  // GETs /music/stream/{file_id} into `target`; with `sha256` (lowercase hex) the content-addressed
  // form /music/stream/{file_id}?sha256=<hex>, which any node serves from a verified copy without
  // a catalog read. A 2xx reply means the target holds the whole song. A failure of the target
  // itself (disk full, closed pipe) ends the download at once.
  Result<HttpReply> Download(const std::string& file_id, DownloadTarget* target, const ProgressFn& progress,
                             const std::string& sha256 = "");

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Percent-encodes everything but the unreserved characters of RFC 3986 (A-Z a-z 0-9 - . _ ~).
std::string PercentEncode(std::string_view s);

// The "code" of an answer's {"error":{"code","message"}} body ("already_exists"); "" otherwise.
std::string HttpErrorCode(std::string_view body);

// "HTTP 404 not_found: no such song", from an answer's {"error":{"code","message"}} body, or with
// the start of the raw body when it is not one.
std::string DescribeHttpError(int status, std::string_view body);

// Seconds from a Retry-After header value ("2"); nullopt when absent or not a number of seconds.
std::optional<double> ParseRetryAfter(std::string_view value);

}  // namespace dispotify::rest
