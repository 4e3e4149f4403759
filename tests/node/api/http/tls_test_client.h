#pragma once
// TestClient's TLS twin: one blocking HTTPS connection (common/tls/client_conn.h) with the same
// response parsing, for the HTTPS server tests, the e2e suite and benchmarks' checks. Link
// dispotify_tls.

#include <openssl/bn.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/tls/client_conn.h"
#include "tests/node/api/http/test_client.h"

namespace dispotify::api::http::testing {

class TlsTestClient {
 public:
  TlsTestClient(uint16_t port, SSL_CTX* ctx, const std::string& host = "127.0.0.1", int timeout_ms = 20000) {
    auto conn =
        tls::TlsClientConn::Connect("127.0.0.1", port, ctx, host, std::chrono::milliseconds(timeout_ms));
    if (conn.ok()) {
      conn_ = std::move(conn).value();
    } else {
      error_ = conn.status();
    }
  }

  bool connected() const { return conn_ != nullptr; }
  // Why the connection or its handshake failed.
  const Status& error() const { return error_; }
  SSL* ssl() const { return conn_ ? conn_->ssl() : nullptr; }

  bool Send(std::string_view data) { return conn_ && conn_->WriteAll(data).ok(); }

  std::optional<ClientResponse> ReadResponse(bool head_request = false) {
    if (!conn_) return std::nullopt;
    return ParseResponse(
        buf_,
        [this] {
          char tmp[64 * 1024];
          auto n = conn_->Read(tmp, sizeof(tmp));
          if (!n.ok() || *n == 0) return false;
          buf_.append(tmp, *n);
          return true;
        },
        head_request);
  }

  // The serial number (hex) of the certificate the server presented; "" when none.
  std::string PeerSerial() const {
    if (!conn_) return "";
    X509* peer = SSL_get1_peer_certificate(conn_->ssl());
    if (peer == nullptr) return "";
    BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(peer), nullptr);
    char* hex = BN_bn2hex(bn);
    std::string out = hex;
    OPENSSL_free(hex);
    BN_free(bn);
    X509_free(peer);
    return out;
  }

 private:
  std::unique_ptr<tls::TlsClientConn> conn_;
  Status error_;
  std::string buf_;
};

// One request on a fresh HTTPS connection to 127.0.0.1:port (HttpCall's twin, e2e/http_helpers.h).
inline std::optional<ClientResponse> HttpsCall(uint16_t port, SSL_CTX* ctx, const std::string& method,
                                               const std::string& target, const std::string& body = "",
                                               const std::string& extra_headers = "") {
  TlsTestClient client(port, ctx);
  if (!client.connected()) return std::nullopt;
  std::string req =
      method + " " + target + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n" + extra_headers;
  if (!body.empty() || method == "POST" || method == "PUT")
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  if (!client.Send(req)) return std::nullopt;
  return client.ReadResponse(method == "HEAD");
}

}  // namespace dispotify::api::http::testing
