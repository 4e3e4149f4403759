#include "node/server/raft_node.h"

#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <utility>

#include "common/assert.h"
#include "common/logging.h"
#include "node/storage/identity.h"

namespace dispotify::server {

using consensus::ConfChange;
using consensus::ConfState;
using consensus::Entry;
using consensus::EntryType;
using consensus::HardState;
using consensus::Message;
using consensus::MessageType;
using consensus::Ready;
using consensus::Role;
using consensus::SnapshotMeta;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kCommitHintInterval = std::chrono::seconds(1);

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

uint64_t DeriveSeed(NodeId id) {
  auto now = static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  return (id.value() * 0x9E3779B97F4A7C15ull) ^ now ^ (static_cast<uint64_t>(::getpid()) << 32);
}

}  // namespace

NodeId MostUpToDateVoter(const NodeStatus& st) {
  NodeId best;
  LogIndex best_match;
  for (const auto& [id, member] : st.conf.members) {
    // A member whose messages are refused (another incarnation) could not take over.
    if (id == st.id || !member.voter || st.refused_incarnations.contains(id)) continue;
    auto it = st.match.find(id);
    const LogIndex match = it == st.match.end() ? LogIndex() : it->second;
    if (best == kNoNode || match > best_match) {
      best = id;
      best_match = match;
    }
  }
  return best;
}

RaftNode::RaftNode(RaftNodeOptions options, RaftNodeDeps deps) : options_(std::move(options)), deps_(deps) {}

RaftNode::~RaftNode() {
  Stop();
}

Result<std::unique_ptr<RaftNode>> RaftNode::Open(RaftNodeOptions options, RaftNodeDeps deps) {
  DISPOTIFY_CHECK(
      deps.fs && deps.log && deps.stable && deps.snapshots && deps.transport && deps.state_machine,
      "RaftNode needs every dependency");
  std::unique_ptr<RaftNode> node(new RaftNode(std::move(options), deps));
  consensus::RestartState restart;
  DISPOTIFY_RETURN_IF_ERROR(node->Recover(&restart));

  consensus::Config cfg;
  cfg.id = node->options_.id;
  cfg.election_tick = node->options_.election_ticks;
  cfg.heartbeat_tick = node->options_.heartbeat_ticks;
  cfg.random_seed = node->options_.random_seed != 0 ? node->options_.random_seed : DeriveSeed(cfg.id);
  cfg.node_uuid = node->options_.node_uuid;
  const SnapshotMeta snapshot = restart.snapshot;
  DLOG_INFO << "raft: node " << cfg.id << " restarting at term " << restart.hard_state.term << ", snapshot "
            << snapshot.index << ", log (" << snapshot.index << ", "
            << (restart.entries.empty() ? snapshot.index : restart.entries.back().index) << "], commit "
            << restart.hard_state.commit << ", " << snapshot.conf.members.size()
            << " member(s) in the snapshot";
  node->raft_ = std::make_unique<consensus::Raft>(cfg, std::move(restart));
  node->applied_conf_ = snapshot.conf;
  node->snapshot_index_ = snapshot.index;
  node->saved_hs_ = deps.stable->Load();
  node->last_term_ = node->raft_->term();
  for (const auto& [id, addr] : node->options_.seed_addresses) node->known_addresses_[id] = addr;
  node->RefreshPeers();
  node->PublishStatus();
  return node;
}

