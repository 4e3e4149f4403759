#pragma once
// Method + path-pattern routing. A pattern is '/'-separated segments, each either a literal
// ("music") or a parameter ("{file_id}") that matches any one non-empty segment; the matched text
// is percent-decoded into Request::path_params (so "%2F" becomes '/' inside a parameter, but never
// splits segments). Matching is exact: no trailing-slash folding, no prefix routes.
//
// Precedence: among the routes whose pattern matches the path, the most specific one registered
// for the request's method wins, comparing segment by segment with literal > parameter (so
// "/songs/search" beats "/songs/{id}"). A path that matches no pattern is 404; a path that matches
// only routes of other methods is 405 with an Allow header. HEAD falls back to the GET route when
// no HEAD route is registered (the server then sends the head only).
//
// Fallback: a GET or HEAD whose path matches no pattern at all (would be 404) goes to the fallback
// handler when one is set (the web UI's files and client-side routes, node/api/static_files.h); its
// pattern label is "/*". Other methods, and paths that match a route of another method (405), are
// answered as without it.
//
// Threads: build the router before starting the server; it is read-only afterwards.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "node/api/http/request.h"
#include "node/api/http/response.h"

namespace dispotify::api::http {

// Runs on a server worker thread and may block (storage, gRPC): each blocked handler holds one of
// the server's worker threads (see ServerOptions::worker_threads). An exception escaping a handler
// becomes a 500 JSON error.
using Handler = std::function<Response(Request& request, BodyReader& body)>;

struct RouteOptions {
  // Largest request body accepted; nullopt: the server's default_max_body_bytes. A larger
  // Content-Length is answered 413 before the handler runs and before any body byte is read
  // (no 100 Continue is sent); a chunked body that grows past it fails the handler's Read and the
  // server answers 413.
  std::optional<uint64_t> max_body_bytes;
};

class Router {
 public:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;  // "{name}" for a parameter
    Handler handler;
    RouteOptions options;
  };

  enum class MatchKind { kFound, kNotFound, kMethodNotAllowed };
  struct Match {
    MatchKind kind = MatchKind::kNotFound;
    const Route* route = nullptr;                                 // kFound
    std::map<std::string, std::string, std::less<>> path_params;  // kFound, decoded
    std::string allow;  // kMethodNotAllowed: "GET, HEAD, POST" (sorted)
    // kFound: route->pattern; kMethodNotAllowed: the most specific pattern matching the path (of
    // another method). Points into the router; a bounded label for RequestObserver.
    std::string_view pattern;
    bool bad_escape = false;  // kFound but a parameter had a malformed %-escape (answer 400)
  };

  // Registers a route. A malformed pattern (not starting with '/', an empty or unclosed "{}") or a
  // duplicate (method, pattern) is a programming error and stops the process.
  Router& Add(std::string method, std::string pattern, Handler handler, RouteOptions options = {});
  Router& Get(std::string pattern, Handler handler, RouteOptions options = {}) {
    return Add("GET", std::move(pattern), std::move(handler), options);
  }
  Router& Post(std::string pattern, Handler handler, RouteOptions options = {}) {
    return Add("POST", std::move(pattern), std::move(handler), options);
  }
  Router& Put(std::string pattern, Handler handler, RouteOptions options = {}) {
    return Add("PUT", std::move(pattern), std::move(handler), options);
  }
  Router& Delete(std::string pattern, Handler handler, RouteOptions options = {}) {
    return Add("DELETE", std::move(pattern), std::move(handler), options);
  }

  // Sets the handler of GET/HEAD requests that no route matches (see above). At most once.
  Router& Fallback(Handler handler);

  // `path` is the raw (still percent-encoded) path of the request target.
  Match Find(std::string_view method, std::string_view path) const;

  size_t size() const { return routes_.size(); }
  // Every registered route (not the fallback), in registration order: for checks that each has
  // an access rule (node/auth/policy.h).
  const std::vector<Route>& routes() const { return routes_; }
  bool has_fallback() const { return fallback_.has_value(); }

 private:
  std::vector<Route> routes_;
  std::optional<Route> fallback_;
};

}  // namespace dispotify::api::http
