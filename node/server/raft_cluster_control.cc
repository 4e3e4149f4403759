#include "node/server/raft_cluster_control.h"

#include "node/server/kv_client.h"
#include "node/server/raft_node.h"

namespace dispotify::server {
namespace {

Status FromGrpc(const grpc::Status& st) {
  switch (st.error_code()) {
    case grpc::StatusCode::OK: return Status::Ok();
    case grpc::StatusCode::INVALID_ARGUMENT: return Status::InvalidArgument(st.error_message());
    case grpc::StatusCode::FAILED_PRECONDITION: return Status::FailedPrecondition(st.error_message());
    case grpc::StatusCode::ABORTED: return Status::CommitUnknown(st.error_message());
    default: return Status::Unavailable(st.error_message());
  }
}

}  // namespace

api::ClusterView RaftClusterControl::View() const {
  NodeStatus st = node_->status();
  api::ClusterView v;
  v.self = st.id;
  v.role = std::string(consensus::RoleName(st.role));
  v.term = st.term.value();
  v.leader = st.leader;
  if (auto it = st.conf.members.find(st.leader); it != st.conf.members.end())
    v.leader_address = it->second.address;
  v.commit_index = st.commit.value();
  v.applied_index = st.applied.value();
  v.running = st.running;
  for (const auto& [id, member] : st.conf.members) {
    api::MemberView m;
    m.id = id;
    m.address = member.address;
    m.voter = member.voter;
    m.node_uuid = member.node_uuid;
    m.incarnation_refused = st.refused_incarnations.contains(id);
    if (auto it = st.match.find(id); it != st.match.end()) m.match_index = it->second.value();
    v.members.push_back(std::move(m));
  }
  return v;
}

namespace {

// A client over every member's address, starting with the leader's when known.
KvClient ClientFor(RaftNode* node, const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
  NodeStatus st = node->status();
  std::vector<std::string> endpoints;
  if (auto it = st.conf.members.find(st.leader); it != st.conf.members.end())
    endpoints.push_back(it->second.address);
  for (const auto& [id, member] : st.conf.members) {
    if (id != st.leader) endpoints.push_back(member.address);
  }
  return KvClient(std::move(endpoints), std::chrono::milliseconds(2000), credentials);
}

Status Change(RaftNode* node, const std::shared_ptr<grpc::ChannelCredentials>& credentials,
              v1::MembershipRequest::Op op, NodeId id, const std::string& address,
              std::chrono::milliseconds budget, const std::string& node_uuid = "") {
  v1::MembershipRequest req;
  req.set_op(op);
  req.set_node_id(id.value());
  req.set_address(address);
  req.set_node_uuid(node_uuid);
  KvClient client = ClientFor(node, credentials);
  return FromGrpc(client.ChangeMembership(req, budget));
}

}  // namespace

Status RaftClusterControl::AddLearner(NodeId node, const std::string& address, const std::string& node_uuid) {
  return Change(node_, credentials_, v1::MembershipRequest::ADD_LEARNER, node, address, budget_, node_uuid);
}

Status RaftClusterControl::Promote(NodeId node) {
  NodeStatus st = node_->status();
  auto it = st.conf.members.find(node);
  if (it == st.conf.members.end())
    return Status::NotFound("node " + std::to_string(node.value()) + " is not a member");
  if (it->second.voter) return Status::Ok();  // already a voter: nothing to do
  return Change(node_, credentials_, v1::MembershipRequest::PROMOTE, node, "", budget_);
}

Status RaftClusterControl::Remove(NodeId node) {
  NodeStatus st = node_->status();
  if (!st.conf.members.contains(node))
    return Status::NotFound("node " + std::to_string(node.value()) + " is not a member");
  return Change(node_, credentials_, v1::MembershipRequest::REMOVE, node, "", budget_);
}

Status RaftClusterControl::TransferLeadership(NodeId target) {
  KvClient client = ClientFor(node_, credentials_);
  return FromGrpc(client.TransferLeadership(target.value(), budget_));
}

}  // namespace dispotify::server