Status RaftNode::Recover(consensus::RestartState* restart) {
  auto& log = *deps_.log;
  auto& snaps = *deps_.snapshots;
  HardState hs = deps_.stable->Load();
  std::optional<SnapshotMeta> latest = snaps.Latest();
  const bool fresh = !latest && log.last_index() == LogIndex() && hs == HardState{};

  if (fresh && !options_.force_new_cluster.empty()) {
    // Before anything is written: an empty directory must not become a cluster of its own.
    return Status::InvalidArgument("force_new_cluster: " + options_.data_dir +
                                   " holds no Raft state to rebuild the cluster from");
  }
  if (fresh && !options_.join) {
    // The initial configuration goes into the log (consensus::BootstrapState), identical on every
    // initial member, so that members added later learn it by replication.
    if (!options_.initial_conf.Contains(options_.id)) {
      return Status::InvalidArgument("the initial members do not include this node");
    }
    std::map<NodeId, std::string> members;
    for (const auto& [id, m] : options_.initial_conf.members) members[id] = m.address;
    std::map<NodeId, std::string> uuids;
    if (members.size() == 1 && !options_.node_uuid.empty()) uuids[options_.id] = options_.node_uuid;
    consensus::RestartState boot = consensus::BootstrapState(members, uuids);
    DISPOTIFY_RETURN_IF_ERROR(log.Append(boot.entries));
    DISPOTIFY_RETURN_IF_ERROR(log.Sync());
    DISPOTIFY_RETURN_IF_ERROR(deps_.stable->Save(boot.hard_state));
    hs = boot.hard_state;
    DLOG_INFO << "raft: bootstrapped a new cluster with " << members.size() << " member(s)";
  } else if (fresh) {
    DLOG_INFO << "raft: joining: waiting for the leader to add this node and send its state";
  }

  SnapshotMeta snap = latest.value_or(SnapshotMeta{});
  if (latest) {
    auto path = snaps.PayloadPath(snap.index);
    if (!path.ok()) return path.status();
    DISPOTIFY_RETURN_IF_ERROR(deps_.state_machine->Restore(*path));
    if (deps_.state_machine->applied_index() != snap.index) {
      return Status::Corruption("snapshot payload at index " + std::to_string(snap.index.value()) +
                                " restores the state machine to index " +
                                std::to_string(deps_.state_machine->applied_index().value()));
    }
  }

  // Reconcile the log with the snapshot: keep the entries after it only when the log holds the
  // snapshot's last entry with the same term (or starts right after it).
  std::vector<Entry> entries;
  const LogIndex next = snap.index.next();
  if (log.last_index() < next) {
    if (log.last_index() >= log.first_index() || log.first_index() != next) {
      DISPOTIFY_RETURN_IF_ERROR(log.Reset(next));
    }
  } else if (log.first_index() > next) {
    return Status::Corruption("log starts at " + std::to_string(log.first_index().value()) +
                              " but the latest snapshot ends at " + std::to_string(snap.index.value()));
  } else {
    bool matches = true;
    if (log.first_index() <= snap.index) {
      auto at = log.Read(snap.index, snap.index);
      if (!at.ok()) return at.status();
      matches = !at->empty() && at->front().term == snap.term;
    }
    if (!matches) {
      DLOG_WARN << "raft: log conflicts with the snapshot at " << snap.index << ": dropping it";
      DISPOTIFY_RETURN_IF_ERROR(log.Reset(next));
    } else {
      auto read = log.Read(next, log.last_index());
      if (!read.ok()) return read.status();
      entries = std::move(read).value();
    }
  }

  // The commit hint may lag (never a problem) but never exceeds what the log holds.
  LogIndex last = entries.empty() ? snap.index : entries.back().index;
  hs.commit = std::clamp(hs.commit, snap.index, last);
  restart->hard_state = hs;
  restart->snapshot = snap;
  restart->entries = std::move(entries);
  restart->applied = snap.index;
  if (!options_.force_new_cluster.empty()) return ForceNewCluster(restart);
  return Status::Ok();
}

