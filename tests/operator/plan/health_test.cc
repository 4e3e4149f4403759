#include "operator/plan/health.h"

#include <gtest/gtest.h>

namespace dispotify::op::plan {
namespace {

Observed Cluster(int n) {
  Observed o;
  o.bootstrapped = true;
  o.desired.replicas = n;
  o.desired.replication_factor = 3;
  Group g;
  g.leader_id = 1;
  g.replication_factor = 3;
  for (int i = 0; i < n; ++i) {
    const uint64_t id = static_cast<uint64_t>(i) + 1;
    g.members.push_back(
        Member{.node_id = id, .node_uuid = "u" + std::to_string(id), .voter = true, .healthy = true});
    o.pods.push_back(Pod{
        .ordinal = i, .exists = true, .running = true, .ready = true, .node_uuid = "u" + std::to_string(id)});
  }
  o.group = g;
  return o;
}

const ConditionValue& Cond(const Health& h, const std::string& type) {
  for (const auto& c : h.conditions)
    if (c.type == type) return c;
  static ConditionValue none;
  ADD_FAILURE() << "no condition " << type;
  return none;
}

TEST(Summarize, HealthyClusterIsReadyAndRunning) {
  Observed o = Cluster(3);
  Health h = Summarize(o, NextStep(o), o.group->members);
  EXPECT_EQ(h.phase, "Running");
  EXPECT_EQ(h.ready_replicas, 3);
  EXPECT_TRUE(Cond(h, "Ready").status);
  EXPECT_FALSE(Cond(h, "Degraded").status);
  EXPECT_FALSE(Cond(h, "Progressing").status);
  EXPECT_TRUE(Cond(h, "ReplicationHealthy").status);
  EXPECT_FALSE(Cond(h, "QuorumLost").status);
}

TEST(Summarize, UnhealthyMemberIsDegraded) {
  Observed o = Cluster(3);
  o.group->members[2].healthy = false;
  o.pods[2].ready = false;
  Health h = Summarize(o, NextStep(o), o.group->members);
  EXPECT_EQ(h.phase, "Degraded");
  EXPECT_TRUE(Cond(h, "Degraded").status);
  EXPECT_NE(Cond(h, "Degraded").message.find("node 3"), std::string::npos);
  EXPECT_FALSE(Cond(h, "Ready").status);
}

TEST(Summarize, UnderReplicatedFilesReportProgress) {
  Observed o = Cluster(3);
  o.group->under_replicated = 12;
  Health h = Summarize(o, NextStep(o), o.group->members);
  EXPECT_FALSE(Cond(h, "ReplicationHealthy").status);
  EXPECT_NE(Cond(h, "ReplicationHealthy").message.find("12 files"), std::string::npos);
}

TEST(Summarize, ScalingIsProgressing) {
  Observed o = Cluster(3);
  o.desired.replicas = 5;
  Health h = Summarize(o, NextStep(o), o.group->members);
  EXPECT_EQ(h.phase, "Scaling");
  EXPECT_TRUE(Cond(h, "Progressing").status);
  EXPECT_FALSE(Cond(h, "Ready").status);
}

TEST(Summarize, MajorityGoneWithTheirDisksIsQuorumLost) {
  Observed o = Cluster(3);
  const auto members = o.group->members;
  o.group.reset();
  o.pods[1].node_uuid = "fresh-1";  // came back empty
  o.pods[2].running = false;
  o.pods[2].node_uuid.reset();
  Health h = Summarize(o, NextStep(o), members);
  EXPECT_EQ(h.phase, "QuorumLost");
  EXPECT_TRUE(Cond(h, "QuorumLost").status);
  EXPECT_NE(Cond(h, "QuorumLost").message.find("1 of 3 voters"), std::string::npos);
}

TEST(Summarize, NoLeaderWithAMajorityAliveIsAnElectionNotQuorumLoss) {
  Observed o = Cluster(3);
  const auto members = o.group->members;
  o.group.reset();
  o.pods[2].running = false;
  Health h = Summarize(o, NextStep(o), members);
  EXPECT_FALSE(Cond(h, "QuorumLost").status);
  EXPECT_EQ(h.phase, "Degraded");
}

}  // namespace
}  // namespace dispotify::op::plan
