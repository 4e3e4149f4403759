// The core driven by hand-written messages, for rules that need exact control of who knows what.

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "node/consensus/raft.h"

namespace dispotify::consensus {
namespace {

RestartState FiveVotersWithLog(const std::vector<uint64_t>& terms, uint64_t current_term) {
  RestartState rs;
  for (uint64_t i = 1; i <= 5; ++i) rs.snapshot.conf.members[NodeId(i)] = Member{"", true};
  for (size_t i = 0; i < terms.size(); ++i)
    rs.entries.push_back(Entry{Term(terms[i]), LogIndex(i + 1), EntryType::kNormal, "x"});
  rs.hard_state.term = Term(current_term);
  return rs;
}

void Drain(Raft& r) {
  while (r.HasReady()) {
    Ready rd = r.GetReady();
    r.Advance(rd);
  }
}

Message Reply(MessageType type, uint64_t from, uint64_t term) {
  Message m;
  m.type = type;
  m.from = NodeId(from);
  m.to = NodeId(1);
  m.term = Term(term);
  return m;
}

void ElectS1InTerm4(Raft& r) {
  r.Campaign();
  for (uint64_t peer : {2, 3}) {
    Message m = Reply(MessageType::kRequestVoteResponse, peer, 4);
    m.pre_vote = true;
    m.granted = true;
    r.Step(m);
  }
  ASSERT_EQ(r.role(), Role::kCandidate);
  ASSERT_EQ(r.term(), Term(4));
  for (uint64_t peer : {2, 3}) {
    Message m = Reply(MessageType::kRequestVoteResponse, peer, 4);
    m.granted = true;
    r.Step(m);
  }
  ASSERT_EQ(r.role(), Role::kLeader);
  Drain(r);  // persists the term-4 no-op at index 3
}

// paper §5.4.2, Figure 8 (c): index 2 (term 2) is on S1, S2, S3 — a majority — and still is not
// committed; it commits only with the term-4 entry after it.
TEST(RaftCore, Figure8OldTermEntryNotCommittedByCounting) {
  Raft r(Config{.id = NodeId(1)}, FiveVotersWithLog({1, 2}, 3));
  ElectS1InTerm4(r);
  for (uint64_t peer : {2, 3}) {
    Message m = Reply(MessageType::kAppendEntriesResponse, peer, 4);
    m.success = true;
    m.match_index = LogIndex(2);
    r.Step(m);
  }
  EXPECT_EQ(r.commit_index(), LogIndex(0)) << "an old-term entry is never committed by counting replicas";
  Message m = Reply(MessageType::kAppendEntriesResponse, 2, 4);
  m.success = true;
  m.match_index = LogIndex(3);
  r.Step(m);
  EXPECT_EQ(r.commit_index(), LogIndex(0)) << "the term-4 entry is on S1 and S2 only: no majority yet";
  m = Reply(MessageType::kAppendEntriesResponse, 3, 4);
  m.success = true;
  m.match_index = LogIndex(3);
  r.Step(m);
  EXPECT_EQ(r.commit_index(), LogIndex(3)) << "the term-4 entry commits, and index 2 with it";
  r.CheckInvariants();
}

// paper Figure 2: a stale-term message is answered with the current term, never obeyed.
TEST(RaftCore, StaleLeaderIsToldTheNewerTerm) {
  Raft r(Config{.id = NodeId(1)}, FiveVotersWithLog({1}, 5));
  Message m;
  m.type = MessageType::kAppendEntries;
  m.from = NodeId(2);
  m.to = NodeId(1);
  m.term = Term(3);
  m.prev_log_index = LogIndex(1);
  m.prev_log_term = Term(1);
  m.entries.push_back(Entry{Term(3), LogIndex(2), EntryType::kNormal, "stale"});
  r.Step(m);
  EXPECT_EQ(r.last_index(), LogIndex(1));
  Ready rd = r.GetReady();
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_EQ(rd.messages[0].term, Term(5));
}

// paper Figure 2 (RequestVote): at most one vote per term, and only for an up-to-date log.
TEST(RaftCore, VotesOncePerTermForUpToDateLogsOnly) {
  Raft r(Config{.id = NodeId(1)}, FiveVotersWithLog({1, 2}, 2));
  auto vote_request = [](uint64_t from, uint64_t term, uint64_t last_index, uint64_t last_term) {
    Message m;
    m.type = MessageType::kRequestVote;
    m.from = NodeId(from);
    m.to = NodeId(1);
    m.term = Term(term);
    m.last_log_index = LogIndex(last_index);
    m.last_log_term = Term(last_term);
    return m;
  };
  r.Step(vote_request(2, 3, 1, 1));  // log behind ours
  r.Step(vote_request(3, 3, 2, 2));  // up to date: granted
  r.Step(vote_request(4, 3, 5, 2));  // up to date but we voted already
  Ready rd = r.GetReady();
  ASSERT_EQ(rd.messages.size(), 3u);
  EXPECT_FALSE(rd.messages[0].granted);
  EXPECT_TRUE(rd.messages[1].granted);
  EXPECT_FALSE(rd.messages[2].granted);
  ASSERT_TRUE(rd.hard_state.has_value()) << "the vote must be persisted before the reply leaves";
  EXPECT_EQ(rd.hard_state->vote, NodeId(3));
  EXPECT_EQ(rd.hard_state->term, Term(3));
}

// ---------------------------------------------------------------------------------------------
// Incarnations (types.h): a member that came back with an empty disk speaks as another
// incarnation of its id; until it is removed and added back, nothing it sends is obeyed.

// Voters 1, 2, 3 with incarnations u1, u2, u3; log {term 1, term 1}; current term 2.
RestartState ThreeVotersWithIncarnations() {
  RestartState rs;
  for (uint64_t i = 1; i <= 3; ++i)
    rs.snapshot.conf.members[NodeId(i)] = Member{"", true, "u" + std::to_string(i)};
  for (uint64_t i = 1; i <= 2; ++i)
    rs.entries.push_back(Entry{Term(1), LogIndex(i), EntryType::kNormal, "x"});
  rs.hard_state.term = Term(2);
  return rs;
}

Config IncarnationConfig(uint64_t id = 1) {
  return Config{.id = NodeId(id), .pre_vote = false, .node_uuid = "u" + std::to_string(id)};
}

Message From(MessageType type, uint64_t from, uint64_t term) {
  Message m = Reply(type, from, term);
  m.from_uuid = "u" + std::to_string(from);
  return m;
}

// A receiver in a given role: "follower" (term 2, no leader), "candidate" (term 3, voted for
// itself), "leader" (term 3, elected by node 2, its no-op at index 3 persisted).
std::unique_ptr<Raft> Receiver(const std::string& role) {
  auto r = std::make_unique<Raft>(IncarnationConfig(), ThreeVotersWithIncarnations());
  if (role == "follower") return r;
  r->Campaign();
  Drain(*r);
  if (role == "candidate") return r;
  Message v = From(MessageType::kRequestVoteResponse, 2, 3);
  v.granted = true;
  r->Step(v);
  Drain(*r);
  return r;
}

struct IncarnationCase {
  const char* name;
  const char* role;
  std::function<Message()> make;  // what the member sends, with its configured incarnation
  std::function<bool(const Raft&, const Ready&)> obeyed;
};

const std::vector<IncarnationCase>& IncarnationCases() {
  static const std::vector<IncarnationCase> cases = {
      {"vote request", "follower",
       [] {
         Message m = From(MessageType::kRequestVote, 3, 3);
         m.last_log_index = LogIndex(2);
         m.last_log_term = Term(1);
         return m;
       },
       [](const Raft& r, const Ready&) { return r.term() == Term(3) && r.vote() == NodeId(3); }},
      {"pre-vote request", "follower",
       [] {
         Message m = From(MessageType::kRequestVote, 3, 3);
         m.pre_vote = true;
         m.last_log_index = LogIndex(2);
         m.last_log_term = Term(1);
         return m;
       },
       [](const Raft&, const Ready& rd) { return rd.messages.size() == 1 && rd.messages[0].granted; }},
      {"vote", "candidate",
       [] {
         Message m = From(MessageType::kRequestVoteResponse, 2, 3);
         m.granted = true;
         return m;
       },
       [](const Raft& r, const Ready&) { return r.role() == Role::kLeader; }},
      {"append", "follower",
       [] {
         Message m = From(MessageType::kAppendEntries, 2, 3);
         m.prev_log_index = LogIndex(2);
         m.prev_log_term = Term(1);
         m.entries.push_back(Entry{Term(3), LogIndex(3), EntryType::kNormal, "y"});
         return m;
       },
       [](const Raft& r, const Ready&) { return r.last_index() == LogIndex(3) && r.leader() == NodeId(2); }},
      {"heartbeat", "follower",
       [] {
         Message m = From(MessageType::kAppendEntries, 2, 3);
         m.heartbeat = true;
         return m;
       },
       [](const Raft& r, const Ready&) { return r.term() == Term(3) && r.leader() == NodeId(2); }},
      {"append response", "leader",
       [] {
         Message m = From(MessageType::kAppendEntriesResponse, 2, 3);
         m.success = true;
         m.match_index = LogIndex(3);
         return m;
       },
       [](const Raft& r, const Ready&) { return r.commit_index() == LogIndex(3); }},
      {"snapshot", "follower",
       [] {
         Message m = From(MessageType::kInstallSnapshot, 2, 3);
         m.snapshot.index = LogIndex(5);
         m.snapshot.term = Term(3);
         m.snapshot.conf = ThreeVotersWithIncarnations().snapshot.conf;
         m.data = "snapshot";
         m.done = true;
         return m;
       },
       [](const Raft& r, const Ready& rd) { return r.leader() == NodeId(2) && !rd.snapshot_chunks.empty(); }},
      {"timeout-now", "follower",
       [] {
         Message m = From(MessageType::kTimeoutNow, 2, 2);
         return m;
       },
       [](const Raft& r, const Ready&) { return r.role() == Role::kCandidate && r.term() == Term(3); }},
  };
  return cases;
}

// The table: each message is obeyed from the configured incarnation and from a sender that does
// not say its incarnation (an older version), and refused -- no state change, no answer,
// counted -- from another incarnation of the same id.
TEST(RaftCoreIncarnation, MessagesFromAnotherIncarnationAreRefused) {
  for (const IncarnationCase& c : IncarnationCases()) {
    SCOPED_TRACE(c.name);
    for (const char* uuid : {"configured", ""}) {
      auto r = Receiver(c.role);
      Message m = c.make();
      if (std::string(uuid).empty()) m.from_uuid.clear();
      r->Step(m);
      Ready rd = r->GetReady();
      EXPECT_TRUE(c.obeyed(*r, rd)) << "from incarnation '" << m.from_uuid << "'";
      EXPECT_EQ(r->incarnation_refusals(), 0u);
      r->CheckInvariants();
    }

    auto r = Receiver(c.role);
    const Term term = r->term();
    const NodeId vote = r->vote();
    const Role role = r->role();
    const NodeId leader = r->leader();
    const LogIndex commit = r->commit_index();
    const LogIndex last = r->last_index();
    Message m = c.make();
    m.from_uuid = "wiped-disk";
    r->Step(m);
    Ready rd = r->GetReady();
    EXPECT_FALSE(c.obeyed(*r, rd));
    EXPECT_TRUE(rd.messages.empty()) << "a refused message gets no answer";
    EXPECT_FALSE(rd.hard_state.has_value());
    EXPECT_EQ(r->term(), term) << "a refused message never moves the term";
    EXPECT_EQ(r->vote(), vote);
    EXPECT_EQ(r->role(), role);
    EXPECT_EQ(r->leader(), leader);
    EXPECT_EQ(r->commit_index(), commit);
    EXPECT_EQ(r->last_index(), last);
    EXPECT_EQ(r->incarnation_refusals(), 1u);
    ASSERT_EQ(r->refused_incarnations().size(), 1u);
    EXPECT_EQ(r->refused_incarnations().begin()->first, m.from);
    EXPECT_EQ(r->refused_incarnations().begin()->second, "wiped-disk");
    r->CheckInvariants();

    // Once the member speaks as its configured incarnation again, it is no longer listed.
    Message ok = c.make();
    r->Step(ok);
    EXPECT_TRUE(r->refused_incarnations().empty());
  }
}

// The danger the check exists for: a voter that lost its log grants any vote (its empty log is
// behind everyone's). Node 1's log misses what 2 holds; only the wiped 3 would vote for it.
TEST(RaftCoreIncarnation, AWipedVoterCannotElectALeader) {
  Raft r(IncarnationConfig(), ThreeVotersWithIncarnations());
  r.Campaign();
  ASSERT_EQ(r.role(), Role::kCandidate);
  Message wiped = From(MessageType::kRequestVoteResponse, 3, 3);
  wiped.from_uuid = "new-empty-disk";
  wiped.granted = true;
  r.Step(wiped);
  EXPECT_EQ(r.role(), Role::kCandidate) << "the vote of another incarnation counts for nothing";
  Message behind = From(MessageType::kRequestVoteResponse, 2, 3);
  behind.granted = false;
  r.Step(behind);
  EXPECT_NE(r.role(), Role::kLeader);
}

// A voter whose configuration names another incarnation of its id (it came back with an empty
// disk and replayed the log) never campaigns, nor answers TimeoutNow.
TEST(RaftCoreIncarnation, AVoterOfAnotherIncarnationDoesNotCampaign) {
  for (const char* self : {"u3", "", "new-empty-disk"}) {
    SCOPED_TRACE(self);
    Raft r(Config{.id = NodeId(3), .election_tick = 5, .pre_vote = false, .node_uuid = self},
           ThreeVotersWithIncarnations());
    for (int i = 0; i < 30; ++i) r.Tick();
    const bool campaigns = r.role() != Role::kFollower;
    EXPECT_EQ(campaigns, std::string(self) != "new-empty-disk");
    EXPECT_EQ(r.IsSelfIncarnation(), campaigns);
  }
}

// The leader's progress for a member added back as another incarnation starts from nothing: its
// predecessor's match index must not count the new server as holding entries.
TEST(RaftCoreIncarnation, AMemberAddedBackAsAnotherIncarnationStartsFromScratch) {
  auto r = Receiver("leader");
  auto ack = [&](uint64_t from, LogIndex index) {
    Message m = From(MessageType::kAppendEntriesResponse, from, 3);
    m.success = true;
    m.match_index = index;
    r->Step(m);
    Drain(*r);
  };
  ack(2, LogIndex(3));
  ack(3, LogIndex(3));
  ASSERT_EQ(r->progress().at(NodeId(3)).match, LogIndex(3));

  auto remove = r->ProposeConfChange(ConfChange{ConfChangeType::kRemove, NodeId(3), "", ""});
  ASSERT_TRUE(remove.ok()) << remove.status().ToString();
  Drain(*r);
  ack(2, remove->index);
  ASSERT_EQ(r->commit_index(), remove->index);
  // Node 3 (wiped) never acknowledges its removal, so the leader still tracks it.
  auto add = r->ProposeConfChange(ConfChange{ConfChangeType::kAddLearner, NodeId(3), "addr", "u3-new"});
  ASSERT_TRUE(add.ok()) << add.status().ToString();
  Drain(*r);
  const Progress& pr = r->progress().at(NodeId(3));
  EXPECT_EQ(pr.match, LogIndex(0)) << "the new incarnation holds nothing yet";
  EXPECT_EQ(pr.node_uuid, "u3-new");
  EXPECT_EQ(r->conf().members.at(NodeId(3)).node_uuid, "u3-new");

  // Its predecessor is now the refused one; the new incarnation's acknowledgements count.
  Message old_ack = From(MessageType::kAppendEntriesResponse, 3, 3);
  old_ack.success = true;
  old_ack.match_index = add->index;
  r->Step(old_ack);
  EXPECT_EQ(r->progress().at(NodeId(3)).match, LogIndex(0));
  EXPECT_EQ(r->incarnation_refusals(), 1u);
  Message new_ack = old_ack;
  new_ack.from_uuid = "u3-new";
  r->Step(new_ack);
  EXPECT_EQ(r->progress().at(NodeId(3)).match, add->index);
  r->CheckInvariants();
}

// A one-member bootstrap records its member's incarnation; a multi-member one cannot.
TEST(RaftCoreIncarnation, BootstrapRecordsTheIncarnationItIsGiven) {
  RestartState one = BootstrapState({{NodeId(1), "a:1"}}, {{NodeId(1), "u1"}});
  Raft r(IncarnationConfig(), one);
  EXPECT_EQ(r.conf().members.at(NodeId(1)).node_uuid, "u1");
  EXPECT_TRUE(r.conf().IsVoter(NodeId(1)));
  RestartState three = BootstrapState({{NodeId(1), "a:1"}, {NodeId(2), "a:2"}, {NodeId(3), "a:3"}});
  Raft r3(IncarnationConfig(), three);
  for (const auto& [id, m] : r3.conf().members) EXPECT_EQ(m.node_uuid, "") << id.value();
}

// Quorum-loss recovery: the survivor keeps every entry it holds, takes them as committed, and
// goes on as the only voter of a new term.
TEST(RaftCoreForceNewCluster, TheSurvivorGoesOnAloneWithEverythingItHeld) {
  RestartState rs = BootstrapState({{NodeId(1), "a:1"}, {NodeId(2), "a:2"}, {NodeId(3), "a:3"}});
  const LogIndex boot_last = rs.entries.back().index;
  for (uint64_t i = 1; i <= 3; ++i)
    rs.entries.push_back(Entry{Term(4), LogIndex(boot_last.value() + i), EntryType::kNormal, "song"});
  rs.hard_state = HardState{Term(5), NodeId(3), LogIndex(boot_last.value() + 1)};  // last entry uncommitted
  auto forced = ForceNewClusterState(rs, NodeId(2));
  ASSERT_TRUE(forced.ok()) << forced.status().ToString();
  // Two removals, in a term after every term it saw.
  ASSERT_EQ(forced->entries.size(), rs.entries.size() + 2);
  for (size_t i = 0; i < rs.entries.size(); ++i) EXPECT_EQ(forced->entries[i], rs.entries[i]);
  EXPECT_EQ(forced->hard_state.term, Term(6));
  EXPECT_EQ(forced->hard_state.commit, forced->entries.back().index);
  EXPECT_EQ(forced->entries.back().term, Term(6));

  Raft r(Config{.id = NodeId(2), .pre_vote = true}, *forced);
  EXPECT_EQ(r.conf().members.size(), 1u);
  EXPECT_TRUE(r.conf().IsVoter(NodeId(2)));
  EXPECT_EQ(r.commit_index(), forced->entries.back().index);
  for (int i = 0; i < 100 && r.role() != Role::kLeader; ++i) {
    r.Tick();
    Drain(r);
  }
  ASSERT_EQ(r.role(), Role::kLeader);
  EXPECT_GT(r.term(), Term(6));
  auto p = r.Propose("after");
  ASSERT_TRUE(p.ok());
  Drain(r);
  EXPECT_EQ(r.commit_index(), p->index);
  // Forcing again finds a group of one: nothing to remove.
  auto again = ForceNewClusterState(*forced, NodeId(2));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->entries.size(), forced->entries.size());
}

TEST(RaftCoreForceNewCluster, ALearnerIsPromotedAndANonMemberRefused) {
  RestartState rs;
  rs.snapshot.index = LogIndex(10);
  rs.snapshot.term = Term(3);
  rs.snapshot.conf.members[NodeId(1)] = Member{"a:1", true};
  rs.snapshot.conf.members[NodeId(2)] = Member{"a:2", true};
  rs.snapshot.conf.members[NodeId(4)] = Member{"a:4", false};
  rs.hard_state = HardState{Term(3), kNoNode, LogIndex(10)};
  rs.applied = LogIndex(10);
  auto forced = ForceNewClusterState(rs, NodeId(4));
  ASSERT_TRUE(forced.ok());
  Raft r(Config{.id = NodeId(4)}, *forced);
  ASSERT_EQ(r.conf().members.size(), 1u);
  EXPECT_TRUE(r.conf().IsVoter(NodeId(4)));
  EXPECT_EQ(forced->entries.front().index, LogIndex(11));

  auto refused = ForceNewClusterState(rs, NodeId(3));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace dispotify::consensus
