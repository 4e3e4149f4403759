#include "operator/controller/observe.h"

#include <gtest/gtest.h>

namespace dispotify::op::controller {
namespace {

using web::json::value;

value Pod(const std::string& name, bool running, bool ready, const std::string& ip = "10.1.0.5") {
  value p = value::object();
  p["metadata"]["name"] = value::string(name);
  p["status"]["podIP"] = value::string(ip);
  p["status"]["conditions"][0]["type"] = value::string("Ready");
  p["status"]["conditions"][0]["status"] = value::string(ready ? "True" : "False");
  p["status"]["containerStatuses"][0]["name"] = value::string("node");
  if (running) p["status"]["containerStatuses"][0]["state"]["running"] = value::object();
  return p;
}

TEST(Observe, PodOrdinalOnlyForTheClustersOwnPods) {
  EXPECT_EQ(PodOrdinal("music", Pod("music-0", true, true)), 0);
  EXPECT_EQ(PodOrdinal("music", Pod("music-12", true, true)), 12);
  EXPECT_EQ(PodOrdinal("music", Pod("music-peers-0", true, true)), -1);
  EXPECT_EQ(PodOrdinal("music", Pod("music-", true, true)), -1);
  EXPECT_EQ(PodOrdinal("music", Pod("musicx-1", true, true)), -1);
  EXPECT_EQ(PodOrdinal("mus", Pod("music-1", true, true)), -1);
}

// Three views of nodes 1..3, each following `leader` (0: none) in `term`.
std::vector<NodeView> Views(uint64_t leader, uint64_t term) {
  std::vector<NodeView> views(3);
  for (int i = 0; i < 3; ++i) {
    views[i].ordinal = i;
    views[i].status = nodes::NodeStatus{};
    auto& s = *views[i].status;
    s.node_id = static_cast<uint64_t>(i) + 1;
    s.role = s.node_id == leader ? "leader" : "follower";
    s.leader_id = leader;
    s.term = term;
    for (uint64_t id = 1; id <= 3; ++id) {
      s.members.push_back({.node_id = id, .role = id == leader ? "leader" : "voter", .healthy = true});
    }
  }
  return views;
}

TEST(Observe, ALeaderIsBelievedWhenAMajorityOfItsVotersFollowIt) {
  EXPECT_EQ(FindLeader(Views(0, 4)), nullptr);
  auto views = Views(3, 5);
  ASSERT_NE(FindLeader(views), nullptr);
  EXPECT_EQ(FindLeader(views)->node_id, 3u);
  // Node 1 was partitioned away and still thinks it leads in term 4: the others follow node 3.
  views[0].status->role = "leader";
  views[0].status->leader_id = 1;
  views[0].status->term = 4;
  EXPECT_EQ(FindLeader(views)->node_id, 3u);
  // Only the leader answers: it cannot be confirmed, so nobody is asked to change anything.
  auto alone = Views(3, 5);
  alone[0].status.reset();
  alone[1].status.reset();
  EXPECT_EQ(FindLeader(alone), nullptr);
}

TEST(Observe, ANodeThatBootstrappedAGroupOfItsOwnIsNotTheLeader) {
  auto views = Views(1, 2);
  // Node 3 created a one-member group (term 3, higher than the real one): it leads only itself.
  auto& rogue = *views[2].status;
  rogue.role = "leader";
  rogue.leader_id = 3;
  rogue.term = 3;
  rogue.members = {{.node_id = 3, .role = "leader", .healthy = true},
                   {.node_id = 1, .role = "voter"},
                   {.node_id = 2, .role = "voter"}};
  ASSERT_NE(FindLeader(views), nullptr);
  EXPECT_EQ(FindLeader(views)->node_id, 1u);
}

TEST(Observe, TheJournalRoundTripsThroughTheStatus) {
  plan::Operation j{.type = plan::kOpSetReplicationFactor,
                    .member = 0,
                    .step = "set",
                    .value = 4,
                    .step_since_s = 1'800'000'123,
                    .last_error = "no leader"};
  auto op = JournalToStatus(j, "music", std::nullopt, 1'800'000'200);
  ASSERT_TRUE(op);
  EXPECT_EQ(op->started, api::Rfc3339(1'800'000'200));
  EXPECT_EQ(JournalFromStatus(op), j);
  plan::Operation add{.type = plan::kOpAddMember,
                      .member = 4,
                      .node_uuid = "ab",
                      .step = "promote",
                      .step_since_s = 1'800'000'300};
  auto next = JournalToStatus(add, "music", op, 1'800'000'300);
  EXPECT_EQ(next->member, "music-3");
  EXPECT_EQ(next->started, api::Rfc3339(1'800'000'300)) << "another operation starts afresh";
  EXPECT_FALSE(next->target_replication_factor);
  EXPECT_FALSE(JournalToStatus(plan::Operation{}, "music", next, 1));
  // A journal whose step time cannot be read counts as old, so a timeout judged on it fires.
  api::Operation broken = *next;
  broken.step_started = "yesterday";
  EXPECT_EQ(JournalFromStatus(broken).step_since_s, 0);
}

TEST(Observe, PodsAndGroupBecomeThePlannersInput) {
  api::DispotifyCluster c;
  c.metadata.name = "music";
  c.metadata.namespace_ = "ns";
  c.spec.replicas = 3;
  std::vector<NodeView> views;
  views.push_back({.ordinal = 0, .pod = Pod("music-0", true, true)});
  views.push_back({.ordinal = 1, .pod = Pod("music-1", true, false)});
  views.push_back({.ordinal = 2, .pod = Pod("music-2", false, false)});
  nodes::NodeStatus leader;
  leader.node_id = 1;
  leader.node_uuid = "u1";
  leader.role = "leader";
  leader.leader_id = 1;
  leader.commit_index = 50;
  leader.replication_factor = 3;
  leader.under_replicated = 2;
  leader.members = {{.node_id = 1, .role = "leader", .healthy = true, .match_index = 50, .node_uuid = "u1"},
                    {.node_id = 2, .role = "learner", .healthy = true, .match_index = 7, .node_uuid = "u2"}};
  views[0].status = leader;
  const auto o = BuildObserved(c, specs::Settings{}, views, 99);
  ASSERT_EQ(o.pods.size(), 3u);
  EXPECT_TRUE(o.pods[0].ready);
  EXPECT_TRUE(o.pods[1].running);
  EXPECT_FALSE(o.pods[1].ready);
  EXPECT_FALSE(o.pods[2].running);
  EXPECT_EQ(o.pods[0].node_uuid, "u1");
  EXPECT_FALSE(o.pods[1].node_uuid);
  EXPECT_EQ(o.pods[2].peer_address, "music-2.music-peers.ns.svc.cluster.local:7000");
  EXPECT_FALSE(o.pods[0].up_to_date) << "no restart hash on the pod: not the desired template";
  ASSERT_TRUE(o.group);
  EXPECT_EQ(o.group->leader_id, 1u);
  EXPECT_EQ(o.group->under_replicated, 2u);
  EXPECT_EQ(o.group->Voters(), 1);
  EXPECT_EQ(o.group->members[1].match_index, 7u);
}

TEST(Observe, MetadataUrlsCountsConsecutiveNonEmptyMemberKeys) {
  EXPECT_FALSE(MetadataUrlsOf("pg", nullptr).found);
  value secret = value::parse(
      R"({"data":{"member-0":"cG9zdGdyZXM6Ly8=","member-1":"eA==","member-2":"","member-3":"eA=="}})");
  auto urls = MetadataUrlsOf("pg", &secret);
  EXPECT_TRUE(urls.found);
  EXPECT_EQ(urls.secret, "pg");
  EXPECT_EQ(urls.members, 2);  // member-2 is empty: member-3 cannot be used before it
  value empty = value::parse(R"({"metadata":{"name":"pg"}})");
  urls = MetadataUrlsOf("pg", &empty);
  EXPECT_TRUE(urls.found);
  EXPECT_EQ(urls.members, 0);
}

}  // namespace
}  // namespace dispotify::op::controller
