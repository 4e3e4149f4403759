#pragma once
// A deterministic simulation of a Raft cluster: the real consensus core on simulated time, a
// simulated network (loss, delay, reordering, duplication, symmetric and one-way partitions) and
// in-memory storage that survives crash/restart except for writes that were never synced.
// Every node runs a list-append key-value state machine, so linearizability of writes and reads
// can be checked by the tests (ScyllaDB's randomized_nemesis_test is the model).
//
// The cluster checks the Raft safety properties after every event and fails the current test
// (GoogleTest ADD_FAILURE) with the seed when one breaks:
//   election safety, log matching, leader completeness, state machine safety.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "node/consensus/raft.h"

namespace dispotify::sim {

using consensus::Entry;
using consensus::Message;
using consensus::Raft;

struct NetworkOptions {
  double drop_rate = 0.0;
  double duplicate_rate = 0.0;
  int min_delay_ms = 1;
  int max_delay_ms = 5;  // random delay in [min, max] also reorders messages
};

struct SimOptions {
  int nodes = 3;
  uint64_t seed = 1;
  int tick_ms = 10;
  int election_tick = 10;
  int heartbeat_tick = 1;
  bool pre_vote = true;
  bool check_quorum = true;
  uint64_t snapshot_interval = 0;  // take a snapshot every N applied entries (0: never)
  uint64_t snapshot_chunk_bytes = 64;
  size_t max_entries_per_append = 64;
  // Every node has an incarnation ("n<id>-1"), recorded in the initial configuration (as an
  // operator adding each node with its node_uuid would). Off: incarnations unknown, unchecked.
  bool incarnations = false;
  NetworkOptions net;
};

// The state machine: each key holds the list of values appended to it, in log order.
using KvState = std::map<std::string, std::vector<std::string>>;
std::string EncodeAppend(const std::string& key, const std::string& value);

// What a node keeps on its "disk": survives crashes.
struct SimDisk {
  consensus::HardState hard_state;
  consensus::SnapshotMeta snapshot;
  std::string snapshot_data;
  std::vector<Entry> log;  // entries after snapshot.index, contiguous
  // A snapshot being received in chunks.
  std::optional<consensus::SnapshotMeta> receiving;
  std::string receiving_data;
};

struct SimNode {
  NodeId id;
  std::string uuid;  // its incarnation; a wipe gives it a new one
  bool up = true;
  std::unique_ptr<Raft> raft;
  SimDisk disk;
  KvState kv;
  LogIndex applied;
  uint64_t applied_since_snapshot = 0;
  uint64_t restarts = 0;
};

class SimCluster {
 public:
  explicit SimCluster(SimOptions options);
  ~SimCluster();

  uint64_t seed() const { return opts_.seed; }
  int64_t now_ms() const { return now_ms_; }

  // Advances simulated time, delivering messages and ticking every live node.
  void Run(int ms);
  // Runs until pred() holds (checked every millisecond); false after max_ms.
  bool RunUntil(const std::function<bool()>& pred, int max_ms);

  // The live leader with the highest term, or kNoNode.
  NodeId Leader() const;
  NodeId WaitForLeader(int max_ms = 10000);
  // Every live member has applied everything the leader committed.
  bool Converged() const;
  bool WaitConverged(int max_ms = 20000);

  // Appends `value` to `key` through the current leader and waits for the outcome.
  // Returns true only if the write was acknowledged (applied at the leader with its term).
  bool Put(const std::string& key, const std::string& value, int max_ms = 5000);
  // Submits without waiting; the result is recorded in acked_ when it applies.
  std::optional<uint64_t> SubmitPut(NodeId at, const std::string& key, const std::string& value);
  // Linearizable read of `key` through ReadIndex on node `at`. nullopt when the read failed.
  std::optional<std::vector<std::string>> Read(NodeId at, const std::string& key, int max_ms = 3000);

