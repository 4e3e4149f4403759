// The HTTP server over TLS (ServerOptions::tls_context) with the reloading context of
// common/tls/server_context.h: handshake, byte-exact bodies of every kind, plaintext clients and
// silent clients refused without disturbing anyone else, certificate rotation for new connections
// only.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include "common/tls/client_conn.h"
#include "common/tls/pki.h"
#include "common/tls/server_context.h"
#include "node/api/http/http_server.h"
#include "node/api/http/range.h"
#include "tests/mocks/temp_dir.h"
#include "tests/node/api/http/test_client.h"
#include "tests/node/api/http/tls_test_client.h"
#include "tests/support/bytes.h"

namespace dispotify::api::http {
namespace {

using mocks::TempDir;
using std::chrono::milliseconds;
using testing::ClientResponse;
using testing::TlsTestClient;
using testing_bytes::Bytes;

template <class T>
T Must(Result<T> r) {
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return std::move(r).value();
}

void WriteFileAtomically(const std::string& path, const std::string& data) {
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp, std::ios::binary) << data;
  std::filesystem::rename(tmp, path);
}

class HttpsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = Must(tls::CreateCa("https-test", tls::Validity::Days(std::chrono::system_clock::now(), 10)));
    ca_pem_ = Must(tls::CertToPem(ca_.cert.get()));
    client_ctx_ = Must(tls::NewClientContext(ca_pem_));
    cert_path_ = dir_.Sub("server.crt");
    key_path_ = dir_.Sub("server.key");
    IssueServerCert(&serial_);
    file_data_ = Bytes(3 * 1024 * 1024 + 17, 5);
    file_path_ = dir_.Sub("song.bin");
    std::ofstream(file_path_, std::ios::binary) << file_data_;
  }

  void TearDown() override {
    if (server_) server_->Stop(milliseconds(2000));
  }

  // A fresh server certificate for 127.0.0.1 / localhost in the two files; its serial (hex) out.
  void IssueServerCert(std::string* serial) {
    tls::LeafRequest req;
    req.identity = tls::Identity::Node("https-test", NodeId(1));
    req.dns_names = {"localhost"};
    req.ip_addresses = {"127.0.0.1"};
    req.validity = tls::Validity::Days(std::chrono::system_clock::now(), 5);
    auto leaf = Must(tls::IssueLeaf(ca_, req));
    *serial = SerialOf(leaf.cert.get());
    WriteFileAtomically(key_path_, Must(tls::KeyToPem(leaf.key.get())));
    WriteFileAtomically(cert_path_, Must(tls::CertToPem(leaf.cert.get())));
  }

  static std::string SerialOf(X509* cert) {
    BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), nullptr);
    char* hex = BN_bn2hex(bn);
    std::string out = hex;
    OPENSSL_free(hex);
    BN_free(bn);
    return out;
  }

  void StartServer(ServerOptions options = {}) {
    contexts_ = Must(tls::ReloadingServerContext::Load({cert_path_, key_path_, ""}, milliseconds(50)));
    tls::ReloadingServerContext* source = contexts_.get();
    options.address = "127.0.0.1";
    options.port = 0;
    options.tls_context = [source] { return source->Current(); };
    Router router;
    router.Get("/hello", [](Request&, BodyReader&) { return Response::Text(200, "hello tls"); });
    router.Post(
        "/echo",
        [](Request&, BodyReader& body) {
          auto all = ReadBodyToString(body, 64 << 20);
          if (!all.ok()) return ErrorResponse(all.status());
          return Response::Text(200, *all);
        },
        RouteOptions{.max_body_bytes = 64 << 20});
    router.Get("/stream", [this](Request&, BodyReader&) {
      auto pos = std::make_shared<size_t>(0);
      Producer produce = [this, pos](char* buf, size_t max) -> Result<size_t> {
        size_t n = std::min({max, file_data_.size() - *pos, size_t{70001}});
        std::memcpy(buf, file_data_.data() + *pos, n);
        *pos += n;
        return n;
      };
      return Response::Stream(200, std::move(produce), std::nullopt, "application/octet-stream");
    });
    router.Get("/file", [this](Request& req, BodyReader&) -> Response {
      const uint64_t len = file_data_.size();
      if (auto header = req.Header("Range")) {
        RangeResult range = ParseRange(*header, len);
        if (range.kind == RangeKind::kSatisfiable) {
          auto part =
              Response::FileAtPath(206, file_path_, range.range.first, range.range.length(), "audio/mpeg");
          if (!part.ok()) return ErrorResponse(part.status());
          part->AddHeader("Content-Range", ContentRangeHeader(range.range, len));
          return std::move(*part);
        }
      }
      auto whole = Response::FileAtPath(200, file_path_, 0, std::nullopt, "audio/mpeg");
      if (!whole.ok()) return ErrorResponse(whole.status());
      return std::move(*whole);
    });
    server_ = std::make_unique<HttpServer>(options, std::move(router));
    ASSERT_TRUE(server_->Start().ok());
  }

  std::unique_ptr<TlsTestClient> Connect(const std::string& host = "127.0.0.1") {
    auto conn = std::make_unique<TlsTestClient>(server_->port(), client_ctx_.get(), host, 10000);
    EXPECT_TRUE(conn->connected()) << conn->error().ToString();
    return conn->connected() ? std::move(conn) : nullptr;
  }

  static std::optional<ClientResponse> Call(TlsTestClient& conn, const std::string& request) {
    if (!conn.Send(request)) return std::nullopt;
    return conn.ReadResponse();
  }

  TempDir dir_;
  tls::CertifiedKey ca_;
  std::string ca_pem_;
  tls::SharedSslCtx client_ctx_;
  std::string cert_path_, key_path_, serial_;
  std::string file_path_, file_data_;
  std::unique_ptr<tls::ReloadingServerContext> contexts_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpsServerTest, HandshakeThenRequestsOnOneKeepAliveConnection) {
  StartServer();
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  EXPECT_EQ(SSL_version(conn->ssl()), TLS1_3_VERSION);  // preferred when both ends have it
  EXPECT_STREQ(SSL_get_cipher_name(conn->ssl()), "TLS_AES_128_GCM_SHA256");  // the server's first choice
  EXPECT_EQ(conn->PeerSerial(), serial_);
  for (int i = 0; i < 3; ++i) {
    auto r = Call(*conn, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(r) << "request " << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hello tls");
  }
  // Pipelined: both requests in one write, so the second waits inside OpenSSL's buffer.
  ASSERT_TRUE(conn->Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  for (int i = 0; i < 2; ++i) {
    auto r = conn->ReadResponse();
    ASSERT_TRUE(r) << "pipelined " << i;
    EXPECT_EQ(r->body, "hello tls");
  }
  // By host name too (SNI + DNS SAN).
  auto named = Connect("localhost");
  ASSERT_NE(named, nullptr);
  EXPECT_EQ(Call(*named, "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")->status, 200);
  EXPECT_EQ(server_->stats().tls_handshake_failures, 0u);
}

TEST_F(HttpsServerTest, TlsOneTwoIsTheFloor) {
  StartServer();
  tls::SharedSslCtx old_client = Must(tls::NewClientContext(ca_pem_));
  SSL_CTX_set_min_proto_version(old_client.get(), TLS1_VERSION);
  SSL_CTX_set_max_proto_version(old_client.get(), TLS1_1_VERSION);
  SSL_CTX_set_security_level(old_client.get(), 0);
  EXPECT_FALSE(TlsTestClient(server_->port(), old_client.get()).connected());
  tls::SharedSslCtx v12 = Must(tls::NewClientContext(ca_pem_));
  SSL_CTX_set_max_proto_version(v12.get(), TLS1_2_VERSION);
  TlsTestClient ok(server_->port(), v12.get());
  ASSERT_TRUE(ok.connected()) << ok.error().ToString();
  EXPECT_EQ(SSL_version(ok.ssl()), TLS1_2_VERSION);
  EXPECT_STREQ(SSL_get_cipher_name(ok.ssl()), "ECDHE-ECDSA-AES128-GCM-SHA256");  // forward secrecy, AEAD
  EXPECT_EQ(Call(ok, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")->status, 200);
}

TEST_F(HttpsServerTest, BodiesAreByteExact) {
  StartServer();
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  // A file region (sendfile's path in plaintext), whole and by Range.
  auto whole = Call(*conn, "GET /file HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->status, 200);
  EXPECT_TRUE(whole->body == file_data_);
  auto part = Call(*conn, "GET /file HTTP/1.1\r\nHost: x\r\nRange: bytes=1000000-2048575\r\n\r\n");
  ASSERT_TRUE(part);
  EXPECT_EQ(part->status, 206);
  EXPECT_EQ(part->Header("content-range"), "bytes 1000000-2048575/" + std::to_string(file_data_.size()));
  EXPECT_TRUE(part->body == file_data_.substr(1000000, 1048576));
  // A produced stream (chunked).
  auto stream = Call(*conn, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(stream);
  EXPECT_EQ(stream->Header("transfer-encoding"), "chunked");
  EXPECT_TRUE(stream->body == file_data_);
  // An upload read by the handler, then echoed.
  const std::string upload = Bytes(5 * 1024 * 1024 + 3, 9);
  auto echoed =
      Call(*conn, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(upload.size()) +
                      "\r\n\r\n" + upload);
  ASSERT_TRUE(echoed);
  EXPECT_EQ(echoed->status, 200);
  EXPECT_TRUE(echoed->body == upload);
  // With Expect: 100-continue the interim answer is encrypted like the rest.
  ASSERT_TRUE(
      conn->Send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  auto interim = conn->ReadResponse();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
}

TEST_F(HttpsServerTest, PlaintextClientIsClosedAndCounted) {
  StartServer();
  testing::TestClient plain(server_->port(), 5000);
  ASSERT_TRUE(plain.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  // No HTTP answer comes back in the clear: at most a TLS alert record, then the close.
  std::string got;
  char c;
  ssize_t n;
  while ((n = ::recv(plain.fd(), &c, 1, 0)) > 0) got.push_back(c);
  EXPECT_EQ(got.find("HTTP/"), std::string::npos) << got;
  EXPECT_EQ(got.find("hello"), std::string::npos);
  for (int i = 0; i < 100 && server_->stats().tls_handshake_failures == 0; ++i)
    std::this_thread::sleep_for(milliseconds(10));
  EXPECT_EQ(server_->stats().tls_handshake_failures, 1u);
  // A client that does not trust the certificate fails its own check; the server counts it too.
  auto other_ca = Must(tls::CreateCa("other", tls::Validity::Days(std::chrono::system_clock::now(), 1)));
  auto distrusting = Must(tls::NewClientContext(Must(tls::CertToPem(other_ca.cert.get()))));
  EXPECT_FALSE(TlsTestClient(server_->port(), distrusting.get()).connected());
  // Nothing else is disturbed.
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  EXPECT_EQ(Call(*conn, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")->status, 200);
}

TEST_F(HttpsServerTest, SilentClientsHoldNoThreadAndTimeOut) {
  ServerOptions options;
  options.worker_threads = 1;
  options.header_timeout = milliseconds(500);
  StartServer(options);
  // Three connections that never say hello, and one that stops half-way (a partial record).
  std::vector<std::unique_ptr<testing::TestClient>> silent;
  for (int i = 0; i < 3; ++i) silent.push_back(std::make_unique<testing::TestClient>(server_->port(), 5000));
  auto partial = std::make_unique<testing::TestClient>(server_->port(), 5000);
  ASSERT_TRUE(partial->Send(std::string("\x16\x03\x01\x02\x00\x01", 6)));
  // With one worker thread, a handshake that held it would block this one.
  const auto start = std::chrono::steady_clock::now();
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  EXPECT_EQ(Call(*conn, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")->status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(400));
  // header_timeout applies to the handshake: every stalled connection is closed.
  for (auto& s : silent) EXPECT_TRUE(s->ServerClosed());
  EXPECT_TRUE(partial->ServerClosed());
  EXPECT_GE(server_->stats().tls_handshake_failures, 4u);
}

TEST_F(HttpsServerTest, RotatedCertificateServesNewConnectionsOldOnesKeepTheirs) {
  StartServer();
  auto before = Connect();
  ASSERT_NE(before, nullptr);
  EXPECT_EQ(before->PeerSerial(), serial_);
  const std::string old_serial = serial_;

  // Half a rotation (a new certificate beside the old key) is refused: the old context stays.
  tls::LeafRequest req;
  req.identity = tls::Identity::Node("https-test", NodeId(1));
  req.ip_addresses = {"127.0.0.1"};
  req.validity = tls::Validity::Days(std::chrono::system_clock::now(), 5);
  auto stray = Must(tls::IssueLeaf(ca_, req));
  WriteFileAtomically(cert_path_, Must(tls::CertToPem(stray.cert.get())));
  EXPECT_FALSE(contexts_->Poll().ok());
  EXPECT_EQ(contexts_->generation(), 1u);
  EXPECT_EQ(contexts_->refused_reloads(), 1u);
  auto during = Connect();
  ASSERT_NE(during, nullptr);
  EXPECT_EQ(during->PeerSerial(), old_serial);

  // The whole set: adopted by the poller thread.
  std::string new_serial;
  IssueServerCert(&new_serial);
  contexts_->Start();
  for (int i = 0; i < 200 && contexts_->generation() < 2; ++i) std::this_thread::sleep_for(milliseconds(10));
  EXPECT_EQ(contexts_->generation(), 2u);
  EXPECT_TRUE(contexts_->last_error().ok()) << contexts_->last_error().ToString();
  auto after = Connect();
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(after->PeerSerial(), new_serial);
  EXPECT_EQ(Call(*after, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")->status, 200);
  // The connection opened before still works on its own session.
  auto old = Call(*before, "GET /file HTTP/1.1\r\nHost: x\r\nRange: bytes=0-99\r\n\r\n");
  ASSERT_TRUE(old);
  EXPECT_EQ(old->status, 206);
  EXPECT_TRUE(old->body == file_data_.substr(0, 100));
  // A touch (same bytes) is no rotation.
  WriteFileAtomically(cert_path_, Must(tls::ReadSmallFile(cert_path_)));
  EXPECT_TRUE(contexts_->Poll().ok());
  EXPECT_EQ(contexts_->generation(), 2u);
  contexts_->Stop();
}

TEST(HttpsContextTest, LoadRefusesIncompleteOrMismatchedFiles) {
  TempDir dir;
  EXPECT_FALSE(tls::ReloadingServerContext::Load({dir.Sub("a.crt"), "", ""}, milliseconds(100)).ok());
  EXPECT_FALSE(
      tls::ReloadingServerContext::Load({dir.Sub("a.crt"), dir.Sub("a.key"), ""}, milliseconds(100)).ok());
  auto ca = Must(tls::CreateCa("c", tls::Validity::Days(std::chrono::system_clock::now(), 1)));
  tls::LeafRequest req;
  req.identity = tls::Identity::Node("c", NodeId(1));
  req.validity = tls::Validity::Days(std::chrono::system_clock::now(), 1);
  auto a = Must(tls::IssueLeaf(ca, req));
  auto b = Must(tls::IssueLeaf(ca, req));
  WriteFileAtomically(dir.Sub("a.crt"), Must(tls::CertToPem(a.cert.get())));
  WriteFileAtomically(dir.Sub("b.key"), Must(tls::KeyToPem(b.key.get())));
  auto mismatched =
      tls::ReloadingServerContext::Load({dir.Sub("a.crt"), dir.Sub("b.key"), ""}, milliseconds(100));
  ASSERT_FALSE(mismatched.ok());
  EXPECT_NE(mismatched.status().message().find("does not match"), std::string::npos)
      << mismatched.status().ToString();
}

}  // namespace
}  // namespace dispotify::api::http
