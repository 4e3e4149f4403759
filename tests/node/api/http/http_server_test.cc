#include "node/api/http/http_server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <mutex>
#include <string>
#include <thread>

#include "node/api/http/multipart.h"
#include "node/api/http/range.h"
#include "tests/mocks/temp_dir.h"
#include "tests/node/api/http/test_client.h"
#include "tests/support/bytes.h"

namespace dispotify::api::http {
namespace {

using std::chrono::milliseconds;
using testing::ClientResponse;
using testing::TestClient;

using testing_bytes::Bytes;

// What handlers saw, for assertions from the test thread.
struct Observed {
  std::mutex mu;
  std::vector<Status> body_errors;
  std::atomic<int> handler_calls{0};
  std::atomic<int> producer_calls{0};

  void AddError(const Status& s) {
    std::lock_guard<std::mutex> lock(mu);
    body_errors.push_back(s);
  }
  std::vector<Status> Errors() {
    std::lock_guard<std::mutex> lock(mu);
    return body_errors;
  }
};

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions options = {}) {
    options.address = "127.0.0.1";
    options.port = 0;
    Router router;
    router.Get("/hello", [this](Request&, BodyReader&) {
      ++observed_.handler_calls;
      return Response::Text(200, "hello world");
    });
    router.Get("/echo/{a}/x/{b}", [](Request& req, BodyReader&) {
      std::string out = std::string(req.PathParam("a")) + "|" + std::string(req.PathParam("b")) + "|" +
                        std::string(req.Query("q").value_or("-")) + "|" +
                        std::string(req.Header("x-custom").value_or("-")) + "|" + req.method;
      return Response::Text(200, out);
    });
    router.Delete("/echo/{a}/x/{b}", [](Request&, BodyReader&) { return Response::Empty(204); });
    // Reads the whole body in pieces, answers its size and a checksum.
    router.Post(
        "/upload",
        [this](Request&, BodyReader& body) {
          ++observed_.handler_calls;
          std::vector<char> buf(64 * 1024);
          uint64_t size = 0;
          uint64_t hash = 1469598103934665603ULL;
          for (;;) {
            Result<size_t> n = body.Read(buf.data(), buf.size());
            if (!n.ok()) {
              observed_.AddError(n.status());
              return ErrorResponse(n.status());
            }
            if (*n == 0) break;
            for (size_t i = 0; i < *n; ++i)
              hash = (hash ^ static_cast<unsigned char>(buf[i])) * 1099511628211ULL;
            size += *n;
          }
          return Response::Text(200, std::to_string(size) + ":" + std::to_string(hash));
        },
        RouteOptions{.max_body_bytes = 64 * 1024 * 1024});
    router.Post(
        "/small",
        [this](Request&, BodyReader& body) {
          ++observed_.handler_calls;
          auto all = ReadBodyToString(body, 1 << 20);
          if (!all.ok()) {
            observed_.AddError(all.status());
            return ErrorResponse(all.status());
          }
          return Response::Text(200, *all);
        },
        RouteOptions{.max_body_bytes = 1000});
    // Answers without reading the body.
    router.Post("/reject", [this](Request&, BodyReader&) {
      ++observed_.handler_calls;
      return JsonError(403, "forbidden", "no");
    });
    router.Get("/throw", [](Request&, BodyReader&) -> Response { throw std::runtime_error("boom"); });
    router.Get("/stream", [this](Request& req, BodyReader&) {
      const bool known = req.Query("known").has_value();
      auto data = std::make_shared<std::string>(Bytes(1 << 20, 7));
      auto pos = std::make_shared<size_t>(0);
      Producer produce = [this, data, pos](char* buf, size_t max) -> Result<size_t> {
        ++observed_.producer_calls;
        size_t n = std::min({max, data->size() - *pos, size_t{10007}});  // odd pieces
        std::memcpy(buf, data->data() + *pos, n);
        *pos += n;
        return n;
      };
      return Response::Stream(200, std::move(produce),
                              known ? std::optional<uint64_t>(data->size()) : std::nullopt,
                              "application/octet-stream");
    });
    router.Get("/stream-fails", [](Request&, BodyReader&) {
      auto sent = std::make_shared<size_t>(0);
      Producer produce = [sent](char* buf, size_t max) -> Result<size_t> {
        if (*sent >= 100000) return Status::Unavailable("peer went away");
        size_t n = std::min<size_t>(max, 1000);
        std::memset(buf, 'z', n);
        *sent += n;
        return n;
      };
      return Response::Stream(200, std::move(produce), 1000000, "application/octet-stream");
    });
    router.Get("/file", [this](Request& req, BodyReader&) -> Response {
      auto r = Response::FileAtPath(200, file_path_, 0, std::nullopt, "audio/mpeg");
      if (!r.ok()) return ErrorResponse(r.status());
      if (auto range_header = req.Header("Range")) {
        uint64_t len = std::get<FileRegion>(r->body()).length;
        RangeResult range = ParseRange(*range_header, len);
        if (range.kind == RangeKind::kUnsatisfiable) {
          Response e = JsonError(416, "range_not_satisfiable", "bad range");
          e.AddHeader("Content-Range", UnsatisfiedContentRange(len));
          return e;
        }
        if (range.kind == RangeKind::kSatisfiable) {
          auto part =
              Response::FileAtPath(206, file_path_, range.range.first, range.range.length(), "audio/mpeg");
          if (!part.ok()) return ErrorResponse(part.status());
          part->AddHeader("Content-Range", ContentRangeHeader(range.range, len));
          return std::move(*part);
        }
      }
      return std::move(*r);
    });
    // Blocks until released (graceful shutdown test).
    router.Get("/slow", [this](Request&, BodyReader&) {
      slow_entered_.set_value();
      slow_release_.get_future().wait();
      return Response::Text(200, "finished");
    });
    router.Post(
        "/multipart",
        [](Request& req, BodyReader& body) {
          auto boundary = BoundaryFromContentType(req.Header("Content-Type").value_or(""));
          if (!boundary.ok()) return ErrorResponse(boundary.status());
          MultipartReader mp(body, *boundary);
          std::string out;
          char buf[4096];
          for (;;) {
            Result<bool> next = mp.NextPart();
            if (!next.ok()) return ErrorResponse(next.status());
            if (!*next) break;
            size_t size = 0;
            for (;;) {
              Result<size_t> n = mp.Read(buf, sizeof(buf));
              if (!n.ok()) return ErrorResponse(n.status());
              if (*n == 0) break;
              size += *n;
            }
            out += mp.part().name + "=" + std::to_string(size) + ";";
          }
          return Response::Text(200, out);
        },
        RouteOptions{.max_body_bytes = 64 * 1024 * 1024});

    server_ = std::make_unique<HttpServer>(options, std::move(router));
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_NE(server_->port(), 0);
  }

