// The client's helpers, and its failover, retries and resumed downloads against a scripted fake
// server (the e2e test drives real nodes).

#include "common/rest/client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/rest/probe.h"
#include "tests/support/ports.h"

namespace dispotify::rest {
namespace {

using testsupport::ClosedPort;

// Answers each connection with the bytes `script` returns for its request head (and the index of
// the request), then closes it. One connection at a time, on loopback.
class FakeServer {
 public:
  using Script = std::function<std::string(size_t index, const std::string& head)>;

  explicit FakeServer(Script script) : script_(std::move(script)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> heads() {
    std::lock_guard lock(mu_);
    return heads_;
  }

 private:
  void Loop() {
    while (!stop_) {
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      std::string head;
      char buf[4096];
      while (head.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::recv(c, buf, sizeof(buf), 0);
        if (n <= 0) break;
        head.append(buf, static_cast<size_t>(n));
      }
      size_t index = 0;
      {
        std::lock_guard lock(mu_);
        index = heads_.size();
        heads_.push_back(head);
      }
      const std::string response = script_(index, head);
      ::send(c, response.data(), response.size(), MSG_NOSIGNAL);
      ::shutdown(c, SHUT_WR);
      while (::recv(c, buf, sizeof(buf), 0) > 0) {
      }
      ::close(c);
    }
  }

  Script script_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> heads_;
};

// A download target in memory that can rewind (like a file).
struct MemoryTarget : DownloadTarget {
  uint64_t size() const override { return bytes.size(); }
  Result<uint64_t> Begin(uint64_t from) override {
    if (from > bytes.size()) return Status::InvalidArgument("a range beyond what is held");
    began = true;
    bytes.resize(from);
    return uint64_t{0};
  }
  Status Write(const char* data, size_t n) override {
    bytes.append(data, n);
    return Status::Ok();
  }
  bool began = false;
  std::string bytes;
};

std::string Response(int status, const std::string& body, const std::string& extra = "") {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n" + extra + "\r\n" + body;
}

TEST(ClientTest, RetriesA503AfterRetryAfterAndReturnsTheAnswer) {
  FakeServer server([](size_t i, const std::string&) {
    if (i == 0)
      return Response(503, R"({"error":{"code":"unavailable","message":"no leader"}})", "Retry-After: 0\r\n");
    return Response(200, R"({"ok":true})");
  });
  std::vector<std::string> notes;
  ClientOptions options{{server.url()}, "", std::chrono::milliseconds(5000)};
  options.on_retry = [&](const std::string& note) { notes.push_back(note); };
  Client client(options);
  auto r = client.Call("GET", "/cluster/status");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"ok":true})");
  EXPECT_EQ(server.heads().size(), 2u);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("HTTP 503 unavailable: no leader"), std::string::npos) << notes[0];
}

TEST(ClientTest, A503ThatOutlastsTheTimeoutIsReturned) {
  FakeServer server([](size_t, const std::string&) {
    return Response(503, R"({"error":{"code":"unavailable","message":"no quorum"}})", "Retry-After: 1\r\n");
  });
  Client client({{server.url()}, "", std::chrono::milliseconds(1500)});
  auto r = client.Call("GET", "/music/songs");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(DescribeHttpError(r->status, r->body), "HTTP 503 unavailable: no quorum");
  EXPECT_EQ(server.heads().size(), 2u);  // at 0 s and after the 1 s Retry-After; then out of time
}

TEST(ClientTest, OtherErrorsAreFinalAndTheTokenGoesOnEveryCall) {
  FakeServer server([](size_t, const std::string&) {
    return Response(401, R"({"error":{"code":"unauthorized","message":"bad token"}})");
  });
  Client client({{server.url()}, "s3cret", std::chrono::milliseconds(5000)});
  const std::string body = R"({"factor":2})";
  auto admin = client.Call("PUT", "/admin/replication", &body);
  ASSERT_TRUE(admin.ok());
  EXPECT_EQ(admin->status, 401);
  auto plain = client.Call("GET", "/music/songs");
  ASSERT_TRUE(plain.ok());
  const auto heads = server.heads();
  ASSERT_EQ(heads.size(), 2u);  // no retries of a 401
  EXPECT_EQ(heads[0].rfind("PUT /admin/replication HTTP/1.1\r\n", 0), 0u) << heads[0];
  EXPECT_NE(heads[0].find("Authorization:Bearer s3cret\r\n"), std::string::npos) << heads[0];
  EXPECT_NE(heads[1].find("Authorization:Bearer s3cret\r\n"), std::string::npos) << heads[1];
}

