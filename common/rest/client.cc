// HTTP with cpprestsdk's http_client (the project's HTTP client). Its default response body is an
// unbounded in-memory buffer and its file streams cannot tell an error body from the song, so the
// bodies go through two small stream buffers of our own instead: FileSource (pread of the file,
// one chunk per socket write) and SinkBuffer (hands chunks to a DownloadTarget once the status is
// known; the network thread waits when the target is slow, so memory stays bounded).

#include "common/rest/client.h"

#include <cpprest/astreambuf.h>
#include <cpprest/http_client.h>
#include <cpprest/json.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/ssl/context.hpp>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

namespace dispotify::rest {
namespace {

using Clock = std::chrono::steady_clock;
namespace http = web::http;
namespace streams = concurrency::streams;

constexpr size_t kChunkBytes = size_t{64} * 1024;
constexpr size_t kMaxErrorBody = size_t{64} * 1024;
constexpr size_t kMaxPendingBytes = 1 << 20;

// A file read with pread from a position: the request body of an upload. Seekable, so that
// cpprestsdk can replay it on a pooled connection the server had closed.
class FileSource : public streams::details::streambuf_state_manager<uint8_t> {
 public:
  FileSource(int fd, uint64_t size) : streambuf_state_manager(std::ios_base::in), fd_(fd), size_(size) {}
  ~FileSource() override { ::close(fd_); }

  bool can_seek() const override { return is_open(); }
  bool has_size() const override { return true; }
  utility::size64_t size() const override { return size_; }
  size_t buffer_size(std::ios_base::openmode) const override { return 0; }
  void set_buffer_size(size_t, std::ios_base::openmode) override {}
  size_t in_avail() const override { return 0; }
  pos_type getpos(std::ios_base::openmode) const override {
    return static_cast<pos_type>(static_cast<std::streamoff>(pos_));
  }
  pos_type seekpos(pos_type pos, std::ios_base::openmode) override {
    const auto p = static_cast<int64_t>(pos);
    if (p < 0 || static_cast<uint64_t>(p) > size_) return static_cast<pos_type>(traits::eof());
    pos_ = static_cast<uint64_t>(p);
    return pos;
  }
  pos_type seekoff(off_type off, std::ios_base::seekdir dir, std::ios_base::openmode mode) override {
    int64_t base = 0;
    if (dir == std::ios_base::cur) base = static_cast<int64_t>(pos_);
    if (dir == std::ios_base::end) base = static_cast<int64_t>(size_);
    return seekpos(static_cast<pos_type>(base + static_cast<int64_t>(off)), mode);
  }
  bool acquire(uint8_t*&, size_t&) override { return false; }
  void release(uint8_t*, size_t) override {}
  Status error() const {
    std::lock_guard lock(mu_);
    return error_;
  }

 protected:
  pplx::task<int_type> _putc(uint8_t) override { return pplx::task_from_result<int_type>(traits::eof()); }
  pplx::task<size_t> _putn(const uint8_t*, size_t) override { return pplx::task_from_result<size_t>(0); }
  pplx::task<int_type> _bumpc() override { return pplx::task_from_result(_sbumpc()); }
  int_type _sbumpc() override {
    const int_type c = _sgetc();
    if (c != traits::eof()) ++pos_;
    return c;
  }
  pplx::task<int_type> _getc() override { return pplx::task_from_result(_sgetc()); }
  int_type _sgetc() override {
    uint8_t c = 0;
    return ::pread(fd_, &c, 1, static_cast<off_t>(pos_)) == 1 ? static_cast<int_type>(c) : traits::eof();
  }
  pplx::task<int_type> _nextc() override {
    ++pos_;
    return pplx::task_from_result(_sgetc());
  }
  pplx::task<int_type> _ungetc() override {
    if (pos_ == 0) return pplx::task_from_result<int_type>(traits::eof());
    --pos_;
    return pplx::task_from_result(_sgetc());
  }
  pplx::task<size_t> _getn(uint8_t* ptr, size_t count) override {
    size_t done = 0;
    count = static_cast<size_t>(std::min<uint64_t>(count, size_ - std::min(size_, pos_)));
    while (done < count) {
      const ssize_t n = ::pread(fd_, ptr + done, count - done, static_cast<off_t>(pos_ + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        // Ends the body short: cpprestsdk fails the request, and Upload reports this error.
        std::lock_guard lock(mu_);
        error_ = Status::FromErrno(errno, "reading the file");
        break;
      }
      if (n == 0) break;  // the file shrank: the server will see a short body
      done += static_cast<size_t>(n);
    }
    pos_ += done;
    return pplx::task_from_result(done);
  }
  size_t _scopy(uint8_t*, size_t) override { return static_cast<size_t>(-1); }
  pplx::task<bool> _sync() override { return pplx::task_from_result(true); }
  uint8_t* _alloc(size_t) override { return nullptr; }
  void _commit(size_t) override {}

 private:
  const int fd_;
  const uint64_t size_;
  uint64_t pos_ = 0;
  mutable std::mutex mu_;
  Status error_;
};

// The response body of a download. Bytes that arrive before Decide() are held (up to
// kMaxPendingBytes, then the network thread waits); after it they go to the target (kPass) or are
// kept as the error text (kCapture, up to kMaxErrorBody).
class SinkBuffer : public streams::details::streambuf_state_manager<uint8_t> {
 public:
  enum class Mode : uint8_t { kUndecided, kPass, kCapture };

