#include "node/server/kv_service.h"

#include <grpcpp/grpcpp.h>

#include <string>

#include "common/tls/grpc_credentials.h"
#include "dispotify/v1/kv.grpc.pb.h"
#include "node/kv/kv_state_machine.h"
#include "node/server/grpc_call.h"
#include "node/server/raft_node.h"

namespace dispotify::server {
namespace {

constexpr size_t kMaxKeyBytes = 64 << 10;
constexpr size_t kMaxValueBytes = 1 << 20;

}  // namespace

class KvService::Impl final : public dispotify::v1::KV::CallbackService {
 public:
  Impl(RaftNode* node, const kv::KvStateMachine* sm, const tls::PeerAuthorizer* authorizer)
      : node_(node), sm_(sm), authorizer_(authorizer) {}

  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* ctx, const v1::PutRequest* req,
                                v1::PutResponse* resp) override {
    if (grpc::Status denied = tls::CheckPeer(authorizer_, *ctx, tls::Service::kRaft); !denied.ok())
      return Refuse(ctx, denied);
    auto* call = new Call();
    auto guard = call->guard();
    if (req->key().empty() || req->key().size() > kMaxKeyBytes || req->value().size() > kMaxValueBytes) {
      Call::Finish(guard, [] {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "key must be 1..65536 bytes, value at most 1 MiB");
      });
      return call;
    }
    node_->Propose(kv::EncodePut(req->key(), req->value()),
                   [this, guard, resp](const dispotify::Status& st, LogIndex index, const std::string&) {
                     Call::Finish(guard, [&] {
                       if (st.ok()) resp->set_index(index.value());
                       return ToGrpc(st, node_);
                     });
                   });
    return call;
  }

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx, const v1::GetRequest* req,
                                v1::GetResponse* resp) override {
    if (grpc::Status denied = tls::CheckPeer(authorizer_, *ctx, tls::Service::kRaft); !denied.ok())
      return Refuse(ctx, denied);
    auto* call = new Call();
    auto guard = call->guard();
    node_->ReadIndex([this, guard, req, resp](const dispotify::Status& st, LogIndex read_index) {
      Call::Finish(guard, [&] {
        if (!st.ok()) return ToGrpc(st, node_);
        // The state machine has applied at least read_index: any later state is also linearizable.
        auto value = sm_->Get(req->key());
        resp->set_found(value.has_value());
        if (value) resp->set_value(std::move(*value));
        resp->set_read_index(read_index.value());
        return grpc::Status::OK;
      });
    });
    return call;
  }

 private:
  RaftNode* node_;
  const kv::KvStateMachine* sm_;
  const tls::PeerAuthorizer* const authorizer_;
};

KvService::KvService(RaftNode* node, const kv::KvStateMachine* state_machine,
                     const tls::PeerAuthorizer* authorizer)
    : impl_(std::make_unique<Impl>(node, state_machine, authorizer)) {}
KvService::~KvService() = default;
grpc::Service* KvService::service() {
  return impl_.get();
}

}  // namespace dispotify::server
