#include "tests/sim/sim_cluster.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

namespace dispotify::sim {
namespace {

std::string EncodeKv(const KvState& kv) {
  std::string out;
  auto put = [&out](const std::string& s) {
    out += std::to_string(s.size());
    out += ':';
    out += s;
  };
  for (const auto& [k, values] : kv) {
    put(k);
    put(std::to_string(values.size()));
    for (const auto& v : values) put(v);
  }
  return out;
}

KvState DecodeKv(const std::string& data) {
  KvState kv;
  size_t pos = 0;
  auto get = [&]() {
    size_t colon = data.find(':', pos);
    size_t len = std::stoul(data.substr(pos, colon - pos));
    std::string s = data.substr(colon + 1, len);
    pos = colon + 1 + len;
    return s;
  };
  while (pos < data.size()) {
    std::string key = get();
    size_t n = std::stoul(get());
    auto& values = kv[key];
    for (size_t i = 0; i < n; ++i) values.push_back(get());
  }
  return kv;
}

bool DecodeAppend(const std::string& data, std::string* key, std::string* value) {
  size_t sep = data.find('\0');
  if (sep == std::string::npos) return false;
  *key = data.substr(0, sep);
  *value = data.substr(sep + 1);
  return true;
}

}  // namespace

std::string EncodeAppend(const std::string& key, const std::string& value) {
  std::string out = key;
  out.push_back('\0');
  out += value;
  return out;
}

SimCluster::SimCluster(SimOptions options) : opts_(options), rng_(options.seed) {
  std::map<NodeId, std::string> members;
  std::map<NodeId, std::string> uuids;
  for (int i = 1; i <= opts_.nodes; ++i) {
    members[NodeId(i)] = "sim";
    if (opts_.incarnations) uuids[NodeId(i)] = "n" + std::to_string(i) + "-1";
  }
  const consensus::RestartState boot = consensus::BootstrapState(members, uuids);
  for (int i = 1; i <= opts_.nodes; ++i) {
    auto n = std::make_unique<SimNode>();
    n->id = NodeId(i);
    if (opts_.incarnations) n->uuid = uuids[NodeId(i)];
    n->disk.hard_state = boot.hard_state;
    n->disk.log = boot.entries;
    n->raft = MakeRaft(*n);
    nodes_[n->id] = std::move(n);
  }
}

SimCluster::~SimCluster() = default;

std::unique_ptr<Raft> SimCluster::MakeRaft(SimNode& n) {
  consensus::Config cfg;
  cfg.id = n.id;
  cfg.election_tick = opts_.election_tick;
  cfg.heartbeat_tick = opts_.heartbeat_tick;
  cfg.pre_vote = opts_.pre_vote;
  cfg.check_quorum = opts_.check_quorum;
  cfg.max_entries_per_append = opts_.max_entries_per_append;
  cfg.snapshot_chunk_bytes = opts_.snapshot_chunk_bytes;
  cfg.random_seed = opts_.seed * 7919 + n.restarts;
  cfg.node_uuid = n.uuid;
  consensus::RestartState rs;
  rs.hard_state = n.disk.hard_state;
  rs.snapshot = n.disk.snapshot;
  rs.entries = n.disk.log;
  rs.applied = n.disk.snapshot.index;
  n.kv = DecodeKv(n.disk.snapshot_data);
  n.applied = n.disk.snapshot.index;
  n.applied_since_snapshot = 0;
  return std::make_unique<Raft>(cfg, std::move(rs));
}

std::vector<NodeId> SimCluster::ids() const {
  std::vector<NodeId> out;
  for (const auto& [id, n] : nodes_) out.push_back(id);
  return out;
}

std::vector<NodeId> SimCluster::live_ids() const {
  std::vector<NodeId> out;
  for (const auto& [id, n] : nodes_) {
    if (n->up) out.push_back(id);
  }
  return out;
}

void SimCluster::Fail(const std::string& what) {
  if (++failures_ > 5) return;  // the first failures tell the story
  ADD_FAILURE() << "seed " << opts_.seed << " at t=" << now_ms_ << "ms: " << what
                << " (rerun alone with DISPOTIFY_SIM_SEED=" << opts_.seed << ")";
}

// ---------------------------------------------------------------------------------------------
// Network

bool SimCluster::Blocked(NodeId from, NodeId to) const {
  return blocked_.contains({from, to});
}

void SimCluster::Enqueue(Message m) {
  if (Blocked(m.from, m.to)) return;
  if (drop_filter_ && drop_filter_(m)) return;
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  if (opts_.net.drop_rate > 0 && coin(rng_) < opts_.net.drop_rate) return;
  std::uniform_int_distribution<int> delay(opts_.net.min_delay_ms, opts_.net.max_delay_ms);
  if (opts_.net.duplicate_rate > 0 && coin(rng_) < opts_.net.duplicate_rate) {
    net_.push(InFlight{now_ms_ + delay(rng_), seq_++, m});
  }
  net_.push(InFlight{now_ms_ + delay(rng_), seq_++, std::move(m)});
}

void SimCluster::Deliver(Message m) {
  auto it = nodes_.find(m.to);
  if (it == nodes_.end() || !it->second->up) return;
  if (Blocked(m.from, m.to)) return;  // a partition that began while it was in flight
  ++delivered_;
  it->second->raft->Step(m);
  Process(m.to);
}

void SimCluster::Partition(const std::vector<std::set<NodeId>>& groups) {
  blocked_.clear();
  for (size_t a = 0; a < groups.size(); ++a) {
    for (size_t b = 0; b < groups.size(); ++b) {
      if (a == b) continue;
      for (NodeId x : groups[a]) {
        for (NodeId y : groups[b]) blocked_.insert({x, y});
      }
    }
  }
}

void SimCluster::BlockLink(NodeId from, NodeId to) {
  blocked_.insert({from, to});
}
void SimCluster::Heal() {
  blocked_.clear();
}

// ---------------------------------------------------------------------------------------------
// Nodes

void SimCluster::Crash(NodeId id) {
  SimNode& n = node(id);
  if (!n.up) return;
  n.up = false;
  n.raft.reset();
  for (auto& [rid, r] : pending_reads_) {
    if (r.node == id && !r.done) r.failed = true;
  }
  for (auto it = pending_writes_.begin(); it != pending_writes_.end();) {
    if (it->second.node == id) {
      write_outcomes_[it->first] = false;  // outcome unknown to the client
      it = pending_writes_.erase(it);
    } else {
      ++it;
    }
  }
  // A snapshot being received lives in a temp file that restart discards.
  n.disk.receiving.reset();
  n.disk.receiving_data.clear();
}

void SimCluster::Restart(NodeId id) {
  SimNode& n = node(id);
  if (n.up) return;
  ++n.restarts;
  n.raft = MakeRaft(n);
  n.up = true;
}

void SimCluster::Wipe(NodeId id, std::string uuid) {
  Crash(id);
  SimNode& n = node(id);
  n.disk = SimDisk{};
  n.uuid = std::move(uuid);
  Restart(id);
}

void SimCluster::AddFreshNode(NodeId id, std::string uuid) {
  auto n = std::make_unique<SimNode>();
  n->id = id;
  n->uuid = std::move(uuid);
  n->raft = MakeRaft(*n);
  nodes_[id] = std::move(n);
}

void SimCluster::Process(NodeId id) {
  SimNode& n = node(id);
  while (n.up && n.raft->HasReady()) {
    consensus::Ready rd = n.raft->GetReady();
    if (crash_on_next_ready_.erase(id) > 0) {
      Crash(id);  // nothing of rd reached the disk or the network
      return;
    }
    // 1. Persist.
    for (auto& chunk : rd.snapshot_chunks) {
      if (chunk.offset == 0) {
        n.disk.receiving = chunk.meta;
        n.disk.receiving_data.clear();
      }
      if (!n.disk.receiving || chunk.offset != n.disk.receiving_data.size()) {
        Fail("snapshot chunk out of order at node " + std::to_string(id.value()));
        return;
      }
      n.disk.receiving_data += chunk.data;
    }
    if (rd.snapshot) {
      const auto& meta = *rd.snapshot;
      n.disk.snapshot = meta;
      n.disk.snapshot_data = std::move(n.disk.receiving_data);
      n.disk.receiving.reset();
      n.disk.receiving_data.clear();
      // Keep log entries after the snapshot if the log holds the snapshot's last entry.
      auto& log = n.disk.log;
      auto it = std::find_if(log.begin(), log.end(), [&](const Entry& e) { return e.index == meta.index; });
      if (it != log.end() && it->term == meta.term) {
        log.erase(log.begin(), it + 1);
      } else {
        log.clear();
      }
      n.kv = DecodeKv(n.disk.snapshot_data);
      n.applied = meta.index;
      n.applied_since_snapshot = 0;
    }
    if (rd.hard_state) n.disk.hard_state = *rd.hard_state;
    if (!rd.entries.empty()) {
      auto& log = n.disk.log;
      LogIndex first = rd.entries.front().index;
      while (!log.empty() && log.back().index >= first) log.pop_back();
      if (!log.empty() && log.back().index.next() != first) Fail("gap in persisted log");
      if (log.empty() && first != n.disk.snapshot.index.next())
        Fail("persisted log does not follow the snapshot");
      for (auto& e : rd.entries) log.push_back(e);
    }
    // 2. Send.
    for (auto& m : rd.messages) {
      if (m.type == consensus::MessageType::kInstallSnapshot) {
        if (n.disk.snapshot.index != m.snapshot.index) {
          n.raft->ReportSnapshotFailure(m.to);
          continue;
        }
        const std::string& data = n.disk.snapshot_data;
        uint64_t off = std::min<uint64_t>(m.offset, data.size());
        m.data = data.substr(off, m.chunk_length);
        m.done = off + m.data.size() >= data.size();
      }
      Enqueue(std::move(m));
    }
    // 3. Apply.
    if (rd.role == consensus::Role::kLeader) {
      auto [it, inserted] = leader_of_term_.emplace(rd.term, id);
      if (!inserted && it->second != id) {
        Fail("election safety: two leaders in term " + std::to_string(rd.term.value()));
      }
    }
    for (const auto& e : rd.committed) ApplyEntry(n, e);
    for (const auto& rs : rd.read_states) {
      auto it = pending_reads_.find(rs.request_id);
      if (it == pending_reads_.end()) continue;
      if (!rs.status.ok()) {
        it->second.failed = true;
      } else {
        it->second.index = rs.index;
      }
    }
    n.raft->Advance(rd);
    MaybeSnapshot(n);
    if (rd.role != consensus::Role::kLeader) {
      // As the node's driver does: a proposal pending on a node that lost leadership is answered
      // "outcome unknown" (it may still commit, but the client is not told it did).
      for (auto w = pending_writes_.begin(); w != pending_writes_.end();) {
        if (w->second.node == id) {
          write_outcomes_[w->first] = false;
          w = pending_writes_.erase(w);
        } else {
          ++w;
        }
      }
    }
    for (auto& [rid, r] : pending_reads_) {
      if (r.node == id && !r.done && !r.failed && r.index && *r.index <= n.applied) {
        auto kv = n.kv.find(r.key);
        if (kv != n.kv.end()) r.result = kv->second;
        r.done = true;
      }
    }
  }
}

void SimCluster::ApplyEntry(SimNode& n, const Entry& e) {
  if (e.index != n.applied.next()) {
    Fail("node " + std::to_string(n.id.value()) + " applied index " + std::to_string(e.index.value()) +
         " after " + std::to_string(n.applied.value()));
  }
  n.applied = e.index;
  ++n.applied_since_snapshot;
  auto [it, inserted] = committed_.emplace(e.index, CommittedEntry{e, Term(UINT64_MAX)});
  if (!inserted && !(it->second.entry == e)) {
    Fail("state machine safety: node " + std::to_string(n.id.value()) +
         " applied a different entry at index " + std::to_string(e.index.value()));
  }
  std::string key;
  std::string value;
  if (e.type == consensus::EntryType::kNormal && DecodeAppend(e.data, &key, &value))
    n.kv[key].push_back(value);
  for (auto w = pending_writes_.begin(); w != pending_writes_.end();) {
    if (w->second.node == n.id && w->second.index == e.index) {
      bool ok = w->second.term == e.term;
      if (ok) acked_.emplace_back(w->second.key, w->second.value);
      write_outcomes_[w->first] = ok;
      w = pending_writes_.erase(w);
    } else {
      ++w;
    }
  }
}

void SimCluster::MaybeSnapshot(SimNode& n) {
  if (opts_.snapshot_interval == 0 || n.applied_since_snapshot < opts_.snapshot_interval) return;
  n.raft->Compact(n.applied);
  const auto& meta = n.raft->snapshot_meta();
  if (meta.index != n.applied) Fail("compaction did not reach the applied index");
  n.disk.snapshot = meta;
  n.disk.snapshot_data = EncodeKv(n.kv);
  auto& log = n.disk.log;
  log.erase(log.begin(),
            std::find_if(log.begin(), log.end(), [&](const Entry& e) { return e.index > meta.index; }));
  n.applied_since_snapshot = 0;
}

// ---------------------------------------------------------------------------------------------
// Time

void SimCluster::Step1ms() {
  ++now_ms_;
  while (!net_.empty() && net_.top().at_ms <= now_ms_) {
    Message m = net_.top().msg;
    net_.pop();
    Deliver(std::move(m));
  }
  if (now_ms_ % opts_.tick_ms == 0) {
    for (auto& [id, n] : nodes_) {
      if (!n->up) continue;
      n->raft->Tick();
      Process(id);
    }
  }
  CheckSafety();
}

void SimCluster::Run(int ms) {
  for (int i = 0; i < ms; ++i) Step1ms();
}

bool SimCluster::RunUntil(const std::function<bool()>& pred, int max_ms) {
  for (int i = 0; i < max_ms; ++i) {
    if (pred()) return true;
    Step1ms();
  }
  return pred();
}

NodeId SimCluster::Leader() const {
  NodeId best;
  Term best_term;
  for (const auto& [id, n] : nodes_) {
    if (n->up && n->raft->role() == consensus::Role::kLeader && n->raft->term() >= best_term) {
      best = id;
      best_term = n->raft->term();
    }
  }
  return best;
}

NodeId SimCluster::WaitForLeader(int max_ms) {
  RunUntil([this] { return Leader() != kNoNode; }, max_ms);
  return Leader();
}

bool SimCluster::Converged() const {
  NodeId l = Leader();
  if (l == kNoNode) return false;
  const Raft& leader = *nodes_.at(l)->raft;
  if (leader.commit_index() != leader.last_index()) return false;
  for (const auto& [id, m] : leader.conf().members) {
    auto it = nodes_.find(id);
    if (it == nodes_.end() || !it->second->up) continue;
    if (it->second->applied != leader.commit_index()) return false;
  }
  return true;
}

bool SimCluster::WaitConverged(int max_ms) {
  return RunUntil([this] { return Converged(); }, max_ms);
}

// ---------------------------------------------------------------------------------------------
// Clients

std::optional<uint64_t> SimCluster::SubmitPut(NodeId at, const std::string& key, const std::string& value) {
  SimNode& n = node(at);
  if (!n.up) return std::nullopt;
  auto p = n.raft->Propose(EncodeAppend(key, value));
  if (!p.ok()) return std::nullopt;
  uint64_t rid = next_request_++;
  pending_writes_[rid] = PendingWrite{at, p->index, p->term, key, value};
  Process(at);
  return rid;
}

bool SimCluster::Put(const std::string& key, const std::string& value, int max_ms) {
  // A client that retries until its write is acknowledged or its deadline passes (a retried write
  // may apply twice; the list-append state machine keeps both, which the checks allow).
  int64_t deadline = now_ms_ + max_ms;
  while (now_ms_ < deadline) {
    NodeId l = WaitForLeader(static_cast<int>(deadline - now_ms_));
    if (l == kNoNode) return false;
    auto rid = SubmitPut(l, key, value);
    if (!rid) {
      Run(10);
      continue;
    }
    RunUntil([&] { return write_outcomes_.contains(*rid); },
             static_cast<int>(std::max<int64_t>(deadline - now_ms_, 0)));
    auto it = write_outcomes_.find(*rid);
    if (it != write_outcomes_.end() && it->second) return true;
  }
  return false;
}

std::optional<std::vector<std::string>> SimCluster::Read(NodeId at, const std::string& key, int max_ms) {
  SimNode& n = node(at);
  if (!n.up) return std::nullopt;
  // Values acknowledged before the read starts must be visible to it (linearizability).
  std::vector<std::string> must_see;
  for (const auto& [k, v] : acked_) {
    if (k == key) must_see.push_back(v);
  }
  uint64_t rid = next_request_++;
  pending_reads_[rid] = PendingRead{at, key, std::nullopt, false, false, {}};
  if (!n.raft->ReadIndex(rid).ok()) {
    pending_reads_.erase(rid);
    return std::nullopt;
  }
  Process(at);
  RunUntil([&] { return pending_reads_[rid].done || pending_reads_[rid].failed; }, max_ms);
  PendingRead r = pending_reads_[rid];
  pending_reads_.erase(rid);
  if (!r.done) return std::nullopt;
  for (const auto& v : must_see) {
    if (std::find(r.result.begin(), r.result.end(), v) == r.result.end()) {
      Fail("linearizability: read of " + key + " at node " + std::to_string(at.value()) +
           " misses acknowledged value " + v);
    }
  }
  reads_.emplace_back(key, r.result);
  return r.result;
}

// ---------------------------------------------------------------------------------------------
// Checkers

void SimCluster::CheckSafety() {
  std::vector<SimNode*> live;
  for (auto& [id, n] : nodes_) {
    if (n->up) live.push_back(n.get());
  }
  for (SimNode* n : live) {
    const Raft& r = *n->raft;
    r.CheckInvariants();
    if (r.role() != consensus::Role::kLeader) continue;
    const auto& log = r.log();
    // Record what this leader committed, with the term it committed in.
    for (LogIndex i = std::max(recorded_commit_.next(), log.first_index()); i <= log.committed();
         i = i.next()) {
      auto [it, inserted] = committed_.emplace(i, CommittedEntry{log.At(i), r.term()});
      if (!inserted) {
        if (!(it->second.entry == log.At(i)))
          Fail("two different entries committed at index " + std::to_string(i.value()));
        it->second.commit_term = std::min(it->second.commit_term, r.term());
      }
    }
    recorded_commit_ = std::max(recorded_commit_, log.committed());
    // Leader completeness (§5.4): a leader holds every entry committed in an earlier term.
    if (!completeness_checked_.insert(r.term()).second) continue;
    for (auto it = committed_.upper_bound(log.snapshot().index); it != committed_.end(); ++it) {
      if (it->second.commit_term >= r.term()) continue;
      if (it->first > log.last_index() || !(log.At(it->first) == it->second.entry)) {
        Fail("leader completeness: leader " + std::to_string(n->id.value()) + " of term " +
             std::to_string(r.term().value()) + " lacks committed entry " +
             std::to_string(it->first.value()));
        break;
      }
    }
  }
  // Log matching: if two logs hold an entry with the same index and term, they are identical up
  // to it. Checked from the highest such index downwards.
  for (size_t a = 0; a < live.size(); ++a) {
    for (size_t b = a + 1; b < live.size(); ++b) {
      const auto& la = live[a]->raft->log();
      const auto& lb = live[b]->raft->log();
      LogIndex lo = std::max(la.first_index(), lb.first_index());
      LogIndex hi = std::min(la.last_index(), lb.last_index());
      bool matched = false;
      for (LogIndex i = hi; i >= lo && i > LogIndex(); i = i.prev()) {
        const Entry& ea = la.At(i);
        const Entry& eb = lb.At(i);
        if (!matched && ea.term == eb.term) matched = true;
        if (matched && !(ea == eb)) {
          Fail("log matching violated at index " + std::to_string(i.value()) + " between nodes " +
               std::to_string(live[a]->id.value()) + " and " + std::to_string(live[b]->id.value()));
          return;
        }
      }
    }
  }
}

void SimCluster::CheckAckedWritesPresent() {
  NodeId l = Leader();
  if (l == kNoNode) {
    Fail("no leader at the end of the run");
    return;
  }
  const KvState& reference = node(l).kv;
  for (const auto& [id, m] : node(l).raft->conf().members) {
    const SimNode& n = node(id);
    if (!n.up) continue;
    if (n.kv != reference) {
      std::string diff;
      for (const auto& [k, vs] : reference) {
        auto it = n.kv.find(k);
        if (it == n.kv.end() || it->second != vs) {
          diff += " key " + k + ": leader has " + std::to_string(vs.size()) + " values, node has " +
                  std::to_string(it == n.kv.end() ? 0 : it->second.size()) + ";";
        }
      }
      Fail("node " + std::to_string(id.value()) + " state differs from the leader's (leader " +
           std::to_string(l.value()) + "):" + diff);
    }
  }
  for (const auto& [k, v] : acked_) {
    auto it = reference.find(k);
    if (it == reference.end() || std::find(it->second.begin(), it->second.end(), v) == it->second.end()) {
      Fail("acknowledged write lost: " + k + " <- " + v);
    }
  }
  for (const auto& [k, values] : reads_) {
    auto it = reference.find(k);
    const std::vector<std::string> empty;
    const auto& final_values = it == reference.end() ? empty : it->second;
    if (values.size() > final_values.size() ||
        !std::equal(values.begin(), values.end(), final_values.begin())) {
      Fail("a read of " + k + " returned a state that is not a prefix of the final state");
    }
  }
}

}  // namespace dispotify::sim
