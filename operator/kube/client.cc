// KubeApi over HTTPS with cpprestsdk's http_client (the project's HTTP client). Ordinary calls
// read the whole answer; a watch hands its body to WatchSink, a stream buffer of our own that
// keeps the bytes until the watching thread takes them line by line (the network thread waits when
// more than kMaxPendingBytes are waiting, so memory stays bounded), and that a stop request
// abandons at once.

#include "operator/kube/client.h"

#include <cpprest/astreambuf.h>
#include <cpprest/http_client.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>

namespace dispotify::op::kube {
namespace {

namespace http = web::http;
namespace json = web::json;
namespace streams = concurrency::streams;

constexpr size_t kMaxPendingBytes = size_t{16} << 20;
constexpr size_t kMaxErrorBody = size_t{64} << 10;  // of an error answer, kept for its message

// The body of a watch answer. cpprestsdk writes into it from its network threads; the thread
// that called Watch takes whole lines out.
class WatchSink : public streams::details::streambuf_state_manager<uint8_t> {
 public:
  WatchSink() : streambuf_state_manager(std::ios_base::out) {}

  // Waits for the next line. False at the end of the body (Finish) or once abandoned.
  bool NextLine(std::string* line) {
    std::unique_lock lock(mu_);
    while (true) {
      if (abandoned_) return false;
      if (auto l = lines_.Next()) {
        *line = std::move(*l);
        cv_.notify_all();  // room for the writer
        return true;
      }
      if (finished_) return false;
      cv_.wait(lock);
    }
  }
  // The body so far, unread (an error answer's), up to kMaxErrorBody.
  std::string Text() {
    std::lock_guard lock(mu_);
    return lines_.Rest().substr(0, kMaxErrorBody);
  }
  // The body is complete (`s` OK) or cut (`s` says why).
  void Finish(Status s) {
    std::lock_guard lock(mu_);
    finished_ = true;
    end_ = std::move(s);
    cv_.notify_all();
  }
  // Waits until Finish, or `timeout`. False on a timeout.
  bool WaitFinished(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return finished_ || abandoned_; });
  }
  Status end() {
    std::lock_guard lock(mu_);
    return end_;
  }
  // Nobody reads any more: the network thread must never wait again.
  void Abandon() {
    std::lock_guard lock(mu_);
    abandoned_ = true;
    cv_.notify_all();
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
  // Never an exceptional task: cpprestsdk would then close the buffer with a blocking wait on its
  // own thread pool, from a pool thread. Bytes nobody will read are dropped instead.
  pplx::task<size_t> _putn(const uint8_t* ptr, size_t count) override {
    const char* data = reinterpret_cast<const char*>(ptr);
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return abandoned_ || lines_.pending() < kMaxPendingBytes; });
    if (abandoned_) return pplx::task_from_result(count);
    lines_.Append(std::string_view(data, count));
    cv_.notify_all();
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
  std::mutex mu_;
  std::condition_variable cv_;
  LineSplitter lines_;
  bool finished_ = false;
  bool abandoned_ = false;
  Status end_;
};

// The TLS settings of the configuration, applied to each new connection's context (after
// cpprestsdk's own defaults, which trust the system's roots: a configured CA replaces them).
void ConfigureTls(boost::asio::ssl::context& ctx, const std::string& ca_pem, const std::string& cert_pem,
                  const std::string& key_pem) {
  if (!ca_pem.empty()) {
    X509_STORE* store = X509_STORE_new();
    if (store == nullptr) throw std::runtime_error("X509_STORE_new failed");
    BIO* bio = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
    int added = 0;
    while (bio != nullptr) {
      X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
      if (cert == nullptr) break;
      if (X509_STORE_add_cert(store, cert) == 1) ++added;
      X509_free(cert);
    }
    ERR_clear_error();  // the end of the PEM text leaves a "no start line" error behind
    BIO_free(bio);
    SSL_CTX_set_cert_store(ctx.native_handle(), store);  // takes the store
    if (added == 0) throw std::runtime_error("the CA data holds no PEM certificate");
  }
  if (!cert_pem.empty()) {
    ctx.use_certificate_chain(boost::asio::buffer(cert_pem));
    ctx.use_private_key(boost::asio::buffer(key_pem), boost::asio::ssl::context::pem);
  }
}

