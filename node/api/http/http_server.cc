#include "node/api/http/http_server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/compose.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <exception>
#include <future>
#include <limits>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_set>
#include <vector>

#include "common/logging.h"
#include "common/openssl_error.h"

namespace dispotify::api::http {

namespace {

// The client's X-Request-Id when it is a sane token (1..64 of [A-Za-z0-9._-]: it goes into logs,
// audit entries and a response header), else a fresh random one (16 hex digits). Not a secret:
// it only ties a client's report to the node's records.
std::string RequestIdOf(const HeaderMap& headers) {
  if (auto sent = headers.Get("X-Request-Id");
      sent && !sent->empty() && sent->size() <= 64 && std::all_of(sent->begin(), sent->end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
      })) {
    return std::string(*sent);
  }
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using std::chrono::milliseconds;

// Bytes moved per read call.
constexpr size_t kIoChunk = 64 * 1024;
// Bytes a streamed response asks its producer for at a time; also the most it holds in memory.
// Larger than kIoChunk because a producer that decrypts (a sealed blob: four 64 KiB chunks per
// call) or relays pays a fixed cost per call and per send(2). Full streams of sealed files against
// sendfile of plaintext ones (bench/dataplane_bench.cc --only encryption, a loaded 2-core machine):
// 64 KiB pieces 0.81x (1 client) and 0.65x (4 clients) in one run; 256 KiB 0.90-1.06x and
// 0.74-1.13x over three runs.
constexpr size_t kStreamChunk = 256 * 1024;
// Room before a produced chunk for its chunked-encoding size line.
constexpr size_t kChunkPrefix = 16;

std::string Errno(int err) {
  char buf[128];
  return strerror_r(err, buf, sizeof(buf));
}

int PollTimeout(milliseconds timeout) {
  if (timeout.count() <= 0) return 0;
  if (timeout.count() > INT32_MAX) return INT32_MAX;
  return static_cast<int>(timeout.count());
}

// Waits until `fd` is ready for `events`: 1 ready (or hung up / in error: the next call says
// which), 0 on timeout, -1 with errno.
int WaitFd(int fd, short events, milliseconds timeout) {
  pollfd p{fd, events, 0};
  for (;;) {
    int r = ::poll(&p, 1, PollTimeout(timeout));
    if (r < 0 && errno == EINTR) continue;
    return r;
  }
}

// Holds partial segments back while a file goes out (nginx's tcp_nopush): sendfile feeds the socket
// page by page, and with TCP_NODELAY each piece can leave as its own small segment. Corked, the head
// shares the first segment and the rest goes in full ones: +35% throughput on loopback here. The
// release pushes out the tail. fd < 0: does nothing.
class CorkGuard {
 public:
  explicit CorkGuard(int fd) : fd_(fd) { Set(1); }
  ~CorkGuard() { Set(0); }
  CorkGuard(const CorkGuard&) = delete;
  CorkGuard& operator=(const CorkGuard&) = delete;

 private:
  void Set(int on) const {
    if (fd_ >= 0) ::setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
  }
  int fd_;
};

// sendfile(2) cannot take MSG_NOSIGNAL: SIGPIPE is blocked in the worker threads, and a pending
// one is consumed after EPIPE.
void ConsumePendingSigpipe() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  timespec zero{0, 0};
  while (::sigtimedwait(&set, nullptr, &zero) == SIGPIPE) {
  }
}

// Writes all of `iov`, blocking on a non-blocking socket with poll; at most `timeout` without
// progress. kTimeout, or kAborted when the peer is gone. Adds the bytes written to `*sent` (when
// not null), also on failure.
Status SendAll(int fd, iovec* iov, int iovcnt, milliseconds timeout, uint64_t* sent = nullptr) {
  while (iovcnt > 0) {
    if (iov->iov_len == 0) {
      ++iov;
      --iovcnt;
      continue;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(iovcnt);
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        int r = WaitFd(fd, POLLOUT, timeout);
        if (r == 0) return Status::Timeout("client accepted no response bytes in time");
        if (r < 0) return Status::IoError("poll: " + Errno(errno));
        continue;
      }
      return Status::Aborted("send: " + Errno(errno));
    }
    if (sent != nullptr) *sent += static_cast<uint64_t>(n);
    auto left = static_cast<size_t>(n);
    while (iovcnt > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --iovcnt;
    }
    if (iovcnt > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
  return Status::Ok();
}

Status SendFileRegion(int sock, int file_fd, uint64_t offset, uint64_t length, milliseconds timeout,
                      uint64_t* sent) {
  auto off = static_cast<off_t>(offset);
  uint64_t left = length;
  while (left > 0) {
    size_t count = left < (1ULL << 30) ? static_cast<size_t>(left) : (1U << 30);
    ssize_t n = ::sendfile(sock, file_fd, &off, count);
    if (n > 0) {
      left -= static_cast<uint64_t>(n);
      *sent += static_cast<uint64_t>(n);
      continue;
    }
    if (n == 0) return Status::IoError("file shorter than the response's Content-Length");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      int r = WaitFd(sock, POLLOUT, timeout);
      if (r == 0) return Status::Timeout("client accepted no response bytes in time");
      if (r < 0) return Status::IoError("poll: " + Errno(errno));
      continue;
    }
    int err = errno;
    if (err == EPIPE) ConsumePendingSigpipe();
    return Status::Aborted("sendfile: " + Errno(err));
  }
  return Status::Ok();
}

// ---- TLS over the non-blocking socket (HTTPS). OpenSSL reads and writes the socket itself (a
// socket BIO); after WANT_READ / WANT_WRITE the caller waits for that readiness and retries the
// same call with the same arguments.

short PollEventsFor(int ssl_error) {
  return ssl_error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
}

// After an SSL write call that made no progress (returned `ret`): OK to call it again, the socket
// being ready for what OpenSSL wants (waited for here, at most `timeout`), or why the response
// cannot go on.
Status AwaitTlsRetry(SSL* ssl, int fd, int ret, milliseconds timeout, std::string_view what) {
  const int err = SSL_get_error(ssl, ret);
  if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
    const int r = WaitFd(fd, PollEventsFor(err), timeout);
    if (r == 0) return Status::Timeout("client accepted no response bytes in time");
    if (r < 0) return Status::IoError("poll: " + Errno(errno));
    return Status::Ok();
  }
  if (err == SSL_ERROR_SYSCALL && errno == EPIPE) ConsumePendingSigpipe();
  return Status::Aborted(std::string(what) + ": " + SslIoError(err));
}

