#pragma once
// What the public APIs need from the consensus layer, without depending on it: a view of the
// Raft group and the administrative operations (each goes to the leader wherever it is called).
// Implemented by the composition root (node/server/raft_cluster_control.h).

#include <cstdint>
#include <string>
#include <vector>

#include "common/ids.h"
#include "common/status.h"

namespace dispotify::api {

struct MemberView {
  NodeId id;
  std::string address;
  bool voter = false;
  uint64_t match_index = 0;  // known on the leader only
  std::string node_uuid;     // the incarnation the membership records ("" = unknown)
  // Its messages are refused: it speaks as another incarnation (it came back with an empty disk).
  bool incarnation_refused = false;
};

struct ClusterView {
  NodeId self;
  std::string role;  // follower | pre-candidate | candidate | leader
  uint64_t term = 0;
  NodeId leader;
  std::string leader_address;
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
  bool running = false;
  std::vector<MemberView> members;
};

class ClusterControl {
 public:
  virtual ~ClusterControl() = default;
  virtual ClusterView View() const = 0;
  // Each returns once the change is committed (or refused): kInvalidArgument, kUnavailable
  // (no leader / the learner is still catching up), kFailedPrecondition.
  // `node_uuid` ("" = unknown) is the learner's incarnation: a node already a member as another
  // incarnation is refused (kFailedPrecondition) until it is removed.
  virtual Status AddLearner(NodeId node, const std::string& address, const std::string& node_uuid) = 0;
  virtual Status Promote(NodeId node) = 0;
  virtual Status Remove(NodeId node) = 0;
  // kNoNode: the most up-to-date other voter.
  virtual Status TransferLeadership(NodeId target) = 0;
};

}  // namespace dispotify::api
