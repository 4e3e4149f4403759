#pragma once
// The data plane's front door, used by the public APIs (gRPC Files service, REST): upload a file
// to its replicas and commit its catalog entry, read it from any healthy replica, delete it.
//
// Upload (the acknowledgement rule of DESIGN.md §2):
//  1. file_id: given, or derived from the file name (FileIdFromPath, common/file_id.h). Checked
//     before anything else.
//  2. Fail fast, before reading a byte, when the Raft group has no leader or fewer than W nodes
//     are alive, where W = floor(R'/2) + 1 and R' = min(R, members): kUnavailable.
//  3. Take the lease "upload:<file_id>" (a catalog lock; TTL lock_ttl, renewed while bytes flow,
//     its fencing token checked by the catalog commit): concurrent uploads of one id are
//     serialized, the second fails with kAborted at once; an upload whose node died stops holding
//     the id once its lease lapses, and a retry of the same announced content (expected_sha256)
//     takes the lease over at once. While the lock is held and
//     no song has this id, any blob with this id on a replica is garbage from a failed upload, so
//     the replicas may overwrite it; when the song exists, they may not (a re-upload of the same
//     content succeeds as a no-op, other content fails with kAlreadyExists).
//  4. Targets: the first R' ALIVE nodes clockwise on the placement ring (a dead placement node is
//     skipped; repair moves the copy to its place when it is back). The bytes are read once from
//     the source in pieces of piece_size and queued to every target's ReplicaWriter (bounded
//     queues: memory is O(R x queue), whatever the file size); SHA-256 and size are computed on
//     the way. A target that fails or stalls is dropped; fewer than W left: abort, kUnavailable.
//  5. Every target verifies size and SHA-256 and makes the blob durable (fsync + rename); the
//     upload needs W confirmations.
//  6. One Raft command puts the song together with the confirmed replicas (conditional: the first
//     content committed for an id wins). A "commit unknown" is retried (the command is
//     idempotent). Only then is the upload acknowledged.
//  Any failure after step 3 deletes the copies this upload made (conditional on their SHA-256,
//  so an older version is never touched) and releases the lock: a failed upload leaves no visible
//  song. A crash in the middle leaves at most unreferenced blobs, which each node's scrubber
//  removes after a grace period.
//
// Read: the song from the catalog (linearizable unless asked otherwise); healthy replicas in the
// order: this node, then alive peers, then the others. A replica whose copy fails its checksum (or holds
// another version) is reported (its replica state becomes corrupt, and repair replaces it) and the next one
// is tried; a full read that already delivered bytes resumes on the next replica at the same offset with a
// verified read whose first bytes are skipped.
//
// Thread-safe: calls may run concurrently (one per request thread).

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/ids.h"
#include "common/status.h"
#include "node/catalog/metadata_store.h"
#include "node/catalog/proposer.h"
#include "node/catalog/types.h"

namespace dispotify::replication {

class PeerClient;

// What the client says about an upload (tags come from the API layer).
struct UploadRequest {
  std::string file_id;  // empty: FileIdFromPath(file_name)
  std::string file_name;
  std::string content_type;
  std::string title;
  std::string artist;
  std::string album;
  uint32_t track = 0;
  uint32_t year = 0;
  uint64_t duration_ms = 0;
  // Optional checks supplied by the client (e.g. a Content-Length or a digest header).
  std::optional<uint64_t> expected_size;
  std::optional<std::string> expected_sha256;
  // The client asks to replace other content stored under this id (otherwise kAlreadyExists).
  bool replace = false;
  // The signed-in user uploading ("" with security off): recorded as the song's owner.
  std::string uploader;
  // Called once the copies are confirmed and before the catalog commit, with the song as it will
  // be committed (size and SHA-256 set): the API layer completes its metadata (tags read from the
  // file). An error aborts the upload like any other failure (copies deleted, nothing visible).
  std::function<Status(catalog::Song* song)> before_commit;
};

// Pulls the upload's bytes: up to `max` bytes into `buf`; 0 at the end; an error aborts the upload.
using ByteSource = std::function<Result<size_t>(char* buf, size_t max)>;

struct UploadResult {
  catalog::Song song;
  std::vector<NodeId> replicas;  // confirmed copies
  bool created = true;           // false: the same content was already stored under this id
};

struct FileServiceOptions {
  NodeId self;
  size_t piece_size = 256 * 1024;
  uint64_t max_file_bytes = 2ull << 30;
  std::chrono::milliseconds commit_timeout{10000};
  std::chrono::milliseconds lock_ttl{10 * 60 * 1000};
  // How long an upload still waits for a replica's answer once a quorum of replicas confirmed
  // (at least; longer when the quorum itself took longer).
  std::chrono::milliseconds straggler_grace{1000};
  // How long a linearizable read may take to confirm the latest catalog state with the leader
  // before it fails with kUnavailable (the REST API answers 503).
  std::chrono::milliseconds read_timeout{2000};
};

// How a catalog read relates to the writes around it.
enum class ReadConsistency {
  // Reflects every change acknowledged before the read started, whichever node acknowledged it
  // (a ReadIndex through the leader first; kUnavailable when that cannot be done in time).
  kLinearizable,
  // This node's catalog as it is: available without a leader, possibly behind the cluster.
  kStale,
};

struct FileServiceDeps {
  catalog::MetadataStore* store = nullptr;
  catalog::Proposer* proposer = nullptr;
  PeerClient* peers = nullptr;
  // The current members (voters and learners) and the replication factor in force.
  std::function<std::vector<NodeId>()> members;
  std::function<uint32_t()> replication_factor;
};

// floor(r/2) + 1: copies an upload needs before it is acknowledged.
inline size_t WriteQuorum(size_t r) {
  return r / 2 + 1;
}

class FileService {
 public:
  FileService(FileServiceOptions options, FileServiceDeps deps);