  void TearDown() override {
    if (server_) server_->Stop(milliseconds(2000));
  }

  uint16_t port() const { return server_->port(); }

  std::optional<ClientResponse> Get(const std::string& target, const std::string& extra_headers = "") {
    TestClient c(port());
    if (!c.Send("GET " + target + " HTTP/1.1\r\nHost: x\r\n" + extra_headers + "\r\n")) return std::nullopt;
    return c.ReadResponse();
  }

  std::unique_ptr<HttpServer> server_;
  Observed observed_;
  std::string file_path_;
  std::promise<void> slow_entered_;
  std::promise<void> slow_release_;
};

TEST_F(HttpServerTest, RoutesWithParamsQueryAndHeaders) {
  StartServer();
  auto r = Get("/hello");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello world");
  EXPECT_EQ(r->Header("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(r->Header("content-length"), "11");

  r = Get("/echo/a%20b/x/c%2Fd?q=hello+w%C3%B6rld&z=1", "X-CUSTOM: yes\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "a b|c/d|hello w\xC3\xB6rld|yes|GET");
}

TEST_F(HttpServerTest, NotFoundAndMethodNotAllowedAreJson) {
  StartServer();
  auto r = Get("/nope");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->Header("content-type"), "application/json");
  EXPECT_NE(r->body.find("{\"error\": {\"code\": \"not_found\""), std::string::npos) << r->body;

  TestClient c(port());
  ASSERT_TRUE(c.Send("PUT /echo/1/x/2 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
  r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->Header("allow"), "DELETE, GET, HEAD");
  EXPECT_NE(r->body.find("\"method_not_allowed\""), std::string::npos);
  // The connection survives a 404/405 without a body.
  ASSERT_TRUE(c.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);

  ASSERT_TRUE(c.Send("GET /echo/%zz/x/1 HTTP/1.1\r\nHost: x\r\n\r\n"));
  r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
}

TEST_F(HttpServerTest, KeepAliveAndPipelining) {
  StartServer();
  TestClient c(port());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = c.ReadResponse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->Header("connection"), "");
  }
  // Two requests in one write, then a POST with a body, then one asking to close.
  ASSERT_TRUE(
      c.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /echo/1/x/2 HTTP/1.1\r\nHost: x\r\n\r\n"
             "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde"
             "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  auto r1 = c.ReadResponse();
  auto r2 = c.ReadResponse();
  auto r3 = c.ReadResponse();
  auto r4 = c.ReadResponse();
  ASSERT_TRUE(r1 && r2 && r3 && r4);
  EXPECT_EQ(r1->body, "hello world");
  EXPECT_EQ(r2->body, "1|2|-|-|GET");
  EXPECT_EQ(r3->body, "abcde");
  EXPECT_EQ(r4->Header("connection"), "close");
  EXPECT_TRUE(c.ServerClosed());
  EXPECT_EQ(observed_.handler_calls.load(), 6);  // /hello x5, /small

  // HTTP/1.0 closes by default and keeps alive on request.
  TestClient old(port());
  ASSERT_TRUE(old.Send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  auto r = old.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->Header("connection"), "keep-alive");
  ASSERT_TRUE(old.Send("GET /hello HTTP/1.0\r\n\r\n"));
  r = old.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_TRUE(old.ServerClosed());
}

TEST_F(HttpServerTest, BodyLimitWithoutExpect) {
  StartServer();
  TestClient c(port());
  // Announces more than the route's 1000 bytes: 413 before any body byte is read.
  ASSERT_TRUE(
      c.Send("POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + std::string(5000, 'a')));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(r->body.find("\"payload_too_large\""), std::string::npos);
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_EQ(observed_.handler_calls.load(), 0);
  EXPECT_TRUE(c.ServerClosed());

  // A chunked body that grows past the limit: the handler's Read fails, the server answers 413.
  TestClient chunked(port());
  std::string req = "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 5; ++i) req += "12c\r\n" + std::string(300, 'b') + "\r\n";
  req += "0\r\n\r\n";
  ASSERT_TRUE(chunked.Send(req));
  r = chunked.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  auto errors = observed_.Errors();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].code(), StatusCode::kInvalidArgument);
}

