// Named Raft scenarios on the simulated cluster. Each cites the rule it checks (paper = the Raft
// paper, thesis = Ongaro's dissertation). The cluster itself checks election safety, log
// matching, leader completeness and state machine safety after every simulated millisecond.

#include <gtest/gtest.h>

#include "tests/sim/sim_cluster.h"

namespace dispotify::sim {
namespace {

using consensus::ConfChange;
using consensus::ConfChangeType;
using consensus::EntryType;
using consensus::MessageType;
using consensus::Role;

std::vector<Entry> LogOfTerms(const std::vector<uint64_t>& terms) {
  std::vector<Entry> log;
  for (size_t i = 0; i < terms.size(); ++i) {
    log.push_back(Entry{Term(terms[i]), LogIndex(i + 1), EntryType::kNormal,
                        EncodeAppend("fig", "t" + std::to_string(terms[i]) + "i" + std::to_string(i + 1))});
  }
  return log;
}

// Replaces a node's disk (crash, rewrite, restart): how the paper's figures are set up. The
// configuration (every node of the cluster a voter) then lives in the snapshot at index 0.
void SetDisk(SimCluster& c, NodeId id, const std::vector<uint64_t>& terms, uint64_t current_term) {
  c.Crash(id);
  c.node(id).disk.snapshot.conf = {};
  for (NodeId member : c.ids())
    c.node(id).disk.snapshot.conf.members[member] = consensus::Member{"sim", true};
  c.node(id).disk.log = LogOfTerms(terms);
  c.node(id).disk.hard_state = consensus::HardState{Term(current_term), kNoNode, LogIndex()};
  c.Restart(id);
}

std::vector<uint64_t> TermsOf(const consensus::RaftLog& log) {
  std::vector<uint64_t> terms;
  for (LogIndex i = log.first_index(); i <= log.last_index(); i = i.next())
    terms.push_back(log.At(i).term.value());
  return terms;
}

// Proposes a membership change through the leader, retrying while the leader asks to (as a client
// would), and waits for it to commit.
Status ChangeMembers(SimCluster& c, ConfChangeType type, NodeId node, const std::string& uuid = "") {
  NodeId l;
  Result<consensus::Proposal> p = Status::Unavailable("no leader");
  for (int attempt = 0; attempt < 50; ++attempt) {
    l = c.WaitForLeader();
    if (l == kNoNode) return Status::Unavailable("no leader");
    p = c.raft(l).ProposeConfChange(ConfChange{type, node, "sim", uuid});
    if (p.ok() || p.status().code() != StatusCode::kRetry) break;
    c.Run(20);
  }
  if (!p.ok()) return p.status();
  bool committed = c.RunUntil([&] { return c.raft(l).commit_index() >= p->index; }, 5000);
  return committed ? Status::Ok() : Status::Timeout("conf change did not commit");
}

class RaftScenario : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_EQ(0, cluster_ ? cluster_->failures() : 0); }
  SimCluster& Make(SimOptions o = {}) {
    cluster_ = std::make_unique<SimCluster>(o);
    return *cluster_;
  }
  std::unique_ptr<SimCluster> cluster_;
};

// paper §5.2
TEST_F(RaftScenario, InitialElectionElectsExactlyOneLeader) {
  auto& c = Make();
  NodeId l = c.WaitForLeader(3000);
  ASSERT_NE(l, kNoNode);
  c.Run(500);
  EXPECT_EQ(c.Leader(), l) << "a stable cluster keeps its leader";
  for (NodeId id : c.ids()) {
    EXPECT_EQ(c.raft(id).leader(), l);
    EXPECT_EQ(c.raft(id).term(), c.raft(l).term());
  }
}

// paper §5.2
TEST_F(RaftScenario, ReelectionAfterLeaderFailure) {
  auto& c = Make();
  NodeId l1 = c.WaitForLeader();
  ASSERT_TRUE(c.Put("k", "1"));
  c.Crash(l1);
  NodeId l2 = c.WaitForLeader(3000);
  ASSERT_NE(l2, kNoNode);
  EXPECT_NE(l2, l1);
  EXPECT_TRUE(c.Put("k", "2"));
  c.Restart(l1);
  ASSERT_TRUE(c.WaitConverged());
  c.CheckAckedWritesPresent();
}

// paper §5.2: a leader needs votes from a majority
TEST_F(RaftScenario, NoLeaderWithoutMajority) {
  auto& c = Make();
  NodeId l = c.WaitForLeader();
  for (NodeId id : c.ids()) {
    if (id != l) c.Crash(id);
  }
  c.Run(5000);
  EXPECT_EQ(c.Leader(), kNoNode) << "check-quorum: the lone leader steps down";
  EXPECT_FALSE(c.Put("k", "v", 2000));
}