// SSL_write of all of `data`, blocking with poll; at most `timeout` without progress.
Status TlsWrite(SSL* ssl, int fd, const char* data, size_t len, milliseconds timeout, uint64_t* sent) {
  while (len > 0) {
    const int want = static_cast<int>(std::min<size_t>(len, 1U << 30));
    ERR_clear_error();
    const int n = SSL_write(ssl, data, want);
    if (n > 0) {
      data += n;
      len -= static_cast<size_t>(n);
      if (sent != nullptr) *sent += static_cast<uint64_t>(n);
      continue;
    }
    if (Status s = AwaitTlsRetry(ssl, fd, n, timeout, "TLS write"); !s.ok()) return s;
  }
  return Status::Ok();
}

// Each SSL_write is at least one record: small pieces (a head and a short body) are joined so that
// they travel as one.
constexpr size_t kTlsCoalesce = 16 * 1024;

Status TlsSendAll(SSL* ssl, int fd, const iovec* iov, int iovcnt, milliseconds timeout, uint64_t* sent) {
  size_t total = 0;
  for (int i = 0; i < iovcnt; ++i) total += iov[i].iov_len;
  if (iovcnt > 1 && total <= kTlsCoalesce) {
    std::string joined;
    joined.reserve(total);
    for (int i = 0; i < iovcnt; ++i) joined.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
    return TlsWrite(ssl, fd, joined.data(), joined.size(), timeout, sent);
  }
  for (int i = 0; i < iovcnt; ++i) {
    DISPOTIFY_RETURN_IF_ERROR(
        TlsWrite(ssl, fd, static_cast<const char*>(iov[i].iov_base), iov[i].iov_len, timeout, sent));
  }
  return Status::Ok();
}

// A file region over TLS: SSL_sendfile when the kernel encrypts (kernel TLS took over the send
// side at the handshake: no copy to user space); otherwise read into a buffer and SSL_write it.
Status TlsSendFileRegion(SSL* ssl, int sock, int file_fd, uint64_t offset, uint64_t length,
                         milliseconds timeout, uint64_t* sent) {
#ifndef OPENSSL_NO_KTLS
  if (BIO_get_ktls_send(SSL_get_wbio(ssl))) {
    auto off = static_cast<off_t>(offset);
    uint64_t left = length;
    while (left > 0) {
      const size_t count = left < (1ULL << 30) ? static_cast<size_t>(left) : (1U << 30);
      ERR_clear_error();
      const ossl_ssize_t n = SSL_sendfile(ssl, file_fd, off, count, 0);
      if (n > 0) {
        off += n;
        left -= static_cast<uint64_t>(n);
        *sent += static_cast<uint64_t>(n);
        continue;
      }
      if (Status s = AwaitTlsRetry(ssl, sock, static_cast<int>(n), timeout, "SSL_sendfile"); !s.ok())
        return s;
    }
    return Status::Ok();
  }
#endif
  std::unique_ptr<char[]> buf(new char[kStreamChunk]);
  uint64_t done = 0;
  while (done < length) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kStreamChunk, length - done));
    const ssize_t n = ::pread(file_fd, buf.get(), want, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IoError("read: " + Errno(errno));
    }
    if (n == 0) return Status::IoError("file shorter than the response's Content-Length");
    DISPOTIFY_RETURN_IF_ERROR(TlsWrite(ssl, sock, buf.get(), static_cast<size_t>(n), timeout, sent));
    done += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

// The error a failed SSL_read reports to Beast: a clean close as EOF, anything else as a lost
// connection (system category, which the callers treat as "the client went away").
error_code TlsReadError(int ssl_error) {
  if (ssl_error == SSL_ERROR_ZERO_RETURN) return asio::error::eof;
  if (ssl_error == SSL_ERROR_SYSCALL && errno == 0) return asio::error::eof;
  DLOG_DEBUG << "TLS read failed: " << SslIoError(ssl_error);
  ERR_clear_error();
  return asio::error::connection_aborted;
}

// An AsyncReadStream of the decrypted bytes, for Beast's asynchronous head read: SSL_read, and
// when OpenSSL needs the socket, an asynchronous wait for it (no thread held). A read that succeeds
// at once completes through a post, never inside the initiating call (Asio's rule).
class TlsAsyncReadStream {
 public:
  using executor_type = tcp::socket::executor_type;
  TlsAsyncReadStream(tcp::socket& socket, SSL* ssl) : socket_(socket), ssl_(ssl) {}
  executor_type get_executor() { return socket_.get_executor(); }

  template <class MutableBufferSequence, class ReadToken>
  auto async_read_some(const MutableBufferSequence& buffers, ReadToken&& token) {
    return asio::async_compose<ReadToken, void(error_code, size_t)>(
        ReadOp<MutableBufferSequence>{this, buffers}, token, socket_);
  }

 private:
  template <class MutableBufferSequence>
  struct ReadOp {
    TlsAsyncReadStream* stream;
    MutableBufferSequence buffers;
    size_t done = 0;
    bool finished = false;
    error_code result;

    template <class Self>
    void operator()(Self& self, error_code ec = {}) {
      if (finished) {
        self.complete(result, done);
        return;
      }
      if (ec) {
        self.complete(ec, 0);
        return;
      }
      asio::mutable_buffer b;
      for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
        b = *it;
        if (b.size() > 0) break;
      }
      if (b.size() == 0) return Finish(self, {}, 0);
      ERR_clear_error();
      const int n = SSL_read(stream->ssl_, b.data(), static_cast<int>(std::min<size_t>(b.size(), INT32_MAX)));
      if (n > 0) return Finish(self, {}, static_cast<size_t>(n));
      const int err = SSL_get_error(stream->ssl_, n);
      if (err == SSL_ERROR_WANT_READ) {
        stream->socket_.async_wait(tcp::socket::wait_read, std::move(self));
      } else if (err == SSL_ERROR_WANT_WRITE) {
        stream->socket_.async_wait(tcp::socket::wait_write, std::move(self));
      } else {
        Finish(self, TlsReadError(err), 0);
      }
    }

    template <class Self>
    void Finish(Self& self, error_code ec, size_t n) {
      finished = true;
      result = ec;
      done = n;
      asio::post(std::move(self));
    }
  };

  tcp::socket& socket_;
  SSL* ssl_;
};