// Fills in kind and apiVersion, which the server leaves out of a list's items.
void FillTypeMeta(json::value* item, const std::string& list_kind, const std::string& api_version) {
  if (!item->is_object()) return;
  if (!item->has_field("kind") && list_kind.size() > 4 && list_kind.ends_with("List")) {
    (*item)["kind"] = json::value::string(list_kind.substr(0, list_kind.size() - 4));
  }
  if (!item->has_field("apiVersion") && !api_version.empty()) {
    (*item)["apiVersion"] = json::value::string(api_version);
  }
}

class HttpsKubeApi final : public KubeApi {
 public:
  HttpsKubeApi(KubeConfig config, HttpOptions options)
      : config_(std::move(config)), options_(std::move(options)), token_(config_) {
    client_ = std::make_unique<http::client::http_client>(config_.server,
                                                          MakeClientConfig(options_.request_timeout));
  }

  Result<json::value> Get(const ResourceRef& ref) override {
    return Call(http::methods::GET, ResourcePath(ref), nullptr, "", "get " + Describe(ref));
  }

  Result<ObjectList> List(const ResourceRef& ref, const ListOptions& options) override {
    ObjectList out;
    std::string cont;
    const std::string what = "list " + Describe(ref);
    do {
      std::vector<std::pair<std::string, std::string>> q = {
          {"labelSelector", options.label_selector},
          {"fieldSelector", options.field_selector},
          {"limit", options.page_size > 0 ? std::to_string(options.page_size) : ""},
          {"continue", cont},
      };
      // A continued list reads the snapshot of its first page: it takes no resourceVersion.
      if (cont.empty()) q.emplace_back("resourceVersion", options.resource_version);
      auto page = Call(http::methods::GET, ResourcePath(ref) + EncodeQuery(q), nullptr, "", what);
      if (!page.ok()) return page.status();
      json::value& v = *page;
      const std::string kind =
          v.has_field("kind") && v.at("kind").is_string() ? v.at("kind").as_string() : "";
      const std::string api_version =
          v.has_field("apiVersion") && v.at("apiVersion").is_string() ? v.at("apiVersion").as_string() : "";
      if (v.has_field("items") && v.at("items").is_array()) {
        for (auto& item : v["items"].as_array()) {
          FillTypeMeta(&item, kind, api_version);
          out.items.push_back(std::move(item));
        }
      }
      out.resource_version = MetaString(v, "resourceVersion");
      cont = MetaString(v, "continue");
    } while (!cont.empty());
    return out;
  }