// thesis §6.2 (check-quorum)
TEST_F(RaftScenario, LeaderInMinorityPartitionStepsDownAndCannotCommit) {
  auto& c = Make({.nodes = 5});
  NodeId old = c.WaitForLeader();
  ASSERT_TRUE(c.Put("k", "before"));
  NodeId buddy = old == NodeId(1) ? NodeId(2) : NodeId(1);
  std::set<NodeId> minority{old, buddy};
  std::set<NodeId> majority;
  for (NodeId id : c.ids()) {
    if (!minority.contains(id)) majority.insert(id);
  }
  c.Partition({minority, majority});
  auto stale = c.raft(old).Propose(EncodeAppend("k", "lost"));
  ASSERT_TRUE(stale.ok());
  c.Run(1000);
  EXPECT_NE(c.raft(old).role(), Role::kLeader) << "a leader cut off from the majority steps down";
  EXPECT_LT(c.raft(old).commit_index(), stale->index) << "the minority never commits";
  NodeId fresh = c.Leader();
  ASSERT_NE(fresh, kNoNode);
  EXPECT_TRUE(majority.contains(fresh));
  EXPECT_TRUE(c.Put("k", "after"));
  c.Heal();
  ASSERT_TRUE(c.WaitConverged());
  c.CheckAckedWritesPresent();
  auto values = c.node(old).kv["k"];
  EXPECT_EQ(values, (std::vector<std::string>{"before", "after"})) << "the minority's entry was discarded";
}

// thesis §9.6 (pre-vote)
TEST_F(RaftScenario, PartitionedNodeRejoiningDoesNotDisruptStableLeader) {
  auto& c = Make();
  NodeId l = c.WaitForLeader();
  NodeId f = l == NodeId(3) ? NodeId(2) : NodeId(3);
  Term term = c.raft(l).term();
  c.Partition({{f}, {NodeId(1), NodeId(2), NodeId(3)}});
  c.Partition({{f}, [&] {
                 std::set<NodeId> rest;
                 for (NodeId id : c.ids()) {
                   if (id != f) rest.insert(id);
                 }
                 return rest;
               }()});
  c.Run(3000);
  EXPECT_EQ(c.raft(f).term(), term) << "pre-vote: an isolated node does not inflate its term";
  c.Heal();
  c.Run(2000);
  EXPECT_EQ(c.Leader(), l);
  EXPECT_EQ(c.raft(l).term(), term);
}

// The same without pre-vote and check-quorum: the rejoining node does disrupt. This shows the
// scenario above can fail.
TEST_F(RaftScenario, WithoutPreVoteARejoiningNodeDisruptsTheLeader) {
  auto& c = Make({.pre_vote = false, .check_quorum = false});
  NodeId l = c.WaitForLeader();
  NodeId f = l == NodeId(3) ? NodeId(2) : NodeId(3);
  Term term = c.raft(l).term();
  std::set<NodeId> rest;
  for (NodeId id : c.ids()) {
    if (id != f) rest.insert(id);
  }
  c.Partition({{f}, rest});
  c.Run(3000);
  EXPECT_GT(c.raft(f).term(), term);
  c.Heal();
  c.Run(2000);
  ASSERT_NE(c.Leader(), kNoNode);
  EXPECT_GT(c.raft(c.Leader()).term(), term);
}

// paper §5.3, Figure 7: every follower's log, however divergent, is repaired to the leader's.
TEST_F(RaftScenario, Figure7LogDivergenceRepaired) {
  auto& c = Make({.nodes = 7, .election_tick = 30});
  SetDisk(c, NodeId(1), {1, 1, 1, 4, 4, 5, 5, 6, 6, 6}, 7);        // the leader-to-be
  SetDisk(c, NodeId(2), {1, 1, 1, 4, 4, 5, 5, 6, 6}, 7);           // (a) missing entries
  SetDisk(c, NodeId(3), {1, 1, 1, 4}, 7);                          // (b) missing many
  SetDisk(c, NodeId(4), {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6}, 7);     // (c) extra entry
  SetDisk(c, NodeId(5), {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}, 7);  // (d) extra entries, term 7
  SetDisk(c, NodeId(6), {1, 1, 1, 4, 4, 4, 4}, 7);                 // (e) extra term-4 entries
  SetDisk(c, NodeId(7), {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}, 7);     // (f) extra terms 2 and 3
  int rejections = 0;
  c.SetDropFilter([&](const Message& m) {
    if (m.type == MessageType::kAppendEntriesResponse && !m.success && !m.heartbeat) ++rejections;
    return false;
  });
  c.raft(NodeId(1)).Campaign();
  ASSERT_EQ(c.WaitForLeader(2000), NodeId(1));
  ASSERT_TRUE(c.Put("k", "v"));
  ASSERT_TRUE(c.WaitConverged());
  auto want = TermsOf(c.raft(NodeId(1)).log());
  EXPECT_EQ(want.size(), 12u) << "10 entries, the leader's no-op and the new write";
  for (NodeId id : c.ids()) EXPECT_EQ(TermsOf(c.raft(id).log()), want) << "node " << id;
  // Fast backtracking skips a whole term per round trip: (f) needs 3 rejections, not 8.
  EXPECT_LE(rejections, 12);
}

