#include "node/server/cluster_service.h"

#include <grpcpp/grpcpp.h>

#include <string>

#include "common/tls/grpc_credentials.h"
#include "dispotify/v1/cluster.grpc.pb.h"
#include "node/server/grpc_call.h"
#include "node/server/raft_node.h"

namespace dispotify::server {
namespace {

// RaftNode reports the outcome of a proposal with these codes when the entry was not (or not
// known to be) applied; any other status is the state machine's answer to an applied entry.
bool IsStateMachineAnswer(const dispotify::Status& st) {
  switch (st.code()) {
    case StatusCode::kNotLeader:
    case StatusCode::kRetry:
    case StatusCode::kUnavailable:
    case StatusCode::kCommitUnknown:
    case StatusCode::kTimeout: return false;
    default: return true;
  }
}

}  // namespace

class ClusterService::Impl final : public dispotify::v1::Cluster::CallbackService {
 public:
  Impl(RaftNode* node, CommandPreparer prepare, const tls::PeerAuthorizer* authorizer)
      : node_(node), prepare_(std::move(prepare)), authorizer_(authorizer) {}

  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* ctx, const v1::StatusRequest* /*req*/,
                                   v1::StatusResponse* resp) override {
    if (grpc::Status denied = tls::CheckPeer(authorizer_, *ctx, tls::Service::kRaft); !denied.ok())
      return Refuse(ctx, denied);
    auto* call = new Call();
    NodeStatus st = node_->status();
    resp->set_node_id(st.id.value());
    resp->set_role(RoleString(st.role));
    resp->set_term(st.term.value());
    resp->set_leader_id(st.leader.value());
    resp->set_leader_address(LeaderAddress(st, st.leader));
    resp->set_commit_index(st.commit.value());
    resp->set_applied_index(st.applied.value());
    resp->set_node_uuid(st.node_uuid);
    for (const auto& [id, member] : st.conf.members) {
      auto* m = resp->add_members();
      m->set_node_id(id.value());
      m->set_address(member.address);
      m->set_voter(member.voter);
      m->set_node_uuid(member.node_uuid);
      auto it = st.match.find(id);
      if (it != st.match.end()) m->set_match_index(it->second.value());
    }
    Call::Finish(call->guard(), [] { return grpc::Status::OK; });
    return call;
  }