  Status Watch(const ResourceRef& ref, const WatchOptions& options, const WatchHandler& handler,
               std::stop_token stop) override {
    const std::string what = "watch " + Describe(ref);
    const std::string target =
        ResourcePath(ref) + EncodeQuery({
                                {"watch", "true"},
                                {"allowWatchBookmarks", options.allow_bookmarks ? "true" : ""},
                                {"resourceVersion", options.resource_version},
                                {"timeoutSeconds", std::to_string(options.timeout.count())},
                                {"labelSelector", options.label_selector},
                                {"fieldSelector", options.field_selector},
                            });
    auto token = token_.Token();
    if (!token.ok()) return token.status();

    auto sink = std::make_shared<WatchSink>();
    pplx::cancellation_token_source cancel;
    // Whatever ends this call, the request ends with it and the network thread never waits on us.
    struct EndRequest {
      WatchSink* sink;
      pplx::cancellation_token_source* cancel;
      ~EndRequest() {
        sink->Abandon();
        cancel->cancel();
      }
    } end_request{sink.get(), &cancel};
    std::stop_callback on_stop(stop, [&] {
      sink->Abandon();
      cancel.cancel();
    });
    if (stop.stop_requested()) return Status::Ok();

    // A client of its own: a silent watch may last its timeoutSeconds, and cancelling it closes only
    // its connection.
    std::optional<http::client::http_client> client;
    try {
      client.emplace(config_.server,
                     MakeClientConfig(std::chrono::duration_cast<std::chrono::milliseconds>(options.timeout) +
                                      options_.watch_margin));
      http::http_request req(http::methods::GET);
      req.set_request_uri(target);
      Authorize(req, *token);
      req.set_response_stream(streams::ostream(streams::streambuf<uint8_t>(sink)));
      http::http_response response = client->request(req, cancel.get_token()).get();
      const int status = response.status_code();
      if (status != 200) {
        response.content_ready().wait();
        if (status == 401) token_.Invalidate();
        return ApiError(status, sink->Text(), what);
      }
      response.content_ready().then([sink](const pplx::task<http::http_response>& t) {
        try {
          t.get();
          sink->Finish(Status::Ok());
        } catch (const std::exception& e) {
          sink->Finish(Status::Unavailable(std::string("watch cut: ") + e.what()));
        }
      });
    } catch (const std::exception& e) {
      if (stop.stop_requested()) return Status::Ok();
      return Transport(e, what);
    }

    std::string line;
    while (sink->NextLine(&line)) {
      auto event = ParseWatchEvent(line);
      if (!event.ok()) return event.status();
      handler(*event);
      if (event->type == WatchEventType::kError) return ApiErrorFromStatusObject(event->object, what);
    }
    if (stop.stop_requested()) return Status::Ok();
    return sink->end();
  }

  Result<json::value> Create(const ResourceRef& ref, const json::value& object) override {
    ResourceRef collection = ref;
    collection.name.clear();
    collection.subresource.clear();
    return Call(http::methods::POST, ResourcePath(collection), &object, "application/json",
                "create " + Describe(ref));
  }

  Result<json::value> Update(const ResourceRef& ref, const json::value& object) override {
    return Call(http::methods::PUT, ResourcePath(ref), &object, "application/json",
                "update " + Describe(ref));
  }

  Status Delete(const ResourceRef& ref, const DeleteOptions& options) override {
    json::value body = json::value::object();
    body["apiVersion"] = json::value::string("v1");
    body["kind"] = json::value::string("DeleteOptions");
    if (!options.propagation_policy.empty()) {
      body["propagationPolicy"] = json::value::string(options.propagation_policy);
    }
    if (!options.precondition_uid.empty() || !options.precondition_resource_version.empty()) {
      json::value pre = json::value::object();
      if (!options.precondition_uid.empty()) pre["uid"] = json::value::string(options.precondition_uid);
      if (!options.precondition_resource_version.empty()) {
        pre["resourceVersion"] = json::value::string(options.precondition_resource_version);
      }
      body["preconditions"] = pre;
    }
    auto r =
        Call(http::methods::DEL, ResourcePath(ref), &body, "application/json", "delete " + Describe(ref));
    return r.status();
  }

  Result<json::value> Apply(const ResourceRef& ref, const json::value& object) override {
    const std::string q = EncodeQuery({{"fieldManager", options_.field_manager}, {"force", "true"}});
    return Call(http::methods::PATCH, ResourcePath(ref) + q, &object, "application/apply-patch+yaml",
                "apply " + Describe(ref));
  }

  Result<json::value> MergePatch(const ResourceRef& ref, const json::value& patch) override {
    const std::string q = EncodeQuery({{"fieldManager", options_.field_manager}});
    return Call(http::methods::PATCH, ResourcePath(ref) + q, &patch, "application/merge-patch+json",
                "patch " + Describe(ref));
  }

 private:
  http::client::http_client_config MakeClientConfig(std::chrono::milliseconds timeout) const {
    http::client::http_client_config c;
    c.set_timeout(timeout);
    if (config_.insecure_skip_tls_verify) {
      c.set_validate_certificates(false);
    } else {
      c.set_validate_certificates(true);
    }
    std::string ca = config_.ca_pem, cert = config_.client_cert_pem, key = config_.client_key_pem;
    if (!ca.empty() || !cert.empty()) {
      c.set_ssl_context_callback([ca = std::move(ca), cert = std::move(cert), key = std::move(key)](
                                     boost::asio::ssl::context& ctx) { ConfigureTls(ctx, ca, cert, key); });
    }
    return c;
  }

