#include "operator/specs/specs.h"

#include <cpprest/asyncrt_utils.h>

#include <algorithm>
#include <utility>

#include "common/sha256.h"

#ifndef DISPOTIFY_VERSION
#error "DISPOTIFY_VERSION must be defined (operator/specs/CMakeLists.txt sets it)"
#endif

namespace dispotify::op::specs {
namespace {

using web::json::value;

value S(std::string_view s) {
  return value::string(std::string(s));
}
value I(int64_t n) {
  return value::number(n);
}
value O(std::vector<std::pair<std::string, value>> fields) {
  return value::object(std::move(fields));
}
value A(std::vector<value> items) {
  return value::array(std::move(items));
}

value Base64(std::string_view text) {
  const std::vector<unsigned char> bytes(text.begin(), text.end());
  return S(utility::conversions::to_base64(bytes));
}

value StringMap(const std::map<std::string, std::string>& m) {
  value out = value::object();
  for (const auto& [k, v] : m) out[k] = value::string(v);
  return out;
}

// apiVersion, kind and metadata (name, namespace, labels, the owner reference).
value Object(std::string_view api_version, std::string_view kind, const api::ObjectMeta& cluster,
             const std::string& name, value labels) {
  return O({{"apiVersion", S(api_version)},
            {"kind", S(kind)},
            {"metadata", O({{"name", S(name)},
                            {"namespace", S(cluster.namespace_)},
                            {"labels", std::move(labels)},
                            {"ownerReferences", A({OwnerReference(cluster)})}})}});
}

value LabelsWithComponent(std::string_view name, std::string_view component) {
  value labels = CommonLabels(name);
  labels[std::string(kLabelComponent)] = S(component);
  return labels;
}

std::string Image(const api::ClusterSpec& spec, const Settings& settings) {
  if (!spec.image.empty()) return spec.image;
  return settings.default_image.empty() ? DefaultImage() : settings.default_image;
}

value EnvValue(std::string_view name, std::string_view v) {
  return O({{"name", S(name)}, {"value", S(v)}});
}

value EnvField(std::string_view name, std::string_view field_path) {
  return O({{"name", S(name)}, {"valueFrom", O({{"fieldRef", O({{"fieldPath", S(field_path)}})}})}});
}

// The node's environment (docs/operator.md, "How a pod starts the node"). Order matters: a
// $(VAR) reference expands only variables defined earlier in the list.
value Environment(const api::DispotifyCluster& c, const Settings& settings) {
  const std::string peers = PeerServiceName(c.metadata.name);
  std::vector<value> env = {
      EnvField("POD_NAME", "metadata.name"),
      EnvField("POD_NAMESPACE", "metadata.namespace"),
      EnvField("POD_IP", "status.podIP"),
      EnvField("DISPOTIFY_POD_ORDINAL", "metadata.labels['" + std::string(kLabelPodIndex) + "']"),
      EnvValue("DISPOTIFY_CLUSTER_ID", c.metadata.uid),
      EnvValue("DISPOTIFY_LISTEN", "$(POD_IP):" + std::to_string(kGrpcPort)),
      EnvValue("DISPOTIFY_HTTP_LISTEN", "$(POD_IP):" + std::to_string(kHttpPort)),
      EnvValue("DISPOTIFY_METRICS_LISTEN", "$(POD_IP):" + std::to_string(kMetricsPort)),
      EnvValue("DISPOTIFY_ADVERTISE", "$(POD_NAME)." + peers + ".$(POD_NAMESPACE).svc." +
                                          settings.cluster_domain + ":" + std::to_string(kGrpcPort)),
      EnvValue("DISPOTIFY_DATA_DIR", kDataDir),
      // Mutual TLS between nodes with the certificates the operator issues (TlsSecret), and users
      // and roles on every REST route: set here whatever the node's defaults are, so that a
      // default that changes does not change what the operator runs.
      EnvValue("DISPOTIFY_TLS_CERT_FILE", std::string(kTlsDir) + "/node-$(DISPOTIFY_POD_ORDINAL).crt"),
      EnvValue("DISPOTIFY_TLS_KEY_FILE", std::string(kTlsDir) + "/node-$(DISPOTIFY_POD_ORDINAL).key"),
      EnvValue("DISPOTIFY_TLS_CA_FILE", std::string(kTlsDir) + "/" + std::string(kTlsCaKey)),
      EnvValue("DISPOTIFY_INSECURE_GRPC", "false"),
      EnvValue("DISPOTIFY_AUTH", "true"),
      O({{"name", S("DISPOTIFY_API_TOKEN")},
         {"valueFrom", O({{"secretKeyRef", O({{"name", S(AdminSecretName(c.metadata.name))},
                                              {"key", S(kAdminTokenKey)}})}})}}),
      EnvValue("DISPOTIFY_CONFIG", kConfigFile),
  };
  if (c.spec.metadata_store.type == api::MetadataStoreType::kPostgres) {
    env.push_back(EnvValue("DISPOTIFY_METADATA_STORE", "postgres"));
    env.push_back(EnvValue("DISPOTIFY_POSTGRES_URL_FILE",
                           std::string(kPostgresDir) + "/member-$(DISPOTIFY_POD_ORDINAL)"));
  }
  return A(std::move(env));
}

value HttpProbe(std::string_view path, int period, int timeout, int failures) {
  return O({{"httpGet", O({{"path", S(path)}, {"port", S("http")}, {"scheme", S("HTTP")}})},
            {"periodSeconds", I(period)},
            {"timeoutSeconds", I(timeout)},
            {"failureThreshold", I(failures)}});
}

value Container(const api::DispotifyCluster& c, const Settings& settings) {
  const api::ClusterSpec& spec = c.spec;
  std::vector<value> mounts = {
      O({{"name", S(kDataVolume)}, {"mountPath", S(kDataDir)}}),
      O({{"name", S("config")}, {"mountPath", S(kConfigDir)}, {"readOnly", value::boolean(true)}}),
      O({{"name", S("tmp")}, {"mountPath", S("/tmp")}}),
      O({{"name", S("tls")}, {"mountPath", S(kTlsDir)}, {"readOnly", value::boolean(true)}}),
  };
  if (spec.metadata_store.type == api::MetadataStoreType::kPostgres) {
    mounts.push_back(
        O({{"name", S("postgres")}, {"mountPath", S(kPostgresDir)}, {"readOnly", value::boolean(true)}}));
  }
  value container = O({
      {"name", S(kContainerName)},
      {"image", S(Image(spec, settings))},
      {"env", Environment(c, settings)},
      {"ports", A({O({{"name", S("http")}, {"containerPort", I(kHttpPort)}, {"protocol", S("TCP")}}),
                   O({{"name", S("grpc")}, {"containerPort", I(kGrpcPort)}, {"protocol", S("TCP")}}),
                   O({{"name", S("metrics")}, {"containerPort", I(kMetricsPort)}, {"protocol", S("TCP")}})})},
      {"volumeMounts", A(std::move(mounts))},
      // Ready when the node serves linearizable reads; alive while its HTTP loop answers. The
      // startup probe gives a node replaying a long log or a large snapshot ten minutes.
      {"readinessProbe", HttpProbe("/readyz", 5, 2, 3)},
      {"livenessProbe", HttpProbe("/healthz", 10, 5, 6)},
      {"startupProbe", HttpProbe("/healthz", 5, 2, 120)},
      {"securityContext", O({{"allowPrivilegeEscalation", value::boolean(false)},
                             {"readOnlyRootFilesystem", value::boolean(true)},
                             {"runAsNonRoot", value::boolean(true)},
                             {"runAsUser", I(kRunAsUser)},
                             {"runAsGroup", I(kRunAsUser)},
                             {"capabilities", O({{"drop", A({S("ALL")})}})},
                             {"seccompProfile", O({{"type", S("RuntimeDefault")}})}})},
  });
  if (!spec.image_pull_policy.empty()) container["imagePullPolicy"] = S(spec.image_pull_policy);
  // Requests so the scheduler places the pod where it fits, and a memory limit so a leak is
  // bounded. No CPU limit: CFS throttling would stretch Raft heartbeats and fsyncs into election
  // timeouts under load, while a CPU request already guarantees the node its share.
  container["resources"] =
      !spec.resources.is_null()
          ? spec.resources
          : O({{"requests", O({{"cpu", S(kDefaultCpuRequest)}, {"memory", S(kDefaultMemoryRequest)}})},
               {"limits", O({{"memory", S(kDefaultMemoryLimit)}})}});
  return container;
}

// Without an affinity of the user's: prefer one member per node, so one node's loss costs one
// member.
value DefaultAffinity(std::string_view name) {
  return O({{"podAntiAffinity",
             O({{"preferredDuringSchedulingIgnoredDuringExecution",
                 A({O({{"weight", I(100)},
                       {"podAffinityTerm",
                        O({{"topologyKey", S("kubernetes.io/hostname")},
                           {"labelSelector", O({{"matchLabels", SelectorLabels(name)}})}})}})})}})}});
}

// The pod template without kRestartHashAnnotation.
value PodTemplate(const api::DispotifyCluster& c, const Settings& settings) {
  const std::string& name = c.metadata.name;
  const api::PodTemplateOverrides& over = c.spec.pod_template;
  value labels = StringMap(over.labels);
  const value common = CommonLabels(name);  // (a temporary's as_object() would dangle in the loop)
  for (const auto& [k, v] : common.as_object()) labels[k] = v;  // ours win
  labels[std::string(kLabelComponent)] = S("node");

  std::vector<value> volumes = {
      O({{"name", S("config")}, {"configMap", O({{"name", S(ConfigMapName(name))}})}}),
      O({{"name", S("tmp")}, {"emptyDir", value::object()}}),
      // Readable by the node's group only (fsGroup): the private keys are in it.
      O({{"name", S("tls")},
         {"secret", O({{"secretName", S(TlsSecretName(name))}, {"defaultMode", I(0440)}})}}),
  };
  if (c.spec.metadata_store.type == api::MetadataStoreType::kPostgres) {
    volumes.push_back(O({{"name", S("postgres")},
                         {"secret", O({{"secretName", S(c.spec.metadata_store.postgres_secret_name)},
                                       {"defaultMode", I(0440)}})}}));
  }
  value pod_spec = O({
      {"containers", A({Container(c, settings)})},
      {"volumes", A(std::move(volumes))},
      {"securityContext", O({{"runAsNonRoot", value::boolean(true)},
                             {"runAsUser", I(kRunAsUser)},
                             {"runAsGroup", I(kRunAsUser)},
                             {"fsGroup", I(kRunAsUser)},
                             {"fsGroupChangePolicy", S("OnRootMismatch")},
                             {"seccompProfile", O({{"type", S("RuntimeDefault")}})}})},
      // The node never talks to the Kubernetes API; service links would put <SERVICE>_PORT
      // variables, possibly DISPOTIFY_..., into its environment.
      {"automountServiceAccountToken", value::boolean(false)},
      {"enableServiceLinks", value::boolean(false)},
      // Time for the node to hand leadership away on SIGTERM and finish in-flight requests.
      {"terminationGracePeriodSeconds", I(60)},
      {"affinity", over.affinity.is_null() ? DefaultAffinity(name) : over.affinity},
  });
  if (!over.tolerations.is_null()) pod_spec["tolerations"] = over.tolerations;
  if (!over.topology_spread_constraints.is_null()) {
    pod_spec["topologySpreadConstraints"] = over.topology_spread_constraints;
  }
  if (!over.node_selector.empty()) pod_spec["nodeSelector"] = StringMap(over.node_selector);
  if (!over.priority_class_name.empty()) pod_spec["priorityClassName"] = S(over.priority_class_name);

  value metadata = O({{"labels", labels}});
  metadata["annotations"] = StringMap(over.annotations);
  return O({{"metadata", metadata}, {"spec", pod_spec}});
}

// A YAML double-quoted scalar: JSON string escapes are valid YAML escapes.
std::string Quote(const std::string& s) {
  return value::string(s).serialize();
}

std::string SpecConfigYaml(const api::ClusterSpec& spec) {
  std::string out;
  for (const auto& [k, v] : spec.config) out += k + ": " + Quote(v) + "\n";
  return out;
}

}  // namespace

std::string DefaultImage() {
  return std::string("dispotify/node:") + DISPOTIFY_VERSION;
}

std::string StatefulSetName(std::string_view name) {
  return std::string(name);
}
std::string PeerServiceName(std::string_view name) {
  return std::string(name) + "-peers";
}
std::string ClientServiceName(std::string_view name) {
  return std::string(name);
}
std::string ConfigMapName(std::string_view name) {
  return std::string(name) + "-config";
}
std::string AdminSecretName(std::string_view name) {
  return std::string(name) + "-admin";
}
std::string CaSecretName(std::string_view name) {
  return std::string(name) + "-ca";
}
std::string TlsSecretName(std::string_view name) {
  return std::string(name) + "-tls";
}
std::string TlsCertKey(int32_t ordinal) {
  return "node-" + std::to_string(ordinal) + ".crt";
}
std::string TlsKeyKey(int32_t ordinal) {
  return "node-" + std::to_string(ordinal) + ".key";
}
std::string PdbName(std::string_view name) {
  return std::string(name);
}
std::string NetworkPolicyName(std::string_view name) {
  return std::string(name) + "-peers";
}
std::string ServiceMonitorName(std::string_view name) {
  return std::string(name);
}
std::string PodName(std::string_view name, int32_t ordinal) {
  return std::string(name) + "-" + std::to_string(ordinal);
}
std::string PvcName(std::string_view name, int32_t ordinal) {
  return std::string(kDataVolume) + "-" + PodName(name, ordinal);
}

std::string PodHost(const api::ObjectMeta& cluster, int32_t ordinal, const Settings& settings) {
  return PodName(cluster.name, ordinal) + "." + PeerServiceName(cluster.name) + "." + cluster.namespace_ +
         ".svc." + settings.cluster_domain;
}

std::string PeerAddress(const api::ObjectMeta& cluster, int32_t ordinal, const Settings& settings) {
  return PodHost(cluster, ordinal, settings) + ":" + std::to_string(kGrpcPort);
}

std::string PodHttpUrl(const api::ObjectMeta& cluster, int32_t ordinal, const Settings& settings) {
  return "http://" + PodHost(cluster, ordinal, settings) + ":" + std::to_string(kHttpPort);
}

uint64_t NodeIdOfOrdinal(int32_t ordinal) {
  return static_cast<uint64_t>(ordinal) + 1;
}
int32_t OrdinalOfNodeId(uint64_t node_id) {
  return static_cast<int32_t>(node_id) - 1;
}

value SelectorLabels(std::string_view name) {
  return O({{std::string(kLabelName), S(kAppName)}, {std::string(kLabelInstance), S(name)}});
}

std::string SelectorString(std::string_view name) {
  // Sorted by key, as Kubernetes prints selectors.
  return std::string(kLabelInstance) + "=" + std::string(name) + "," + std::string(kLabelName) + "=" +
         std::string(kAppName);
}

value CommonLabels(std::string_view name) {
  value labels = SelectorLabels(name);
  labels[std::string(kLabelManagedBy)] = S(kFieldManager);
  return labels;
}

value OwnerReference(const api::ObjectMeta& cluster) {
  return O({{"apiVersion", S(api::kApiVersion)},
            {"kind", S(api::kKind)},
            {"name", S(cluster.name)},
            {"uid", S(cluster.uid)},
            {"controller", value::boolean(true)},
            {"blockOwnerDeletion", value::boolean(true)}});
}

int32_t QuorumSize(int32_t voters) {
  return voters / 2 + 1;
}

std::string RestartHash(const api::DispotifyCluster& cluster, const Settings& settings) {
  Sha256 sha;
  sha.Update(PodTemplate(cluster, settings).serialize());
  sha.Update("\n--- spec.config\n");
  sha.Update(SpecConfigYaml(cluster.spec));
  return sha.FinalHex().substr(0, 32);
}

value StatefulSet(const api::DispotifyCluster& c, const Settings& settings, const StatefulSetParams& params) {
  const std::string& name = c.metadata.name;
  const api::StorageSpec& storage = c.spec.storage;
  value templ = PodTemplate(c, settings);
  templ["metadata"]["annotations"][std::string(kRestartHashAnnotation)] = S(RestartHash(c, settings));

  value claim_spec =
      O({{"accessModes", A({S("ReadWriteOnce")})},
         {"resources",
          O({{"requests",
              O({{"storage", S(params.claim_size.empty() ? storage.size : params.claim_size)}})}})}});
  if (storage.storage_class_name) claim_spec["storageClassName"] = S(*storage.storage_class_name);
  value claim = O({{"apiVersion", S("v1")},
                   {"kind", S("PersistentVolumeClaim")},
                   {"metadata", O({{"name", S(kDataVolume)}, {"labels", CommonLabels(name)}})},
                   {"spec", claim_spec}});

  value sts = Object("apps/v1", "StatefulSet", c.metadata, StatefulSetName(name), CommonLabels(name));
  sts["spec"] = O({
      {"replicas", I(params.replicas)},
      {"serviceName", S(PeerServiceName(name))},
      {"selector", O({{"matchLabels", SelectorLabels(name)}})},
      // OrderedReady with a /readyz that needs a leader would never bring back a cluster whose
      // pods were all deleted: pod 0 waits for a quorum that pods 1.. are not allowed to form.
      {"podManagementPolicy", S("Parallel")},
      // The operator restarts pods itself, one at a time, followers first, the leader last.
      {"updateStrategy", O({{"type", S("OnDelete")}})},
      {"persistentVolumeClaimRetentionPolicy",
       O({{"whenScaled", S(api::RetentionPolicyName(storage.when_scaled))},
          {"whenDeleted", S(api::RetentionPolicyName(storage.when_deleted))}})},
      {"template", templ},
      {"volumeClaimTemplates", A({claim})},
  });
  return sts;
}

value PeerService(const api::DispotifyCluster& c) {
  const std::string& name = c.metadata.name;
  value svc = Object("v1", "Service", c.metadata, PeerServiceName(name), LabelsWithComponent(name, "peers"));
  svc["spec"] = O({
      {"clusterIP", S("None")},
      {"publishNotReadyAddresses", value::boolean(true)},
      {"selector", SelectorLabels(name)},
      {"ports",
       A({O({{"name", S("grpc")}, {"port", I(kGrpcPort)}, {"targetPort", S("grpc")}, {"protocol", S("TCP")}}),
          O({{"name", S("http")}, {"port", I(kHttpPort)}, {"targetPort", S("http")}, {"protocol", S("TCP")}}),
          O({{"name", S("metrics")},
             {"port", I(kMetricsPort)},
             {"targetPort", S("metrics")},
             {"protocol", S("TCP")}})})},
  });
  return svc;
}

value ClientService(const api::DispotifyCluster& c) {
  const std::string& name = c.metadata.name;
  value svc =
      Object("v1", "Service", c.metadata, ClientServiceName(name), LabelsWithComponent(name, "client"));
  if (!c.spec.service.annotations.empty())
    svc["metadata"]["annotations"] = StringMap(c.spec.service.annotations);
  svc["spec"] = O({
      {"type", S(c.spec.service.type)},
      {"selector", SelectorLabels(name)},
      {"ports", A({O({{"name", S("http")},
                      {"port", I(c.spec.service.port)},
                      {"targetPort", S("http")},
                      {"protocol", S("TCP")}})})},
  });
  return svc;
}

std::string ConfigYaml(const api::DispotifyCluster& c, uint64_t bootstrap_node_id,
                       const std::optional<ForceNewCluster>& force) {
  std::string out = "# Written by dispotify-operator for DispotifyCluster " + c.metadata.namespace_ + "/" +
                    c.metadata.name + "; edits are overwritten.\n";
  out += "replication_factor: " + std::to_string(c.spec.replication_factor) + "\n";
  // Before the group exists, node `bootstrap_node_id` creates it and every other node waits to be
  // added. After, every node waits to be added (join with no seeds): bootstrap_node_id 0 would
  // mean "off" to the node, which then bootstraps on its own, a second group.
  if (bootstrap_node_id != 0) {
    out += "bootstrap_node_id: " + std::to_string(bootstrap_node_id) + "\n";
  } else {
    out += "join: true\n";
  }
  // A pod back on the volume of a member removed by a scale-down (volumes are kept by default)
  // starts afresh instead of refusing to start: that member was drained before it left.
  out += "reset_removed: true\n";
  if (force) {
    out += "force_new_cluster: \"" + force->token + "\"\n";
    out += "force_new_cluster_node: " + std::to_string(force->node_id) + "\n";
  }
  if (!c.spec.config.empty()) out += "# spec.config\n" + SpecConfigYaml(c.spec);
  return out;
}

value ConfigMap(const api::DispotifyCluster& c, uint64_t bootstrap_node_id,
                const std::optional<ForceNewCluster>& force) {
  value cm =
      Object("v1", "ConfigMap", c.metadata, ConfigMapName(c.metadata.name), CommonLabels(c.metadata.name));
  cm["data"] = O({{std::string(kConfigKey), S(ConfigYaml(c, bootstrap_node_id, force))}});
  return cm;
}

value AdminSecret(const api::DispotifyCluster& c, std::string_view token) {
  value secret =
      Object("v1", "Secret", c.metadata, AdminSecretName(c.metadata.name), CommonLabels(c.metadata.name));
  secret["type"] = S("Opaque");
  secret["data"] = O({{std::string(kAdminTokenKey), Base64(token)}});
  return secret;
}

value CaSecret(const api::DispotifyCluster& c, std::string_view cert_pem, std::string_view key_pem) {
  value secret = Object("v1", "Secret", c.metadata, CaSecretName(c.metadata.name),
                        LabelsWithComponent(c.metadata.name, "ca"));
  secret["type"] = S("kubernetes.io/tls");
  secret["data"] =
      O({{std::string(kCaCertKey), Base64(cert_pem)}, {std::string(kCaKeyKey), Base64(key_pem)}});
  return secret;
}

value TlsSecret(const api::DispotifyCluster& c, const std::map<std::string, std::string>& data) {
  value secret = Object("v1", "Secret", c.metadata, TlsSecretName(c.metadata.name),
                        LabelsWithComponent(c.metadata.name, "tls"));
  secret["type"] = S("Opaque");
  value out = value::object();
  for (const auto& [k, v] : data) out[k] = Base64(v);
  secret["data"] = out;
  return secret;
}

value PodDisruptionBudget(const api::DispotifyCluster& c, int32_t current_voters) {
  const std::string& name = c.metadata.name;
  value pdb = Object("policy/v1", "PodDisruptionBudget", c.metadata, PdbName(name), CommonLabels(name));
  pdb["spec"] = O({{"minAvailable", I(QuorumSize(std::max(c.spec.replicas, current_voters)))},
                   {"selector", O({{"matchLabels", SelectorLabels(name)}})}});
  return pdb;
}

value NetworkPolicy(const api::DispotifyCluster& c) {
  const std::string& name = c.metadata.name;
  value np = Object("networking.k8s.io/v1", "NetworkPolicy", c.metadata, NetworkPolicyName(name),
                    CommonLabels(name));
  auto port = [](int32_t p) { return O({{"port", I(p)}, {"protocol", S("TCP")}}); };
  np["spec"] = O({
      {"podSelector", O({{"matchLabels", SelectorLabels(name)}})},
      {"policyTypes", A({S("Ingress")})},
      {"ingress", A({
                      // Raft, replication and file transfer: members only.
                      O({{"from", A({O({{"podSelector", O({{"matchLabels", SelectorLabels(name)}})}})})},
                         {"ports", A({port(kGrpcPort)})}}),
                      // The REST API (clients, the operator, probes) and metrics: from anywhere.
                      O({{"ports", A({port(kHttpPort), port(kMetricsPort)})}}),
                  })},
  });
  return np;
}

value ServiceMonitor(const api::DispotifyCluster& c) {
  const std::string& name = c.metadata.name;
  value sm = Object("monitoring.coreos.com/v1", "ServiceMonitor", c.metadata, ServiceMonitorName(name),
                    CommonLabels(name));
  value match = SelectorLabels(name);
  match[std::string(kLabelComponent)] = S("peers");
  sm["spec"] = O({
      {"selector", O({{"matchLabels", match}})},
      // Every series gets app_kubernetes_io_instance=<cluster name>: the dashboards key on
      // cluster_id (dispotify_build_info), which here is the custom resource's UID; this is the
      // name people know.
      {"targetLabels", A({S(kLabelInstance)})},
      // The nodes run with auth on, so a scrape needs a credential of the metrics or admin role:
      // the admin token of the cluster's Secret, the one credential the operator holds.
      {"endpoints",
       A({O({{"port", S("metrics")},
             {"path", S("/metrics")},
             {"interval", S(c.spec.monitoring.interval)},
             {"authorization",
              O({{"type", S("Bearer")},
                 {"credentials", O({{"name", S(AdminSecretName(name))}, {"key", S(kAdminTokenKey)}})}})}})})},
  });
  return sm;
}

value PvcExpansion(const api::DispotifyCluster& c, int32_t ordinal) {
  return O({{"apiVersion", S("v1")},
            {"kind", S("PersistentVolumeClaim")},
            {"metadata",
             O({{"name", S(PvcName(c.metadata.name, ordinal))}, {"namespace", S(c.metadata.namespace_)}})},
            {"spec", O({{"resources", O({{"requests", O({{"storage", S(c.spec.storage.size)}})}})}})}});
}

std::vector<value> DesiredObjects(const api::DispotifyCluster& c, const Settings& settings,
                                  const DesiredParams& params) {
  std::vector<value> out = {
      AdminSecret(c, params.admin_token),
      ConfigMap(c, params.bootstrap_node_id, params.force_new_cluster),
      PeerService(c),
      ClientService(c),
      StatefulSet(c, settings, params.stateful_set),
      PodDisruptionBudget(c, params.current_voters),
      NetworkPolicy(c),
  };
  if (c.spec.monitoring.service_monitor && !params.service_monitor_crd_missing)
    out.push_back(ServiceMonitor(c));
  return out;
}

}  // namespace dispotify::op::specs
