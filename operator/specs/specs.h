#pragma once
// The objects a DispotifyCluster owns, built as the JSON that server-side apply sends (apiVersion,
// kind, metadata with labels and the controller owner reference, and only the fields the operator
// means to own). Pure functions of the custom resource, the operator's settings and the few
// values that only the controller knows (the StatefulSet's current size, the admin token, the
// bootstrap node); the controller applies what they return.
//
// Names, ports, environment and mount points follow docs/operator.md (the pod contract between
// operator, node and test kubelet); a change here is a change of that contract.

#include <cpprest/json.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "operator/api/types.h"

namespace dispotify::op::specs {

// The operator's own settings that shape the objects.
struct Settings {
  std::string cluster_domain = "cluster.local";
  std::string default_image;  // empty: DefaultImage()
};

// "dispotify/node:<project version>", the image of a spec that names none.
std::string DefaultImage();

inline constexpr std::string_view kFieldManager = "dispotify-operator";
inline constexpr std::string_view kAppName = "dispotify";

// Labels.
inline constexpr std::string_view kLabelName = "app.kubernetes.io/name";
inline constexpr std::string_view kLabelInstance = "app.kubernetes.io/instance";
inline constexpr std::string_view kLabelManagedBy = "app.kubernetes.io/managed-by";
inline constexpr std::string_view kLabelComponent = "app.kubernetes.io/component";
inline constexpr std::string_view kLabelPodIndex = "apps.kubernetes.io/pod-index";  // set by the StatefulSet
// The pod-template annotation whose change means "restart the pods" (a hash of the template and
// of the node settings read at start).
inline constexpr std::string_view kRestartHashAnnotation = "dispotify.io/restart-hash";

// Ports (container port names in parentheses).
inline constexpr int32_t kHttpPort = 8080;     // (http) REST API, /healthz, /readyz
inline constexpr int32_t kGrpcPort = 7000;     // (grpc) Raft, replication, files
inline constexpr int32_t kMetricsPort = 9090;  // (metrics) Prometheus

// The node's container and its mounts.
inline constexpr std::string_view kContainerName = "node";
inline constexpr std::string_view kDataVolume = "data";  // the volumeClaimTemplate
inline constexpr std::string_view kDataDir = "/var/lib/dispotify";
inline constexpr std::string_view kConfigDir = "/etc/dispotify";
inline constexpr std::string_view kConfigKey = "config.yaml";
inline constexpr std::string_view kConfigFile = "/etc/dispotify/config.yaml";
inline constexpr std::string_view kPostgresDir = "/var/run/dispotify/postgres";
inline constexpr std::string_view kAdminTokenKey = "token";
// The pods' certificates (docs/operator.md, "Certificates"): the Secret TlsSecretName holds the
// CA certificate and every pod's certificate and key, mounted whole at kTlsDir; each node is
// pointed at its own pair by its ordinal. One Secret for all pods because a StatefulSet's pod
// template cannot name a Secret per pod, and a mounted Secret is updated in place by the kubelet,
// so a renewal reaches running nodes (which re-read the files) without a restart.
inline constexpr std::string_view kTlsDir = "/var/run/dispotify/tls";
inline constexpr std::string_view kTlsCaKey = "ca.crt";
// The CA's own Secret (CaSecretName, type kubernetes.io/tls): read by the operator only, never
// mounted in a pod.
inline constexpr std::string_view kCaCertKey = "tls.crt";
inline constexpr std::string_view kCaKeyKey = "tls.key";
// The node container's resources when spec.resources is empty (docs/operator.md, "Resources").
inline constexpr std::string_view kDefaultCpuRequest = "250m";
inline constexpr std::string_view kDefaultMemoryRequest = "256Mi";
inline constexpr std::string_view kDefaultMemoryLimit = "1Gi";
inline constexpr int64_t kRunAsUser = 10001;

// Names of the owned objects for the cluster `name`.
std::string StatefulSetName(std::string_view name);    // <name>
std::string PeerServiceName(std::string_view name);    // <name>-peers (headless)
std::string ClientServiceName(std::string_view name);  // <name>
std::string ConfigMapName(std::string_view name);      // <name>-config
std::string AdminSecretName(std::string_view name);    // <name>-admin
std::string CaSecretName(std::string_view name);       // <name>-ca
std::string TlsSecretName(std::string_view name);      // <name>-tls
// The keys of pod `ordinal`'s certificate and private key in the TLS Secret: node-<ordinal>.crt, .key.
std::string TlsCertKey(int32_t ordinal);
std::string TlsKeyKey(int32_t ordinal);
std::string PdbName(std::string_view name);                   // <name>
std::string NetworkPolicyName(std::string_view name);         // <name>-peers
std::string ServiceMonitorName(std::string_view name);        // <name>
std::string PodName(std::string_view name, int32_t ordinal);  // <name>-<ordinal>
std::string PvcName(std::string_view name, int32_t ordinal);  // data-<name>-<ordinal>
// A pod's stable DNS name: <pod>.<name>-peers.<namespace>.svc.<cluster domain>.
std::string PodHost(const api::ObjectMeta& cluster, int32_t ordinal, const Settings& settings);
// The Raft address a member advertises: PodHost(...):7000.
std::string PeerAddress(const api::ObjectMeta& cluster, int32_t ordinal, const Settings& settings);
// The node's REST endpoint: http://PodHost(...):8080.
std::string PodHttpUrl(const api::ObjectMeta& cluster, int32_t ordinal, const Settings& settings);
// Node id of the pod with that ordinal (ordinal + 1), and back (-1 for id 0).
uint64_t NodeIdOfOrdinal(int32_t ordinal);
int32_t OrdinalOfNodeId(uint64_t node_id);

// {name: dispotify, instance: <name>}: selects the cluster's pods.
web::json::value SelectorLabels(std::string_view name);
// The selector as a label query, for status.selector (the scale subresource).
std::string SelectorString(std::string_view name);
// SelectorLabels plus managed-by: on every owned object.
web::json::value CommonLabels(std::string_view name);
// The controller owner reference to the custom resource.
web::json::value OwnerReference(const api::ObjectMeta& cluster);

// The majority of `voters`: voters / 2 + 1.
int32_t QuorumSize(int32_t voters);

// What only the controller knows.
struct StatefulSetParams {
  // Pods to run. Scale-up grows it before a member is added; scale-down shrinks it only after the
  // member left; so it is not always spec.replicas.
  int32_t replicas = 0;
  // The claim template's size: a StatefulSet's volumeClaimTemplates cannot change once created, so
  // the controller passes the size the existing StatefulSet has (PVCs grow one by one through
  // PvcExpansion). Empty: spec.storage.size.
  std::string claim_size;
};

// The StatefulSet: Parallel pod management, OnDelete updates (the operator orders restarts), a
// PVC per pod, the node container per docs/operator.md under the restricted Pod Security
// Standard, the podTemplate overrides, and kRestartHashAnnotation on the pod template.
web::json::value StatefulSet(const api::DispotifyCluster& cluster, const Settings& settings,
                             const StatefulSetParams& params);
// The value of kRestartHashAnnotation: changes with everything a running node cannot take
// without a restart (image, pull policy, resources, pod overrides, environment, spec.config), and
// not with replicas, the replication factor, storage size, service, monitoring or paused.
std::string RestartHash(const api::DispotifyCluster& cluster, const Settings& settings);

// The headless Service giving each pod its DNS name (publishNotReadyAddresses: a member must
// reach a peer that is not Ready yet, e.g. to elect the first leader).
web::json::value PeerService(const api::DispotifyCluster& cluster);
// The client Service (REST API) as spec.service says.
web::json::value ClientService(const api::DispotifyCluster& cluster);

// config.yaml: replication_factor, bootstrap_node_id and spec.config. `bootstrap_node_id` is the
// node allowed to create the cluster on an empty disk (1), or 0 once the cluster has a leader.
// A quorum-loss recovery in flight: node `node_id` goes on alone from its data, once per `token`
// (the node's force_new_cluster settings; docs/operator.md, "Quorum loss").
struct ForceNewCluster {
  uint64_t node_id = 0;
  std::string token;
};
std::string ConfigYaml(const api::DispotifyCluster& cluster, uint64_t bootstrap_node_id,
                       const std::optional<ForceNewCluster>& force = std::nullopt);
web::json::value ConfigMap(const api::DispotifyCluster& cluster, uint64_t bootstrap_node_id,
                           const std::optional<ForceNewCluster>& force = std::nullopt);
// The admin-token Secret; the controller makes the token once and passes the existing one after.
web::json::value AdminSecret(const api::DispotifyCluster& cluster, std::string_view token);
// The cluster CA's Secret (kubernetes.io/tls), created once by the controller.
web::json::value CaSecret(const api::DispotifyCluster& cluster, std::string_view cert_pem,
                          std::string_view key_pem);
// The pods' TLS Secret with exactly `data` (key -> file content): kTlsCaKey and the pairs.
web::json::value TlsSecret(const api::DispotifyCluster& cluster,
                           const std::map<std::string, std::string>& data);

// minAvailable = the quorum of max(spec.replicas, current_voters) as a whole number: while a
// scale-down is in flight there are more voters than the spec asks for, and it is their quorum
// that an eviction must not break.
web::json::value PodDisruptionBudget(const api::DispotifyCluster& cluster, int32_t current_voters = 0);
// Peer port 7000 only from the cluster's own pods; http and metrics open.
web::json::value NetworkPolicy(const api::DispotifyCluster& cluster);
// monitoring.coreos.com/v1 ServiceMonitor scraping every member through the peer Service.
web::json::value ServiceMonitor(const api::DispotifyCluster& cluster);
// The apply patch that grows one member's PVC to spec.storage.size (the PVC belongs to the
// StatefulSet; the operator owns only spec.resources.requests.storage).
web::json::value PvcExpansion(const api::DispotifyCluster& cluster, int32_t ordinal);

struct DesiredParams {
  StatefulSetParams stateful_set;
  uint64_t bootstrap_node_id = 1;
  std::string admin_token;
  int32_t current_voters = 0;
  // Leave the ServiceMonitor out even when asked for (its CRD is not installed).
  bool service_monitor_crd_missing = false;
  std::optional<ForceNewCluster> force_new_cluster;
};

// Every owned object in the order to apply them: Secret, ConfigMap, peer Service, client
// Service, StatefulSet, PodDisruptionBudget, NetworkPolicy, then ServiceMonitor when asked for.
std::vector<web::json::value> DesiredObjects(const api::DispotifyCluster& cluster, const Settings& settings,
                                             const DesiredParams& params);

}  // namespace dispotify::op::specs