TEST_F(HttpServerTest, ExpectContinue) {
  StartServer();
  {
    // Too large: 413 at once, no 100 Continue, the body is never sent.
    TestClient c(port());
    ASSERT_TRUE(
        c.Send("POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n"));
    auto r = c.ReadResponse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    EXPECT_TRUE(c.ServerClosed());
  }
  {
    // Accepted: the 100 comes when the handler reads; then the body; then the answer.
    TestClient c(port());
    ASSERT_TRUE(
        c.Send("POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n"));
    auto r = c.ReadResponse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 100);
    ASSERT_TRUE(c.Send("xyz"));
    r = c.ReadResponse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "xyz");
    EXPECT_EQ(r->Header("connection"), "");  // kept alive
  }
  {
    // A handler that answers without reading: no 100, the final answer, then close.
    TestClient c(port());
    ASSERT_TRUE(
        c.Send("POST /reject HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n"));
    auto r = c.ReadResponse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 403);
    EXPECT_EQ(r->Header("connection"), "close");
  }
  {
    TestClient c(port());
    ASSERT_TRUE(
        c.Send("POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: something-else\r\n\r\n"));
    auto r = c.ReadResponse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 417);
  }
}

TEST_F(HttpServerTest, HugeHeadersAre431) {
  StartServer();
  TestClient c(port());
  ASSERT_TRUE(c.Send("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20 * 1024, 'h') + "\r\n\r\n"));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_NE(r->body.find("\"header_too_large\""), std::string::npos);
  EXPECT_EQ(observed_.handler_calls.load(), 0);
}

