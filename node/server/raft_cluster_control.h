#pragma once
// api::ClusterControl over this node's RaftNode: the view from its published status, and the
// administrative operations sent to the leader through the Cluster gRPC service (following
// "not-leader" redirects), so they work from any node.

#include <chrono>
#include <memory>
#include <string>

#include "node/api/cluster_control.h"

namespace grpc {
class ChannelCredentials;
}  // namespace grpc

namespace dispotify::server {

class RaftNode;

class RaftClusterControl final : public api::ClusterControl {
 public:
  // `credentials`: the node's own (mTLS: it calls the leader as the member it is); null: plaintext.
  explicit RaftClusterControl(RaftNode* node, std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr,
                              std::chrono::milliseconds budget = std::chrono::seconds(10))
      : node_(node), credentials_(std::move(credentials)), budget_(budget) {}

  api::ClusterView View() const override;
  Status AddLearner(NodeId node, const std::string& address, const std::string& node_uuid) override;
  Status Promote(NodeId node) override;
  Status Remove(NodeId node) override;
  Status TransferLeadership(NodeId target) override;

 private:
  RaftNode* node_;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  std::chrono::milliseconds budget_;
};

}  // namespace dispotify::server
