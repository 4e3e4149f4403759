#pragma once
// A blocking client of one node's Files gRPC service, for the e2e tests and the data-plane
// benchmark.

#include <grpcpp/security/credentials.h>

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "dispotify/v1/files.grpc.pb.h"

namespace dispotify::e2e {

class FilesClient {
 public:
  // `credentials`: a member's client certificate with mTLS (Cluster::ChannelCredentials); null:
  // plaintext.
  explicit FilesClient(const std::string& address,
                       std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);
  // Over a channel of the caller's (e.g. one with its own connection).
  explicit FilesClient(const std::shared_ptr<grpc::Channel>& channel);

  // Streams `content` in 64 KiB messages.
  grpc::Status Upload(const std::string& file_id, const std::string& content, v1::UploadResponse* resp,
                      std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Retries while the answer is UNAVAILABLE (the cluster settling), up to `budget`.
  grpc::Status UploadEventually(const std::string& file_id, const std::string& content,
                                std::chrono::milliseconds budget = std::chrono::seconds(30));
  grpc::Status Download(const std::string& file_id, std::string* out);
  std::optional<v1::SongInfo> GetSong(const std::string& file_id);
  grpc::Status SetReplicationFactor(uint32_t factor);
  std::optional<v1::DataPlaneStatusResponse> DataPlaneStatus();

 private:
  std::unique_ptr<v1::Files::Stub> stub_;
};

// Ids of the nodes whose copy of `song` is recorded healthy.
std::set<uint64_t> HealthyReplicas(const v1::SongInfo& song);

}  // namespace dispotify::e2e
