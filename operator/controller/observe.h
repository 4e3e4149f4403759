#pragma once
// From what one reconcile pass read (the custom resource, its pods, each node's /cluster/status)
// to the planner's input, and from the planner's output back to the custom resource's status.
// Pure: tests build pods and node statuses as values.

#include <cpprest/json.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "operator/api/types.h"
#include "operator/nodes/nodes.h"
#include "operator/plan/health.h"
#include "operator/plan/plan.h"
#include "operator/specs/specs.h"

namespace dispotify::op::controller {

// A pod of the cluster's StatefulSet and what its node said about itself.
struct NodeView {
  int32_t ordinal = -1;
  web::json::value pod;
  std::optional<nodes::NodeStatus> status;  // nullopt: no answer, or a node of another cluster
  std::string error;                        // why there is no status
};

// The ordinal of pod "<cluster>-<n>", or -1 for any other name.
int32_t PodOrdinal(std::string_view cluster_name, const web::json::value& pod);
int32_t OrdinalOfPodName(std::string_view cluster_name, const std::string& name);
std::string PodUid(const web::json::value& pod);
// status.podIP, "" when it has none yet.
std::string PodIp(const web::json::value& pod);
bool PodTerminating(const web::json::value& pod);

// The status of the node that leads in the highest term among the answers; nullptr when none does.
const nodes::NodeStatus* FindLeader(const std::vector<NodeView>& views);

plan::Group GroupFromStatus(const nodes::NodeStatus& leader);
std::vector<plan::Member> MembersFromStatus(const nodes::NodeStatus& status);

// status.operation <-> the planner's journal. The planner's operation types and steps are written
// as they are; the node id's pod is named in `member` for people.
plan::Operation JournalFromStatus(const std::optional<api::Operation>& operation);
std::optional<api::Operation> JournalToStatus(const plan::Operation& journal, std::string_view cluster_name,
                                              const std::optional<api::Operation>& previous, int64_t now_s);

// The planner's input. Views whose node reports another cluster_id must have been filtered out
// (status cleared) by the caller.
plan::Observed BuildObserved(const api::DispotifyCluster& cluster, const specs::Settings& settings,
                             const std::vector<NodeView>& views, int64_t now_s);

// What the PostgreSQL Secret of a cluster offers its members: how many consecutive keys
// member-0, member-1, ... hold a non-empty value. `secret` is null when it does not exist.
plan::MetadataUrls MetadataUrlsOf(const std::string& secret_name, const web::json::value* secret);

// The membership as last known: the leader's, else the answer of the highest term (to tell an
// election from a lost quorum).
std::vector<plan::Member> KnownMembers(const std::vector<NodeView>& views);
// The quorum-loss recovery request in the cluster's annotations, if any (api::kRecoverFrom...).
std::optional<plan::RecoveryRequest> RecoveryRequestOf(const api::DispotifyCluster& cluster);

// The status to write after a pass: members, leader, counts and conditions from `health` (their
// lastTransitionTime kept from `previous` when unchanged), and the journal.
api::ClusterStatus BuildStatus(const api::DispotifyCluster& cluster, const plan::Observed& observed,
                               const plan::Decision& decision, const plan::Health& health,
                               const std::vector<NodeView>& views, int64_t now_s,
                               const plan::Options& options = {});

}  // namespace dispotify::op::controller