Status RaftNode::ForceNewCluster(consensus::RestartState* restart) {
  const std::string& token = options_.force_new_cluster;
  if (storage::ForcedNewClusterToken(*deps_.fs, options_.data_dir) == token) {
    DLOG_INFO << "raft: force_new_cluster " << token << " was done before; resuming normally";
    return Status::Ok();
  }
  const LogIndex old_last =
      restart->entries.empty() ? restart->snapshot.index : restart->entries.back().index;
  auto forced = consensus::ForceNewClusterState(*restart, options_.id);
  if (!forced.ok()) {
    if (forced.status().code() == StatusCode::kFailedPrecondition)
      return Status::InvalidArgument("force_new_cluster: " + forced.status().message());
    return forced.status();
  }
  std::vector<Entry> appended;
  for (const Entry& e : forced->entries)
    if (e.index > old_last) appended.push_back(e);
  if (!appended.empty()) {
    DISPOTIFY_RETURN_IF_ERROR(deps_.log->Append(appended));
    DISPOTIFY_RETURN_IF_ERROR(deps_.log->Sync());
  }
  DISPOTIFY_RETURN_IF_ERROR(deps_.stable->Save(forced->hard_state));
  // Recorded last: a crash before it forces again, which finds a group of one and adds nothing.
  DISPOTIFY_RETURN_IF_ERROR(storage::RecordForcedNewCluster(*deps_.fs, options_.data_dir, token));
  DLOG_WARN << "raft: force_new_cluster " << token << ": node " << options_.id
            << " goes on alone from its data (term " << forced->hard_state.term << ", every entry up to "
            << forced->hard_state.commit << " taken as committed, " << appended.size()
            << " membership change(s) appended); add the other members back as new, empty members";
  *restart = std::move(forced).value();
  return Status::Ok();
}

void RaftNode::Start(ExitHandler on_exit) {
  on_exit_ = std::move(on_exit);
  {
    std::lock_guard lock(status_mu_);
    status_.running = true;
  }
  thread_ = std::thread([this] { Run(); });
}

void RaftNode::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int RaftNode::exit_code() const {
  std::lock_guard lock(mu_);
  return exit_code_;
}

void RaftNode::Step(consensus::Message&& m) {
  {
    std::lock_guard lock(mu_);
    inbox_.messages.push_back(std::move(m));
  }
  cv_.notify_one();
}

void RaftNode::ReportUnreachable(NodeId peer) {
  {
    std::lock_guard lock(mu_);
    inbox_.unreachable.push_back(peer);
  }
  cv_.notify_one();
}

bool RaftNode::Enqueue(const std::function<void(Inbox&)>& add) {
  {
    std::lock_guard lock(mu_);
    if (stop_) return false;
    add(inbox_);
  }
  cv_.notify_one();
  return true;
}

// When the node is stopping, callbacks run at once, on the caller's thread, outside mu_.
void RaftNode::Propose(std::string data, ProposeDone done) {
  NewProposal p;
  p.data = std::move(data);
  p.done = std::move(done);
  p.start = Clock::now();
  if (!Enqueue([&](Inbox& in) { in.proposals.push_back(std::move(p)); })) {
    p.done(Status::Unavailable("node is stopping"), LogIndex(), {});  // not moved: Enqueue refused
  }
}

void RaftNode::ProposeConfChange(const ConfChange& cc, ProposeDone done) {
  NewProposal p;
  p.conf_change = true;
  p.cc = cc;
  p.done = std::move(done);
  p.start = Clock::now();
  if (!Enqueue([&](Inbox& in) { in.proposals.push_back(std::move(p)); })) {
    p.done(Status::Unavailable("node is stopping"), LogIndex(), {});  // not moved: Enqueue refused
  }
}

void RaftNode::ReadIndex(ReadDone done) {
  if (!Enqueue([&](Inbox& in) { in.reads.push_back(std::move(done)); })) {
    done(Status::Unavailable("node is stopping"), LogIndex());
  }
}

void RaftNode::TransferLeadership(NodeId target, StatusDone done) {
  if (!Enqueue([&](Inbox& in) { in.transfers.emplace_back(target, std::move(done)); })) {
    done(Status::Unavailable("node is stopping"));
  }
}

NodeStatus RaftNode::status() const {
  std::lock_guard lock(status_mu_);
  return status_;
}

// ---------------------------------------------------------------------------------------------
// Loop thread

