#pragma once
// The text of OpenSSL's per-thread error queue, for Status messages and logs: one definition for
// every module that calls OpenSSL (the cluster PKI, the TLS contexts and connections of
// common/tls, the HTTPS server), instead of a helper per file.

#include <string>

namespace dispotify {

// Every error in this thread's OpenSSL queue as one line ("a; b"), emptying the queue so that
// the next call starts clean; "no OpenSSL error recorded" when it is empty.
std::string OpenSslErrors();

// What went wrong in an SSL_read/SSL_write/SSL_do_handshake-style call whose SSL_get_error() was
// `ssl_error`: the queued OpenSSL errors, else the socket's errno (SSL_ERROR_SYSCALL), else a
// peer's close_notify or the code. Empties the queue.
std::string SslIoError(int ssl_error);

}  // namespace dispotify
