#pragma once
// The SSL_CTX of a public TLS server (the node's REST API over HTTPS), built from a certificate
// chain and key in PEM files and rebuilt when they change, so a certificate from cert-manager,
// Let's Encrypt or dispotify-pki rotates with no restart.
//
// Unlike credentials.h (node-to-node mTLS), the certificate is not required to name a dispotify
// identity: browsers and clients check it by host name. Optionally a client CA file turns on
// mutual TLS (clients must present a certificate that verifies against it).
//
// Change detection: the files' stamps (file_watch.h) are polled. A changed set is adopted only
// once it is whole: the chain and key parse and the key matches the leaf. Anything else (a rotation
// caught half-way) keeps the current context and is retried at every poll. A swap only affects
// connections accepted afterwards: each SSL object holds a reference to the context it was made
// from, so a connection already open keeps its handshake's certificate until it closes.
//
// Protocol: TLS 1.2 minimum (1.3 whenever the client has it), AEAD suites with forward secrecy only
// in the server's order (AES-128-GCM first), no
// renegotiation, kernel TLS offload requested (SSL_OP_ENABLE_KTLS: used only when the kernel has
// the `tls` module and the cipher suits it; otherwise OpenSSL encrypts in user space).

#include <openssl/ssl.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"
#include "common/tls/file_watch.h"

namespace dispotify::tls {

struct ServerContextFiles {
  std::string cert;  // the leaf first, then its intermediates
  std::string key;
  std::string client_ca;  // "": clients are not asked for a certificate
};

// One immutable SSL_CTX (shared: new connections take a reference, the old one lives as long as a
// connection made from it).
using SharedSslCtx = std::shared_ptr<SSL_CTX>;

// Builds a server context from PEM text. Exposed for tests and benchmarks.
Result<SharedSslCtx> NewServerContext(const std::string& cert_pem, const std::string& key_pem,
                                      const std::string& client_ca_pem);

class ReloadingServerContext {
 public:
  // The first load must succeed (a server that was asked for TLS does not start without it).
  static Result<std::unique_ptr<ReloadingServerContext>> Load(ServerContextFiles files,
                                                              std::chrono::milliseconds poll_interval);
  ~ReloadingServerContext();
  ReloadingServerContext(const ReloadingServerContext&) = delete;
  ReloadingServerContext& operator=(const ReloadingServerContext&) = delete;

  // A thread that calls Poll() every poll_interval until Stop() or destruction.
  void Start();
  void Stop();
  // Looks at the files now: OK when unchanged or a change was adopted, the refusal otherwise.
  Status Poll();

  SharedSslCtx Current() const;
  uint64_t generation() const;       // 1 for the first load, +1 per adopted change
  uint64_t refused_reloads() const;  // changed sets that were not whole
  Status last_error() const;

 private:
  struct Stamps {
    FileStamp cert, key, client_ca;
    bool operator==(const Stamps&) const = default;
  };
  struct Loaded {
    SharedSslCtx ctx;
    std::string cert_pem, key_pem, client_ca_pem;
  };

  ReloadingServerContext(ServerContextFiles files, std::chrono::milliseconds poll_interval);
  Result<Stamps> StatAll() const;
  Result<Loaded> ReadAndBuild() const;
  void RunPoller();

  const ServerContextFiles files_;
  const std::chrono::milliseconds poll_interval_;

  std::mutex poll_mu_;  // one Poll() at a time; taken before mu_

  mutable std::mutex mu_;  // guards everything below
  Loaded current_;
  Stamps stamps_;
  uint64_t generation_ = 0;
  uint64_t refused_ = 0;
  Status last_error_;

  std::mutex thread_mu_;
  std::condition_variable thread_cv_;
  bool stop_ = false;
  std::thread poller_;
};

}  // namespace dispotify::tls
