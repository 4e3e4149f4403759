// Mutual TLS on a real 3-node cluster (issue 13, "Node-to-node: mutual TLS"): what each node
// serves at the handshake (its own certificate, TLS 1.3, 1.2 at the least, the expiry it exports),
// who is refused at the handshake (plaintext, another CA), who is refused per call (a non-member,
// a removed member), that any holder of a certificate from the CA may join, and certificates
// rotated on every node under a continuous upload load with no failed upload and no restart.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "common/tls/grpc_credentials.h"
#include "common/tls/pki.h"
#include "common/tls/ssl_context.h"
#include "dispotify/v1/cluster.grpc.pb.h"
#include "dispotify/v1/files.grpc.pb.h"
#include "dispotify/v1/raft.grpc.pb.h"
#include "dispotify/v1/replication.grpc.pb.h"
#include "e2e/cluster_harness.h"
#include "e2e/files_client.h"
#include "e2e/http_helpers.h"
#include "node/server/kv_client.h"

namespace dispotify::e2e {
namespace {

using namespace std::chrono_literals;

template <typename T>
T Must(Result<T> r) {
  if (!r.ok()) throw std::runtime_error(r.status().ToString());
  return std::move(r).value();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

std::string Content(size_t n, int seed) {
  std::string s(n, '\0');
  uint32_t x = 2463534242u + static_cast<uint32_t>(seed);
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return s;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

double Seconds(tls::TimePoint t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// What a node serves on a new connection, read with a plain OpenSSL client rather than through
// the node's own report: the certificate gRPC actually hands out, and the protocol version.
struct Served {
  double not_after = 0;
  std::string identity;
  int version = 0;  // TLS1_3_VERSION, ...
};

struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};

// A mutual-TLS handshake with 127.0.0.1:`port`, presenting `cert`/`key` and trusting `ca`, offering
// ALPN h2 as a gRPC client does. An error when the handshake fails.
// `max_version`: the highest protocol the client offers (0: OpenSSL's highest).
Result<Served> Handshake(int port, const std::string& cert, const std::string& key, const std::string& ca,
                         int max_version = 0) {
  tls::CredentialBundle bundle;
  bundle.cert_pem = ReadAll(cert);
  bundle.key_pem = ReadAll(key);
  bundle.ca_pem = ReadAll(ca);
  auto ctx = tls::NewSslContext(bundle, tls::Side::kClient);
  if (!ctx.ok()) return ctx.status();
  if (max_version != 0) {
    // Security level 0: OpenSSL 3 would otherwise refuse to offer TLS < 1.2 itself, and the
    // refusal under test is the node's.
    SSL_CTX_set_security_level(ctx->get(), 0);
    SSL_CTX_set_min_proto_version(ctx->get(), 0);
    SSL_CTX_set_max_proto_version(ctx->get(), max_version);
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return Status::IoError("socket");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    return Status::IoError("connect to port " + std::to_string(port));
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx->get()));
  static const unsigned char kH2[] = {2, 'h', '2'};
  SSL_set_alpn_protos(ssl.get(), kH2, sizeof(kH2));
  SSL_set_fd(ssl.get(), fd);
  if (SSL_connect(ssl.get()) != 1) {
    char buf[256] = "handshake failed";
    if (unsigned long e = ERR_get_error(); e != 0) ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return Status::IoError(buf);
  }
  X509Ptr peer(SSL_get1_peer_certificate(ssl.get()));
  if (!peer) return Status::InvalidArgument("no server certificate");
  auto identity = tls::ParseIdentity(peer.get());
  if (!identity.ok()) return identity.status();
  Served served;
  served.not_after = Seconds(tls::NotAfter(peer.get()));
  served.identity = identity->Uri();
  served.version = SSL_version(ssl.get());
  SSL_shutdown(ssl.get());
  return served;
}

class MtlsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<Cluster>(3, "mtls");
    cluster_->SetCommonFlags({"--repair-interval-ms", "200", "--scrub-interval-s", "0"});
    cluster_->StartAll();
    leader_ = cluster_->WaitLeader(30s);
    ASSERT_NE(leader_, 0u);
  }
  void TearDown() override {
    if (HasFailure() && cluster_) cluster_->DumpLogs();
    cluster_.reset();
  }