  // `cancel` ends the request when the target fails.
  SinkBuffer(DownloadTarget* target, const ProgressFn* progress, pplx::cancellation_token_source cancel)
      : streambuf_state_manager(std::ios_base::out),
        target_(target),
        progress_(progress),
        cancel_(std::move(cancel)) {}

  // skip: how many of the body's bytes the target does not want; total: the song's size.
  Status Decide(Mode mode, uint64_t skip, uint64_t total) {
    std::lock_guard lock(mu_);
    mode_ = mode;
    skip_ = skip;
    total_ = total;
    std::string pending;
    pending.swap(pending_);
    Status s = Consume(pending.data(), pending.size());
    cv_.notify_all();
    return s;
  }
  // Unblocks the network thread for good (the attempt is over, whatever happened).
  void Abandon() {
    std::lock_guard lock(mu_);
    abandoned_ = true;
    cv_.notify_all();
    cancel_.cancel();  // a no-op once the request is complete
  }
  Status target_error() const {
    std::lock_guard lock(mu_);
    return target_error_;
  }
  // Bytes the target holds. The network thread writes to the target under mu_ once the mode is
  // decided, so other threads read its size (and report progress) under mu_ too.
  uint64_t TargetSize() const {
    std::lock_guard lock(mu_);
    return target_->size();
  }
  void ReportProgress(uint64_t total) const {
    std::lock_guard lock(mu_);
    if (*progress_) (*progress_)(target_->size(), total);
  }
  std::string captured() const {
    std::lock_guard lock(mu_);
    return captured_;
  }
  uint64_t received() const {
    std::lock_guard lock(mu_);
    return received_;
  }

  bool can_seek() const override { return false; }
  bool has_size() const override { return false; }
  size_t buffer_size(std::ios_base::openmode) const override { return 0; }
  void set_buffer_size(size_t, std::ios_base::openmode) override {}
  size_t in_avail() const override { return 0; }
  pos_type getpos(std::ios_base::openmode) const override { return static_cast<pos_type>(traits::eof()); }
  pos_type seekpos(pos_type, std::ios_base::openmode) override {
    return static_cast<pos_type>(traits::eof());
  }
  pos_type seekoff(off_type, std::ios_base::seekdir, std::ios_base::openmode) override {
    return static_cast<pos_type>(traits::eof());
  }
  bool acquire(uint8_t*&, size_t&) override { return false; }
  void release(uint8_t*, size_t) override {}

