// Multi-process e2e tests: three real dispotify-node processes on loopback.
//   - a leader is elected and writes replicate;
//   - kill -9 of the leader, then of a follower, under a continuous write load: every
//     acknowledged write is readable afterwards, and the killed nodes catch up once restarted;
//   - a node refuses another cluster's data dir (exit 3);
//   - a removed member stops (exit 4), refuses to restart (exit 4) until --reset, then rejoins;
//   - a learner is added, catches up and is promoted through KV.ChangeMembership;
//   - a node started with no seed (bootstrap_node_id of another node, no peers) answers the leader
//     that adds it, so it catches up;
//   - a learner that never answered is not promoted (it would cost the quorum);
//   - SIGTERM of the leader hands leadership over first (no election timeout), then it exits 0.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "dispotify/v1/cluster.grpc.pb.h"
#include "e2e/cluster_harness.h"
#include "node/server/kv_client.h"

namespace dispotify::e2e {
namespace {

using namespace std::chrono_literals;
using server::KvClient;

class ClusterE2eTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure() && cluster_) cluster_->DumpLogs();
    cluster_.reset();  // SIGKILLs every node, removes the data dirs
  }
  Cluster& MakeCluster(int n, const std::string& id = "e2e") {
    cluster_ = std::make_unique<Cluster>(n, id);
    // These tests check consensus through the KV state machine.
    cluster_->SetBaseFlags({"--state-machine", "kv"});
    return *cluster_;
  }
  std::unique_ptr<Cluster> cluster_;
};

// Writers that keep putting distinct keys and record what was acknowledged.
class WriteLoad {
 public:
  WriteLoad(std::vector<std::string> endpoints, int writers,
            std::shared_ptr<grpc::ChannelCredentials> creds) {
    for (int w = 0; w < writers; ++w) {
      threads_.emplace_back([this, endpoints, w, creds] {
        KvClient client(endpoints, 1000ms, creds);
        for (int i = 0; !stop_.load(); ++i) {
          std::string key = "w" + std::to_string(w) + "-" + std::to_string(i);
          std::string value = "value-" + key;
          grpc::Status st = client.Put(key, value, 20s);
          std::lock_guard lock(mu_);
          if (st.ok()) {
            acked_[key] = value;
          } else {
            ++failed_;
          }
        }
      });
    }
  }
  ~WriteLoad() { Stop(); }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  size_t acked() {
    std::lock_guard lock(mu_);
    return acked_.size();
  }
  // Waits until `more` further writes are acknowledged (progress after a fault).
  bool WaitProgress(size_t more, std::chrono::milliseconds timeout) {
    size_t target = acked() + more;
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (acked() >= target) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  std::map<std::string, std::string> Acked() {
    std::lock_guard lock(mu_);
    return acked_;
  }
  size_t failed() {
    std::lock_guard lock(mu_);
    return failed_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::map<std::string, std::string> acked_;
  size_t failed_ = 0;
  std::vector<std::thread> threads_;
};

TEST_F(ClusterE2eTest, ElectsLeaderAndReplicates) {
  Cluster& c = MakeCluster(3);
  c.StartAll();
  uint64_t leader = c.WaitLeader();
  ASSERT_NE(leader, 0u) << "no leader elected";
  KvClient client(c.Endpoints(), 2000ms, c.ChannelCredentials());
  uint64_t last = 0;
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(client.Put("k" + std::to_string(i), "v" + std::to_string(i), 10s, &last).ok());
  }
  std::optional<std::string> v;
  ASSERT_TRUE(client.Get("k42", 10s, &v).ok());
  EXPECT_EQ(v.value_or(""), "v42");
  for (uint64_t id = 1; id <= 3; ++id) EXPECT_TRUE(c.WaitApplied(id, last, 10s)) << "node " << id;
  auto st = c.Status(leader);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->members_size(), 3);
  // Graceful stop exits 0.
  for (uint64_t id = 1; id <= 3; ++id) EXPECT_EQ(c.Stop(id).value_or(-1), 0) << "node " << id;
}

