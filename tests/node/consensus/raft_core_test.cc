// The core driven by hand-written messages, for rules that need exact control of who knows what.

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace dispotify::consensus