 protected:
  pplx::task<int_type> _putc(uint8_t ch) override {
    return _putn(&ch, 1).then([ch](size_t n) { return n == 1 ? static_cast<int_type>(ch) : traits::eof(); });
  }
  pplx::task<size_t> _putn(const uint8_t* ptr, size_t count) override {
    const char* data = reinterpret_cast<const char*>(ptr);
    std::unique_lock lock(mu_);
    if (mode_ == Mode::kUndecided) {
      cv_.wait(lock,
               [&] { return mode_ != Mode::kUndecided || abandoned_ || pending_.size() < kMaxPendingBytes; });
      if (mode_ == Mode::kUndecided && !abandoned_) {
        pending_.append(data, count);
        return pplx::task_from_result(count);
      }
    }
    // Never an exceptional task: cpprestsdk then closes the buffer with a blocking wait on its own
    // thread pool, from a pool thread (a deadlock). Failing bytes are dropped and the request is
    // cancelled instead. An abandoned attempt is over: its late bytes must not reach the target,
    // which the next attempt writes.
    if (abandoned_) {
      cancel_.cancel();
      return pplx::task_from_result(count);
    }
    if (!Consume(data, count).ok()) cancel_.cancel();
    return pplx::task_from_result(count);
  }
  pplx::task<int_type> _bumpc() override { return pplx::task_from_result<int_type>(traits::eof()); }
  int_type _sbumpc() override { return traits::eof(); }
  pplx::task<int_type> _getc() override { return pplx::task_from_result<int_type>(traits::eof()); }
  int_type _sgetc() override { return traits::eof(); }
  pplx::task<int_type> _nextc() override { return pplx::task_from_result<int_type>(traits::eof()); }
  pplx::task<int_type> _ungetc() override { return pplx::task_from_result<int_type>(traits::eof()); }
  pplx::task<size_t> _getn(uint8_t*, size_t) override { return pplx::task_from_result<size_t>(0); }
  size_t _scopy(uint8_t*, size_t) override { return static_cast<size_t>(-1); }
  pplx::task<bool> _sync() override { return pplx::task_from_result(true); }
  uint8_t* _alloc(size_t) override { return nullptr; }
  void _commit(size_t) override {}

 private:
  // Must hold mu_.
  Status Consume(const char* data, size_t n) {
    if (!target_error_.ok()) return target_error_;
    if (mode_ == Mode::kCapture) {
      captured_.append(data, std::min(n, kMaxErrorBody - std::min(kMaxErrorBody, captured_.size())));
      return Status::Ok();
    }
    const size_t dropped = static_cast<size_t>(std::min<uint64_t>(skip_, n));
    skip_ -= dropped;
    data += dropped;
    n -= dropped;
    if (n == 0) return Status::Ok();
    Status s = target_->Write(data, n);
    if (!s.ok()) {
      target_error_ = s;
      return s;
    }
    received_ += n;
    if (*progress_) (*progress_)(target_->size(), total_);
    return Status::Ok();
  }

