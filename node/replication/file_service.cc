#include "node/replication/file_service.h"

#include <algorithm>
#include <memory>
#include <random>
#include <set>
#include <utility>

#include "common/file_id.h"
#include "common/logging.h"
#include "common/sha256.h"
#include "node/replication/peer_client.h"
#include "node/replication/placement.h"

namespace dispotify::replication {
namespace {

std::string RandomOwnerSuffix() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t v = rng();
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) out[static_cast<size_t>(i)] = kHex[v & 0xf];
  return out;
}

std::string LowerHex(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return s;
}

// The upload's lease on its file id ("upload:<file_id>", a catalog lock): taken before any byte
// is written, renewed while bytes flow, released on every exit path (best effort: it lapses
// anyway). Its fencing token goes with the catalog commit, so an upload that lost its lease (its
// node paused or cut off past the TTL, or the same content retried elsewhere) can never commit.
class UploadLease {
 public:
  UploadLease(catalog::Proposer* proposer, std::string name, std::string share_key, NodeId self,
              std::chrono::milliseconds ttl, std::chrono::milliseconds timeout)
      : proposer_(proposer),
        name_(std::move(name)),
        share_key_(std::move(share_key)),
        owner_((share_key_.empty() ? std::string("-") : share_key_) + "/" + std::to_string(self.value()) +
               ":" + RandomOwnerSuffix()),
        ttl_(ttl),
        timeout_(timeout) {}
  ~UploadLease() {
    if (token_ == 0 || lost_) return;
    auto r = proposer_->Propose(catalog::ReleaseLockCmd{name_, owner_}, std::chrono::milliseconds(3000));
    if (!r.ok()) DLOG_WARN << "releasing " << name_ << ": " << r.status().ToString() << " (it will lapse)";
  }
  UploadLease(const UploadLease&) = delete;
  UploadLease& operator=(const UploadLease&) = delete;

  Status Acquire() {
    const auto started = std::chrono::steady_clock::now();
    auto r = proposer_->Propose(catalog::AcquireLockCmd{name_, owner_, ttl_.count(), share_key_}, timeout_);
    if (!r.ok()) {
      if (r.status().code() == StatusCode::kFailedPrecondition)
        return Status::Aborted("another upload of this file_id is in progress (its lease lapses " +
                               std::to_string(ttl_.count()) + " ms after its last progress)");
      return r.status();
    }
    token_ = std::stoull(*r);
    renewed_ = started;  // the lease runs from when it was asked for, at the latest
    return Status::Ok();
  }

  // Renews once a third of the TTL has passed since the last renewal, so the lease always has at
  // least two thirds of it left when this returns OK.
  Status RenewIfDue() {
    if (std::chrono::steady_clock::now() - renewed_ < ttl_ / 3) return Status::Ok();
    return Confirm();
  }

  // Renews now: OK while this upload still holds its lease.
  Status Confirm() {
    if (lost_) return Status::Aborted("the upload lost its lease on " + name_);
    const auto started = std::chrono::steady_clock::now();
    auto r = proposer_->Propose(catalog::RenewLockCmd{name_, owner_, ttl_.count()},
                                std::min<std::chrono::milliseconds>(timeout_, ttl_ / 3));
    if (r.ok()) {
      renewed_ = started;
      return Status::Ok();
    }
    if (r.status().code() == StatusCode::kFailedPrecondition) lost_ = true;
    return Status::Aborted("the upload lost its lease on " + name_ + ": " + r.status().message());
  }

  // Marks the lease lost after a fenced command was refused.
  void SetLost() { lost_ = true; }
  bool lost() const { return lost_; }
  const std::string& name() const { return name_; }
  uint64_t token() const { return token_; }

 private:
  catalog::Proposer* proposer_;
  const std::string name_;
  const std::string share_key_;
  const std::string owner_;
  const std::chrono::milliseconds ttl_;
  const std::chrono::milliseconds timeout_;
  uint64_t token_ = 0;
  bool lost_ = false;
  std::chrono::steady_clock::time_point renewed_{};
};

}  // namespace

