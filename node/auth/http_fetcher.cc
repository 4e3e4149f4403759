#include "node/auth/http_fetcher.h"

#include <cpprest/http_client.h>

#include <cstdint>
#include <exception>
#include <vector>

namespace dispotify::auth {

namespace http = web::http;

namespace {

// GET, or POST of a form body when `form` is set.
Result<std::string> Fetch(const std::string& url, const std::string* form, const HttpFetchOptions& options) {
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    return Status::InvalidArgument("'" + url + "' is not an http(s) URL");
  }
  const std::string what = (form != nullptr ? "POST " : "GET ") + url;
  const auto deadline = std::chrono::steady_clock::now() + options.total_timeout;
  try {
    http::client::http_client_config config;
    config.set_timeout(options.step_timeout);
    http::client::http_client client(url, config);
    http::http_request request(form != nullptr ? http::methods::POST : http::methods::GET);
    request.headers().add(http::header_names::accept, "application/json");
    if (form != nullptr) {
      // As bytes, not as a std::string: cpprestsdk 2.10 reads a string body through a
      // streambuf<uint8_t> that is really a container_buffer<std::string> (UBSan: vptr).
      request.set_body(std::vector<unsigned char>(form->begin(), form->end()));
      request.headers().set_content_type("application/x-www-form-urlencoded");
    }
    // The step timeout bounds the connect and the wait for the headers; it restarts on every chunk
    // of the body, so the loop below checks a deadline of its own.
    auto pending = client.request(request);
    http::http_response response = pending.get();
    // A token endpoint answers its errors as 400 or 401 with a JSON body that says why (RFC 6749
    // §5.2): the caller reads those too.
    const bool oauth_error = form != nullptr && (response.status_code() == http::status_codes::BadRequest ||
                                                 response.status_code() == http::status_codes::Unauthorized);
    if (response.status_code() != http::status_codes::OK && !oauth_error) {
      return Status::Unavailable(what + ": HTTP " + std::to_string(response.status_code()));
    }
    // A declared length over the limit is refused before a byte of the body is read.
    if (const auto declared = response.headers().content_length(); declared > options.max_body_bytes) {
      return Status::Unavailable(what + ": a body of " + std::to_string(declared) + " bytes (at most " +
                                 std::to_string(options.max_body_bytes) + ")");
    }
    auto body = response.body().streambuf();
    std::string out;
    std::vector<uint8_t> chunk(size_t{16} * 1024);
    for (;;) {
      if (std::chrono::steady_clock::now() > deadline) {
        return Status::Unavailable(what + ": body not read within " +
                                   std::to_string(options.total_timeout.count()) + " ms");
      }
      const size_t n = body.getn(chunk.data(), chunk.size()).get();
      if (n == 0) break;  // end of the body
      if (out.size() + n > options.max_body_bytes) {
        return Status::Unavailable(what + ": body over " + std::to_string(options.max_body_bytes) + " bytes");
      }
      out.append(reinterpret_cast<const char*>(chunk.data()), n);
    }
    return out;
  } catch (const std::exception& e) {
    // cpprestsdk reports every transport failure (refused, reset, timed out, bad TLS) this way.
    return Status::Unavailable(what + ": " + e.what());
  }
}

}  // namespace

Result<std::string> HttpGet(const std::string& url, const HttpFetchOptions& options) {
  return Fetch(url, nullptr, options);
}

Result<std::string> HttpPostForm(const std::string& url, const std::string& form,
                                 const HttpFetchOptions& options) {
  return Fetch(url, &form, options);
}

}  // namespace dispotify::auth