  grpc::ServerUnaryReactor* ChangeMembership(grpc::CallbackServerContext* ctx,
                                             const v1::MembershipRequest* req,
                                             v1::MembershipResponse* resp) override {
    if (grpc::Status denied = CheckMembershipCaller(*ctx, *req); !denied.ok()) return Refuse(ctx, denied);
    auto* call = new Call();
    auto guard = call->guard();
    consensus::ConfChange cc;
    cc.node = NodeId(req->node_id());
    cc.address = req->address();
    grpc::Status invalid;
    switch (req->op()) {
      case v1::MembershipRequest::ADD_LEARNER:
        cc.type = consensus::ConfChangeType::kAddLearner;
        cc.node_uuid = req->node_uuid();
        if (cc.address.empty()) {
          invalid = {grpc::StatusCode::INVALID_ARGUMENT, "ADD_LEARNER needs an address"};
        } else if (cc.node_uuid.size() > consensus::kMaxNodeUuidBytes) {
          invalid = {grpc::StatusCode::INVALID_ARGUMENT, "node_uuid is too long"};
        } else if (NodeStatus st = node_->status(); st.role == consensus::Role::kLeader) {
          auto it = st.conf.members.find(cc.node);
          if (it != st.conf.members.end() &&
              !consensus::IncarnationMatches(it->second.node_uuid, cc.node_uuid)) {
            // The same id with another data directory: the member it names lost its log (or is
            // another server); it must leave before this incarnation may join.
            invalid = {grpc::StatusCode::FAILED_PRECONDITION,
                       "node " + std::to_string(cc.node.value()) + " is a member as incarnation " +
                           it->second.node_uuid + ", not " + cc.node_uuid +
                           "; remove it first, then add this incarnation as a learner"};
          } else if (it != st.conf.members.end() && it->second.address == cc.address) {
            // A joining node registers itself and an operator may add it too: adding a member
            // that is already there with the same address (and incarnation) is a success.
            Call::Finish(guard, [] { return grpc::Status::OK; });
            return call;
          }
        }
        break;
      case v1::MembershipRequest::PROMOTE: {
        cc.type = consensus::ConfChangeType::kPromote;
        // A learner far behind would make the new quorum wait for it: promote once caught up.
        // One that never acknowledged an entry (match 0) may be unreachable: as a voter it could
        // cost the quorum for good, however short the log (the lag alone allows it then).
        NodeStatus st = node_->status();
        if (st.role == consensus::Role::kLeader) {
          auto it = st.match.find(cc.node);
          if (it == st.match.end() || it->second == LogIndex() ||
              it->second.value() + kPromoteMaxLag < st.commit.value()) {
            const uint64_t match = it == st.match.end() ? 0 : it->second.value();
            invalid = {grpc::StatusCode::UNAVAILABLE,
                       "learner " + std::to_string(cc.node.value()) +
                           (match == 0 ? " has not acknowledged any entry yet (is it reachable at its "
                                         "address?)"
                                       : " is still catching up (match " + std::to_string(match) +
                                             ", commit " + std::to_string(st.commit.value()) + ")")};
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

  grpc::ServerUnaryReactor* TransferLeadership(grpc::CallbackServerContext* ctx,
                                               const v1::TransferRequest* req,
                                               v1::TransferResponse* /*resp*/) override {
    if (grpc::Status denied = tls::CheckPeer(authorizer_, *ctx, tls::Service::kRaft); !denied.ok())
      return Refuse(ctx, denied);
    auto* call = new Call();
    auto guard = call->guard();
    NodeId target(req->target());
    if (target == kNoNode) {
      target = MostUpToDateVoter(node_->status());
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

  grpc::ServerUnaryReactor* Propose(grpc::CallbackServerContext* ctx, const v1::ProposeRequest* req,
                                    v1::ProposeResponse* resp) override {
    if (grpc::Status denied = tls::CheckPeer(authorizer_, *ctx, tls::Service::kRaft); !denied.ok())
      return Refuse(ctx, denied);
    auto* call = new Call();
    auto guard = call->guard();
    if (!prepare_) {
      Call::Finish(guard, [] {
        return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "this node's state machine takes no proposals");
      });
      return call;
    }
    // Only the leader takes proposals from peers: a follower forwarding them again could loop.
    if (NodeStatus st = node_->status(); st.role != consensus::Role::kLeader) {
      Call::Finish(guard, [&] { return NotLeader(st, st.leader); });
      return call;
    }
    auto command = prepare_(req->command());
    if (!command.ok()) {
      Call::Finish(guard, [&] {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, command.status().message());
      });
      return call;
    }
    node_->Propose(std::move(command).value(),
                   [this, guard, resp](const dispotify::Status& st, LogIndex index, std::string value) {
                     Call::Finish(guard, [&] {
                       // A committed command the state machine refused is still a committed
                       // entry: its answer travels in the response, not as a transport error.
                       if (IsStateMachineAnswer(st)) {
                         resp->set_index(index.value());
                         resp->set_value(std::move(value));
                         resp->set_code(static_cast<uint32_t>(st.code()));
                         resp->set_message(st.message());
                         return grpc::Status::OK;
                       }
                       return ToGrpc(st, node_);
                     });
                   });
    return call;
  }

  grpc::ServerUnaryReactor* ReadIndex(grpc::CallbackServerContext* ctx, const v1::ReadIndexRequest* /*req*/,
                                      v1::ReadIndexResponse* resp) override {
    if (grpc::Status denied = tls::CheckPeer(authorizer_, *ctx, tls::Service::kRaft); !denied.ok())
      return Refuse(ctx, denied);
    auto* call = new Call();
    auto guard = call->guard();
    // Answered when the leader itself applied the index (RaftNode::ReadIndex), after a heartbeat
    // round confirmed it still leads.
    node_->ReadIndex([this, guard, resp](const dispotify::Status& st, LogIndex read_index) {
      Call::Finish(guard, [&] {
        if (!st.ok()) return ToGrpc(st, node_);
        resp->set_index(read_index.value());
        return grpc::Status::OK;
      });
    });
    return call;
  }

 private:
  static constexpr uint64_t kPromoteMaxLag = 1000;
  // Members may change anything. A non-member may only ask to join as the node its certificate
  // names: a joiner is not a member yet (policy.h), but it must not add some other node, or give
  // its own id someone else's address.
  grpc::Status CheckMembershipCaller(const grpc::CallbackServerContext& ctx,
                                     const v1::MembershipRequest& req) const {
    if (!authorizer_) return grpc::Status::OK;
    auto peer = tls::PeerIdentityOf(*ctx.auth_context());
    if (peer.ok() && authorizer_->Decide(*peer, tls::Service::kRaft).allowed) return grpc::Status::OK;
    if (req.op() != v1::MembershipRequest::ADD_LEARNER) return authorizer_->Check(ctx, tls::Service::kRaft);
    if (grpc::Status denied = authorizer_->Check(ctx, tls::Service::kJoin); !denied.ok()) return denied;
    if (peer->node_id() != NodeId(req.node_id())) {
      return {
          grpc::StatusCode::PERMISSION_DENIED,
          "join: " + peer->Uri() + " may only ask to add itself, not node " + std::to_string(req.node_id())};
    }
    return grpc::Status::OK;
  }

  RaftNode* node_;
  CommandPreparer prepare_;
  const tls::PeerAuthorizer* const authorizer_;
};

ClusterService::ClusterService(RaftNode* node, CommandPreparer prepare_command,
                               const tls::PeerAuthorizer* authorizer)
    : impl_(std::make_unique<Impl>(node, std::move(prepare_command), authorizer)) {}
ClusterService::~ClusterService() = default;
grpc::Service* ClusterService::service() {
  return impl_.get();
}

}  // namespace dispotify::server
