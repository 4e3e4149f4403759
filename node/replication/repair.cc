#include "node/replication/repair.h"

#include <algorithm>
#include <map>
#include <set>

#include "common/logging.h"
#include "node/replication/peer_client.h"
#include "node/replication/placement.h"

namespace dispotify::replication {
namespace {

constexpr std::chrono::milliseconds kCommandTimeout{5000};
constexpr uint32_t kWalkPage = 500;

}  // namespace

RepairManager::RepairManager(RepairOptions options, RepairDeps deps)
    : options_(options), deps_(std::move(deps)) {}

RepairManager::~RepairManager() {
  Stop();
}

void RepairManager::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void RepairManager::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

RepairStats RepairManager::Stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void RepairManager::Loop() {
  while (true) {
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, options_.interval, [this] { return stop_; });
      if (stop_) return;
    }
    if (!deps_.is_leader()) {
      factor_checked_ = false;  // the next leadership re-checks
      continue;
    }
    RunPass();
  }
}

void RepairManager::RunPass() {
  if (!factor_checked_) {
    auto factor = deps_.store->GetSetting("replication_factor");
    if (factor.ok()) {
      factor_checked_ = true;
      if (!factor->has_value() && options_.initial_replication_factor != catalog::kDefaultReplicationFactor) {
        auto r = deps_.proposer->Propose(
            catalog::SetReplicationFactorCmd{options_.initial_replication_factor}, kCommandTimeout);
        if (!r.ok()) factor_checked_ = false;
      }
    }
  }
  std::vector<NodeId> members = deps_.members();
  if (members.empty()) return;
  std::vector<NodeId> placement = deps_.placement_nodes ? deps_.placement_nodes() : members;
  if (placement.empty()) placement = members;  // every member draining: nowhere to go
  const size_t r = std::min<size_t>(deps_.replication_factor(), placement.size());
  const size_t wanted = std::min<size_t>(deps_.replication_factor(), members.size());

  std::vector<Task> tasks;
  bool walk_done = false;
  while (tasks.size() < options_.max_tasks_per_pass) {
    catalog::ListRequest req;
    req.limit = kWalkPage;
    req.after_file_id = cursor_;
    auto page = deps_.store->ListSongs(req);
    if (!page.ok()) {
      DLOG_WARN << "repair: cannot list the catalog: " << page.status().ToString();
      return;
    }
    bool full = false;
    for (const auto& song : page->items) {
      cursor_ = song.file_id;
      bool under = false;
      bool unavailable = false;
      Status s = PlanSong(song, members, placement, r, wanted, &tasks, &under, &unavailable);
      if (!s.ok()) DLOG_WARN << "repair: " << song.file_id << ": " << s.ToString();
      walk_under_ += under ? 1 : 0;
      walk_unavailable_ += unavailable ? 1 : 0;
      if (tasks.size() >= options_.max_tasks_per_pass) {
        full = true;
        break;
      }
    }
    if (!full && page->next_after.empty()) {
      walk_done = true;
      break;
    }
  }
  {
    std::lock_guard lock(mu_);
    ++stats_.passes;
    stats_.queued = tasks.size();
    if (walk_done) {
      stats_.under_replicated = walk_under_;
      stats_.unavailable = walk_unavailable_;
    }
  }
  if (walk_done) {
    cursor_.clear();
    walk_under_ = 0;
    walk_unavailable_ = 0;
  }
  if (tasks.empty()) return;

  // Copies and trims of one pass, on `concurrency` threads.
  std::atomic<size_t> next{0};
  std::vector<std::thread> workers;
  const int n = std::max(1, std::min<int>(options_.concurrency, static_cast<int>(tasks.size())));
  for (int i = 0; i < n; ++i) {
    workers.emplace_back([&] {
      while (true) {
        size_t k = next.fetch_add(1);
        if (k >= tasks.size()) return;
        {
          std::lock_guard lock(mu_);
          if (stop_) return;
        }
        if (!deps_.is_leader()) return;
        Execute(tasks[k]);
        std::lock_guard lock(mu_);
        if (stats_.queued > 0) --stats_.queued;
      }
    });
  }
  for (auto& w : workers) w.join();
  std::lock_guard lock(mu_);
  stats_.queued = 0;
}