  void Authorize(http::http_request& req, const std::string& token) const {
    if (!token.empty()) req.headers().add("Authorization", "Bearer " + token);
    req.headers().add("Accept", "application/json");
    req.headers().add("User-Agent", options_.user_agent);
  }

  static Status Transport(const std::exception& e, const std::string& what) {
    if (const auto* he = dynamic_cast<const http::http_exception*>(&e);
        he != nullptr && he->error_code() == std::errc::timed_out) {
      return Status::Timeout(what + ": no answer from the API server in time");
    }
    return Status::Unavailable(what + ": " + e.what());
  }

  // One request and its whole answer, parsed as JSON. A 401 with a token file re-reads the token and
  // tries once more (the kubelet may have rotated it).
  Result<json::value> Call(const http::method& method, const std::string& target, const json::value* body,
                           const std::string& content_type, const std::string& what) {
    std::string payload;
    if (body != nullptr) payload = body->serialize();
    for (int attempt = 0;; ++attempt) {
      auto token = token_.Token();
      if (!token.ok()) return token.status();
      int status = 0;
      std::string text;
      try {
        http::http_request req(method);
        req.set_request_uri(target);
        Authorize(req, *token);
        if (body != nullptr) {
          // Not set_body(std::string): cpprestsdk reads a std::string container buffer through a
          // streambuf<unsigned char> (UBSan reports the bad downcast); bytes in a vector do not.
          req.set_body(std::vector<unsigned char>(payload.begin(), payload.end()));
          req.headers().set_content_type(content_type);
        }
        http::http_response response = client_->request(req).get();
        status = response.status_code();
        text = response.extract_utf8string(true).get();
      } catch (const std::exception& e) {
        return Transport(e, what);
      }
      if (status == 401 && attempt == 0 && !config_.token_file.empty()) {
        token_.Invalidate();
        continue;
      }
      if (status < 200 || status >= 300) return ApiError(status, text, what);
      if (text.empty()) return json::value::object();
      try {
        return json::value::parse(text);
      } catch (const std::exception& e) {
        return Status::Corruption(what + ": the answer is not JSON (" + e.what() + ")");
      }
    }
  }

  const KubeConfig config_;
  const HttpOptions options_;
  TokenSource token_;
  std::unique_ptr<http::client::http_client> client_;
};

}  // namespace

Status RetryOnConflict(const std::function<Status()>& attempt, int max_attempts) {
  auto wait = std::chrono::milliseconds(10);
  for (int i = 1;; ++i) {
    Status s = attempt();
    if (!IsConflict(s) || i >= max_attempts) return s;
    std::this_thread::sleep_for(wait);
    wait *= 2;
  }
}

Result<std::unique_ptr<KubeApi>> NewHttpsKubeApi(const KubeConfig& config, const HttpOptions& options) {
  if (config.server.empty()) return Status::InvalidArgument("no API server address");
  // Try the certificates now, so that a bad one is reported here rather than by every request.
  if (!config.ca_pem.empty() || !config.client_cert_pem.empty()) {
    try {
      boost::asio::ssl::context ctx(boost::asio::ssl::context::sslv23);
      ConfigureTls(ctx, config.ca_pem, config.client_cert_pem, config.client_key_pem);
    } catch (const std::exception& e) {
      return Status::InvalidArgument("the TLS settings of " + config.source + " cannot be used: " + e.what());
    }
  }
  try {
    return std::unique_ptr<KubeApi>(std::make_unique<HttpsKubeApi>(config, options));
  } catch (const std::exception& e) {
    return Status::InvalidArgument("API server " + config.server + ": " + e.what());
  }
}

}  // namespace dispotify::op::kube
