#pragma once
// An OpenSSL SSL_CTX for mutual TLS from a credentials bundle: what Beast's ssl::context wraps
// (its native_handle()) and what the handshake tests drive directly.
//
// Both sides present their certificate and require the peer's, verified against the bundle's CA;
// TLS 1.2 is the floor (1.3 is negotiated whenever both ends have it). No host-name check: peers
// are told apart by the SPIFFE identity in their certificate (pki.h), which the caller reads with
// PeerIdentity() and judges (policy.h) — the client included, when it expects a given node.

#include <openssl/ssl.h>

#include <memory>

#include "common/status.h"
#include "common/tls/credentials.h"
#include "common/tls/pki.h"

namespace dispotify::tls {

using ::dispotify::SslCtxPtr;

enum class Side : uint8_t { kServer, kClient };

Result<SslCtxPtr> NewSslContext(const CredentialBundle& bundle, Side side);

// The identity in the certificate the peer presented during a completed handshake.
Result<Identity> PeerIdentity(SSL* ssl);

}  // namespace dispotify::tls
