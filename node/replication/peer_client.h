#pragma once
// The node's client for file traffic to other nodes (the Replication gRPC service,
// proto/dispotify/v1/replication.proto), and the table of which peers are alive.
//
// Every operation names a node id; the id of this node is served from the local BlobStore
// without gRPC, so callers (upload, read, repair) treat every replica the same way.
//
// Deadlines and retries: every unary call has a deadline (call_timeout) and is retried up to
// max_attempts times on UNAVAILABLE / DEADLINE_EXCEEDED with exponential backoff and full jitter
// (backoff_base doubling up to backoff_max). A read is retried only before its first byte reached
// the sink (in fact only before on_info, which is called once). Streams (ReplicaWriter) are never
// retried: the caller decides (an upload continues with the other replicas; repair tries again
// later).
//
// Health: a background thread calls Health on every peer every health_interval (each with its own
// deadline, in parallel, so a dead peer delays nobody); a peer is alive when it answered within
// health_ttl. Until its first answer a peer counts as alive (a fresh node must not refuse
// uploads for the first seconds); after that, only a recent answer counts. The grace lasts
// health_ttl from the first probe: a peer that never answers is not alive after that (and a
// client whose health thread never started counts every listed peer alive).
//
// Timeouts of the streams: a ReadFile waits at most call_timeout for its first message and
// stall_timeout for each later one (time spent in the caller's sink does not count), then fails
// with kTimeout. A PullFile's deadline is finish_timeout (it moves a whole file).
//
// Thread-safe.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/ids.h"
#include "common/status.h"

namespace grpc {
class ChannelCredentials;
}  // namespace grpc

namespace dispotify::replication {

class BlobStore;

// One replica being written, local or remote. Driven by one thread (the upload's).
class ReplicaWriter {
 public:
  virtual ~ReplicaWriter() = default;
  virtual NodeId node() const = 0;
  // Queues a piece of content. Returns at once unless the writer's bounded queue is full; then
  // waits until there is room, up to stall_timeout, after which the writer fails (a stalled peer
  // is dropped rather than stalling the upload). Once failed, returns the failure every time.
  virtual Status Append(std::shared_ptr<const std::string> piece) = 0;
  // Ends the content: the replica checks `size` and `sha256` (lowercase hex) against what it
  // received, makes the blob durable and answers. Waits at most finish_timeout. Seal followed by
  // WaitSealed until it answers.
  Status Finish(uint64_t size, const std::string& sha256);
  // Finish in two steps, so that an upload waits for its replicas together and can stop waiting
  // for a straggler once enough copies are confirmed. Seal ends the content and returns at once (a
  // local replica commits here). WaitSealed waits until `deadline` for the answer: the replica's
  // status, or nullopt while it is still pending (call again, or Abort); kTimeout once
  // finish_timeout has passed since Seal.
  virtual void Seal(uint64_t size, const std::string& sha256) = 0;
  virtual std::optional<Status> WaitSealed(std::chrono::steady_clock::time_point deadline) = 0;
  // Abandons the write; the replica keeps nothing (unless a sealed replica committed before the
  // cancel reached it). No-op once WaitSealed answered. Also done by the destructor.
  virtual void Abort() = 0;
};

struct WriteExpectations {
  std::optional<uint64_t> size;
  std::optional<std::string> sha256;
  bool overwrite = false;
  // The upload's lease; see BlobWriteOptions::fence_token.
  std::string fence_name;
  uint64_t fence_token = 0;
};

// A blob's identity as a replica reports it.
struct BlobInfo {
  uint64_t size = 0;
  std::string sha256;
};

struct PeerStats {
  bool alive = true;
  bool ever_answered = false;
  std::chrono::steady_clock::time_point last_answer{};
  uint64_t files = 0;
  uint64_t bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t total_bytes = 0;
  uint64_t applied_index = 0;
  std::string last_error;
};

struct PeerClientOptions {
  NodeId self;
  std::string cluster_id;
  std::chrono::milliseconds call_timeout{5000};
  std::chrono::milliseconds stall_timeout{10000};
  std::chrono::milliseconds finish_timeout{30000};
  int max_attempts = 3;
  std::chrono::milliseconds backoff_base{50};
  std::chrono::milliseconds backoff_max{1000};
  std::chrono::milliseconds health_interval{2000};
  std::chrono::milliseconds health_ttl{6000};
  // Pieces a remote writer may queue (each up to an upload's piece size, 256 KiB).
  size_t writer_queue_pieces = 8;
  // The node's mTLS channel credentials (common/tls/grpc_credentials.h); null: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> channel_credentials;
};

class PeerClient {
 public:
  // `local` (this node's store) must outlive the client.
  PeerClient(PeerClientOptions options, BlobStore* local);
  ~PeerClient();
  PeerClient(const PeerClient&) = delete;
  PeerClient& operator=(const PeerClient&) = delete;