FileService::FileService(FileServiceOptions options, FileServiceDeps deps)
    : options_(options), deps_(std::move(deps)) {}

Status FileService::ChooseTargets(const std::string& file_id, std::vector<NodeId>* targets, size_t* quorum) {
  const std::vector<NodeId> members = deps_.members();
  if (members.empty()) return Status::Unavailable("this node does not know the cluster's members yet");
  const size_t r = std::min<size_t>(deps_.replication_factor(), members.size());
  *quorum = WriteQuorum(r);
  PlacementRing ring(members);
  targets->clear();
  for (NodeId node : ring.Placement(file_id, members.size())) {
    if (targets->size() == r) break;
    if (deps_.peers->IsAlive(node)) targets->push_back(node);
  }
  if (targets->size() < *quorum) {
    return Status::Unavailable("only " + std::to_string(targets->size()) + " of " +
                               std::to_string(members.size()) + " nodes are reachable; an upload needs " +
                               std::to_string(*quorum) + " copies");
  }
  return Status::Ok();
}

void FileService::DeleteCopies(const std::string& file_id, const std::vector<NodeId>& nodes,
                               const std::string& sha256) {
  for (NodeId node : nodes) {
    Status s = deps_.peers->DeleteFile(node, file_id, sha256);
    if (!s.ok()) {
      DLOG_WARN << "upload of " << file_id << " failed; its copy on node " << node.value()
                << " could not be deleted now (" << s.ToString() << "); the scrubber will remove it";
    }
  }
}

