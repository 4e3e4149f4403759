// The gRPC glue of mTLS (common/tls/grpc_credentials.h) over real loopback connections: who gets
// through the handshake, what PeerAuthorizer decides per call, and rotation while serving.

#include "common/tls/grpc_credentials.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "dispotify/v1/kv.grpc.pb.h"

namespace dispotify::tls {
namespace {

using namespace std::chrono_literals;

template <typename T>
T Must(Result<T> r) {
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return std::move(r).value();
}

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path + ".tmp", std::ios::trunc) << text;
  std::filesystem::rename(path + ".tmp", path);
}

// A CA of one cluster that writes node certificates as files.
struct TestCa {
  std::string cluster_id;
  CertifiedKey ca;
  std::string dir;

  TestCa(std::string id, std::string base) : cluster_id(std::move(id)), dir(std::move(base)) {
    ca = Must(CreateCa(cluster_id, Validity::Days(std::chrono::system_clock::now(), 10)));
    std::filesystem::create_directories(dir);
    Write(ca_path(), Must(CertToPem(ca.cert.get())));
  }
  std::string ca_path() const { return dir + "/ca.crt"; }
  // Issues node `id` a certificate into <dir>/<name>.{crt,key}.
  CredentialFiles Node(uint64_t id, const std::string& name, int days = 10) const {
    LeafRequest req;
    req.identity = Identity::Node(cluster_id, NodeId(id));
    req.ip_addresses = {"127.0.0.1"};
    req.validity = Validity::Days(std::chrono::system_clock::now(), days);
    CertifiedKey leaf = Must(IssueLeaf(ca, req));
    CredentialFiles f{dir + "/" + name + ".crt", dir + "/" + name + ".key", ca_path()};
    Write(f.key, Must(KeyToPem(leaf.key.get())));
    Write(f.cert, Must(CertToPem(leaf.cert.get())));
    return f;
  }
};

// KV.Get answers with the authorizer's verdict for the service named by the key ("raft" or
// "join"), and the caller's identity as the value.
class EchoService final : public v1::KV::Service {
 public:
  explicit EchoService(const PeerAuthorizer* authorizer) : authorizer_(authorizer) {}
  grpc::Status Get(grpc::ServerContext* ctx, const v1::GetRequest* req, v1::GetResponse* resp) override {
    const tls::Service service = req->key() == "join" ? tls::Service::kJoin : tls::Service::kRaft;
    if (grpc::Status denied = CheckPeer(authorizer_, *ctx, service); !denied.ok()) return denied;
    if (authorizer_) resp->set_value(Must(PeerIdentityOf(*ctx->auth_context())).Uri());
    resp->set_found(true);
    return grpc::Status::OK;
  }

 private:
  const PeerAuthorizer* authorizer_;
};

class GrpcCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = ::testing::TempDir() + "/grpc-creds-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(base_);
    ca_ = std::make_unique<TestCa>("c1", base_ + "/c1");
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
    std::filesystem::remove_all(base_);
  }

  // Node 1 of c1 serving with members {1, 2} (or `members`).
  void Serve(std::set<NodeId> members = {NodeId(1), NodeId(2)}) {
    members_ = std::move(members);
    GrpcSecurityOptions o;
    o.files = ca_->Node(1, "server");
    o.cluster_id = "c1";
    o.expected_identity = Identity::Node("c1", NodeId(1));
    o.publish_dir = base_ + "/published";
    o.poll_interval = 50ms;
    o.on_rotate = [this](const CredentialBundle&) { ++rotations_; };
    security_ = Must(GrpcSecurity::Create(o));
    authorizer_ = std::make_unique<PeerAuthorizer>("c1", NodeId(1), [this] {
      std::lock_guard lock(mu_);
      return members_;
    });
    service_ = std::make_unique<EchoService>(authorizer_.get());
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", security_->ServerCredentials(), &port_);
    b.RegisterService(service_.get());
    server_ = b.BuildAndStart();
    ASSERT_TRUE(server_ && port_ > 0);
  }

  grpc::Status Call(const std::shared_ptr<grpc::ChannelCredentials>& creds, const std::string& what,
                    std::string* uri = nullptr) {
    // A fresh channel per call (no connection shared): each call does its own handshake.
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto stub = v1::KV::NewStub(grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port_), creds, args));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    v1::GetRequest req;
    req.set_key(what);
    v1::GetResponse resp;
    grpc::Status st = stub->Get(&ctx, req, &resp);
    if (uri) *uri = resp.value();
    return st;
  }

  std::string base_;
  std::unique_ptr<TestCa> ca_;
  std::shared_ptr<GrpcSecurity> security_;
  std::unique_ptr<PeerAuthorizer> authorizer_;
  std::unique_ptr<EchoService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::mutex mu_;
  std::set<NodeId> members_;
  std::atomic<int> rotations_{0};
};

TEST_F(GrpcCredentialsTest, MemberWithClusterCertificateIsServedAndIdentified) {
  Serve();
  auto creds = Must(ClientChannelCredentials(ca_->Node(2, "client2"), "c1"));
  std::string uri;
  grpc::Status st = Call(creds, "raft", &uri);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(uri, "spiffe://dispotify/c1/node/2");
  EXPECT_TRUE(security_->enabled());
  EXPECT_EQ(security_->identity()->Uri(), "spiffe://dispotify/c1/node/1");
}

TEST_F(GrpcCredentialsTest, PlaintextClientIsRefused) {
  Serve();
  grpc::Status st = Call(grpc::InsecureChannelCredentials(), "join");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
}