// paper §5.4.2, Figure 8 (d): an old-term entry that is on a minority can be overwritten by a
// candidate with a newer last term; this is why counting replicas cannot commit it (the core-level
// test Figure8OldTermEntryNotCommittedByCounting checks that the leader indeed does not).
TEST_F(RaftScenario, Figure8UncommittedOldTermEntryIsOverwritten) {
  auto& c = Make({.nodes = 5, .election_tick = 30});
  SetDisk(c, NodeId(1), {1, 2}, 3);
  SetDisk(c, NodeId(2), {1, 2}, 3);
  SetDisk(c, NodeId(3), {1}, 3);
  SetDisk(c, NodeId(4), {1}, 3);
  SetDisk(c, NodeId(5), {1, 3}, 3);
  c.raft(NodeId(5)).Campaign();
  ASSERT_EQ(c.WaitForLeader(3000), NodeId(5)) << "its last term (3) beats S1's (2)";
  ASSERT_TRUE(c.WaitConverged());
  for (NodeId id : c.ids()) EXPECT_TRUE(c.raft(id).log().Matches(LogIndex(2), Term(3))) << "node " << id;
}

// paper §5.4.2: once an entry of the current term commits, earlier ones commit with it.
TEST_F(RaftScenario, Figure8CurrentTermEntryCommitsEarlierOnes) {
  auto& c = Make({.nodes = 5, .election_tick = 30});
  SetDisk(c, NodeId(1), {1, 2}, 3);
  SetDisk(c, NodeId(2), {1, 2}, 3);
  SetDisk(c, NodeId(3), {1}, 3);
  SetDisk(c, NodeId(4), {1}, 3);
  SetDisk(c, NodeId(5), {1, 3}, 3);
  c.raft(NodeId(1)).Campaign();
  ASSERT_EQ(c.WaitForLeader(2000), NodeId(1));
  ASSERT_TRUE(c.RunUntil([&] { return c.raft(NodeId(1)).commit_index() >= LogIndex(3); }, 2000));
  ASSERT_TRUE(c.WaitConverged());
  for (NodeId id : c.ids()) EXPECT_TRUE(c.raft(id).log().Matches(LogIndex(2), Term(2))) << "node " << id;
}

// paper §5.1/§5.4: durable state survives a restart of every node.
TEST_F(RaftScenario, RestartOfAllNodesRecoversEveryCommittedEntry) {
  auto& c = Make();
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(c.Put("k" + std::to_string(i % 5), std::to_string(i)));
  for (NodeId id : c.ids()) c.Crash(id);
  for (NodeId id : c.ids()) c.Restart(id);
  ASSERT_NE(c.WaitForLeader(), kNoNode);
  ASSERT_TRUE(c.Put("after", "restart"));
  ASSERT_TRUE(c.WaitConverged());
  c.CheckAckedWritesPresent();
  EXPECT_EQ(c.acked().size(), 51u);
}

// A crash between write() and fsync(): the lost Ready was never acknowledged to anyone.
TEST_F(RaftScenario, CrashBeforeFsyncLosesNoAcknowledgedWrite) {
  auto& c = Make();
  for (int round = 0; round < 10; ++round) {
    NodeId l = c.WaitForLeader();
    ASSERT_NE(l, kNoNode);
    for (int i = 0; i < 5; ++i)
      (void)c.SubmitPut(l, "k", "r" + std::to_string(round) + "-" + std::to_string(i));
    NodeId victim = c.ids()[static_cast<size_t>(round) % 3];
    c.CrashDuringNextWrite(victim);
    c.Run(300);
    c.Restart(victim);
  }
  ASSERT_NE(c.WaitForLeader(), kNoNode);
  ASSERT_TRUE(c.Put("k", "final"));
  ASSERT_TRUE(c.WaitConverged());
  c.CheckAckedWritesPresent();
}

