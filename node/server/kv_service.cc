#include "node/server/kv_service.h"

#include <grpcpp/grpcpp.h>

#include <functional>
#include <mutex>
#include <string>

#include "dispotify/v1/kv.grpc.pb.h"
#include "node/kv/kv_state_machine.h"
#include "node/server/raft_node.h"

namespace dispotify::server {
namespace {

constexpr size_t kMaxKeyBytes = 64 << 10;
constexpr size_t kMaxValueBytes = 1 << 20;

const char* RoleString(consensus::Role r) {
  switch (r) {
    case consensus::Role::kFollower: return "follower";
    case consensus::Role::kPreCandidate: return "pre-candidate";
    case consensus::Role::kCandidate: return "candidate";
    case consensus::Role::kLeader: return "leader";
  }
  return "unknown";
}

std::string LeaderAddress(const NodeStatus& st, NodeId leader) {
  auto it = st.conf.members.find(leader);
  return it == st.conf.members.end() ? std::string() : it->second.address;
}

grpc::Status NotLeader(const NodeStatus& st, NodeId leader) {
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                      "not-leader:" + std::to_string(leader.value()) + ":" + LeaderAddress(st, leader));
}

// Maps the node's answer to the gRPC status the client sees.
grpc::Status ToGrpc(const Status& s, RaftNode* node) {
  switch (s.code()) {
    case StatusCode::kOk: return grpc::Status::OK;
    case StatusCode::kNotLeader: {
      NodeStatus st = node->status();
      NodeId hint(s.leader_hint());
      if (hint == kNoNode) hint = st.leader;
      return NotLeader(st, hint);
    }
    case StatusCode::kRetry:
    case StatusCode::kUnavailable: return grpc::Status(grpc::StatusCode::UNAVAILABLE, s.message());
    case StatusCode::kCommitUnknown:
      return grpc::Status(grpc::StatusCode::ABORTED, "commit-unknown: " + s.message());
    case StatusCode::kInvalidArgument: return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, s.message());
    case StatusCode::kTimeout: return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, s.message());
    default: return grpc::Status(grpc::StatusCode::INTERNAL, s.ToString());
  }
}

// A unary call answered later from any thread (usually the Raft loop). Finish happens exactly
// once: whichever comes first of the answer and a cancellation (the client's deadline included).
class Call final : public grpc::ServerUnaryReactor {
 public:
  struct Guard {
    std::mutex mu;
    Call* call = nullptr;  // null once finished
  };

  Call() : guard_(std::make_shared<Guard>()) { guard_->call = this; }

  // Runs `fill` (which sets the response and returns the status) unless already finished.
  static void Finish(const std::shared_ptr<Guard>& guard_ref, const std::function<grpc::Status()>& fill) {
    // Own a reference: gRPC may run OnDone (deleting the call and its guard_) before we unlock.
    std::shared_ptr<Guard> guard = guard_ref;
    std::lock_guard lock(guard->mu);
    if (guard->call == nullptr) return;
    Call* call = guard->call;
    guard->call = nullptr;
    call->grpc::ServerUnaryReactor::Finish(fill());
  }

  const std::shared_ptr<Guard>& guard() const { return guard_; }

  void OnCancel() override {
    Finish(guard_,
           [] { return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled or deadline exceeded"); });
  }
  void OnDone() override { delete this; }

 private:
  std::shared_ptr<Guard> guard_;
};

}  // namespace

class KvService::Impl final : public dispotify::v1::KV::CallbackService {
 public:
  Impl(RaftNode* node, const kv::KvStateMachine* sm) : node_(node), sm_(sm) {}

  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* /*ctx*/, const v1::PutRequest* req,
                                v1::PutResponse* resp) override {
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

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* /*ctx*/, const v1::GetRequest* req,
                                v1::GetResponse* resp) override {
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

  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* /*ctx*/, const v1::StatusRequest* /*req*/,
                                   v1::StatusResponse* resp) override {
    auto* call = new Call();
    NodeStatus st = node_->status();
    resp->set_node_id(st.id.value());
    resp->set_role(RoleString(st.role));
    resp->set_term(st.term.value());
    resp->set_leader_id(st.leader.value());
    resp->set_leader_address(LeaderAddress(st, st.leader));
    resp->set_commit_index(st.commit.value());
    resp->set_applied_index(st.applied.value());
    for (const auto& [id, member] : st.conf.members) {
      auto* m = resp->add_members();
      m->set_node_id(id.value());
      m->set_address(member.address);
      m->set_voter(member.voter);
      auto it = st.match.find(id);
      if (it != st.match.end()) m->set_match_index(it->second.value());
    }
    Call::Finish(call->guard(), [] { return grpc::Status::OK; });
    return call;
  }

