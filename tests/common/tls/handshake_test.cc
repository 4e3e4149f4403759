// Mutual TLS between two in-process OpenSSL endpoints joined by a memory BIO pair: the contexts are
// the ones NewSslContext builds for the node, so what passes here is what a peer will see.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/tls/ssl_context.h"

namespace dispotify::tls {
namespace {

struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;

CredentialBundle Bundle(const CertifiedKey& ca, Identity id, Validity v) {
  auto leaf = IssueLeaf(ca, LeafRequest{std::move(id), {}, {}, v});
  EXPECT_TRUE(leaf.ok()) << leaf.status().ToString();
  CredentialBundle b;
  b.cert_pem = *CertToPem(leaf->cert.get());
  b.key_pem = *KeyToPem(leaf->key.get());
  b.ca_pem = *CertToPem(ca.cert.get());
  return b;
}

struct Endpoint {
  SslPtr ssl;
  bool done = false;
  bool failed = false;
  std::string error;
};

// Runs both handshakes to completion or failure, then sends a byte each way: in TLS 1.3 a client
// finishes its handshake before the server has judged its certificate, and only learns of a
// refusal from the alert that arrives instead of the server's data.
struct Session {
  Endpoint server, client;
  bool exchanged = false;

  Session(SSL_CTX* server_ctx, SSL_CTX* client_ctx) {
    server.ssl.reset(SSL_new(server_ctx));
    client.ssl.reset(SSL_new(client_ctx));
    BIO* sb = nullptr;
    BIO* cb = nullptr;
    EXPECT_EQ(BIO_new_bio_pair(&sb, 0, &cb, 0), 1);
    SSL_set_bio(server.ssl.get(), sb, sb);
    SSL_set_bio(client.ssl.get(), cb, cb);
    SSL_set_accept_state(server.ssl.get());
    SSL_set_connect_state(client.ssl.get());
    for (int round = 0; round < 50; ++round) {
      Step(client);
      Step(server);
      if ((client.done || client.failed) && (server.done || server.failed)) break;
    }
    if (!client.done || !server.done) return;
    char byte = 0;
    bool sent = SSL_write(client.ssl.get(), "p", 1) == 1 && SSL_read(server.ssl.get(), &byte, 1) == 1 &&
                SSL_write(server.ssl.get(), "q", 1) == 1;
    exchanged = sent && SSL_read(client.ssl.get(), &byte, 1) == 1 && byte == 'q';
    ERR_clear_error();
  }

  static void Step(Endpoint& e) {
    if (e.done || e.failed) return;
    int r = SSL_do_handshake(e.ssl.get());
    if (r == 1) {
      e.done = true;
      return;
    }
    int err = SSL_get_error(e.ssl.get(), r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
    e.failed = true;
    char buf[256] = {};
    ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
    e.error = buf;
    ERR_clear_error();
  }
};

class HandshakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    now_ = std::chrono::system_clock::now();
    ca_ = std::move(CreateCa("c1", Validity::Days(now_, 30))).value();
    other_ca_ = std::move(CreateCa("c1", Validity::Days(now_, 30))).value();
  }
  SslCtxPtr Ctx(const CredentialBundle& b, Side side) {
    auto ctx = NewSslContext(b, side);
    EXPECT_TRUE(ctx.ok()) << ctx.status().ToString();
    return std::move(ctx).value();
  }