// Figure 8 (unreliable), as in MIT 6.824: crashes, partitions and a lossy, reordering network.
TEST_F(RaftScenario, UnreliableNetworkAgreement) {
  auto& c = Make({.nodes = 5, .net = {.drop_rate = 0.1, .duplicate_rate = 0.05, .max_delay_ms = 30}});
  std::mt19937_64 rng(42);
  int value = 0;
  for (int round = 0; round < 30; ++round) {
    NodeId l = c.Leader();
    if (l != kNoNode) {
      for (int i = 0; i < 3; ++i) (void)c.SubmitPut(l, "k" + std::to_string(i), std::to_string(value++));
    }
    c.Run(static_cast<int>(rng() % 200));
    if (rng() % 3 == 0 && l != kNoNode) c.Crash(l);
    if (c.live_ids().size() < 4) {
      for (NodeId id : c.ids()) c.Restart(id);
    }
  }
  for (NodeId id : c.ids()) c.Restart(id);
  c.SetNetwork({});
  ASSERT_TRUE(c.Put("end", "x", 10000));
  ASSERT_TRUE(c.WaitConverged());
  c.CheckAckedWritesPresent();
}

// paper §5.3: duplicated and reordered AppendEntries never truncate newer entries.
TEST_F(RaftScenario, DuplicatedAndReorderedMessagesKeepLogsConsistent) {
  auto& c = Make({.net = {.duplicate_rate = 0.3, .min_delay_ms = 1, .max_delay_ms = 40}});
  NodeId l = c.WaitForLeader();
  for (int i = 0; i < 100; ++i) (void)c.SubmitPut(l, "k", std::to_string(i));
  c.Run(2000);
  ASSERT_TRUE(c.WaitConverged());
  c.CheckAckedWritesPresent();
  EXPECT_EQ(c.acked().size(), 100u);
}

// thesis §4.2.1: a learner catches up without voting, then is promoted.
TEST_F(RaftScenario, LearnerAddCatchUpPromote) {
  auto& c = Make();
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(c.Put("k", std::to_string(i)));
  c.AddFreshNode(NodeId(4));
  ASSERT_TRUE(ChangeMembers(c, ConfChangeType::kAddLearner, NodeId(4)).ok());
  NodeId l = c.Leader();
  EXPECT_FALSE(c.raft(l).conf().IsVoter(NodeId(4)));
  ASSERT_TRUE(c.RunUntil([&] { return c.node(NodeId(4)).applied == c.raft(l).commit_index(); }, 5000))
      << "the learner catches up";
  ASSERT_TRUE(ChangeMembers(c, ConfChangeType::kPromote, NodeId(4)).ok());
  EXPECT_TRUE(c.raft(c.Leader()).conf().IsVoter(NodeId(4)));
  ASSERT_TRUE(c.Put("k", "after-promote"));
  ASSERT_TRUE(c.WaitConverged());
  c.CheckAckedWritesPresent();
  EXPECT_EQ(c.node(NodeId(4)).kv["k"].size(), 31u);
}

// A learner is not counted in any quorum and never campaigns.
TEST_F(RaftScenario, LearnerNeitherVotesNorCountsForQuorum) {
  auto& c = Make();
  c.AddFreshNode(NodeId(4));
  ASSERT_TRUE(ChangeMembers(c, ConfChangeType::kAddLearner, NodeId(4)).ok());
  ASSERT_TRUE(c.WaitConverged());
  NodeId l = c.Leader();
  for (NodeId id : c.ids()) {
    if (id != l && id != NodeId(4)) c.Crash(id);
  }
  c.Run(3000);
  EXPECT_EQ(c.Leader(), kNoNode) << "leader + learner are not a majority of 3 voters";
  EXPECT_NE(c.raft(NodeId(4)).role(), Role::kCandidate);
  EXPECT_EQ(c.raft(NodeId(4)).term(), c.raft(l).term()) << "the learner never campaigned";
}

// thesis §4.1: one change at a time; the leader refuses a second while the first is uncommitted.
TEST_F(RaftScenario, OnlyOneMembershipChangeInFlight) {
  auto& c = Make();
  NodeId l = c.WaitForLeader();
  ASSERT_TRUE(c.Put("k", "v"));
  c.AddFreshNode(NodeId(4));
  c.AddFreshNode(NodeId(5));
  auto first = c.raft(l).ProposeConfChange(ConfChange{ConfChangeType::kAddLearner, NodeId(4), "sim"});
  ASSERT_TRUE(first.ok());
  auto second = c.raft(l).ProposeConfChange(ConfChange{ConfChangeType::kAddLearner, NodeId(5), "sim"});
  EXPECT_EQ(second.status().code(), StatusCode::kRetry);
  ASSERT_TRUE(c.RunUntil([&] { return c.raft(l).commit_index() >= first->index; }, 3000));
  EXPECT_TRUE(c.raft(l).ProposeConfChange(ConfChange{ConfChangeType::kAddLearner, NodeId(5), "sim"}).ok());
}

