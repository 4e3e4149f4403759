// The Replication service over the local BlobStore; the contract is in replication_service.h and
// proto/dispotify/v1/replication.proto.

#include "node/replication/replication_service.h"

#include <grpcpp/server_context.h>
#include <grpcpp/support/sync_stream.h>

#include <optional>
#include <string_view>
#include <utility>

#include "common/logging.h"
#include "common/sha256.h"
#include "common/tls/grpc_credentials.h"
#include "dispotify/v1/replication.grpc.pb.h"
#include "dispotify/v1/replication.pb.h"
#include "node/replication/blob_store.h"
#include "node/replication/peer_client.h"

namespace dispotify::replication {
namespace {

grpc::Status ToGrpc(const Status& s) {
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (s.code()) {
    case StatusCode::kOk: return grpc::Status::OK;
    case StatusCode::kInvalidArgument: code = grpc::StatusCode::INVALID_ARGUMENT; break;
    case StatusCode::kNotFound: code = grpc::StatusCode::NOT_FOUND; break;
    case StatusCode::kAlreadyExists: code = grpc::StatusCode::ALREADY_EXISTS; break;
    case StatusCode::kCorruption: code = grpc::StatusCode::DATA_LOSS; break;
    case StatusCode::kNoSpace: code = grpc::StatusCode::RESOURCE_EXHAUSTED; break;
    case StatusCode::kUnavailable:
    case StatusCode::kRetry: code = grpc::StatusCode::UNAVAILABLE; break;
    case StatusCode::kTimeout: code = grpc::StatusCode::DEADLINE_EXCEEDED; break;
    case StatusCode::kFailedPrecondition: code = grpc::StatusCode::FAILED_PRECONDITION; break;
    case StatusCode::kAborted: code = grpc::StatusCode::ABORTED; break;
    default: break;
  }
  return {code, s.ToString()};
}

}  // namespace

class ReplicationService::Impl final : public v1::Replication::Service {
 public:
  Impl(BlobStore* store, NodeId self, std::string cluster_id, PeerClient* peers,
       std::function<uint64_t()> applied_index, const tls::PeerAuthorizer* authorizer)
      : authorizer_(authorizer),
        store_(store),
        self_(self),
        cluster_id_(std::move(cluster_id)),
        peers_(peers),
        applied_index_(std::move(applied_index)) {}

  grpc::Status ReplicateFile(grpc::ServerContext* ctx, grpc::ServerReader<v1::ReplicateFileChunk>* reader,
                             v1::ReplicateFileResponse* response) override {
    if (grpc::Status denied = tls::CheckPeer(authorizer_, *ctx, tls::Service::kReplication); !denied.ok())
      return denied;
    v1::ReplicateFileChunk chunk;
    if (!reader->Read(&chunk)) return {grpc::StatusCode::INVALID_ARGUMENT, "ReplicateFile: empty stream"};
    if (!chunk.has_header()) {
      return {grpc::StatusCode::INVALID_ARGUMENT, "ReplicateFile: the first message must be the header"};
    }
    const v1::ReplicateFileHeader& h = chunk.header();
    if (auto refused = CheckCluster(h.cluster_id())) return *refused;
    BlobWriteOptions options;
    if (h.has_expected_size()) options.expected_size = h.expected_size();
    if (!h.expected_sha256().empty()) options.expected_sha256 = h.expected_sha256();
    options.overwrite = h.overwrite();
    options.fence_name = h.fence_name();
    options.fence_token = h.fence_token();
    auto created = store_->Create(h.file_id(), std::move(options));
    if (!created.ok()) return ToGrpc(created.status());
    BlobWriter& writer = **created;  // destroyed (so aborted) on every early return
    const std::string file_id = h.file_id();
    const uint64_t sender = h.sender_id();

    while (reader->Read(&chunk)) {
      switch (chunk.part_case()) {
        case v1::ReplicateFileChunk::kData: {
          Status s = writer.Append(chunk.data());
          if (!s.ok()) return ToGrpc(s);
          break;
        }
        case v1::ReplicateFileChunk::kTrailer: {
          Status s = writer.Commit(chunk.trailer().size(), chunk.trailer().sha256());
          if (!s.ok()) {
            DLOG_WARN << "replica of " << file_id << " from node " << sender << " refused: " << s.ToString();
            return ToGrpc(s);
          }
          response->set_size(writer.bytes_written());
          response->set_sha256(writer.sha256());
          return grpc::Status::OK;
        }
        default:
          writer.Abort();
          return {grpc::StatusCode::INVALID_ARGUMENT, "ReplicateFile: a second header or an empty message"};
      }
    }
    writer.Abort();
    if (ctx->IsCancelled()) return {grpc::StatusCode::CANCELLED, "ReplicateFile cancelled by the sender"};
    return {grpc::StatusCode::ABORTED, "ReplicateFile: the stream ended without a trailer; nothing kept"};
  }

