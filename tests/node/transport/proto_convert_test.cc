#include "node/transport/proto_convert.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "dispotify/v1/raft.pb.h"

namespace dispotify::transport {
namespace {

using consensus::Entry;
using consensus::EntryType;
using consensus::Message;
using consensus::MessageType;

constexpr NodeId kFrom{7};
constexpr NodeId kTo{9};

void ExpectSameMessage(const Message& want, const Message& got) {
  EXPECT_EQ(want.type, got.type);
  EXPECT_EQ(want.from, got.from);
  EXPECT_EQ(want.to, got.to);
  EXPECT_EQ(want.term, got.term);
  EXPECT_EQ(want.from_uuid, got.from_uuid);
  EXPECT_EQ(want.pre_vote, got.pre_vote);
  EXPECT_EQ(want.transfer, got.transfer);
  EXPECT_EQ(want.last_log_index, got.last_log_index);
  EXPECT_EQ(want.last_log_term, got.last_log_term);
  EXPECT_EQ(want.granted, got.granted);
  EXPECT_EQ(want.heartbeat, got.heartbeat);
  EXPECT_EQ(want.prev_log_index, got.prev_log_index);
  EXPECT_EQ(want.prev_log_term, got.prev_log_term);
  EXPECT_EQ(want.entries, got.entries);
  EXPECT_EQ(want.commit, got.commit);
  EXPECT_EQ(want.read_seq, got.read_seq);
  EXPECT_EQ(want.success, got.success);
  EXPECT_EQ(want.match_index, got.match_index);
  EXPECT_EQ(want.conflict_index, got.conflict_index);
  EXPECT_EQ(want.conflict_term, got.conflict_term);
  EXPECT_EQ(want.snapshot, got.snapshot);
  EXPECT_EQ(want.offset, got.offset);
  EXPECT_EQ(want.chunk_length, got.chunk_length);
  EXPECT_EQ(want.data, got.data);
  EXPECT_EQ(want.done, got.done);
}

// Encodes, goes through the wire bytes, decodes at the receiver.
Message RoundTrip(const Message& m) {
  v1::RaftMessage pm;
  EncodeMessage(m, "cluster-a", &pm);
  EXPECT_EQ(pm.cluster_id(), "cluster-a");
  EXPECT_LE(pm.ByteSizeLong(), EstimateWireSize(m) + pm.cluster_id().size() + 2);
  std::string wire = pm.SerializeAsString();
  v1::RaftMessage parsed;
  EXPECT_TRUE(parsed.ParseFromString(wire));
  Message out;
  Status st = DecodeMessage(&parsed, m.to, &out);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

Message Base(MessageType type) {
  Message m;
  m.type = type;
  m.from = kFrom;
  m.to = kTo;
  m.term = Term(42);
  return m;
}

TEST(ProtoConvertTest, RequestVoteRoundTrip) {
  for (bool pre_vote : {false, true}) {
    for (bool transfer : {false, true}) {
      Message m = Base(MessageType::kRequestVote);
      m.pre_vote = pre_vote;
      m.transfer = transfer;
      m.last_log_index = LogIndex(1000);
      m.last_log_term = Term(41);
      ExpectSameMessage(m, RoundTrip(m));
    }
  }
}

TEST(ProtoConvertTest, RequestVoteResponseRoundTrip) {
  for (bool pre_vote : {false, true}) {
    for (bool granted : {false, true}) {
      Message m = Base(MessageType::kRequestVoteResponse);
      m.pre_vote = pre_vote;
      m.granted = granted;
      ExpectSameMessage(m, RoundTrip(m));
    }
  }
}

TEST(ProtoConvertTest, AppendEntriesRoundTrip) {
  Message m = Base(MessageType::kAppendEntries);
  m.prev_log_index = LogIndex(99);
  m.prev_log_term = Term(40);
  m.commit = LogIndex(98);
  m.read_seq = 12345;
  m.entries.push_back({Term(40), LogIndex(100), EntryType::kNormal, std::string("a\0b", 3)});
  m.entries.push_back({Term(41), LogIndex(101), EntryType::kNoop, ""});
  m.entries.push_back({Term(42), LogIndex(102), EntryType::kConfChange, std::string(5000, 'x')});
  ExpectSameMessage(m, RoundTrip(m));

  Message heartbeat = Base(MessageType::kAppendEntries);
  heartbeat.heartbeat = true;
  heartbeat.commit = LogIndex(7);
  heartbeat.read_seq = std::numeric_limits<uint64_t>::max();
  ExpectSameMessage(heartbeat, RoundTrip(heartbeat));

  Message probe = Base(MessageType::kAppendEntries);  // empty, prev 0: the very first append
  ExpectSameMessage(probe, RoundTrip(probe));
}

TEST(ProtoConvertTest, AppendEntriesResponseRoundTrip) {
  Message ok = Base(MessageType::kAppendEntriesResponse);
  ok.success = true;
  ok.match_index = LogIndex(102);
  ok.heartbeat = true;
  ok.read_seq = 77;
  ExpectSameMessage(ok, RoundTrip(ok));

  Message reject = Base(MessageType::kAppendEntriesResponse);
  reject.match_index = LogIndex(99);
  reject.conflict_index = LogIndex(50);
  reject.conflict_term = Term(39);
  ExpectSameMessage(reject, RoundTrip(reject));

  Message term0 = Base(MessageType::kAppendEntriesResponse);  // a fresh node answers at term 0
  term0.term = Term(0);
  ExpectSameMessage(term0, RoundTrip(term0));
}

TEST(ProtoConvertTest, InstallSnapshotRoundTrip) {
  Message m = Base(MessageType::kInstallSnapshot);
  m.snapshot.index = LogIndex(5000);
  m.snapshot.term = Term(40);
  m.snapshot.conf.members[NodeId(7)] = {"10.0.0.7:7000", true};
  m.snapshot.conf.members[NodeId(9)] = {"node-9.dispotify:7000", true};
  m.snapshot.conf.members[NodeId(11)] = {"[::1]:7000", false};
  m.offset = 1 << 20;
  m.data = std::string(1 << 16, '\xff');
  m.chunk_length = m.data.size();
  m.done = true;
  ExpectSameMessage(m, RoundTrip(m));

  // chunk_length is not on the wire: the receiver takes it from the bytes that arrived.
  Message last = m;
  last.chunk_length = 1 << 20;
  last.data = "tail";
  Message got = RoundTrip(last);
  EXPECT_EQ(got.chunk_length, 4u);
  EXPECT_EQ(got.data, "tail");
}

TEST(ProtoConvertTest, InstallSnapshotResponseRoundTrip) {
  Message m = Base(MessageType::kInstallSnapshotResponse);
  m.success = true;
  m.offset = 3 << 20;
  m.match_index = LogIndex(5000);
  m.snapshot.index = LogIndex(5000);
  ExpectSameMessage(m, RoundTrip(m));
}

TEST(ProtoConvertTest, TimeoutNowRoundTrip) {
  Message m = Base(MessageType::kTimeoutNow);
  ExpectSameMessage(m, RoundTrip(m));
}

TEST(ProtoConvertTest, EncodeMovesBytesFromRvalue) {
  Message m = Base(MessageType::kAppendEntries);
  m.entries.push_back({Term(1), LogIndex(1), EntryType::kNormal, std::string(1000, 'e')});
  v1::RaftMessage pm;
  EncodeMessage(std::move(m), "c", &pm);
  EXPECT_EQ(pm.append_entries().entries(0).data().size(), 1000u);
}

TEST(ProtoConvertTest, EntryAndSnapshotMetaRoundTrip) {
  Entry e{Term(3), LogIndex(8), EntryType::kConfChange, "cc"};
  v1::LogEntry pe;
  EncodeEntry(e, &pe);
  Entry got;
  ASSERT_TRUE(DecodeEntry(&pe, &got).ok());
  EXPECT_EQ(got, e);

  consensus::SnapshotMeta meta{LogIndex(10), Term(2), {}};
  meta.conf.members[NodeId(1)] = {"a:1", true};
  meta.conf.members[NodeId(2)] = {"b:2", false, "0123456789abcdef0123456789abcdef"};
  v1::SnapshotMeta pmeta;
  EncodeSnapshotMeta(meta, &pmeta);
  consensus::SnapshotMeta got_meta;
  ASSERT_TRUE(DecodeSnapshotMeta(pmeta, &got_meta).ok());
  EXPECT_EQ(got_meta, meta);
}

// ---------------------------------------------------------------------------------------------
// Untrusted input.

v1::RaftMessage ValidAppend() {
  Message m = Base(MessageType::kAppendEntries);
  m.prev_log_index = LogIndex(10);
  m.prev_log_term = Term(40);
  for (uint64_t i = 0; i < 3; ++i) m.entries.push_back({Term(41), LogIndex(11 + i), EntryType::kNormal, "d"});
  v1::RaftMessage pm;
  EncodeMessage(m, "c", &pm);
  return pm;
}

v1::RaftMessage ValidSnapshot() {
  Message m = Base(MessageType::kInstallSnapshot);
  m.snapshot.index = LogIndex(100);
  m.snapshot.term = Term(40);
  m.snapshot.conf.members[kFrom] = {"a:1", true};
  m.snapshot.conf.members[kTo] = {"b:1", true};
  m.data = "chunk";
  v1::RaftMessage pm;
  EncodeMessage(m, "c", &pm);
  return pm;
}

v1::RaftMessage ValidVote() {
  Message m = Base(MessageType::kRequestVote);
  m.last_log_index = LogIndex(5);
  m.last_log_term = Term(41);
  v1::RaftMessage pm;
  EncodeMessage(m, "c", &pm);
  return pm;
}

struct MalformedCase {
  const char* name;
  std::function<v1::RaftMessage()> make;
  const char* expect_in_message;
  DecodeLimits limits = {};
};

DecodeLimits SmallLimits() {
  DecodeLimits l;
  l.max_entries = 2;
  l.max_entry_bytes = 4;
  l.max_snapshot_chunk_bytes = 3;
  l.max_members = 1;
  l.max_address_bytes = 2;
  return l;
}

TEST(ProtoConvertTest, MalformedMessagesAreRejected) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  const std::vector<MalformedCase> cases = {
      {"missing body",
       [] {
         auto pm = ValidAppend();
         pm.clear_body();
         return pm;
       },
       "missing or unknown body"},
      {"from node 0",
       [] {
         auto pm = ValidAppend();
         pm.set_from(0);
         return pm;
       },
       "sender is node 0"},
      {"to another node",
       [] {
         auto pm = ValidAppend();
         pm.set_to(3);
         return pm;
       },
       "addressed to node 3"},
      {"to itself",
       [] {
         auto pm = ValidAppend();
         pm.set_from(kTo.value());
         pm.mutable_append_entries()->set_leader_id(kTo.value());
         return pm;
       },
       "to itself"},
      {"leader_id differs",
       [] {
         auto pm = ValidAppend();
         pm.mutable_append_entries()->set_leader_id(8);
         return pm;
       },
       "leader_id 8 differs"},
      {"candidate_id differs",
       [] {
         auto pm = ValidVote();
         pm.mutable_request_vote()->set_candidate_id(0);
         return pm;
       },
       "candidate_id 0 differs"},
      {"timeout_now leader differs",
       [] {
         v1::RaftMessage pm;
         pm.set_from(kFrom.value());
         pm.set_to(kTo.value());
         pm.mutable_timeout_now()->set_leader_id(1);
         return pm;
       },
       "leader_id 1 differs"},
      {"vote last_log_term above term",
       [] {
         auto pm = ValidVote();
         pm.mutable_request_vote()->set_last_log_term(43);
         return pm;
       },
       "last_log_term 43 above term 42"},
      {"gap in entry indices",
       [] {
         auto pm = ValidAppend();
         pm.mutable_append_entries()->mutable_entries(2)->set_index(14);
         return pm;
       },
       "entry index 14 where 13 was expected"},
      {"first entry not after prev",
       [] {
         auto pm = ValidAppend();
         pm.mutable_append_entries()->set_prev_log_index(11);
         return pm;
       },
       "entry index 11 where 12 was expected"},
      {"repeated entry index",
       [] {
         auto pm = ValidAppend();
         pm.mutable_append_entries()->mutable_entries(1)->set_index(11);
         return pm;
       },
       "entry index 11 where 12 was expected"},
      {"entry term decreasing",
       [] {
         auto pm = ValidAppend();
         pm.mutable_append_entries()->mutable_entries(2)->set_term(40);
         return pm;
       },
       "below the previous 41"},
      {"entry term below prev_log_term",
       [] {
         auto pm = ValidAppend();
         pm.mutable_append_entries()->set_prev_log_term(42);
         return pm;
       },
       "below the previous 42"},
      {"entry term above leader term",
       [] {
         auto pm = ValidAppend();
         pm.mutable_append_entries()->mutable_entries(2)->set_term(43);
         return pm;
       },
       "above the leader's 42"},
      {"entry indices overflow",
       [] {
         auto pm = ValidAppend();
         pm.mutable_append_entries()->set_prev_log_index(kMax - 1);
         return pm;
       },
       "entry indices overflow"},
      {"entry index 0",
       [] {
         auto pm = ValidAppend();
         pm.mutable_append_entries()->mutable_entries(0)->set_index(0);
         return pm;
       },
       "entry with index 0"},
      {"entry term 0",
       [] {
         auto pm = ValidAppend();
         pm.mutable_append_entries()->mutable_entries(0)->set_term(0);
         return pm;
       },
       "with term 0"},
      {"unknown entry type",
       [] {
         auto pm = ValidAppend();
         pm.mutable_append_entries()->mutable_entries(1)->set_type(static_cast<v1::LogEntry::Type>(7));
         return pm;
       },
       "unknown type 7"},
      {"heartbeat with entries",
       [] {
         auto pm = ValidAppend();
         pm.mutable_append_entries()->set_heartbeat(true);
         return pm;
       },
       "heartbeat carries 3 entries"},
      {"too many entries", [] { return ValidAppend(); }, "3 entries exceed the limit of 2", SmallLimits()},
      {"entry too large",
       [] {
         auto pm = ValidAppend();
         pm.mutable_append_entries()->mutable_entries()->DeleteSubrange(1, 2);
         pm.mutable_append_entries()->mutable_entries(0)->set_data("12345");
         return pm;
       },
       "of 5 bytes exceeds the limit of 4", SmallLimits()},
      {"snapshot without metadata",
       [] {
         auto pm = ValidSnapshot();
         pm.mutable_install_snapshot()->clear_snapshot();
         return pm;
       },
       "without snapshot metadata"},
      {"snapshot index 0",
       [] {
         auto pm = ValidSnapshot();
         pm.mutable_install_snapshot()->mutable_snapshot()->set_index(0);
         return pm;
       },
       "of index 0"},
      {"snapshot term above leader term",
       [] {
         auto pm = ValidSnapshot();
         pm.mutable_install_snapshot()->mutable_snapshot()->set_term(50);
         return pm;
       },
       "snapshot term 50 above"},
      {"member id 0",
       [] {
         auto pm = ValidSnapshot();
         pm.mutable_install_snapshot()->mutable_snapshot()->mutable_members(0)->set_node_id(0);
         return pm;
       },
       "member with node id 0"},
      {"member listed twice",
       [] {
         auto pm = ValidSnapshot();
         pm.mutable_install_snapshot()->mutable_snapshot()->mutable_members(1)->set_node_id(kFrom.value());
         return pm;
       },
       "listed twice"},
      {"too many members", [] { return ValidSnapshot(); }, "2 members exceed the limit of 1",
       [] {
         DecodeLimits l;
         l.max_members = 1;
         return l;
       }()},
      {"address too long", [] { return ValidSnapshot(); }, "address of 3 bytes",
       [] {
         DecodeLimits l;
         l.max_address_bytes = 2;
         return l;
       }()},
      {"chunk too large", [] { return ValidSnapshot(); }, "chunk of 5 bytes exceeds the limit of 3",
       [] {
         DecodeLimits l;
         l.max_snapshot_chunk_bytes = 3;
         return l;
       }()},
      {"chunk offset overflows",
       [] {
         auto pm = ValidSnapshot();
         pm.mutable_install_snapshot()->set_offset(kMax - 2);
         return pm;
       },
       "overflows"},
      {"member node_uuid too long",
       [] {
         auto pm = ValidSnapshot();
         pm.mutable_install_snapshot()->mutable_snapshot()->mutable_members(0)->set_node_uuid(
             std::string(65, 'a'));
         return pm;
       },
       "has a node_uuid of 65 bytes"},
      {"sender node_uuid too long",
       [] {
         auto pm = ValidVote();
         pm.set_from_uuid(std::string(65, 'a'));
         return pm;
       },
       "sender's node_uuid of 65 bytes"},
  };
  for (const MalformedCase& c : cases) {
    SCOPED_TRACE(c.name);
    v1::RaftMessage pm = c.make();
    Message out;
    Status st = DecodeMessage(&pm, kTo, &out, c.limits);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find(c.expect_in_message), std::string::npos) << st.ToString();
  }
}

TEST(ProtoConvertTest, ValidFixturesDecode) {
  // The malformed cases above are one change away from these.
  for (auto make : {ValidAppend, ValidSnapshot, ValidVote}) {
    v1::RaftMessage pm = make();
    Message out;
    Status st = DecodeMessage(&pm, kTo, &out);
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
}

// The sender's incarnation travels with every message; an older sender's (none) decodes as "".
TEST(ProtoConvertTest, SenderIncarnationRoundTrip) {
  for (MessageType type : {MessageType::kRequestVote, MessageType::kRequestVoteResponse,
                           MessageType::kAppendEntriesResponse, MessageType::kTimeoutNow}) {
    Message m = Base(type);
    m.from_uuid = "0123456789abcdef0123456789abcdef";
    ExpectSameMessage(m, RoundTrip(m));
    m.from_uuid.clear();
    ExpectSameMessage(m, RoundTrip(m));
  }
}

TEST(ProtoConvertTest, BodyOfAnUnknownKindIsRejected) {
  // A newer peer's body type arrives as an unknown field: the oneof is unset.
  v1::RaftMessage pm;
  pm.set_from(kFrom.value());
  pm.set_to(kTo.value());
  std::string wire = pm.SerializeAsString();
  wire += std::string("\xa2\x06\x02\x08\x01", 5);  // field 100, length-delimited {1: 1}
  v1::RaftMessage parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  Message out;
  Status st = DecodeMessage(&parsed, kTo, &out);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("missing or unknown body"), std::string::npos) << st.ToString();
}

TEST(ProtoConvertTest, EstimateIsAnUpperBound) {
  Message m = Base(MessageType::kInstallSnapshot);
  m.term = Term(std::numeric_limits<uint64_t>::max());
  m.from = NodeId(std::numeric_limits<uint64_t>::max());
  m.to = NodeId(std::numeric_limits<uint64_t>::max() - 1);
  m.snapshot.index = LogIndex(std::numeric_limits<uint64_t>::max());
  m.snapshot.term = Term(std::numeric_limits<uint64_t>::max());
  m.offset = std::numeric_limits<uint64_t>::max();
  m.done = true;
  for (uint64_t i = 1; i <= 50; ++i) m.snapshot.conf.members[NodeId(~i)] = {std::string(i, 'a'), true};
  m.data = std::string(300, 'd');
  v1::RaftMessage pm;
  EncodeMessage(m, "", &pm);
  EXPECT_LE(pm.ByteSizeLong(), EstimateWireSize(m));

  Message ae = Base(MessageType::kAppendEntries);
  ae.term = Term(std::numeric_limits<uint64_t>::max());
  ae.prev_log_index = LogIndex(std::numeric_limits<uint64_t>::max() - 100);
  ae.prev_log_term = Term(std::numeric_limits<uint64_t>::max());
  ae.commit = LogIndex(std::numeric_limits<uint64_t>::max());
  ae.read_seq = std::numeric_limits<uint64_t>::max();
  for (uint64_t i = 1; i <= 64; ++i) {
    ae.entries.push_back(
        {ae.term, LogIndex(ae.prev_log_index.value() + i), EntryType::kConfChange, std::string(256, 'x')});
  }
  pm.Clear();
  EncodeMessage(ae, "", &pm);
  EXPECT_LE(pm.ByteSizeLong(), EstimateWireSize(ae));
}

}  // namespace
}  // namespace dispotify::transport