  std::shared_ptr<grpc::Channel> Channel(uint64_t node, std::shared_ptr<grpc::ChannelCredentials> creds) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // its own connection, its own handshake
    return grpc::CreateCustomChannel(cluster_->spec(node).address(), std::move(creds), args);
  }

  // Every node-to-node service, called once with `creds`; returns the statuses.
  struct Outcome {
    grpc::Status replication, files, raft, cluster_status, join;
  };
  Outcome CallEverything(uint64_t node, const std::shared_ptr<grpc::ChannelCredentials>& creds,
                         uint64_t join_as) {
    auto ch = Channel(node, creds);
    Outcome o;
    auto deadline = [] { return std::chrono::system_clock::now() + 5s; };
    {
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline());
      v1::HealthResponse resp;
      o.replication = v1::Replication::NewStub(ch)->Health(&ctx, v1::HealthRequest(), &resp);
    }
    {
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline());
      v1::DataPlaneStatusResponse resp;
      o.files = v1::Files::NewStub(ch)->DataPlaneStatus(&ctx, v1::DataPlaneStatusRequest(), &resp);
    }
    {
      // A Raft stream: the refusal comes when it is finished (the server answers at once).
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline());
      v1::StreamSummary summary;
      auto writer = v1::Raft::NewStub(ch)->Stream(&ctx, &summary);
      writer->WritesDone();
      o.raft = writer->Finish();
    }
    {
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline());
      v1::StatusResponse resp;
      o.cluster_status = v1::Cluster::NewStub(ch)->Status(&ctx, v1::StatusRequest(), &resp);
    }
    {
      // A join with no address: past the authorization, the join logic itself refuses it
      // (INVALID_ARGUMENT), so the cluster is not changed by the test.
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline());
      v1::MembershipRequest req;
      req.set_op(v1::MembershipRequest::ADD_LEARNER);
      req.set_node_id(join_as);
      v1::MembershipResponse resp;
      o.join = v1::Cluster::NewStub(ch)->ChangeMembership(&ctx, req, &resp);
    }
    return o;
  }

  double ScrapeNotAfter(uint64_t node) {
    auto r = HttpCall(cluster_->spec(node).metrics_port, "GET", "/metrics");
    if (!r || r->status != 200) return -1;
    std::istringstream in(r->body);
    std::string line;
    const std::string name = "dispotify_tls_cert_not_after_seconds ";
    while (std::getline(in, line)) {
      if (line.rfind(name, 0) == 0) return std::strtod(line.c_str() + name.size(), nullptr);
    }
    return -1;
  }

  // The certificate node `node` serves a new connection now (the client presents node 1's).
  Result<Served> ServedBy(uint64_t node) {
    return Handshake(cluster_->spec(node).port, cluster_->TlsCertPath(1), cluster_->TlsKeyPath(1),
                     cluster_->TlsCaPath());
  }

  double FileNotAfter(uint64_t node) {
    auto cert = tls::CertFromPem(ReadAll(cluster_->TlsCertPath(node)));
    return cert.ok() ? Seconds(tls::NotAfter(cert->get())) : -1;
  }

  // Replication.Health over a new connection.
  grpc::Status Health(uint64_t node, const std::shared_ptr<grpc::ChannelCredentials>& creds) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 2s);
    v1::HealthResponse resp;
    return v1::Replication::NewStub(Channel(node, creds))->Health(&ctx, v1::HealthRequest(), &resp);
  }

  bool IsMember(uint64_t observer, uint64_t node) {
    auto st = cluster_->Status(observer);
    if (!st) return false;
    for (const auto& m : st->members()) {
      if (m.node_id() == node) return true;
    }
    return false;
  }

  std::unique_ptr<Cluster> cluster_;
  uint64_t leader_ = 0;
};

