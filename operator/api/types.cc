#include "operator/api/types.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <limits>
#include <regex>

namespace dispotify::op::api {
namespace {

using web::json::value;

// Reads the fields of one JSON object, naming them by their path in errors ("spec.storage.size").
// A field that is absent or null is "not given": the getters then leave their output alone, which
// holds the default.
class Fields {
 public:
  Fields(const value& object, std::string path) : object_(object), path_(std::move(path)) {}

  static Result<Fields> Of(const value& object, std::string path) {
    if (!object.is_object()) return Status::InvalidArgument(path + ": must be an object");
    return Fields(object, std::move(path));
  }

  std::string Path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  // The field's value, or nullptr when it is absent or null.
  const value* Get(std::string_view key) const {
    const auto& obj = object_.as_object();
    auto it = obj.find(std::string(key));
    if (it == obj.end() || it->second.is_null()) return nullptr;
    return &it->second;
  }

  Status String(std::string_view key, std::string* out, bool required = false) const {
    const value* v = Get(key);
    if (v == nullptr) return required ? Status::InvalidArgument(Path(key) + ": is required") : Status::Ok();
    if (!v->is_string()) return Status::InvalidArgument(Path(key) + ": must be a string");
    *out = v->as_string();
    if (required && out->empty()) return Status::InvalidArgument(Path(key) + ": must not be empty");
    return Status::Ok();
  }

  Status OptionalString(std::string_view key, std::optional<std::string>* out) const {
    const value* v = Get(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_string()) return Status::InvalidArgument(Path(key) + ": must be a string");
    *out = v->as_string();
    return Status::Ok();
  }

  Status Int64(std::string_view key, int64_t* out, int64_t min = std::numeric_limits<int64_t>::min(),
               int64_t max = std::numeric_limits<int64_t>::max()) const {
    const value* v = Get(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_number() || !v->as_number().is_int64()) {
      return Status::InvalidArgument(Path(key) + ": must be an integer");
    }
    const int64_t n = v->as_number().to_int64();
    if (n < min) return Status::InvalidArgument(Path(key) + ": must be at least " + std::to_string(min));
    if (n > max) return Status::InvalidArgument(Path(key) + ": must be at most " + std::to_string(max));
    *out = n;
    return Status::Ok();
  }

  Status Int32(std::string_view key, int32_t* out, int64_t min = std::numeric_limits<int32_t>::min(),
               int64_t max = std::numeric_limits<int32_t>::max()) const {
    int64_t n = *out;
    DISPOTIFY_RETURN_IF_ERROR(Int64(key, &n, min, max));
    *out = static_cast<int32_t>(n);
    return Status::Ok();
  }

  Status Uint64(std::string_view key, uint64_t* out) const {
    const value* v = Get(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_number() || !v->as_number().is_uint64()) {
      return Status::InvalidArgument(Path(key) + ": must be a non-negative integer");
    }
    *out = v->as_number().to_uint64();
    return Status::Ok();
  }

  Status Bool(std::string_view key, bool* out) const {
    const value* v = Get(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_boolean()) return Status::InvalidArgument(Path(key) + ": must be true or false");
    *out = v->as_bool();
    return Status::Ok();
  }

  Status StringMap(std::string_view key, std::map<std::string, std::string>* out) const {
    const value* v = Get(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_object()) return Status::InvalidArgument(Path(key) + ": must be a map of strings");
    for (const auto& [k, item] : v->as_object()) {
      if (!item.is_string()) return Status::InvalidArgument(Path(key) + "." + k + ": must be a string");
      (*out)[k] = item.as_string();
    }
    return Status::Ok();
  }

  // A Kubernetes-shaped field kept as JSON: must be an object (or an array when `array`).
  Status Raw(std::string_view key, value* out, bool array = false) const {
    const value* v = Get(key);
    if (v == nullptr) return Status::Ok();
    if (array ? !v->is_array() : !v->is_object()) {
      return Status::InvalidArgument(Path(key) + (array ? ": must be a list" : ": must be an object"));
    }
    *out = *v;
    return Status::Ok();
  }

