#pragma once
// A blocking TLS client connection: what tests, the e2e suite and the benchmarks use to speak
// HTTPS to a node byte by byte (the REST client, common/rest, goes through cpprestsdk instead).

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/tls/server_context.h"

namespace dispotify::tls {

// Verifies the server against `ca_pem` only (never the system's roots); TLS 1.2 minimum.
Result<SharedSslCtx> NewClientContext(const std::string& ca_pem);

class TlsClientConn {
 public:
  // Connects to ip:port and handshakes; the certificate must verify and name `host` (an IP literal
  // is checked against the IP SANs, a name against the DNS SANs and sent as SNI). Every read and
  // write waits at most `timeout`.
  static Result<std::unique_ptr<TlsClientConn>> Connect(const std::string& ip, uint16_t port, SSL_CTX* ctx,
                                                        const std::string& host,
                                                        std::chrono::milliseconds timeout);
  ~TlsClientConn();
  TlsClientConn(const TlsClientConn&) = delete;
  TlsClientConn& operator=(const TlsClientConn&) = delete;

  Status WriteAll(std::string_view data);
  // Up to `max` decrypted bytes; 0 when the server closed the connection.
  Result<size_t> Read(char* buf, size_t max);
  SSL* ssl() const { return ssl_; }

 private:
  TlsClientConn(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}
  int fd_;
  SSL* ssl_;
};

}  // namespace dispotify::tls