// thesis §4.1 (the single-server change bug fix): no change before an entry of the term commits.
TEST_F(RaftScenario, NewLeaderStartsNoChangeBeforeCommittingInItsTerm) {
  auto& c = Make();
  NodeId l = c.WaitForLeader();
  // Right after the election, the no-op of the new term is not yet committed.
  ASSERT_LT(c.raft(l).commit_index(), c.raft(l).last_index());
  auto r = c.raft(l).ProposeConfChange(ConfChange{ConfChangeType::kAddLearner, NodeId(9), "sim"});
  EXPECT_EQ(r.status().code(), StatusCode::kRetry);
}

// Invalid changes are refused with a clear error.
TEST_F(RaftScenario, InvalidMembershipChangesAreRejected) {
  auto& c = Make();
  ASSERT_TRUE(c.Put("k", "v"));
  NodeId l = c.Leader();
  EXPECT_EQ(c.raft(l).ProposeConfChange({ConfChangeType::kPromote, NodeId(2), ""}).status().code(),
            StatusCode::kInvalidArgument)
      << "already a voter";
  EXPECT_EQ(c.raft(l).ProposeConfChange({ConfChangeType::kRemove, NodeId(9), ""}).status().code(),
            StatusCode::kInvalidArgument)
      << "not a member";
  NodeId f = l == NodeId(1) ? NodeId(2) : NodeId(1);
  EXPECT_EQ(c.raft(f).ProposeConfChange({ConfChangeType::kRemove, NodeId(3), ""}).status().code(),
            StatusCode::kNotLeader);
  EXPECT_EQ(c.raft(f).Propose("x").status().leader_hint(), l.value()) << "followers name the leader";
}

// Removing a follower: the rest continue; the removed node learns it was removed.
TEST_F(RaftScenario, RemoveFollower) {
  auto& c = Make();
  NodeId l = c.WaitForLeader();
  NodeId f = l == NodeId(3) ? NodeId(2) : NodeId(3);
  ASSERT_TRUE(c.Put("k", "1"));
  ASSERT_TRUE(ChangeMembers(c, ConfChangeType::kRemove, f).ok());
  ASSERT_TRUE(c.RunUntil([&] { return c.raft(f).removed(); }, 3000)) << "the removed node is told";
  c.Crash(f);
  ASSERT_TRUE(c.Put("k", "2"));
  EXPECT_EQ(c.raft(c.Leader()).conf().VoterCount(), 2u);
}

// thesis §4.2.2: the leader removes itself, steps down once committed, and a new leader follows.
TEST_F(RaftScenario, RemoveTheLeaderItself) {
  auto& c = Make();
  NodeId old = c.WaitForLeader();
  ASSERT_TRUE(c.Put("k", "1"));
  auto p = c.raft(old).ProposeConfChange(ConfChange{ConfChangeType::kRemove, old, ""});
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(c.RunUntil([&] { return c.raft(old).removed(); }, 3000));
  EXPECT_NE(c.raft(old).role(), Role::kLeader);
  NodeId fresh =
      c.RunUntil([&] { return c.Leader() != kNoNode && c.Leader() != old; }, 3000) ? c.Leader() : kNoNode;
  ASSERT_NE(fresh, kNoNode);
  EXPECT_FALSE(c.raft(fresh).conf().Contains(old));
  ASSERT_TRUE(c.Put("k", "2"));
  c.Run(3000);
  EXPECT_EQ(c.raft(old).role(), Role::kFollower) << "a removed server never campaigns";
}