  grpc::ServerUnaryReactor* ChangeMembership(grpc::CallbackServerContext* /*ctx*/,
                                             const v1::MembershipRequest* req,
                                             v1::MembershipResponse* resp) override {
    auto* call = new Call();
    auto guard = call->guard();
    consensus::ConfChange cc;
    cc.node = NodeId(req->node_id());
    cc.address = req->address();
    grpc::Status invalid;
    switch (req->op()) {
      case v1::MembershipRequest::ADD_LEARNER:
        cc.type = consensus::ConfChangeType::kAddLearner;
        if (cc.address.empty())
          invalid = {grpc::StatusCode::INVALID_ARGUMENT, "ADD_LEARNER needs an address"};
        break;
      case v1::MembershipRequest::PROMOTE: {
        cc.type = consensus::ConfChangeType::kPromote;
        // A learner far behind would make the new quorum wait for it: promote once caught up.
        NodeStatus st = node_->status();
        if (st.role == consensus::Role::kLeader) {
          auto it = st.match.find(cc.node);
          if (it == st.match.end() || it->second.value() + kPromoteMaxLag < st.commit.value()) {
            invalid = {grpc::StatusCode::UNAVAILABLE,
                       "learner " + std::to_string(cc.node.value()) + " is still catching up (match " +
                           std::to_string(it == st.match.end() ? 0 : it->second.value()) + ", commit " +
                           std::to_string(st.commit.value()) + ")"};
          }
        }
        break;
      }
      case v1::MembershipRequest::REMOVE: cc.type = consensus::ConfChangeType::kRemove; break;
      default: invalid = {grpc::StatusCode::INVALID_ARGUMENT, "unknown membership operation"};
    }
    if (cc.node == kNoNode) invalid = {grpc::StatusCode::INVALID_ARGUMENT, "node_id must be set"};
    if (!invalid.ok()) {
      Call::Finish(guard, [&] { return invalid; });
      return call;
    }
    node_->ProposeConfChange(
        cc, [this, guard, resp](const dispotify::Status& st, LogIndex index, const std::string&) {
          Call::Finish(guard, [&] {
            if (st.ok()) resp->set_index(index.value());
            return ToGrpc(st, node_);
          });
        });
    return call;
  }

  grpc::ServerUnaryReactor* TransferLeadership(grpc::CallbackServerContext* /*ctx*/,
                                               const v1::TransferRequest* req,
                                               v1::TransferResponse* /*resp*/) override {
    auto* call = new Call();
    auto guard = call->guard();
    NodeId target(req->target());
    if (target == kNoNode) {
      // Pick the most up-to-date other voter.
      NodeStatus st = node_->status();
      LogIndex best;
      for (const auto& [id, member] : st.conf.members) {
        if (id == st.id || !member.voter) continue;
        auto it = st.match.find(id);
        LogIndex match = it == st.match.end() ? LogIndex() : it->second;
        if (target == kNoNode || match > best) {
          target = id;
          best = match;
        }
      }
      if (target == kNoNode) {
        Call::Finish(guard, [] {
          return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                              "no other voter to transfer leadership to");
        });
        return call;
      }
    }
    node_->TransferLeadership(target, [this, guard](const dispotify::Status& st) {
      Call::Finish(guard, [&] { return ToGrpc(st, node_); });
    });
    return call;
  }

 private:
  static constexpr uint64_t kPromoteMaxLag = 1000;
  RaftNode* node_;
  const kv::KvStateMachine* sm_;
};

KvService::KvService(RaftNode* node, const kv::KvStateMachine* state_machine)
    : impl_(std::make_unique<Impl>(node, state_machine)) {}
KvService::~KvService() = default;
grpc::Service* KvService::service() {
  return impl_.get();
}

}  // namespace dispotify::server
