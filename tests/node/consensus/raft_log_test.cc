#include "node/consensus/raft_log.h"

#include <gtest/gtest.h>

namespace dispotify::consensus {
namespace {

std::vector<Entry> Entries(uint64_t first, const std::vector<uint64_t>& terms) {
  std::vector<Entry> out;
  for (size_t i = 0; i < terms.size(); ++i)
    out.push_back(Entry{Term(terms[i]), LogIndex(first + i), EntryType::kNormal, "x"});
  return out;
}

TEST(RaftLog, AppendTruncatesConflictingSuffix) {
  RaftLog log;
  log.Restore({}, Entries(1, {1, 1, 2, 2}), LogIndex(), LogIndex());
  log.Append(Entries(3, {3}));
  EXPECT_EQ(log.last_index(), LogIndex(3));
  EXPECT_EQ(log.last_term(), Term(3));
  EXPECT_EQ(log.stable(), LogIndex(2)) << "the replaced entries are no longer stable";
  EXPECT_EQ(log.UnstableEntries().size(), 1u);
}

TEST(RaftLog, TermLookupsForBacktracking) {
  RaftLog log;
  log.Restore({}, Entries(1, {1, 1, 4, 4, 4, 5}), LogIndex(), LogIndex());
  EXPECT_EQ(log.FirstIndexOfTermAt(LogIndex(5)), LogIndex(3));
  EXPECT_EQ(log.LastIndexOfTerm(Term(4), LogIndex(6)), LogIndex(5));
  EXPECT_FALSE(log.LastIndexOfTerm(Term(3), LogIndex(6)).has_value());
  EXPECT_TRUE(log.IsUpToDate(LogIndex(6), Term(5)));
  EXPECT_FALSE(log.IsUpToDate(LogIndex(9), Term(4)));
}

TEST(RaftLog, CompactKeepsConfigurationAtTheSnapshot) {
  RaftLog log;
  SnapshotMeta base;
  base.conf.members[NodeId(1)] = Member{"a", true};
  std::vector<Entry> entries = Entries(1, {1, 1, 1});
  entries[1].type = EntryType::kConfChange;
  entries[1].data = EncodeConfChange(ConfChange{ConfChangeType::kAddLearner, NodeId(2), "b"});
  log.Restore(base, entries, LogIndex(3), LogIndex(3));
  EXPECT_TRUE(log.conf().Contains(NodeId(2)));
  log.Compact(LogIndex(2));
  EXPECT_EQ(log.snapshot().index, LogIndex(2));
  EXPECT_TRUE(log.snapshot().conf.Contains(NodeId(2)));
  EXPECT_EQ(log.first_index(), LogIndex(3));
  EXPECT_FALSE(log.TermAt(LogIndex(1)).has_value());
  EXPECT_EQ(log.TermAt(LogIndex(2)), Term(1));
}

TEST(RaftLog, InstallSnapshotKeepsAMatchingSuffix) {
  RaftLog log;
  log.Restore({}, Entries(1, {1, 1, 2, 2}), LogIndex(1), LogIndex(1));
  SnapshotMeta meta{LogIndex(3), Term(2), {}};
  log.InstallSnapshot(meta);
  EXPECT_EQ(log.last_index(), LogIndex(4));
  EXPECT_EQ(log.applied(), LogIndex(3));
  SnapshotMeta conflicting{LogIndex(10), Term(7), {}};
  log.InstallSnapshot(conflicting);
  EXPECT_EQ(log.last_index(), LogIndex(10));
  EXPECT_EQ(log.first_index(), LogIndex(11));
}

TEST(ConfChangeCodec, RoundTripAndRejectsGarbage) {
  ConfChange cc{ConfChangeType::kPromote, NodeId(42), "10.0.0.1:7001"};
  ConfChange out;
  ASSERT_TRUE(DecodeConfChange(EncodeConfChange(cc), &out));
  EXPECT_EQ(out, cc);
  EXPECT_FALSE(DecodeConfChange("", &out));
  std::string bad = EncodeConfChange(cc);
  bad.pop_back();
  EXPECT_FALSE(DecodeConfChange(bad, &out)) << "truncated";
  bad = EncodeConfChange(cc);
  bad[1] = 9;
  EXPECT_FALSE(DecodeConfChange(bad, &out)) << "unknown type";
}

// Version 2 carries the new member's incarnation; without one, version 1 is written (what
// servers without incarnations read), and a version 1 entry -- every entry written before
// incarnations -- reads as "incarnation unknown".
TEST(ConfChangeCodec, IncarnationIsVersion2AndVersion1StillReads) {
  ConfChange with{ConfChangeType::kAddLearner, NodeId(3), "10.0.0.3:7000",
                  "0123456789abcdef0123456789abcdef"};
  const std::string v2 = EncodeConfChange(with);
  EXPECT_EQ(v2[0], 2);
  ConfChange out;
  ASSERT_TRUE(DecodeConfChange(v2, &out));
  EXPECT_EQ(out, with);
  std::string bad = v2;
  bad.pop_back();
  EXPECT_FALSE(DecodeConfChange(bad, &out)) << "truncated uuid";
  bad = v2 + "x";
  EXPECT_FALSE(DecodeConfChange(bad, &out)) << "trailing bytes";

  // A version 1 entry, byte for byte as older servers wrote it.
  std::string v1 = {1, 0};                                   // version 1, kAddLearner
  for (int i = 0; i < 8; ++i) v1.push_back(i == 0 ? 3 : 0);  // node 3
  for (int i = 0; i < 4; ++i) v1.push_back(i == 0 ? 3 : 0);  // address length 3
  v1 += "a:1";
  ASSERT_TRUE(DecodeConfChange(v1, &out));
  EXPECT_EQ(out, (ConfChange{ConfChangeType::kAddLearner, NodeId(3), "a:1", ""}));
  EXPECT_EQ(EncodeConfChange(out), v1) << "no incarnation: still written as version 1";

  ConfState conf;
  ASSERT_TRUE(ApplyConfChange(with, &conf));
  EXPECT_EQ(conf.members.at(NodeId(3)).node_uuid, with.node_uuid);
  EXPECT_TRUE(conf.IncarnationMatches(NodeId(3), with.node_uuid));
  EXPECT_TRUE(conf.IncarnationMatches(NodeId(3), "")) << "a sender that does not say is accepted";
  EXPECT_FALSE(conf.IncarnationMatches(NodeId(3), "another"));
  EXPECT_TRUE(conf.IncarnationMatches(NodeId(4), "another")) << "not a member: nothing to check";
  ConfState unknown;
  ASSERT_TRUE(ApplyConfChange(out, &unknown));
  EXPECT_TRUE(unknown.IncarnationMatches(NodeId(3), "anything")) << "unknown incarnation: accepted";
}

}  // namespace
}  // namespace dispotify::consensus