// A change proposed by a leader that then loses its majority is truncated with its entry.
TEST_F(RaftScenario, MembershipChangeDuringPartitionIsRolledBack) {
  auto& c = Make({.nodes = 5});
  NodeId old = c.WaitForLeader();
  ASSERT_TRUE(c.Put("k", "1"));
  NodeId buddy = old == NodeId(1) ? NodeId(2) : NodeId(1);
  std::set<NodeId> majority;
  for (NodeId id : c.ids()) {
    if (id != old && id != buddy) majority.insert(id);
  }
  c.Partition({{old, buddy}, majority});
  NodeId victim = *majority.begin();
  ASSERT_TRUE(c.raft(old).ProposeConfChange(ConfChange{ConfChangeType::kRemove, victim, ""}).ok());
  c.Run(50);
  EXPECT_FALSE(c.raft(old).conf().Contains(victim)) << "a change takes effect when appended";
  c.Run(1500);
  NodeId fresh = c.Leader();
  ASSERT_NE(fresh, kNoNode);
  ASSERT_TRUE(majority.contains(fresh));
  ASSERT_TRUE(c.Put("k", "2"));
  c.Heal();
  ASSERT_TRUE(c.WaitConverged());
  EXPECT_TRUE(c.raft(old).conf().Contains(victim)) << "the uncommitted change was rolled back";
  EXPECT_EQ(c.raft(old).conf().VoterCount(), 5u);
  c.CheckAckedWritesPresent();
}

// paper §7: a follower behind the leader's snapshot receives it by InstallSnapshot, in chunks.
TEST_F(RaftScenario, SnapshotInstallToFarBehindFollower) {
  auto& c = Make({.snapshot_interval = 20, .snapshot_chunk_bytes = 32});
  NodeId l = c.WaitForLeader();
  NodeId f = l == NodeId(3) ? NodeId(2) : NodeId(3);
  c.Crash(f);
  for (int i = 0; i < 120; ++i) ASSERT_TRUE(c.Put("k" + std::to_string(i % 7), std::to_string(i)));
  ASSERT_GT(c.raft(c.Leader()).snapshot_meta().index, LogIndex(20)) << "the leader compacted its log";
  int chunks = 0;
  c.SetDropFilter([&](const Message& m) {
    if (m.type == MessageType::kInstallSnapshot && m.to == f) ++chunks;
    return false;
  });
  c.Restart(f);
  ASSERT_TRUE(c.WaitConverged());
  EXPECT_GT(chunks, 3) << "the snapshot went in several chunks";
  EXPECT_GT(c.node(f).disk.snapshot.index, LogIndex(0));
  c.CheckAckedWritesPresent();
}

// A crash in the middle of receiving a snapshot: the partial one is dropped, the transfer restarts.
TEST_F(RaftScenario, CrashDuringSnapshotInstall) {
  auto& c = Make({.snapshot_interval = 10, .snapshot_chunk_bytes = 16});
  NodeId l = c.WaitForLeader();
  NodeId f = l == NodeId(3) ? NodeId(2) : NodeId(3);
  c.Crash(f);
  for (int i = 0; i < 80; ++i) ASSERT_TRUE(c.Put("k" + std::to_string(i % 5), std::to_string(i)));
  c.Restart(f);
  ASSERT_TRUE(c.RunUntil(
      [&] { return c.node(f).disk.receiving.has_value() && c.node(f).disk.receiving_data.size() > 32; },
      3000));
  c.Crash(f);
  c.Run(200);
  c.Restart(f);
  ASSERT_TRUE(c.WaitConverged());
  c.CheckAckedWritesPresent();
}

// thesis §3.10: transfer to an up-to-date follower is immediate.
TEST_F(RaftScenario, LeadershipTransferToUpToDateNode) {
  auto& c = Make({.election_tick = 50});
  NodeId l = c.WaitForLeader();
  ASSERT_TRUE(c.Put("k", "1"));
  c.Run(100);
  NodeId target = l == NodeId(1) ? NodeId(2) : NodeId(1);
  Term term = c.raft(l).term();
  ASSERT_TRUE(c.raft(l).TransferLeadership(target).ok());
  ASSERT_TRUE(c.RunUntil([&] { return c.Leader() == target; }, 200))
      << "well within an election timeout (500ms)";
  EXPECT_EQ(c.raft(target).term(), term.next());
  ASSERT_TRUE(c.Put("k", "2"));
  ASSERT_TRUE(c.WaitConverged());
  c.CheckAckedWritesPresent();
}

// thesis §3.10: a lagging target is caught up first, then told to campaign.
TEST_F(RaftScenario, LeadershipTransferToLaggingNode) {
  auto& c = Make({.election_tick = 50});
  NodeId l = c.WaitForLeader();
  NodeId target = l == NodeId(3) ? NodeId(2) : NodeId(3);
  c.BlockLink(l, target);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(c.Put("k", std::to_string(i)));
  ASSERT_LT(c.raft(target).last_index(), c.raft(l).last_index());
  c.Heal();
  ASSERT_TRUE(c.raft(l).TransferLeadership(target).ok());
  EXPECT_EQ(c.raft(l).Propose("x").status().code(), StatusCode::kRetry) << "no proposals during a transfer";
  ASSERT_TRUE(c.RunUntil([&] { return c.Leader() == target; }, 1000));
  ASSERT_TRUE(c.WaitConverged());
  c.CheckAckedWritesPresent();
}

