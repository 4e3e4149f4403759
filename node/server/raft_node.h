#pragma once
// The driver loop: the one thread that owns the consensus core and turns its output into I/O.
//
// Threads. Any thread (gRPC handlers, transport threads, the ticker) only appends to the inbox
// (a mutex + condvar) and returns; callbacks are later run on the loop thread, so they must be
// short (fulfil a promise, complete a gRPC call). The loop thread alone touches the core, the
// stores and the state machine's write side:
//
//   wait for the inbox or the next tick -> Tick / Step / Propose / ReadIndex / Transfer ...
//   while core.HasReady():
//     rd = GetReady()
//     1. persist: snapshot chunks; installed snapshot (restore the state machine, reset or trim
//        the log store); hard state if term/vote changed; entries appended, then ONE Sync for
//        the whole Ready (group commit: every proposal drained together shares one fdatasync)
//     2. send rd.messages (InstallSnapshot chunks are filled from the snapshot store here)
//     3. apply rd.committed in order, complete the proposals they answer (index AND term), then
//        complete reads whose index is applied
//     4. Advance(rd); take a snapshot every snapshot_entries applied entries
//
// Failure policy: any storage error stops the loop (exit code 5) without touching the core
// again, because continuing could acknowledge what is not durable. A committed removal of this
// server marks the data directory removed and stops the loop (exit code 4).
//
// The commit index in the hard state is persisted lazily (with term/vote changes, and at most
// once a second otherwise): it is only a hint for restart, and saving it on every Ready would
// add a second fsync to each batch. It is always clamped to entries that are already durable and
// not about to be truncated, so a crash never makes an uncommitted entry look committed.
//
// Bootstrap: a fresh data directory (no snapshot, empty log, zero hard state) started with
// initial members writes consensus::BootstrapState: the initial configuration as committed log
// entries, identical on every initial member (so only a one-member bootstrap records its
// member's incarnation; consensus/types.h, "Incarnations"). A node started with `join` stays with an empty
// configuration until the leader's log (or snapshot) tells it the members.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/file_system.h"
#include "common/ids.h"
#include "common/status.h"
#include "node/consensus/raft.h"
#include "node/consensus/state_machine.h"
#include "node/storage/log_store.h"
#include "node/storage/snapshot_store.h"
#include "node/storage/stable_store.h"
#include "node/transport/transport.h"

namespace dispotify::server {

// Process exit codes shared by the node, its tests and scripts.
inline constexpr int kExitOk = 0;
inline constexpr int kExitBadConfig = 2;
inline constexpr int kExitForeignDataDir = 3;
inline constexpr int kExitRemoved = 4;
inline constexpr int kExitStorageError = 5;

// What the loop reports for metrics; implemented in metrics.cc so that no Prometheus header
// reaches this one. Called on the loop thread.
class RaftObserver {
 public:
  virtual ~RaftObserver() = default;
  virtual void OnState(consensus::Role role, Term term, NodeId leader, LogIndex commit, LogIndex applied) = 0;
  virtual void OnLeaderChange() = 0;
  // `messages` more Raft messages were refused for their sender's incarnation.
  virtual void OnIncarnationRefusals(uint64_t messages) { (void)messages; }
  virtual void ObserveFsync(double seconds) = 0;
  virtual void ObserveProposal(double seconds) = 0;
};

struct RaftNodeOptions {
  NodeId id;
  // This data directory's incarnation (node/storage/identity.h): sent with every Raft message and
  // recorded in the initial configuration of a one-member bootstrap. "" = unknown.
  std::string node_uuid;
  std::string data_dir;  // marked removed when a committed change removes this server
  int tick_ms = 50;
  int election_ticks = 6;
  int heartbeat_ticks = 1;
  uint64_t snapshot_entries = 100000;
  uint64_t random_seed = 0;  // 0: derived from the id and the clock
  // Used only on a fresh data directory: the initial members (all voters), unless `join`.
  consensus::ConfState initial_conf;
  bool join = false;
  // Addresses the transport should know besides the configuration's (a joining server must reach
  // the leader before it learns the configuration).
  std::map<NodeId, std::string> seed_addresses;
  // Not empty: quorum-loss recovery. This server goes on alone from its data as the only member
  // (consensus::ForceNewClusterState), once per token: the token is recorded in the data
  // directory, and a restart with the same one resumes normally.
  std::string force_new_cluster;
};

struct RaftNodeDeps {
  FileSystem* fs = nullptr;
  storage::LogStore* log = nullptr;
  storage::StableStore* stable = nullptr;
  storage::SnapshotStore* snapshots = nullptr;
  transport::Transport* transport = nullptr;
  consensus::StateMachine* state_machine = nullptr;
  RaftObserver* observer = nullptr;  // optional
};

// A consistent copy of the node's state, refreshed by the loop after every Ready.
struct NodeStatus {
  NodeId id;
  std::string node_uuid;  // this server's incarnation
  consensus::Role role = consensus::Role::kFollower;
  Term term;
  NodeId leader;
  LogIndex commit;
  LogIndex applied;
  LogIndex snapshot_index;
  consensus::ConfState conf;
  std::map<NodeId, LogIndex> match;  // leader only
  // Members whose messages are refused: the incarnation they carry (not the configuration's).
  std::map<NodeId, std::string> refused_incarnations;
  bool running = false;
};

// The voter other than `st.id` with the highest match index in the leader's view (the best
// target of a leadership transfer), or kNoNode when there is none.
NodeId MostUpToDateVoter(const NodeStatus& st);

class RaftNode {
 public:
  // status: OK once the entry is applied (then the state machine's own result status); NotLeader
  // (with the hint) when refused; CommitUnknown when leadership was lost before the outcome was
  // known; Retry when the entry was replaced by another leader's.
  using ProposeDone = std::function<void(const Status& status, LogIndex index, std::string value)>;
  // status OK: the state machine has applied at least `read_index`; a read of it now is
  // linearizable.
  using ReadDone = std::function<void(const Status& status, LogIndex read_index)>;
  using StatusDone = std::function<void(const Status& status)>;
  // Called once on the loop thread when the loop stops by itself (removal, storage error).
  using ExitHandler = std::function<void(int exit_code)>;

