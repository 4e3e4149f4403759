#include "node/api/files_service.h"

#include <grpcpp/grpcpp.h>

#include <string>

#include "common/tls/grpc_credentials.h"
#include "dispotify/v1/files.grpc.pb.h"
#include "node/catalog/metadata_store.h"
#include "node/catalog/proposer.h"
#include "node/replication/blob_store.h"
#include "node/replication/file_service.h"
#include "node/replication/repair.h"

namespace dispotify::api {
namespace {

constexpr size_t kDownloadPiece = 256 * 1024;

grpc::Status ToGrpc(const Status& s) {
  using grpc::StatusCode;
  switch (s.code()) {
    case dispotify::StatusCode::kOk: return grpc::Status::OK;
    case dispotify::StatusCode::kInvalidArgument: return {StatusCode::INVALID_ARGUMENT, s.message()};
    case dispotify::StatusCode::kNotFound: return {StatusCode::NOT_FOUND, s.message()};
    case dispotify::StatusCode::kAlreadyExists: return {StatusCode::ALREADY_EXISTS, s.message()};
    case dispotify::StatusCode::kAborted: return {StatusCode::ABORTED, s.message()};
    case dispotify::StatusCode::kNoSpace: return {StatusCode::RESOURCE_EXHAUSTED, s.message()};
    case dispotify::StatusCode::kFailedPrecondition: return {StatusCode::FAILED_PRECONDITION, s.message()};
    case dispotify::StatusCode::kTimeout: return {StatusCode::DEADLINE_EXCEEDED, s.message()};
    case dispotify::StatusCode::kNotLeader:
    case dispotify::StatusCode::kRetry:
    case dispotify::StatusCode::kUnavailable:
    case dispotify::StatusCode::kCommitUnknown: return {StatusCode::UNAVAILABLE, s.message()};
    default: return {StatusCode::INTERNAL, s.ToString()};
  }
}

}  // namespace

class FilesService::Impl final : public v1::Files::Service {
 public:
  explicit Impl(FilesServiceDeps deps) : deps_(std::move(deps)) {}

  void FillSong(const catalog::Song& s, v1::SongInfo* out) {
    out->set_file_id(s.file_id);
    out->set_title(s.title);
    out->set_artist(s.artist);
    out->set_album(s.album);
    out->set_file_name(s.file_name);
    out->set_content_type(s.content_type);
    out->set_track(s.track);
    out->set_year(s.year);
    out->set_duration_ms(s.duration_ms);
    out->set_size_bytes(s.size_bytes);
    out->set_sha256(s.sha256);
    out->set_created_at_ms(s.created_at_ms);
    auto replicas = deps_.store->GetReplicas(s.file_id);
    if (!replicas.ok()) return;
    for (const auto& r : *replicas) {
      auto* ri = out->add_replicas();
      ri->set_node_id(r.node.value());
      ri->set_state(catalog::ReplicaStateName(r.state));
    }
  }

  grpc::Status Upload(grpc::ServerContext* ctx, grpc::ServerReader<v1::UploadChunk>* reader,
                      v1::UploadResponse* resp) override {
    if (grpc::Status denied = tls::CheckPeer(deps_.authorizer, *ctx, tls::Service::kReplication);
        !denied.ok())
      return denied;
    v1::UploadChunk chunk;
    if (!reader->Read(&chunk) || chunk.part_case() != v1::UploadChunk::kHeader)
      return {grpc::StatusCode::INVALID_ARGUMENT, "the first message must be the upload header"};
    const v1::UploadHeader& h = chunk.header();
    replication::UploadRequest req;
    req.file_id = h.file_id();
    req.file_name = h.file_name();
    req.content_type = h.content_type();
    req.title = h.title();
    req.artist = h.artist();
    req.album = h.album();
    req.track = h.track();
    req.year = h.year();
    req.duration_ms = h.duration_ms();
    if (h.expected_size() > 0) req.expected_size = h.expected_size();
    if (!h.expected_sha256().empty()) req.expected_sha256 = h.expected_sha256();
    // An image would be an album picture (catalog::IsPicture), which only the REST upload checks
    // and ties to an album.
    if (req.content_type.starts_with("image/")) {
      return {grpc::StatusCode::INVALID_ARGUMENT, "album pictures are uploaded through POST /music/upload"};
    }

    // Hands the stream's data messages to FileService piece by piece.
    std::string pending;
    size_t pending_pos = 0;
    bool ended = false;
    auto source = [&](char* buf, size_t max) -> Result<size_t> {
      while (pending_pos == pending.size()) {
        if (ended) return size_t{0};
        if (ctx->IsCancelled()) return Status::Aborted("the client cancelled the upload");
        if (!reader->Read(&chunk)) {
          ended = true;
          return size_t{0};
        }
        if (chunk.part_case() != v1::UploadChunk::kData)
          return Status::InvalidArgument("a second upload header in one stream");
        pending = std::move(*chunk.mutable_data());
        pending_pos = 0;
      }
      size_t n = std::min(max, pending.size() - pending_pos);
      std::memcpy(buf, pending.data() + pending_pos, n);
      pending_pos += n;
      return n;
    };
    auto result = deps_.files->Upload(req, source);
    if (!result.ok()) return ToGrpc(result.status());
    FillSong(result->song, resp->mutable_song());
    resp->set_created(result->created);
    return grpc::Status::OK;
  }

