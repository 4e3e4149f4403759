// The operator's NodeAdmin driving real dispotify-node processes through a whole membership
// lifecycle, as the operator does: node 1 bootstraps the cluster (bootstrap_node_id 1), nodes 2
// and 3 start empty with no seed and wait; the test adds each as a learner, waits until it has
// caught up, promotes it, then changes the replication factor, moves the leadership, drains and
// removes a member, checking every step with GetStatus.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "e2e/cluster_harness.h"
#include "e2e/http_helpers.h"
#include "operator/nodes/nodes.h"

namespace dispotify::op::nodes {
namespace {

using e2e::Eventually;
using namespace std::chrono_literals;

constexpr char kToken[] = "operator-secret";

class NodeAdminE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The harness SIGKILLs every node when it is destroyed, whatever the outcome.
    cluster_ = std::make_unique<e2e::Cluster>(3, "nodes");
    // Auth on, as the operator's pods run (operator/specs): every call carries the admin token.
    cluster_->SetCommonFlags({"--api-token", kToken, "--auth", "true", "--bootstrap-node-id", "1",
                              "--repair-interval-ms", "200", "--scrub-interval-s", "0"});
    admin_ = NewHttpNodeAdmin({kToken, 5000ms});
  }
  void TearDown() override {
    if (HasFailure()) cluster_->DumpLogs();
    cluster_.reset();
  }

  // Starts node `id` with no peers: node 1 bootstraps, the others wait to be added.
  void Start(uint64_t id) { cluster_->Start(id, {"--peers", ""}); }

  std::string Url(uint64_t id) { return "http://127.0.0.1:" + std::to_string(cluster_->spec(id).http_port); }

  std::optional<NodeStatus> StatusOf(uint64_t id) {
    auto s = admin_->GetStatus(Url(id));
    if (!s.ok()) return std::nullopt;
    return *s;
  }

  static const MemberStatus* Member(const NodeStatus& s, uint64_t id) {
    for (const auto& m : s.members) {
      if (m.node_id == id) return &m;
    }
    return nullptr;
  }

  // The leader as node `asked` sees it, once that node knows one and the leader agrees.
  uint64_t WaitLeader(uint64_t asked) {
    uint64_t leader = 0;
    Eventually(
        [&] {
          auto s = StatusOf(asked);
          if (!s || s->leader_id == 0) return false;
          auto l = StatusOf(s->leader_id);
          if (!l || !l->IsLeader()) return false;
          leader = l->node_id;
          return true;
        },
        20s);
    return leader;
  }

  // Adds node `id` as a learner through node `via` (the leader or a follower), waits until the
  // leader sees it caught up, and promotes it.
  void AddAndPromote(uint64_t id, uint64_t via) {
    // Start does not wait for the REST listener: with auth on, a call right after it sometimes
    // found nothing listening yet (2 runs in 20).
    Result<NodeStatus> own = Status::Unavailable("not asked yet");
    Eventually(
        [&] {
          own = admin_->GetStatus(Url(id));
          return own.ok();
        },
        10s);
    ASSERT_TRUE(own.ok()) << own.status().ToString();
    EXPECT_TRUE(own->members.empty()) << "node " << id << " should wait to be added";
    ASSERT_FALSE(own->node_uuid.empty());
    const std::string address = cluster_->spec(id).address();

    Status added = admin_->AddLearner(Url(via), id, address, own->node_uuid);
    ASSERT_TRUE(added.ok()) << added.ToString();
    added = admin_->AddLearner(Url(via), id, address, own->node_uuid);
    EXPECT_TRUE(added.ok()) << "adding the same learner again: " << added.ToString();

    const uint64_t leader = WaitLeader(via);
    ASSERT_NE(leader, 0u);
    std::optional<NodeStatus> last;
    const bool caught_up = Eventually(
        [&] {
          last = StatusOf(leader);
          const MemberStatus* m = last ? Member(*last, id) : nullptr;
          return m != nullptr && m->role == "learner" && m->node_uuid == own->node_uuid &&
                 m->match_index > 0 && m->match_index >= last->commit_index;
        },
        20s);
    const MemberStatus* m = last ? Member(*last, id) : nullptr;
    ASSERT_TRUE(caught_up) << "learner " << id << " match_index "
                           << (m != nullptr ? std::to_string(m->match_index) : "absent") << ", commit_index "
                           << (last ? std::to_string(last->commit_index) : "?");
    // The learner itself has the log (and so the configuration) too.
    EXPECT_TRUE(Eventually(
        [&] {
          auto s = StatusOf(id);
          return s && s->leader_id == leader && Member(*s, id) != nullptr;
        },
        10s));

    Status promoted = admin_->Promote(Url(leader), id);
    ASSERT_TRUE(promoted.ok()) << promoted.ToString();
    auto after = StatusOf(leader);
    ASSERT_TRUE(after);
    ASSERT_NE(Member(*after, id), nullptr);
    EXPECT_EQ(Member(*after, id)->role, "voter");
    EXPECT_TRUE(admin_->Promote(Url(leader), id).ok()) << "promoting a voter again";
  }