  // The sub-object's fields; a null value when absent (check with `present`).
  Result<std::optional<Fields>> Object(std::string_view key) const {
    const value* v = Get(key);
    if (v == nullptr) return std::optional<Fields>();
    if (!v->is_object()) return Status::InvalidArgument(Path(key) + ": must be an object");
    return std::optional<Fields>(Fields(*v, Path(key)));
  }

  const value& json() const { return object_; }

 private:
  const value& object_;
  std::string path_;
};

Status OneOf(const std::string& path, const std::string& got,
             std::initializer_list<std::string_view> allowed) {
  for (auto a : allowed) {
    if (got == a) return Status::Ok();
  }
  std::string list;
  for (auto a : allowed) {
    if (!list.empty()) list += ", ";
    list += a;
  }
  return Status::InvalidArgument(path + ": must be one of " + list + " (got '" + got + "')");
}

Result<RetentionPolicy> ParseRetention(const std::string& path, const std::string& text) {
  DISPOTIFY_RETURN_IF_ERROR(OneOf(path, text, {"Retain", "Delete"}));
  return text == "Delete" ? RetentionPolicy::kDelete : RetentionPolicy::kRetain;
}

Status ParseStorage(const Fields& f, StorageSpec* out) {
  DISPOTIFY_RETURN_IF_ERROR(f.String("size", &out->size));
  auto bytes = ParseQuantityBytes(out->size);
  if (!bytes.ok()) return Status::InvalidArgument(f.Path("size") + ": " + bytes.status().message());
  if (*bytes <= 0)
    return Status::InvalidArgument(f.Path("size") + ": must be a positive quantity such as 10Gi");
  DISPOTIFY_RETURN_IF_ERROR(f.OptionalString("storageClassName", &out->storage_class_name));
  auto retention = f.Object("retention");
  if (!retention.ok()) return retention.status();
  if (*retention) {
    const Fields& r = **retention;
    std::string scaled(RetentionPolicyName(out->when_scaled));
    std::string deleted(RetentionPolicyName(out->when_deleted));
    DISPOTIFY_RETURN_IF_ERROR(r.String("whenScaled", &scaled));
    DISPOTIFY_RETURN_IF_ERROR(r.String("whenDeleted", &deleted));
    auto s = ParseRetention(r.Path("whenScaled"), scaled);
    if (!s.ok()) return s.status();
    auto d = ParseRetention(r.Path("whenDeleted"), deleted);
    if (!d.ok()) return d.status();
    out->when_scaled = *s;
    out->when_deleted = *d;
  }
  return Status::Ok();
}

Status ParseMetadataStore(const Fields& f, MetadataStoreSpec* out) {
  std::string type(MetadataStoreTypeName(out->type));
  DISPOTIFY_RETURN_IF_ERROR(f.String("type", &type));
  DISPOTIFY_RETURN_IF_ERROR(OneOf(f.Path("type"), type, {"embedded", "postgres"}));
  out->type = type == "postgres" ? MetadataStoreType::kPostgres : MetadataStoreType::kEmbedded;
  auto pg = f.Object("postgres");
  if (!pg.ok()) return pg.status();
  if (*pg) DISPOTIFY_RETURN_IF_ERROR((*pg)->String("secretName", &out->postgres_secret_name));
  if (out->type == MetadataStoreType::kPostgres && out->postgres_secret_name.empty()) {
    return Status::InvalidArgument(f.Path("postgres.secretName") +
                                   ": is required when spec.metadataStore.type is postgres");
  }
  return Status::Ok();
}

Status ParseService(const Fields& f, ServiceSpec* out) {
  DISPOTIFY_RETURN_IF_ERROR(f.String("type", &out->type));
  DISPOTIFY_RETURN_IF_ERROR(OneOf(f.Path("type"), out->type, {"ClusterIP", "NodePort", "LoadBalancer"}));
  DISPOTIFY_RETURN_IF_ERROR(f.Int32("port", &out->port, 1, 65535));
  return f.StringMap("annotations", &out->annotations);
}

Status ParsePodTemplate(const Fields& f, PodTemplateOverrides* out) {
  DISPOTIFY_RETURN_IF_ERROR(f.StringMap("labels", &out->labels));
  for (const char* reserved :
       {"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by"}) {
    if (out->labels.contains(reserved)) {
      return Status::InvalidArgument(f.Path("labels") + ": may not set " + reserved +
                                     ": the operator selects its pods by it");
    }
  }
  DISPOTIFY_RETURN_IF_ERROR(f.StringMap("annotations", &out->annotations));
  DISPOTIFY_RETURN_IF_ERROR(f.Raw("affinity", &out->affinity));
  DISPOTIFY_RETURN_IF_ERROR(f.Raw("tolerations", &out->tolerations, /*array=*/true));
  DISPOTIFY_RETURN_IF_ERROR(
      f.Raw("topologySpreadConstraints", &out->topology_spread_constraints, /*array=*/true));
  DISPOTIFY_RETURN_IF_ERROR(f.StringMap("nodeSelector", &out->node_selector));
  return f.String("priorityClassName", &out->priority_class_name);
}

Status ParseMonitoring(const Fields& f, MonitoringSpec* out) {
  DISPOTIFY_RETURN_IF_ERROR(f.Bool("serviceMonitor", &out->service_monitor));
  DISPOTIFY_RETURN_IF_ERROR(f.String("interval", &out->interval));
  static const std::regex kDuration("^([0-9]+(ms|s|m|h))+$");
  if (!std::regex_match(out->interval, kDuration)) {
    return Status::InvalidArgument(f.Path("interval") + ": must be a duration such as 30s or 1m");
  }
  return Status::Ok();
}

Status ConfigError(std::string prefix, const std::string& key, std::string_view what) {
  prefix += key;
  prefix += what;
  return Status::InvalidArgument(std::move(prefix));
}

Status ParseConfig(const Fields& f, std::map<std::string, std::string>* out) {
  const value* v = f.Get("config");
  if (v == nullptr) return Status::Ok();
  const std::string path = f.Path("config");
  if (!v->is_object()) return Status::InvalidArgument(path + ": must be a map of node settings");
  static const std::regex kKey("^[a-z][a-z0-9_]*$");
  const auto& owned = OperatorOwnedConfigKeys();
  for (const auto& [key, item] : v->as_object()) {
    if (!std::regex_match(key, kKey) || key.size() > 64) {
      return ConfigError(path + ": key '", key, "' is not a node setting in snake_case");
    }
    if (std::find(owned.begin(), owned.end(), key) != owned.end()) {
      return ConfigError(
          path + ".", key,
          ": is set by the operator (use spec.replicationFactor and spec.metadataStore for those)");
    }
    if (item.is_string()) {
      (*out)[key] = item.as_string();
    } else if (item.is_number() && item.as_number().is_int64()) {
      (*out)[key] = std::to_string(item.as_number().to_int64());
    } else {
      return ConfigError(path + ".", key, ": must be a string or an integer");
    }
  }
  return Status::Ok();
}

Status ParseMeta(const value& meta, ObjectMeta* out) {
  auto f = Fields::Of(meta, "metadata");
  if (!f.ok()) return f.status();
  DISPOTIFY_RETURN_IF_ERROR(f->String("name", &out->name, /*required=*/true));
  DISPOTIFY_RETURN_IF_ERROR(f->String("namespace", &out->namespace_, /*required=*/true));
  DISPOTIFY_RETURN_IF_ERROR(f->String("uid", &out->uid, /*required=*/true));
  DISPOTIFY_RETURN_IF_ERROR(f->Int64("generation", &out->generation));
  DISPOTIFY_RETURN_IF_ERROR(f->String("resourceVersion", &out->resource_version));
  DISPOTIFY_RETURN_IF_ERROR(f->String("creationTimestamp", &out->creation_timestamp));
  DISPOTIFY_RETURN_IF_ERROR(f->String("deletionTimestamp", &out->deletion_timestamp));
  DISPOTIFY_RETURN_IF_ERROR(f->StringMap("labels", &out->labels));
  DISPOTIFY_RETURN_IF_ERROR(f->StringMap("annotations", &out->annotations));
  if (const value* fin = f->Get("finalizers")) {
    if (!fin->is_array()) return Status::InvalidArgument("metadata.finalizers: must be a list");
    for (const auto& item : fin->as_array()) {
      if (!item.is_string()) return Status::InvalidArgument("metadata.finalizers: must hold strings");
      out->finalizers.push_back(item.as_string());
    }
  }
  static const std::regex kName("^[a-z]([-a-z0-9]*[a-z0-9])?$");
  if (out->name.size() > 52 || !std::regex_match(out->name, kName)) {
    return Status::InvalidArgument(
        "metadata.name: must be at most 52 characters, start with a letter and hold only lower-case letters, "
        "digits and '-' (it names the cluster's Services and pods)");
  }
  return Status::Ok();
}

Result<Condition> ParseCondition(const value& v, const std::string& path) {
  auto f = Fields::Of(v, path);
  if (!f.ok()) return f.status();
  Condition c;
  DISPOTIFY_RETURN_IF_ERROR(f->String("type", &c.type, /*required=*/true));
  DISPOTIFY_RETURN_IF_ERROR(f->String("status", &c.status, /*required=*/true));
  DISPOTIFY_RETURN_IF_ERROR(OneOf(f->Path("status"), c.status, {"True", "False", "Unknown"}));
  DISPOTIFY_RETURN_IF_ERROR(f->String("reason", &c.reason));
  DISPOTIFY_RETURN_IF_ERROR(f->String("message", &c.message));
  DISPOTIFY_RETURN_IF_ERROR(f->String("lastTransitionTime", &c.last_transition_time));
  DISPOTIFY_RETURN_IF_ERROR(f->Int64("observedGeneration", &c.observed_generation, 0));
  return c;
}

Result<Member> ParseMember(const value& v, const std::string& path) {
  auto f = Fields::Of(v, path);
  if (!f.ok()) return f.status();
  Member m;
  DISPOTIFY_RETURN_IF_ERROR(f->String("pod", &m.pod, /*required=*/true));
  DISPOTIFY_RETURN_IF_ERROR(f->Uint64("nodeId", &m.node_id));
  DISPOTIFY_RETURN_IF_ERROR(f->String("nodeUuid", &m.node_uuid));
  std::string role = "none";
  DISPOTIFY_RETURN_IF_ERROR(f->String("role", &role));
  auto r = ParseMemberRole(role);
  if (!r.ok()) return Status::InvalidArgument(f->Path("role") + ": " + r.status().message());
  m.role = *r;
  DISPOTIFY_RETURN_IF_ERROR(f->Bool("healthy", &m.healthy));
  DISPOTIFY_RETURN_IF_ERROR(f->Bool("caughtUp", &m.caught_up));
  DISPOTIFY_RETURN_IF_ERROR(f->String("version", &m.version));
  return m;
}

constexpr const char* kOperationFields[] = {
    "type",           "member",      "nodeId",    "nodeUuid",       "step",
    "started",        "stepStarted", "lastError", "targetReplicas", "targetReplicationFactor",
    "targetRevision", "token"};

Result<Operation> ParseOperation(const value& v) {
  auto f = Fields::Of(v, "status.operation");
  if (!f.ok()) return f.status();
  Operation op;
  DISPOTIFY_RETURN_IF_ERROR(f->String("type", &op.type, /*required=*/true));
  DISPOTIFY_RETURN_IF_ERROR(f->String("member", &op.member));
  DISPOTIFY_RETURN_IF_ERROR(f->Uint64("nodeId", &op.node_id));
  DISPOTIFY_RETURN_IF_ERROR(f->String("nodeUuid", &op.node_uuid));
  DISPOTIFY_RETURN_IF_ERROR(f->String("step", &op.step));
  DISPOTIFY_RETURN_IF_ERROR(f->String("started", &op.started));
  DISPOTIFY_RETURN_IF_ERROR(f->String("stepStarted", &op.step_started));
  DISPOTIFY_RETURN_IF_ERROR(f->String("lastError", &op.last_error));
  DISPOTIFY_RETURN_IF_ERROR(f->String("token", &op.token));
  if (f->Get("targetReplicas") != nullptr) {
    int32_t n = 0;
    DISPOTIFY_RETURN_IF_ERROR(f->Int32("targetReplicas", &n, 0));
    op.target_replicas = n;
  }
  if (f->Get("targetReplicationFactor") != nullptr) {
    int32_t n = 0;
    DISPOTIFY_RETURN_IF_ERROR(f->Int32("targetReplicationFactor", &n, 0));
    op.target_replication_factor = n;
  }
  DISPOTIFY_RETURN_IF_ERROR(f->String("targetRevision", &op.target_revision));
  for (const auto& [k, item] : v.as_object()) {
    if (std::find(std::begin(kOperationFields), std::end(kOperationFields), k) ==
        std::end(kOperationFields)) {
      op.extra[k] = item;
    }
  }
  return op;
}

}  // namespace

const std::vector<std::string>& OperatorOwnedConfigKeys() {
  static const std::vector<std::string> kKeys = {"node_id",
                                                 "pod_ordinal",
                                                 "cluster_id",
                                                 "listen",
                                                 "http_listen",
                                                 "metrics_listen",
                                                 "advertise",
                                                 "data_dir",
                                                 "peers",
                                                 "join",
                                                 "bootstrap_node_id",
                                                 "reset_removed",
                                                 "force_new_cluster",
                                                 "force_new_cluster_node",
                                                 "api_token",
                                                 "api_token_file",
                                                 "auth",
                                                 "replication_factor",
                                                 "metadata_store",
                                                 "postgres_url",
                                                 "postgres_url_file",
                                                 "state_machine",
                                                 "insecure_grpc",
                                                 "tls_cert_file",
                                                 "tls_key_file",
                                                 "tls_ca_file",
                                                 "config",
                                                 "reset",
                                                 "help"};
  return kKeys;
}

std::string_view RetentionPolicyName(RetentionPolicy p) {
  return p == RetentionPolicy::kDelete ? "Delete" : "Retain";
}

std::string_view MetadataStoreTypeName(MetadataStoreType t) {
  return t == MetadataStoreType::kPostgres ? "postgres" : "embedded";
}

std::string_view MemberRoleName(MemberRole r) {
  switch (r) {
    case MemberRole::kLeader: return "leader";
    case MemberRole::kVoter: return "voter";
    case MemberRole::kLearner: return "learner";
    case MemberRole::kNone: break;
  }
  return "none";
}

Result<MemberRole> ParseMemberRole(std::string_view name) {
  if (name == "leader") return MemberRole::kLeader;
  if (name == "voter") return MemberRole::kVoter;
  if (name == "learner") return MemberRole::kLearner;
  if (name == "none") return MemberRole::kNone;
  return Status::InvalidArgument("unknown member role '" + std::string(name) +
                                 "' (leader, voter, learner or none)");
}

Result<ClusterSpec> ParseSpec(const value& spec) {
  ClusterSpec out;
  if (spec.is_null()) return out;
  auto f = Fields::Of(spec, "spec");
  if (!f.ok()) return f.status();
  DISPOTIFY_RETURN_IF_ERROR(f->Int32("replicas", &out.replicas));
  if (out.replicas < 1)
    return Status::InvalidArgument("spec.replicas: must be at least 1: a cluster needs one voter");
  DISPOTIFY_RETURN_IF_ERROR(f->Int32("replicationFactor", &out.replication_factor, 1));
  if (out.replication_factor > out.replicas) {
    return Status::InvalidArgument(
        "spec.replicationFactor: must not exceed spec.replicas (" + std::to_string(out.replication_factor) +
        " > " + std::to_string(out.replicas) + "): each file needs that many distinct members");
  }
  DISPOTIFY_RETURN_IF_ERROR(f->String("image", &out.image));
  DISPOTIFY_RETURN_IF_ERROR(f->String("imagePullPolicy", &out.image_pull_policy));
  if (!out.image_pull_policy.empty()) {
    DISPOTIFY_RETURN_IF_ERROR(
        OneOf(f->Path("imagePullPolicy"), out.image_pull_policy, {"Always", "IfNotPresent", "Never"}));
  }
  DISPOTIFY_RETURN_IF_ERROR(f->Raw("resources", &out.resources));

  auto storage = f->Object("storage");
  if (!storage.ok()) return storage.status();
  if (*storage) DISPOTIFY_RETURN_IF_ERROR(ParseStorage(**storage, &out.storage));
  auto store = f->Object("metadataStore");
  if (!store.ok()) return store.status();
  if (*store) DISPOTIFY_RETURN_IF_ERROR(ParseMetadataStore(**store, &out.metadata_store));
  auto service = f->Object("service");
  if (!service.ok()) return service.status();
  if (*service) DISPOTIFY_RETURN_IF_ERROR(ParseService(**service, &out.service));
  DISPOTIFY_RETURN_IF_ERROR(f->Bool("paused", &out.paused));
  auto pod = f->Object("podTemplate");
  if (!pod.ok()) return pod.status();
  if (*pod) DISPOTIFY_RETURN_IF_ERROR(ParsePodTemplate(**pod, &out.pod_template));
  auto monitoring = f->Object("monitoring");
  if (!monitoring.ok()) return monitoring.status();
  if (*monitoring) DISPOTIFY_RETURN_IF_ERROR(ParseMonitoring(**monitoring, &out.monitoring));
  DISPOTIFY_RETURN_IF_ERROR(ParseConfig(*f, &out.config));
  return out;
}

Result<ClusterStatus> ParseStatus(const value& status) {
  ClusterStatus out;
  if (status.is_null()) return out;
  auto f = Fields::Of(status, "status");
  if (!f.ok()) return f.status();
  DISPOTIFY_RETURN_IF_ERROR(f->Int64("observedGeneration", &out.observed_generation));
  DISPOTIFY_RETURN_IF_ERROR(f->String("phase", &out.phase));
  DISPOTIFY_RETURN_IF_ERROR(f->String("selector", &out.selector));
  DISPOTIFY_RETURN_IF_ERROR(f->Int32("replicas", &out.replicas, 0));
  DISPOTIFY_RETURN_IF_ERROR(f->Int32("readyReplicas", &out.ready_replicas, 0));
  DISPOTIFY_RETURN_IF_ERROR(f->String("leader", &out.leader));
  DISPOTIFY_RETURN_IF_ERROR(f->Int32("replicationFactor", &out.replication_factor, 0));
  DISPOTIFY_RETURN_IF_ERROR(f->Int64("underReplicatedFiles", &out.under_replicated_files, 0));
  DISPOTIFY_RETURN_IF_ERROR(f->Bool("bootstrapped", &out.bootstrapped));
  if (const value* conds = f->Get("conditions")) {
    if (!conds->is_array()) return Status::InvalidArgument("status.conditions: must be a list");
    size_t i = 0;
    for (const auto& item : conds->as_array()) {
      auto c = ParseCondition(item, "status.conditions[" + std::to_string(i++) + "]");
      if (!c.ok()) return c.status();
      out.conditions.push_back(std::move(*c));
    }
  }
  if (const value* members = f->Get("members")) {
    if (!members->is_array()) return Status::InvalidArgument("status.members: must be a list");
    size_t i = 0;
    for (const auto& item : members->as_array()) {
      auto m = ParseMember(item, "status.members[" + std::to_string(i++) + "]");
      if (!m.ok()) return m.status();
      out.members.push_back(std::move(*m));
    }
  }
  if (const value* op = f->Get("operation")) {
    auto parsed = ParseOperation(*op);
    if (!parsed.ok()) return parsed.status();
    out.operation = std::move(*parsed);
  }
  return out;
}

Result<DispotifyCluster> ParseCluster(const value& object) {
  if (!object.is_object()) return Status::InvalidArgument("a DispotifyCluster must be a JSON object");
  const auto& obj = object.as_object();
  auto field = [&obj](const char* key) -> const value& {
    static const value kNull;
    auto it = obj.find(key);
    return it == obj.end() ? kNull : it->second;
  };
  const value& api_version = field("apiVersion");
  if (!api_version.is_null() && (!api_version.is_string() || api_version.as_string() != kApiVersion)) {
    return Status::InvalidArgument("apiVersion: must be " + std::string(kApiVersion));
  }
  const value& kind = field("kind");
  if (!kind.is_null() && (!kind.is_string() || kind.as_string() != kKind)) {
    return Status::InvalidArgument("kind: must be " + std::string(kKind));
  }
  DispotifyCluster out;
  if (field("metadata").is_null()) return Status::InvalidArgument("metadata: is required");
  DISPOTIFY_RETURN_IF_ERROR(ParseMeta(field("metadata"), &out.metadata));
  auto spec = ParseSpec(field("spec"));
  if (!spec.ok()) return spec.status();
  out.spec = std::move(*spec);
  auto status = ParseStatus(field("status"));
  if (!status.ok()) return status.status();
  out.status = std::move(*status);
  return out;
}

value ConditionToJson(const Condition& c) {
  value out = value::object();
  out["type"] = value::string(c.type);
  out["status"] = value::string(c.status);
  out["reason"] = value::string(c.reason);
  out["message"] = value::string(c.message);
  out["lastTransitionTime"] = value::string(c.last_transition_time);
  if (c.observed_generation > 0) out["observedGeneration"] = value::number(c.observed_generation);
  return out;
}

value MemberToJson(const Member& m) {
  value out = value::object();
  out["pod"] = value::string(m.pod);
  if (m.node_id != 0) out["nodeId"] = value::number(m.node_id);
  if (!m.node_uuid.empty()) out["nodeUuid"] = value::string(m.node_uuid);
  out["role"] = value::string(std::string(MemberRoleName(m.role)));
  out["healthy"] = value::boolean(m.healthy);
  out["caughtUp"] = value::boolean(m.caught_up);
  if (!m.version.empty()) out["version"] = value::string(m.version);
  return out;
}

value OperationToJson(const Operation& op) {
  value out = op.extra.is_object() ? op.extra : value::object();
  out["type"] = value::string(op.type);
  if (!op.member.empty()) out["member"] = value::string(op.member);
  if (op.node_id != 0) out["nodeId"] = value::number(op.node_id);
  if (!op.node_uuid.empty()) out["nodeUuid"] = value::string(op.node_uuid);
  if (!op.step.empty()) out["step"] = value::string(op.step);
  if (!op.started.empty()) out["started"] = value::string(op.started);
  if (!op.step_started.empty()) out["stepStarted"] = value::string(op.step_started);
  if (!op.last_error.empty()) out["lastError"] = value::string(op.last_error);
  if (op.target_replicas) out["targetReplicas"] = value::number(*op.target_replicas);
  if (op.target_replication_factor)
    out["targetReplicationFactor"] = value::number(*op.target_replication_factor);
  if (!op.target_revision.empty()) out["targetRevision"] = value::string(op.target_revision);
  if (!op.token.empty()) out["token"] = value::string(op.token);
  return out;
}

value StatusToJson(const ClusterStatus& s) {
  value out = value::object();
  out["observedGeneration"] = value::number(s.observed_generation);
  if (!s.phase.empty()) out["phase"] = value::string(s.phase);
  if (!s.selector.empty()) out["selector"] = value::string(s.selector);
  out["replicas"] = value::number(s.replicas);
  out["readyReplicas"] = value::number(s.ready_replicas);
  if (!s.leader.empty()) out["leader"] = value::string(s.leader);
  out["replicationFactor"] = value::number(s.replication_factor);
  out["underReplicatedFiles"] = value::number(s.under_replicated_files);
  out["bootstrapped"] = value::boolean(s.bootstrapped);
  value conditions = value::array();
  for (size_t i = 0; i < s.conditions.size(); ++i) conditions[i] = ConditionToJson(s.conditions[i]);
  out["conditions"] = conditions;
  value members = value::array();
  for (size_t i = 0; i < s.members.size(); ++i) members[i] = MemberToJson(s.members[i]);
  out["members"] = members;
  // Left out when there is none: server-side apply of the status removes a field its manager no
  // longer sets (a JSON merge patch would need an explicit null).
  if (s.operation) out["operation"] = OperationToJson(*s.operation);
  return out;
}

value StatusApplyObject(const ObjectMeta& metadata, const ClusterStatus& status) {
  value meta = value::object();
  meta["name"] = value::string(metadata.name);
  meta["namespace"] = value::string(metadata.namespace_);
  value out = value::object();
  out["apiVersion"] = value::string(std::string(kApiVersion));
  out["kind"] = value::string(std::string(kKind));
  out["metadata"] = meta;
  out["status"] = StatusToJson(status);
  return out;
}

bool SetCondition(std::vector<Condition>* conditions, Condition condition, std::string_view now) {
  for (auto& existing : *conditions) {
    if (existing.type != condition.type) continue;
    condition.last_transition_time =
        existing.status == condition.status ? existing.last_transition_time : std::string(now);
    if (condition == existing) return false;
    existing = std::move(condition);
    return true;
  }
  condition.last_transition_time = std::string(now);
  conditions->push_back(std::move(condition));
  return true;
}

const Condition* FindCondition(const std::vector<Condition>& conditions, std::string_view type) {
  for (const auto& c : conditions) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

bool IsConditionTrue(const std::vector<Condition>& conditions, std::string_view type) {
  const Condition* c = FindCondition(conditions, type);
  return c != nullptr && c->status == "True";
}

bool RemoveCondition(std::vector<Condition>* conditions, std::string_view type) {
  return std::erase_if(*conditions, [type](const Condition& c) { return c.type == type; }) > 0;
}

Result<int64_t> ParseQuantityBytes(std::string_view q) {
  // <number><suffix>: number = [+]digits[.digits] | .digits; suffix = Ki..Ei | n u m k M G T P E | e<int>.
  static const std::regex kQuantity(
      R"(^\+?((\d+(\.\d*)?)|(\.\d+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?\d+))?$)");
  const std::string text(q);
  if (text.size() > 64)
    return Status::InvalidArgument("a quantity of " + std::to_string(text.size()) + " characters");
  std::smatch m;
  if (!std::regex_match(text, m, kQuantity)) {
    return Status::InvalidArgument("'" + text + "' is not a quantity (e.g. 10Gi, 500M)");
  }
  const long double number = std::stold(m[1].str());
  const std::string suffix = m[5].str();
  long double scale = 1;
  if (suffix.size() == 2 && suffix[1] == 'i') {
    const std::string_view binary = "KMGTPE";
    scale = std::ldexp(1.0L, 10 * static_cast<int>(binary.find(suffix[0]) + 1));
  } else if (suffix.size() > 1 && (suffix[0] == 'e' || suffix[0] == 'E')) {  // "1E" alone is exa
    if (suffix.size() > 5) return Status::InvalidArgument("'" + text + "' is out of range");
    const int exp = std::stoi(suffix.substr(1));
    if (exp > 30 || exp < -30) return Status::InvalidArgument("'" + text + "' is out of range");
    scale = std::pow(10.0L, exp);
  } else if (!suffix.empty()) {
    static const std::map<char, int> kDecimal = {{'n', -9}, {'u', -6}, {'m', -3}, {'k', 3}, {'M', 6},
                                                 {'G', 9},  {'T', 12}, {'P', 15}, {'E', 18}};
    scale = std::pow(10.0L, kDecimal.at(suffix[0]));
  }
  const long double bytes = std::ceil(number * scale);
  if (bytes >= static_cast<long double>(std::numeric_limits<int64_t>::max())) {
    return Status::InvalidArgument("'" + text + "' is too large");
  }
  return static_cast<int64_t>(bytes);
}

std::string Rfc3339(int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  const size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf, n);
}

Result<int64_t> ParseRfc3339(std::string_view text) {
  std::tm tm{};
  const std::string copy(text);
  const char* end = strptime(copy.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) return Status::InvalidArgument("'" + copy + "' is not an RFC 3339 time");
  if (*end == '.') {
    ++end;
    while (*end >= '0' && *end <= '9') ++end;
  }
  if (std::string_view(end) != "Z")
    return Status::InvalidArgument("'" + copy + "' is not an RFC 3339 time in UTC");
  return static_cast<int64_t>(timegm(&tm));
}

std::string NowRfc3339() {
  return Rfc3339(static_cast<int64_t>(std::time(nullptr)));
}

}  // namespace dispotify::op::api