  grpc::Status Download(grpc::ServerContext* ctx, const v1::DownloadRequest* req,
                        grpc::ServerWriter<v1::DownloadChunk>* writer) override {
    if (grpc::Status denied = tls::CheckPeer(deps_.authorizer, *ctx, tls::Service::kReplication);
        !denied.ok())
      return denied;
    v1::DownloadChunk first;
    bool sent_first = false;
    std::string buffer;
    auto flush = [&](bool force) -> Status {
      if (buffer.size() < kDownloadPiece && !force) return Status::Ok();
      if (buffer.empty() && sent_first) return Status::Ok();
      v1::DownloadChunk msg;
      if (!sent_first) msg = std::move(first);
      msg.set_data(std::move(buffer));
      buffer.clear();
      sent_first = true;
      if (ctx->IsCancelled() || !writer->Write(msg)) return Status::Aborted("the client went away");
      return Status::Ok();
    };
    Status s = deps_.files->Read(
        req->file_id(), req->offset(), req->length(),
        [&](const catalog::Song& song) {
          FillSong(song, first.mutable_song());
          return Status::Ok();
        },
        [&](std::string_view data) {
          buffer.append(data);
          return flush(false);
        });
    if (!s.ok()) return ToGrpc(s);
    if (Status f = flush(true); !f.ok()) return ToGrpc(f);
    return grpc::Status::OK;
  }

  grpc::Status GetSong(grpc::ServerContext* ctx, const v1::GetSongRequest* req, v1::SongInfo* resp) override {
    if (grpc::Status denied = tls::CheckPeer(deps_.authorizer, *ctx, tls::Service::kReplication);
        !denied.ok())
      return denied;
    auto song = deps_.files->GetSong(req->file_id());
    if (!song.ok()) return ToGrpc(song.status());
    FillSong(*song, resp);
    return grpc::Status::OK;
  }

  grpc::Status DeleteSong(grpc::ServerContext* ctx, const v1::DeleteSongRequest* req,
                          v1::DeleteSongResponse* /*resp*/) override {
    if (grpc::Status denied = tls::CheckPeer(deps_.authorizer, *ctx, tls::Service::kReplication);
        !denied.ok())
      return denied;
    return ToGrpc(deps_.files->Delete(req->file_id()));
  }

  grpc::Status SetReplicationFactor(grpc::ServerContext* ctx, const v1::SetReplicationFactorRequest* req,
                                    v1::SetReplicationFactorResponse* /*resp*/) override {
    if (grpc::Status denied = tls::CheckPeer(deps_.authorizer, *ctx, tls::Service::kReplication);
        !denied.ok())
      return denied;
    if (req->factor() < 1 || req->factor() > catalog::kMaxReplicationFactor)
      return {grpc::StatusCode::INVALID_ARGUMENT, "the replication factor must be 1..16"};
    auto r =
        deps_.proposer->Propose(catalog::SetReplicationFactorCmd{req->factor()}, std::chrono::seconds(10));
    return ToGrpc(r.status());
  }

  grpc::Status DataPlaneStatus(grpc::ServerContext* ctx, const v1::DataPlaneStatusRequest* /*req*/,
                               v1::DataPlaneStatusResponse* resp) override {
    if (grpc::Status denied = tls::CheckPeer(deps_.authorizer, *ctx, tls::Service::kReplication);
        !denied.ok())
      return denied;
    resp->set_replication_factor(deps_.replication_factor());
    if (auto stats = deps_.store->Stats(); stats.ok()) {
      resp->set_songs(stats->songs);
      resp->set_replicas_healthy(stats->replicas_healthy);
      resp->set_replicas_other(stats->replicas_other);
    }
    const bool leader = deps_.is_leader();
    resp->set_is_leader(leader);
    if (leader && deps_.repair) {
      auto rs = deps_.repair->Stats();
      resp->set_under_replicated(rs.under_replicated);
      resp->set_repair_queue(rs.queued);
      resp->set_copies_made(rs.copies_made);
      resp->set_copies_trimmed(rs.copies_trimmed);
      resp->set_bytes_copied(rs.bytes_copied);
      resp->set_repair_passes(rs.passes);
    }
    if (auto bs = deps_.blobs->Stats(); bs.ok()) {
      resp->set_local_files(bs->files);
      resp->set_local_bytes(bs->bytes);
    }
    return grpc::Status::OK;
  }

 private:
  FilesServiceDeps deps_;
};

FilesService::FilesService(FilesServiceDeps deps) : impl_(std::make_unique<Impl>(std::move(deps))) {}
FilesService::~FilesService() = default;
grpc::Service* FilesService::service() {
  return impl_.get();
}

}  // namespace dispotify::api
