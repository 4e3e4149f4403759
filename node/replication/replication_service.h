#pragma once
// The server side of node-to-node file traffic: service dispotify.v1.Replication
// (proto/dispotify/v1/replication.proto, whose comments are the contract) over this node's
// BlobStore.
//
//   ReplicateFile  header -> data... -> trailer into a BlobWriter; checked against the header's
//                  expectations and the trailer, then committed. A stream that ends or is
//                  cancelled before its trailer aborts the writer: nothing is left behind.
//   ReadFile       pieces of local::kReadPieceSize; a full read is verified (local::ReadBlob).
//   DeleteFile     local::DeleteBlob; VerifyFile: local::VerifyBlob.
//   PullFile       reads from the source through the PeerClient and writes locally, verified
//                  against the expected size and SHA-256 (local::CopyInto).
//   Health         this node's id, cluster, store counters and applied index.
//
// Every request carrying a non-empty cluster_id other than ours is refused with
// FAILED_PRECONDITION before anything else. File ids are validated by the BlobStore before any
// disk access. Status codes map as: kInvalidArgument -> INVALID_ARGUMENT, kNotFound -> NOT_FOUND,
// kCorruption -> DATA_LOSS, kAlreadyExists -> ALREADY_EXISTS, kNoSpace -> RESOURCE_EXHAUSTED,
// kUnavailable / kRetry -> UNAVAILABLE, kTimeout -> DEADLINE_EXCEEDED, kFailedPrecondition ->
// FAILED_PRECONDITION, kAborted -> ABORTED, anything else -> INTERNAL (PeerClient maps back).
//
// Callers: with an authorizer (mTLS on), every call must come from a current member
// (common/tls/grpc_credentials.h), checked before anything else; without one, everyone is served.
//
// Memory: one message at a time per call (data messages are at most a few hundred KiB; the
// BlobWriter buffers at most BlobWriter::kBufferSize); never a whole file.
//
// Threads: handlers run on the grpc::Server's threads, several at once. The store, the peer
// client and the applied-index function must outlive the server carrying service(), and the
// function must be thread-safe.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/ids.h"

namespace grpc {
class Service;
}  // namespace grpc

namespace dispotify::tls {
class PeerAuthorizer;
}  // namespace dispotify::tls

namespace dispotify::replication {

class BlobStore;
class PeerClient;

class ReplicationService {
 public:
  // `applied_index` may be empty (Health then reports 0).
  ReplicationService(BlobStore* store, NodeId self, std::string cluster_id, PeerClient* peers,
                     std::function<uint64_t()> applied_index,
                     const tls::PeerAuthorizer* authorizer = nullptr);
  ~ReplicationService();
  ReplicationService(const ReplicationService&) = delete;
  ReplicationService& operator=(const ReplicationService&) = delete;

  // To register on the node's grpc::Server.
  grpc::Service* service();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dispotify::replication
