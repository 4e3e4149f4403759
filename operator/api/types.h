#pragma once
// The DispotifyCluster custom resource (group dispotify.io, version v1alpha1) as C++ values: the
// spec with every default applied, the status the operator writes, and their JSON.
//
// The CRD (crds/dispotifyclusters.dispotify.io.yaml) defaults and validates on the API server;
// ParseCluster applies the same defaults and checks the same rules again, so an object stored
// before a rule existed, or read from a test's fake server, is judged alike. A field added here
// is added to the CRD's schema too (and the reverse): the API server prunes what the schema does
// not know.

#include <cpprest/json.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace dispotify::op::api {

inline constexpr std::string_view kGroup = "dispotify.io";
inline constexpr std::string_view kVersion = "v1alpha1";
inline constexpr std::string_view kApiVersion = "dispotify.io/v1alpha1";
inline constexpr std::string_view kKind = "DispotifyCluster";
// A quorum-loss recovery request (docs/operator.md, "Quorum loss"): the pod of the surviving
// member to rebuild from, and the cluster's UID echoed, so that a request copied from another
// cluster of the same name does nothing. The operator removes both once the recovery is done.
inline constexpr std::string_view kRecoverFromAnnotation = "dispotify.io/recover-from";
inline constexpr std::string_view kRecoverUidAnnotation = "dispotify.io/recover-uid";
inline constexpr std::string_view kPlural = "dispotifyclusters";

// Node settings the operator writes itself (environment or config.yaml); spec.config may not set
// them. The CRD's CEL rule on spec.config lists the same keys.
const std::vector<std::string>& OperatorOwnedConfigKeys();

enum class RetentionPolicy : uint8_t { kRetain, kDelete };
std::string_view RetentionPolicyName(RetentionPolicy p);  // "Retain" | "Delete"

enum class MetadataStoreType : uint8_t { kEmbedded, kPostgres };
std::string_view MetadataStoreTypeName(MetadataStoreType t);  // "embedded" | "postgres"

struct StorageSpec {
  std::string size = "10Gi";  // a Kubernetes quantity; grows, never shrinks
  std::optional<std::string> storage_class_name;
  RetentionPolicy when_scaled = RetentionPolicy::kRetain;
  RetentionPolicy when_deleted = RetentionPolicy::kRetain;
};

struct MetadataStoreSpec {
  MetadataStoreType type = MetadataStoreType::kEmbedded;
  // With kPostgres: a Secret holding one libpq URL per member under "member-<ordinal>".
  std::string postgres_secret_name;
};

struct ServiceSpec {
  std::string type = "ClusterIP";  // ClusterIP | NodePort | LoadBalancer
  int32_t port = 8080;
  std::map<std::string, std::string> annotations;
};

// Additions to the members' pods. The Kubernetes-shaped fields are kept as JSON, as given (null
// when absent).
struct PodTemplateOverrides {
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  web::json::value affinity;                     // core/v1 Affinity
  web::json::value tolerations;                  // [core/v1 Toleration]
  web::json::value topology_spread_constraints;  // [core/v1 TopologySpreadConstraint]
  std::map<std::string, std::string> node_selector;
  std::string priority_class_name;
};

struct MonitoringSpec {
  bool service_monitor = false;
  std::string interval = "30s";
};

struct ClusterSpec {
  int32_t replicas = 3;
  int32_t replication_factor = 3;
  std::string image;              // empty: the operator's default image
  std::string image_pull_policy;  // empty: Kubernetes decides from the tag
  web::json::value resources;     // core/v1 ResourceRequirements, null when absent
  StorageSpec storage;
  MetadataStoreSpec metadata_store;
  ServiceSpec service;
  bool paused = false;
  PodTemplateOverrides pod_template;
  MonitoringSpec monitoring;
  // Extra node settings for config.yaml; numbers are kept as their decimal text.
  std::map<std::string, std::string> config;
};

// The parts of the custom resource's metadata the operator uses.
struct ObjectMeta {
  std::string name;
  std::string namespace_;
  std::string uid;  // the cluster's identity: the nodes' cluster_id
  int64_t generation = 0;
  std::string resource_version;
  std::string creation_timestamp;
  std::string deletion_timestamp;  // empty while the object is not being deleted
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::vector<std::string> finalizers;
};

// The standard metav1.Condition.
struct Condition {
  std::string type;
  std::string status;  // "True" | "False" | "Unknown"
  std::string reason;  // CamelCase, one word
  std::string message;
  std::string last_transition_time;  // RFC 3339
  int64_t observed_generation = 0;

  bool operator==(const Condition&) const = default;
};

// Condition types the operator reports.
inline constexpr std::string_view kConditionReady = "Ready";
inline constexpr std::string_view kConditionProgressing = "Progressing";
inline constexpr std::string_view kConditionDegraded = "Degraded";
inline constexpr std::string_view kConditionReplicationHealthy = "ReplicationHealthy";
inline constexpr std::string_view kConditionQuorumLost = "QuorumLost";