TEST(ClientTest, A429WaitsItsRetryAfterAndAsksTheSameNodeAgain) {
  FakeServer limited([](size_t n, const std::string&) {
    if (n == 0)
      return Response(429, R"({"error":{"code":"rate_limited","message":"slow down"}})",
                      "Retry-After: 1\r\n");
    return Response(200, R"({"items":[]})");
  });
  FakeServer other([](size_t, const std::string&) { return Response(200, R"({"items":[]})"); });
  Client client({{limited.url(), other.url()}, "", std::chrono::milliseconds(5000)});
  const auto start = std::chrono::steady_clock::now();
  auto r = client.Call("GET", "/music/songs", nullptr, {{"X-Extra", "yes"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->endpoint, limited.url());
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(900));
  EXPECT_EQ(limited.heads().size(), 2u);
  EXPECT_TRUE(other.heads().empty()) << "a rate limit is not a reason to go elsewhere";
  EXPECT_NE(limited.heads()[1].find("X-Extra:yes\r\n"), std::string::npos) << limited.heads()[1];
  // One that outlasts the timeout is returned as it is.
  FakeServer always([](size_t, const std::string&) {
    return Response(429, R"({"error":{"code":"rate_limited","message":"slow down"}})", "Retry-After: 60\r\n");
  });
  Client impatient({{always.url()}, "", std::chrono::milliseconds(1000)});
  auto given_up = impatient.Call("GET", "/music/songs");
  ASSERT_TRUE(given_up.ok());
  EXPECT_EQ(given_up->status, 429);
  EXPECT_EQ(always.heads().size(), 1u);
}

TEST(ClientTest, OneRoundSendsOneRequestAndReturnsA503AtOnce) {
  FakeServer server([](size_t, const std::string&) {
    return Response(503, R"({"error":{"code":"unavailable","message":"no leader"}})", "Retry-After: 0\r\n");
  });
  ClientOptions options{{server.url()}, "", std::chrono::milliseconds(5000)};
  options.max_rounds = 1;
  Client client(options);
  auto r = client.Call("GET", "/cluster/status");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(server.heads().size(), 1u);

  options.endpoints = {"http://127.0.0.1:" + std::to_string(ClosedPort())};
  Client down(options);
  const auto start = std::chrono::steady_clock::now();
  auto refused = down.Call("GET", "/cluster/status");
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1000));  // no backoff
}

TEST(ClientTest, FailsOverToTheNextEndpoint) {
  FakeServer server([](size_t, const std::string&) { return Response(200, "{}"); });
  const std::string down = "http://127.0.0.1:" + std::to_string(ClosedPort());
  Client client({{down, server.url()}, "", std::chrono::milliseconds(5000)});
  auto r = client.Call("GET", "/healthz");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->endpoint, server.url());
}

TEST(ClientTest, AnAnswerAfterALostOneSaysItWasRetried) {
  // The first connection closes without an answer (the DELETE may have been applied), the
  // second answers 404.
  FakeServer server([](size_t i, const std::string&) {
    if (i == 0) return std::string();
    return Response(404, R"({"error":{"code":"not_found","message":"no such song"}})");
  });
  Client client({{server.url()}, "", std::chrono::milliseconds(5000)});
  auto r = client.Call("DELETE", "/music/songs/x");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 404);
  EXPECT_TRUE(r->retried);
  EXPECT_EQ(server.heads().size(), 2u);

  auto again = client.Call("DELETE", "/music/songs/x");  // answered at once
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->status, 404);
  EXPECT_FALSE(again->retried);
}