  // Replaces the address book (from the Raft configuration). Peers no longer listed are
  // forgotten; channels to unchanged addresses are kept.
  void SetPeers(const std::map<NodeId, std::string>& addresses);
  std::optional<std::string> Address(NodeId node) const;

  // Starts / stops the health-check thread. Stop is idempotent and also run by the destructor.
  void Start();
  void Stop();
  // Self is always alive; unknown nodes are not.
  bool IsAlive(NodeId node) const;
  // How long `node` has been down: since its last answer, or since the first probe when it never
  // answered. Zero for self, for an alive node and for a node not in the address book.
  std::chrono::milliseconds DownFor(NodeId node) const;
  // The other nodes of the address book (self is not listed).
  std::map<NodeId, PeerStats> Peers() const;

  // Starts writing `file_id` on `node`.
  Result<std::unique_ptr<ReplicaWriter>> OpenWriter(NodeId node, const std::string& file_id,
                                                    const WriteExpectations& expect);
  // Reads `file_id` from `node`: the whole content, verified (offset 0, length 0), or a range
  // (not verified). `on_info` is called once before any data with the blob's size and SHA-256.
  // kNotFound, kCorruption (the copy failed its checksum), kUnavailable / kTimeout, or the sink's
  // error.
  Status ReadFile(NodeId node, const std::string& file_id, uint64_t offset, uint64_t length,
                  const std::function<Status(const BlobInfo&)>& on_info,
                  const std::function<Status(std::string_view)>& sink);
  // Deletes the copy on `node` if its SHA-256 is `sha256` (empty: any). OK when absent;
  // kFailedPrecondition when the copy has another SHA-256 (it is kept).
  Status DeleteFile(NodeId node, const std::string& file_id, const std::string& sha256);
  // Re-hashes the copy on `node`: OK, kNotFound, kCorruption.
  Result<BlobInfo> VerifyFile(NodeId node, const std::string& file_id);
  // Makes `target` copy `file_id` from `source` (verified against size and sha256).
  Status PullFile(NodeId target, NodeId source, const std::string& file_id, uint64_t size,
                  const std::string& sha256, bool overwrite);
  // ReadFile from the node serving at `address` (the server side of PullFile, which is given an
  // address rather than a node id). Same contract as ReadFile.
  Status ReadFileFrom(const std::string& address, const std::string& file_id, uint64_t offset,
                      uint64_t length, const std::function<Status(const BlobInfo&)>& on_info,
                      const std::function<Status(std::string_view)>& sink);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The local side of the Replication operations, on one node's store: PeerClient serves its own
// node with them and ReplicationService serves the other nodes, so both behave alike.
namespace local {

// Content bytes per piece a read hands to its sink (and per ReadFileChunk on the wire).
inline constexpr size_t kReadPieceSize = 256 * 1024;

// ReadFile on `store` (same contract as PeerClient::ReadFile): a full read (offset 0, length 0)
// is verified, and the piece that would complete a corrupt copy is withheld (kCorruption).
Status ReadBlob(BlobStore& store, const std::string& file_id, uint64_t offset, uint64_t length,
                const std::function<Status(const BlobInfo&)>& on_info,
                const std::function<Status(std::string_view)>& sink);
// Deletes the blob if it holds `sha256` (empty: any): true when it was deleted, false when absent,
// kFailedPrecondition when it holds another SHA-256. A copy whose header is unreadable is deleted
// whatever `sha256` says (it can serve nobody).
Result<bool> DeleteBlob(BlobStore& store, const std::string& file_id, const std::string& sha256);
// Re-hashes the blob: its size and SHA-256, kNotFound or kCorruption.
Result<BlobInfo> VerifyBlob(BlobStore& store, const std::string& file_id);
// Writes `file_id` into `store` from `read` (a ReadFile of the whole blob, e.g. from another node),
// checked against `size` and `sha256`: a source holding another version or a corrupt copy fails
// with kCorruption and leaves nothing behind.
Status CopyInto(BlobStore& store, const std::string& file_id, uint64_t size, const std::string& sha256,
                bool overwrite,
                const std::function<Status(const std::function<Status(const BlobInfo&)>& on_info,
                                           const std::function<Status(std::string_view)>& sink)>& read);

}  // namespace local

}  // namespace dispotify::replication