void RaftNode::Run() {
  const auto tick = std::chrono::milliseconds(options_.tick_ms);
  auto next_tick = Clock::now() + tick;
  last_commit_save_ = Clock::now();
  // A lone voter need not wait for an election timeout.
  const ConfState& conf = raft_->conf();
  if (conf.VoterCount() == 1 && conf.IsVoter(options_.id)) raft_->Campaign();

  int exit_code = kExitOk;
  Status failure;
  while (true) {
    Inbox in;
    {
      std::unique_lock lock(mu_);
      cv_.wait_until(lock, next_tick, [this] { return stop_ || !inbox_.empty(); });
      if (stop_) break;
      std::swap(in, inbox_);
    }
    auto now = Clock::now();
    if (now >= next_tick) {
      raft_->Tick();
      next_tick += tick;
      if (next_tick <= now) next_tick = now + tick;  // fell behind (a long fsync): do not burst
    }
    HandleInbox(in);
    ReportRefusals();
    failure = ProcessReadies();
    if (failure.ok()) failure = MaybeSaveCommitHint();
    if (!failure.ok()) {
      exit_code = kExitStorageError;
      break;
    }
    if (RemovalFinal(Clock::now())) {
      exit_code = kExitRemoved;
      break;
    }
  }

  if (exit_code == kExitStorageError) {
    DLOG_ERROR << "raft: storage failure, stopping the node to stay safe: " << failure.ToString();
    FailEverything(Status::Unavailable("node stopped after a storage failure"));
  } else if (exit_code == kExitRemoved) {
    DLOG_WARN << "raft: node " << options_.id
              << " was removed from the cluster by a committed membership change; marking "
              << options_.data_dir << " as removed and stopping (restart needs --reset)";
    Status st = storage::MarkRemoved(*deps_.fs, options_.data_dir);
    if (!st.ok()) DLOG_ERROR << "raft: could not mark the data directory removed: " << st.ToString();
    FailEverything(Status::Unavailable("node was removed from the cluster"));
  } else {
    // Graceful stop: the last commit hint is worth keeping.
    Status st = SaveHardState(
        HardState{raft_->term(), raft_->vote(), std::min(raft_->commit_index(), deps_.log->last_index())});
    if (!st.ok()) DLOG_WARN << "raft: could not save the final hard state: " << st.ToString();
    FailEverything(Status::Unavailable("node is stopping"));
  }
  {
    std::lock_guard lock(status_mu_);
    status_.running = false;
  }
  if (exit_code != kExitOk) {
    {
      std::lock_guard lock(mu_);
      exit_code_ = exit_code;
      stop_ = true;
    }
    if (on_exit_) on_exit_(exit_code);
  }
}

void RaftNode::HandleInbox(Inbox& in) {
  for (NodeId peer : in.unreachable) raft_->ReportUnreachable(peer);
  for (auto& m : in.messages) raft_->Step(m);
  for (auto& p : in.proposals) {
    Result<consensus::Proposal> r = Status::Aborted("unset");
    if (p.conf_change) {
      r = raft_->ProposeConfChange(p.cc);
    } else {
      r = raft_->Propose(std::move(p.data));
    }
    if (!r.ok()) {
      p.done(r.status(), LogIndex(), {});
      continue;
    }
    if (auto old = proposals_.find(r->index); old != proposals_.end()) {
      // An earlier term's proposal at this index was overwritten in the log.
      old->second.done(Status::CommitUnknown("leadership changed before the outcome was known"), old->first,
                       {});
      proposals_.erase(old);
    }
    proposals_[r->index] = PendingProposal{r->term, std::move(p.done), p.start};
  }
  if (!in.reads.empty()) {
    // Every read that arrived before this point shares one heartbeat round (etcd batches its
    // ReadIndex requests the same way): the round starts after each of them arrived, so its
    // quorum confirms leadership for all of them.
    uint64_t id = next_read_id_++;
    Status st = raft_->ReadIndex(id);
    if (!st.ok()) {
      for (auto& done : in.reads) done(st, LogIndex());
    } else {
      reads_in_flight_.emplace(id, std::move(in.reads));
    }
  }
  for (auto& [target, done] : in.transfers) done(raft_->TransferLeadership(target));
}

