#include "common/tls/ssl_context.h"

#include "common/openssl_error.h"

namespace dispotify::tls {
namespace {

Status SslError(std::string_view what) {
  return Status::IoError(std::string(what) + ": " + OpenSslErrors());
}

}  // namespace

Result<SslCtxPtr> NewSslContext(const CredentialBundle& bundle, Side side) {
  auto chain = CertsFromPem(bundle.cert_pem);
  if (!chain.ok()) return chain.status();
  auto key = KeyFromPem(bundle.key_pem);
  if (!key.ok()) return key.status();
  auto roots = CertsFromPem(bundle.ca_pem);
  if (!roots.ok()) return roots.status();

  SslCtxPtr ctx(SSL_CTX_new(side == Side::kServer ? TLS_server_method() : TLS_client_method()));
  if (!ctx) return SslError("creating an SSL context");
  if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1)
    return SslError("setting TLS 1.2 minimum");
  if (SSL_CTX_use_certificate(ctx.get(), chain->front().get()) != 1) return SslError("using the certificate");
  for (size_t i = 1; i < chain->size(); ++i) {
    if (SSL_CTX_add1_chain_cert(ctx.get(), (*chain)[i].get()) != 1)
      return SslError("adding a chain certificate");
  }
  if (SSL_CTX_use_PrivateKey(ctx.get(), key->get()) != 1) return SslError("using the key");
  if (SSL_CTX_check_private_key(ctx.get()) != 1) return SslError("checking the key");
  X509_STORE* store = SSL_CTX_get_cert_store(ctx.get());
  for (const auto& root : *roots) {
    if (X509_STORE_add_cert(store, root.get()) != 1) return SslError("trusting the CA");
  }
  // Only our CA is trusted: the system's roots would let any public certificate in.
  int mode = SSL_VERIFY_PEER;
  if (side == Side::kServer) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  SSL_CTX_set_verify(ctx.get(), mode, nullptr);
  return ctx;
}

Result<Identity> PeerIdentity(SSL* ssl) {
  X509Ptr peer(SSL_get1_peer_certificate(ssl));
  if (!peer) return Status::InvalidArgument("the peer presented no certificate");
  if (SSL_get_verify_result(ssl) != X509_V_OK)
    return Status::InvalidArgument("the peer's certificate did not verify");
  return ParseIdentity(peer.get());
}

}  // namespace dispotify::tls