// A transfer to an unreachable node times out after an election timeout and the leader resumes.
TEST_F(RaftScenario, LeadershipTransferToUnreachableNodeAborts) {
  auto& c = Make();
  NodeId l = c.WaitForLeader();
  ASSERT_TRUE(c.Put("k", "1"));
  NodeId target = l == NodeId(3) ? NodeId(2) : NodeId(3);
  c.Crash(target);
  ASSERT_TRUE(c.raft(l).TransferLeadership(target).ok());
  EXPECT_EQ(c.raft(l).Propose("x").status().code(), StatusCode::kRetry);
  c.Run(300);
  EXPECT_EQ(c.Leader(), l);
  EXPECT_TRUE(c.Put("k", "2"));
}

// thesis §6.4: ReadIndex sees every write acknowledged before the read started.
TEST_F(RaftScenario, ReadIndexReturnsCommittedState) {
  auto& c = Make();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.Put("k", std::to_string(i)));
  auto r = c.Read(c.Leader(), "k");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->size(), 10u);
}

// thesis §6.4: a deposed leader cannot serve a read; the read fails rather than return stale data.
TEST_F(RaftScenario, ReadIndexFailsOnDeposedLeader) {
  auto& c = Make({.nodes = 5});
  NodeId old = c.WaitForLeader();
  ASSERT_TRUE(c.Put("k", "1"));
  std::set<NodeId> majority;
  for (NodeId id : c.ids()) {
    if (id != old) majority.insert(id);
  }
  c.Partition({{old}, majority});
  // The majority elects a new leader and writes; the old leader still believes it leads.
  ASSERT_TRUE(c.RunUntil([&] { return c.Leader() != kNoNode && c.Leader() != old; }, 3000));
  ASSERT_TRUE(c.Put("k", "2"));
  auto stale = c.Read(old, "k", 3000);
  EXPECT_FALSE(stale.has_value()) << "the isolated leader could not confirm its leadership";
  c.Heal();
  ASSERT_TRUE(c.WaitConverged());
  c.CheckAckedWritesPresent();
}

TEST_F(RaftScenario, ReadIndexOnFollowerNamesTheLeader) {
  auto& c = Make();
  NodeId l = c.WaitForLeader();
  ASSERT_TRUE(c.Put("k", "1"));
  NodeId f = l == NodeId(1) ? NodeId(2) : NodeId(1);
  Status s = c.raft(f).ReadIndex(99);
  EXPECT_EQ(s.code(), StatusCode::kNotLeader);
  EXPECT_EQ(s.leader_hint(), l.value());
}

// One-way partition: the leader still reaches a follower that cannot answer. The cluster keeps a
// leader and commits through the others; the follower stays in sync through heartbeats.
TEST_F(RaftScenario, OneWayPartitionKeepsClusterAvailable) {
  auto& c = Make();
  NodeId l = c.WaitForLeader();
  NodeId f = l == NodeId(3) ? NodeId(2) : NodeId(3);
  c.BlockLink(f, l);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.Put("k", std::to_string(i)));
  c.Run(2000);
  ASSERT_NE(c.Leader(), kNoNode);
  c.Heal();
  ASSERT_TRUE(c.WaitConverged());
  c.CheckAckedWritesPresent();
}

// One-way partition of the leader's inbound traffic: with check-quorum it steps down.
TEST_F(RaftScenario, LeaderThatHearsNoOneStepsDown) {
  auto& c = Make();
  NodeId l = c.WaitForLeader();
  for (NodeId id : c.ids()) {
    if (id != l) c.BlockLink(id, l);
  }
  c.Run(1000);
  EXPECT_NE(c.raft(l).role(), Role::kLeader);
  c.Heal();
  ASSERT_NE(c.WaitForLeader(), kNoNode);
  EXPECT_TRUE(c.Put("k", "v"));
}

// A single-node cluster elects itself and commits alone.
TEST_F(RaftScenario, SingleNodeCluster) {
  auto& c = Make({.nodes = 1});
  ASSERT_EQ(c.WaitForLeader(1000), NodeId(1));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.Put("k", std::to_string(i)));
  auto r = c.Read(NodeId(1), "k");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->size(), 10u);
}