Status RaftNode::ProcessReadies() {
  while (raft_->HasReady()) {
    Ready rd = raft_->GetReady();
    std::vector<NodeId> snapshot_failures;
    if (rd.role == Role::kLeader && !rd.hard_state && !rd.snapshot) {
      // Thesis §10.2.1: a leader may replicate entries before its own write of them is durable;
      // it counts itself towards a commit only once it is (the core's self match = stable index).
      // Replication and the local fsync then overlap instead of adding up.
      std::vector<consensus::Message> appends;
      auto is_append = [](const consensus::Message& m) {
        return m.type == consensus::MessageType::kAppendEntries;
      };
      std::copy_if(rd.messages.begin(), rd.messages.end(), std::back_inserter(appends), is_append);
      std::erase_if(rd.messages, is_append);
      SendMessages(std::move(appends), &snapshot_failures);
    }
    DISPOTIFY_RETURN_IF_ERROR(Persist(rd));

    SendMessages(std::move(rd.messages), &snapshot_failures);
    rd.messages.clear();

    DISPOTIFY_RETURN_IF_ERROR(ApplyCommitted(rd.committed));
    for (auto& rs : rd.read_states) {
      auto it = reads_in_flight_.find(rs.request_id);
      if (it == reads_in_flight_.end()) continue;
      std::vector<ReadDone> dones = std::move(it->second);
      reads_in_flight_.erase(it);
      for (auto& done : dones) {
        if (!rs.status.ok()) {
          done(rs.status, LogIndex());
        } else {
          reads_waiting_apply_.emplace(rs.index, std::move(done));
        }
      }
    }
    CompleteReads();

    raft_->Advance(rd);
#ifndef NDEBUG
    // Raft invariants in debug builds; every 64th Ready, since the check walks the whole log.
    if (++readies_ % 64 == 0) raft_->CheckInvariants();
#endif
    for (NodeId peer : snapshot_failures) raft_->ReportSnapshotFailure(peer);

    if (rd.leader != last_leader_) {
      DLOG_INFO << "raft: leader is now " << rd.leader << " at term " << rd.term << " (this node is "
                << consensus::RoleName(rd.role) << ")";
      if (deps_.observer) deps_.observer->OnLeaderChange();
    }
    // Leadership lost, or regained in a later term: proposals made in an earlier term may or may
    // not commit (a new leader may keep or drop them). Those of the current term stay pending.
    for (auto it = proposals_.begin(); it != proposals_.end();) {
      if (rd.role == Role::kLeader && it->second.term == rd.term) {
        ++it;
        continue;
      }
      if (deps_.observer) deps_.observer->ObserveProposal(SecondsSince(it->second.start));
      it->second.done(Status::CommitUnknown("leadership lost before the outcome was known"), it->first, {});
      it = proposals_.erase(it);
    }
    if (rd.role != Role::kLeader && !reads_in_flight_.empty()) {
      for (auto& [id, dones] : reads_in_flight_) {
        for (auto& done : dones) done(Status::NotLeader(rd.leader.value(), "leadership lost"), {});
      }
      reads_in_flight_.clear();
    }
    last_leader_ = rd.leader;
    last_role_ = rd.role;
    last_term_ = rd.term;

    DISPOTIFY_RETURN_IF_ERROR(MaybeSnapshot(false));
    RefreshPeers();
    PublishStatus();
  }
  return Status::Ok();
}

void RaftNode::ReportRefusals() {
  const uint64_t total = raft_->incarnation_refusals();
  if (total == reported_refusals_) return;
  if (deps_.observer) deps_.observer->OnIncarnationRefusals(total - reported_refusals_);
  reported_refusals_ = total;
  for (const auto& [peer, uuid] : raft_->refused_incarnations()) {
    auto [it, added] = logged_refusals_.emplace(peer, uuid);
    if (!added && it->second == uuid) continue;
    it->second = uuid;
    const auto& members = raft_->conf().members;
    auto member = members.find(peer);
    DLOG_WARN << "raft: refusing the messages of node " << peer << ": its incarnation " << uuid
              << " is not the membership's "
              << (member == members.end() ? "(none)" : member->second.node_uuid)
              << " (did it come back with an empty data directory?). Remove the member and add it back as a "
                 "learner with its new node_uuid";
  }
  PublishStatus();
}