TEST_F(ClusterE2eTest, AcknowledgedWritesSurviveKill9OfLeaderAndFollower) {
  Cluster& c = MakeCluster(3);
  // Frequent snapshots: the log is compacted under load, so a restarted node may need one.
  c.SetCommonFlags({"--snapshot-entries", "300"});
  c.StartAll();
  uint64_t leader = c.WaitLeader();
  ASSERT_NE(leader, 0u);

  WriteLoad load(c.Endpoints(), 8, c.ChannelCredentials());
  ASSERT_TRUE(load.WaitProgress(200, 20s)) << "no write progress";

  // kill -9 the leader: writes resume under a new leader.
  c.Kill9(leader);
  uint64_t new_leader = c.WaitLeader(20s, leader);
  ASSERT_NE(new_leader, 0u) << "no new leader after killing " << leader;
  ASSERT_TRUE(load.WaitProgress(200, 30s)) << "writes did not resume after killing the leader";

  // Bring it back; it catches up.
  c.Start(leader);
  auto lst = c.Status(new_leader);
  ASSERT_TRUE(lst);
  EXPECT_TRUE(c.WaitApplied(leader, lst->commit_index(), 30s))
      << "restarted node " << leader << " did not catch up";

  // kill -9 a follower.
  uint64_t follower = 0;
  for (uint64_t id = 1; id <= 3; ++id) {
    if (id != new_leader) follower = id;
  }
  c.Kill9(follower);
  ASSERT_TRUE(load.WaitProgress(200, 30s)) << "writes stalled after killing follower " << follower;
  c.Start(follower);
  ASSERT_TRUE(load.WaitProgress(100, 30s));
  load.Stop();

  auto acked = load.Acked();
  std::printf("acknowledged writes: %zu, failed attempts: %zu\n", acked.size(), load.failed());
  ASSERT_GT(acked.size(), 700u);

  // Every acknowledged write is readable (linearizable reads through the leader).
  KvClient reader(c.Endpoints(), 2000ms, c.ChannelCredentials());
  size_t missing = 0;
  for (const auto& [key, value] : acked) {
    std::optional<std::string> got;
    grpc::Status st = reader.Get(key, 20s, &got);
    ASSERT_TRUE(st.ok()) << st.error_message();
    if (got != value) {
      if (++missing <= 10) ADD_FAILURE() << "acknowledged write lost: " << key;
    }
  }
  EXPECT_EQ(missing, 0u);

  // Every node converges to the same applied state.
  uint64_t leader_now = c.WaitLeader();
  ASSERT_NE(leader_now, 0u);
  auto fin = c.Status(leader_now);
  ASSERT_TRUE(fin);
  for (uint64_t id = 1; id <= 3; ++id)
    EXPECT_TRUE(c.WaitApplied(id, fin->commit_index(), 30s)) << "node " << id;
}

TEST_F(ClusterE2eTest, RefusesAnotherClustersDataDir) {
  Cluster& c = MakeCluster(1, "cluster-a");
  c.Start(1);
  ASSERT_NE(c.WaitLeader(), 0u);
  ASSERT_EQ(c.Stop(1).value_or(-1), 0);
  // Same dir, another cluster id.
  auto code = c.RunToExit(1, {"--peers", c.Peers(), "--cluster-id", "cluster-b"});
  ASSERT_TRUE(code.has_value()) << "the node did not exit";
  EXPECT_EQ(*code, 3);
  // Another node id on this dir is refused as well.
  code = c.RunToExit(1, {"--peers", "7=" + c.spec(1).address(), "--node-id", "7"});
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 3);
}

