#include "node/consensus/raft.h"

#include <algorithm>
#include <utility>

#include "common/assert.h"

namespace dispotify::consensus {

const char* RoleName(Role r) {
  switch (r) {
    case Role::kFollower: return "follower";
    case Role::kPreCandidate: return "pre-candidate";
    case Role::kCandidate: return "candidate";
    case Role::kLeader: return "leader";
  }
  return "unknown";
}

namespace {
constexpr size_t kMaxApplyBytesPerReady = 64u << 20;

// Largest index replicated on a majority of `matches` (one per voter).
LogIndex QuorumIndex(std::vector<LogIndex> matches) {
  if (matches.empty()) return LogIndex();
  std::sort(matches.begin(), matches.end(), std::greater<>());
  return matches[matches.size() / 2];
}
}  // namespace

RestartState BootstrapState(const std::map<NodeId, std::string>& initial_members,
                            const std::map<NodeId, std::string>& uuids) {
  RestartState rs;
  LogIndex index;
  for (const auto& [id, address] : initial_members) {
    auto uuid = uuids.find(id);
    for (auto type : {ConfChangeType::kAddLearner, ConfChangeType::kPromote}) {
      index = index.next();
      ConfChange cc{type, id, address, {}};
      if (type == ConfChangeType::kAddLearner && uuid != uuids.end()) cc.node_uuid = uuid->second;
      rs.entries.push_back(Entry{Term(1), index, EntryType::kConfChange, EncodeConfChange(cc)});
    }
  }
  rs.hard_state = HardState{Term(1), kNoNode, index};
  return rs;
}

Result<RestartState> ForceNewClusterState(RestartState restart, NodeId self) {
  ConfState conf = restart.snapshot.conf;
  Term last_term = restart.snapshot.term;
  LogIndex last = restart.snapshot.index;
  for (const Entry& e : restart.entries) {
    last_term = e.term;
    last = e.index;
    if (e.type != EntryType::kConfChange) continue;
    ConfChange cc;
    if (!DecodeConfChange(e.data, &cc))
      return Status::Corruption("undecodable configuration change at index " +
                                std::to_string(e.index.value()));
    ApplyConfChange(cc, &conf);  // a change that does not apply was a no-op when it was appended too
  }
  if (!conf.Contains(self)) {
    return Status::FailedPrecondition("node " + std::to_string(self.value()) +
                                      " is not a member of the configuration its log ends with; it "
                                      "cannot rebuild the cluster");
  }
  const Term term(std::max(restart.hard_state.term, last_term).value() + 1);
  auto append = [&](const ConfChange& cc) {
    last = last.next();
    restart.entries.push_back(Entry{term, last, EntryType::kConfChange, EncodeConfChange(cc)});
  };
  for (const auto& [id, member] : conf.members) {
    if (id != self) append(ConfChange{ConfChangeType::kRemove, id, {}, {}});
  }
  if (!conf.IsVoter(self)) append(ConfChange{ConfChangeType::kPromote, self, {}, {}});
  restart.hard_state = HardState{term, kNoNode, last};
  return restart;
}

Raft::Raft(Config config, RestartState restart)
    : cfg_(std::move(config)), rng_(cfg_.random_seed ^ (cfg_.id.value() * 0x9E3779B97F4A7C15ull)) {
  DISPOTIFY_CHECK(cfg_.id != kNoNode, "node id must not be 0");
  DISPOTIFY_CHECK(cfg_.election_tick > cfg_.heartbeat_tick, "election timeout must exceed the heartbeat");
  log_.Restore(restart.snapshot, std::move(restart.entries), restart.hard_state.commit, restart.applied);
  term_ = restart.hard_state.term;
  vote_ = restart.hard_state.vote;
  conf_ = log_.conf();
  prev_hard_state_ = CurrentHardState();
  BecomeFollower(term_, kNoNode);
}

// ---------------------------------------------------------------------------------------------
// Role transitions

void Raft::ResetTimers() {
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  std::uniform_int_distribution<int> dist(cfg_.election_tick, 2 * cfg_.election_tick - 1);
  randomized_election_timeout_ = dist(rng_);
}

void Raft::BecomeFollower(Term term, NodeId leader) {
  if (role_ == Role::kLeader) FailPendingReads(Status::NotLeader(leader.value(), "leadership lost"));
  if (term != term_) {
    DISPOTIFY_CHECK(term > term_, "terms never go back");
    term_ = term;
    vote_ = kNoNode;
  }
  role_ = Role::kFollower;
  leader_ = leader;
  votes_.clear();
  progress_.clear();
  transfer_target_ = kNoNode;
  pending_broadcast_ = false;
  ResetTimers();
}

void Raft::BecomePreCandidate() {
  DISPOTIFY_CHECK(role_ != Role::kLeader, "a leader does not campaign");
  role_ = Role::kPreCandidate;
  leader_ = kNoNode;
  votes_.clear();
  ResetTimers();
}

void Raft::BecomeCandidate() {
  DISPOTIFY_CHECK(role_ != Role::kLeader, "a leader does not campaign");
  term_ = term_.next();
  vote_ = cfg_.id;
  role_ = Role::kCandidate;
  leader_ = kNoNode;
  votes_.clear();
  ResetTimers();
}

void Raft::BecomeLeader() {
  DISPOTIFY_CHECK(role_ == Role::kCandidate, "only a candidate becomes leader");
  role_ = Role::kLeader;
  leader_ = cfg_.id;
  votes_.clear();
  transfer_target_ = kNoNode;
  pending_reads_.clear();
  ResetTimers();
  progress_.clear();
  for (const auto& [id, member] : conf_.members) {
    Progress& pr = progress_[id];
    pr.next = log_.last_index().next();
    pr.recent_active = true;
    pr.node_uuid = member.node_uuid;
  }
  if (conf_.Contains(cfg_.id)) progress_[cfg_.id].match = log_.stable();
  // §5.4.2: a leader commits entries of earlier terms only through an entry of its own term.
  AppendEntriesLocally({Entry{term_, log_.last_index().next(), EntryType::kNoop, {}}});
  pending_broadcast_ = true;
}

void Raft::StartElection(bool pre_vote, bool transfer) {
  if (!Promotable()) return;
  if (pre_vote) {
    BecomePreCandidate();
  } else {
    BecomeCandidate();
  }
  votes_[cfg_.id] = true;
  Term vote_term = pre_vote ? term_.next() : term_;
  if (conf_.VoterCount() == 1) {  // we are the only voter
    if (pre_vote) {
      StartElection(false, transfer);
    } else {
      BecomeLeader();
    }
    return;
  }
  for (const auto& [id, member] : conf_.members) {
    if (id == cfg_.id || !member.voter) continue;
    Message m;
    m.type = MessageType::kRequestVote;
    m.to = id;
    m.term = vote_term;
    m.pre_vote = pre_vote;
    m.transfer = transfer;
    m.last_log_index = log_.last_index();
    m.last_log_term = log_.last_term();
    Send(std::move(m));
  }
}

void Raft::Campaign() {
  if (role_ == Role::kLeader) return;
  StartElection(cfg_.pre_vote, false);
}

// ---------------------------------------------------------------------------------------------
// Time

void Raft::Tick() {
  if (role_ != Role::kLeader) {
    ++election_elapsed_;
    if (Promotable() && election_elapsed_ >= randomized_election_timeout_) {
      StartElection(cfg_.pre_vote, false);
    }
    return;
  }

  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (transfer_target_ != kNoNode && ++transfer_elapsed_ >= cfg_.election_tick) AbortTransfer();
  if (election_elapsed_ >= cfg_.election_tick) {
    election_elapsed_ = 0;
    // Check-quorum (§6.2): a leader that has not heard from a majority in an election timeout
    // may have been deposed in a partition it cannot see; it steps down rather than serve.
    if (cfg_.check_quorum && !QuorumActive()) {
      BecomeFollower(term_, kNoNode);
      return;
    }
  }
  for (auto& [id, pr] : progress_) {
    if (id == cfg_.id || pr.state != Progress::State::kSnapshot || !pr.snapshot_chunk_inflight) continue;
    if (++pr.snapshot_idle_ticks >= cfg_.election_tick) {  // chunk or reply lost: send it again
      pr.snapshot_chunk_inflight = false;
      SendSnapshotChunk(id);
    }
  }
  if (heartbeat_elapsed_ >= cfg_.heartbeat_tick) {
    heartbeat_elapsed_ = 0;
    BroadcastHeartbeat();
  }
}

bool Raft::QuorumActive() {
  size_t active = 0;
  for (auto& [id, pr] : progress_) {
    bool voter = conf_.IsVoter(id);
    if (id == cfg_.id) {
      active += voter ? 1 : 0;
      continue;
    }
    if (voter && pr.recent_active) ++active;
    pr.recent_active = false;
  }
  return active >= conf_.VoterCount() / 2 + 1;
}

// ---------------------------------------------------------------------------------------------
// Messages

void Raft::Send(Message m) {
  m.from = cfg_.id;
  m.from_uuid = cfg_.node_uuid;
  if (m.term == Term()) m.term = term_;
  msgs_.push_back(std::move(m));
}

bool Raft::RefuseIncarnation(const Message& m) {
  if (conf_.IncarnationMatches(m.from, m.from_uuid)) {
    refused_incarnations_.erase(m.from);
    return false;
  }
  ++incarnation_refusals_;
  refused_incarnations_[m.from] = m.from_uuid;
  return true;
}

void Raft::Step(const Message& m) {
  if (m.to != cfg_.id || m.from == cfg_.id || m.from == kNoNode) return;
  // Before anything else, the term included: a member that came back with an empty disk (another
  // incarnation) neither votes, nor acknowledges, nor leads, nor moves our term, until it is
  // removed and added back as itself (types.h, "Incarnations"). Dropped without an answer.
  if (RefuseIncarnation(m)) return;

  if (m.term > term_) {
    if (m.type == MessageType::kRequestVote) {
      // Leader stickiness (thesis §4.2.3): while we hear from a leader, a vote request is more
      // likely from a disruptive server (rejoining, removed) than a sign the leader is gone.
      bool in_lease = cfg_.check_quorum && leader_ != kNoNode && election_elapsed_ < cfg_.election_tick;
      if (in_lease && !m.transfer) return;
      if (!m.pre_vote) BecomeFollower(m.term, kNoNode);
    } else if (m.type == MessageType::kRequestVoteResponse && m.pre_vote && m.granted) {
      // A granted pre-vote carries the term we would campaign in; our term moves only on a
      // pre-vote quorum.
    } else {
      bool from_leader = m.type == MessageType::kAppendEntries || m.type == MessageType::kInstallSnapshot ||
                         m.type == MessageType::kTimeoutNow;
      BecomeFollower(m.term, from_leader ? m.from : kNoNode);
    }
  } else if (m.term < term_) {
    if (m.type == MessageType::kAppendEntries || m.type == MessageType::kInstallSnapshot) {
      // A deposed leader (e.g. back from a partition) learns the newer term from our reply and
      // steps down; without it, pre-vote and check-quorum could leave it isolated forever.
      Message r;
      r.type = MessageType::kAppendEntriesResponse;
      r.to = m.from;
      r.term = term_;
      Send(std::move(r));
    } else if (m.type == MessageType::kRequestVote) {
      Message r;
      r.type = MessageType::kRequestVoteResponse;
      r.to = m.from;
      r.term = term_;
      r.pre_vote = m.pre_vote;
      r.granted = false;
      Send(std::move(r));
    }
    return;
  }

  if (m.type == MessageType::kRequestVote) {
    HandleRequestVote(m);
    return;
  }
  switch (role_) {
    case Role::kLeader: StepLeader(m); break;
    case Role::kPreCandidate:
    case Role::kCandidate: StepCandidate(m); break;
    case Role::kFollower: StepFollower(m); break;
  }
}

void Raft::HandleRequestVote(const Message& m) {
  // We may vote for m.from if we already did in this term, or have voted for no one and know no
  // leader; a pre-vote for a future term is granted on the log check alone.
  bool can_vote =
      vote_ == m.from || (vote_ == kNoNode && leader_ == kNoNode) || (m.pre_vote && m.term > term_);
  Message r;
  r.type = MessageType::kRequestVoteResponse;
  r.to = m.from;
  r.pre_vote = m.pre_vote;
  if (can_vote && log_.IsUpToDate(m.last_log_index, m.last_log_term)) {
    r.term = m.term;
    r.granted = true;
    if (!m.pre_vote) {
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
    r.term = term_;
    r.granted = false;
  }
  Send(std::move(r));
}

void Raft::StepFollower(const Message& m) {
  switch (m.type) {
    case MessageType::kAppendEntries:
      election_elapsed_ = 0;
      leader_ = m.from;
      HandleAppendEntries(m);
      break;
    case MessageType::kInstallSnapshot:
      election_elapsed_ = 0;
      leader_ = m.from;
      HandleInstallSnapshot(m);
      break;
    case MessageType::kTimeoutNow:
      // §3.10: the leader asks us to take over; skip pre-vote, we know the leader is leaving.
      if (Promotable()) StartElection(/*pre_vote=*/false, /*transfer=*/true);
      break;
    default: break;
  }
}

void Raft::StepCandidate(const Message& m) {
  switch (m.type) {
    case MessageType::kAppendEntries:
    case MessageType::kInstallSnapshot:
      // Someone won this term (or, as pre-candidate, our current term has a leader).
      BecomeFollower(m.term, m.from);
      StepFollower(m);
      break;
    case MessageType::kRequestVoteResponse: HandleVoteResponse(m); break;
    default: break;
  }
}

void Raft::HandleVoteResponse(const Message& m) {
  bool expected = (role_ == Role::kPreCandidate) == m.pre_vote;
  if (!expected || !conf_.IsVoter(m.from)) return;
  votes_.emplace(m.from, m.granted);
  size_t granted = 0;
  size_t rejected = 0;
  for (const auto& [id, g] : votes_) {
    if (!conf_.IsVoter(id)) continue;
    (g ? granted : rejected) += 1;
  }
  size_t quorum = conf_.VoterCount() / 2 + 1;
  if (granted >= quorum) {
    if (role_ == Role::kPreCandidate) {
      StartElection(/*pre_vote=*/false, /*transfer=*/false);
    } else {
      BecomeLeader();
    }
  } else if (rejected >= quorum) {
    BecomeFollower(term_, kNoNode);
  }
}

void Raft::HandleAppendEntries(const Message& m) {
  Message r;
  r.type = MessageType::kAppendEntriesResponse;
  r.to = m.from;
  if (m.heartbeat) {
    // The leader sends commit <= our match point, so the entries up to it are the leader's.
    log_.CommitTo(std::min(m.commit, log_.last_index()));
    r.heartbeat = true;
    r.success = true;
    r.read_seq = m.read_seq;
    Send(std::move(r));
    return;
  }
  if (m.prev_log_index < log_.committed()) {
    // Everything up to our commit index is already the leader's log.
    r.success = true;
    r.match_index = log_.committed();
    Send(std::move(r));
    return;
  }
  if (!log_.Matches(m.prev_log_index, m.prev_log_term)) {
    r.success = false;
    r.match_index = m.prev_log_index;
    if (m.prev_log_index > log_.last_index()) {
      r.conflict_index = log_.last_index().next();
    } else {
      r.conflict_term = *log_.TermAt(m.prev_log_index);
      r.conflict_index = std::max(log_.FirstIndexOfTermAt(m.prev_log_index), log_.committed().next());
    }
    Send(std::move(r));
    return;
  }
  // Skip the entries we already hold: a duplicated or reordered message must never truncate
  // entries that a newer message appended.
  size_t skip = 0;
  while (skip < m.entries.size() && log_.Matches(m.entries[skip].index, m.entries[skip].term)) ++skip;
  if (skip < m.entries.size()) {
    AppendEntriesLocally(
        std::vector<Entry>(m.entries.begin() + static_cast<std::ptrdiff_t>(skip), m.entries.end()));
  }
  LogIndex last_new(m.prev_log_index.value() + m.entries.size());
  log_.CommitTo(std::min(m.commit, last_new));
  r.success = true;
  r.match_index = last_new;
  Send(std::move(r));
}

void Raft::HandleInstallSnapshot(const Message& m) {
  const SnapshotMeta& meta = m.snapshot;
  Message r;
  r.type = MessageType::kInstallSnapshotResponse;
  r.to = m.from;
  r.snapshot.index = meta.index;
  if (meta.index <= log_.committed()) {
    // We already have everything the snapshot covers.
    receiving_snapshot_.reset();
    r.success = true;
    r.match_index = log_.committed();
    Send(std::move(r));
    return;
  }
  if (m.offset == 0) {
    receiving_snapshot_ = meta;
    receiving_offset_ = 0;
  } else if (!receiving_snapshot_ || *receiving_snapshot_ != meta || m.offset != receiving_offset_) {
    // Out of order, or we lost the partial snapshot in a crash: tell the leader where to resume.
    r.success = false;
    r.offset = (receiving_snapshot_ && *receiving_snapshot_ == meta) ? receiving_offset_ : 0;
    Send(std::move(r));
    return;
  }
  chunks_.push_back(SnapshotChunk{meta, m.offset, m.data, m.done});
  receiving_offset_ += m.data.size();
  r.success = true;
  r.offset = receiving_offset_;
  if (m.done) {
    log_.InstallSnapshot(meta);
    conf_ = log_.conf();
    pending_snapshot_install_ = meta;
    receiving_snapshot_.reset();
    r.match_index = meta.index;
  }
  Send(std::move(r));
}

// ---------------------------------------------------------------------------------------------
// Leader

void Raft::StepLeader(const Message& m) {
  switch (m.type) {
    case MessageType::kAppendEntriesResponse: HandleAppendResponse(m); break;
    case MessageType::kInstallSnapshotResponse: HandleSnapshotResponse(m); break;
    case MessageType::kAppendEntries:
    case MessageType::kInstallSnapshot:
      DISPOTIFY_CHECK(false, "two leaders in one term (election safety violated)");
      break;
    default: break;
  }
}

void Raft::HandleAppendResponse(const Message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.recent_active = true;

  if (m.heartbeat) {
    AdvanceReads(m.from, m.read_seq);
    if (pr.state == Progress::State::kProbe) pr.probe_sent = false;
    if (pr.match < log_.last_index() || pr.state == Progress::State::kProbe) SendAppend(m.from, true);
    return;
  }
  if (pr.state == Progress::State::kSnapshot) return;

  if (!m.success) {
    LogIndex rejected = m.match_index;
    if (rejected <= pr.match) return;  // stale: it matched further since
    if (pr.state == Progress::State::kProbe && rejected != pr.next.prev()) return;  // stale probe reply
    // Fast backtracking: jump over the whole conflicting term instead of one entry at a time.
    LogIndex next = m.conflict_index;
    if (m.conflict_term != Term()) {
      if (auto last = log_.LastIndexOfTerm(m.conflict_term, rejected)) next = last->next();
    }
    next = std::clamp(next, pr.match.next(), rejected);
    pr.BecomeProbe();
    pr.next = next;
    SendAppend(m.from, true);
    return;
  }

  if (pr.MaybeUpdate(m.match_index)) {
    if (pr.state == Progress::State::kProbe) pr.BecomeReplicate();
    MaybeCommit();
    // Committing may have ended our leadership or this member's (a removal committed).
    if (role_ != Role::kLeader) return;
    MaybeForgetRemoved(m.from);
    if (!progress_.contains(m.from)) return;
    if (m.from == transfer_target_) MaybeSendTimeoutNow(m.from);
  } else if (pr.state == Progress::State::kProbe) {
    pr.probe_sent = false;
  }
  while (SendAppend(m.from, false)) {
  }
}

void Raft::HandleSnapshotResponse(const Message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.recent_active = true;
  if (pr.state != Progress::State::kSnapshot || m.snapshot.index != pr.snapshot.index) return;
  pr.snapshot_chunk_inflight = false;
  pr.snapshot_idle_ticks = 0;
  if (m.success && m.match_index >= pr.snapshot.index) {
    pr.MaybeUpdate(m.match_index);
    pr.BecomeProbe();
    SendAppend(m.from, true);
    return;
  }
  pr.snapshot_offset = m.offset;
  SendSnapshotChunk(m.from);
}

bool Raft::SendAppend(NodeId to, bool allow_empty) {
  Progress& pr = progress_.at(to);
  switch (pr.state) {
    case Progress::State::kSnapshot: return false;
    case Progress::State::kProbe:
      if (pr.probe_sent) return false;
      break;
    case Progress::State::kReplicate:
      if (pr.inflight.size() >= cfg_.max_inflight_appends) return false;
      break;
  }
  LogIndex prev = pr.next.prev();
  auto prev_term = log_.TermAt(prev);
  if (!prev_term) {
    // The entries it needs were compacted: send the snapshot instead.
    pr.BecomeSnapshot(log_.snapshot());
    SendSnapshotChunk(to);
    return false;
  }
  Message m;
  m.type = MessageType::kAppendEntries;
  m.to = to;
  m.prev_log_index = prev;
  m.prev_log_term = *prev_term;
  if (pr.next <= log_.last_index()) {
    m.entries =
        log_.Slice(pr.next, log_.last_index(), cfg_.max_entries_per_append, cfg_.max_bytes_per_append);
  }
  if (m.entries.empty() && !allow_empty) return false;
  m.commit = log_.committed();
  bool sent_entries = !m.entries.empty();
  if (pr.state == Progress::State::kReplicate && sent_entries) {
    pr.next = m.entries.back().index.next();
    pr.inflight.push_back(m.entries.back().index);
  } else if (pr.state == Progress::State::kProbe) {
    pr.probe_sent = true;
  }
  Send(std::move(m));
  return sent_entries && pr.state == Progress::State::kReplicate;
}

void Raft::SendSnapshotChunk(NodeId to) {
  Progress& pr = progress_.at(to);
  if (pr.snapshot_chunk_inflight) return;
  Message m;
  m.type = MessageType::kInstallSnapshot;
  m.to = to;
  m.snapshot = pr.snapshot;
  m.offset = pr.snapshot_offset;
  m.chunk_length = cfg_.snapshot_chunk_bytes;
  pr.snapshot_chunk_inflight = true;
  pr.snapshot_idle_ticks = 0;
  Send(std::move(m));
}

void Raft::SendHeartbeat(NodeId to) {
  const Progress& pr = progress_.at(to);
  Message m;
  m.type = MessageType::kAppendEntries;
  m.heartbeat = true;
  m.to = to;
  m.commit = std::min(pr.match, log_.committed());
  m.read_seq = read_seq_;
  Send(std::move(m));
}

void Raft::BroadcastAppend() {
  for (const auto& [id, pr] : progress_) {
    if (id == cfg_.id) continue;
    while (SendAppend(id, false)) {
    }
  }
}

void Raft::BroadcastHeartbeat() {
  for (const auto& [id, pr] : progress_) {
    if (id != cfg_.id) SendHeartbeat(id);
  }
}

void Raft::MaybeCommit() {
  std::vector<LogIndex> matches;
  for (const auto& [id, pr] : progress_) {
    if (conf_.IsVoter(id)) matches.push_back(pr.match);
  }
  LogIndex index = QuorumIndex(std::move(matches));
  // Figure 8: only an entry of the current term is committed by counting replicas.
  if (index <= log_.committed() || log_.TermAt(index) != term_) return;
  log_.CommitTo(index);

  if (log_.last_conf_index() <= log_.committed()) {
    for (auto it = progress_.begin(); it != progress_.end();) {
      NodeId id = (it++)->first;
      MaybeForgetRemoved(id);
    }
    if (!conf_.IsVoter(cfg_.id)) {
      // Thesis §4.2.2: a leader removed from the configuration steps down once the change is
      // committed; hand over to the most up-to-date voter so the cluster need not wait a timeout.
      NodeId best;
      LogIndex best_match;
      for (const auto& [id, pr] : progress_) {
        if (conf_.IsVoter(id) && (best == kNoNode || pr.match > best_match)) {
          best = id;
          best_match = pr.match;
        }
      }
      if (best != kNoNode && best_match == log_.last_index()) {
        Message m;
        m.type = MessageType::kTimeoutNow;
        m.to = best;
        Send(std::move(m));
      }
      BecomeFollower(term_, kNoNode);
    }
  }
  // Tell the followers now (etcd's bcastAppend on commit) rather than with the next heartbeat: a
  // follower applies only what it knows is committed, and a client waiting on it would otherwise
  // wait up to a tick.
  if (role_ == Role::kLeader) {
    std::vector<NodeId> peers;
    for (const auto& [id, pr] : progress_) {
      if (id != cfg_.id) peers.push_back(id);
    }
    for (NodeId id : peers) SendAppend(id, true);
  }
}

void Raft::MaybeForgetRemoved(NodeId peer) {
  if (peer == cfg_.id || conf_.Contains(peer) || log_.last_conf_index() > log_.committed()) return;
  auto it = progress_.find(peer);
  if (it == progress_.end()) return;
  // Keep replicating to a removed member until it holds the entry that removed it; then one last
  // heartbeat carries the commit index, so it learns its removal (and refuses to campaign).
  if (it->second.match < log_.last_conf_index()) return;
  SendHeartbeat(peer);
  progress_.erase(it);
}

void Raft::MaybeSendTimeoutNow(NodeId peer) {
  auto it = progress_.find(peer);
  if (it == progress_.end()) return;
  if (it->second.match == log_.last_index()) {
    Message m;
    m.type = MessageType::kTimeoutNow;
    m.to = peer;
    Send(std::move(m));
  } else {
    SendAppend(peer, true);
  }
}

void Raft::AbortTransfer() {
  transfer_target_ = kNoNode;
  transfer_elapsed_ = 0;
}

void Raft::AdvanceReads(NodeId from, uint64_t seq) {
  auto it = progress_.find(from);
  if (it == progress_.end()) return;
  it->second.acked_read_seq = std::max(it->second.acked_read_seq, seq);
  size_t quorum = conf_.VoterCount() / 2 + 1;
  while (!pending_reads_.empty()) {
    const PendingRead& read = pending_reads_.front();
    size_t acks = 0;
    for (const auto& [id, pr] : progress_) {
      if (!conf_.IsVoter(id)) continue;
      if (id == cfg_.id || pr.acked_read_seq >= read.seq) ++acks;
    }
    if (acks < quorum) break;
    read_states_.push_back(ReadState{read.request_id, read.index, Status::Ok()});
    pending_reads_.pop_front();
  }
}

void Raft::FailPendingReads(const Status& why) {
  for (const auto& read : pending_reads_) read_states_.push_back(ReadState{read.request_id, LogIndex(), why});
  pending_reads_.clear();
}

// ---------------------------------------------------------------------------------------------
// Client requests

bool Raft::CommittedEntryInCurrentTerm() const {
  return log_.TermAt(log_.committed()) == term_;
}

Result<Proposal> Raft::Propose(std::string data) {
  if (role_ != Role::kLeader) return Status::NotLeader(leader_.value());
  if (transfer_target_ != kNoNode) return Status::Retry("leadership transfer in progress");
  Entry e{term_, log_.last_index().next(), EntryType::kNormal, std::move(data)};
  Proposal p{e.index, e.term};
  AppendEntriesLocally({std::move(e)});
  pending_broadcast_ = true;
  return p;
}

Result<Proposal> Raft::ProposeConfChange(const ConfChange& cc) {
  if (role_ != Role::kLeader) return Status::NotLeader(leader_.value());
  if (transfer_target_ != kNoNode) return Status::Retry("leadership transfer in progress");
  // Without this, a new leader could start a change while one from an earlier term is still
  // uncommitted and two disjoint majorities could form (raft-dev, "single-server changes bug").
  if (!CommittedEntryInCurrentTerm())
    return Status::Retry("leader has not committed an entry of its term yet");
  if (log_.last_conf_index() > log_.committed())
    return Status::Retry("another membership change is in progress");
  ConfState next = conf_;
  if (!ApplyConfChange(cc, &next))
    return Status::InvalidArgument("membership change does not apply to the configuration");
  if (next.VoterCount() == 0) return Status::InvalidArgument("membership change would leave no voter");
  Entry e{term_, log_.last_index().next(), EntryType::kConfChange, EncodeConfChange(cc)};
  Proposal p{e.index, e.term};
  AppendEntriesLocally({std::move(e)});
  pending_broadcast_ = true;
  return p;
}

Status Raft::TransferLeadership(NodeId target) {
  if (role_ != Role::kLeader) return Status::NotLeader(leader_.value());
  if (target == cfg_.id) return Status::Ok();
  if (!conf_.IsVoter(target)) return Status::InvalidArgument("transfer target is not a voter");
  if (transfer_target_ == target) return Status::Ok();
  transfer_target_ = target;
  transfer_elapsed_ = 0;
  MaybeSendTimeoutNow(target);
  return Status::Ok();
}

Status Raft::ReadIndex(uint64_t request_id) {
  if (role_ != Role::kLeader) return Status::NotLeader(leader_.value());
  // §6.4: until an entry of its term commits, the leader may not know the latest commit index.
  if (!CommittedEntryInCurrentTerm())
    return Status::Retry("leader has not committed an entry of its term yet");
  if (conf_.VoterCount() == 1 && conf_.IsVoter(cfg_.id)) {
    read_states_.push_back(ReadState{request_id, log_.committed(), Status::Ok()});
    return Status::Ok();
  }
  pending_reads_.push_back(PendingRead{request_id, log_.committed(), ++read_seq_});
  BroadcastHeartbeat();
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Log and membership

void Raft::AppendEntriesLocally(std::vector<Entry> entries) {
  bool conf_touched = false;
  for (const auto& e : entries) conf_touched |= e.type == EntryType::kConfChange;
  LogIndex conf_before = log_.last_conf_index();
  log_.Append(std::move(entries));
  if (conf_touched || log_.last_conf_index() != conf_before) RefreshConfFromLog();
}

void Raft::RefreshConfFromLog() {
  conf_ = log_.conf();
  SyncProgressWithConf();
}

void Raft::SyncProgressWithConf() {
  if (role_ != Role::kLeader) return;
  for (const auto& [id, member] : conf_.members) {
    auto it = progress_.find(id);
    if (it != progress_.end() && it->second.node_uuid == member.node_uuid) continue;
    // New, or added back as another incarnation: its predecessor's match says nothing about it.
    Progress& pr = progress_[id];
    pr = Progress{};
    pr.next = log_.last_index().next();
    pr.recent_active = true;
    pr.node_uuid = member.node_uuid;
    if (id == cfg_.id) pr.match = log_.stable();
  }
}

void Raft::Compact(LogIndex index) {
  log_.Compact(std::min(index, log_.applied()));
}

void Raft::ReportUnreachable(NodeId peer) {
  if (role_ != Role::kLeader) return;
  auto it = progress_.find(peer);
  if (it != progress_.end() && it->second.state == Progress::State::kReplicate) it->second.BecomeProbe();
}

void Raft::ReportSnapshotFailure(NodeId peer) {
  if (role_ != Role::kLeader) return;
  auto it = progress_.find(peer);
  if (it != progress_.end() && it->second.state == Progress::State::kSnapshot) it->second.BecomeProbe();
}

// ---------------------------------------------------------------------------------------------
// Output

bool Raft::HasReady() const {
  HardState hs = CurrentHardState();
  return pending_broadcast_ || !msgs_.empty() || !chunks_.empty() || pending_snapshot_install_.has_value() ||
         hs.term != prev_hard_state_.term || hs.vote != prev_hard_state_.vote || log_.HasUnstable() ||
         log_.HasNextCommitted() || !read_states_.empty();
}

Ready Raft::GetReady() {
  if (role_ == Role::kLeader && pending_broadcast_) BroadcastAppend();
  pending_broadcast_ = false;

  Ready rd;
  rd.snapshot_chunks = std::move(chunks_);
  chunks_.clear();
  rd.snapshot = std::move(pending_snapshot_install_);
  pending_snapshot_install_.reset();
  HardState hs = CurrentHardState();
  // The commit index alone is not worth an fsync: it is only a hint on restart.
  if (hs.term != prev_hard_state_.term || hs.vote != prev_hard_state_.vote || rd.snapshot) {
    rd.hard_state = hs;
    prev_hard_state_ = hs;
  }
  rd.entries = log_.UnstableEntries();
  log_.MarkHandedToStorage();
  rd.messages = std::move(msgs_);
  msgs_.clear();
  rd.committed = log_.NextCommitted(kMaxApplyBytesPerReady);
  for (const auto& e : rd.committed) {
    ConfChange cc;
    if (e.type != EntryType::kConfChange || !DecodeConfChange(e.data, &cc) || cc.node != cfg_.id) continue;
    // A member reset and added back under its old id replays its old removal, then the re-add
    // (of its own incarnation: the add of a predecessor does not bring this server back).
    if (cc.type == ConfChangeType::kRemove) removed_ = true;
    if (cc.type == ConfChangeType::kAddLearner && IncarnationMatches(cc.node_uuid, cfg_.node_uuid))
      removed_ = false;
  }
  rd.read_states = std::move(read_states_);
  read_states_.clear();
  rd.role = role_;
  rd.leader = leader_;
  rd.term = term_;
  return rd;
}

void Raft::Advance(const Ready& rd) {
  if (!rd.entries.empty()) log_.StableTo(rd.entries.back().index, rd.entries.back().term);
  if (!rd.committed.empty()) log_.AppliedTo(rd.committed.back().index);
  if (role_ == Role::kLeader) {
    auto self = progress_.find(cfg_.id);
    if (self != progress_.end() && self->second.MaybeUpdate(log_.stable())) MaybeCommit();
  }
}

// ---------------------------------------------------------------------------------------------
// Invariants

void Raft::CheckInvariants() const {
  DISPOTIFY_CHECK(log_.snapshot().index <= log_.applied(), "applied below the snapshot");
  DISPOTIFY_CHECK(log_.applied() <= log_.committed(), "applied beyond commit");
  DISPOTIFY_CHECK(log_.committed() <= log_.last_index(), "commit beyond the log");
  DISPOTIFY_CHECK(log_.stable() <= log_.last_index(), "stable beyond the log");
  DISPOTIFY_CHECK(conf_ == log_.conf(), "configuration out of sync with the log");
  Term prev = log_.snapshot().term;
  for (LogIndex i = log_.first_index(); i <= log_.last_index(); i = i.next()) {
    const Entry& e = log_.At(i);
    DISPOTIFY_CHECK(e.index == i, "entry index does not match its position");
    DISPOTIFY_CHECK(e.term >= prev, "terms decrease along the log");
    DISPOTIFY_CHECK(e.term <= term_, "entry from a future term");
    prev = e.term;
  }
  if (role_ == Role::kLeader) {
    DISPOTIFY_CHECK(leader_ == cfg_.id && vote_ == cfg_.id, "a leader votes for itself");
    for (const auto& [id, pr] : progress_) {
      DISPOTIFY_CHECK(pr.match <= log_.last_index(), "a follower matches beyond the leader's log");
    }
  } else {
    DISPOTIFY_CHECK(progress_.empty(), "progress kept outside leadership");
  }
}

}  // namespace dispotify::consensus