Status RepairManager::PlanSong(const catalog::Song& song, const std::vector<NodeId>& members,
                               const std::vector<NodeId>& placement, size_t r, size_t wanted,
                               std::vector<Task>* tasks, bool* under, bool* unavailable) {
  auto replicas = deps_.store->GetReplicas(song.file_id);
  if (!replicas.ok()) return replicas.status();
  const std::set<NodeId> member_set(members.begin(), members.end());
  PlacementRing ring(placement);
  const std::vector<NodeId> targets = ring.Placement(song.file_id, r);
  const std::set<NodeId> target_set(targets.begin(), targets.end());

  std::map<NodeId, catalog::ReplicaState> state;
  for (const auto& rep : *replicas) state[rep.node] = rep.state;
  auto healthy = [&](NodeId n) {
    auto it = state.find(n);
    return it != state.end() && it->second == catalog::ReplicaState::kHealthy;
  };

  // A source: a healthy copy on an alive member, preferring the targets (they stay).
  NodeId source = kNoNode;
  for (const auto& rep : *replicas) {
    if (rep.state != catalog::ReplicaState::kHealthy || !member_set.contains(rep.node)) continue;
    if (!deps_.peers->IsAlive(rep.node)) continue;
    if (source == kNoNode || (target_set.contains(rep.node) && !target_set.contains(source)))
      source = rep.node;
  }

  size_t healthy_targets = 0;
  for (NodeId t : targets) {
    if (healthy(t)) {
      ++healthy_targets;
      continue;
    }
    if (source == kNoNode || !deps_.peers->IsAlive(t)) continue;
    tasks->push_back(Task{Task::Kind::kCopy, song.file_id, t, source, song.size_bytes, song.sha256});
  }
  *under = healthy_targets < std::max(targets.size(), wanted);
  *unavailable = source == kNoNode;

  for (const auto& rep : *replicas) {
    if (target_set.contains(rep.node)) continue;
    if (!member_set.contains(rep.node)) {
      // The node left the cluster: its copy can no longer be reached or deleted; forget it once
      // the targets are whole (until then it documents where the data was).
      if (healthy_targets == targets.size() || rep.state != catalog::ReplicaState::kHealthy)
        tasks->push_back(Task{Task::Kind::kForget, song.file_id, rep.node, kNoNode, 0, song.sha256});
      continue;
    }
    // Extra copies go only when every target holds a verified one; bad copies go at once.
    if (rep.state == catalog::ReplicaState::kHealthy && healthy_targets < targets.size()) continue;
    if (!deps_.peers->IsAlive(rep.node)) continue;
    tasks->push_back(Task{Task::Kind::kTrim, song.file_id, rep.node, kNoNode, 0, song.sha256});
  }
  return Status::Ok();
}

void RepairManager::Throttle(uint64_t bytes) {
  if (options_.bytes_per_second == 0 || bytes == 0) return;
  std::chrono::steady_clock::time_point start;
  {
    std::lock_guard lock(throttle_mu_);
    const auto now = std::chrono::steady_clock::now();
    start = std::max(now, throttle_next_);
    throttle_next_ = start + std::chrono::microseconds(bytes * 1000000 / options_.bytes_per_second);
  }
  std::this_thread::sleep_until(start);
}

void RepairManager::Execute(const Task& task) {
  switch (task.kind) {
    case Task::Kind::kCopy: {
      Throttle(task.size);
      Status s = deps_.peers->PullFile(task.node, task.source, task.file_id, task.size, task.sha256,
                                       /*overwrite=*/true);
      if (!s.ok()) {
        DLOG_WARN << "repair: copying " << task.file_id << " from node " << task.source.value() << " to node "
                  << task.node.value() << " failed: " << s.ToString();
        std::lock_guard lock(mu_);
        ++stats_.copy_failures;
        return;
      }
      catalog::Replica replica{task.file_id, task.node, catalog::ReplicaState::kHealthy, 0};
      auto r = deps_.proposer->Propose(catalog::SetReplicaCmd{replica}, kCommandTimeout);
      if (!r.ok()) {
        DLOG_WARN << "repair: recording the copy of " << task.file_id << " on node " << task.node.value()
                  << " failed: " << r.status().ToString();
        if (r.status().code() == StatusCode::kNotFound) {
          (void)deps_.peers->DeleteFile(task.node, task.file_id, task.sha256);  // deleted meanwhile
        }
        return;
      }
      DLOG_INFO << "repair: copied " << task.file_id << " (" << task.size << " bytes) from node "
                << task.source.value() << " to node " << task.node.value();
      std::lock_guard lock(mu_);
      ++stats_.copies_made;
      stats_.bytes_copied += task.size;
      return;
    }
    case Task::Kind::kTrim:
    case Task::Kind::kForget: {
      // The record first: a reader never goes to a copy that is about to disappear, and a crash
      // between the two leaves only an unreferenced blob (the scrubber's to remove).
      auto r = deps_.proposer->Propose(catalog::RemoveReplicaCmd{task.file_id, task.node}, kCommandTimeout);
      if (!r.ok()) {
        DLOG_WARN << "repair: dropping the copy of " << task.file_id << " on node " << task.node.value()
                  << " failed: " << r.status().ToString();
        return;
      }
      if (task.kind == Task::Kind::kTrim) {
        Status s = deps_.peers->DeleteFile(task.node, task.file_id, task.sha256);
        if (!s.ok()) {
          DLOG_WARN << "repair: deleting " << task.file_id << " on node " << task.node.value()
                    << " failed (the scrubber will): " << s.ToString();
        }
      }
      std::lock_guard lock(mu_);
      ++stats_.copies_trimmed;
      return;
    }
  }
}

}  // namespace dispotify::replication