Result<UploadResult> FileService::Upload(const UploadRequest& request, const ByteSource& source) {
  const std::string file_id = request.file_id.empty() ? FileIdFromPath(request.file_name) : request.file_id;
  if (!catalog::IsValidFileId(file_id)) {
    return Status::InvalidArgument(
        request.file_id.empty() ? "no file_id given and none can be derived from the file name"
                                : "invalid file_id: 1-128 characters of A-Z a-z 0-9 . _ - (not . or ..)");
  }
  if (request.expected_sha256 && !IsSha256Hex(*request.expected_sha256))
    return Status::InvalidArgument("the expected SHA-256 is not 64 hex digits");
  if (request.expected_size && *request.expected_size > options_.max_file_bytes)
    return Status::FailedPrecondition("the file is larger than the limit of " +
                                      std::to_string(options_.max_file_bytes) + " bytes");
  if (!deps_.proposer->HasLeader()) return Status::Unavailable("no quorum: the cluster has no leader");

  std::vector<NodeId> targets;
  size_t quorum = 0;
  DISPOTIFY_RETURN_IF_ERROR(ChooseTargets(file_id, &targets, &quorum));

  // Attempts that announce the same content share the lease: a retry through any node takes it
  // over at once instead of waiting for a dead attempt's lease to lapse.
  const std::string share_key =
      request.expected_sha256 ? "sha256:" + LowerHex(*request.expected_sha256) : std::string();
  UploadLease lease(deps_.proposer, "upload:" + file_id, share_key, options_.self, options_.lock_ttl,
                    options_.commit_timeout);
  DISPOTIFY_RETURN_IF_ERROR(lease.Acquire());
  // Copies this upload made are deleted on failure only when they can be nobody else's: not when
  // the song already holds this content (they are its copies), and only while this upload still
  // holds its lease (confirmed now: a retry of the same content may have taken it over silently,
  // and its copies have the same SHA-256). Otherwise the scrubber removes true orphans.
  bool song_has_content = false;  // set once the content is known
  auto delete_copies = [&](const std::vector<NodeId>& nodes, const std::string& sha256) {
    if (song_has_content || lease.lost() || !lease.Confirm().ok()) return;
    DeleteCopies(file_id, nodes, sha256);
  };

  auto existing = deps_.store->GetSong(file_id);
  if (!existing.ok()) return existing.status();
  const bool exists = existing->has_value();

  // Open one writer per target; a target that cannot even start is dropped.
  WriteExpectations expect;
  expect.size = request.expected_size;
  // A replica's rename replaces its blob only after a replaced song was deleted (below), and only
  // while this upload still holds its lease (the replica checks the token).
  expect.overwrite = !exists || request.replace;
  expect.fence_name = lease.name();
  expect.fence_token = lease.token();
  std::vector<std::unique_ptr<ReplicaWriter>> writers;
  Status last_error = Status::Unavailable("no replica accepted the upload");
  for (NodeId node : targets) {
    auto w = deps_.peers->OpenWriter(node, file_id, expect);
    if (w.ok()) {
      writers.push_back(std::move(w).value());
    } else {
      last_error = w.status();
      DLOG_WARN << "upload of " << file_id << ": node " << node.value()
                << " refused: " << w.status().ToString();
    }
  }
  auto drop_failed = [&](const std::unique_ptr<ReplicaWriter>& w, const Status& s) {
    DLOG_WARN << "upload of " << file_id << ": dropping node " << w->node().value() << ": " << s.ToString();
    last_error = s;
  };
  auto abort_all = [&](Status why) -> Status {
    for (auto& w : writers) w->Abort();
    writers.clear();
    return why;
  };
  auto below_quorum = [&]() {
    Status why = last_error;
    std::string msg = "only " + std::to_string(writers.size()) + " of " + std::to_string(targets.size()) +
                      " replicas are still writing; an upload needs " + std::to_string(quorum) + " (" +
                      why.message() + ")";
    if (why.code() == StatusCode::kNoSpace || why.code() == StatusCode::kAlreadyExists) {
      return Status::FromCode(why.code(), msg);
    }
    return Status::Unavailable(msg);
  };
  if (writers.size() < quorum) return abort_all(below_quorum());

  Sha256 hasher;
  uint64_t size = 0;
  while (true) {
    // Fill a whole piece: sources (an HTTP body) often return a few KiB per read, and every
    // piece costs a message to each replica and a hand-off to its writer thread.
    auto piece = std::make_shared<std::string>(options_.piece_size, '\0');
    size_t filled = 0;
    bool ended = false;
    while (filled < piece->size()) {
      auto n = source(piece->data() + filled, piece->size() - filled);
      if (!n.ok()) return abort_all(n.status());
      if (*n == 0) {
        ended = true;
        break;
      }
      filled += *n;
    }
    if (filled == 0) break;
    piece->resize(filled);
    size += filled;
    if (size > options_.max_file_bytes || (request.expected_size && size > *request.expected_size)) {
      return abort_all(size > options_.max_file_bytes
                           ? Status::FailedPrecondition("the file is larger than the limit of " +
                                                        std::to_string(options_.max_file_bytes) + " bytes")
                           : Status::InvalidArgument("more bytes than the announced size"));
    }
    hasher.Update(*piece);
    std::shared_ptr<const std::string> shared = std::move(piece);
    for (auto it = writers.begin(); it != writers.end();) {
      Status s = (*it)->Append(shared);
      if (s.ok()) {
        ++it;
      } else {
        drop_failed(*it, s);
        (*it)->Abort();
        it = writers.erase(it);
      }
    }
    if (writers.size() < quorum) return abort_all(below_quorum());
    if (Status s = lease.RenewIfDue(); !s.ok()) return abort_all(s);
    if (ended) break;
  }
  const std::string sha256 = ToHex(hasher.Final());
  if (request.expected_size && size != *request.expected_size) {
    return abort_all(Status::InvalidArgument("received " + std::to_string(size) + " bytes, expected " +
                                             std::to_string(*request.expected_size)));
  }
  if (request.expected_sha256 && LowerHex(*request.expected_sha256) != sha256) {
    return abort_all(Status::InvalidArgument("the content's SHA-256 is " + sha256 + ", not the expected " +
                                             LowerHex(*request.expected_sha256)));
  }
  const bool replacing = exists && (*existing)->sha256 != sha256;
  song_has_content = exists && !replacing;
  if (replacing && !request.replace) {
    return abort_all(
        Status::AlreadyExists("file_id " + file_id + " already holds other content (ask to replace it)"));
  }
  if (Status s = lease.RenewIfDue(); !s.ok()) return abort_all(s);
  if (replacing) {
    // The old version goes first (fenced by the lease), so that no copy of the new bytes is ever
    // on a replica while the catalog names the old ones. If storing the new version fails after
    // this point, the id is empty and the client retries.
    auto deleted = deps_.proposer->Propose(catalog::DeleteSongCmd{file_id, lease.name(), lease.token()},
                                           options_.commit_timeout);
    if (!deleted.ok() && deleted.status().code() != StatusCode::kNotFound) {
      if (deleted.status().code() == StatusCode::kFailedPrecondition) lease.SetLost();
      return abort_all(deleted.status().code() == StatusCode::kFailedPrecondition
                           ? Status::Aborted(deleted.status().message())
                           : deleted.status());
    }
  }

  // Every replica checks, commits and answers in parallel (remote ones on their writers' own
  // threads). Once a quorum confirmed, the others get a grace period (at least straggler_grace, and
  // at least as long as the quorum took); a replica still silent then — a hung node, a stalled
  // disk — is abandoned so that it does not hold the upload up to its finish timeout. Repair gives
  // the song its missing copies afterwards.
  std::vector<NodeId> confirmed;
  const auto sealed_at = std::chrono::steady_clock::now();
  // Remote replicas first: sealing the local one commits it here (an fsync), meanwhile the
  // others commit on their nodes.
  for (auto& w : writers) {
    if (w->node() != options_.self) w->Seal(size, sha256);
  }
  for (auto& w : writers) {
    if (w->node() == options_.self) w->Seal(size, sha256);
  }
  std::optional<std::chrono::steady_clock::time_point> stop_waiting;
  while (!writers.empty()) {
    for (auto it = writers.begin(); it != writers.end();) {
      // A short wait on each in turn: the first answers arrive within milliseconds of each other.
      auto answer = (*it)->WaitSealed(std::chrono::steady_clock::now() + std::chrono::milliseconds(2));
      if (!answer) {
        ++it;
        continue;
      }
      if (answer->ok()) {
        confirmed.push_back((*it)->node());
      } else {
        drop_failed(*it, *answer);
      }
      it = writers.erase(it);
    }
    if (confirmed.size() + writers.size() < quorum) {  // a quorum is out of reach
      for (auto& w : writers) w->Abort();
      writers.clear();
    }
    const auto now = std::chrono::steady_clock::now();
    if (confirmed.size() >= quorum && !stop_waiting) {
      stop_waiting =
          now + std::max<std::chrono::steady_clock::duration>(options_.straggler_grace, now - sealed_at);
    }
    if (stop_waiting && now >= *stop_waiting) {
      for (auto& w : writers) {
        drop_failed(w, Status::Timeout("no answer " + std::to_string(options_.straggler_grace.count()) +
                                       "+ ms after a quorum of replicas confirmed; repair adds the copy"));
        w->Abort();
      }
      writers.clear();
    }
  }
  if (confirmed.size() < quorum) {
    // Replicas refuse the commit of an upload whose lease was taken over (paused past its TTL):
    // that is a conflict for the client (409), not an outage.
    if (lease.lost() || !lease.Confirm().ok()) {
      if (lease.lost())
        return Status::Aborted("the upload lost its lease on " + lease.name() + ": " +
                               below_quorum().message());
      return below_quorum();
    }
    delete_copies(confirmed, sha256);
    return below_quorum();
  }

  catalog::Song song;
  song.file_id = file_id;
  song.title = request.title;
  song.artist = request.artist;
  song.album = request.album;
  song.file_name = request.file_name;
  song.content_type = request.content_type;
  song.track = request.track;
  song.year = request.year;
  song.duration_ms = request.duration_ms;
  song.size_bytes = size;
  song.sha256 = sha256;
  if (exists && !replacing) {
    // Same content again: nothing to commit; the copies just written replaced identical ones.
    return UploadResult{**existing, confirmed, false};
  }
  if (request.before_commit) {
    if (Status s = request.before_commit(&song); !s.ok()) {
      delete_copies(confirmed, sha256);
      return s;
    }
    song.file_id = file_id;  // the hook completes metadata; identity and content stay
    song.size_bytes = size;
    song.sha256 = sha256;
  }

  if (Status s = lease.RenewIfDue(); !s.ok()) return s;  // the copies stay: they may be shared
  catalog::PutSongCmd put{song, /*if_absent=*/true, confirmed, lease.name(), lease.token(), request.uploader};
  const auto deadline = std::chrono::steady_clock::now() + options_.commit_timeout;
  Result<std::string> committed = Status::Unavailable("not proposed");
  bool maybe_committed = false;  // an earlier attempt's outcome is unknown
  while (true) {
    auto remaining =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    committed = deps_.proposer->Propose(put, std::max(remaining, std::chrono::milliseconds(1)));
    // A retry of an unknown outcome is safe: the same content under the same id is a no-op.
    if (committed.ok() || committed.status().code() != StatusCode::kCommitUnknown ||
        std::chrono::steady_clock::now() >= deadline)
      break;
    maybe_committed = true;
  }
  if (!committed.ok() && committed.status().code() == StatusCode::kFailedPrecondition && maybe_committed) {
    // The fence refused a retry: the lease lapsed meanwhile, perhaps because the first attempt
    // committed (and released nothing). The catalog says which.
    auto stored = GetSong(file_id);
    if (stored.ok() && stored->sha256 == sha256) committed = std::string();
  }
  if (!committed.ok()) {
    const StatusCode code = committed.status().code();
    if (code == StatusCode::kFailedPrecondition) {
      lease.SetLost();
      return Status::Aborted(committed.status().message());
    }
    // Only a definite refusal by the catalog means the song was not stored; after a timeout or
    // an unreachable leader it may have been, and its copies must stay.
    if (code == StatusCode::kAlreadyExists || code == StatusCode::kInvalidArgument)
      delete_copies(confirmed, sha256);
    return committed.status();
  }
  auto stored = deps_.store->GetSong(file_id);
  if (stored.ok() && stored->has_value()) song = **stored;
  return UploadResult{std::move(song), std::move(confirmed), true};
}