  std::unique_ptr<e2e::Cluster> cluster_;
  std::unique_ptr<NodeAdmin> admin_;
};

TEST_F(NodeAdminE2eTest, TheWholeMembershipLifecycle) {
  for (uint64_t id = 1; id <= 3; ++id) Start(id);
  ASSERT_EQ(WaitLeader(1), 1u);
  auto first = StatusOf(1);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->cluster_id, "nodes");
  ASSERT_EQ(first->members.size(), 1u);
  EXPECT_EQ(first->members[0].role, "leader");

  // Node 2 through the leader, node 3 through node 2 (a follower forwards admin calls).
  AddAndPromote(2, 1);
  if (HasFatalFailure()) return;
  AddAndPromote(3, 2);
  if (HasFatalFailure()) return;
  for (uint64_t id = 1; id <= 3; ++id) {
    EXPECT_TRUE(Eventually([&] { return StatusOf(id) && StatusOf(id)->members.size() == 3; }, 10s)) << id;
  }

  // Refusals that the operator must tell apart.
  auto other = NewHttpNodeAdmin({"wrong", 5000ms});
  EXPECT_EQ(other->SetReplicationFactor(Url(1), 2).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(
      admin_->AddLearner(Url(1), 2, cluster_->spec(2).address(), "00000000000000000000000000000000").code(),
      StatusCode::kFailedPrecondition);  // a member as another incarnation
  EXPECT_EQ(admin_->Promote(Url(1), 9).code(), StatusCode::kNotFound);
  EXPECT_EQ(admin_->SetReplicationFactor(Url(1), 0).code(), StatusCode::kInvalidArgument);

  Status s = admin_->SetReplicationFactor(Url(3), 2);
  ASSERT_TRUE(s.ok()) << s.ToString();
  for (uint64_t id = 1; id <= 3; ++id) {
    EXPECT_TRUE(Eventually([&] { return StatusOf(id) && StatusOf(id)->replication_factor == 2; }, 10s)) << id;
  }

  // A transfer's answer may come before every node has heard of the new leader.
  s = admin_->TransferLeadership(Url(1), 2);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(Eventually([&] { return WaitLeader(1) == 2; }, 10s));
  s = admin_->TransferLeadership(Url(3), 0);  // to the most up-to-date other voter
  ASSERT_TRUE(s.ok()) << s.ToString();
  uint64_t leader = 0;
  ASSERT_TRUE(Eventually(
      [&] {
        leader = WaitLeader(3);
        return leader != 0 && leader != 2;
      },
      10s));
  const uint64_t victim = leader == 1 ? 3 : 1;

  // The flag is catalog state: applied on the leader before the call returns, on others later.
  auto draining = [&](uint64_t at) {
    auto st = StatusOf(at);
    const MemberStatus* m = st ? Member(*st, victim) : nullptr;
    return m != nullptr && m->draining;
  };
  s = admin_->Drain(Url(leader), victim);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(draining(leader));
  EXPECT_TRUE(Eventually([&] { return draining(victim); }, 10s));
  s = admin_->Undrain(Url(leader), victim);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_FALSE(draining(leader));

  s = admin_->RemoveMember(Url(leader), victim);
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto removed = StatusOf(leader);
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->members.size(), 2u);
  EXPECT_EQ(Member(*removed, victim), nullptr);
  s = admin_->RemoveMember(Url(leader), victim);
  EXPECT_TRUE(s.ok()) << "removing a non-member: " << s.ToString();
  EXPECT_EQ(admin_->Drain(Url(leader), victim).code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace dispotify::op::nodes