// Removes node 3 of a running 3-node cluster and waits for it to stop (exit code 4).
void RemoveNode3(Cluster& c, KvClient& client) {
  if (c.Status(3) && c.Status(3)->role() == "leader") {
    ASSERT_TRUE(client.TransferLeadership(1, 10s).ok());
    ASSERT_NE(c.WaitLeader(20s, 3), 0u);
  }
  v1::MembershipRequest req;
  req.set_op(v1::MembershipRequest::REMOVE);
  req.set_node_id(3);
  grpc::Status st = client.ChangeMembership(req, 20s);
  ASSERT_TRUE(st.ok()) << st.error_message();
  // Node 3 learns of its committed removal and stops with exit code 4.
  auto code = c.process(3)->Wait(20s);
  ASSERT_TRUE(code.has_value()) << "removed node kept running";
  EXPECT_EQ(*code, 4);
  c.Kill9(3);  // reap the guard
}

TEST_F(ClusterE2eTest, RemovedMemberRefusesToRestartUntilReset) {
  Cluster& c = MakeCluster(3);
  c.StartAll();
  ASSERT_NE(c.WaitLeader(), 0u);
  KvClient client(c.Endpoints(), 2000ms, c.ChannelCredentials());
  ASSERT_TRUE(client.Put("before", "removal", 10s).ok());
  RemoveNode3(c, client);
  if (HasFatalFailure()) return;
  v1::MembershipRequest req;
  req.set_node_id(3);
  grpc::Status st;
  std::optional<int> code;

  // Restarting on the old disk is refused, also with reset_removed unless it joins.
  code = c.RunToExit(3, {"--peers", c.Peers()});
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 4);
  code = c.RunToExit(3, {"--peers", c.Peers(), "--reset-removed", "true"});
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 4);

  // The cluster goes on with two voters.
  ASSERT_TRUE(client.Put("after", "removal", 10s).ok());

  // --reset wipes it (exit 0); it then joins as a learner and is promoted again.
  code = c.RunToExit(3, {"--reset"});
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  c.Start(3, {"--join"});
  req.set_op(v1::MembershipRequest::ADD_LEARNER);
  req.set_address(c.spec(3).address());
  st = client.ChangeMembership(req, 20s);
  ASSERT_TRUE(st.ok()) << st.error_message();
  req.set_op(v1::MembershipRequest::PROMOTE);
  st = client.ChangeMembership(req, 30s);
  ASSERT_TRUE(st.ok()) << st.error_message();
  auto lst = c.Status(c.WaitLeader());
  ASSERT_TRUE(lst);
  EXPECT_TRUE(c.WaitApplied(3, lst->commit_index(), 30s));
}

// What an operator's pod does when a scale-up brings it back on the volume of a member removed by
// an earlier scale-down: with reset_removed it wipes the volume, starts as a new incarnation and
// waits to be added.
TEST_F(ClusterE2eTest, RemovedMemberWithResetRemovedStartsAfreshAndRejoins) {
  Cluster& c = MakeCluster(3);
  c.StartAll();
  ASSERT_NE(c.WaitLeader(), 0u);
  KvClient client(c.Endpoints(), 2000ms, c.ChannelCredentials());
  ASSERT_TRUE(client.Put("before", "removal", 10s).ok());
  RemoveNode3(c, client);
  if (HasFatalFailure()) return;
  c.Start(3, {"--join", "--reset-removed", "true"});
  v1::MembershipRequest req;
  req.set_node_id(3);
  req.set_op(v1::MembershipRequest::ADD_LEARNER);
  req.set_address(c.spec(3).address());
  grpc::Status st = client.ChangeMembership(req, 20s);
  ASSERT_TRUE(st.ok()) << st.error_message();
  req.set_op(v1::MembershipRequest::PROMOTE);
  st = client.ChangeMembership(req, 30s);
  ASSERT_TRUE(st.ok()) << st.error_message();
  auto lst = c.Status(c.WaitLeader());
  ASSERT_TRUE(lst);
  EXPECT_TRUE(c.WaitApplied(3, lst->commit_index(), 30s));
  EXPECT_TRUE(c.process(3)->running());
}

