#pragma once
// The web UI's files (web/dist, built by `npm run build`: node/../web/README.md), served by every
// node on the paths the REST API does not use, through the router's fallback (router.h).
//
//   GET /                      index.html
//   GET /albums/x, /songs ...  index.html: the UI's client-side routes
//   GET /assets/<hashed name>  the file, `Cache-Control: public, max-age=31536000, immutable`
//   GET /<other file>          the file, `Cache-Control: no-cache` (index.html too: revalidated
//                              with its ETag, so a new build is picked up at once)
//   /music/*, /admin/*, /cluster/*, /healthz, /readyz, /metrics  never the UI: the JSON 404
//                              ("/music", "/cluster" alone are UI routes: the cluster page)
//   a missing /assets/* file, or a missing path whose last segment has a '.'  JSON 404 (a
//                              browser asking for a script must not get HTML)
//
// Precompressed siblings: when the request's Accept-Encoding allows it, `<file>.br` (preferred) or
// `<file>.gz` is sent instead with its Content-Encoding; every file answer says
// `Vary: Accept-Encoding`. ETags are weak validators of the bytes sent (size, mtime, encoding).
//
// Security: never a byte outside the root. The decoded path may not hold "." or ".." segments,
// dot-files, NUL or '\'; the file's canonical path (symlinks resolved) must lie under the root's
// canonical path, and it must be a regular file, opened with O_NOFOLLOW. Every answer carries a
// Content-Security-Policy (kContentSecurityPolicy), `X-Content-Type-Options: nosniff` and
// `Referrer-Policy: same-origin`.

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "node/api/http/request.h"
#include "node/api/http/response.h"
#include "node/api/http/router.h"

namespace dispotify::api {

// Inline style *attributes* set from script (CSSOM) are not subject to CSP, and the build has no
// inline <style> or <script>, so neither needs 'unsafe-inline'.
inline constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

// Whether `path` (raw) belongs to the API, which the UI never answers.
bool IsApiPath(std::string_view path);

class StaticFiles {
 public:
  // `root` must be a directory holding index.html. kNotFound otherwise.
  static Result<std::unique_ptr<StaticFiles>> Open(const std::string& root);

  // Answers a GET or HEAD for `request.path` as described above.
  http::Response Serve(const http::Request& request) const;

  const std::string& root() const { return root_; }

 private:
  explicit StaticFiles(std::string root) : root_(std::move(root)) {}
  std::string root_;  // canonical, without a trailing '/'
};

// The built UI for a node run from `executable`: `<dir>/../share/dispotify/web` (installed), else
// the first `web/dist` found in the executable's directory or up to five of its parents (a build
// tree inside the source tree, build/<preset>/node/server/). "" when there is none.
std::string FindWebRoot(const std::string& executable);

// The composition root's one call: `web_root` as configured ("auto": FindWebRoot of this process's
// executable; "": no UI). Registers the fallback route on `router` when there is a UI; logs what it
// serves. An explicit root without index.html is kInvalidArgument (a typo must not go unnoticed).
Status AddWebUi(const std::string& web_root, http::Router* router);

}  // namespace dispotify::api