TEST_F(MtlsE2eTest, MemberCertificateIsServedOnEveryService) {
  Outcome o = CallEverything(leader_, cluster_->ChannelCredentials(2), /*join_as=*/2);
  EXPECT_TRUE(o.replication.ok()) << o.replication.error_message();
  EXPECT_TRUE(o.files.ok()) << o.files.error_message();
  EXPECT_TRUE(o.cluster_status.ok()) << o.cluster_status.error_message();
  EXPECT_EQ(o.join.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << o.join.error_message();
}

TEST_F(MtlsE2eTest, EveryNodeServesItsOwnCertificateOverTls13AndExportsItsExpiry) {
  for (uint64_t n = 1; n <= 3; ++n) {
    auto served = ServedBy(n);
    ASSERT_TRUE(served.ok()) << "node " << n << ": " << served.status().ToString();
    EXPECT_EQ(served->version, TLS1_3_VERSION) << "node " << n;
    EXPECT_EQ(served->identity, "spiffe://dispotify/mtls/node/" + std::to_string(n));
    EXPECT_EQ(served->not_after, FileNotAfter(n)) << "node " << n;
    // The expiry alert's input is the certificate actually in use.
    EXPECT_EQ(ScrapeNotAfter(n), served->not_after) << "node " << n;
    // TLS 1.2 is the floor: a client that offers at most 1.2 is served with 1.2, one that offers
    // at most 1.1 gets no session (the node hangs up on its hello: no alert, an EOF).
    auto tls12 = Handshake(cluster_->spec(n).port, cluster_->TlsCertPath(1), cluster_->TlsKeyPath(1),
                           cluster_->TlsCaPath(), TLS1_2_VERSION);
    ASSERT_TRUE(tls12.ok()) << "node " << n << ": " << tls12.status().ToString();
    EXPECT_EQ(tls12->version, TLS1_2_VERSION);
    auto tls11 = Handshake(cluster_->spec(n).port, cluster_->TlsCertPath(1), cluster_->TlsKeyPath(1),
                           cluster_->TlsCaPath(), TLS1_1_VERSION);
    ASSERT_FALSE(tls11.ok()) << "node " << n << " accepted TLS 1.1";
    EXPECT_NE(tls11.status().message().find("unexpected eof"), std::string::npos) << tls11.status().message();
  }
}

TEST_F(MtlsE2eTest, PlaintextClientIsRefused) {
  Outcome o = CallEverything(leader_, grpc::InsecureChannelCredentials(), 9);
  for (const grpc::Status* st : {&o.replication, &o.files, &o.raft, &o.cluster_status, &o.join}) {
    EXPECT_EQ(st->error_code(), grpc::StatusCode::UNAVAILABLE) << st->error_message();
  }
}

TEST_F(MtlsE2eTest, CertificateFromAnotherCaIsRefused) {
  const std::string dir = cluster_->base_dir() + "/tls/foreign";
  std::filesystem::create_directories(dir);
  const auto now = std::chrono::system_clock::now();
  // Another CA naming this very cluster id and node 2 (a member), and a CA of another cluster.
  for (const std::string& cluster_id : {std::string("mtls"), std::string("other-cluster")}) {
    tls::CertifiedKey ca = Must(tls::CreateCa(cluster_id, tls::Validity::Days(now, 1)));
    tls::LeafRequest req;
    req.identity = tls::Identity::Node(cluster_id, NodeId(2));
    req.ip_addresses = {"127.0.0.1"};
    req.validity = tls::Validity::Days(now, 1);
    tls::CertifiedKey leaf = Must(tls::IssueLeaf(ca, req));
    const std::string p = dir + "/" + cluster_id;
    WriteFile(p + ".crt", Must(tls::CertToPem(leaf.cert.get())));
    WriteFile(p + ".key", Must(tls::KeyToPem(leaf.key.get())));
    // The client trusts the cluster's real CA, so only the server's verification of the client
    // certificate stands between it and the node.
    auto creds = Must(tls::ClientChannelCredentials({p + ".crt", p + ".key", cluster_->TlsCaPath()}, "mtls"));
    Outcome o = CallEverything(leader_, creds, 2);
    for (const grpc::Status* st : {&o.replication, &o.files, &o.raft, &o.cluster_status, &o.join}) {
      EXPECT_EQ(st->error_code(), grpc::StatusCode::UNAVAILABLE) << cluster_id << ": " << st->error_message();
    }
  }
}

TEST_F(MtlsE2eTest, NonMemberIsRefusedButItsJoinReachesTheJoinLogic) {
  auto [cert, key] = cluster_->IssueCertificate(9, "node-9-not-a-member");
  auto creds = Must(tls::ClientChannelCredentials({cert, key, cluster_->TlsCaPath()}, "mtls"));
  for (uint64_t node = 1; node <= 3; ++node) {
    Outcome o = CallEverything(node, creds, 9);
    EXPECT_EQ(o.replication.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << o.replication.error_message();
    EXPECT_EQ(o.files.error_code(), grpc::StatusCode::PERMISSION_DENIED) << o.files.error_message();
    EXPECT_EQ(o.raft.error_code(), grpc::StatusCode::PERMISSION_DENIED) << o.raft.error_message();
    EXPECT_EQ(o.cluster_status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    // Allowed through to the join logic, which refuses a join without an address.
    EXPECT_EQ(o.join.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << o.join.error_message();
    EXPECT_NE(o.join.error_message().find("address"), std::string::npos) << o.join.error_message();
    // But only as itself.
    Outcome other = CallEverything(node, creds, 10);
    EXPECT_EQ(other.join.error_code(), grpc::StatusCode::PERMISSION_DENIED) << other.join.error_message();
  }
}

// "Raft and replication accept only current members, a join request any holder of a certificate
// from the CA": node 4, with a certificate from the cluster CA and no membership, is refused
// everything but its join; its own join request (nothing else adds it) makes it a member, and from
// then on it is served; once removed, the same still-valid certificate is refused again.
TEST_F(MtlsE2eTest, OnlyCurrentMembersAreServedAndAnyCertificateOfTheCaMayJoin) {
  const uint64_t id4 = cluster_->AddSpec();  // issues node 4's certificate from the cluster CA
  auto creds4 = cluster_->ChannelCredentials(id4);
  auto refused = [&](uint64_t node, const char* when) {
    Outcome o = CallEverything(node, creds4, id4);
    EXPECT_EQ(o.replication.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << when << ", node " << node << ": " << o.replication.error_message();
    EXPECT_EQ(o.files.error_code(), grpc::StatusCode::PERMISSION_DENIED) << when << ", node " << node;
    EXPECT_EQ(o.raft.error_code(), grpc::StatusCode::PERMISSION_DENIED) << when << ", node " << node;
    EXPECT_EQ(o.cluster_status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << when << ", node " << node;
  };
  for (uint64_t n = 1; n <= 3; ++n) refused(n, "before joining");

  cluster_->Start(id4, {"--join"});
  ASSERT_TRUE(Eventually([&] { return IsMember(leader_, id4); }, 30s)) << "node 4's join was not accepted";
  // A member now (a learner): every node serves it once the configuration reaches it, and the
  // leader's Raft stream to it goes through (it catches up).
  for (uint64_t n = 1; n <= 3; ++n) {
    grpc::Status last;
    EXPECT_TRUE(Eventually(
        [&] {
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + 2s);
          v1::HealthResponse resp;
          last = v1::Replication::NewStub(Channel(n, creds4))->Health(&ctx, v1::HealthRequest(), &resp);
          return last.ok();
        },
        15s))
        << "node " << n << " still refuses member 4: " << last.error_message();
  }
  auto leader_status = cluster_->Status(leader_);
  ASSERT_TRUE(leader_status);
  EXPECT_TRUE(cluster_->WaitApplied(id4, leader_status->commit_index(), 30s));

  // Removed: the certificate is still valid and from the CA, but node 4 is no member any more.
  // Stopped first: a running node started with --join would ask to be added again (a join is open
  // to any certificate of the CA), and the test is about the certificate, not the process.
  cluster_->Kill9(id4);
  server::KvClient admin(cluster_->Endpoints(), 2000ms, cluster_->ChannelCredentials());
  v1::MembershipRequest req;
  req.set_op(v1::MembershipRequest::REMOVE);
  req.set_node_id(id4);
  grpc::Status removed = admin.ChangeMembership(req, 20s);
  ASSERT_TRUE(removed.ok()) << removed.error_message();
  for (uint64_t n = 1; n <= 3; ++n)
    ASSERT_TRUE(Eventually([&] { return !IsMember(n, id4); }, 15s)) << "node " << n << " still lists node 4";
  for (uint64_t n = 1; n <= 3; ++n) refused(n, "after removal");
}

TEST_F(MtlsE2eTest, CertificatesRotateUnderUploadLoadWithNoFailedUpload) {
  double before[4] = {};
  for (uint64_t n = 1; n <= 3; ++n) {
    before[n] = ScrapeNotAfter(n);
    ASSERT_GT(before[n], 0) << "node " << n << " exports no dispotify_tls_cert_not_after_seconds";
    auto served = ServedBy(n);
    ASSERT_TRUE(served.ok()) << served.status().ToString();
    ASSERT_EQ(served->not_after, before[n]) << "node " << n;
  }
  FilesClient warm(cluster_->spec(leader_).address(), cluster_->ChannelCredentials());
  ASSERT_TRUE(warm.UploadEventually("warm-up", Content(1000, 1)).ok());

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::atomic<int> fresh_ok{0};
  std::atomic<int> fresh_failed{0};
  std::string first_failure;
  std::string first_fresh_failure;
  // Uploads each over a new connection (so a handshake with each node lands inside the rotation),
  // as a member whose own files are not rotated: a failure here is the node's.
  auto [client_cert, client_key] = cluster_->IssueCertificate(1, "fresh-load-client");
  auto fresh_creds =
      Must(tls::ClientChannelCredentials({client_cert, client_key, cluster_->TlsCaPath()}, "mtls"));
  std::thread fresh_load([&] {
    for (int i = 0; !stop; ++i) {
      const uint64_t via = 1 + static_cast<uint64_t>(i % 3);
      FilesClient c(Channel(via, fresh_creds));
      v1::UploadResponse resp;
      grpc::Status st = c.Upload("fresh-" + std::to_string(i), Content(16 << 10, 1000 + i), &resp);
      if (st.ok()) {
        ++fresh_ok;
      } else if (fresh_failed++ == 0) {
        first_fresh_failure = std::to_string(via) + ": " + st.error_message();
      }
    }
  });
  std::thread load([&] {
    // Through every node in turn: followers forward to the leader, replicas go node to node.
    std::map<uint64_t, std::unique_ptr<FilesClient>> clients;
    for (int i = 0; !stop; ++i) {
      const uint64_t via = 1 + static_cast<uint64_t>(i % 3);
      auto& c = clients[via];
      if (!c)
        c = std::make_unique<FilesClient>(cluster_->spec(via).address(), cluster_->ChannelCredentials());
      v1::UploadResponse resp;
      grpc::Status st = c->Upload("song-" + std::to_string(i), Content(64 << 10, i), &resp);
      if (st.ok()) {
        ++ok;
      } else if (failed++ == 0) {
        first_failure = std::to_string(via) + ": " + st.error_message();
      }
    }
  });
  std::this_thread::sleep_for(1s);
  double expected[4] = {};
  for (uint64_t n = 1; n <= 3; ++n) expected[n] = cluster_->IssueNodeCertificate(n, /*days=*/5);
  for (uint64_t n = 1; n <= 3; ++n) {
    EXPECT_TRUE(Eventually([&] { return ScrapeNotAfter(n) == expected[n]; }, 15s))
        << "node " << n << " still exports " << ScrapeNotAfter(n) << ", expected " << expected[n];
    EXPECT_LT(expected[n], before[n]);  // 5 days instead of 30
  }
  // gRPC's own watcher of the published copy follows within a second: new handshakes present the
  // new certificate (and prove the new key) with no restart. The load goes on across it.
  for (uint64_t n = 1; n <= 3; ++n) {
    double served = -1;
    EXPECT_TRUE(Eventually(
        [&] {
          auto s = ServedBy(n);
          served = s.ok() ? s->not_after : -1;
          return served == expected[n];
        },
        10s))
        << "node " << n << " still serves a certificate valid until " << served << ", expected "
        << expected[n];
  }
  std::this_thread::sleep_for(2s);
  stop = true;
  load.join();
  fresh_load.join();
  EXPECT_EQ(failed, 0) << "first failure via node " << first_failure;
  EXPECT_EQ(fresh_failed, 0) << "first failure on a new connection via node " << first_fresh_failure;
  EXPECT_GT(ok, 5);
  EXPECT_GT(fresh_ok, 5);
  std::printf(
      "uploads during the rotation: 64 KiB on kept connections %d ok, %d failed; 16 KiB on new "
      "connections %d ok, %d failed\n",
      ok.load(), failed.load(), fresh_ok.load(), fresh_failed.load());

  // New connections (to each node and between them) use the new certificates.
  for (uint64_t n = 1; n <= 3; ++n) {
    FilesClient fresh(cluster_->spec(n).address(), cluster_->ChannelCredentials(n));
    EXPECT_TRUE(
        fresh.UploadEventually("after-" + std::to_string(n), Content(1000, 100 + static_cast<int>(n))).ok());
    std::ifstream log(cluster_->LogPath(n));
    std::stringstream text;
    text << log.rdbuf();
    EXPECT_NE(text.str().find("TLS: rotated"), std::string::npos) << "node " << n << " logged no rotation";
  }
}

// The CA changes with no restart, in the order docs/security.md gives: both CAs in the CA file,
// certificates from the new CA, the old CA dropped. Every node takes each step from its files
// alone; at the end a certificate of the old CA is refused, and the cluster still works over new
// connections (a follower killed and restarted catches up).
TEST_F(MtlsE2eTest, TheCaRotatesWithNoRestart) {
  const std::string tls_dir = cluster_->base_dir() + "/tls";
  // Clients keep their own copies of what they trust: the CA file changes under them.
  WriteFile(tls_dir + "/old-ca.crt", ReadAll(cluster_->TlsCaPath()));
  auto [old_cert, old_key] = cluster_->IssueCertificate(1, "client-of-the-old-ca");
  auto old_creds = Must(tls::ClientChannelCredentials({old_cert, old_key, tls_dir + "/old-ca.crt"}, "mtls"));
  for (uint64_t n = 1; n <= 3; ++n) ASSERT_TRUE(Health(n, old_creds).ok()) << "node " << n;

  cluster_->StartCaRotation();
  WriteFile(tls_dir + "/both-cas.crt", ReadAll(cluster_->TlsCaPath()));
  auto [new_cert, new_key] = cluster_->IssueCertificate(1, "client-of-the-new-ca");
  auto new_creds =
      Must(tls::ClientChannelCredentials({new_cert, new_key, tls_dir + "/both-cas.crt"}, "mtls"));
  // 1. Every node trusts the new CA too (its client certificates get through), and still the old.
  for (uint64_t n = 1; n <= 3; ++n) {
    grpc::Status last;
    EXPECT_TRUE(Eventually(
        [&] {
          last = Health(n, new_creds);
          return last.ok();
        },
        10s))
        << "node " << n << " does not take the new CA: " << last.error_message();
    EXPECT_TRUE(Health(n, old_creds).ok()) << "node " << n << " dropped the old CA too early";
  }
  // 2. Every node gets a certificate from the new CA (20 days: told apart from the first one).
  double expected[4] = {};
  for (uint64_t n = 1; n <= 3; ++n) expected[n] = cluster_->IssueNodeCertificate(n, /*days=*/20);
  for (uint64_t n = 1; n <= 3; ++n) {
    double served = -1;
    EXPECT_TRUE(Eventually(
        [&] {
          auto s = Handshake(cluster_->spec(n).port, new_cert, new_key, tls_dir + "/both-cas.crt");
          served = s.ok() ? s->not_after : -1;
          return served == expected[n];
        },
        10s))
        << "node " << n << " serves a certificate valid until " << served << ", expected " << expected[n];
  }
  // 3. The old CA goes: its certificates are refused at the handshake from then on.
  cluster_->FinishCaRotation();
  for (uint64_t n = 1; n <= 3; ++n) {
    EXPECT_TRUE(
        Eventually([&] { return Health(n, old_creds).error_code() == grpc::StatusCode::UNAVAILABLE; }, 10s))
        << "node " << n << " still takes a certificate of the old CA";
    EXPECT_TRUE(Health(n, new_creds).ok()) << "node " << n;
  }
  // The nodes reach each other with the new certificates only.
  const uint64_t restarted = leader_ == 3 ? 2 : 3;
  cluster_->Kill9(restarted);
  FilesClient files(Channel(leader_, new_creds));
  ASSERT_TRUE(files.UploadEventually("after-the-ca-rotation", Content(1000, 9)).ok());
  cluster_->Start(restarted);
  auto leader_status = cluster_->Status(leader_);
  ASSERT_TRUE(leader_status);
  EXPECT_TRUE(cluster_->WaitApplied(restarted, leader_status->commit_index(), 20s));
}

// A node killed and started again serves mutual TLS at once: it re-publishes its certificate for
// gRPC over what its previous run left in <data_dir>/tls (publish.h), and its peers' channels get
// through again, so it catches up. Each attempt opens a fresh connection: a channel kept across the
// kill would only be measuring gRPC's reconnect backoff (plaintext alike), not the node.
TEST_F(MtlsE2eTest, ARestartedNodeServesTlsAtOnceAndCatchesUp) {
  const uint64_t restarted = leader_ == 3 ? 2 : 3;
  cluster_->Kill9(restarted);
  FilesClient files(cluster_->spec(leader_).address(), cluster_->ChannelCredentials());
  ASSERT_TRUE(files.UploadEventually("while-down", Content(1000, 7)).ok());
  cluster_->Start(restarted);
  const auto start = std::chrono::steady_clock::now();
  grpc::Status st;
  do {
    auto ch = Channel(restarted, cluster_->ChannelCredentials());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 2s);
    v1::HealthResponse resp;
    st = v1::Replication::NewStub(ch)->Health(&ctx, v1::HealthRequest(), &resp);
    if (!st.ok()) std::this_thread::sleep_for(100ms);
  } while (!st.ok() && std::chrono::steady_clock::now() - start < 10s);
  EXPECT_TRUE(st.ok()) << st.error_message();
  std::printf("restarted node %llu served mTLS after %lld ms\n", static_cast<unsigned long long>(restarted),
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - start)
                                         .count()));
  // The leader's Raft stream to it is mTLS too: it catches up with what was written while it was down.
  auto leader_status = cluster_->Status(leader_);
  ASSERT_TRUE(leader_status);
  EXPECT_TRUE(cluster_->WaitApplied(restarted, leader_status->commit_index(), 20s));
}

// Secure by default: without certificates and without insecure_grpc the node does not start; with
// insecure_grpc it starts plaintext and says so.
TEST(MtlsStartE2eTest, NodeWithoutTlsRefusesToStartAndInsecureWarns) {
  Cluster c(1, "mtls-start");
  // The harness passes certificates; empty values on top take them away again.
  auto code = c.RunToExit(1, {"--tls-cert-file=", "--tls-key-file=", "--tls-ca-file="});
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 2);
  std::string log;
  {
    std::ifstream in(c.LogPath(1));
    std::stringstream text;
    text << in.rdbuf();
    log = text.str();
  }
  for (const char* key : {"tls_cert_file", "tls_key_file", "tls_ca_file", "insecure_grpc"})
    EXPECT_NE(log.find(key), std::string::npos) << key << " not named in the log:\n" << log;

  c.UseInsecureGrpc();
  for (int start = 0; start < 2; ++start) {
    c.Start(1);
    ASSERT_NE(c.WaitLeader(20s), 0u);
    ASSERT_EQ(c.Stop(1), std::optional<int>(0));
  }
  std::ifstream in(c.LogPath(1));
  std::stringstream text;
  text << in.rdbuf();
  size_t warnings = 0;
  for (size_t pos = 0; (pos = text.str().find("WARNING: insecure_grpc is set", pos)) != std::string::npos;
       ++pos)
    ++warnings;
  EXPECT_EQ(warnings, 2u) << "one warning per start";
}

}  // namespace
}  // namespace dispotify::e2e
