#pragma once
// The KeyCache's Fetcher over HTTP(S) (cpprestsdk): GET a URL, the body of a 200 or why not, in
// bounded time and memory. Kept apart from the auth library, which does no I/O of its own, so
// its tests need no network.

#include <chrono>
#include <cstddef>
#include <string>

#include "common/status.h"
#include "node/auth/key_cache.h"

namespace dispotify::auth {

struct HttpFetchOptions {
  // The connection, the request and the answer's headers, and then each chunk of the body, must
  // each come this fast...
  std::chrono::milliseconds step_timeout{5000};
  // ...and the body must be read by this (plus one step): an issuer that trickles bytes cannot
  // hold a request thread (KeyCache fetches on the caller's thread) for longer.
  std::chrono::milliseconds total_timeout{10000};
  // A discovery document or a JWKS is a few KiB; anything this large is not one.
  size_t max_body_bytes = 1 << 20;
};

// Never throws (cpprestsdk's exceptions become Unavailable). Fails on any status but 200, on a
// body over the limit, and past the timeouts.
Result<std::string> HttpGet(const std::string& url, const HttpFetchOptions& options);

// POST `form` (application/x-www-form-urlencoded) to `url`: the body of a 200, 400 or 401 (a
// token endpoint's errors, RFC 6749 §5.2, whose JSON ParseTokenResponse reads), else as HttpGet
// fails. For the browser login's token request (oidc_login.h). The form carries the client
// secret and the code: the error messages name the URL only.
Result<std::string> HttpPostForm(const std::string& url, const std::string& form,
                                 const HttpFetchOptions& options);

inline KeyCache::Fetcher MakeHttpFetcher(HttpFetchOptions options = {}) {
  return [options](const std::string& url) { return HttpGet(url, options); };
}

}  // namespace dispotify::auth