  // Faults.
  void Partition(const std::vector<std::set<NodeId>>& groups);  // no traffic between groups
  void BlockLink(NodeId from, NodeId to);                       // one way
  void Heal();
  // Drops every message for which `drop` returns true (nullptr: none); also sees every message.
  void SetDropFilter(std::function<bool(const Message&)> drop) { drop_filter_ = std::move(drop); }
  void SetNetwork(const NetworkOptions& net) { opts_.net = net; }
  // Crash: the node stops; what it synced survives.
  void Crash(NodeId id);
  // The node crashes while writing its next Ready: nothing of it is persisted or sent.
  void CrashDuringNextWrite(NodeId id) { crash_on_next_ready_.insert(id); }
  void CancelPendingCrashes() { crash_on_next_ready_.clear(); }
  void Restart(NodeId id);
  // Adds a fresh node that knows no configuration; the leader must add it as a learner.
  void AddFreshNode(NodeId id, std::string uuid = "");
  // The node loses its disk and comes back empty (knowing no configuration) as incarnation
  // `uuid`, like a pod whose volume was replaced.
  void Wipe(NodeId id, std::string uuid);

  SimNode& node(NodeId id) { return *nodes_.at(id); }
  const SimNode& node(NodeId id) const { return *nodes_.at(id); }
  Raft& raft(NodeId id) { return *nodes_.at(id)->raft; }
  std::vector<NodeId> ids() const;
  std::vector<NodeId> live_ids() const;

  // Writes acknowledged to a client: key -> values acknowledged.
  const std::vector<std::pair<std::string, std::string>>& acked() const { return acked_; }
  // Checks that every acknowledged write is in the state of every live, caught-up member, that
  // all of them hold the same state, and that every read returned a prefix of that state.
  void CheckAckedWritesPresent();
  // Checks all safety properties now (also done after every event).
  void CheckSafety();
  int failures() const { return failures_; }
  uint64_t messages_delivered() const { return delivered_; }

 private:
  struct InFlight {
    int64_t at_ms;
    uint64_t seq;
    Message msg;
    bool operator>(const InFlight& o) const { return at_ms != o.at_ms ? at_ms > o.at_ms : seq > o.seq; }
  };
  struct PendingWrite {
    NodeId node;
    LogIndex index;
    Term term;
    std::string key;
    std::string value;
  };
  struct PendingRead {
    NodeId node;
    std::string key;
    std::optional<LogIndex> index;
    bool failed = false;
    bool done = false;
    std::vector<std::string> result;
  };

  std::unique_ptr<Raft> MakeRaft(SimNode& n);
  void Process(NodeId id);  // drains Ready for one node
  void Deliver(Message m);
  void Enqueue(Message m);
  void Step1ms();
  void ApplyEntry(SimNode& n, const Entry& e);
  void MaybeSnapshot(SimNode& n);
  void Fail(const std::string& what);
  bool Blocked(NodeId from, NodeId to) const;

  SimOptions opts_;
  std::mt19937_64 rng_;
  int64_t now_ms_ = 0;
  uint64_t seq_ = 0;
  uint64_t delivered_ = 0;
  std::priority_queue<InFlight, std::vector<InFlight>, std::greater<>> net_;
  std::map<NodeId, std::unique_ptr<SimNode>> nodes_;
  std::set<std::pair<NodeId, NodeId>> blocked_;
  std::function<bool(const Message&)> drop_filter_;

  // Checkers' records.
  std::map<Term, NodeId> leader_of_term_;
  struct CommittedEntry {
    Entry entry;
    Term commit_term;  // term of the leader seen committing it (max if only seen applied)
  };
  std::map<LogIndex, CommittedEntry> committed_;
  LogIndex recorded_commit_;             // committed_ holds leaders' commits up to here
  std::set<Term> completeness_checked_;  // leaders already checked, by term
  std::vector<std::pair<std::string, std::string>> acked_;
  std::map<uint64_t, PendingWrite> pending_writes_;
  std::map<uint64_t, PendingRead> pending_reads_;
  std::map<uint64_t, bool> write_outcomes_;                              // request -> acknowledged?
  std::vector<std::pair<std::string, std::vector<std::string>>> reads_;  // successful reads
  std::set<NodeId> crash_on_next_ready_;
  uint64_t next_request_ = 1;
  int failures_ = 0;
};

}  // namespace dispotify::sim