TEST(ClientTest, ADownloadCutShortResumesWithARange) {
  std::string song(300'000, '\0');
  for (size_t i = 0; i < song.size(); ++i) song[i] = static_cast<char>(i * 7 + i / 251);
  const std::string etag = "ETag: \"abc\"\r\n";
  std::atomic<uint64_t> range_from{0};
  FakeServer server([&](size_t i, const std::string& head) -> std::string {
    if (i == 0) {
      // Announces the whole song, sends a third of it, and hangs up.
      return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(song.size()) + "\r\n" + etag + "\r\n" +
             song.substr(0, 100'000);
    }
    // cpprestsdk writes "Name:value"; the client asks for what its target does not hold yet.
    const size_t at = head.find("Range:");
    if (at == std::string::npos) return Response(400, "no range: " + head);
    const size_t eq = head.find('=', at);
    const uint64_t from = std::stoull(head.substr(eq + 1));
    if (from == 0 || from > 100'000) return Response(400, "bad range: " + head);
    range_from = from;
    const std::string tail = song.substr(from);
    return "HTTP/1.1 206 Partial\r\nContent-Length: " + std::to_string(tail.size()) +
           "\r\nContent-Range: bytes " + std::to_string(from) + "-299999/300000\r\n" + etag +
           "Connection: close\r\n\r\n" + tail;
  });
  MemoryTarget target;
  Client client({{server.url()}, "", std::chrono::milliseconds(5000)});
  uint64_t last_done = 0;
  uint64_t last_total = 0;
  auto r = client.Download("song.mp3", &target, [&](uint64_t done, uint64_t total) {
    last_done = done;
    last_total = total;
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 206);
  EXPECT_TRUE(target.bytes == song) << target.bytes.size() << " bytes received";
  EXPECT_EQ(last_done, song.size());
  EXPECT_EQ(last_total, song.size());
  const auto heads = server.heads();
  ASSERT_EQ(heads.size(), 2u);
  EXPECT_EQ(heads[0].rfind("GET /music/stream/song.mp3 HTTP/1.1\r\n", 0), 0u) << heads[0];
  EXPECT_GT(range_from.load(), 0u);
}

TEST(ClientTest, ADownloadErrorKeepsTheErrorOutOfTheTarget) {
  FakeServer server([](size_t, const std::string&) {
    return Response(404, R"({"error":{"code":"not_found","message":"no song with file_id x.mp3"}})");
  });
  MemoryTarget target;
  Client client({{server.url()}, "", std::chrono::milliseconds(5000)});
  auto r = client.Download("x.mp3", &target, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(DescribeHttpError(r->status, r->body), "HTTP 404 not_found: no song with file_id x.mp3");
  EXPECT_FALSE(target.began);
  EXPECT_TRUE(target.bytes.empty());
}

TEST(ClientTest, PercentEncode) {
  EXPECT_EQ(PercentEncode("Hey-Jude_1.mp3~"), "Hey-Jude_1.mp3~");
  EXPECT_EQ(PercentEncode("a b&c=d/e?f#g+"), "a%20b%26c%3Dd%2Fe%3Ff%23g%2B");
  EXPECT_EQ(PercentEncode("B\xC3\xA9ta"), "B%C3%A9ta");
  EXPECT_EQ(PercentEncode(""), "");
}

TEST(ClientTest, DescribeHttpError) {
  EXPECT_EQ(DescribeHttpError(404, R"({"error":{"code":"not_found","message":"no song with file_id x"}})"),
            "HTTP 404 not_found: no song with file_id x");
  EXPECT_EQ(DescribeHttpError(502, "Bad Gateway\r\n"), "HTTP 502: Bad Gateway");
  EXPECT_EQ(DescribeHttpError(500, ""), "HTTP 500");
  EXPECT_EQ(DescribeHttpError(400, R"({"other":1})"), R"(HTTP 400: {"other":1})");
}

TEST(ClientTest, ParseRetryAfter) {
  EXPECT_EQ(ParseRetryAfter("2"), 2.0);
  EXPECT_EQ(ParseRetryAfter("0"), 0.0);
  EXPECT_FALSE(ParseRetryAfter("").has_value());
  EXPECT_FALSE(ParseRetryAfter("soon").has_value());
  EXPECT_FALSE(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT").has_value());
}

TEST(ClientTest, NoNodeAnsweringIsUnavailableNamingEachEndpoint) {
  const std::string a = "http://127.0.0.1:" + std::to_string(ClosedPort());
  const std::string b = "http://127.0.0.1:" + std::to_string(ClosedPort());
  int notes = 0;
  ClientOptions options{{a, b}, "", std::chrono::milliseconds(1200)};
  options.on_retry = [&](const std::string&) { ++notes; };
  Client client(options);
  const auto start = std::chrono::steady_clock::now();
  auto r = client.Call("GET", "/cluster/status");
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find(a), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(b), std::string::npos) << r.status().message();
  EXPECT_GE(notes, 1);  // it went round more than once
  EXPECT_LT(took, std::chrono::seconds(5));
}

// The probe of the images' HEALTHCHECK (probe.h): one GET, healthy only on a 2xx.
TEST(ProbeTest, SplitUrl) {
  auto a = SplitUrl("http://127.0.0.1:8080/healthz");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->first, "http://127.0.0.1:8080");
  EXPECT_EQ(a->second, "/healthz");
  auto b = SplitUrl("https://node-1:8080");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->second, "/");
  auto c = SplitUrl("http://h:1?x=1");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->first, "http://h:1");
  EXPECT_EQ(c->second, "/?x=1");
  EXPECT_FALSE(SplitUrl("127.0.0.1:8080/healthz").ok());
  EXPECT_FALSE(SplitUrl("ftp://h/x").ok());
  EXPECT_FALSE(SplitUrl("http:///healthz").ok());
}

TEST(ProbeTest, HealthyOnlyOnA2xxAndNeverRetries) {
  FakeServer server([](size_t i, const std::string&) {
    if (i == 0) return Response(204, "");
    return Response(503, R"({"error":{"code":"unavailable","message":"no leader"}})", "Retry-After: 0\r\n");
  });
  EXPECT_TRUE(Probe(server.url() + "/readyz").ok());
  const Status down = Probe(server.url() + "/readyz");
  EXPECT_EQ(down.code(), StatusCode::kUnavailable);
  EXPECT_EQ(down.message(), "GET " + server.url() + "/readyz: HTTP 503 unavailable: no leader");
  const auto heads = server.heads();
  ASSERT_EQ(heads.size(), 2u);  // a 503 is not retried: the engine has its own retries
  EXPECT_EQ(heads[0].rfind("GET /readyz HTTP/1.1\r\n", 0), 0u) << heads[0];
}

TEST(ProbeTest, AClosedPortFailsFastWithTheCause) {
  const std::string url = "http://127.0.0.1:" + std::to_string(ClosedPort()) + "/healthz";
  const auto start = std::chrono::steady_clock::now();
  const Status s = Probe(url);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1000));
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.message().rfind("GET " + url + ": no answer (", 0), 0u) << s.message();
  EXPECT_EQ(s.message().find("no node answered"), std::string::npos) << s.message();
}