// A SyncReadStream over a non-blocking socket (or TLS over it, when `ssl` is set) for Beast's
// synchronous read: each read_some waits at most `timeout` for data (beast::error::timeout
// otherwise).
class PollingReadStream {
 public:
  PollingReadStream(int fd, SSL* ssl, milliseconds timeout) : fd_(fd), ssl_(ssl), timeout_(timeout) {}

  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers, error_code& ec) {
    ec = {};
    asio::mutable_buffer b;
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
      b = *it;
      if (b.size() > 0) break;
    }
    if (b.size() == 0) return 0;
    if (ssl_ != nullptr) return TlsReadSome(b, ec);
    for (;;) {
      ssize_t n = ::recv(fd_, b.data(), b.size(), 0);
      if (n > 0) return static_cast<size_t>(n);
      if (n == 0) {
        ec = asio::error::eof;
        return 0;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        int r = WaitFd(fd_, POLLIN, timeout_);
        if (r == 0) {
          ec = beast::error::timeout;
          return 0;
        }
        if (r < 0) {
          ec = error_code(errno, boost::system::system_category());
          return 0;
        }
        continue;
      }
      ec = error_code(errno, boost::system::system_category());
      return 0;
    }
  }

  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers) {
    error_code ec;
    size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

 private:
  size_t TlsReadSome(asio::mutable_buffer b, error_code& ec) {
    for (;;) {
      ERR_clear_error();
      const int n = SSL_read(ssl_, b.data(), static_cast<int>(std::min<size_t>(b.size(), INT32_MAX)));
      if (n > 0) return static_cast<size_t>(n);
      const int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        int r = WaitFd(fd_, PollEventsFor(err), timeout_);
        if (r == 0) {
          ec = beast::error::timeout;
          return 0;
        }
        if (r < 0) {
          ec = error_code(errno, boost::system::system_category());
          return 0;
        }
        continue;
      }
      ec = TlsReadError(err);
      return 0;
    }
  }

  int fd_;
  SSL* ssl_;
  milliseconds timeout_;
};

// The connection's byte stream as the synchronous paths see it: the socket, or TLS over it.
struct Conn {
  int fd;
  SSL* ssl;  // null: plaintext
};

Status Send(const Conn& c, iovec* iov, int iovcnt, milliseconds timeout, uint64_t* sent = nullptr) {
  if (c.ssl != nullptr) return TlsSendAll(c.ssl, c.fd, iov, iovcnt, timeout, sent);
  return SendAll(c.fd, iov, iovcnt, timeout, sent);
}

Status Send(const Conn& c, std::string_view data, milliseconds timeout) {
  iovec iov{const_cast<char*>(data.data()), data.size()};
  return Send(c, &iov, 1, timeout);
}

using RequestParser = bhttp::request_parser<bhttp::buffer_body>;

// Why a body read failed, for the answer the server gives instead of the handler's.
enum class BodyFailure { kNone, kTooLarge, kTimeout, kMalformed, kTruncated, kClientGone };

class SocketBodyReader final : public BodyReader {
 public:
  SocketBodyReader(Conn conn, beast::flat_buffer& buffer, RequestParser& parser, const ServerOptions& options,
                   uint64_t max_body, bool expect_continue)
      : conn_(conn),
        buffer_(buffer),
        parser_(parser),
        options_(options),
        max_body_(max_body),
        expect_continue_(expect_continue) {}

  Result<size_t> Read(char* buf, size_t max) override {
    if (failure_ != BodyFailure::kNone) return error_;
    if (parser_.is_done() || max == 0) return size_t{0};
    if (expect_continue_ && !sent_continue_) {
      sent_continue_ = true;
      Status s = Send(conn_, "HTTP/1.1 100 Continue\r\n\r\n", options_.write_timeout);
      if (!s.ok()) return Fail(BodyFailure::kClientGone, Status::Aborted("connection lost: " + s.message()));
    }
    PollingReadStream stream(conn_.fd, conn_.ssl, options_.body_read_timeout);
    for (;;) {
      auto& body = parser_.get().body();
      body.data = buf;
      body.size = max;
      body.more = true;
      error_code ec;
      bhttp::read_some(stream, buffer_, parser_, ec);
      if (ec == bhttp::error::need_buffer) ec = {};
      const size_t n = max - body.size;
      body.data = nullptr;
      body.size = 0;
      bytes_read_ += n;
      if (ec) {
        Classify(ec);
        if (n > 0) return n;  // the bytes before the error are good; the error comes next call
        return error_;
      }
      if (n > 0) return n;
      if (parser_.is_done()) return size_t{0};
    }
  }

  BodyFailure failure() const { return failure_; }
  const Status& error() const { return error_; }
  bool sent_continue() const { return sent_continue_; }
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  Status Fail(BodyFailure f, Status s) {
    failure_ = f;
    error_ = std::move(s);
    return error_;
  }

  void Classify(const error_code& ec) {
    if (ec == bhttp::error::body_limit) {
      (void)Fail(BodyFailure::kTooLarge, Status::InvalidArgument("request body exceeds the limit of " +
                                                                 std::to_string(max_body_) + " bytes"));
    } else if (ec == beast::error::timeout) {
      (void)Fail(BodyFailure::kTimeout,
                 Status::Timeout("no request body bytes received for " +
                                 std::to_string(options_.body_read_timeout.count()) + " ms"));
    } else if (ec == bhttp::error::partial_message || ec == bhttp::error::end_of_stream ||
               ec == asio::error::eof) {
      (void)Fail(BodyFailure::kTruncated,
                 Status::Aborted("request body truncated: the client closed the connection"));
    } else if (ec.category() == boost::system::system_category()) {
      (void)Fail(BodyFailure::kClientGone, Status::Aborted("connection lost: " + ec.message()));
    } else {
      (void)Fail(BodyFailure::kMalformed, Status::InvalidArgument("malformed request body: " + ec.message()));
    }
  }

  const Conn conn_;
  beast::flat_buffer& buffer_;
  RequestParser& parser_;
  const ServerOptions& options_;
  const uint64_t max_body_;
  const bool expect_continue_;
  bool sent_continue_ = false;
  uint64_t bytes_read_ = 0;
  BodyFailure failure_ = BodyFailure::kNone;
  Status error_;
};