// Quorum-loss recovery: two of three members lost with their disks. The survivor, restarted
// with force_new_cluster, goes on alone with everything it held; the others come back empty and
// are added again. A later restart with the same token does not force again.
TEST_F(ClusterE2eTest, ASurvivorForcedIntoANewClusterKeepsItsDataAndTakesNewMembers) {
  Cluster& c = MakeCluster(3);
  c.StartAll();
  ASSERT_NE(c.WaitLeader(), 0u);
  KvClient client(c.Endpoints(), 2000ms, c.ChannelCredentials());
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(client.Put("song" + std::to_string(i), "x", 10s).ok());
  // The survivor must hold the writes: wait until it applied them.
  auto lst = c.Status(c.WaitLeader());
  ASSERT_TRUE(lst);
  ASSERT_TRUE(c.WaitApplied(1, lst->commit_index(), 30s));
  for (uint64_t id : {1, 2, 3}) c.Kill9(id);
  for (uint64_t id : {2, 3}) std::filesystem::remove_all(c.spec(id).data_dir);

  // Without the recovery the survivor alone has no quorum.
  c.Start(1);
  KvClient alone({c.spec(1).address()}, 2000ms, c.ChannelCredentials());
  EXPECT_FALSE(alone.Put("no", "quorum", 3s).ok());
  c.Kill9(1);

  c.Start(1, {"--force-new-cluster", "recovery-1"});
  ASSERT_EQ(c.WaitLeader(20s), 1u);
  std::optional<std::string> v;
  ASSERT_TRUE(alone.Get("song19", 10s, &v).ok());
  EXPECT_EQ(v, std::optional<std::string>("x"));
  ASSERT_TRUE(alone.Put("after", "recovery", 10s).ok());
  auto st = c.Status(1);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->members_size(), 1);

  // Node 2 comes back empty and is added again.
  c.Start(2, {"--join"});
  v1::MembershipRequest req;
  req.set_node_id(2);
  req.set_op(v1::MembershipRequest::ADD_LEARNER);
  req.set_address(c.spec(2).address());
  grpc::Status gs = alone.ChangeMembership(req, 20s);
  ASSERT_TRUE(gs.ok()) << gs.error_message();
  st = c.Status(1);
  ASSERT_TRUE(st);
  ASSERT_TRUE(c.WaitApplied(2, st->commit_index(), 30s));
  req.set_op(v1::MembershipRequest::PROMOTE);
  gs = alone.ChangeMembership(req, 30s);
  ASSERT_TRUE(gs.ok()) << gs.error_message();

  // The survivor restarts with the same setting: it does not force again, the group stays two.
  c.Kill9(1);
  c.Start(1, {"--force-new-cluster", "recovery-1"});
  ASSERT_NE(c.WaitLeader(20s), 0u);
  KvClient both({c.spec(1).address(), c.spec(2).address()}, 2000ms, c.ChannelCredentials());
  ASSERT_TRUE(both.Put("two", "members", 10s).ok());
  st = c.Status(c.WaitLeader());
  ASSERT_TRUE(st);
  EXPECT_EQ(st->members_size(), 2);
  ASSERT_TRUE(both.Get("song0", 10s, &v).ok());
  EXPECT_EQ(v, std::optional<std::string>("x"));

  // A node with nothing to rebuild from refuses the setting (exit 2, bad configuration).
  std::filesystem::remove_all(c.spec(3).data_dir);
  auto code = c.RunToExit(3, {"--force-new-cluster", "recovery-1"});
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 2);
}

