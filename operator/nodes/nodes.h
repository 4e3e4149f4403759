#pragma once
// The operator's client of a node's public REST API (docs/openapi.yaml): the status of one node
// and the administrative calls that change the Raft group. The operator reaches nodes only this
// way (never through node/), so a fake NodeAdmin is all the controller's tests need.
//
// Each call is one HTTP request to the node at `base_url` ("http://host:8080"): no failover to
// other nodes and no retries, since the controller's loop retries, and at most `timeout` of
// waiting, so that a dead or hung pod never stalls the loop. Admin calls go to any node (a
// follower forwards them to the leader).
//
// Answers map to codes so that the caller can decide without reading messages (each message
// still carries the node's own, as DescribeHttpError writes it):
//   no HTTP answer (refused, timed out), 503        kUnavailable (no leader, learner catching up)
//   409 already_exists                              kAlreadyExists
//   409 failed_precondition                         kFailedPrecondition (e.g. the id is a member
//                                                   as another incarnation: remove it first)
//   409 (other)                                     kAborted
//   400                                             kInvalidArgument
//   404                                             kNotFound
//   401, 403                                        kFailedPrecondition (wrong or missing token)
//   504                                             kTimeout (the change may still commit)
//   anything else                                   kIoError

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace dispotify::op::nodes {

// One entry of "members" in GET /cluster/status. match_index is known on the leader only.
struct MemberStatus {
  uint64_t node_id = 0;
  std::string address;  // its Raft (gRPC) address, host:port
  std::string role;     // "leader" | "voter" | "learner"
  bool healthy = false;
  bool draining = false;
  uint64_t match_index = 0;
  std::string node_uuid;  // "" when unknown
  // The leader refuses its messages: it speaks as another incarnation (came back with an empty
  // disk) and must be removed and added again.
  bool incarnation_refused = false;
  // Copies it holds and its free space, as last reported (the answering node's own from "local").
  std::optional<uint64_t> files;
  std::optional<uint64_t> free_bytes;
};

// GET /cluster/status of one node: its own view.
struct NodeStatus {
  uint64_t node_id = 0;
  std::string node_uuid;
  std::string cluster_id;
  std::string version;
  std::string role;  // follower | pre-candidate | candidate | leader
  uint64_t term = 0;
  uint64_t leader_id = 0;  // 0: none known
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
  uint32_t replication_factor = 0;
  std::vector<MemberStatus> members;
  std::optional<uint64_t> under_replicated;  // repair.under_replicated, leader only
  bool IsLeader() const { return role == "leader"; }
};

// Unknown fields are ignored; a missing required field, a wrong type or an unknown role is
// kInvalidArgument naming the field ("members[1].match_index").
Result<NodeStatus> ParseNodeStatus(std::string_view json);

class NodeAdmin {
 public:
  virtual ~NodeAdmin() = default;
  virtual Result<NodeStatus> GetStatus(const std::string& base_url) = 0;
  // Adding a member that is already there with this address and incarnation is OK.
  virtual Status AddLearner(const std::string& base_url, uint64_t node_id, const std::string& address,
                            const std::string& node_uuid) = 0;
  // OK when already a voter; kUnavailable while the learner is still catching up.
  virtual Status Promote(const std::string& base_url, uint64_t node_id) = 0;
  // Not a member (404) is OK: removal is idempotent.
  virtual Status RemoveMember(const std::string& base_url, uint64_t node_id) = 0;
  virtual Status Drain(const std::string& base_url, uint64_t node_id) = 0;
  virtual Status Undrain(const std::string& base_url, uint64_t node_id) = 0;
  // target 0: the most up-to-date other voter.
  virtual Status TransferLeadership(const std::string& base_url, uint64_t target) = 0;
  virtual Status SetReplicationFactor(const std::string& base_url, uint32_t factor) = 0;
};

struct NodeAdminOptions {
  std::string token;  // the nodes' admin bearer token ("" when they need none)
  std::chrono::milliseconds timeout{5000};
};

std::unique_ptr<NodeAdmin> NewHttpNodeAdmin(NodeAdminOptions options);

}  // namespace dispotify::op::nodes
