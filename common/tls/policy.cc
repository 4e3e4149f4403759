#include "common/tls/policy.h"

namespace dispotify::tls {

std::string_view ServiceName(Service service) {
  switch (service) {
    case Service::kRaft: return "raft";
    case Service::kReplication: return "replication";
    case Service::kJoin: return "join";
  }
  return "unknown";
}

std::string_view DecisionReasonName(DecisionReason reason) {
  switch (reason) {
    case DecisionReason::kMember: return "member";
    case DecisionReason::kJoiningNode: return "joining_node";
    case DecisionReason::kOtherCluster: return "other_cluster";
    case DecisionReason::kNotANode: return "not_a_node";
    case DecisionReason::kNotAMember: return "not_a_member";
  }
  return "unknown";
}

Decision AllowPeer(const Identity& peer, std::string_view cluster_id, Service service,
                   const std::set<NodeId>& members) {
  if (peer.cluster_id != cluster_id) return {false, DecisionReason::kOtherCluster};
  // node_id() also rejects a hand-built Identity whose node name is not a canonical id.
  std::optional<NodeId> id = peer.node_id();
  if (!id || *id == kNoNode) return {false, DecisionReason::kNotANode};
  switch (service) {
    case Service::kJoin: return {true, DecisionReason::kJoiningNode};
    case Service::kRaft:
    case Service::kReplication:
      if (members.contains(*id)) return {true, DecisionReason::kMember};
      return {false, DecisionReason::kNotAMember};
  }
  return {false, DecisionReason::kNotAMember};
}

}  // namespace dispotify::tls
