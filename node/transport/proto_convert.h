#pragma once
// Conversion between the core's consensus::Message and the wire's dispotify.v1.RaftMessage
// (proto/dispotify/v1/raft.proto). Protobuf types are only forward-declared here so that
// protobuf headers stay inside node/transport.
//
// Wire mapping (fields of consensus::Message not listed for a type are zero on the wire and
// are decoded as zero):
//   every type        RaftMessage.from / .to / .cluster_id / .from_uuid, body.term
//   kRequestVote      request_vote: candidate_id (= from), last_log_index, last_log_term,
//                     pre_vote, transfer
//   kRequestVoteResp  request_vote_response: granted, pre_vote
//   kAppendEntries    append_entries: leader_id (= from), prev_log_index, prev_log_term,
//                     entries, leader_commit (= commit), heartbeat, read_seq
//   kAppendEntriesResp append_entries_response: success, match_index, conflict_index,
//                     conflict_term, heartbeat, read_seq
//   kInstallSnapshot  install_snapshot: leader_id (= from), snapshot, offset, data, done;
//                     chunk_length is not on the wire: it is decoded as data.size()
//   kInstallSnapshotResp install_snapshot_response: success, next_offset (= offset),
//                     match_index, snapshot_index (= snapshot.index)
//   kTimeoutNow       timeout_now: leader_id (= from)
//
// Decoding treats its input as untrusted: anything that a correct peer never sends is rejected
// with InvalidArgument rather than handed to the core.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/ids.h"
#include "common/status.h"
#include "node/consensus/types.h"

namespace dispotify::v1 {
class LogEntry;
class RaftMessage;
class SnapshotMeta;
}  // namespace dispotify::v1

namespace dispotify::transport {

// Upper bounds on what one decoded message may hold. gRPC's message size limit bounds the
// bytes; these bound the counts that would otherwise make a tiny message expensive.
struct DecodeLimits {
  size_t max_entries = 1u << 16;                         // entries in one AppendEntries
  size_t max_entry_bytes = 16u << 20;                    // data of one entry
  size_t max_snapshot_chunk_bytes = 64u << 20;           // data of one InstallSnapshot chunk
  size_t max_members = 1024;                             // members in a SnapshotMeta
  size_t max_address_bytes = 1024;                       // one member's address
  size_t max_uuid_bytes = consensus::kMaxNodeUuidBytes;  // a node_uuid (member or sender)
};

// Encoding never fails: every consensus::Message has a wire form. `msg` is taken by value so
// that a caller handing over an rvalue moves entry and chunk bytes instead of copying them.
void EncodeMessage(consensus::Message msg, std::string_view cluster_id, v1::RaftMessage* out);

// Decodes a message addressed to `self`. Entry and chunk bytes are moved out of `in` (which is
// left valid but unspecified). Does not look at cluster_id: the receiver fences on it first.
Status DecodeMessage(v1::RaftMessage* in, NodeId self, consensus::Message* out,
                     const DecodeLimits& limits = {});

void EncodeEntry(consensus::Entry entry, v1::LogEntry* out);
Status DecodeEntry(v1::LogEntry* in, consensus::Entry* out, const DecodeLimits& limits = {});

void EncodeSnapshotMeta(const consensus::SnapshotMeta& meta, v1::SnapshotMeta* out);
Status DecodeSnapshotMeta(const v1::SnapshotMeta& in, consensus::SnapshotMeta* out,
                          const DecodeLimits& limits = {});

// An upper bound on the encoded size of a message, not counting its cluster_id field; for queue
// accounting and batching without encoding first.
size_t EstimateWireSize(const consensus::Message& msg);

}  // namespace dispotify::transport