TEST_F(GrpcCredentialsTest, CertificateOfAnotherCaIsRefused) {
  Serve();
  // Same cluster id, another CA: the chain does not verify.
  TestCa other("c1", base_ + "/other-ca");
  auto creds = Must(ClientChannelCredentials(other.Node(2, "intruder"), "c1"));
  EXPECT_EQ(Call(creds, "join").error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(GrpcCredentialsTest, ClientRefusesAServerOfAnotherCluster) {
  Serve();
  // The client trusts a CA of cluster c2 and expects c2: our server (c1) is not its cluster.
  TestCa c2("c2", base_ + "/c2");
  auto creds = Must(ClientChannelCredentials(c2.Node(5, "c2-client"), "c2"));
  EXPECT_EQ(Call(creds, "join").error_code(), grpc::StatusCode::UNAVAILABLE);
  // Trusting our CA but expecting cluster c2: still refused, by the identity check.
  auto mixed = Must(ClientChannelCredentials(ca_->Node(2, "client2"), "c2"));
  EXPECT_EQ(Call(mixed, "join").error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(GrpcCredentialsTest, NonMemberIsRefusedOnRaftButMayJoin) {
  Serve();
  auto creds = Must(ClientChannelCredentials(ca_->Node(7, "client7"), "c1"));
  grpc::Status raft = Call(creds, "raft");
  EXPECT_EQ(raft.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(raft.error_message().find("not_a_member"), std::string::npos) << raft.error_message();
  EXPECT_TRUE(Call(creds, "join").ok());
  // The leader adds it: from the next call on it is a member.
  {
    std::lock_guard lock(mu_);
    members_.insert(NodeId(7));
  }
  EXPECT_TRUE(Call(creds, "raft").ok());
  // And removed again: refused again, with the same valid certificate.
  {
    std::lock_guard lock(mu_);
    members_.erase(NodeId(7));
  }
  EXPECT_EQ(Call(creds, "raft").error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(GrpcCredentialsTest, JoiningNodeAcceptsAnyNodeOfItsClusterUntilItIsAMember) {
  PeerAuthorizer joining("c1", NodeId(4), [] { return std::set<NodeId>{}; });
  EXPECT_TRUE(joining.Decide(Identity::Node("c1", NodeId(1)), Service::kRaft).allowed);
  EXPECT_FALSE(joining.Decide(Identity::Node("c2", NodeId(1)), Service::kRaft).allowed);
  PeerAuthorizer member("c1", NodeId(4), [] { return std::set<NodeId>{NodeId(1), NodeId(4)}; });
  EXPECT_TRUE(member.Decide(Identity::Node("c1", NodeId(1)), Service::kReplication).allowed);
  EXPECT_FALSE(member.Decide(Identity::Node("c1", NodeId(9)), Service::kReplication).allowed);
  EXPECT_TRUE(member.Decide(Identity::Node("c1", NodeId(9)), Service::kJoin).allowed);
  Identity client{"c1", "client", "admin"};
  EXPECT_FALSE(member.Decide(client, Service::kJoin).allowed);
}

TEST_F(GrpcCredentialsTest, RotationUnderLoadFailsNoCallAndMovesNotAfter) {
  Serve();
  auto creds = Must(ClientChannelCredentials(ca_->Node(2, "client2"), "c1"));
  const double before = security_->not_after_seconds();
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::thread load([&] {
    while (!stop) (Call(creds, "raft").ok() ? ok : failed)++;
  });
  std::this_thread::sleep_for(200ms);
  ca_->Node(1, "server", /*days=*/3);  // the same files, a new certificate and key
  for (int i = 0; i < 100 && rotations_ == 0; ++i) std::this_thread::sleep_for(50ms);
  ASSERT_EQ(rotations_, 1);
  // gRPC's own watcher follows within its 1 s period; keep calling across it.
  std::this_thread::sleep_for(1500ms);
  stop = true;
  load.join();
  EXPECT_EQ(failed, 0);
  EXPECT_GT(ok, 10);
  EXPECT_LT(security_->not_after_seconds(), before - 86400);  // 3 days instead of 10
  EXPECT_TRUE(Call(creds, "raft").ok());
}

TEST_F(GrpcCredentialsTest, InsecureServesPlaintextAndAllowsEveryone) {
  auto insecure = GrpcSecurity::Insecure();
  EXPECT_FALSE(insecure->enabled());
  EXPECT_EQ(insecure->not_after_seconds(), 0);
  EchoService echo(nullptr);
  grpc::ServerBuilder b;
  b.AddListeningPort("127.0.0.1:0", insecure->ServerCredentials(), &port_);
  b.RegisterService(&echo);
  server_ = b.BuildAndStart();
  ASSERT_TRUE(server_);
  EXPECT_TRUE(Call(insecure->ChannelCredentials(), "raft").ok());
  server_->Shutdown(std::chrono::system_clock::now());
  server_.reset();
}

TEST_F(GrpcCredentialsTest, CreateRefusesAnotherNodesCertificate) {
  GrpcSecurityOptions o;
  o.files = ca_->Node(2, "wrong");
  o.cluster_id = "c1";
  o.expected_identity = Identity::Node("c1", NodeId(1));
  o.publish_dir = base_ + "/published";
  EXPECT_FALSE(GrpcSecurity::Create(o).ok());
  o.files = {};
  EXPECT_FALSE(GrpcSecurity::Create(o).ok());
}

}  // namespace
}  // namespace dispotify::tls