  grpc::Status ReadFile(grpc::ServerContext* ctx, const v1::ReadFileRequest* request,
                        grpc::ServerWriter<v1::ReadFileChunk>* writer) override {
    if (grpc::Status denied = tls::CheckPeer(authorizer_, *ctx, tls::Service::kReplication); !denied.ok())
      return denied;
    if (auto refused = CheckCluster(request->cluster_id())) return *refused;
    v1::ReadFileChunk msg;
    bool sent = false;  // the first message, which carries size and SHA-256
    bool client_gone = false;
    Status s = local::ReadBlob(
        *store_, request->file_id(), request->offset(), request->length(),
        [&](const BlobInfo& info) {
          msg.set_size(info.size);
          msg.set_sha256(info.sha256);
          return Status::Ok();
        },
        [&](std::string_view piece) {
          msg.set_data(piece.data(), piece.size());
          if (!writer->Write(msg)) {
            client_gone = true;
            return Status::Aborted("ReadFile: the reader went away");
          }
          sent = true;
          msg.Clear();
          return Status::Ok();
        });
    if (client_gone || ctx->IsCancelled()) return {grpc::StatusCode::CANCELLED, "ReadFile cancelled"};
    if (!s.ok()) return ToGrpc(s);
    if (!sent && !writer->Write(msg)) return {grpc::StatusCode::CANCELLED, "ReadFile cancelled"};
    return grpc::Status::OK;
  }

  grpc::Status DeleteFile(grpc::ServerContext* ctx, const v1::DeleteFileRequest* request,
                          v1::DeleteFileResponse* response) override {
    if (grpc::Status denied = tls::CheckPeer(authorizer_, *ctx, tls::Service::kReplication); !denied.ok())
      return denied;
    if (auto refused = CheckCluster(request->cluster_id())) return *refused;
    auto existed = local::DeleteBlob(*store_, request->file_id(), request->sha256());
    if (!existed.ok()) return ToGrpc(existed.status());
    response->set_existed(*existed);
    return grpc::Status::OK;
  }

  grpc::Status VerifyFile(grpc::ServerContext* ctx, const v1::VerifyFileRequest* request,
                          v1::VerifyFileResponse* response) override {
    if (grpc::Status denied = tls::CheckPeer(authorizer_, *ctx, tls::Service::kReplication); !denied.ok())
      return denied;
    if (auto refused = CheckCluster(request->cluster_id())) return *refused;
    auto info = local::VerifyBlob(*store_, request->file_id());
    if (!info.ok()) return ToGrpc(info.status());
    response->set_size(info->size);
    response->set_sha256(info->sha256);
    return grpc::Status::OK;
  }

  grpc::Status PullFile(grpc::ServerContext* ctx, const v1::PullFileRequest* request,
                        v1::PullFileResponse* response) override {
    if (grpc::Status denied = tls::CheckPeer(authorizer_, *ctx, tls::Service::kReplication); !denied.ok())
      return denied;
    if (auto refused = CheckCluster(request->cluster_id())) return *refused;
    if (request->source_address().empty()) {
      return {grpc::StatusCode::INVALID_ARGUMENT, "PullFile: no source address"};
    }
    Status s = local::CopyInto(*store_, request->file_id(), request->expected_size(),
                               request->expected_sha256(), request->overwrite(),
                               [&](const std::function<Status(const BlobInfo&)>& on_info,
                                   const std::function<Status(std::string_view)>& sink) {
                                 return peers_->ReadFileFrom(request->source_address(), request->file_id(), 0,
                                                             0, on_info, [&](std::string_view piece) {
                                                               // The caller gave up (deadline, cancel): stop
                                                               // copying.
                                                               if (ctx->IsCancelled())
                                                                 return Status::Aborted("PullFile cancelled");
                                                               return sink(piece);
                                                             });
                               });
    if (!s.ok()) {
      DLOG_WARN << "pull of " << request->file_id() << " from " << request->source_address()
                << " failed: " << s.ToString();
      return ToGrpc(s);
    }
    response->set_size(request->expected_size());
    return grpc::Status::OK;
  }

  grpc::Status Health(grpc::ServerContext* ctx, const v1::HealthRequest* request,
                      v1::HealthResponse* response) override {
    if (grpc::Status denied = tls::CheckPeer(authorizer_, *ctx, tls::Service::kReplication); !denied.ok())
      return denied;
    if (auto refused = CheckCluster(request->cluster_id())) return *refused;
    auto stats = store_->Stats();
    if (!stats.ok()) return ToGrpc(stats.status());
    response->set_node_id(self_.value());
    response->set_cluster_id(cluster_id_);
    response->set_files(stats->files);
    response->set_bytes(stats->bytes);
    response->set_free_bytes(stats->free_bytes);
    response->set_total_bytes(stats->total_bytes);
    response->set_applied_index(applied_index_ ? applied_index_() : 0);
    return grpc::Status::OK;
  }

 private:
  std::optional<grpc::Status> CheckCluster(const std::string& cluster_id) const {
    if (cluster_id.empty() || cluster_id == cluster_id_) return std::nullopt;
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "request for cluster '" + cluster_id + "', this node is in '" + cluster_id_ + "'");
  }

  const tls::PeerAuthorizer* const authorizer_;  // null: everyone is served
  BlobStore* const store_;
  const NodeId self_;
  const std::string cluster_id_;
  PeerClient* const peers_;
  const std::function<uint64_t()> applied_index_;
};

ReplicationService::ReplicationService(BlobStore* store, NodeId self, std::string cluster_id,
                                       PeerClient* peers, std::function<uint64_t()> applied_index,
                                       const tls::PeerAuthorizer* authorizer)
    : impl_(std::make_unique<Impl>(store, self, std::move(cluster_id), peers, std::move(applied_index),
                                   authorizer)) {}

ReplicationService::~ReplicationService() = default;

grpc::Service* ReplicationService::service() {
  return impl_.get();
}

}  // namespace dispotify::replication