Status FileService::SyncForRead(ReadConsistency consistency) {
  if (consistency == ReadConsistency::kStale) return Status::Ok();
  return deps_.proposer->CatchUp(options_.read_timeout);
}

Result<catalog::Song> FileService::GetSong(std::string_view file_id, ReadConsistency consistency) {
  if (!catalog::IsValidFileId(file_id)) return Status::InvalidArgument("invalid file_id");
  DISPOTIFY_RETURN_IF_ERROR(SyncForRead(consistency));
  auto song = deps_.store->GetSong(file_id);
  if (!song.ok()) return song.status();
  if (!song->has_value()) return Status::NotFound("no song with file_id " + std::string(file_id));
  return std::move(**song);
}

Status FileService::Read(std::string_view file_id_view, uint64_t offset, uint64_t length,
                         const std::function<Status(const catalog::Song&)>& on_song,
                         const std::function<Status(std::string_view)>& sink, ReadConsistency consistency) {
  auto song = GetSong(file_id_view, consistency);
  if (!song.ok()) return song.status();
  if (offset > song->size_bytes || (length > 0 && offset + length > song->size_bytes) ||
      (length == 0 && offset > 0 && offset >= song->size_bytes)) {
    return Status::InvalidArgument("range outside the file");
  }
  DISPOTIFY_RETURN_IF_ERROR(on_song(*song));
  return ReadSong(*song, offset, length, sink);
}