TEST_F(ClusterE2eTest, LearnerIsAddedCatchesUpAndIsPromoted) {
  Cluster& c = MakeCluster(3);
  for (uint64_t id = 1; id <= 3; ++id) c.Start(id, {}, 3);
  ASSERT_NE(c.WaitLeader(), 0u);
  KvClient client(c.Endpoints(), 2000ms, c.ChannelCredentials());
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(client.Put("pre" + std::to_string(i), "x", 10s).ok());

  uint64_t id4 = c.AddSpec();
  c.Start(id4, {"--join"});
  v1::MembershipRequest req;
  req.set_op(v1::MembershipRequest::ADD_LEARNER);
  req.set_node_id(id4);
  req.set_address(c.spec(id4).address());
  grpc::Status st = client.ChangeMembership(req, 20s);
  ASSERT_TRUE(st.ok()) << st.error_message();

  auto lst = c.Status(c.WaitLeader());
  ASSERT_TRUE(lst);
  ASSERT_TRUE(c.WaitApplied(id4, lst->commit_index(), 30s)) << "learner did not catch up";
  auto l4 = c.Status(id4);
  ASSERT_TRUE(l4);
  EXPECT_EQ(l4->role(), "follower");

  req.set_op(v1::MembershipRequest::PROMOTE);
  st = client.ChangeMembership(req, 30s);
  ASSERT_TRUE(st.ok()) << st.error_message();
  lst = c.Status(c.WaitLeader());
  ASSERT_TRUE(lst);
  int voters = 0;
  for (const auto& m : lst->members()) voters += m.voter() ? 1 : 0;
  EXPECT_EQ(voters, 4);
  // The new voter has the data: stop one original voter; 3 of 4 still make progress.
  c.Kill9(1);
  KvClient client2({c.spec(2).address(), c.spec(3).address(), c.spec(id4).address()}, 2000ms,
                   c.ChannelCredentials());
  ASSERT_TRUE(client2.Put("after-promote", "y", 30s).ok());
  std::optional<std::string> v;
  ASSERT_TRUE(client2.Get("pre99", 10s, &v).ok());
  EXPECT_EQ(v.value_or(""), "x");
}

// As the operator brings a cluster up: node 1 bootstraps it, node 2 starts with no seed and waits
// for the leader to add it. It knows no member (hence no address) until the leader's log reaches
// it, so it must answer the leader at the address the leader's messages carry.
TEST_F(ClusterE2eTest, ANodeStartedWithNoSeedAnswersTheLeaderThatAddsIt) {
  Cluster& c = MakeCluster(2);
  c.SetCommonFlags({"--bootstrap-node-id", "1", "--peers", ""});
  c.Start(1);
  c.Start(2);
  ASSERT_EQ(c.WaitLeader(), 1u);
  KvClient client({c.spec(1).address()}, 2000ms, c.ChannelCredentials());
  ASSERT_TRUE(client.Put("before", "x", 10s).ok());

  v1::MembershipRequest req;
  req.set_op(v1::MembershipRequest::ADD_LEARNER);
  req.set_node_id(2);
  req.set_address(c.spec(2).address());
  grpc::Status st = client.ChangeMembership(req, 20s);
  ASSERT_TRUE(st.ok()) << st.error_message();
  auto lst = c.Status(1);
  ASSERT_TRUE(lst);
  ASSERT_TRUE(c.WaitApplied(2, lst->commit_index(), 20s)) << "the learner never caught up";

  req.set_op(v1::MembershipRequest::PROMOTE);
  st = client.ChangeMembership(req, 20s);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_TRUE(client.Put("after", "y", 10s).ok());
}

