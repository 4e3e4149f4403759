// Mutual TLS on a real 3-node cluster (issue 13, "Node-to-node: mutual TLS"): who is refused at
// the handshake, who is refused per call, that a non-member's join still reaches the join logic,
// and certificates rotated on every node under a continuous upload load with no failed upload.

#include <gtest/gtest.h>

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
#include "dispotify/v1/cluster.grpc.pb.h"
#include "dispotify/v1/files.grpc.pb.h"
#include "dispotify/v1/raft.grpc.pb.h"
#include "dispotify/v1/replication.grpc.pb.h"
#include "e2e/cluster_harness.h"
#include "e2e/files_client.h"
#include "e2e/http_helpers.h"

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

TEST_F(MtlsE2eTest, CertificatesRotateUnderUploadLoadWithNoFailedUpload) {
  double before[4] = {};
  for (uint64_t n = 1; n <= 3; ++n) {
    before[n] = ScrapeNotAfter(n);
    ASSERT_GT(before[n], 0) << "node " << n << " exports no dispotify_tls_cert_not_after_seconds";
  }
  FilesClient warm(cluster_->spec(leader_).address(), cluster_->ChannelCredentials());
  ASSERT_TRUE(warm.UploadEventually("warm-up", Content(1000, 1)).ok());

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::string first_failure;
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
  // gRPC's own watcher of the published copy follows within a second; keep the load across it.
  std::this_thread::sleep_for(3s);
  stop = true;
  load.join();
  EXPECT_EQ(failed, 0) << "first failure via node " << first_failure;
  EXPECT_GT(ok, 5);
  std::printf("uploads of 64 KiB during the rotation: %d ok, %d failed\n", ok.load(), failed.load());

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