// Issue 10, incarnations (consensus/types.h): a voter that comes back with an empty disk must
// not count as the voter it was. Here the entries committed by {L, A} are on no other server
// once L is down and A wiped: the stale B must not be elected with the wiped A's vote (A grants
// any vote: its empty log is behind everyone's). B refuses A's votes; no leader until L returns.
TEST_F(RaftScenario, AWipedVoterCannotElectALeaderWithoutTheCommittedEntries) {
  auto& c = Make({.incarnations = true});
  const NodeId l = c.WaitForLeader();
  ASSERT_NE(l, kNoNode);
  std::vector<NodeId> others;
  for (NodeId id : c.ids()) {
    if (id != l) others.push_back(id);
  }
  const NodeId a = others[0];
  const NodeId b = others[1];
  ASSERT_TRUE(c.Put("k", "before"));
  ASSERT_TRUE(c.WaitConverged());
  c.Partition({{l, a}, {b}});
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.Put("k", "only-on-l-and-a-" + std::to_string(i)));
  c.Crash(l);
  c.Wipe(a, "a-after-wipe");
  c.Heal();
  c.Run(5000);
  EXPECT_EQ(c.Leader(), kNoNode) << "B was elected by the wiped A: committed entries lost";
  EXPECT_GT(c.raft(b).incarnation_refusals(), 0u);
  EXPECT_EQ(c.raft(b).refused_incarnations().count(a), 1u);

  c.Restart(l);
  const NodeId back = c.WaitForLeader();
  ASSERT_EQ(back, l) << "only L holds every committed entry";
  ASSERT_TRUE(c.Put("k", "after"));
  // The wiped A is not the member it replaced: the leader refuses it too.
  EXPECT_EQ(c.raft(l).refused_incarnations().count(a), 1u);
  EXPECT_EQ(c.raft(l).progress().at(a).match, LogIndex()) << "its acknowledgements never count";
}

// What an operator does about it: remove the old incarnation, add the new one as a learner, let
// it catch up, promote it. Meanwhile the other two keep the cluster writable.
TEST_F(RaftScenario, AWipedVoterIsRemovedAndAddedBackAsItsNewIncarnation) {
  auto& c = Make({.snapshot_interval = 20, .incarnations = true});
  NodeId l = c.WaitForLeader();
  const NodeId w = l == NodeId(3) ? NodeId(2) : NodeId(3);
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(c.Put("k", std::to_string(i)));
  ASSERT_TRUE(c.WaitConverged());
  c.Wipe(w, "w-2");
  for (int i = 40; i < 60; ++i) ASSERT_TRUE(c.Put("k", std::to_string(i))) << "two voters of three go on";
  c.Run(500);
  l = c.Leader();
  ASSERT_NE(l, kNoNode);
  EXPECT_EQ(c.raft(l).conf().members.at(w).node_uuid, "n" + std::to_string(w.value()) + "-1");
  EXPECT_EQ(c.raft(l).refused_incarnations().count(w), 1u);
  // It may receive the leader's state, but never stands for its old self.
  EXPECT_EQ(c.raft(w).role(), Role::kFollower);
  EXPECT_EQ(c.raft(w).term(), c.raft(l).term());

  // Added back under the same id while the old incarnation is a member: refused by the core too.
  EXPECT_EQ(
      c.raft(l).ProposeConfChange(ConfChange{ConfChangeType::kAddLearner, w, "sim", "w-2"}).status().code(),
      StatusCode::kInvalidArgument);
  ASSERT_TRUE(ChangeMembers(c, ConfChangeType::kRemove, w).ok());
  ASSERT_TRUE(ChangeMembers(c, ConfChangeType::kAddLearner, w, "w-2").ok());
  l = c.Leader();
  ASSERT_TRUE(c.RunUntil([&] { return c.node(w).applied == c.raft(c.Leader()).commit_index(); }, 10000))
      << "the new incarnation catches up (by snapshot: the log was compacted)";
  EXPECT_FALSE(c.raft(w).removed()) << "it replayed its old removal, then its own addition";
  ASSERT_TRUE(ChangeMembers(c, ConfChangeType::kPromote, w).ok());
  l = c.Leader();
  EXPECT_TRUE(c.raft(l).conf().IsVoter(w));
  EXPECT_TRUE(c.raft(l).refused_incarnations().empty());
  // It now counts: with another voter down, the leader and the new incarnation are a majority.
  for (NodeId id : c.ids()) {
    if (id != l && id != w) c.Crash(id);
  }
  ASSERT_TRUE(c.Put("k", "with-the-new-incarnation"));
  ASSERT_TRUE(c.WaitConverged());
  c.CheckAckedWritesPresent();
  EXPECT_EQ(c.node(w).kv["k"].size(), 61u);
}

}  // namespace
}  // namespace dispotify::sim