TEST(ProbeTest, ASilentServerFailsWithinTheTimeout) {
  // Accepts and never answers: the probe must end on its own, before the engine's timeout.
  FakeServer server([](size_t, const std::string&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    return Response(200, "");
  });
  const auto start = std::chrono::steady_clock::now();
  const Status s = Probe(server.url() + "/healthz", std::chrono::milliseconds(300));
  EXPECT_FALSE(s.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1400));
}

TEST(ProbeTest, CommandExitCodes) {
  FakeServer server([](size_t i, const std::string&) { return Response(i == 0 ? 200 : 500, "{}"); });
  EXPECT_EQ(RunProbeCommand("t", {server.url() + "/healthz"}), 0);
  EXPECT_EQ(RunProbeCommand("t", {server.url() + "/healthz", "--timeout-ms", "500"}), 1);  // the 500
  EXPECT_EQ(RunProbeCommand("t", {"http://127.0.0.1:" + std::to_string(ClosedPort()) + "/"}), 1);
  EXPECT_EQ(RunProbeCommand("t", {}), 2);
  EXPECT_EQ(RunProbeCommand("t", {"not-a-url"}), 2);
  EXPECT_EQ(RunProbeCommand("t", {server.url(), "--timeout-ms=0"}), 2);
  EXPECT_EQ(RunProbeCommand("t", {server.url(), "extra"}), 2);
}

}  // namespace
}  // namespace dispotify::rest