Status FileService::ReadSong(const catalog::Song& song, uint64_t offset, uint64_t length,
                             const std::function<Status(std::string_view)>& sink) {
  const std::string& file_id = song.file_id;
  if (offset > song.size_bytes || (length > 0 && offset + length > song.size_bytes) ||
      (length == 0 && offset > 0 && offset >= song.size_bytes)) {
    return Status::InvalidArgument("range outside the file");
  }
  auto replicas = deps_.store->GetReplicas(file_id);
  if (!replicas.ok()) return replicas.status();

  // This node first (no network), then alive peers, then the rest (the health table may lag).
  std::vector<NodeId> order;
  for (const auto& r : *replicas) {
    if (r.state == catalog::ReplicaState::kHealthy && r.node == options_.self) order.push_back(r.node);
  }
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& r : *replicas) {
      if (r.state != catalog::ReplicaState::kHealthy || r.node == options_.self) continue;
      if (deps_.peers->IsAlive(r.node) == (pass == 0)) order.push_back(r.node);
    }
  }
  return ReadFromCopies(file_id, song.sha256, song.size_bytes, order, offset, length, sink, /*report=*/true);
}

std::vector<NodeId> FileService::ContentCandidates(const std::string& file_id) {
  std::vector<NodeId> order{options_.self};
  auto add = [&](NodeId node) {
    if (std::find(order.begin(), order.end(), node) == order.end()) order.push_back(node);
  };
  // The local catalog may be behind, but where it says a copy is, one usually is.
  if (auto replicas = deps_.store->GetReplicas(file_id); replicas.ok()) {
    for (const auto& r : *replicas) {
      if (deps_.peers->IsAlive(r.node)) add(r.node);
    }
  }
  const std::vector<NodeId> members = deps_.members();
  if (!members.empty()) {
    PlacementRing ring(members);
    const std::vector<NodeId> placed = ring.Placement(file_id, members.size());
    for (NodeId node : placed) {
      if (deps_.peers->IsAlive(node)) add(node);
    }
    for (NodeId node : placed) add(node);  // the health table may lag: the others last
  }
  return order;
}

