#pragma once
// The Cluster gRPC service (proto/dispotify/v1/cluster.proto) over a RaftNode: status,
// membership changes (leader only, answered once applied), leadership transfer, Propose, the
// path by which another node's data plane commits a state-machine command through this leader,
// and ReadIndex, by which another node learns up to where it must apply to read linearizably.
// Propose is refused (UNIMPLEMENTED) unless a preparer is given: it checks that the state machine
// understands the command (only such commands are ever put in the log) and returns the bytes to
// propose (the catalog stamps the leader's clock into the command here).
// Callers are checked per call when an authorizer is given (see the constructor).
// Calls are asynchronous (gRPC callback API): no thread waits on the Raft loop.

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace grpc {
class Service;
}  // namespace grpc

namespace dispotify::tls {
class PeerAuthorizer;
}  // namespace dispotify::tls

namespace dispotify::server {

class RaftNode;

class ClusterService {
 public:
  using CommandPreparer = std::function<Result<std::string>(std::string_view command)>;

  // `authorizer` (null: everyone is served): with mTLS, a join (ADD_LEARNER of the caller's own
  // node id) is accepted from any node of the cluster, every other call only from members.
  ClusterService(RaftNode* node, CommandPreparer prepare_command,
                 const tls::PeerAuthorizer* authorizer = nullptr);
  ~ClusterService();
  ClusterService(const ClusterService&) = delete;
  ClusterService& operator=(const ClusterService&) = delete;

  grpc::Service* service();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dispotify::server
