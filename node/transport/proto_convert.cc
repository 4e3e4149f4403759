#include "node/transport/proto_convert.h"

#include <limits>
#include <set>
#include <string>
#include <utility>

#include "common/assert.h"
#include "dispotify/v1/raft.pb.h"

namespace dispotify::transport {
namespace {

using consensus::EntryType;
using consensus::MessageType;

Status Invalid(std::string what) {
  return Status::InvalidArgument("raft message: " + std::move(what));
}

std::string U(uint64_t v) {
  return std::to_string(v);
}

v1::LogEntry::Type ToProtoType(EntryType t) {
  switch (t) {
    case EntryType::kNormal: return v1::LogEntry::NORMAL;
    case EntryType::kNoop: return v1::LogEntry::NOOP;
    case EntryType::kConfChange: return v1::LogEntry::CONF_CHANGE;
  }
  DISPOTIFY_CHECK(false, "unknown consensus::EntryType");
  return v1::LogEntry::NORMAL;
}

// The body's sender field (candidate_id / leader_id) repeats the envelope's `from`; a mismatch
// means a confused or forged sender.
Status CheckSender(uint64_t body_sender, uint64_t from, const char* field) {
  if (body_sender != from) {
    return Invalid(std::string(field) + " " + U(body_sender) + " differs from sender " + U(from));
  }
  return Status::Ok();
}

Status DecodeAppendEntries(v1::AppendEntries* ae, const DecodeLimits& limits, consensus::Message* out) {
  out->term = Term(ae->term());
  out->prev_log_index = LogIndex(ae->prev_log_index());
  out->prev_log_term = Term(ae->prev_log_term());
  out->commit = LogIndex(ae->leader_commit());
  out->heartbeat = ae->heartbeat();
  out->read_seq = ae->read_seq();

  const size_t n = static_cast<size_t>(ae->entries_size());
  if (n > limits.max_entries) return Invalid(U(n) + " entries exceed the limit of " + U(limits.max_entries));
  if (n > 0 && ae->heartbeat()) return Invalid("heartbeat carries " + U(n) + " entries");
  if (n > 0 && ae->prev_log_index() > std::numeric_limits<uint64_t>::max() - n) {
    return Invalid("entry indices overflow after prev_log_index " + U(ae->prev_log_index()));
  }
  out->entries.clear();
  out->entries.reserve(n);
  uint64_t want_index = ae->prev_log_index() + 1;
  uint64_t min_term = ae->prev_log_term();
  for (auto& pe : *ae->mutable_entries()) {
    consensus::Entry e;
    DISPOTIFY_RETURN_IF_ERROR(DecodeEntry(&pe, &e, limits));
    // Entries follow prev_log_index without gaps, and terms never decrease along a log and never
    // exceed the leader's term (§5.3, Log Matching).
    if (e.index.value() != want_index) {
      return Invalid("entry index " + U(e.index.value()) + " where " + U(want_index) + " was expected");
    }
    if (e.term.value() < min_term) {
      return Invalid("entry " + U(want_index) + " has term " + U(e.term.value()) + " below the previous " +
                     U(min_term));
    }
    if (e.term.value() > ae->term()) {
      return Invalid("entry " + U(want_index) + " has term " + U(e.term.value()) + " above the leader's " +
                     U(ae->term()));
    }
    min_term = e.term.value();
    ++want_index;
    out->entries.push_back(std::move(e));
  }
  return Status::Ok();
}

Status DecodeInstallSnapshot(v1::InstallSnapshot* is, const DecodeLimits& limits, consensus::Message* out) {
  out->term = Term(is->term());
  if (!is->has_snapshot()) return Invalid("install_snapshot without snapshot metadata");
  DISPOTIFY_RETURN_IF_ERROR(DecodeSnapshotMeta(is->snapshot(), &out->snapshot, limits));
  if (out->snapshot.index.value() == 0) return Invalid("install_snapshot of index 0");
  if (out->snapshot.term.value() > is->term()) {
    return Invalid("snapshot term " + U(out->snapshot.term.value()) + " above the leader's " + U(is->term()));
  }
  const size_t len = is->data().size();
  if (len > limits.max_snapshot_chunk_bytes) {
    return Invalid("snapshot chunk of " + U(len) + " bytes exceeds the limit of " +
                   U(limits.max_snapshot_chunk_bytes));
  }
  if (is->offset() > std::numeric_limits<uint64_t>::max() - len) {
    return Invalid("snapshot chunk at offset " + U(is->offset()) + " overflows");
  }
  out->offset = is->offset();
  out->chunk_length = len;
  out->data = std::move(*is->mutable_data());
  out->done = is->done();
  return Status::Ok();
}

}  // namespace

void EncodeEntry(consensus::Entry entry, v1::LogEntry* out) {
  out->set_term(entry.term.value());
  out->set_index(entry.index.value());
  out->set_type(ToProtoType(entry.type));
  out->set_data(std::move(entry.data));
}

Status DecodeEntry(v1::LogEntry* in, consensus::Entry* out, const DecodeLimits& limits) {
  switch (in->type()) {
    case v1::LogEntry::NORMAL: out->type = EntryType::kNormal; break;
    case v1::LogEntry::NOOP: out->type = EntryType::kNoop; break;
    case v1::LogEntry::CONF_CHANGE: out->type = EntryType::kConfChange; break;
    default: return Invalid("entry " + U(in->index()) + " has unknown type " + std::to_string(in->type()));
  }
  if (in->index() == 0) return Invalid("entry with index 0");
  if (in->term() == 0) return Invalid("entry " + U(in->index()) + " with term 0");
  if (in->data().size() > limits.max_entry_bytes) {
    return Invalid("entry " + U(in->index()) + " of " + U(in->data().size()) +
                   " bytes exceeds the limit of " + U(limits.max_entry_bytes));
  }
  out->term = Term(in->term());
  out->index = LogIndex(in->index());
  out->data = std::move(*in->mutable_data());
  return Status::Ok();
}

void EncodeSnapshotMeta(const consensus::SnapshotMeta& meta, v1::SnapshotMeta* out) {
  out->set_index(meta.index.value());
  out->set_term(meta.term.value());
  out->mutable_members()->Reserve(static_cast<int>(meta.conf.members.size()));
  for (const auto& [id, member] : meta.conf.members) {
    v1::Member* pm = out->add_members();
    pm->set_node_id(id.value());
    pm->set_address(member.address);
    pm->set_voter(member.voter);
    pm->set_node_uuid(member.node_uuid);
  }
}

Status DecodeSnapshotMeta(const v1::SnapshotMeta& in, consensus::SnapshotMeta* out,
                          const DecodeLimits& limits) {
  const size_t n = static_cast<size_t>(in.members_size());
  if (n > limits.max_members) return Invalid(U(n) + " members exceed the limit of " + U(limits.max_members));
  out->index = LogIndex(in.index());
  out->term = Term(in.term());
  out->conf.members.clear();
  for (const v1::Member& pm : in.members()) {
    if (pm.node_id() == 0) return Invalid("member with node id 0");
    if (pm.address().size() > limits.max_address_bytes) {
      return Invalid("member " + U(pm.node_id()) + " has an address of " + U(pm.address().size()) + " bytes");
    }
    if (pm.node_uuid().size() > limits.max_uuid_bytes) {
      return Invalid("member " + U(pm.node_id()) + " has a node_uuid of " + U(pm.node_uuid().size()) +
                     " bytes");
    }
    auto [it, inserted] = out->conf.members.emplace(
        NodeId(pm.node_id()), consensus::Member{pm.address(), pm.voter(), pm.node_uuid()});
    if (!inserted) return Invalid("member " + U(pm.node_id()) + " listed twice");
  }
  return Status::Ok();
}

void EncodeMessage(consensus::Message msg, std::string_view cluster_id, v1::RaftMessage* out) {
  out->set_from(msg.from.value());
  out->set_to(msg.to.value());
  out->set_cluster_id(cluster_id.data(), cluster_id.size());
  out->set_from_uuid(std::move(msg.from_uuid));
  switch (msg.type) {
    case MessageType::kRequestVote: {
      v1::RequestVote* b = out->mutable_request_vote();
      b->set_term(msg.term.value());
      b->set_candidate_id(msg.from.value());
      b->set_last_log_index(msg.last_log_index.value());
      b->set_last_log_term(msg.last_log_term.value());
      b->set_pre_vote(msg.pre_vote);
      b->set_transfer(msg.transfer);
      return;
    }
    case MessageType::kRequestVoteResponse: {
      v1::RequestVoteResponse* b = out->mutable_request_vote_response();
      b->set_term(msg.term.value());
      b->set_granted(msg.granted);
      b->set_pre_vote(msg.pre_vote);
      return;
    }
    case MessageType::kAppendEntries: {
      v1::AppendEntries* b = out->mutable_append_entries();
      b->set_term(msg.term.value());
      b->set_leader_id(msg.from.value());
      b->set_prev_log_index(msg.prev_log_index.value());
      b->set_prev_log_term(msg.prev_log_term.value());
      b->set_leader_commit(msg.commit.value());
      b->set_heartbeat(msg.heartbeat);
      b->set_read_seq(msg.read_seq);
      b->mutable_entries()->Reserve(static_cast<int>(msg.entries.size()));
      for (consensus::Entry& e : msg.entries) EncodeEntry(std::move(e), b->add_entries());
      return;
    }
    case MessageType::kAppendEntriesResponse: {
      v1::AppendEntriesResponse* b = out->mutable_append_entries_response();
      b->set_term(msg.term.value());
      b->set_success(msg.success);
      b->set_match_index(msg.match_index.value());
      b->set_conflict_index(msg.conflict_index.value());
      b->set_conflict_term(msg.conflict_term.value());
      b->set_heartbeat(msg.heartbeat);
      b->set_read_seq(msg.read_seq);
      return;
    }
    case MessageType::kInstallSnapshot: {
      v1::InstallSnapshot* b = out->mutable_install_snapshot();
      b->set_term(msg.term.value());
      b->set_leader_id(msg.from.value());
      EncodeSnapshotMeta(msg.snapshot, b->mutable_snapshot());
      b->set_offset(msg.offset);
      b->set_data(std::move(msg.data));
      b->set_done(msg.done);
      return;
    }
    case MessageType::kInstallSnapshotResponse: {
      v1::InstallSnapshotResponse* b = out->mutable_install_snapshot_response();
      b->set_term(msg.term.value());
      b->set_success(msg.success);
      b->set_next_offset(msg.offset);
      b->set_match_index(msg.match_index.value());
      b->set_snapshot_index(msg.snapshot.index.value());
      return;
    }
    case MessageType::kTimeoutNow: {
      v1::TimeoutNow* b = out->mutable_timeout_now();
      b->set_term(msg.term.value());
      b->set_leader_id(msg.from.value());
      return;
    }
  }
  DISPOTIFY_CHECK(false, "unknown consensus::MessageType");
}

Status DecodeMessage(v1::RaftMessage* in, NodeId self, consensus::Message* out, const DecodeLimits& limits) {
  if (in->from() == 0) return Invalid("sender is node 0");
  if (in->to() != self.value())
    return Invalid("addressed to node " + U(in->to()) + ", this is node " + U(self.value()));
  if (in->from() == in->to()) return Invalid("node " + U(in->from()) + " sent a message to itself");

  if (in->from_uuid().size() > limits.max_uuid_bytes) {
    return Invalid("sender's node_uuid of " + U(in->from_uuid().size()) + " bytes");
  }
  consensus::Message m;
  m.from = NodeId(in->from());
  m.to = NodeId(in->to());
  m.from_uuid = in->from_uuid();
  switch (in->body_case()) {
    case v1::RaftMessage::kRequestVote: {
      const v1::RequestVote& b = in->request_vote();
      DISPOTIFY_RETURN_IF_ERROR(CheckSender(b.candidate_id(), in->from(), "candidate_id"));
      if (b.last_log_term() > b.term()) {
        return Invalid("request_vote last_log_term " + U(b.last_log_term()) + " above term " + U(b.term()));
      }
      m.type = MessageType::kRequestVote;
      m.term = Term(b.term());
      m.last_log_index = LogIndex(b.last_log_index());
      m.last_log_term = Term(b.last_log_term());
      m.pre_vote = b.pre_vote();
      m.transfer = b.transfer();
      break;
    }
    case v1::RaftMessage::kRequestVoteResponse: {
      const v1::RequestVoteResponse& b = in->request_vote_response();
      m.type = MessageType::kRequestVoteResponse;
      m.term = Term(b.term());
      m.granted = b.granted();
      m.pre_vote = b.pre_vote();
      break;
    }
    case v1::RaftMessage::kAppendEntries: {
      v1::AppendEntries* b = in->mutable_append_entries();
      DISPOTIFY_RETURN_IF_ERROR(CheckSender(b->leader_id(), in->from(), "leader_id"));
      m.type = MessageType::kAppendEntries;
      DISPOTIFY_RETURN_IF_ERROR(DecodeAppendEntries(b, limits, &m));
      break;
    }
    case v1::RaftMessage::kAppendEntriesResponse: {
      const v1::AppendEntriesResponse& b = in->append_entries_response();
      m.type = MessageType::kAppendEntriesResponse;
      m.term = Term(b.term());
      m.success = b.success();
      m.match_index = LogIndex(b.match_index());
      m.conflict_index = LogIndex(b.conflict_index());
      m.conflict_term = Term(b.conflict_term());
      m.heartbeat = b.heartbeat();
      m.read_seq = b.read_seq();
      break;
    }
    case v1::RaftMessage::kInstallSnapshot: {
      v1::InstallSnapshot* b = in->mutable_install_snapshot();
      DISPOTIFY_RETURN_IF_ERROR(CheckSender(b->leader_id(), in->from(), "leader_id"));
      m.type = MessageType::kInstallSnapshot;
      DISPOTIFY_RETURN_IF_ERROR(DecodeInstallSnapshot(b, limits, &m));
      break;
    }
    case v1::RaftMessage::kInstallSnapshotResponse: {
      const v1::InstallSnapshotResponse& b = in->install_snapshot_response();
      m.type = MessageType::kInstallSnapshotResponse;
      m.term = Term(b.term());
      m.success = b.success();
      m.offset = b.next_offset();
      m.match_index = LogIndex(b.match_index());
      m.snapshot.index = LogIndex(b.snapshot_index());
      break;
    }
    case v1::RaftMessage::kTimeoutNow: {
      const v1::TimeoutNow& b = in->timeout_now();
      DISPOTIFY_RETURN_IF_ERROR(CheckSender(b.leader_id(), in->from(), "leader_id"));
      m.type = MessageType::kTimeoutNow;
      m.term = Term(b.term());
      break;
    }
    case v1::RaftMessage::BODY_NOT_SET:
    default: return Invalid("missing or unknown body from node " + U(in->from()));
  }
  *out = std::move(m);
  return Status::Ok();
}

size_t EstimateWireSize(const consensus::Message& msg) {
  // Worst cases: a varint field is 11 bytes with its tag, a length prefix 6. Envelope and the
  // largest fixed body (install_snapshot with its SnapshotMeta) stay under 128.
  size_t n = 128 + msg.data.size() + msg.from_uuid.size();
  for (const consensus::Entry& e : msg.entries) n += 40 + e.data.size();
  for (const auto& [id, member] : msg.snapshot.conf.members)
    n += 40 + member.address.size() + member.node_uuid.size();
  return n;
}

}  // namespace dispotify::transport
