#pragma once
// The operator's decisions: from an observed state of one DispotifyCluster (the spec, the pods,
// the Raft group as its leader reports it, and the operation journal kept in status.operation),
// the next safe step. Pure: no I/O and no clock of its own, so tests drive it with tables and
// seeds (tests/operator/plan).
//
// Rules (docs/operator.md has the prose):
// - One membership change at a time, only through the node admin API, each recorded in the
//   journal before it is taken. A step is idempotent: an operator that restarts reads the journal
//   and the group's own member list, checks whether the recorded step took effect, and either
//   takes it again or moves on. It never infers membership from pod counts.
// - Never lose quorum: a voter is removed only when the voters left still have a healthy
//   majority of the new configuration. Never drop below R: members are drained before removal,
//   R is lowered before the members it needs, and raised after them.
// - Members are known by node id *and* incarnation (node_uuid): a pod that comes back with a new
//   incarnation (an empty disk) is not the old voter; the old incarnation is removed and the new
//   one added as a learner.
// - A spec change in the middle of an operation waits for it, or reverses it when that is the
//   shorter way back (a learner the spec no longer wants is removed, a drain is undone).
// - Refusals are reported (a condition and an Event), never attempted.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dispotify::op::plan {

inline constexpr int QuorumOf(int voters) {
  return voters / 2 + 1;
}

// One member of the Raft group, as the leader's /cluster/status reports it.
struct Member {
  uint64_t node_id = 0;
  std::string node_uuid;  // "" when the node does not report incarnations
  bool voter = false;
  bool healthy = false;  // reachable by the leader
  bool draining = false;
  uint64_t match_index = 0;
  std::optional<uint64_t> files;  // copies it holds, when the leader knows
};

// The group, from its leader.
struct Group {
  uint64_t leader_id = 0;
  uint64_t commit_index = 0;
  uint32_t replication_factor = 0;
  uint64_t under_replicated = 0;  // files below R (the leader's repair pass)
  std::vector<Member> members;

  const Member* Find(uint64_t node_id) const;
  int Voters() const;
};

// A pod of the StatefulSet (ordinal = node id - 1).
struct Pod {
  int ordinal = 0;
  bool exists = false;
  bool terminating = false;
  bool running = false;    // its container runs (not necessarily Ready)
  bool ready = false;      // Ready condition (the node's /readyz)
  bool up_to_date = true;  // its template matches the desired one (rolling upgrades)
  // From the node's own /cluster/status, nullopt when it did not answer.
  std::optional<std::string> node_uuid;
  std::string peer_address;  // host:port the group reaches it at
  std::string uid;           // the Pod object's UID (a recreated pod has a new one)
};

// status.operation: the journal of the change in flight. An empty type means none.
struct Operation {
  std::string type;       // see the k* constants below
  uint64_t member = 0;    // node id
  std::string node_uuid;  // the incarnation the operation is about
  std::string step;
  uint32_t value = 0;        // the target of set-replication-factor
  int64_t step_since_s = 0;  // when the step was recorded (unix seconds)
  std::string last_error;
  std::string token;  // recover-quorum: the survivor's force_new_cluster token

  bool active() const { return !type.empty(); }
  bool operator==(const Operation&) const = default;
};

// Operation types and their steps.
inline constexpr const char* kOpAddMember = "add-member";  // add-learner, promote, remove-learner
inline constexpr const char* kOpRemoveMember =
    "remove-member";  // transfer-leadership, drain, remove, undrain
inline constexpr const char* kOpReplaceMember = "replace-member";  // remove-old, add-learner, promote
inline constexpr const char* kOpSetReplicationFactor = "set-replication-factor";  // set
inline constexpr const char* kOpRestartPod = "restart-pod";  // transfer-leadership, delete-pod, wait-ready
inline constexpr const char* kOpRecoverQuorum = "recover-quorum";  // restart-survivor, clear-request

struct Desired {
  int replicas = 3;
  uint32_t replication_factor = 3;
  bool paused = false;
};

// A person's request to rebuild a group that lost its quorum from one surviving member.
struct RecoveryRequest {
  std::string pod;       // as written in the annotation
  uint64_t node_id = 0;  // 0: `pod` is not a pod of this cluster
  bool uid_matches = false;
};

// With a PostgreSQL metadata store every member needs its own connection URL, read by its pod
// from the Secret the spec names (key "member-<ordinal>").
struct MetadataUrls {
  std::string secret;  // the Secret's name, for messages
  bool found = false;  // the Secret exists
  int members = 0;     // member-0 .. member-(members-1) are all there and not empty
};

struct Observed {
  Desired desired;
  std::optional<MetadataUrls> metadata_urls;  // nullopt: the embedded store (no limit)
  bool bootstrapped = false;                  // status.bootstrapped: the group has existed
  std::vector<Pod> pods;                      // the StatefulSet's pods that exist, any order
  std::optional<Group> group;                 // nullopt: no leader answered
  // The membership as the best-informed node knows it (the leader's, else the highest term's):
  // what a group without a leader is judged on.
  std::vector<Member> known_members;
  std::optional<RecoveryRequest> recovery;
  Operation operation;  // the journal
  int64_t now_s = 0;

  const Pod* FindPod(int ordinal) const;
};

struct Options {
  // A learner is caught up when its match index is this close to the leader's commit index.
  uint64_t max_catch_up_lag = 64;
  // A pod restarted for an upgrade that is not back after this long is reported.
  int64_t restart_timeout_s = 300;
};

enum class ActionType {
  kNone,                  // nothing to do: the cluster matches the spec
  kWait,                  // something must happen first (reason says what)
  kMarkBootstrapped,      // record status.bootstrapped and stop offering bootstrap to any node
  kAddLearner,            // node_id, address, node_uuid
  kPromote,               // node_id
  kTransferLeadership,    // away from node_id (to the most up-to-date other voter)
  kDrain,                 // node_id
  kUndrain,               // node_id
  kRemoveMember,          // node_id
  kSetReplicationFactor,  // value
  kDeletePod,             // ordinal = node_id - 1
  kClearRecoveryRequest,  // remove the recovery annotations from the custom resource
};

const char* ActionName(ActionType type);

struct Action {
  ActionType type = ActionType::kNone;
  uint64_t node_id = 0;
  std::string address;
  std::string node_uuid;
  uint32_t value = 0;
  std::string reason;  // why (for kWait: what it waits for)
};

struct Refusal {
  std::string reason;   // CamelCase, for a condition and an Event
  std::string message;  // for people
};

struct Decision {
  // The journal as it must be persisted *before* the action is taken (may equal the observed one;
  // when it differs, the caller writes it first and takes the action only once that succeeded).
  Operation operation;
  Action action;
  // What the StatefulSet's replicas must be: the spec's, but never below a pod that is still a
  // member or the subject of the operation in flight (a member leaves the group before its pod).
  int statefulset_replicas = 0;
  std::optional<Refusal> refusal;
};

Decision NextStep(const Observed& observed, const Options& options = {});

// Set when no leader answers and a majority of the voters `known_members` lists no longer run
// with their data (their pods are gone or came back as other incarnations): the group cannot
// elect a leader by itself. Says how many are left and what quorum they need.
std::optional<std::string> QuorumLost(const Observed& o, const std::vector<Member>& known_members);

}  // namespace dispotify::op::plan
