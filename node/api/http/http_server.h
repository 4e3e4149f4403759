#pragma once
// The public HTTP/1.1 server (Boost.Beast + Asio behind a pimpl: this header pulls in neither).
//
// Threading model. `worker_threads` threads run one io_context. Waiting is asynchronous: accepting,
// idle keep-alive connections and reading a request head cost no thread. Once a request head is
// complete, its connection's worker thread runs the handler to completion: the handler pulls the
// body with blocking reads and the response is written with blocking writes (each bounded by a
// timeout), then the connection goes back to waiting asynchronously. So at most `worker_threads`
// requests are in their handler at once; a handler that blocks (storage, gRPC) holds its thread,
// and when every worker is busy, further requests (and accepts) wait until one returns. Size the
// pool for the expected concurrency of slow handlers.
//
// Limits and the answers the server gives itself (all with a JsonError body, then close):
//   - request head larger than max_header_bytes                   -> 431
//   - malformed request (bad start line, header, chunk framing)   -> 400
//   - no route for the path / not for this method                 -> 404 / 405 + Allow
//   - Content-Length above the route's max body                   -> 413, before reading the body
//   - chunked body growing above the route's max body             -> 413 (the handler's Read fails)
//   - `Expect` other than 100-continue                             -> 417
//   - head not complete within header_timeout                     -> 408
//   - no body byte for body_read_timeout while the handler reads  -> 408 (the handler's Read fails)
//   - exception escaping a handler                                -> 500
//   - max_connections already open                                -> 503 on the new connection
// `Expect: 100-continue`: the interim 100 is sent when the handler first calls BodyReader::Read,
// so a request rejected before (413, 404, an auth check in the handler, ...) never makes the client
// send its body.
//
// Keep-alive: HTTP/1.1 by default, HTTP/1.0 with "Connection: keep-alive". A connection is closed
// after a response when the client asks for it, when the handler did not read the whole request
// body (the unread rest cannot be skipped safely), after any error above, and during shutdown.
// Before closing with unread request bytes the server stops sending and discards what the client
// still sends for up to linger_timeout ("lingering close"), so the client reads the response
// instead of a connection reset. Idle keep-alive connections are closed after idle_timeout.
//
// TLS (options.tls_context set). The handshake is asynchronous like the wait for a head, bounded by
// header_timeout, so a slow or silent client holds no thread; then the request runs as above with
// OpenSSL on the non-blocking socket (the same timeouts). A failed handshake — plaintext HTTP sent
// to the port, a client that does not trust the certificate, a timeout — closes the connection,
// is logged at debug level and counted (ServerStats::tls_handshake_failures). File bodies go out
// with SSL_sendfile when the kernel does the encryption (kernel TLS: needs the `tls` module),
// otherwise as reads of the file encrypted by OpenSSL. At max_connections a TLS connection is
// closed without a 503 (answering would take a handshake). Connections close with close_notify.
//
// Shutdown (Stop): stop accepting; close idle connections; let requests in flight finish (their
// responses say Connection: close) until the grace period ends; then shut down every remaining
// socket (a handler blocked in Read or in writing fails at once) and wait for the handlers to
// return; then join the threads. A handler blocked elsewhere (e.g. on a gRPC call) delays Stop
// until it returns. Stop must not be called from a handler.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "node/api/http/request.h"
#include "node/api/http/response.h"
#include "node/api/http/router.h"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX: this header does not pull in OpenSSL either

