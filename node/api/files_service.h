#pragma once
// The Files gRPC service (proto/dispotify/v1/files.proto): the data plane for programs and tests,
// a thin adapter over replication::FileService (the REST API is another adapter over the same).
// Uses gRPC's synchronous API: an upload or download occupies one of gRPC's server threads for
// its duration and holds at most one message (<= 1 MiB) besides FileService's bounded queues.

#include <functional>
#include <memory>

namespace grpc {
class Service;
}  // namespace grpc

namespace dispotify::catalog {
class MetadataStore;
class Proposer;
}  // namespace dispotify::catalog

namespace dispotify::replication {
class BlobStore;
class FileService;
class RepairManager;
}  // namespace dispotify::replication

namespace dispotify::tls {
class PeerAuthorizer;
}  // namespace dispotify::tls

namespace dispotify::api {

struct FilesServiceDeps {
  replication::FileService* files = nullptr;
  catalog::MetadataStore* store = nullptr;
  catalog::Proposer* proposer = nullptr;
  replication::BlobStore* blobs = nullptr;
  replication::RepairManager* repair = nullptr;
  std::function<bool()> is_leader;
  std::function<uint32_t()> replication_factor;
  // mTLS on: only current members may call (the node's own tools hold a member's certificate).
  // Null: everyone is served.
  const tls::PeerAuthorizer* authorizer = nullptr;
};

class FilesService {
 public:
  explicit FilesService(FilesServiceDeps deps);
  ~FilesService();
  FilesService(const FilesService&) = delete;
  FilesService& operator=(const FilesService&) = delete;

  grpc::Service* service();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dispotify::api
