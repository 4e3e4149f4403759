#pragma once
// The leader's background replication work: bring every file to R verified copies on its
// placement nodes, replace corrupt or missing copies, rebalance when members join or leave or R
// changes, and trim copies that are no longer wanted — only once every placement node holds a
// verified copy, so a file never drops below its target while it moves.
//
// A pass (every `interval`, on the leader only) walks the catalog and plans, per song:
//   targets  = the first R' = min(R, placement nodes) nodes clockwise on the ring of the members
//              that are not draining (a draining member's copies are extras: they move away) and
//              not down for longer than the node's dead_after_s (their files get a copy elsewhere
//              meanwhile; when they return, they are targets again and the extras are trimmed);
//   copy     a target without a healthy copy gets one: it pulls it (PullFile, verified against the
//            song's size and SHA-256) from a healthy copy on an alive node; then the leader records
//            it healthy (a Raft command);
//   trim     when every target is healthy: copies on other nodes are dropped from the catalog, then
//            deleted from their node (conditional on the SHA-256). Records of nodes that left the
//            cluster are dropped. Bad (corrupt/missing) copies off the targets are dropped at once.
// Copies run on `concurrency` worker threads and are throttled by a token bucket of
// `bytes_per_second` (0: unlimited): a node that joins receives its share progressively, and the
// serving path keeps its disk and network. A pass plans at most `max_tasks_per_pass` tasks and
// resumes the walk where it stopped, so a large backlog is worked through in bounded steps.
//
// Work found on the same file twice is not duplicated (one task per file at a time).
// Thread-safe: Start/Stop from the composition root; Stats from any thread.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/ids.h"
#include "common/status.h"
#include "node/catalog/metadata_store.h"
#include "node/catalog/proposer.h"

namespace dispotify::replication {

class PeerClient;

struct RepairOptions {
  NodeId self;
  std::chrono::milliseconds interval{2000};
  uint64_t bytes_per_second = 64ull << 20;
  int concurrency = 2;
  size_t max_tasks_per_pass = 256;
  // Written to the catalog by the first leader that finds no replication factor there.
  uint32_t initial_replication_factor = 3;
};

struct RepairDeps {
  catalog::MetadataStore* store = nullptr;
  catalog::Proposer* proposer = nullptr;
  PeerClient* peers = nullptr;
  std::function<std::vector<NodeId>()> members;
  // The members that may hold copies (members minus draining ones and ones down for long);
  // null: all members.
  std::function<std::vector<NodeId>()> placement_nodes;
  std::function<uint32_t()> replication_factor;
  std::function<bool()> is_leader;
};

struct RepairStats {
  uint64_t passes = 0;
  // Songs with fewer healthy copies on their targets than min(R, members): also those whose
  // placement shrank below R (members draining or down for long). Last full walk.
  uint64_t under_replicated = 0;
  uint64_t unavailable = 0;  // songs with no healthy copy on an alive node (last full walk)
  uint64_t queued = 0;       // tasks waiting or running
  uint64_t copies_made = 0;
  uint64_t copies_trimmed = 0;
  uint64_t copy_failures = 0;
  uint64_t bytes_copied = 0;
};

class RepairManager {
 public:
  RepairManager(RepairOptions options, RepairDeps deps);
  ~RepairManager();
  RepairManager(const RepairManager&) = delete;
  RepairManager& operator=(const RepairManager&) = delete;

  void Start();
  void Stop();
  RepairStats Stats() const;

 private:
  struct Task {
    enum class Kind : uint8_t { kCopy, kTrim, kForget };
    Kind kind = Kind::kCopy;
    std::string file_id;
    NodeId node;    // copy: the target; trim/forget: the holder
    NodeId source;  // copy only
    uint64_t size = 0;
    std::string sha256;
  };

  void Loop();
  // Plans up to max_tasks_per_pass tasks and runs them; returns when they are done.
  void RunPass();
  Status PlanSong(const catalog::Song& song, const std::vector<NodeId>& members,
                  const std::vector<NodeId>& placement, size_t r, size_t wanted, std::vector<Task>* tasks,
                  bool* under, bool* unavailable);
  void Execute(const Task& task);
  void Throttle(uint64_t bytes);

  const RepairOptions options_;
  const RepairDeps deps_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  RepairStats stats_;
  std::string cursor_;  // file_id after which the next pass resumes (loop thread only)
  uint64_t walk_under_ = 0;
  uint64_t walk_unavailable_ = 0;
  bool factor_checked_ = false;

  std::mutex throttle_mu_;
  std::chrono::steady_clock::time_point throttle_next_{};

  std::thread thread_;
};

}  // namespace dispotify::replication
