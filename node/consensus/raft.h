#pragma once
// The Raft consensus core: a deterministic state machine with no I/O, no threads and no clock.
// Time advances only through Tick(); messages arrive through Step(); client requests through
// Propose*/ReadIndex/TransferLeadership. Everything the core wants done comes out of GetReady().
//
// The driver loop (node/server/raft_node) is the only caller:
//   loop: Tick()/Step()/Propose() ...; if HasReady(): rd = GetReady();
//         persist rd (snapshot chunks, snapshot, hard state, entries; fsync);
//         send rd.messages; apply rd.committed in order; serve rd.read_states; Advance(rd).
//
// Implemented (thesis = Ongaro's dissertation): leader election with randomized timeouts,
// pre-vote (§9.6), check-quorum and leader stickiness (§4.2.3, §9.6), commit of current-term
// entries only (§5.4.2 / Figure 8), fast log backtracking by conflict term, learners, single-
// server membership changes (§4.1, with the "no change before an entry of the leader's term is
// committed" fix), leadership transfer (§3.10), ReadIndex (§6.4), log compaction and chunked
// InstallSnapshot (§5, Figure 13).

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/status.h"
#include "node/consensus/progress.h"
#include "node/consensus/raft_log.h"
#include "node/consensus/types.h"

namespace dispotify::consensus {

enum class Role : uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };
const char* RoleName(Role r);

struct Config {
  NodeId id;
  // Election timeout is drawn uniformly from [election_tick, 2 * election_tick) ticks.
  int election_tick = 10;
  int heartbeat_tick = 1;
  bool pre_vote = true;
  bool check_quorum = true;
  size_t max_entries_per_append = 512;
  size_t max_bytes_per_append = 1 << 20;
  size_t max_inflight_appends = 256;  // pipelined AppendEntries per follower in replicate state
  uint64_t snapshot_chunk_bytes = 1 << 20;
  uint64_t random_seed = 1;  // all randomness (election timeouts) derives from this seed
  // This server's incarnation (types.h, "Incarnations"), sent with every message; "" = unknown.
  std::string node_uuid;
};

// What the core restarts from: what storage recovered. A brand-new cluster starts from an empty
// log and a snapshot at index 0 whose conf lists the initial members.
struct RestartState {
  HardState hard_state;
  SnapshotMeta snapshot;
  std::vector<Entry> entries;  // contiguous, starting at snapshot.index + 1
  LogIndex applied;            // the state machine's last applied index (>= snapshot.index)
};

// The durable state of a member of a brand-new cluster. The initial configuration goes into the
// log itself (an AddLearner + Promote pair per member, term 1, committed, identical on every
// initial member), not only into a snapshot: a member added later learns the configuration it
// joins by replicating those entries. (etcd bootstraps the same way.)
// Persist it (log entries and hard state) before building the core from it.
// `uuids` gives members' incarnations; give one only for a one-member bootstrap (a member of a
// multi-member one knows only its own, and the entries must be identical on every member).
RestartState BootstrapState(const std::map<NodeId, std::string>& initial_members,
                            const std::map<NodeId, std::string>& uuids = {});

// Recovery from the loss of a quorum (etcd's --force-new-cluster): the state `restart` becomes
// when this server, `self`, goes on alone. Every entry it holds counts as committed (the entries
// it never saw committed may or may not have been: keeping them is the better guess), and entries
// of a new term, after them, remove every other member (and promote `self` if it was a learner).
// The caller persists the entries past the old last index and the hard state, then builds the
// core from the result: a group of one voter, which elects itself. Only ever on the one survivor
// a person chose; the other members must come back as new, empty members.
// FailedPrecondition when `self` is not a member of the configuration the log ends with.
Result<RestartState> ForceNewClusterState(RestartState restart, NodeId self);

struct ReadState {
  uint64_t request_id = 0;
  LogIndex index;  // serve the read once the state machine applied at least this index
  Status status;   // not OK: the read failed (e.g. the leader was deposed); retry elsewhere
};

// A received chunk of a snapshot, to be written at `offset` of the snapshot being received.
struct SnapshotChunk {
  SnapshotMeta meta;
  uint64_t offset = 0;
  std::string data;
  bool done = false;
};

// The core's output. Ordering rules for the driver:
//  1. Persist, in order: snapshot_chunks; then, if `snapshot` is set, finish that snapshot, restore
//     the state machine from it and reset the log store past snapshot->index; then hard_state;
//     then append `entries` (entries[0].index may be <= the stored last index: truncate from
//     it first). Sync before step 2.
//  2. Send `messages` (a message may depend on step 1 being durable).
//  3. Apply `committed` in order; then answer `read_states` whose index is applied.
//  4. Call Advance(ready) with this same Ready.
struct Ready {
  std::vector<SnapshotChunk> snapshot_chunks;
  std::optional<SnapshotMeta> snapshot;
  std::optional<HardState> hard_state;
  std::vector<Entry> entries;
  std::vector<Message> messages;
  std::vector<Entry> committed;
  std::vector<ReadState> read_states;
  // Soft state, for metrics and client redirection; not persisted.
  Role role = Role::kFollower;
  NodeId leader;
  Term term;

  bool MustSync() const { return hard_state.has_value() || !entries.empty() || snapshot.has_value(); }
};

struct Proposal {
  LogIndex index;
  Term term;  // if the entry applied at `index` has another term, the proposal was lost
};

class Raft {
 public:
  Raft(Config config, RestartState restart);

  void Tick();
  void Step(const Message& m);