Result<uint64_t> FileService::StatContent(const std::string& file_id, const std::string& sha256) {
  if (!catalog::IsValidFileId(file_id)) return Status::InvalidArgument("invalid file_id");
  Status last = Status::NotFound("no reachable copy of " + file_id + " holds the content " + sha256);
  for (NodeId node : ContentCandidates(file_id)) {
    // The copy's header says its size and digest: a ranged read of one byte, so that a URL with
    // a made-up digest costs no re-hash of whole files (the bytes served are verified anyway).
    std::optional<BlobInfo> found;
    Status s = deps_.peers->ReadFile(
        node, file_id, 0, 1,
        [&](const BlobInfo& info) {
          found = info;
          return Status::Ok();
        },
        [](std::string_view) { return Status::Ok(); });
    if (found && found->sha256 == sha256) return found->size;
    if (!s.ok() && s.code() != StatusCode::kNotFound && !found) last = s;
  }
  if (last.code() != StatusCode::kNotFound)
    return Status::Unavailable("no copy of " + file_id + " could be checked: " + last.message());
  return last;
}

Status FileService::ReadContent(const std::string& file_id, const std::string& sha256, uint64_t size,
                                uint64_t offset, uint64_t length,
                                const std::function<Status(std::string_view)>& sink) {
  if (!catalog::IsValidFileId(file_id)) return Status::InvalidArgument("invalid file_id");
  if (offset > size || (length > 0 && offset + length > size) ||
      (length == 0 && offset > 0 && offset >= size))
    return Status::InvalidArgument("range outside the file");
  return ReadFromCopies(file_id, sha256, size, ContentCandidates(file_id), offset, length, sink,
                        /*report=*/false);
}

