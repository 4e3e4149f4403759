#pragma once
// The KV gRPC service (proto/dispotify/v1/kv.proto) over a RaftNode and the KV state machine.
//   Put  -> propose, answer once applied (the entry's index)
//   Get  -> ReadIndex, then read the state machine once it applied that index (linearizable)
//   (cluster administration is ClusterService)
// Errors: FAILED_PRECONDITION "not-leader:<id>:<address>" (id 0 / empty address: unknown) when
// the request must go to the leader; UNAVAILABLE when it may simply be retried (no quorum, an
// election or a transfer in progress, a proposal replaced by another leader's entry); ABORTED
// "commit-unknown: ..." when a write may or may not have committed.
// Calls are asynchronous (gRPC callback API): no thread waits on the Raft loop; a cancelled call
// or an expired deadline finishes at once and the loop's later answer is dropped.

#include <memory>

namespace grpc {
class Service;
}  // namespace grpc

namespace dispotify::kv {
class KvStateMachine;
}  // namespace dispotify::kv

namespace dispotify::tls {
class PeerAuthorizer;
}  // namespace dispotify::tls

namespace dispotify::server {

class RaftNode;

class KvService {
 public:
  // `authorizer` (null: everyone is served): with mTLS, only members' certificates (dispotify-kvctl
  // and the tests present one).
  KvService(RaftNode* node, const kv::KvStateMachine* state_machine,
            const tls::PeerAuthorizer* authorizer = nullptr);
  ~KvService();
  KvService(const KvService&) = delete;
  KvService& operator=(const KvService&) = delete;

  grpc::Service* service();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dispotify::server