  TimePoint now_;
  CertifiedKey ca_, other_ca_;
};

TEST_F(HandshakeTest, MutualTls13SeesBothIdentities) {
  auto server_ctx = Ctx(Bundle(ca_, Identity::Node("c1", NodeId(1)), Validity::Days(now_, 1)), Side::kServer);
  auto client_ctx = Ctx(Bundle(ca_, Identity::Node("c1", NodeId(2)), Validity::Days(now_, 1)), Side::kClient);
  Session s(server_ctx.get(), client_ctx.get());
  ASSERT_TRUE(s.server.done) << s.server.error;
  ASSERT_TRUE(s.client.done) << s.client.error;
  EXPECT_TRUE(s.exchanged);
  EXPECT_EQ(SSL_version(s.server.ssl.get()), TLS1_3_VERSION);

  auto seen_by_server = PeerIdentity(s.server.ssl.get());
  auto seen_by_client = PeerIdentity(s.client.ssl.get());
  ASSERT_TRUE(seen_by_server.ok()) << seen_by_server.status().ToString();
  ASSERT_TRUE(seen_by_client.ok()) << seen_by_client.status().ToString();
  EXPECT_EQ(*seen_by_server, Identity::Node("c1", NodeId(2)));
  EXPECT_EQ(*seen_by_client, Identity::Node("c1", NodeId(1)));
}

TEST_F(HandshakeTest, ClientFromAnotherCaIsRefused) {
  auto server_ctx = Ctx(Bundle(ca_, Identity::Node("c1", NodeId(1)), Validity::Days(now_, 1)), Side::kServer);
  // Its own trust store holds our CA, so only the server's check stands in its way.
  CredentialBundle foreign = Bundle(other_ca_, Identity::Node("c1", NodeId(2)), Validity::Days(now_, 1));
  foreign.ca_pem = *CertToPem(ca_.cert.get());
  auto client_ctx = Ctx(foreign, Side::kClient);
  Session s(server_ctx.get(), client_ctx.get());
  EXPECT_TRUE(s.server.failed);
  EXPECT_NE(s.server.error.find("certificate verify failed"), std::string::npos) << s.server.error;
  EXPECT_FALSE(s.exchanged);
}

TEST_F(HandshakeTest, ServerFromAnotherCaIsRefused) {
  CredentialBundle foreign = Bundle(other_ca_, Identity::Node("c1", NodeId(1)), Validity::Days(now_, 1));
  foreign.ca_pem = *CertToPem(ca_.cert.get());
  auto server_ctx = Ctx(foreign, Side::kServer);
  auto client_ctx = Ctx(Bundle(ca_, Identity::Node("c1", NodeId(2)), Validity::Days(now_, 1)), Side::kClient);
  Session s(server_ctx.get(), client_ctx.get());
  EXPECT_TRUE(s.client.failed);
  EXPECT_NE(s.client.error.find("certificate verify failed"), std::string::npos) << s.client.error;
  EXPECT_FALSE(s.exchanged);
}

TEST_F(HandshakeTest, ClientWithoutACertificateIsRefused) {
  auto server_ctx = Ctx(Bundle(ca_, Identity::Node("c1", NodeId(1)), Validity::Days(now_, 1)), Side::kServer);
  SslCtxPtr client_ctx(SSL_CTX_new(TLS_client_method()));
  X509_STORE_add_cert(SSL_CTX_get_cert_store(client_ctx.get()), ca_.cert.get());
  SSL_CTX_set_verify(client_ctx.get(), SSL_VERIFY_PEER, nullptr);
  Session s(server_ctx.get(), client_ctx.get());
  EXPECT_TRUE(s.server.failed);
  EXPECT_FALSE(s.exchanged);
}

TEST_F(HandshakeTest, ExpiredClientIsRefused) {
  auto server_ctx = Ctx(Bundle(ca_, Identity::Node("c1", NodeId(1)), Validity::Days(now_, 1)), Side::kServer);
  Validity expired{now_ - std::chrono::hours(48), now_ - std::chrono::hours(1)};
  auto client_ctx = Ctx(Bundle(ca_, Identity::Node("c1", NodeId(2)), expired), Side::kClient);
  Session s(server_ctx.get(), client_ctx.get());
  EXPECT_TRUE(s.server.failed);
  EXPECT_FALSE(s.exchanged);
}

TEST_F(HandshakeTest, Tls12IsTheFloor) {
  auto server_ctx = Ctx(Bundle(ca_, Identity::Node("c1", NodeId(1)), Validity::Days(now_, 1)), Side::kServer);
  auto client_ctx = Ctx(Bundle(ca_, Identity::Node("c1", NodeId(2)), Validity::Days(now_, 1)), Side::kClient);
  ASSERT_EQ(SSL_CTX_set_max_proto_version(client_ctx.get(), TLS1_2_VERSION), 1);
  Session tls12(server_ctx.get(), client_ctx.get());
  EXPECT_TRUE(tls12.exchanged) << tls12.server.error << " / " << tls12.client.error;
  EXPECT_EQ(SSL_version(tls12.server.ssl.get()), TLS1_2_VERSION);
  auto id = PeerIdentity(tls12.server.ssl.get());
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->node_id(), NodeId(2));

  ASSERT_EQ(SSL_CTX_set_min_proto_version(client_ctx.get(), TLS1_1_VERSION), 1);
  ASSERT_EQ(SSL_CTX_set_max_proto_version(client_ctx.get(), TLS1_1_VERSION), 1);
  Session tls11(server_ctx.get(), client_ctx.get());
  EXPECT_FALSE(tls11.exchanged);
  EXPECT_TRUE(tls11.server.failed || tls11.client.failed);
}

}  // namespace
}  // namespace dispotify::tls