  // Errors: kInvalidArgument (bad id / metadata, size or SHA-256 different from the expected
  // ones), kAlreadyExists (another content has this id), kAborted (an upload of this id is in
  // progress), kUnavailable (no leader, not enough live replicas, quorum lost mid-way),
  // kNoSpace (every target's disk is full), kCommitUnknown (the catalog commit could not be
  // confirmed), kFailedPrecondition (larger than max_file_bytes), or the source's error.
  Result<UploadResult> Upload(const UploadRequest& request, const ByteSource& source);

  // Makes the next reads of this node's catalog (store) reflect every change committed before
  // this call: OK at once for kStale; for kLinearizable a read-index round through the leader
  // (shared by concurrent readers) and the local apply, or kUnavailable after read_timeout.
  Status SyncForRead(ReadConsistency consistency);

  // The song, or kNotFound (after SyncForRead(consistency); kUnavailable when that failed).
  Result<catalog::Song> GetSong(std::string_view file_id,
                                ReadConsistency consistency = ReadConsistency::kLinearizable);

  // Reads `file_id`: the whole content (offset 0, length 0: verified) or a range. `on_song` is
  // called once, before any data. kNotFound, kUnavailable (no replica could serve it), or the
  // sink's error. The song is looked up with `consistency` (kStale when the caller has just
  // synced for this request).
  Status Read(std::string_view file_id, uint64_t offset, uint64_t length,
              const std::function<Status(const catalog::Song&)>& on_song,
              const std::function<Status(std::string_view)>& sink,
              ReadConsistency consistency = ReadConsistency::kLinearizable);

  // Reads the bytes of `song` as the caller read it from the catalog (its SHA-256 and size: a
  // copy of another version is never delivered), from its healthy replicas; same rules as Read.
  Status ReadSong(const catalog::Song& song, uint64_t offset, uint64_t length,
                  const std::function<Status(std::string_view)>& sink);

  // Reads the content `sha256` stored under `file_id` (a content-addressed read: no catalog read
  // through the leader, so it works without a quorum while one copy is reachable). Copies are
  // tried in the order: this node, the nodes this node's catalog lists for the file, then every
  // other member in placement order; a copy holding other bytes is skipped. `size` is the
  // content's size in bytes (the caller knows it from the catalog or from StatContent). Same
  // range and verification rules as Read.
  Status ReadContent(const std::string& file_id, const std::string& sha256, uint64_t size, uint64_t offset,
                     uint64_t length, const std::function<Status(std::string_view)>& sink);
  // The size of the content `sha256` under `file_id` from the first copy that holds it (re-hashed
  // on its node); kNotFound when no reachable copy does.
  Result<uint64_t> StatContent(const std::string& file_id, const std::string& sha256);

  // Deletes the song (a Raft command); its copies are then deleted in the background (repair
  // removes the replica records' blobs; scrubbers remove any blob no song references).
  Status Delete(std::string_view file_id);

  // Records that the copy of `file_id` on `node` failed its checksum (kCorrupt) or is not there
  // (kMissing); repair replaces it.
  void ReportBadCopy(const std::string& file_id, NodeId node, catalog::ReplicaState state);

 private:
  // Targets for a new upload: the first R' alive nodes clockwise; and W.
  Status ChooseTargets(const std::string& file_id, std::vector<NodeId>* targets, size_t* quorum);
  void DeleteCopies(const std::string& file_id, const std::vector<NodeId>& nodes, const std::string& sha256);
  // Copies of `file_id` worth trying for the content `sha256`, best first (see ReadContent).
  std::vector<NodeId> ContentCandidates(const std::string& file_id);
  // Reads from the first of `order` that serves the content (`sha256`, `size`); `report` records
  // copies found bad (catalog reads report them for repair; content reads do not, since a copy of
  // another version is not wrong there).
  Status ReadFromCopies(const std::string& file_id, const std::string& sha256, uint64_t size,
                        const std::vector<NodeId>& order, uint64_t offset, uint64_t length,
                        const std::function<Status(std::string_view)>& sink, bool report);

  const FileServiceOptions options_;
  const FileServiceDeps deps_;
};

}  // namespace dispotify::replication