Status FileService::ReadFromCopies(const std::string& file_id, const std::string& sha256, uint64_t size,
                                   const std::vector<NodeId>& order, uint64_t offset, uint64_t length,
                                   const std::function<Status(std::string_view)>& sink, bool report) {
  const bool full = offset == 0 && length == 0;
  uint64_t delivered = 0;  // bytes handed to the sink so far
  Status last = Status::Unavailable("no healthy replica of " + file_id);
  for (NodeId node : order) {
    uint64_t seen = 0;  // bytes of this attempt's stream (a verified retry re-reads from 0)
    bool sink_failed = false;
    Status sink_error;
    auto on_info = [&](const BlobInfo& info) -> Status {
      if (info.sha256 != sha256 || info.size != size) {
        return Status::Corruption("node " + std::to_string(node.value()) + " holds another version of " +
                                  file_id);
      }
      return Status::Ok();
    };
    auto relay = [&](std::string_view data) -> Status {
      // Skip what an earlier replica already delivered.
      const uint64_t start = seen;
      seen += data.size();
      if (seen <= delivered) return Status::Ok();
      if (start < delivered) data.remove_prefix(static_cast<size_t>(delivered - start));
      Status s = sink(data);
      if (!s.ok()) {
        sink_failed = true;
        sink_error = s;
        return s;
      }
      delivered += data.size();
      return Status::Ok();
    };
    Status s = Status::Ok();
    if (full && delivered == 0) {
      // A streamed read verifies the SHA-256 only at its end, after the bytes went out; so the
      // copy is re-hashed first (on its node), and the stream itself is verified again. The
      // second pass usually comes from the page cache. (Per-block checksums would remove it.)
      auto verified = deps_.peers->VerifyFile(node, file_id);
      if (!verified.ok()) {
        s = verified.status();
      } else if (verified->sha256 != sha256) {
        s = Status::Corruption("node " + std::to_string(node.value()) + " holds another version of " +
                               file_id);
      }
    }
    if (s.ok()) {
      s = full ? deps_.peers->ReadFile(node, file_id, 0, 0, on_info, relay)
               : deps_.peers->ReadFile(node, file_id, offset + delivered, length - delivered, on_info, relay);
    }
    if (s.ok()) return s;
    if (sink_failed) return sink_error;
    if (report && s.code() == StatusCode::kCorruption)
      ReportBadCopy(file_id, node, catalog::ReplicaState::kCorrupt);
    if (report && s.code() == StatusCode::kNotFound)
      ReportBadCopy(file_id, node, catalog::ReplicaState::kMissing);
    DLOG_WARN << "read of " << file_id << " from node " << node.value() << " failed: " << s.ToString()
              << "; trying another replica";
    last = s;
    if (!full && delivered == length) return Status::Ok();
  }
  return Status::Unavailable("no replica could serve " + file_id + ": " + last.message());
}

Status FileService::Delete(std::string_view file_id) {
  if (!catalog::IsValidFileId(file_id)) return Status::InvalidArgument("invalid file_id");
  auto r = deps_.proposer->Propose(catalog::DeleteSongCmd{std::string(file_id)}, options_.commit_timeout);
  return r.status();
}

void FileService::ReportBadCopy(const std::string& file_id, NodeId node, catalog::ReplicaState state) {
  catalog::Replica replica{file_id, node, state, 0};
  auto r = deps_.proposer->Propose(catalog::SetReplicaCmd{replica}, std::chrono::milliseconds(2000));
  if (!r.ok()) {
    DLOG_WARN << "could not report the bad copy of " << file_id << " on node " << node.value() << ": "
              << r.status().ToString();
  }
}

}  // namespace dispotify::replication
