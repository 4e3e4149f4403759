#include "node/auth/http_fetcher.h"

#include <cpprest/http_client.h>

#include <cstdint>
#include <exception>
#include <vector>

namespace dispotify::auth {

namespace http = web::http;

Result<std::string> HttpGet(const std::string& url, const HttpFetchOptions& options) {
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    return Status::InvalidArgument("'" + url + "' is not an http(s) URL");
  }
  const auto deadline = std::chrono::steady_clock::now() + options.total_timeout;
  try {
    http::client::http_client_config config;
    config.set_timeout(options.step_timeout);
    http::client::http_client client(url, config);
    http::http_request request(http::methods::GET);
    request.headers().add(http::header_names::accept, "application/json");
    // The step timeout bounds the connect and the wait for the headers; it restarts on every chunk
    // of the body, so the loop below checks a deadline of its own.
    auto pending = client.request(request);
    http::http_response response = pending.get();
    if (response.status_code() != http::status_codes::OK) {
      return Status::Unavailable("GET " + url + ": HTTP " + std::to_string(response.status_code()));
    }
    // A declared length over the limit is refused before a byte of the body is read.
    if (const auto declared = response.headers().content_length(); declared > options.max_body_bytes) {
      return Status::Unavailable("GET " + url + ": a body of " + std::to_string(declared) +
                                 " bytes (at most " + std::to_string(options.max_body_bytes) + ")");
    }
    auto body = response.body().streambuf();
    std::string out;
    std::vector<uint8_t> chunk(16 * 1024);
    for (;;) {
      if (std::chrono::steady_clock::now() > deadline) {
        return Status::Unavailable("GET " + url + ": body not read within " +
                                   std::to_string(options.total_timeout.count()) + " ms");
      }
      const size_t n = body.getn(chunk.data(), chunk.size()).get();
      if (n == 0) break;  // end of the body
      if (out.size() + n > options.max_body_bytes) {
        return Status::Unavailable("GET " + url + ": body over " + std::to_string(options.max_body_bytes) +
                                   " bytes");
      }
      out.append(reinterpret_cast<const char*>(chunk.data()), n);
    }
    return out;
  } catch (const std::exception& e) {
    // cpprestsdk reports every transport failure (refused, reset, timed out, bad TLS) this way.
    return Status::Unavailable("GET " + url + ": " + e.what());
  }
}

}  // namespace dispotify::auth
