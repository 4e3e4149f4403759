// The node's JWKS fetcher against a loopback server that answers as told: the body of a 200,
// refusals of anything else, of oversized bodies, and of a server that never answers, each in
// bounded time.

#include "node/auth/http_fetcher.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>

namespace dispotify::auth {
namespace {

using namespace std::chrono_literals;

// Accepts connections on 127.0.0.1 and answers each with `reply` (after reading the request);
// with an empty reply it holds the connection open without a word until stopped.
class CannedServer {
 public:
  explicit CannedServer(std::string reply) : reply_(std::move(reply)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    EXPECT_EQ(::listen(fd_, 8), 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~CannedServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  // The last request received, headers and body.
  std::string LastRequest() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_request_;
  }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  // Up to the end of the headers and then Content-Length bytes of body (or 2 s of silence).
  void ReadRequest(int c) {
    timeval timeout{2, 0};
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    std::string request;
    char buf[4096];
    for (;;) {
      const size_t end = request.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t length = 0;
        // cpprestsdk writes "Content-Length:36", without the space.
        const size_t at = request.find("Content-Length:");
        if (at != std::string::npos && at < end) length = std::stoul(request.substr(at + 15));
        if (request.size() >= end + 4 + length) break;
      }
      const ssize_t n = ::recv(c, buf, sizeof(buf), 0);
      if (n <= 0) break;
      request.append(buf, static_cast<size_t>(n));
    }
    std::lock_guard<std::mutex> lock(mu_);
    last_request_ = std::move(request);
  }

  void Serve() {
    while (!stop_) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      ReadRequest(c);
      if (reply_.empty()) {
        while (!stop_) std::this_thread::sleep_for(20ms);
      } else {
        size_t sent = 0;
        while (sent < reply_.size()) {
          const ssize_t n = ::send(c, reply_.data() + sent, reply_.size() - sent, MSG_NOSIGNAL);
          if (n <= 0) break;
          sent += static_cast<size_t>(n);
        }
      }
      ::close(c);
    }
  }

  std::string reply_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::string last_request_;
  std::thread thread_;
};

std::string Reply(int status, const std::string& body, bool chunked = false) {
  std::string r =
      "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\nConnection: close\r\n";
  if (chunked) {
    char size[32];
    std::snprintf(size, sizeof(size), "%zx", body.size());
    return r + "Transfer-Encoding: chunked\r\n\r\n" + size + "\r\n" + body + "\r\n0\r\n\r\n";
  }
  return r + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

TEST(HttpFetcherTest, ReturnsTheBodyOfA200) {
  CannedServer server(Reply(200, R"({"keys":[]})"));
  auto body = HttpGet(server.Url("/jwks"), {});
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ(*body, R"({"keys":[]})");
}

TEST(HttpFetcherTest, RefusesOtherStatusesAndNonHttpUrls) {
  CannedServer server(Reply(404, "not here"));
  auto body = HttpGet(server.Url("/jwks"), {});
  ASSERT_FALSE(body.ok());
  EXPECT_NE(body.status().message().find("HTTP 404"), std::string::npos) << body.status().ToString();
  EXPECT_FALSE(HttpGet("file:///etc/passwd", {}).ok());
}

TEST(HttpFetcherTest, RefusesBodiesOverTheLimitDeclaredOrNot) {
  HttpFetchOptions options;
  options.max_body_bytes = 1000;
  const std::string big(5000, 'x');
  {
    CannedServer server(Reply(200, big));
    auto body = HttpGet(server.Url("/"), options);
    ASSERT_FALSE(body.ok());
    EXPECT_NE(body.status().message().find("at most 1000"), std::string::npos) << body.status().ToString();
  }
  {
    CannedServer server(Reply(200, big, /*chunked=*/true));
    auto body = HttpGet(server.Url("/"), options);
    ASSERT_FALSE(body.ok());
    EXPECT_NE(body.status().message().find("over 1000"), std::string::npos) << body.status().ToString();
  }
  CannedServer server(Reply(200, std::string(1000, 'y'), /*chunked=*/true));
  auto body = HttpGet(server.Url("/"), options);
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ(body->size(), 1000u);
}

TEST(HttpFetcherTest, GivesUpOnASilentServerInBoundedTime) {
  CannedServer server("");
  HttpFetchOptions options;
  options.step_timeout = 500ms;
  const auto start = std::chrono::steady_clock::now();
  auto body = HttpGet(server.Url("/"), options);
  EXPECT_FALSE(body.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(HttpFetcherTest, PostsAFormAndReadsTheTokenEndpointsErrorsToo) {
  {
    CannedServer server(Reply(200, R"({"access_token":"a"})"));
    const std::string form = "grant_type=authorization_code&code=c";
    auto body = HttpPostForm(server.Url("/token"), form, {});
    ASSERT_TRUE(body.ok()) << body.status().ToString();
    EXPECT_EQ(*body, R"({"access_token":"a"})");
    const std::string request = server.LastRequest();
    EXPECT_EQ(request.rfind("POST /token HTTP/1.1\r\n", 0), 0u) << request;
    EXPECT_NE(request.find("application/x-www-form-urlencoded"), std::string::npos) << request;
    ASSERT_GT(request.size(), form.size());
    EXPECT_EQ(request.substr(request.size() - form.size()), form) << request;
  }
  // RFC 6749 §5.2: the issuer's reason comes as JSON in a 400 (or 401): the caller gets it.
  for (int status : {400, 401}) {
    CannedServer server(Reply(status, R"({"error":"invalid_grant"})"));
    auto body = HttpPostForm(server.Url("/token"), "code=c", {});
    ASSERT_TRUE(body.ok()) << status << ": " << body.status().ToString();
    EXPECT_EQ(*body, R"({"error":"invalid_grant"})");
  }
  // Anything else fails as a GET does, without the form (it holds the code and the secret).
  CannedServer server(Reply(500, "oops"));
  auto body = HttpPostForm(server.Url("/token"), "client_secret=s3cret", {});
  ASSERT_FALSE(body.ok());
  EXPECT_NE(body.status().message().find("POST http://127.0.0.1:"), std::string::npos)
      << body.status().ToString();
  EXPECT_EQ(body.status().message().find("s3cret"), std::string::npos) << body.status().ToString();
}

TEST(HttpFetcherTest, ReportsAnUnreachableIssuer) {
  int port = 0;
  {
    CannedServer closed(Reply(200, ""));
    port = std::stoi(closed.Url("").substr(std::string("http://127.0.0.1:").size()));
  }
  auto body = HttpGet("http://127.0.0.1:" + std::to_string(port) + "/", {});
  EXPECT_FALSE(body.ok());
  EXPECT_EQ(body.status().code(), StatusCode::kUnavailable) << body.status().ToString();
}

}  // namespace
}  // namespace dispotify::auth