// A learner the leader never heard from (here: nothing listens at its address) stays a learner:
// as a voter it would leave the leader without a quorum, even though its lag is small in a young
// cluster.
TEST_F(ClusterE2eTest, ALearnerThatNeverAnsweredIsNotPromoted) {
  Cluster& c = MakeCluster(1);
  c.Start(1);
  ASSERT_EQ(c.WaitLeader(), 1u);
  KvClient client({c.spec(1).address()}, 2000ms, c.ChannelCredentials());
  ASSERT_TRUE(client.Put("before", "x", 10s).ok());

  v1::MembershipRequest req;
  req.set_op(v1::MembershipRequest::ADD_LEARNER);
  req.set_node_id(9);
  req.set_address("127.0.0.1:" + std::to_string(FreePort()));
  grpc::Status st = client.ChangeMembership(req, 20s);
  ASSERT_TRUE(st.ok()) << st.error_message();

  // One call, without the client's retries: KvClient retries UNAVAILABLE until its budget ends,
  // and a last attempt cut short by the budget reports DEADLINE_EXCEEDED instead of the refusal.
  req.set_op(v1::MembershipRequest::PROMOTE);
  {
    auto stub = v1::Cluster::NewStub(grpc::CreateChannel(c.spec(1).address(), c.ChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    v1::MembershipResponse resp;
    st = stub->ChangeMembership(&ctx, req, &resp);
  }
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(st.error_message().find("has not acknowledged any entry"), std::string::npos)
      << st.error_message();
  ASSERT_TRUE(client.Put("after", "y", 10s).ok()) << "the cluster lost its quorum";
  auto lst = c.Status(1);
  ASSERT_TRUE(lst);
  for (const auto& m : lst->members()) EXPECT_TRUE(m.node_id() != 9 || !m.voter());
}

// A pod being stopped (rolling upgrade, node drain) gets SIGTERM: as leader, the node hands
// leadership to the most up-to-date voter before it exits, so the cluster does not sit out an
// election timeout. The timeout is made long (3-6 s) so that an election could not explain a new
// leader within it; a transfer moves the term by exactly one.
TEST_F(ClusterE2eTest, SigtermOfTheLeaderHandsLeadershipOverFirst) {
  Cluster& c = MakeCluster(3);
  c.SetCommonFlags({"--election-ticks", "60"});
  c.StartAll();
  const uint64_t leader = c.WaitLeader(40s);
  ASSERT_NE(leader, 0u);
  KvClient client(c.Endpoints(), 2000ms, c.ChannelCredentials());
  uint64_t last = 0;
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(client.Put("before" + std::to_string(i), "x", 20s, &last).ok());
  auto before = c.Status(leader);
  ASSERT_TRUE(before);
  const uint64_t term = before->term();
  std::vector<uint64_t> others;
  for (uint64_t id = 1; id <= 3; ++id) {
    if (id != leader) others.push_back(id);
  }
  for (uint64_t id : others) ASSERT_TRUE(c.WaitApplied(id, last, 10s)) << "node " << id;

  const auto start = std::chrono::steady_clock::now();
  c.process(leader)->Signal(SIGTERM);
  uint64_t next = 0;
  uint64_t next_term = 0;
  while (next == 0 && std::chrono::steady_clock::now() - start < 10s) {
    auto a = c.Status(others[0]);
    auto b = c.Status(others[1]);
    if (a && b && a->leader_id() == b->leader_id() && a->term() == b->term() && a->leader_id() != 0 &&
        a->leader_id() != leader) {
      next = a->leader_id();
      next_term = a->term();
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_NE(next, 0u) << "no new leader after SIGTERM of the leader";
  EXPECT_LT(took, 2500ms) << "a new leader this late means an election timeout, not a transfer";
  EXPECT_EQ(next_term, term + 1) << "a transfer moves the term by exactly one";
  std::printf("leadership moved from node %llu to node %llu in %lld ms\n",
              static_cast<unsigned long long>(leader), static_cast<unsigned long long>(next),
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  EXPECT_EQ(c.process(leader)->Wait(10s).value_or(-1), 0) << "graceful stop exits 0";
  std::ifstream log(c.LogPath(leader));
  std::stringstream text;
  text << log.rdbuf();
  EXPECT_NE(text.str().find("handed leadership to node " + std::to_string(next)), std::string::npos)
      << "the stopping leader logs the handoff";

  // Writes keep working on the two that remain, and nothing acknowledged was lost.
  KvClient rest({c.spec(others[0]).address(), c.spec(others[1]).address()}, 2000ms, c.ChannelCredentials());
  ASSERT_TRUE(rest.Put("after", "y", 20s).ok());
  std::optional<std::string> v;
  ASSERT_TRUE(rest.Get("before19", 10s, &v).ok());
  EXPECT_EQ(v.value_or(""), "x");

  // A follower just stops (exit 0), and the leader keeps its term.
  const uint64_t follower = others[0] == next ? others[1] : others[0];
  EXPECT_EQ(c.Stop(follower).value_or(-1), 0);
  auto after = c.Status(next);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->term(), next_term);
}

}  // namespace
}  // namespace dispotify::e2e
