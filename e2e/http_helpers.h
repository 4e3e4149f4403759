#pragma once
// Helpers shared by the e2e tests that speak to the REST API over raw sockets
// (tests/node/api/http/test_client.h), and a polling helper.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "tests/node/api/http/test_client.h"

namespace dispotify::e2e {

using api::http::testing::ClientResponse;

// One request on a fresh connection to 127.0.0.1:port.
inline std::optional<ClientResponse> HttpCall(int port, const std::string& method, const std::string& target,
                                              const std::string& body = "",
                                              const std::string& extra_headers = "") {
  api::http::testing::TestClient client(static_cast<uint16_t>(port));
  if (!client.connected()) return std::nullopt;
  std::string req =
      method + " " + target + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n" + extra_headers;
  if (!body.empty() || method == "POST" || method == "PUT")
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  if (!client.Send(req)) return std::nullopt;
  return client.ReadResponse(method == "HEAD");
}

// POST /music/upload as multipart/form-data: a title field, then the file part.
inline std::optional<ClientResponse> HttpUploadMultipart(int port, const std::string& file_name,
                                                         const std::string& data, const std::string& title) {
  const std::string boundary = "----dispotify-e2e-boundary";
  const std::string body = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n" +
                           title + "\r\n--" + boundary +
                           "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + file_name +
                           "\"\r\nContent-Type: audio/mpeg\r\n\r\n" + data + "\r\n--" + boundary + "--\r\n";
  return HttpCall(port, "POST", "/music/upload", body,
                  "Content-Type: multipart/form-data; boundary=" + boundary + "\r\n");
}

// Polls `pred` every 100 ms until it holds or `timeout` passes.
inline bool Eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return pred();
}

}  // namespace dispotify::e2e
