#include "common/tls/policy.h"

#include <gtest/gtest.h>

namespace dispotify::tls {
namespace {

struct Case {
  const char* what;
  Identity peer;
  Service service;
  Decision want;
};

TEST(TlsPolicyTest, Table) {
  const std::set<NodeId> members = {NodeId(1), NodeId(2), NodeId(3)};
  const Identity member = Identity::Node("c1", NodeId(2));
  const Identity outsider = Identity::Node("c1", NodeId(9));
  const Identity foreign = Identity::Node("c2", NodeId(2));
  const Identity op{"c1", "operator", "dispotify-operator"};
  const Identity admin{"c1", "admin", "alice"};
  const Identity bad_node{"c1", "node", "02"};  // never parsed from a certificate, but refused anyway
  const Identity zero{"c1", "node", "0"};

  const Decision member_ok{true, DecisionReason::kMember};
  const Decision join_ok{true, DecisionReason::kJoiningNode};
  const Decision not_member{false, DecisionReason::kNotAMember};
  const Decision other_cluster{false, DecisionReason::kOtherCluster};
  const Decision not_node{false, DecisionReason::kNotANode};

  const Case cases[] = {
      {"member on raft", member, Service::kRaft, member_ok},
      {"member on replication", member, Service::kReplication, member_ok},
      {"member asking to join", member, Service::kJoin, join_ok},
      {"non-member on raft", outsider, Service::kRaft, not_member},
      {"non-member on replication", outsider, Service::kReplication, not_member},
      {"non-member asking to join", outsider, Service::kJoin, join_ok},
      {"other cluster on raft", foreign, Service::kRaft, other_cluster},
      {"other cluster on replication", foreign, Service::kReplication, other_cluster},
      {"other cluster asking to join", foreign, Service::kJoin, other_cluster},
      {"operator on raft", op, Service::kRaft, not_node},
      {"operator asking to join", op, Service::kJoin, not_node},
      {"admin on replication", admin, Service::kReplication, not_node},
      {"non-canonical node name", bad_node, Service::kRaft, not_node},
      {"node zero asking to join", zero, Service::kJoin, not_node},
  };
  for (const Case& c : cases) {
    Decision got = AllowPeer(c.peer, "c1", c.service, members);
    EXPECT_EQ(got, c.want) << c.what << ": got " << DecisionReasonName(got.reason) << ", want "
                           << DecisionReasonName(c.want.reason);
  }
}

TEST(TlsPolicyTest, FollowsTheMembershipItIsGiven) {
  const Identity node4 = Identity::Node("c1", NodeId(4));
  EXPECT_FALSE(AllowPeer(node4, "c1", Service::kRaft, {NodeId(1)}).allowed);
  EXPECT_TRUE(AllowPeer(node4, "c1", Service::kRaft, {NodeId(1), NodeId(4)}).allowed);
  EXPECT_FALSE(AllowPeer(node4, "c1", Service::kReplication, {}).allowed);
}

TEST(TlsPolicyTest, Names) {
  EXPECT_EQ(ServiceName(Service::kRaft), "raft");
  EXPECT_EQ(ServiceName(Service::kReplication), "replication");
  EXPECT_EQ(ServiceName(Service::kJoin), "join");
  EXPECT_EQ(DecisionReasonName(DecisionReason::kOtherCluster), "other_cluster");
  EXPECT_EQ(DecisionReasonName(DecisionReason::kNotAMember), "not_a_member");
}

}  // namespace
}  // namespace dispotify::tls