bool HasCrLf(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

bool IsFramingHeader(std::string_view name) {
  return EqualsIgnoreCase(name, "Content-Length") || EqualsIgnoreCase(name, "Transfer-Encoding") ||
         EqualsIgnoreCase(name, "Connection");
}

std::string HttpDate() {
  time_t now = ::time(nullptr);
  tm t{};
  ::gmtime_r(&now, &t);
  char buf[64];
  size_t n = ::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &t);
  return std::string(buf, n);
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

class Session;

}  // namespace

// Everything the sessions share; HttpServer::Impl owns one.
class ServerCore {
 public:
  ServerCore(ServerOptions options, Router router)
      : options_(std::move(options)),
        router_(std::move(router)),
        acceptor_(asio::make_strand(ioc_)),
        accept_retry_(acceptor_.get_executor()) {}

  Status Start();
  void Stop(milliseconds grace);
  uint16_t port() const { return port_; }
  ServerStats stats() const {
    ServerStats s;
    s.connections_accepted = accepted_.load();
    s.connections_rejected = rejected_.load();
    s.requests = requests_.load();
    s.tls_handshake_failures = handshake_failures_.load();
    s.open_connections = active_.load();
    return s;
  }

  const ServerOptions& options() const { return options_; }
  const Router& router() const { return router_; }
  bool stopping() const { return stopping_.load(); }
  void CountRequest() { requests_.fetch_add(1, std::memory_order_relaxed); }
  void CountHandshakeFailure() { handshake_failures_.fetch_add(1, std::memory_order_relaxed); }

  void Register(Session* s, bool counted) {
    std::lock_guard<std::mutex> lock(sessions_mu_);
    sessions_.insert(s);
    if (counted) active_.fetch_add(1);
  }
  void Unregister(Session* s, bool counted) {
    std::lock_guard<std::mutex> lock(sessions_mu_);
    sessions_.erase(s);
    if (counted) active_.fetch_sub(1);
    sessions_cv_.notify_all();
  }

 private:
  void DoAccept();

  const ServerOptions options_;
  const Router router_;

  std::atomic<bool> stopping_{false};
  std::atomic<size_t> active_{0};
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> rejected_{0};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> handshake_failures_{0};

  // Declared before ioc_: sessions destroyed with the io_context's pending handlers unregister.
  std::mutex sessions_mu_;
  std::condition_variable sessions_cv_;
  std::unordered_set<Session*> sessions_;

  asio::io_context ioc_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  tcp::acceptor acceptor_;
  asio::steady_timer accept_retry_;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;

  std::mutex state_mu_;  // Start/Stop
  bool started_ = false;
  bool stopped_ = false;
};

