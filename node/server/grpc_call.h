#pragma once
// What the node's gRPC services share (private to node/server; includes gRPC): the mapping of a
// node answer to a gRPC status, and a unary call answered later from another thread.

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"
#include "node/server/raft_node.h"

namespace dispotify::server {

inline const char* RoleString(consensus::Role r) {
  switch (r) {
    case consensus::Role::kFollower: return "follower";
    case consensus::Role::kPreCandidate: return "pre-candidate";
    case consensus::Role::kCandidate: return "candidate";
    case consensus::Role::kLeader: return "leader";
  }
  return "unknown";
}

inline std::string LeaderAddress(const NodeStatus& st, NodeId leader) {
  auto it = st.conf.members.find(leader);
  return it == st.conf.members.end() ? std::string() : it->second.address;
}

inline grpc::Status NotLeader(const NodeStatus& st, NodeId leader) {
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                      "not-leader:" + std::to_string(leader.value()) + ":" + LeaderAddress(st, leader));
}

// Maps the node's answer to the gRPC status the client sees.
inline grpc::Status ToGrpc(const Status& s, RaftNode* node) {
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

// Answers a callback call with `status` at once (a refused caller: nothing else runs for it).
inline grpc::ServerUnaryReactor* Refuse(grpc::CallbackServerContext* ctx, const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

}  // namespace dispotify::server