TEST_F(HttpServerTest, MalformedRequestIs400) {
  StartServer();
  TestClient c(port());
  ASSERT_TRUE(c.Send("GET /hello HTTP/1.1\r\nHost x\r\n\r\n"));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("\"bad_request\""), std::string::npos);
}

TEST_F(HttpServerTest, SlowBodyTimesOut) {
  ServerOptions options;
  options.body_read_timeout = milliseconds(300);
  StartServer(options);
  TestClient c(port());
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(c.Send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789"));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_NE(r->body.find("\"request_timeout\""), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15));
  auto errors = observed_.Errors();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].code(), StatusCode::kTimeout);
}

TEST_F(HttpServerTest, SlowHeadTimesOutAndIdleConnectionsClose) {
  ServerOptions options;
  options.header_timeout = milliseconds(300);
  options.idle_timeout = milliseconds(300);
  StartServer(options);
  TestClient slow(port());
  ASSERT_TRUE(slow.Send("GET /hello HTTP/1.1\r\nHost:"));
  auto r = slow.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);

  TestClient idle(port());
  ASSERT_TRUE(idle.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  r = idle.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_TRUE(idle.ServerClosed());  // after idle_timeout
}

TEST_F(HttpServerTest, TruncatedBodyIsAnErrorForTheHandler) {
  StartServer();
  TestClient c(port());
  ASSERT_TRUE(c.Send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789"));
  c.ShutdownWrite();
  auto r = c.ReadResponse();  // half-closed: the answer can still arrive
  if (r) {
    EXPECT_EQ(r->status, 400);
  }
  for (int i = 0; i < 500 && observed_.Errors().empty(); ++i) std::this_thread::sleep_for(milliseconds(10));
  auto errors = observed_.Errors();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].code(), StatusCode::kAborted);
}

TEST_F(HttpServerTest, LargeUploadsStream) {
  StartServer();
  const std::string data = Bytes(10 * 1024 * 1024 + 123, 3);
  uint64_t hash = 1469598103934665603ULL;
  for (char ch : data) hash = (hash ^ static_cast<unsigned char>(ch)) * 1099511628211ULL;
  const std::string expected = std::to_string(data.size()) + ":" + std::to_string(hash);

  TestClient c(port());
  ASSERT_TRUE(c.Send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(data.size()) +
                     "\r\n\r\n" + data));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, expected);

  // The same bytes chunked, in uneven chunks.
  std::string req = "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  size_t pos = 0;
  size_t step = 1;
  while (pos < data.size()) {
    size_t n = std::min(step, data.size() - pos);
    char size_line[32];
    std::snprintf(size_line, sizeof(size_line), "%zx\r\n", n);
    req += size_line;
    req.append(data, pos, n);
    req += "\r\n";
    pos += n;
    step = step * 3 + 1;
  }
  req += "0\r\n\r\n";
  ASSERT_TRUE(c.Send(req));
  r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, expected);
}