bool RaftNode::RemovalFinal(Clock::time_point now) {
  // The core flags a committed removal of this server. A server that was reset and added back
  // under the same id replays its old removal from the leader's log, with the re-add a few entries
  // later: so the removal counts only if neither the applied nor the latest configuration lists
  // this server, and stays so for a grace period (a removed server hears nothing more from the
  // leader, a re-added one receives the rest of the log within milliseconds).
  const bool removed = raft_->removed() &&
                       !applied_conf_.ContainsIncarnation(options_.id, options_.node_uuid) &&
                       !raft_->conf().ContainsIncarnation(options_.id, options_.node_uuid);
  if (!removed) {
    removal_seen_.reset();
    return false;
  }
  if (!removal_seen_) {
    removal_seen_ = now;
    DLOG_INFO << "raft: a committed membership change removed this node; stopping unless it is added back";
    return false;
  }
  const auto grace = std::chrono::milliseconds(2 * options_.election_ticks * options_.tick_ms);
  return now - *removal_seen_ >= grace;
}

Status RaftNode::Persist(const Ready& rd) {
  auto& log = *deps_.log;
  for (const auto& chunk : rd.snapshot_chunks) {
    DISPOTIFY_RETURN_IF_ERROR(deps_.snapshots->WriteChunk(chunk.meta, chunk.offset, chunk.data, chunk.done));
  }
  if (rd.snapshot) DISPOTIFY_RETURN_IF_ERROR(InstallSnapshot(*rd.snapshot));
  if (rd.hard_state) {
    HardState hs = *rd.hard_state;
    // Clamp the commit hint to entries that are durable and that this Ready does not replace.
    LogIndex durable = log.last_index();
    if (!rd.entries.empty()) durable = std::min(durable, rd.entries.front().index.prev());
    hs.commit = std::min(hs.commit, durable);
    if (hs.term != saved_hs_.term || hs.vote != saved_hs_.vote) DISPOTIFY_RETURN_IF_ERROR(SaveHardState(hs));
  }
  if (!rd.entries.empty()) {
    DISPOTIFY_RETURN_IF_ERROR(log.Append(rd.entries));
    auto start = Clock::now();
    DISPOTIFY_RETURN_IF_ERROR(log.Sync());  // the one fsync of this Ready (group commit)
    if (deps_.observer) deps_.observer->ObserveFsync(SecondsSince(start));
  }
  return Status::Ok();
}

Status RaftNode::InstallSnapshot(const SnapshotMeta& meta) {
  auto path = deps_.snapshots->PayloadPath(meta.index);
  if (!path.ok()) return path.status();
  DISPOTIFY_RETURN_IF_ERROR(deps_.state_machine->Restore(*path));
  if (deps_.state_machine->applied_index() != meta.index) {
    return Status::Corruption("received snapshot at " + std::to_string(meta.index.value()) +
                              " restores the state machine to " +
                              std::to_string(deps_.state_machine->applied_index().value()));
  }
  auto& log = *deps_.log;
  bool keep = false;
  if (log.first_index() <= meta.index && meta.index <= log.last_index()) {
    auto at = log.Read(meta.index, meta.index);
    if (!at.ok()) return at.status();
    keep = !at->empty() && at->front().term == meta.term;
  }
  if (keep) {
    DISPOTIFY_RETURN_IF_ERROR(log.CompactPrefix(meta.index));
  } else {
    DISPOTIFY_RETURN_IF_ERROR(log.Reset(meta.index.next()));
  }
  applied_conf_ = meta.conf;
  snapshot_index_ = meta.index;
  FailProposals(Status::CommitUnknown("replaced by a snapshot from the leader"), meta.index);
  DLOG_INFO << "raft: installed snapshot at index " << meta.index << " term " << meta.term << " ("
            << meta.conf.members.size() << " member(s))";
  return Status::Ok();
}