enum class MemberRole : uint8_t { kNone, kLeader, kVoter, kLearner };
std::string_view MemberRoleName(MemberRole r);  // "none" | "leader" | "voter" | "learner"
Result<MemberRole> ParseMemberRole(std::string_view name);

struct Member {
  std::string pod;
  uint64_t node_id = 0;
  std::string node_uuid;  // the incarnation of the node's data directory
  MemberRole role = MemberRole::kNone;
  bool healthy = false;
  bool caught_up = false;
  std::string version;

  bool operator==(const Member&) const = default;
};

// The journal of the change in flight (status.operation). Each step is recorded before it is
// taken. Fields this struct does not name are kept in `extra` and written back unchanged, so a
// newer operator's journal survives a read and write by this one.
struct Operation {
  std::string type;    // e.g. ScaleUp, ScaleDown, ReplaceMember, RollingUpgrade, SetReplicationFactor
  std::string member;  // the pod the change is about
  uint64_t node_id = 0;
  std::string node_uuid;
  std::string step;
  std::string started;       // RFC 3339: when the operation began
  std::string step_started;  // RFC 3339: when its current step was recorded
  std::string last_error;
  std::optional<int32_t> target_replicas;
  std::optional<int32_t> target_replication_factor;
  std::string target_revision;  // the restart hash a rolling upgrade moves the pods to
  std::string token;            // recover-quorum: the node's force_new_cluster token
  web::json::value extra = web::json::value::object();

  bool operator==(const Operation&) const = default;
};

struct ClusterStatus {
  int64_t observed_generation = 0;
  std::string phase;
  std::string selector;
  int32_t replicas = 0;
  int32_t ready_replicas = 0;
  std::string leader;  // the leader's pod, empty when there is none
  int32_t replication_factor = 0;
  int64_t under_replicated_files = 0;
  bool bootstrapped = false;
  std::vector<Condition> conditions;
  std::vector<Member> members;
  std::optional<Operation> operation;

  bool operator==(const ClusterStatus&) const = default;
};

struct DispotifyCluster {
  ObjectMeta metadata;
  ClusterSpec spec;
  ClusterStatus status;
};

// Parses a DispotifyCluster object as the API server returns it (apiVersion, kind, metadata,
// spec, status), applying the CRD's defaults and checking its rules. InvalidArgument names the
// offending field ("spec.replicationFactor: ...").
Result<DispotifyCluster> ParseCluster(const web::json::value& object);
// The spec alone (the value of "spec"; null or absent means every default).
Result<ClusterSpec> ParseSpec(const web::json::value& spec);
// The status alone (null or absent means an empty status).
Result<ClusterStatus> ParseStatus(const web::json::value& status);

// The status as the status subresource takes it; empty strings and absent optionals are left out.
web::json::value StatusToJson(const ClusterStatus& status);
// The object to server-side apply to the status subresource: apiVersion, kind, metadata (name,
// namespace) and the status. Fields the operator applied before and no longer sets (a finished
// status.operation) are removed by the apply.
web::json::value StatusApplyObject(const ObjectMeta& metadata, const ClusterStatus& status);
web::json::value ConditionToJson(const Condition& condition);
web::json::value MemberToJson(const Member& member);
web::json::value OperationToJson(const Operation& operation);

// Sets `condition` in `conditions` (matched by type). lastTransitionTime becomes `now` when the
// condition is new or its status changes, and is kept otherwise (reason, message and
// observedGeneration are updated in place). Returns true when anything changed.
bool SetCondition(std::vector<Condition>* conditions, Condition condition, std::string_view now);
// The condition of that type, or nullptr.
const Condition* FindCondition(const std::vector<Condition>& conditions, std::string_view type);
// True when the condition of that type exists and has status "True".
bool IsConditionTrue(const std::vector<Condition>& conditions, std::string_view type);
// Removes the condition of that type; true if there was one.
bool RemoveCondition(std::vector<Condition>* conditions, std::string_view type);

// A Kubernetes quantity ("10Gi", "500M", "1.5Ti", "1e9") in bytes, rounded up. InvalidArgument for
// text that is not a quantity, a negative one, or one beyond int64.
Result<int64_t> ParseQuantityBytes(std::string_view quantity);

// Time as metav1.Time writes it: RFC 3339 in UTC with second precision ("2026-01-02T03:04:05Z").
std::string Rfc3339(int64_t unix_seconds);
// Back to unix seconds; InvalidArgument for anything that is not "YYYY-MM-DDTHH:MM:SS[.frac]Z".
Result<int64_t> ParseRfc3339(std::string_view text);
std::string NowRfc3339();

}  // namespace dispotify::op::api