namespace dispotify::api::http {

// One finished request, as the server saw it. Label-safe by construction: `route` is the matched
// route's pattern ("/music/stream/{file_id}"), never the raw path, so a metrics backend can use it
// as a label without unbounded cardinality.
struct RequestRecord {
  // The pattern of the route that matched the path (for a 405, the most specific pattern of
  // another method), or kUnmatchedRoute when none did: no route for the path (404), or an error
  // before routing (malformed head or target, bad query string, unsupported Expect, head timeout,
  // head too large).
  static constexpr std::string_view kUnmatchedRoute = "unmatched";
  std::string_view route;
  // The request's method as sent (HEAD stays HEAD when served by a GET route); empty when the head
  // could not be parsed. Not validated: an observer bounds it itself.
  std::string_view method;
  // The response's status (also when writing it failed midway), or 499 when the client went away
  // while the handler read the body and no response was attempted.
  int status = 0;
  // From the first byte of the request head to the end of the response.
  double seconds = 0;
  uint64_t request_body_bytes = 0;   // body bytes the handler read (decoded, without chunk framing)
  uint64_t response_body_bytes = 0;  // body bytes written to the socket (no head, no chunk framing)
};

// Told about every request the server answered (or abandoned after its head was read), once, on the
// worker thread that ran it, after the response was written. Not told about connections refused at
// max_connections (ServerStats counts those). Must be thread-safe, quick and must not throw.
class RequestObserver {
 public:
  virtual ~RequestObserver() = default;
  virtual void OnRequest(const RequestRecord& record) = 0;
};

// Decides, for every request a route (or the fallback) matched, before its body is read and its
// handler runs, whether it may go on: nullopt to go on (the guard may set Request::principal), or
// the response to send instead (401, 403, 429, 503). `pattern` is the matched route's pattern, or
// nullopt for the fallback. Must be thread-safe and must not throw.
class RequestGuard {
 public:
  virtual ~RequestGuard() = default;
  virtual std::optional<Response> Admit(Request& request, std::optional<std::string_view> pattern) = 0;
};

struct ServerOptions {
  std::string address = "0.0.0.0";
  uint16_t port = 8080;  // 0: any free port (see HttpServer::port)
  size_t worker_threads = 4;
  size_t max_connections = 1024;
  size_t max_header_bytes = 16 * 1024;
  uint64_t default_max_body_bytes = 1024 * 1024;  // per route: RouteOptions::max_body_bytes
  // The whole request head (from its first byte) must arrive within this (slowloris).
  std::chrono::milliseconds header_timeout{30'000};
  // While a handler reads the body: the most time without receiving a byte.
  std::chrono::milliseconds body_read_timeout{30'000};
  // While sending a response: the most time without the client accepting a byte.
  std::chrono::milliseconds write_timeout{30'000};
  // A keep-alive connection with no request for this long is closed.
  std::chrono::milliseconds idle_timeout{60'000};
  // Lingering close (see above).
  std::chrono::milliseconds linger_timeout{2'000};
  // Sent as the Server header; empty: none.
  std::string server_name = "dispotify";
  // Not owned; null: none. Must outlive the server (Stop joins the threads that call it).
  RequestObserver* observer = nullptr;
  // Not owned; null: every matched request goes to its handler. Must outlive the server.
  RequestGuard* guard = nullptr;
  // HTTPS. Set: the port speaks TLS only; called once per accepted connection for the context to
  // handshake with (so a rotated certificate applies to new connections while open ones keep
  // theirs: see "TLS" above). Null: plaintext HTTP. Must be thread-safe; a null result closes the
  // connection.
  std::function<std::shared_ptr<ssl_ctx_st>()> tls_context;
};

struct ServerStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_rejected = 0;    // 503 at max_connections
  uint64_t requests = 0;                // heads parsed and answered (by a handler or the server)
  uint64_t tls_handshake_failures = 0;  // HTTPS: failed or timed-out handshakes (plaintext HTTP too)
  size_t open_connections = 0;
};

class HttpServer {
 public:
  HttpServer(ServerOptions options, Router router);
  // Stops with no grace period if still running.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the worker threads. kInvalidArgument for a bad address or options,
  // kIoError (or kFailedPrecondition when already started) otherwise.
  Status Start();
  // The bound port (the chosen one when options.port was 0); 0 before Start.
  uint16_t port() const;
  // Graceful shutdown, see above. Idempotent.
  void Stop(std::chrono::milliseconds grace = std::chrono::seconds(10));

  ServerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dispotify::api::http