  Result<Proposal> Propose(std::string data);
  Result<Proposal> ProposeConfChange(const ConfChange& cc);
  Status TransferLeadership(NodeId target);
  // Linearizable read barrier: a ReadState with this id comes out of a later Ready.
  Status ReadIndex(uint64_t request_id);
  // Starts an election now (used to bootstrap a fresh one-node cluster quickly and by tests).
  void Campaign();

  bool HasReady() const;
  Ready GetReady();
  void Advance(const Ready& rd);

  // The state machine holds a snapshot covering [1, index] (index <= applied): drop that prefix.
  void Compact(LogIndex index);
  // The transport could not deliver to `peer`: stop pipelining to it and probe.
  void ReportUnreachable(NodeId peer);
  // The driver could not read the snapshot the core asked it to send to `peer`.
  void ReportSnapshotFailure(NodeId peer);

  NodeId id() const { return cfg_.id; }
  Role role() const { return role_; }
  Term term() const { return term_; }
  NodeId leader() const { return leader_; }
  NodeId vote() const { return vote_; }
  LogIndex commit_index() const { return log_.committed(); }
  LogIndex applied_index() const { return log_.applied(); }
  LogIndex last_index() const { return log_.last_index(); }
  const RaftLog& log() const { return log_; }
  const ConfState& conf() const { return conf_; }
  const SnapshotMeta& snapshot_meta() const { return log_.snapshot(); }
  // Leader only: replication progress of each member (empty otherwise).
  const std::map<NodeId, Progress>& progress() const { return progress_; }
  NodeId transfer_target() const { return transfer_target_; }
  // True when this server was removed from the configuration by a committed entry.
  bool removed() const { return removed_; }
  // Messages refused so far because the sender's incarnation is not the configuration's.
  uint64_t incarnation_refusals() const { return incarnation_refusals_; }
  // Per member whose messages are being refused, the incarnation they carry (a member leaves
  // this map as soon as one of its messages is accepted again).
  const std::map<NodeId, std::string>& refused_incarnations() const { return refused_incarnations_; }
  // This server is in the configuration as itself (its own incarnation, or an unknown one).
  bool IsSelfIncarnation() const { return conf_.IncarnationMatches(cfg_.id, cfg_.node_uuid); }

  // Checks every local invariant; aborts on violation. Called from tests and debug builds.
  void CheckInvariants() const;

 private:
  // Role transitions.
  void BecomeFollower(Term term, NodeId leader);
  void BecomePreCandidate();
  void BecomeCandidate();
  void BecomeLeader();
  void StartElection(bool pre_vote, bool transfer);
  void ResetTimers();

  // Step dispatch per role and message.
  void StepLeader(const Message& m);
  void StepCandidate(const Message& m);
  void StepFollower(const Message& m);
  void HandleRequestVote(const Message& m);
  void HandleAppendEntries(const Message& m);
  void HandleInstallSnapshot(const Message& m);
  void HandleAppendResponse(const Message& m);
  void HandleSnapshotResponse(const Message& m);
  void HandleVoteResponse(const Message& m);

  // Leader replication.
  void BroadcastAppend();
  void BroadcastHeartbeat();
  bool SendAppend(NodeId to, bool allow_empty);
  void SendSnapshotChunk(NodeId to);
  void SendHeartbeat(NodeId to);
  void MaybeCommit();
  void MaybeSendTimeoutNow(NodeId peer);
  void AbortTransfer();
  void MaybeForgetRemoved(NodeId peer);
  void AdvanceReads(NodeId from, uint64_t seq);
  void FailPendingReads(const Status& why);

  // Membership.
  void AppendEntriesLocally(std::vector<Entry> entries);
  void RefreshConfFromLog();
  void SyncProgressWithConf();
  bool CommittedEntryInCurrentTerm() const;
  bool QuorumActive();

  void Send(Message m);
  // A voter whose configuration entry belongs to another incarnation of its id (it came back with
  // an empty disk) must not campaign: it would stand for a log it no longer holds.
  bool Promotable() const { return conf_.IsVoter(cfg_.id) && !removed_ && IsSelfIncarnation(); }
  // Step's incarnation check: true (and counted) when `m` must be dropped.
  bool RefuseIncarnation(const Message& m);
  HardState CurrentHardState() const { return {term_, vote_, log_.committed()}; }

  Config cfg_;
  std::mt19937_64 rng_;

  Role role_ = Role::kFollower;
  Term term_;
  NodeId vote_;
  NodeId leader_;
  RaftLog log_;
  ConfState conf_;  // the latest configuration in the log (or the snapshot's)
  bool removed_ = false;
  uint64_t incarnation_refusals_ = 0;
  std::map<NodeId, std::string> refused_incarnations_;

  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_timeout_ = 0;

  // Candidate / pre-candidate.
  std::map<NodeId, bool> votes_;

  // Leader.
  std::map<NodeId, Progress> progress_;
  NodeId transfer_target_;
  int transfer_elapsed_ = 0;
  uint64_t read_seq_ = 0;  // heartbeat round counter for ReadIndex
  struct PendingRead {
    uint64_t request_id;
    LogIndex index;
    uint64_t seq;
  };
  std::deque<PendingRead> pending_reads_;

  // Follower receiving a snapshot.
  std::optional<SnapshotMeta> receiving_snapshot_;
  uint64_t receiving_offset_ = 0;

  // Output accumulated until the next GetReady().
  bool pending_broadcast_ = false;  // new entries to replicate: one broadcast per Ready batches them
  std::vector<Message> msgs_;
  std::vector<SnapshotChunk> chunks_;
  std::optional<SnapshotMeta> pending_snapshot_install_;
  std::vector<ReadState> read_states_;
  HardState prev_hard_state_;
  Role prev_role_ = Role::kFollower;
  NodeId prev_leader_;
};

}  // namespace dispotify::consensus
