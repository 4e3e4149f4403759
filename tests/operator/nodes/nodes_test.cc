// ParseNodeStatus on the answers GET /cluster/status gives (node/api/rest_api.cc writes them), and
// the HTTP NodeAdmin against addresses that never answer (tests/operator/nodes/e2e drives real
// nodes).

#include "operator/nodes/nodes.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "tests/support/ports.h"

namespace dispotify::op::nodes {
namespace {

using namespace std::chrono_literals;

// A leader's answer: peers with their copies, itself under "local", and the repair summary.
constexpr std::string_view kLeader = R"({
  "node_id":1,"node_uuid":"0123456789abcdef0123456789abcdef","cluster_id":"prod","version":"0.1.0",
  "role":"leader","term":3,"leader_id":1,"leader_address":"10.0.0.1:7000","commit_index":42,
  "applied_index":41,"replication_factor":2,"members":[
    {"node_id":1,"address":"10.0.0.1:7000","role":"leader","healthy":true,"draining":false,
     "match_index":42,"node_uuid":"0123456789abcdef0123456789abcdef","incarnation_refused":false},
    {"node_id":2,"address":"10.0.0.2:7000","role":"voter","healthy":true,"draining":true,
     "match_index":40,"node_uuid":"fedcba9876543210fedcba9876543210","incarnation_refused":false,
     "files":5,"bytes":5000,"free_bytes":100000},
    {"node_id":3,"address":"10.0.0.3:7000","role":"learner","healthy":false,"draining":false,
     "match_index":0,"node_uuid":"","incarnation_refused":true}],
  "songs":10,"bytes":10000,"replicas_healthy":20,"replicas_other":0,
  "local":{"files":7,"bytes":7000,"free_bytes":900000},
  "repair":{"under_replicated":3,"unavailable":0,"queued":1,"copies_made":4,"copies_trimmed":0,
            "bytes_copied":4000}})";

// A node that waits to be added: no members yet, no leader known.
constexpr std::string_view kJoining = R"({"node_id":2,"node_uuid":"fedcba9876543210fedcba9876543210",
  "cluster_id":"prod","version":"0.1.0","role":"follower","term":0,"leader_id":0,"leader_address":"",
  "commit_index":0,"applied_index":0,"replication_factor":1,"members":[],
  "local":{"files":0,"bytes":0,"free_bytes":900000}})";

TEST(ParseNodeStatusTest, ALeadersAnswer) {
  auto s = ParseNodeStatus(kLeader);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->node_id, 1u);
  EXPECT_EQ(s->node_uuid, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(s->cluster_id, "prod");
  EXPECT_EQ(s->version, "0.1.0");
  EXPECT_TRUE(s->IsLeader());
  EXPECT_EQ(s->term, 3u);
  EXPECT_EQ(s->leader_id, 1u);
  EXPECT_EQ(s->commit_index, 42u);
  EXPECT_EQ(s->applied_index, 41u);
  EXPECT_EQ(s->replication_factor, 2u);
  EXPECT_EQ(s->under_replicated, 3u);
  ASSERT_EQ(s->members.size(), 3u);

  const MemberStatus& self = s->members[0];
  EXPECT_EQ(self.role, "leader");
  EXPECT_EQ(self.files, 7u);  // from "local"
  EXPECT_EQ(self.free_bytes, 900000u);

  const MemberStatus& voter = s->members[1];
  EXPECT_EQ(voter.node_id, 2u);
  EXPECT_EQ(voter.address, "10.0.0.2:7000");
  EXPECT_EQ(voter.role, "voter");
  EXPECT_TRUE(voter.healthy);
  EXPECT_TRUE(voter.draining);
  EXPECT_EQ(voter.match_index, 40u);
  EXPECT_EQ(voter.node_uuid, "fedcba9876543210fedcba9876543210");
  EXPECT_EQ(voter.files, 5u);
  EXPECT_EQ(voter.free_bytes, 100000u);

  const MemberStatus& learner = s->members[2];
  EXPECT_EQ(learner.role, "learner");
  EXPECT_FALSE(learner.healthy);
  EXPECT_TRUE(learner.incarnation_refused);
  EXPECT_EQ(learner.node_uuid, "");
  EXPECT_FALSE(learner.files.has_value());
  EXPECT_FALSE(learner.free_bytes.has_value());
}