  DownloadTarget* const target_;
  const ProgressFn* const progress_;
  pplx::cancellation_token_source cancel_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Mode mode_ = Mode::kUndecided;
  bool abandoned_ = false;
  uint64_t skip_ = 0;
  uint64_t total_ = 0;
  uint64_t received_ = 0;  // bytes handed to the target by this attempt
  std::string pending_;
  std::string captured_;
  Status target_error_;
};

std::string Header(const http::http_headers& headers, const std::string& name) {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

// "bytes a-b/n" -> {a, n}; "bytes */n" -> {nullopt, n}.
bool ParseContentRange(std::string_view v, std::optional<uint64_t>* first, uint64_t* total) {
  if (v.rfind("bytes ", 0) != 0) return false;
  v.remove_prefix(6);
  const size_t slash = v.find('/');
  if (slash == std::string_view::npos) return false;
  const std::string range(v.substr(0, slash));
  const std::string size(v.substr(slash + 1));
  try {
    *total = std::stoull(size);
    if (range == "*") {
      first->reset();
    } else {
      *first = std::stoull(range.substr(0, range.find('-')));
    }
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

// One attempt's outcome: an HTTP answer, a transport failure (try elsewhere), or a failure that
// no other node can fix (stop).
struct Attempt {
  std::optional<HttpReply> reply;
  std::optional<double> retry_after;  // of a 503 or a 429
  Status transport;
  Status fatal;
};

}  // namespace

struct Client::Impl {
  explicit Impl(ClientOptions o) : options(std::move(o)) {
    http::client::http_client_config config;
    config.set_timeout(options.timeout);
    config.set_chunksize(kChunkBytes);
    if (!options.ca_file.empty()) {
      // Called once per connection's context, after cpprestsdk loaded the system's roots. A file
      // that cannot be read fails the request with the reason (a transport error).
      config.set_ssl_context_callback(
          [ca = options.ca_file](boost::asio::ssl::context& ctx) { ctx.load_verify_file(ca); });
    }
    for (const auto& endpoint : options.endpoints) {
      try {
        clients.push_back(std::make_unique<http::client::http_client>(endpoint, config));
      } catch (const std::exception& e) {
        clients.push_back(nullptr);
        bad_endpoint.push_back(endpoint + ": " + e.what());
      }
    }
  }

  // Runs `attempt` against the endpoints until one gives a final answer or the time is up.
  // `made_progress` (optional) says whether the last failed attempt moved forward (a download that
  // got some bytes); the time budget then starts again.
  Result<HttpReply> WithFailover(
      const std::function<Attempt(http::client::http_client&, const std::string&)>& attempt,
      const std::function<bool()>& made_progress = {}) {
    auto deadline = Clock::now() + options.timeout;
    std::optional<HttpReply> last_unavailable;
    std::vector<std::string> failures;
    auto backoff = std::chrono::milliseconds(250);
    const bool any_usable =
        std::any_of(clients.begin(), clients.end(), [](const auto& c) { return c != nullptr; });
    for (int round = 1; any_usable; ++round) {
      std::optional<double> retry_after;
      for (size_t k = 0; k < clients.size(); ++k) {
        const size_t idx = (preferred + k) % clients.size();
        if (!clients[idx]) continue;
        Attempt a = attempt(*clients[idx], options.endpoints[idx]);
        if (!a.fatal.ok()) return a.fatal;
        if (made_progress && made_progress()) deadline = Clock::now() + options.timeout;
        if (a.reply && a.reply->status == 429) {
          // Rate limited: wait as told, then ask this node again (see Client::Call).
          preferred = idx;
          last_unavailable = a.reply;
          retry_after = a.retry_after.value_or(1.0);
          break;
        }
        if (a.reply && a.reply->status == 503) {
          last_unavailable = a.reply;
          const double wait = a.retry_after.value_or(1.0);
          retry_after = retry_after ? std::min(*retry_after, wait) : wait;
          continue;
        }
        if (a.reply) {
          preferred = idx;
          a.reply->retried = last_unavailable.has_value() || !failures.empty();
          return *a.reply;
        }
        failures.push_back(options.endpoints[idx] + ": " + a.transport.message());
      }
      if (options.max_rounds > 0 && round >= options.max_rounds) break;
      auto wait = retry_after ? std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::duration<double>(*retry_after))
                              : backoff;
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
      const auto now = Clock::now();
      if (now + wait > deadline) break;
      if (options.on_retry) {
        char secs[32];
        std::snprintf(secs, sizeof(secs), "%.1f", static_cast<double>(wait.count()) / 1000.0);
        std::string why = last_unavailable && retry_after
                              ? DescribeHttpError(last_unavailable->status, last_unavailable->body)
                          : failures.empty() ? "no answer"
                                             : failures.back();
        options.on_retry(why + "; retrying in " + secs + " s");
      }
      std::this_thread::sleep_for(wait);
    }
    if (last_unavailable) return *last_unavailable;
    char secs[32];
    std::snprintf(secs, sizeof(secs), "%.1f", static_cast<double>(options.timeout.count()) / 1000.0);
    std::string msg = std::string("no node answered within ") + secs + " s";
    std::vector<std::string> all = bad_endpoint;
    // The latest failure of each endpoint says enough.
    for (auto it = failures.rbegin(); it != failures.rend(); ++it) {
      const std::string ep = it->substr(0, it->find(": "));
      bool seen = false;
      for (const auto& f : all) seen = seen || f.rfind(ep + ": ", 0) == 0;
      if (!seen) all.push_back(*it);
    }
    for (const auto& f : all) msg += "\n  " + f;
    return Status::Unavailable(msg);
  }

  static Attempt FromResponse(http::http_response& response, const std::string& endpoint, std::string body) {
    Attempt a;
    HttpReply r;
    r.status = response.status_code();
    r.endpoint = endpoint;
    r.body = std::move(body);
    r.stale = Header(response.headers(), "Dispotify-Consistency") == "stale";
    if (r.status == 503 || r.status == 429) {
      a.retry_after = ParseRetryAfter(Header(response.headers(), "Retry-After"));
    }
    r.set_cookie = Header(response.headers(), "Set-Cookie");
    a.reply = std::move(r);
    return a;
  }

  void Authorize(http::http_request& req) const {
    if (!options.token.empty()) req.headers().add("Authorization", "Bearer " + options.token);
  }

  ClientOptions options;
  std::vector<std::unique_ptr<http::client::http_client>> clients;
  std::vector<std::string> bad_endpoint;
  size_t preferred = 0;
};

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Client::~Client() = default;

Result<HttpReply> Client::Call(std::string_view method, const std::string& target,
                               const std::string* json_body, const Headers& headers) {
  return impl_->WithFailover([&](http::client::http_client& client, const std::string& endpoint) {
    Attempt a;
    try {
      http::http_request req{http::method(method)};
      req.set_request_uri(target);
      impl_->Authorize(req);
      for (const auto& [name, value] : headers) req.headers().add(name, value);
      if (json_body != nullptr) {
        // Not set_body(std::string): cpprestsdk reads a std::string container buffer through a
        // streambuf<unsigned char> (UBSan reports the bad downcast); bytes in a vector do not.
        req.set_body(std::vector<unsigned char>(json_body->begin(), json_body->end()));
        req.headers().set_content_type("application/json");
      }
      http::http_response response = client.request(req).get();
      std::string body = response.extract_utf8string(true).get();
      return Impl::FromResponse(response, endpoint, std::move(body));
    } catch (const std::exception& e) {
      a.transport = Status::Unavailable(e.what());
    }
    return a;
  });
}

Result<HttpReply> Client::Upload(const std::string& path, uint64_t size, const std::string& target,
                                 const ProgressFn& progress, const Headers& headers) {
  return impl_->WithFailover([&](http::client::http_client& client, const std::string& endpoint) {
    Attempt a;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      a.fatal = Status::FromErrno(errno, "opening " + path);
      return a;
    }
    auto source = std::make_shared<FileSource>(fd, size);
    try {
      streams::istream body{streams::streambuf<uint8_t>(source)};
      http::http_request req(http::methods::POST);
      req.set_request_uri(target);
      req.set_body(body, size, "application/octet-stream");
      impl_->Authorize(req);
      for (const auto& [name, value] : headers) req.headers().add(name, value);
      if (progress) {
        req.set_progress_handler(
            [&progress, size](http::message_direction::direction dir, utility::size64_t n) {
              if (dir == http::message_direction::upload) progress(n, size);
            });
      }
      http::http_response response = client.request(req).get();
      std::string text = response.extract_utf8string(true).get();
      return Impl::FromResponse(response, endpoint, std::move(text));
    } catch (const std::exception& e) {
      if (!source->error().ok())
        a.fatal = source->error();
      else
        a.transport = Status::Unavailable(e.what());
    }
    return a;
  });
}

Result<HttpReply> Client::Download(const std::string& file_id, DownloadTarget* target,
                                   const ProgressFn& progress, const std::string& sha256) {
  const std::string uri =
      "/music/stream/" + PercentEncode(file_id) + (sha256.empty() ? "" : "?sha256=" + PercentEncode(sha256));
  std::string etag;  // of the first answer with the song: later attempts must serve the same bytes
  uint64_t held_before = 0;
  bool progressed = false;
  auto attempt = [&](http::client::http_client& client, const std::string& endpoint) {
    Attempt a;
    held_before = target->size();
    progressed = false;
    pplx::cancellation_token_source cancel;
    auto sink = std::make_shared<SinkBuffer>(target, &progress, cancel);
    // Whatever happens, the network thread must not wait for a decision that never comes.
    struct AbandonOnExit {
      SinkBuffer* s;
      ~AbandonOnExit() { s->Abandon(); }
    } abandon{sink.get()};
    try {
      http::http_request req(http::methods::GET);
      req.set_request_uri(uri);
      impl_->Authorize(req);
      const uint64_t from = target->size();
      if (from > 0) req.headers().add("Range", "bytes=" + std::to_string(from) + "-");
      req.set_response_stream(streams::ostream(streams::streambuf<uint8_t>(sink)));
      http::http_response response = client.request(req, cancel.get_token()).get();
      const int status = response.status_code();
      const auto& headers = response.headers();
      const std::string this_etag = Header(headers, "ETag");
      uint64_t total = 0;
      std::optional<uint64_t> first;
      const bool has_range = ParseContentRange(Header(headers, "Content-Range"), &first, &total);

      if (status == 200 || status == 206) {
        if (!etag.empty() && !this_etag.empty() && this_etag != etag) {
          a.fatal = Status::Aborted("the song changed on the server during the download (ETag " + etag +
                                    " -> " + this_etag + ")");
          return a;
        }
        if (etag.empty()) etag = this_etag;
        uint64_t start = 0;
        if (status == 206) {
          if (!has_range || !first || *first != from) {
            a.fatal = Status::IoError("the server sent another range than asked (" +
                                      Header(headers, "Content-Range") + ")");
            return a;
          }
          start = *first;
        } else {
          headers.match(http::header_names::content_length, total);
        }
        auto skip = target->Begin(start);
        if (!skip.ok()) {
          a.fatal = skip.status();
          return a;
        }
        Status s = sink->Decide(SinkBuffer::Mode::kPass, *skip, total);
        if (!s.ok()) {
          a.fatal = s;
          return a;
        }
        sink->ReportProgress(total);
        try {
          response.content_ready().get();
        } catch (const std::exception& e) {
          if (!sink->target_error().ok()) {
            a.fatal = sink->target_error();
            return a;
          }
          progressed = sink->TargetSize() > held_before;
          a.transport = Status::Unavailable(std::string("download cut short: ") + e.what());
          return a;
        }
        if (!sink->target_error().ok()) {
          a.fatal = sink->target_error();
          return a;
        }
        if (const uint64_t held = sink->TargetSize(); total > 0 && held < total) {
          progressed = held > held_before;
          a.transport = Status::Unavailable("download cut short at " + std::to_string(held) + " of " +
                                            std::to_string(total) + " bytes");
          return a;
        }
        return Impl::FromResponse(response, endpoint, "");
      }

      // 416 after asking for the rest of a partial target: complete if it holds exactly the song.
      if (status == 416 && from > 0 && has_range && !first && total == from) {
        Status s = sink->Decide(SinkBuffer::Mode::kCapture, 0, 0);
        (void)s;
        response.content_ready().wait();
        Attempt done = Impl::FromResponse(response, endpoint, "");
        done.reply->status = 200;
        done.reply->already_complete = true;
        return done;
      }
      Status s = sink->Decide(SinkBuffer::Mode::kCapture, 0, 0);
      (void)s;
      try {
        response.content_ready().get();
      } catch (const std::exception&) {
        // the error text may be cut; what arrived is enough
      }
      if (status == 416 && from > 0) {
        a.fatal = Status::FailedPrecondition("the output already holds " + std::to_string(from) +
                                             " bytes, more than the song's " + std::to_string(total) +
                                             "; not resuming (remove it or drop --resume)");
        return a;
      }
      return Impl::FromResponse(response, endpoint, sink->captured());
    } catch (const std::exception& e) {
      if (!sink->target_error().ok()) {
        a.fatal = sink->target_error();
        return a;
      }
      progressed = sink->TargetSize() > held_before;
      a.transport = Status::Unavailable(e.what());
    }
    return a;
  };
  return impl_->WithFailover(attempt, [&] { return progressed; });
}

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

std::string HttpErrorCode(std::string_view body) {
  try {
    const auto v = web::json::value::parse(std::string(body));
    if (v.is_object() && v.has_field("error") && v.at("error").is_object()) {
      const auto& e = v.at("error");
      if (e.has_field("code") && e.at("code").is_string()) return e.at("code").as_string();
    }
  } catch (const std::exception&) {
    // not JSON: no code
  }
  return "";
}

std::string DescribeHttpError(int status, std::string_view body) {
  std::string out = "HTTP " + std::to_string(status);
  try {
    const auto v = web::json::value::parse(std::string(body));
    if (v.is_object() && v.has_field("error") && v.at("error").is_object()) {
      const auto& e = v.at("error");
      if (e.has_field("code") && e.at("code").is_string()) out += " " + e.at("code").as_string();
      if (e.has_field("message") && e.at("message").is_string()) out += ": " + e.at("message").as_string();
      return out;
    }
  } catch (const std::exception&) {
    // not JSON: show the text itself
  }
  std::string text(body.substr(0, 200));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  if (!text.empty()) out += ": " + text;
  return out;
}

std::optional<double> ParseRetryAfter(std::string_view value) {
  if (value.empty() || value.size() > 9) return std::nullopt;
  uint64_t seconds = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return std::nullopt;
    seconds = seconds * 10 + static_cast<uint64_t>(c - '0');
  }
  return static_cast<double>(seconds);
}

}  // namespace dispotify::rest
