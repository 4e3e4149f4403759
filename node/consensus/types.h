#pragma once
// The vocabulary of the consensus core: log entries, membership, snapshots and the one message
// struct that every Raft RPC is carried in. These are plain values: no I/O, no threads.
//
// Wire mapping: proto/dispotify/v1/raft.proto has one message per RPC; node/transport converts.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/ids.h"

namespace dispotify::consensus {

enum class EntryType : uint8_t {
  kNormal = 0,      // state-machine command, opaque to Raft
  kNoop = 1,        // appended by a new leader so that it commits an entry of its own term (§5.4.2)
  kConfChange = 2,  // single-server membership change (thesis §4.1); data is an encoded ConfChange
};

struct Entry {
  Term term;
  LogIndex index;
  EntryType type = EntryType::kNormal;
  std::string data;
  bool operator==(const Entry&) const = default;
};

// Incarnations. A server's node_uuid is made with its data directory (node/storage/identity.h):
// a server that comes back under the same id with an empty disk has a new one. The membership
// records each member's incarnation, so that a server which lost its log is never counted as the
// voter it replaces (it could otherwise grant a vote or acknowledge an entry it does not hold,
// and elect a leader without committed entries). Messages carry the sender's incarnation; one
// from a member whose incarnation is not the configuration's is refused (Raft::Step). An empty
// node_uuid means "unknown" and matches anything: configurations written before incarnations
// existed (old log entries and snapshots), members of a multi-member bootstrap (their entries
// must be identical on every initial member, which each know only their own uuid), and senders
// running a version that does not send it.
struct Member {
  std::string address;    // where the transport reaches this node; opaque to the core
  bool voter = true;      // false: a learner, replicated to but not counted in any quorum
  std::string node_uuid;  // the member's incarnation; "" = unknown (accepted)
  bool operator==(const Member&) const = default;
};

// Upper bound on a node_uuid's length (identity.h makes 32 hex digits).
inline constexpr size_t kMaxNodeUuidBytes = 64;

// True when `uuid` may speak for member `id`: either side unknown (""), or equal.
inline bool IncarnationMatches(const std::string& member_uuid, const std::string& uuid) {
  return member_uuid.empty() || uuid.empty() || member_uuid == uuid;
}

// The cluster's membership. A server uses the latest configuration in its log, committed or not
// (thesis §4.1), and at most one change is uncommitted at any time.
struct ConfState {
  std::map<NodeId, Member> members;
  bool operator==(const ConfState&) const = default;

  bool IsVoter(NodeId id) const {
    auto it = members.find(id);
    return it != members.end() && it->second.voter;
  }
  bool Contains(NodeId id) const { return members.contains(id); }
  // A non-member matches (nothing to check); a member matches as IncarnationMatches says.
  bool IncarnationMatches(NodeId id, const std::string& uuid) const {
    auto it = members.find(id);
    return it == members.end() || consensus::IncarnationMatches(it->second.node_uuid, uuid);
  }
  // `id` is a member and `uuid` may be its incarnation.
  bool ContainsIncarnation(NodeId id, const std::string& uuid) const {
    return Contains(id) && IncarnationMatches(id, uuid);
  }
  size_t VoterCount() const {
    size_t n = 0;
    for (const auto& [id, m] : members) n += m.voter ? 1 : 0;
    return n;
  }
};

enum class ConfChangeType : uint8_t {
  kAddLearner = 0,  // new member, non-voting
  kPromote = 1,     // learner -> voter
  kRemove = 2,      // voter or learner leaves
};

struct ConfChange {
  ConfChangeType type = ConfChangeType::kAddLearner;
  NodeId node;
  std::string address;    // for kAddLearner
  std::string node_uuid;  // for kAddLearner: the new member's incarnation ("" = unknown)
  bool operator==(const ConfChange&) const = default;
};

// Encoding of ConfChange inside an Entry's data (little-endian):
//   version 1: u8 1 | u8 type | u64 node | u32 address length | address bytes
//   version 2: version 1's fields (with u8 2) | u32 node_uuid length | node_uuid bytes
// Version 1 is written when node_uuid is empty (what servers without incarnations read); both
// are read, a version 1 entry meaning "incarnation unknown".
std::string EncodeConfChange(const ConfChange& cc);
bool DecodeConfChange(const std::string& data, ConfChange* out);
// Applies a change to a configuration; returns false (leaving `conf` as it was) if the change
// makes no sense for it (promote of a non-learner, remove of a non-member, add of a member).
bool ApplyConfChange(const ConfChange& cc, ConfState* conf);

struct SnapshotMeta {
  LogIndex index;  // last index the snapshot covers
  Term term;       // term of that entry
  ConfState conf;  // membership as of `index`
  bool operator==(const SnapshotMeta&) const = default;
};

// What must be on stable storage before anything that depends on it leaves this server.
struct HardState {
  Term term;
  NodeId vote;
  LogIndex commit;  // may lag on disk; never needed for safety, only to apply sooner on restart
  bool operator==(const HardState&) const = default;
};

enum class MessageType : uint8_t {
  kRequestVote = 0,  // pre_vote distinguishes the pre-vote round (thesis §9.6)
  kRequestVoteResponse,
  kAppendEntries,  // heartbeat when `heartbeat` is set (no entries, no consistency check)
  kAppendEntriesResponse,
  kInstallSnapshot,  // one chunk of a snapshot (Figure 13)
  kInstallSnapshotResponse,
  kTimeoutNow,  // leadership transfer: campaign now (thesis §3.10)
};

const char* MessageTypeName(MessageType t);

// One struct for every Raft RPC, as etcd's raftpb.Message: fields irrelevant to a type stay zero.
struct Message {
  MessageType type = MessageType::kAppendEntries;
  NodeId from;
  NodeId to;
  Term term;
  // The sender's incarnation, stamped by Raft::Send (the receiver checks it against its
  // configuration; "" = not said, accepted).
  std::string from_uuid;

  // kRequestVote
  bool pre_vote = false;
  bool transfer = false;  // caused by TimeoutNow: voters ignore their leader lease
  LogIndex last_log_index;
  Term last_log_term;
  // kRequestVoteResponse
  bool granted = false;

  // kAppendEntries
  bool heartbeat = false;
  LogIndex prev_log_index;
  Term prev_log_term;
  std::vector<Entry> entries;
  LogIndex commit;
  uint64_t read_seq = 0;  // heartbeat round; echoed in responses, drives ReadIndex
  // kAppendEntriesResponse
  bool success = false;
  // success: last index known to match the leader's log. reject: the rejected prev_log_index.
  // kInstallSnapshotResponse: the snapshot's index once installed (the transfer is done).
  LogIndex match_index;
  LogIndex conflict_index;  // reject: first index of conflict_term, or follower's last + 1
  Term conflict_term;       // reject: term of the follower's entry at prev_log_index (0 if none)

  // kInstallSnapshot: `snapshot` metadata, chunk `data` at byte `offset`, `done` on the last one.
  // The core never holds snapshot bytes: the leader's driver fills `data` (chunk_length bytes at
  // `offset` of the snapshot named by snapshot.index) before sending.
  SnapshotMeta snapshot;
  uint64_t offset = 0;
  uint64_t chunk_length = 0;  // a request from the core to the leader's driver; not on the wire
  std::string data;
  bool done = false;
  // The leader's driver also sets `done` on the chunk that reaches the end of the payload.
  // kInstallSnapshotResponse: success, `offset` = next expected byte, snapshot.index = the
  // snapshot it answers for, match_index set once installed.
};

}  // namespace dispotify::consensus
