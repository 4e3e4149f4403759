#pragma once
// A tiny blocking HTTP/1.1 client over a raw socket, for driving the server byte by byte in tests
// (partial heads, slow bodies, pipelining, half-closes). Every read has a receive timeout so that a
// server bug fails the test instead of hanging it.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace dispotify::api::http::testing {

struct ClientResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  bool chunked = false;

  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// Reads one response (an interim 1xx counts as one) from `buf`, calling `fill` for more bytes
// (false: the connection ended). nullopt when it ends before a complete response. What follows the
// response stays in `buf`. Shared by the plaintext client below and the TLS one (tls_test_client.h).
inline std::optional<ClientResponse> ParseResponse(std::string& buf, const std::function<bool()>& fill,
                                                   bool head_request = false) {
  size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (!fill()) return std::nullopt;
  }
  ClientResponse r;
  std::string head = buf.substr(0, end);
  buf.erase(0, end + 4);
  size_t line_end = head.find("\r\n");
  std::string status_line = head.substr(0, line_end);
  if (status_line.size() < 12 || status_line.compare(0, 5, "HTTP/") != 0) return std::nullopt;
  r.status = std::stoi(status_line.substr(9, 3));
  size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    size_t e = head.find("\r\n", pos);
    if (e == std::string::npos) e = head.size();
    std::string line = head.substr(pos, e - pos);
    pos = e + 2;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    r.headers[name] = value;
  }
  if (head_request || r.status < 200 || r.status == 204 || r.status == 304) return r;
  if (r.headers.count("content-length")) {
    size_t len = std::stoull(r.headers["content-length"]);
    while (buf.size() < len) {
      if (!fill()) return std::nullopt;
    }
    r.body = buf.substr(0, len);
    buf.erase(0, len);
    return r;
  }
  if (r.Header("transfer-encoding") == "chunked") {
    r.chunked = true;
    for (;;) {
      size_t le;
      while ((le = buf.find("\r\n")) == std::string::npos) {
        if (!fill()) return std::nullopt;
      }
      size_t size = std::stoull(buf.substr(0, le), nullptr, 16);
      buf.erase(0, le + 2);
      while (buf.size() < size + 2) {
        if (!fill()) return std::nullopt;
      }
      r.body.append(buf, 0, size);
      buf.erase(0, size + 2);
      if (size == 0) return r;
    }
  }
  while (fill()) {
  }
  r.body = std::move(buf);
  buf.clear();
  return r;
}

class TestClient {
 public:
  explicit TestClient(uint16_t port, int recv_timeout_ms = 20000) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    timeval tv{recv_timeout_ms / 1000, (recv_timeout_ms % 1000) * 1000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ~TestClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;

  bool connected() const { return connected_; }
  int fd() const { return fd_; }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  void ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }

  // Reads one response (an interim 1xx counts as one). nullopt when the connection ends (or the
  // receive timeout passes) before a complete response.
  std::optional<ClientResponse> ReadResponse(bool head_request = false) {
    return ParseResponse(
        buf_, [this] { return Fill(); }, head_request);
  }

  // Reads a Content-Length body without keeping it (for throughput); returns the bytes read.
  size_t DiscardBody(size_t len) {
    size_t got = std::min(len, buf_.size());
    buf_.erase(0, got);
    std::string scratch(1 << 20, '\0');
    while (got < len) {
      ssize_t n = ::recv(fd_, scratch.data(), std::min(scratch.size(), len - got), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    return got;
  }

  // True when the server closed the connection (EOF or reset) with nothing more to read.
  bool ServerClosed() {
    if (!buf_.empty()) return false;
    char c;
    ssize_t n;
    do {
      n = ::recv(fd_, &c, 1, 0);
    } while (n < 0 && errno == EINTR);
    if (n > 0) buf_.push_back(c);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

  const std::string& buffered() const { return buf_; }

 private:
  bool Fill() {
    char tmp[64 * 1024];
    for (;;) {
      ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      buf_.append(tmp, static_cast<size_t>(n));
      return true;
    }
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

}  // namespace dispotify::api::http::testing