TEST_F(HttpServerTest, MultipartUpload) {
  StartServer();
  const std::string file = Bytes(3 * 1024 * 1024, 9);
  const std::string body =
      "--zzBOUNDzz\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nSong\r\n"
      "--zzBOUNDzz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp3\"\r\n"
      "Content-Type: audio/mpeg\r\n\r\n" +
      file + "\r\n--zzBOUNDzz--\r\n";
  TestClient c(port());
  ASSERT_TRUE(c.Send(
      "POST /multipart HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=zzBOUNDzz\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "title=4;file=" + std::to_string(file.size()) + ";");
}

TEST_F(HttpServerTest, StreamedResponsesAreByteExact) {
  StartServer();
  const std::string expected = Bytes(1 << 20, 7);
  TestClient c(port());
  ASSERT_TRUE(c.Send("GET /stream?known=1 HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->chunked);
  EXPECT_EQ(r->Header("content-length"), std::to_string(expected.size()));
  EXPECT_TRUE(r->body == expected);

  ASSERT_TRUE(c.Send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"));
  r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->chunked);
  EXPECT_TRUE(r->body == expected);

  // HTTP/1.0 cannot take chunks: the body ends with the connection.
  TestClient old(port());
  ASSERT_TRUE(old.Send("GET /stream HTTP/1.0\r\n\r\n"));
  r = old.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_TRUE(r->body == expected);
}

TEST_F(HttpServerTest, FailingProducerTruncatesTheResponse) {
  StartServer();
  TestClient c(port());
  ASSERT_TRUE(c.Send("GET /stream-fails HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = c.ReadResponse();
  EXPECT_FALSE(r);  // the connection closes before the announced length
}

TEST_F(HttpServerTest, SendfileResponsesAndRanges) {
  mocks::TempDir dir;
  file_path_ = dir.Sub("song.mp3");
  const size_t size = 64 * 1024 * 1024;
  const std::string data = Bytes(size, 11);
  {
    FILE* f = std::fopen(file_path_.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(data.data(), 1, data.size(), f), data.size());
    std::fclose(f);
  }
  StartServer();
  TestClient c(port());
  ASSERT_TRUE(c.Send("GET /file HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("content-type"), "audio/mpeg");
  ASSERT_EQ(r->body.size(), size);
  EXPECT_TRUE(r->body == data);

  // The same keep-alive connection serves the whole file again (the figures are the streaming
  // benchmark's, bench/run-api-bench.sh; a test never judges speed).
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.Send("GET /file HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string head;
    char ch;
    while (head.size() < 4 || head.compare(head.size() - 4, 4, "\r\n\r\n") != 0) {
      ASSERT_EQ(::recv(c.fd(), &ch, 1, 0), 1);
      head.push_back(ch);
    }
    EXPECT_NE(head.find("Content-Length: " + std::to_string(size)), std::string::npos) << head;
    ASSERT_EQ(c.DiscardBody(size), size);
  }

  ASSERT_TRUE(c.Send("GET /file HTTP/1.1\r\nHost: x\r\nRange: bytes=1000-1999\r\n\r\n"));
  r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 206);
  EXPECT_EQ(r->Header("content-range"), "bytes 1000-1999/" + std::to_string(size));
  EXPECT_TRUE(r->body == data.substr(1000, 1000));

  ASSERT_TRUE(c.Send("GET /file HTTP/1.1\r\nHost: x\r\nRange: bytes=-10\r\n\r\n"));
  r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 206);
  EXPECT_TRUE(r->body == data.substr(size - 10));

  ASSERT_TRUE(c.Send("GET /file HTTP/1.1\r\nHost: x\r\nRange: bytes=" + std::to_string(size) + "-\r\n\r\n"));
  r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 416);
  EXPECT_EQ(r->Header("content-range"), "bytes */" + std::to_string(size));

  // HEAD: the head of the GET, with its length, and no body.
  ASSERT_TRUE(c.Send("HEAD /file HTTP/1.1\r\nHost: x\r\n\r\n"));
  r = c.ReadResponse(/*head_request=*/true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("content-length"), std::to_string(size));
  // The next response on the connection comes right after the head.
  ASSERT_TRUE(c.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "hello world");
}

TEST_F(HttpServerTest, HeadSendsNoBody) {
  StartServer();
  TestClient c(port());
  ASSERT_TRUE(c.Send("HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = c.ReadResponse(true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("content-length"), "11");
  ASSERT_TRUE(c.Send("HEAD /stream?known=1 HTTP/1.1\r\nHost: x\r\n\r\n"));
  r = c.ReadResponse(true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->Header("content-length"), std::to_string(1 << 20));
  EXPECT_EQ(observed_.producer_calls.load(), 0);
  ASSERT_TRUE(c.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "hello world");  // nothing stray was sent after the heads
}

TEST_F(HttpServerTest, HandlerExceptionIs500) {
  StartServer();
  auto r = Get("/throw");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->body, "{\"error\": {\"code\": \"internal\", \"message\": \"internal error\"}}");
}

TEST_F(HttpServerTest, ConnectionLimitAnswers503) {
  ServerOptions options;
  options.max_connections = 1;
  StartServer(options);
  TestClient first(port());
  ASSERT_TRUE(first.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(first.ReadResponse());  // accepted and still open
  TestClient second(port());
  ASSERT_TRUE(second.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = second.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_NE(r->body.find("\"service_unavailable\""), std::string::npos);
  EXPECT_EQ(server_->stats().connections_rejected, 1u);
}

TEST_F(HttpServerTest, GracefulShutdownFinishesInFlightRequests) {
  StartServer();
  TestClient idle(port());
  ASSERT_TRUE(idle.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(idle.ReadResponse());

  TestClient busy(port());
  ASSERT_TRUE(busy.Send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
  slow_entered_.get_future().wait();

  // A jthread: joined even when an assertion below returns early.
  std::jthread stopper([this] { server_->Stop(std::chrono::seconds(20)); });
  // The idle keep-alive connection is closed at once; new connections are refused.
  EXPECT_TRUE(idle.ServerClosed());
  bool refused = false;
  for (int i = 0; i < 200 && !refused; ++i) {
    TestClient late(port(), 2000);
    refused =
        !late.connected() || (late.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") && !late.ReadResponse());
    if (!refused) std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(refused);

  slow_release_.set_value();
  auto r = busy.ReadResponse();
  ASSERT_TRUE(r) << "no response to the in-flight request; server: " << server_->stats().open_connections
                 << " connections open, " << server_->stats().requests << " requests, "
                 << server_->stats().connections_accepted << " accepted";
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "finished");
  EXPECT_EQ(r->Header("connection"), "close");
  stopper.join();
  EXPECT_EQ(server_->stats().open_connections, 0u);
}

TEST_F(HttpServerTest, ShutdownDeadlineCutsStuckClients) {
  StartServer();
  // A handler stuck reading a body that never comes is released by the deadline.
  TestClient c(port());
  ASSERT_TRUE(c.Send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"));
  for (int i = 0; i < 500 && observed_.handler_calls.load() == 0; ++i)
    std::this_thread::sleep_for(milliseconds(10));
  const auto start = std::chrono::steady_clock::now();
  server_->Stop(milliseconds(200));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15));
  auto errors = observed_.Errors();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].code(), StatusCode::kAborted);
}

TEST_F(HttpServerTest, IdleConnectionsHoldNoWorker) {
  ServerOptions options;
  options.worker_threads = 1;
  StartServer(options);
  std::vector<std::unique_ptr<TestClient>> idle;
  for (int i = 0; i < 5; ++i) {
    idle.push_back(std::make_unique<TestClient>(port()));
    ASSERT_TRUE(idle.back()->Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_TRUE(idle.back()->ReadResponse());
  }
  // A half-sent head does not hold the worker either.
  TestClient partial(port());
  ASSERT_TRUE(partial.Send("GET /hello HTTP/1.1\r\nHo"));
  auto r = Get("/hello");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_GE(server_->stats().open_connections, 6u);
}

TEST_F(HttpServerTest, ConcurrentClients) {
  ServerOptions options;
  options.worker_threads = 3;
  StartServer(options);
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([this, t, &ok] {
      TestClient c(port());
      for (int i = 0; i < 50; ++i) {
        std::string body = "client " + std::to_string(t) + " request " + std::to_string(i);
        if (!c.Send("POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\n\r\n" + body)) {
          return;
        }
        auto r = c.ReadResponse();
        if (r && r->status == 200 && r->body == body) ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 8 * 50);
  EXPECT_EQ(server_->stats().requests, 8u * 50u);
}

TEST(HttpServerStartTest, BadAddressAndBusyPort) {
  ServerOptions options;
  options.address = "not-an-ip";
  options.port = 0;
  HttpServer bad(options, Router());
  EXPECT_EQ(bad.Start().code(), StatusCode::kInvalidArgument);

  options.address = "127.0.0.1";
  HttpServer first(options, Router());
  ASSERT_TRUE(first.Start().ok());
  options.port = first.port();
  HttpServer second(options, Router());
  EXPECT_EQ(second.Start().code(), StatusCode::kIoError);
  EXPECT_EQ(first.Start().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace dispotify::api::http