Status RaftNode::SaveHardState(HardState hs) {
  if (hs == saved_hs_) return Status::Ok();
  auto start = Clock::now();
  DISPOTIFY_RETURN_IF_ERROR(deps_.stable->Save(hs));
  if (deps_.observer) deps_.observer->ObserveFsync(SecondsSince(start));
  saved_hs_ = hs;
  last_commit_save_ = Clock::now();
  return Status::Ok();
}

Status RaftNode::MaybeSaveCommitHint() {
  if (raft_->commit_index() == saved_hs_.commit || raft_->term() != saved_hs_.term ||
      raft_->vote() != saved_hs_.vote) {
    return Status::Ok();  // nothing new, or a term/vote change still in flight: never reorder
  }
  if (Clock::now() - last_commit_save_ < kCommitHintInterval) return Status::Ok();
  // Between Readies every entry handed out is durable, so the commit index clamped to the log
  // names only committed, durable entries.
  HardState hs = saved_hs_;
  hs.commit = std::min(raft_->commit_index(), deps_.log->last_index());
  return SaveHardState(hs);
}

void RaftNode::SendMessages(std::vector<Message> msgs, std::vector<NodeId>* snapshot_failures) {
  if (msgs.empty()) return;
  std::vector<Message> out;
  out.reserve(msgs.size());
  for (auto& m : msgs) {
    if (m.type == MessageType::kInstallSnapshot) {
      auto size = deps_.snapshots->PayloadSize(m.snapshot.index);
      auto chunk = deps_.snapshots->ReadChunk(m.snapshot.index, m.offset, m.chunk_length);
      if (!size.ok() || !chunk.ok()) {
        const Status& st = !size.ok() ? size.status() : chunk.status();
        DLOG_WARN << "raft: cannot read snapshot " << m.snapshot.index << " for node " << m.to << ": "
                  << st.ToString();
        snapshot_failures->push_back(m.to);
        continue;
      }
      m.data = std::move(chunk).value();
      m.done = m.offset + m.data.size() >= *size;
    }
    out.push_back(std::move(m));
  }
  deps_.transport->Send(std::move(out));
}

Status RaftNode::ApplyCommitted(const std::vector<Entry>& committed) {
  auto& sm = *deps_.state_machine;
  for (const auto& e : committed) {
    if (e.index <= sm.applied_index()) continue;  // covered by a snapshot just installed
    consensus::ApplyResult result = sm.Apply(e);
    if (result.fatal) {
      return Status::IoError("the state machine could not apply entry " + std::to_string(e.index.value()) +
                             ": " + result.status.ToString());
    }
    if (e.type == EntryType::kConfChange) {
      ConfChange cc;
      if (consensus::DecodeConfChange(e.data, &cc) && consensus::ApplyConfChange(cc, &applied_conf_)) {
        DLOG_INFO << "raft: membership change committed at index " << e.index << ": "
                  << (cc.type == consensus::ConfChangeType::kAddLearner ? "add learner "
                      : cc.type == consensus::ConfChangeType::kPromote  ? "promote "
                                                                        : "remove ")
                  << cc.node;
      }
    }
    auto it = proposals_.find(e.index);
    if (it == proposals_.end()) continue;
    PendingProposal p = std::move(it->second);
    proposals_.erase(it);
    if (deps_.observer) deps_.observer->ObserveProposal(SecondsSince(p.start));
    if (p.term != e.term) {
      p.done(Status::Retry("the proposal was replaced by another leader's entry"), e.index, {});
    } else {
      p.done(result.status, e.index, std::move(result.value));
    }
  }
  return Status::Ok();
}

void RaftNode::CompleteReads() {
  const LogIndex applied = deps_.state_machine->applied_index();
  while (!reads_waiting_apply_.empty() && reads_waiting_apply_.begin()->first <= applied) {
    auto it = reads_waiting_apply_.begin();
    const LogIndex index = it->first;
    ReadDone done = std::move(it->second);
    reads_waiting_apply_.erase(it);
    done(Status::Ok(), index);
  }
}

