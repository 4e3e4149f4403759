#include "common/openssl_error.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>

#include "common/status.h"

namespace dispotify {
namespace {

// The queue as one line; empty when it holds nothing.
std::string DrainQueue() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

}  // namespace

std::string OpenSslErrors() {
  std::string out = DrainQueue();
  return out.empty() ? "no OpenSSL error recorded" : out;
}

std::string SslIoError(int ssl_error) {
  const int saved_errno = errno;  // read before anything else can change it
  std::string queued = DrainQueue();
  if (!queued.empty()) return queued;
  if (ssl_error == SSL_ERROR_SYSCALL) {
    return saved_errno != 0 ? Status::FromErrno(saved_errno, "socket").message() : "connection closed";
  }
  if (ssl_error == SSL_ERROR_ZERO_RETURN) return "closed by the peer (close_notify)";
  return "TLS error " + std::to_string(ssl_error);
}

}  // namespace dispotify