namespace {

// One client connection. Every member is used on the connection's strand only, except the socket's
// file descriptor for ForceShutdown (guarded by fd_mu_ against the close). With TLS, ssl_ is made
// from the context current at accept and lives as long as the session.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(ServerCore& server, tcp::socket socket, bool counted, SSL_CTX* tls)
      : server_(server),
        options_(server.options()),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        buffer_(std::max<size_t>(options_.max_header_bytes, 8 * 1024) + kIoChunk),
        counted_(counted) {
    error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);
    socket_.native_non_blocking(true, ec);
    tcp::endpoint remote = socket_.remote_endpoint(ec);
    if (!ec) remote_ = remote.address().to_string() + ":" + std::to_string(remote.port());
    if (tls != nullptr) {
      ssl_ = SSL_new(tls);
      if (ssl_ != nullptr && SSL_set_fd(ssl_, fd_) != 1) {
        SSL_free(ssl_);
        ssl_ = nullptr;
      }
      tls_failed_ = ssl_ == nullptr;
    }
    server_.Register(this, counted_);
  }
  ~Session() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    server_.Unregister(this, counted_);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void Start() {
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
      if (self->tls_failed_) {
        DLOG_WARN << "HTTPS: no TLS session for " << self->remote_ << ": " << SslIoError(0);
        self->Close();
      } else if (self->ssl_ != nullptr) {
        self->phase_ = Phase::kHandshake;
        self->ArmTimer(self->options_.header_timeout);
        self->Handshake();
      } else {
        self->WaitForRequest();
      }
    });
  }

  void Reject() {
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
      if (self->ssl_ != nullptr || self->tls_failed_) {  // a 503 would take a handshake first
        self->Close();
        return;
      }
      self->SendServerError(503, "service_unavailable", "too many open connections", /*head=*/false);
      self->LingerClose();
    });
  }

  // Graceful stop: an idle or lingering connection is closed; a busy one closes after its response.
  void StopIfIdle() {
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
      if (self->phase_ == Phase::kIdle || self->phase_ == Phase::kLinger ||
          self->phase_ == Phase::kHandshake) {
        error_code ec;
        self->socket_.cancel(ec);
      }
    });
  }

  // Any thread: makes every blocked or future read/write on the socket fail at once.
  void ForceShutdown() {
    std::lock_guard<std::mutex> lock(fd_mu_);
    if (!closed_) ::shutdown(fd_, SHUT_RDWR);
  }

 private:
  enum class Phase { kHandshake, kIdle, kHead, kBusy, kLinger, kClosed };
  enum class After { kKeepAlive, kClose };

  void ArmTimer(milliseconds timeout) {
    const uint64_t gen = ++timer_gen_;
    timed_out_ = false;
    timer_.expires_after(timeout);
    timer_.async_wait([self = shared_from_this(), gen](const error_code& ec) {
      if (ec || gen != self->timer_gen_) return;
      self->timed_out_ = true;
      error_code ignored;
      self->socket_.cancel(ignored);
    });
  }

  void CancelTimer() {
    ++timer_gen_;
    timer_.cancel();
  }

  // The server's side of the TLS handshake, resumed at each readiness OpenSSL asks for, under the
  // header timer armed by Start.
  void Handshake() {
    ERR_clear_error();
    const int r = SSL_accept(ssl_);
    if (r == 1) {
      CancelTimer();
      WaitForRequest();
      return;
    }
    const int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      socket_.async_wait(err == SSL_ERROR_WANT_READ ? tcp::socket::wait_read : tcp::socket::wait_write,
                         [self = shared_from_this()](const error_code& ec) {
                           if (ec || self->timed_out_) {
                             self->HandshakeFailed(self->timed_out_ ? "timed out" : ec.message(), true);
                             return;
                           }
                           self->Handshake();
                         });
      return;
    }
    HandshakeFailed(SslIoError(err));
  }

  // Plaintext HTTP on the port lands here too ("http request"): no answer; clients and scanners
  // are frequent enough that this is not worth more than a debug line and a count. A refused
  // client may still be sending (the rest of a plaintext request): lingering close, so that it sees
  // a FIN (and the alert OpenSSL sent, if any) rather than a reset. A timeout closes at once.
  void HandshakeFailed(const std::string& why, bool timed_out = false) {
    CancelTimer();
    if (!server_.stopping()) {
      server_.CountHandshakeFailure();
      DLOG_DEBUG << "TLS handshake with " << remote_ << " failed: " << why;
    }
    if (timed_out || server_.stopping()) {
      Close();
    } else {
      LingerClose();
    }
  }

  Conn conn() const { return Conn{fd_, ssl_}; }

 public:
  void MarkTlsFailed() { tls_failed_ = true; }

 private:
  void WaitForRequest() {
    phase_ = Phase::kIdle;
    if (server_.stopping()) {
      Close();
      return;
    }
    // A pipelined request is already here (with TLS, possibly still inside OpenSSL's buffer).
    if (buffer_.size() > 0 || (ssl_ != nullptr && SSL_has_pending(ssl_) == 1)) {
      ReadHead();
      return;
    }
    buffer_.shrink_to_fit();  // an idle connection keeps no buffer
    ArmTimer(options_.idle_timeout);
    AwaitReadable();
  }

  void AwaitReadable() {
    socket_.async_wait(tcp::socket::wait_read,
                       [self = shared_from_this()](const error_code& ec) { self->OnReadable(ec); });
  }

  void OnReadable(const error_code& ec) {
    if (ec || timed_out_) {
      CancelTimer();
      Close();
      return;
    }
    // Readiness can be stale: epoll is edge-triggered, and an edge for bytes the previous request's
    // read already consumed may be reported only now. Taking that for a new request would start the
    // head timer on an idle connection (a 408 instead of a quiet close, and a graceful stop that
    // waits for it as if it were busy). Only a byte, EOF or an error starts a head; otherwise wait
    // again under the idle timer already running.
    char byte;
    if (ssl_ != nullptr) {
      // A record with no application data (a partial one, a key update) is no request either.
      ERR_clear_error();
      const int peeked = SSL_peek(ssl_, &byte, 1);
      const int err = peeked > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, peeked);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        AwaitReadable();
        return;
      }
      ERR_clear_error();
      CancelTimer();
      ReadHead();
      return;
    }
    ssize_t n;
    do {
      n = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      AwaitReadable();
      return;
    }
    CancelTimer();
    ReadHead();
  }

  void ReadHead() {
    phase_ = Phase::kHead;
    BeginRecord();
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(std::min<size_t>(options_.max_header_bytes, UINT32_MAX)));
    // Checked per route once the head is routed. Not boost::none: Beast 1.74 compares
    // `content_length > body_limit` with an empty optional as true.
    parser_->body_limit(std::numeric_limits<uint64_t>::max());
    ArmTimer(options_.header_timeout);
    auto on_head = [self = shared_from_this()](const error_code& ec, size_t) { self->OnHead(ec); };
    if (ssl_ != nullptr) {
      tls_stream_.emplace(socket_, ssl_);
      bhttp::async_read_header(*tls_stream_, buffer_, *parser_, std::move(on_head));
    } else {
      bhttp::async_read_header(socket_, buffer_, *parser_, std::move(on_head));
    }
  }

  void OnHead(const error_code& ec) {
    CancelTimer();
    const bool timed_out = timed_out_;
    if (timed_out || ec) {
      if (timed_out) {
        server_.CountRequest();
        SendServerError(408, "request_timeout", "request head not received in time", false);
        FinishRecord();
        LingerClose();
      } else if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
        server_.CountRequest();
        SendServerError(431, "header_too_large",
                        "request head exceeds " + std::to_string(options_.max_header_bytes) + " bytes",
                        false);
        FinishRecord();
        LingerClose();
      } else if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
                 ec == asio::error::eof || ec.category() == boost::system::system_category() ||
                 ec == asio::error::operation_aborted) {
        Close();  // the client went away (or Stop cancelled the read)
      } else {
        server_.CountRequest();
        SendServerError(400, "bad_request", "malformed request: " + ec.message(), false);
        FinishRecord();
        LingerClose();
      }
      return;
    }
    phase_ = Phase::kBusy;
    server_.CountRequest();
    const After after = HandleRequest();
    FinishRecord();
    parser_.reset();
    if (after == After::kKeepAlive) {
      WaitForRequest();
    } else {
      LingerClose();
    }
  }

  // Runs the request to its response, synchronously on this thread.
  After HandleRequest() {
    auto& msg = parser_->get();
    Request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    req.version = msg.version();
    for (const auto& field : msg)
      req.headers.Add(std::string(field.name_string()), std::string(field.value()));
    if (auto cl = parser_->content_length()) req.content_length = *cl;
    req.chunked = parser_->chunked();
    req.remote_address = remote_;
    record_method_ = req.method;
    req.request_id = RequestIdOf(req.headers);
    const bool head = req.method == "HEAD";
    const bool client_keep_alive = parser_->keep_alive();

    std::string_view target = req.target;
    if (target.size() > 7 && (EqualsIgnoreCase(target.substr(0, 7), "http://") ||
                              (target.size() > 8 && EqualsIgnoreCase(target.substr(0, 8), "https://")))) {
      size_t authority = target.find("//") + 2;
      size_t slash = target.find('/', authority);
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
    if (target.empty() || target.front() != '/') {
      return Respond(JsonError(400, "bad_request", "unsupported request target"), req, head,
                     client_keep_alive, nullptr);
    }
    size_t hash = target.find('#');
    if (hash != std::string_view::npos) target = target.substr(0, hash);
    size_t qmark = target.find('?');
    req.path = std::string(target.substr(0, qmark));
    if (qmark != std::string_view::npos) req.query = std::string(target.substr(qmark + 1));
    if (!ParseQuery(req.query, &req.query_params)) {
      return Respond(JsonError(400, "bad_request", "malformed query string"), req, head, client_keep_alive,
                     nullptr);
    }

    bool expect_continue = false;
    if (auto expect = req.Header("Expect")) {
      if (!EqualsIgnoreCase(TrimOws(*expect), "100-continue")) {
        return Respond(JsonError(417, "expectation_failed", "unsupported Expect: " + std::string(*expect)),
                       req, head, client_keep_alive, nullptr);
      }
      expect_continue = req.version >= 11;
    }

    Router::Match match = server_.router().Find(req.method, req.path);
    if (!match.pattern.empty()) record_route_ = match.pattern;
    if (match.kind == Router::MatchKind::kNotFound) {
      return Respond(JsonError(404, "not_found", "no route for " + req.path), req, head, client_keep_alive,
                     nullptr);
    }
    if (match.kind == Router::MatchKind::kMethodNotAllowed) {
      Response r = JsonError(405, "method_not_allowed", req.method + " is not allowed on " + req.path);
      r.AddHeader("Allow", match.allow);
      return Respond(std::move(r), req, head, client_keep_alive, nullptr);
    }
    if (match.bad_escape) {
      return Respond(JsonError(400, "bad_request", "malformed percent-escape in the path"), req, head,
                     client_keep_alive, nullptr);
    }
    const uint64_t max_body = match.route->options.max_body_bytes.value_or(options_.default_max_body_bytes);
    if (req.content_length && *req.content_length > max_body) {
      return Respond(JsonError(413, "payload_too_large",
                               "request body of " + std::to_string(*req.content_length) +
                                   " bytes exceeds the limit of " + std::to_string(max_body) + " bytes"),
                     req, head, client_keep_alive, nullptr);
    }
    parser_->body_limit(max_body);
    req.path_params = std::move(match.path_params);
    if (options_.guard != nullptr) {
      std::optional<std::string_view> pattern;
      if (match.route->pattern != "/*") pattern = match.route->pattern;
      std::optional<Response> refusal;
      try {
        refusal = options_.guard->Admit(req, pattern);
      } catch (const std::exception& e) {
        DLOG_ERROR << "request guard threw: " << e.what();
        refusal = JsonError(500, "internal", "internal error");
      }
      if (refusal) return Respond(std::move(*refusal), req, head, client_keep_alive, nullptr);
    }

    SocketBodyReader body(conn(), buffer_, *parser_, options_, max_body, expect_continue);
    Response response;
    try {
      response = match.route->handler(req, body);
    } catch (const std::exception& e) {
      DLOG_ERROR << "handler for " << req.method << " " << req.path << " threw: " << e.what();
      response = JsonError(500, "internal", "internal error");
    } catch (...) {
      DLOG_ERROR << "handler for " << req.method << " " << req.path << " threw a non-std exception";
      response = JsonError(500, "internal", "internal error");
    }
    record_request_bytes_ = body.bytes_read();
    switch (body.failure()) {
      case BodyFailure::kNone: break;
      case BodyFailure::kTooLarge:
        response = JsonError(413, "payload_too_large", body.error().message());
        break;
      case BodyFailure::kTimeout: response = JsonError(408, "request_timeout", body.error().message()); break;
      case BodyFailure::kMalformed:
      case BodyFailure::kTruncated: response = JsonError(400, "bad_request", body.error().message()); break;
      case BodyFailure::kClientGone: return After::kClose;
    }
    return Respond(std::move(response), req, head, client_keep_alive, &body);
  }

  // Sends `response`; decides whether the connection stays open.
  After Respond(Response response, const Request& req, bool head, bool client_keep_alive,
                const SocketBodyReader* body) {
    bool keep_alive = client_keep_alive && parser_->is_done() && !server_.stopping() &&
                      (body == nullptr || body->failure() == BodyFailure::kNone);
    if (!req.request_id.empty()) response.AddHeader("X-Request-Id", req.request_id);
    if (!SendResponse(response, req.version, head, &keep_alive)) return After::kClose;
    return keep_alive ? After::kKeepAlive : After::kClose;
  }

  // A response the server makes itself when there is no usable request; the connection closes.
  void SendServerError(int status, std::string_view code, const std::string& message, bool head) {
    Response r = JsonError(status, code, message);
    bool keep_alive = false;
    (void)SendResponse(r, 11, head, &keep_alive);
  }

  // false when the connection must be dropped (write failed, a producer failed mid-body).
  bool SendResponse(Response& response, unsigned version, bool head, bool* keep_alive) {
    const int status = response.status();
    record_status_ = status;
    const bool bodiless_status = status < 200 || status == 204 || status == 304;
    std::string h;
    h.reserve(512);
    h += "HTTP/1.1 ";
    h += std::to_string(status);
    h += ' ';
    beast::string_view reason = bhttp::obsolete_reason(bhttp::int_to_status(static_cast<unsigned>(status)));
    h.append(reason.data(), reason.size());
    h += "\r\n";
    if (!options_.server_name.empty()) h += "Server: " + options_.server_name + "\r\n";
    h += "Date: " + HttpDate() + "\r\n";
    for (const auto& [name, value] : response.headers()) {
      if (name.empty() || HasCrLf(name) || HasCrLf(value) || IsFramingHeader(name)) continue;
      if (!response.content_type().empty() && EqualsIgnoreCase(name, "Content-Type")) continue;
      h += name;
      h += ": ";
      h += value;
      h += "\r\n";
    }
    if (!response.content_type().empty() && !HasCrLf(response.content_type())) {
      h += "Content-Type: " + response.content_type() + "\r\n";
    }
    const std::optional<uint64_t> length = response.body_length();
    bool chunked = false;
    if (!bodiless_status) {
      if (length) {
        h += "Content-Length: " + std::to_string(*length) + "\r\n";
      } else if (version >= 11) {
        chunked = true;
        h += "Transfer-Encoding: chunked\r\n";
      } else {
        *keep_alive = false;  // HTTP/1.0: the body ends when the connection closes
      }
    }
    if (!*keep_alive) {
      h += "Connection: close\r\n";
    } else if (version < 11) {
      h += "Connection: keep-alive\r\n";
    }
    h += "\r\n";
    const bool send_body = !head && !bodiless_status;
    const milliseconds timeout = options_.write_timeout;

    Status s;
    Response::Body& body = response.body();
    if (auto* text = std::get_if<std::string>(&body)) {
      std::array<iovec, 2> iov{{{h.data(), h.size()}, {text->data(), send_body ? text->size() : 0}}};
      uint64_t sent = 0;
      s = Send(conn(), iov.data(), 2, timeout, &sent);
      record_response_bytes_ += sent > h.size() ? sent - h.size() : 0;
    } else if (auto* file = std::get_if<FileRegion>(&body)) {
      const CorkGuard cork(send_body ? fd_ : -1);
      s = Send(conn(), h, timeout);
      if (s.ok() && send_body) {
        s = ssl_ != nullptr ? TlsSendFileRegion(ssl_, fd_, file->fd.get(), file->offset, file->length,
                                                timeout, &record_response_bytes_)
                            : SendFileRegion(fd_, file->fd.get(), file->offset, file->length, timeout,
                                             &record_response_bytes_);
      }
    } else {
      s = Send(conn(), h, timeout);
      if (s.ok() && send_body) s = SendStream(std::get<StreamBody>(body), chunked, timeout);
    }
    if (!s.ok()) {
      DLOG_DEBUG << "response to " << remote_ << " aborted: " << s.ToString();
      return false;
    }
    return true;
  }

  Status SendStream(StreamBody& stream, bool chunked, milliseconds timeout) {
    if (!stream.produce) return Status::Aborted("stream response without a producer");
    std::unique_ptr<char[]> buf(new char[kChunkPrefix + kStreamChunk + 2]);
    char* data = buf.get() + kChunkPrefix;
    uint64_t sent = 0;
    for (;;) {
      size_t want = kStreamChunk;
      if (stream.length) {
        uint64_t left = *stream.length - sent;
        if (left == 0) break;
        if (left < want) want = static_cast<size_t>(left);
      }
      Result<size_t> n = Status::Aborted("producer threw");
      try {
        n = stream.produce(data, want);
      } catch (const std::exception& e) {
        DLOG_ERROR << "response producer threw: " << e.what();
      }
      if (!n.ok()) {
        DLOG_WARN << "response stream to " << remote_ << " aborted: " << n.status().ToString();
        return n.status();
      }
      if (*n > want) return Status::Aborted("producer returned more bytes than asked");
      if (*n == 0) {
        if (stream.length) return Status::Aborted("producer ended before the announced Content-Length");
        break;
      }
      if (chunked) {
        char prefix[kChunkPrefix];
        int k = std::snprintf(prefix, sizeof(prefix), "%zx\r\n", *n);
        std::memcpy(data - k, prefix, static_cast<size_t>(k));
        std::memcpy(data + *n, "\r\n", 2);
        DISPOTIFY_RETURN_IF_ERROR(
            Send(conn(), std::string_view(data - k, static_cast<size_t>(k) + *n + 2), timeout));
      } else {
        DISPOTIFY_RETURN_IF_ERROR(Send(conn(), std::string_view(data, *n), timeout));
      }
      sent += *n;
      record_response_bytes_ += *n;
    }
    if (chunked) return Send(conn(), "0\r\n\r\n", timeout);
    return Status::Ok();
  }

  // The request record (RequestObserver): reset when a head starts to arrive, filled in while the
  // request runs, reported once it is answered.
  void BeginRecord() {
    record_start_ = std::chrono::steady_clock::now();
    record_route_ = RequestRecord::kUnmatchedRoute;
    record_method_.clear();
    record_status_ = 0;
    record_request_bytes_ = 0;
    record_response_bytes_ = 0;
  }

  void FinishRecord() {
    RequestObserver* observer = options_.observer;
    if (observer == nullptr) return;
    RequestRecord r;
    r.route = record_route_;
    r.method = record_method_;
    r.status = record_status_ == 0 ? kClientClosedRequest : record_status_;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - record_start_).count();
    r.request_body_bytes = record_request_bytes_;
    r.response_body_bytes = record_response_bytes_;
    try {
      observer->OnRequest(r);
    } catch (const std::exception& e) {
      DLOG_ERROR << "HTTP request observer threw: " << e.what();
    }
  }

  // Stops sending, then discards what the client still sends until it closes or linger_timeout
  // passes, so that a response sent before the whole request was read is not lost to a reset.
  void LingerClose() {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kLinger;
    // TLS: close_notify first (best effort, never waited for), so the client can tell the end of
    // the stream from a truncation; what it still sends is discarded undecrypted.
    if (ssl_ != nullptr && SSL_is_init_finished(ssl_) == 1) {
      ERR_clear_error();
      (void)SSL_shutdown(ssl_);
      ERR_clear_error();
    }
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    if (ec || server_.stopping()) {
      Close();
      return;
    }
    ArmTimer(options_.linger_timeout);
    DoLingerRead();
  }

  void DoLingerRead() {
    if (!linger_buf_) linger_buf_.reset(new char[kLingerBuf]);
    socket_.async_read_some(asio::buffer(linger_buf_.get(), kLingerBuf),
                            [self = shared_from_this()](const error_code& ec, size_t) {
                              if (ec || self->timed_out_) {
                                self->CancelTimer();
                                self->Close();
                                return;
                              }
                              self->DoLingerRead();
                            });
  }

  void Close() {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kClosed;
    CancelTimer();
    std::lock_guard<std::mutex> lock(fd_mu_);
    closed_ = true;
    error_code ec;
    socket_.close(ec);
  }

  static constexpr size_t kLingerBuf = 16 * 1024;
  // Reported when the client went away before a response (nginx's convention).
  static constexpr int kClientClosedRequest = 499;

  ServerCore& server_;
  const ServerOptions& options_;
  tcp::socket socket_;
  const int fd_ = socket_.native_handle();
  SSL* ssl_ = nullptr;       // owned; null: plaintext
  bool tls_failed_ = false;  // TLS was asked for but no SSL object could be made
  std::optional<TlsAsyncReadStream> tls_stream_;
  asio::steady_timer timer_;
  uint64_t timer_gen_ = 0;
  bool timed_out_ = false;
  beast::flat_buffer buffer_;
  std::optional<RequestParser> parser_;
  std::unique_ptr<char[]> linger_buf_;
  std::string remote_;
  Phase phase_ = Phase::kIdle;
  const bool counted_;

  std::chrono::steady_clock::time_point record_start_{};
  std::string_view record_route_ = RequestRecord::kUnmatchedRoute;  // points into the router
  std::string record_method_;
  int record_status_ = 0;
  uint64_t record_request_bytes_ = 0;
  uint64_t record_response_bytes_ = 0;

  std::mutex fd_mu_;
  bool closed_ = false;
};