  // Recovers from the stores (restoring the state machine from the latest snapshot) and builds
  // the core. Does not start the loop.
  static Result<std::unique_ptr<RaftNode>> Open(RaftNodeOptions options, RaftNodeDeps deps);
  ~RaftNode();
  RaftNode(const RaftNode&) = delete;
  RaftNode& operator=(const RaftNode&) = delete;

  void Start(ExitHandler on_exit = nullptr);
  // Stops the loop and fails what is pending (Unavailable). Idempotent. Never from a callback.
  void Stop();
  // kExitOk while running or after Stop(); otherwise why the loop stopped by itself.
  int exit_code() const;

  // Thread-safe entry points.
  void Step(consensus::Message&& m);
  void ReportUnreachable(NodeId peer);
  void Propose(std::string data, ProposeDone done);
  void ProposeConfChange(const consensus::ConfChange& cc, ProposeDone done);
  void ReadIndex(ReadDone done);
  void TransferLeadership(NodeId target, StatusDone done);
  NodeStatus status() const;

 private:
  struct PendingProposal {
    Term term;
    ProposeDone done;
    std::chrono::steady_clock::time_point start;
  };
  struct NewProposal {
    bool conf_change = false;
    std::string data;
    consensus::ConfChange cc;
    ProposeDone done;
    std::chrono::steady_clock::time_point start;
  };
  struct Inbox {
    std::vector<consensus::Message> messages;
    std::vector<NodeId> unreachable;
    std::vector<NewProposal> proposals;
    std::vector<ReadDone> reads;
    std::vector<std::pair<NodeId, StatusDone>> transfers;
    bool empty() const {
      return messages.empty() && unreachable.empty() && proposals.empty() && reads.empty() &&
             transfers.empty();
    }
  };

  RaftNode(RaftNodeOptions options, RaftNodeDeps deps);
  Status Recover(consensus::RestartState* restart);

  // Any thread; takes mu_. False (nothing added) once the node is stopping.
  bool Enqueue(const std::function<void(Inbox&)>& add);

  // Loop thread only.
  void Run();
  void HandleInbox(Inbox& in);
  Status ProcessReadies();
  Status Persist(const consensus::Ready& rd);
  Status InstallSnapshot(const consensus::SnapshotMeta& meta);
  Status SaveHardState(consensus::HardState hs);
  void SendMessages(std::vector<consensus::Message> msgs, std::vector<NodeId>* snapshot_failures);
  Status ApplyCommitted(const std::vector<consensus::Entry>& committed);
  void CompleteReads();
  Status MaybeSnapshot(bool force);
  // Recover()'s last part when options_.force_new_cluster is set.
  Status ForceNewCluster(consensus::RestartState* restart);
  void FailProposals(const Status& why, LogIndex upto);
  void FailEverything(const Status& why);
  void RefreshPeers();
  void PublishStatus();
  Status MaybeSaveCommitHint();
  bool RemovalFinal(std::chrono::steady_clock::time_point now);
  // Logs (once per member and incarnation) and counts the messages the core refused.
  void ReportRefusals();

  const RaftNodeOptions options_;
  const RaftNodeDeps deps_;
  std::unique_ptr<consensus::Raft> raft_;  // loop thread only (and Open)

  // Loop-thread state.
  std::map<LogIndex, PendingProposal> proposals_;
  uint64_t next_read_id_ = 1;
  std::map<uint64_t, std::vector<ReadDone>> reads_in_flight_;  // one heartbeat round each
  std::multimap<LogIndex, ReadDone> reads_waiting_apply_;      // confirmed, waiting for apply
  consensus::ConfState applied_conf_;                          // membership as of the applied index
  uint64_t readies_ = 0;
  LogIndex snapshot_index_;
  consensus::HardState saved_hs_;
  std::chrono::steady_clock::time_point last_commit_save_;
  std::map<NodeId, std::string> known_addresses_;
  bool peers_published_ = false;
  NodeId last_leader_;
  consensus::Role last_role_ = consensus::Role::kFollower;
  Term last_term_;
  std::optional<std::chrono::steady_clock::time_point> removal_seen_;
  uint64_t reported_refusals_ = 0;
  std::map<NodeId, std::string> logged_refusals_;

  // Inbox and lifecycle.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Inbox inbox_;              // guarded by mu_
  bool stop_ = false;        // guarded by mu_
  int exit_code_ = kExitOk;  // guarded by mu_
  ExitHandler on_exit_;
  std::thread thread_;

  mutable std::mutex status_mu_;
  NodeStatus status_;  // guarded by status_mu_
};

}  // namespace dispotify::server
