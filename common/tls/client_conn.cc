#include "common/tls/client_conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include "common/openssl_error.h"
#include "common/tls/pki.h"

namespace dispotify::tls {
namespace {}  // namespace

Result<SharedSslCtx> NewClientContext(const std::string& ca_pem) {
  auto roots = CertsFromPem(ca_pem);
  if (!roots.ok()) return roots.status();
  SharedSslCtx ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (!ctx) return Status::IoError("SSL_CTX_new: " + SslIoError(0));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // A server closing without close_notify reads as EOF (Read returns 0); HTTP framing tells.
  SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
  X509_STORE* store = SSL_CTX_get_cert_store(ctx.get());
  for (const auto& root : *roots) {
    if (X509_STORE_add_cert(store, root.get()) != 1)
      return Status::InvalidArgument("trusting the CA: " + SslIoError(0));
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  return ctx;
}

Result<std::unique_ptr<TlsClientConn>> TlsClientConn::Connect(const std::string& ip, uint16_t port,
                                                              SSL_CTX* ctx, const std::string& host,
                                                              std::chrono::milliseconds timeout) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1)
    return Status::InvalidArgument("bad IPv4 address " + ip);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno(errno, "socket");
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    Status s = Status::FromErrno(errno, "connect " + ip + ":" + std::to_string(port));
    ::close(fd);
    return s;
  }
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) {
    ::close(fd);
    return Status::IoError("SSL_new: " + SslIoError(0));
  }
  std::unique_ptr<TlsClientConn> conn(new TlsClientConn(fd, ssl));
  SSL_set_fd(ssl, fd);
  in6_addr ignored;
  const bool is_ip =
      ::inet_pton(AF_INET, host.c_str(), &ignored) == 1 || ::inet_pton(AF_INET6, host.c_str(), &ignored) == 1;
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (is_ip) {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    // SSL_set_tlsext_host_name is a macro with a C cast; the control call it stands for:
    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(host.c_str()));
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
  }
  ERR_clear_error();
  int r = SSL_connect(ssl);
  if (r != 1) {
    const int err = SSL_get_error(ssl, r);
    std::string why = SslIoError(err);
    const long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) why += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
    return Status::Unavailable("TLS handshake with " + ip + ":" + std::to_string(port) + ": " + why);
  }
  return conn;
}

TlsClientConn::~TlsClientConn() {
  SSL_free(ssl_);
  ::close(fd_);
}

Status TlsClientConn::WriteAll(std::string_view data) {
  while (!data.empty()) {
    ERR_clear_error();
    const int n = SSL_write(ssl_, data.data(), static_cast<int>(std::min<size_t>(data.size(), INT_MAX)));
    if (n <= 0) return Status::Aborted("TLS write: " + SslIoError(SSL_get_error(ssl_, n)));
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Result<size_t> TlsClientConn::Read(char* buf, size_t max) {
  ERR_clear_error();
  const int n = SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(max, INT_MAX)));
  if (n > 0) return static_cast<size_t>(n);
  const int err = SSL_get_error(ssl_, n);
  if (err == SSL_ERROR_ZERO_RETURN) return size_t{0};
  if (err == SSL_ERROR_SYSCALL && errno == 0) return size_t{0};
  if (err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))
    return Status::Timeout("TLS read timed out");
  return Status::Aborted("TLS read: " + SslIoError(err));
}

}  // namespace dispotify::tls