void BlockSigpipe() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

}  // namespace

Status ServerCore::Start() {
  std::lock_guard<std::mutex> lock(state_mu_);
  if (started_) return Status::FailedPrecondition("HTTP server already started");
  if (options_.worker_threads == 0) return Status::InvalidArgument("worker_threads must be > 0");
  if (options_.max_connections == 0) return Status::InvalidArgument("max_connections must be > 0");
  if (options_.max_header_bytes < 256) return Status::InvalidArgument("max_header_bytes must be >= 256");
  error_code ec;
  asio::ip::address address = asio::ip::make_address(options_.address, ec);
  if (ec) return Status::InvalidArgument("bad listen address '" + options_.address + "': " + ec.message());
  tcp::endpoint endpoint(address, options_.port);
  const std::string where = options_.address + ":" + std::to_string(options_.port);
  Status listening = [&]() -> Status {
    if (acceptor_.open(endpoint.protocol(), ec); ec) return Status::IoError("socket: " + ec.message());
    if (acceptor_.set_option(asio::socket_base::reuse_address(true), ec); ec) {
      return Status::IoError("SO_REUSEADDR: " + ec.message());
    }
    if (acceptor_.bind(endpoint, ec); ec) return Status::IoError("bind " + where + ": " + ec.message());
    if (acceptor_.listen(asio::socket_base::max_listen_connections, ec); ec) {
      return Status::IoError("listen " + where + ": " + ec.message());
    }
    return Status::Ok();
  }();
  if (!listening.ok()) {
    error_code ignored;
    acceptor_.close(ignored);  // so that Start can be retried
    return listening;
  }
  port_ = acceptor_.local_endpoint(ec).port();
  work_.emplace(ioc_.get_executor());
  DoAccept();
  // The threads inherit the blocked SIGPIPE (see ConsumePendingSigpipe); the caller's mask is restored.
  sigset_t old_mask;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, &old_mask);
  for (size_t i = 0; i < options_.worker_threads; ++i) {
    threads_.emplace_back([this] {
      BlockSigpipe();
      for (;;) {
        try {
          ioc_.run();
          return;
        } catch (const std::exception& e) {
          DLOG_ERROR << "exception escaped an HTTP server handler: " << e.what();
        }
      }
    });
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  started_ = true;
  DLOG_INFO << "HTTP server listening on " << options_.address << ":" << port_ << " with "
            << options_.worker_threads << " worker threads";
  return Status::Ok();
}