TEST(ParseNodeStatusTest, ANodeWaitingToBeAdded) {
  auto s = ParseNodeStatus(kJoining);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->node_id, 2u);
  EXPECT_FALSE(s->IsLeader());
  EXPECT_EQ(s->leader_id, 0u);
  EXPECT_TRUE(s->members.empty());
  EXPECT_FALSE(s->under_replicated.has_value());  // only the leader repairs
}

TEST(ParseNodeStatusTest, FieldsOlderNodesMayNotWriteKeepTheirDefaults) {
  auto s = ParseNodeStatus(R"({"node_id":1,"role":"leader","term":1,"leader_id":1,"commit_index":2,
    "applied_index":2,"replication_factor":1,"members":[{"node_id":1,"address":"a:1","role":"leader",
    "healthy":true,"match_index":2}],"unknown_field":[1,2]})");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->node_uuid, "");
  EXPECT_FALSE(s->members[0].draining);
  EXPECT_FALSE(s->members[0].incarnation_refused);
}

TEST(ParseNodeStatusTest, BadInputNamesTheField) {
  auto message = [](std::string_view json) {
    auto s = ParseNodeStatus(json);
    EXPECT_FALSE(s.ok());
    if (s.ok()) return std::string();
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
    return s.status().message();
  };
  auto member_with = [](const std::string& fields) {
    return R"({"node_id":1,"role":"leader","term":1,"leader_id":1,"commit_index":2,"applied_index":2,
      "replication_factor":1,"members":[{"node_id":1,"address":"a:1","role":"leader","healthy":true,
      "match_index":2},{)" +
           fields + "}]}";
  };
  EXPECT_NE(message("not json").find("not JSON"), std::string::npos);
  EXPECT_NE(message("[1]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(message(R"({"node_id":1})").find("role is missing"), std::string::npos);
  EXPECT_NE(message(R"({"node_id":-1})").find("node_id must be a non-negative integer"), std::string::npos);
  EXPECT_NE(message(R"({"node_id":"1"})").find("node_id must be"), std::string::npos);
  EXPECT_NE(message(R"({"node_id":1,"role":"boss"})").find("role has an unknown value \"boss\""),
            std::string::npos);
  EXPECT_NE(
      message(member_with(R"("node_id":2,"address":"b:1","role":"voter","healthy":"yes","match_index":0)"))
          .find("members[1].healthy must be true or false"),
      std::string::npos);
  EXPECT_NE(message(member_with(R"("node_id":2,"address":"b:1","role":"voter","healthy":true)"))
                .find("members[1].match_index is missing"),
            std::string::npos);
  EXPECT_NE(
      message(member_with(R"("node_id":2,"address":"b:1","role":"observer","healthy":true,"match_index":0)"))
          .find("members[1].role has an unknown value"),
      std::string::npos);
}

using testsupport::ClosedPort;

// A hung pod: the kernel completes connections (backlog) but nobody ever reads or answers.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(HttpNodeAdminTest, ADeadAddressIsUnavailableAtOnce) {
  auto admin = NewHttpNodeAdmin({"token", 3000ms});
  const std::string url = "http://127.0.0.1:" + std::to_string(ClosedPort());
  const auto start = std::chrono::steady_clock::now();
  auto s = admin->GetStatus(url);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(s.status().message().find(url), std::string::npos) << s.status().message();
  EXPECT_EQ(admin->Promote(url, 2).code(), StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);  // no retries, no backoff
}

TEST(HttpNodeAdminTest, AHungNodeIsUnavailableWithinTheTimeout) {
  SilentListener hung;
  auto admin = NewHttpNodeAdmin({"", 1000ms});
  for (int call = 0; call < 2; ++call) {
    const auto start = std::chrono::steady_clock::now();
    Status s = call == 0 ? admin->GetStatus(hung.url()).status() : admin->RemoveMember(hung.url(), 3);
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
    EXPECT_GE(took, 900ms);
    EXPECT_LT(took, 2000ms);
  }
}

TEST(HttpNodeAdminTest, ABaseUrlWithoutSchemeIsInvalid) {
  auto admin = NewHttpNodeAdmin({});
  EXPECT_EQ(admin->GetStatus("10.0.0.1:8080").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dispotify::op::nodes
