#include "e2e/files_client.h"

#include <grpcpp/grpcpp.h>

#include <thread>

namespace dispotify::e2e {

using namespace std::chrono_literals;

FilesClient::FilesClient(const std::string& address, std::shared_ptr<grpc::ChannelCredentials> credentials)
    : stub_(v1::Files::NewStub(grpc::CreateChannel(
          address, credentials ? std::move(credentials) : grpc::InsecureChannelCredentials()))) {}

FilesClient::FilesClient(const std::shared_ptr<grpc::Channel>& channel)
    : stub_(v1::Files::NewStub(channel)) {}

grpc::Status FilesClient::Upload(const std::string& file_id, const std::string& content,
                                 v1::UploadResponse* resp, std::chrono::milliseconds timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  auto writer = stub_->Upload(&ctx, resp);
  v1::UploadChunk header;
  header.mutable_header()->set_file_id(file_id);
  header.mutable_header()->set_file_name(file_id + ".mp3");
  header.mutable_header()->set_title("Song " + file_id);
  header.mutable_header()->set_content_type("audio/mpeg");
  bool ok = writer->Write(header);
  constexpr size_t kPiece = 64 * 1024;
  for (size_t off = 0; ok && off < content.size(); off += kPiece) {
    v1::UploadChunk data;
    data.set_data(content.substr(off, kPiece));
    ok = writer->Write(data);
  }
  writer->WritesDone();
  return writer->Finish();
}

grpc::Status FilesClient::UploadEventually(const std::string& file_id, const std::string& content,
                                           std::chrono::milliseconds budget) {
  const auto end = std::chrono::steady_clock::now() + budget;
  while (true) {
    v1::UploadResponse resp;
    grpc::Status st = Upload(file_id, content, &resp);
    if (st.ok() || st.error_code() != grpc::StatusCode::UNAVAILABLE || std::chrono::steady_clock::now() > end)
      return st;
    std::this_thread::sleep_for(200ms);
  }
}

grpc::Status FilesClient::Download(const std::string& file_id, std::string* out) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 60s);
  v1::DownloadRequest req;
  req.set_file_id(file_id);
  auto reader = stub_->Download(&ctx, req);
  v1::DownloadChunk chunk;
  out->clear();
  while (reader->Read(&chunk)) out->append(chunk.data());
  return reader->Finish();
}

std::optional<v1::SongInfo> FilesClient::GetSong(const std::string& file_id) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 5s);
  v1::GetSongRequest req;
  req.set_file_id(file_id);
  v1::SongInfo song;
  if (!stub_->GetSong(&ctx, req, &song).ok()) return std::nullopt;
  return song;
}

grpc::Status FilesClient::SetReplicationFactor(uint32_t factor) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  v1::SetReplicationFactorRequest req;
  req.set_factor(factor);
  v1::SetReplicationFactorResponse resp;
  return stub_->SetReplicationFactor(&ctx, req, &resp);
}

std::optional<v1::DataPlaneStatusResponse> FilesClient::DataPlaneStatus() {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 5s);
  v1::DataPlaneStatusResponse resp;
  if (!stub_->DataPlaneStatus(&ctx, v1::DataPlaneStatusRequest(), &resp).ok()) return std::nullopt;
  return resp;
}

std::set<uint64_t> HealthyReplicas(const v1::SongInfo& song) {
  std::set<uint64_t> out;
  for (const auto& r : song.replicas()) {
    if (r.state() == "healthy") out.insert(r.node_id());
  }
  return out;
}

}  // namespace dispotify::e2e