Status RaftNode::MaybeSnapshot(bool force) {
  const LogIndex applied = deps_.state_machine->applied_index();
  if (applied <= snapshot_index_) return Status::Ok();
  const bool due = applied.value() - snapshot_index_.value() >= options_.snapshot_entries;
  if (!force && !due) return Status::Ok();
  auto term = raft_->log().TermAt(applied);
  DISPOTIFY_CHECK(term.has_value(), "applied entry missing from the core's log");
  SnapshotMeta meta{applied, *term, applied_conf_};
  auto writer = deps_.snapshots->Create(meta);
  if (!writer.ok()) return writer.status();
  DISPOTIFY_RETURN_IF_ERROR(deps_.state_machine->SaveSnapshot(**writer));
  DISPOTIFY_RETURN_IF_ERROR((*writer)->Commit());
  raft_->Compact(applied);
  DISPOTIFY_CHECK(raft_->snapshot_meta() == meta,
                  "the core and the driver disagree on the snapshot's metadata");
  DISPOTIFY_RETURN_IF_ERROR(deps_.log->CompactPrefix(applied));
  snapshot_index_ = applied;
  DLOG_INFO << "raft: snapshot at index " << applied << " term " << *term;
  return Status::Ok();
}

void RaftNode::FailProposals(const Status& why, LogIndex upto) {
  for (auto it = proposals_.begin(); it != proposals_.end() && it->first <= upto;) {
    if (deps_.observer) deps_.observer->ObserveProposal(SecondsSince(it->second.start));
    it->second.done(why, it->first, {});
    it = proposals_.erase(it);
  }
}

void RaftNode::FailEverything(const Status& why) {
  // Proposals already in the log may still commit elsewhere.
  FailProposals(Status::CommitUnknown(why.message()), LogIndex(~0ull));
  for (auto& [id, dones] : reads_in_flight_) {
    for (auto& done : dones) done(why, LogIndex());
  }
  reads_in_flight_.clear();
  for (auto& [index, done] : reads_waiting_apply_) done(why, LogIndex());
  reads_waiting_apply_.clear();
  Inbox in;
  {
    std::lock_guard lock(mu_);
    stop_ = true;  // later calls fail at once
    std::swap(in, inbox_);
  }
  for (auto& p : in.proposals) p.done(why, LogIndex(), {});
  for (auto& done : in.reads) done(why, LogIndex());
  for (auto& [target, done] : in.transfers) done(why);
}

void RaftNode::RefreshPeers() {
  bool changed = false;
  for (const auto& [id, member] : raft_->conf().members) {
    if (id == options_.id || member.address.empty()) continue;
    auto [it, inserted] = known_addresses_.emplace(id, member.address);
    if (inserted || it->second != member.address) {
      it->second = member.address;
      changed = true;
    }
  }
  // Removed members stay in the address book: the core may still need to tell them about the
  // commit of their removal.
  if (changed || !peers_published_) {
    deps_.transport->UpdatePeers(known_addresses_);
    peers_published_ = true;
  }
}

void RaftNode::PublishStatus() {
  NodeStatus s;
  s.id = options_.id;
  s.node_uuid = options_.node_uuid;
  s.role = raft_->role();
  s.term = raft_->term();
  s.leader = raft_->leader();
  s.commit = raft_->commit_index();
  s.applied = deps_.state_machine->applied_index();
  s.snapshot_index = snapshot_index_;
  s.conf = raft_->conf();
  if (s.role == Role::kLeader) {
    for (const auto& [id, pr] : raft_->progress()) s.match[id] = pr.match;
  }
  s.refused_incarnations = raft_->refused_incarnations();
  if (deps_.observer) deps_.observer->OnState(s.role, s.term, s.leader, s.commit, s.applied);
  std::lock_guard lock(status_mu_);
  s.running = status_.running;
  status_ = std::move(s);
}

}  // namespace dispotify::server