void ServerCore::DoAccept() {
  acceptor_.async_accept(asio::make_strand(ioc_), [this](const error_code& ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      DLOG_WARN << "HTTP accept failed: " << ec.message();
      // E.g. EMFILE: retry later instead of spinning.
      accept_retry_.expires_after(std::chrono::milliseconds(100));
      accept_retry_.async_wait([this](const error_code& wait_ec) {
        if (!wait_ec && acceptor_.is_open()) DoAccept();
      });
      return;
    }
    if (stopping_.load()) {
      error_code ignored;
      socket.close(ignored);
      return;
    }
    const bool reject = active_.load() >= options_.max_connections;
    // Taken per connection: a rotated certificate applies from the next accept on.
    std::shared_ptr<SSL_CTX> tls = options_.tls_context ? options_.tls_context() : nullptr;
    auto session = std::make_shared<Session>(*this, std::move(socket), /*counted=*/!reject, tls.get());
    if (options_.tls_context && !tls) session->MarkTlsFailed();
    if (reject) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      session->Reject();
    } else {
      accepted_.fetch_add(1, std::memory_order_relaxed);
      session->Start();
    }
    DoAccept();
  });
}

void ServerCore::Stop(milliseconds grace) {
  std::lock_guard<std::mutex> lock(state_mu_);
  if (!started_ || stopped_) return;
  stopped_ = true;
  stopping_.store(true);
  const auto deadline = std::chrono::steady_clock::now() + grace;

  // Stop accepting (on the acceptor's strand: the acceptor is not thread-safe).
  std::promise<void> acceptor_closed;
  asio::post(acceptor_.get_executor(), [this, &acceptor_closed] {
    error_code ec;
    acceptor_.close(ec);
    accept_retry_.cancel();
    acceptor_closed.set_value();
  });
  acceptor_closed.get_future().wait();

  // Close idle connections. The references are taken under the lock (a session whose last
  // reference is going away is unregistering, blocked on it) and dropped outside it (dropping the
  // last one runs the destructor, which takes the lock).
  std::vector<std::shared_ptr<Session>> alive;
  {
    std::lock_guard<std::mutex> sessions_lock(sessions_mu_);
    for (Session* s : sessions_) {
      if (auto session = s->weak_from_this().lock()) alive.push_back(std::move(session));
    }
  }
  for (const auto& session : alive) session->StopIfIdle();
  alive.clear();

  std::unique_lock<std::mutex> sessions_lock(sessions_mu_);
  if (!sessions_cv_.wait_until(sessions_lock, deadline, [this] { return sessions_.empty(); })) {
    DLOG_WARN << "HTTP server: " << sessions_.size()
              << " connections still open after the grace period; closing";
    for (Session* s : sessions_) s->ForceShutdown();
  }
  while (
      !sessions_cv_.wait_for(sessions_lock, std::chrono::seconds(5), [this] { return sessions_.empty(); })) {
    DLOG_WARN << "HTTP server: waiting for " << sessions_.size() << " handlers to return";
  }
  sessions_lock.unlock();

  work_.reset();
  ioc_.stop();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  DLOG_INFO << "HTTP server on port " << port_ << " stopped";
}

struct HttpServer::Impl {
  Impl(ServerOptions options, Router router) : core(std::move(options), std::move(router)) {}
  ServerCore core;
};

HttpServer::HttpServer(ServerOptions options, Router router)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(router))) {}

HttpServer::~HttpServer() {
  impl_->core.Stop(milliseconds(0));
}

Status HttpServer::Start() {
  return impl_->core.Start();
}

uint16_t HttpServer::port() const {
  return impl_->core.port();
}

void HttpServer::Stop(std::chrono::milliseconds grace) {
  impl_->core.Stop(grace);
}

ServerStats HttpServer::stats() const {
  return impl_->core.stats();
}

}  // namespace dispotify::api::http
