#include "operator/specs/specs.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <functional>
#include <regex>
#include <set>
#include <string>

namespace dispotify::op::specs {
namespace {

using web::json::value;

api::DispotifyCluster Cluster(const std::string& spec = "{}") {
  auto c = api::ParseCluster(value::parse(
      R"({"apiVersion":"dispotify.io/v1alpha1","kind":"DispotifyCluster",
          "metadata":{"name":"music","namespace":"ns","uid":"6f1c-uid","generation":1},"spec":)" +
      spec + "}"));
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? *c : api::DispotifyCluster{};
}

const Settings kSettings;

value Sts(const api::DispotifyCluster& c, int32_t replicas = 3) {
  return StatefulSet(c, kSettings, StatefulSetParams{.replicas = replicas});
}
const value& PodSpec(const value& sts) {
  return sts.at("spec").at("template").at("spec");
}
const value& NodeContainer(const value& sts) {
  return PodSpec(sts).at("containers").at(0);
}

// The env entry of that name, or null.
value Env(const value& sts, const std::string& name) {
  for (const auto& e : NodeContainer(sts).at("env").as_array()) {
    if (e.at("name").as_string() == name) return e;
  }
  return value::null();
}

std::string EnvValue(const value& sts, const std::string& name) {
  value e = Env(sts, name);
  return e.is_null() || !e.has_field("value") ? "<absent>" : e.at("value").as_string();
}

// The element of a named list (volumes, mounts, ports) with that name, or null.
value Named(const value& list, const std::string& name) {
  for (const auto& item : list.as_array()) {
    if (item.at("name").as_string() == name) return item;
  }
  return value::null();
}

TEST(NamesTest, FollowTheContract) {
  const auto c = Cluster();
  EXPECT_EQ(StatefulSetName("music"), "music");
  EXPECT_EQ(PeerServiceName("music"), "music-peers");
  EXPECT_EQ(ClientServiceName("music"), "music");
  EXPECT_EQ(ConfigMapName("music"), "music-config");
  EXPECT_EQ(AdminSecretName("music"), "music-admin");
  EXPECT_EQ(CaSecretName("music"), "music-ca");
  EXPECT_EQ(TlsSecretName("music"), "music-tls");
  EXPECT_EQ(TlsCertKey(2), "node-2.crt");
  EXPECT_EQ(TlsKeyKey(2), "node-2.key");
  EXPECT_EQ(PdbName("music"), "music");
  EXPECT_EQ(NetworkPolicyName("music"), "music-peers");
  EXPECT_EQ(PodName("music", 2), "music-2");
  EXPECT_EQ(PvcName("music", 2), "data-music-2");
  EXPECT_EQ(PodHost(c.metadata, 1, kSettings), "music-1.music-peers.ns.svc.cluster.local");
  EXPECT_EQ(PeerAddress(c.metadata, 1, Settings{.cluster_domain = "k8s.example"}),
            "music-1.music-peers.ns.svc.k8s.example:7000");
  EXPECT_EQ(PodHttpUrl(c.metadata, 0, kSettings), "http://music-0.music-peers.ns.svc.cluster.local:8080");
  EXPECT_EQ(NodeIdOfOrdinal(0), 1u);
  EXPECT_EQ(OrdinalOfNodeId(5), 4);
  EXPECT_EQ(SelectorString("music"), "app.kubernetes.io/instance=music,app.kubernetes.io/name=dispotify");
  EXPECT_EQ(DefaultImage().rfind("dispotify/node:", 0), 0u);
}

TEST(OwnedObjectsTest, EveryObjectIsLabelledAndOwned) {
  auto c = Cluster(R"({"monitoring": {"serviceMonitor": true}})");
  const auto objects =
      DesiredObjects(c, kSettings, DesiredParams{.stateful_set = {.replicas = 3}, .admin_token = "t"});
  std::vector<std::string> kinds;
  for (const auto& obj : objects) {
    const std::string kind = obj.at("kind").as_string();
    kinds.push_back(kind);
    SCOPED_TRACE(kind);
    EXPECT_FALSE(obj.at("apiVersion").as_string().empty());
    const value& meta = obj.at("metadata");
    EXPECT_EQ(meta.at("namespace").as_string(), "ns");
    EXPECT_EQ(meta.at("labels").at("app.kubernetes.io/name").as_string(), "dispotify");
    EXPECT_EQ(meta.at("labels").at("app.kubernetes.io/instance").as_string(), "music");
    EXPECT_EQ(meta.at("labels").at("app.kubernetes.io/managed-by").as_string(), "dispotify-operator");
    ASSERT_EQ(meta.at("ownerReferences").size(), 1u);
    const value& owner = meta.at("ownerReferences").at(0);
    EXPECT_EQ(owner.at("apiVersion").as_string(), "dispotify.io/v1alpha1");
    EXPECT_EQ(owner.at("kind").as_string(), "DispotifyCluster");
    EXPECT_EQ(owner.at("name").as_string(), "music");
    EXPECT_EQ(owner.at("uid").as_string(), "6f1c-uid");
    EXPECT_TRUE(owner.at("controller").as_bool());
    EXPECT_TRUE(owner.at("blockOwnerDeletion").as_bool());
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"Secret", "ConfigMap", "Service", "Service", "StatefulSet",
                                             "PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor"}));
}

TEST(OwnedObjectsTest, ServiceMonitorOnlyWhenAskedAndInstalled) {
  auto count = [](const api::DispotifyCluster& c, bool missing) {
    return DesiredObjects(c, kSettings, DesiredParams{.service_monitor_crd_missing = missing}).size();
  };
  EXPECT_EQ(count(Cluster(), false), 7u);
  EXPECT_EQ(count(Cluster(R"({"monitoring": {"serviceMonitor": true}})"), false), 8u);
  EXPECT_EQ(count(Cluster(R"({"monitoring": {"serviceMonitor": true}})"), true), 7u);
}

TEST(StatefulSetTest, KeyFields) {
  const value sts = Sts(Cluster(), 4);
  EXPECT_EQ(sts.at("apiVersion").as_string(), "apps/v1");
  EXPECT_EQ(sts.at("metadata").at("name").as_string(), "music");
  const value& spec = sts.at("spec");
  EXPECT_EQ(spec.at("replicas").as_integer(), 4);  // the controller's number, not spec.replicas
  EXPECT_EQ(spec.at("serviceName").as_string(), "music-peers");
  EXPECT_EQ(spec.at("podManagementPolicy").as_string(), "Parallel");
  EXPECT_EQ(spec.at("updateStrategy").at("type").as_string(), "OnDelete");
  EXPECT_EQ(spec.at("selector").at("matchLabels"), SelectorLabels("music"));
  EXPECT_EQ(spec.at("persistentVolumeClaimRetentionPolicy").at("whenScaled").as_string(), "Retain");
  EXPECT_EQ(spec.at("persistentVolumeClaimRetentionPolicy").at("whenDeleted").as_string(), "Retain");
  // The pod template carries the selector labels.
  const value& labels = spec.at("template").at("metadata").at("labels");
  EXPECT_EQ(labels.at("app.kubernetes.io/name").as_string(), "dispotify");
  EXPECT_EQ(labels.at("app.kubernetes.io/instance").as_string(), "music");
  // One claim template "data" of spec.storage.size.
  ASSERT_EQ(spec.at("volumeClaimTemplates").size(), 1u);
  const value& claim = spec.at("volumeClaimTemplates").at(0);
  EXPECT_EQ(claim.at("metadata").at("name").as_string(), "data");
  EXPECT_EQ(claim.at("spec").at("accessModes").at(0).as_string(), "ReadWriteOnce");
  EXPECT_EQ(claim.at("spec").at("resources").at("requests").at("storage").as_string(), "10Gi");
  EXPECT_FALSE(claim.at("spec").has_field("storageClassName"));
}

TEST(StatefulSetTest, StorageFromTheSpec) {
  auto c = Cluster(R"({"storage": {"size": "50Gi", "storageClassName": "fast",
                                   "retention": {"whenScaled": "Delete", "whenDeleted": "Delete"}}})");
  value sts = Sts(c);
  const value& claim_spec = sts.at("spec").at("volumeClaimTemplates").at(0).at("spec");
  EXPECT_EQ(claim_spec.at("resources").at("requests").at("storage").as_string(), "50Gi");
  EXPECT_EQ(claim_spec.at("storageClassName").as_string(), "fast");
  EXPECT_EQ(sts.at("spec").at("persistentVolumeClaimRetentionPolicy").at("whenScaled").as_string(), "Delete");
  EXPECT_EQ(sts.at("spec").at("persistentVolumeClaimRetentionPolicy").at("whenDeleted").as_string(),
            "Delete");
  // The claim template of an existing StatefulSet cannot change: the controller passes its size.
  value kept = StatefulSet(c, kSettings, StatefulSetParams{.replicas = 3, .claim_size = "10Gi"});
  EXPECT_EQ(kept.at("spec")
                .at("volumeClaimTemplates")
                .at(0)
                .at("spec")
                .at("resources")
                .at("requests")
                .at("storage")
                .as_string(),
            "10Gi");
  const value pvc = PvcExpansion(c, 2);
  EXPECT_EQ(pvc.at("kind").as_string(), "PersistentVolumeClaim");
  EXPECT_EQ(pvc.at("metadata").at("name").as_string(), "data-music-2");
  EXPECT_EQ(pvc.at("metadata").at("namespace").as_string(), "ns");
  EXPECT_EQ(pvc.at("spec").at("resources").at("requests").at("storage").as_string(), "50Gi");
}

TEST(StatefulSetTest, EnvironmentFollowsTheContract) {
  const value sts = Sts(Cluster());
  EXPECT_EQ(Env(sts, "POD_NAME").at("valueFrom").at("fieldRef").at("fieldPath").as_string(), "metadata.name");
  EXPECT_EQ(Env(sts, "POD_NAMESPACE").at("valueFrom").at("fieldRef").at("fieldPath").as_string(),
            "metadata.namespace");
  EXPECT_EQ(Env(sts, "POD_IP").at("valueFrom").at("fieldRef").at("fieldPath").as_string(), "status.podIP");
  EXPECT_EQ(Env(sts, "DISPOTIFY_POD_ORDINAL").at("valueFrom").at("fieldRef").at("fieldPath").as_string(),
            "metadata.labels['apps.kubernetes.io/pod-index']");
  EXPECT_EQ(EnvValue(sts, "DISPOTIFY_CLUSTER_ID"), "6f1c-uid");
  EXPECT_EQ(EnvValue(sts, "DISPOTIFY_LISTEN"), "$(POD_IP):7000");
  EXPECT_EQ(EnvValue(sts, "DISPOTIFY_HTTP_LISTEN"), "$(POD_IP):8080");
  EXPECT_EQ(EnvValue(sts, "DISPOTIFY_METRICS_LISTEN"), "$(POD_IP):9090");
  EXPECT_EQ(EnvValue(sts, "DISPOTIFY_ADVERTISE"),
            "$(POD_NAME).music-peers.$(POD_NAMESPACE).svc.cluster.local:7000");
  EXPECT_EQ(EnvValue(sts, "DISPOTIFY_DATA_DIR"), "/var/lib/dispotify");
  // Mutual TLS with this pod's own pair out of the TLS Secret (by ordinal, expanded by the
  // kubelet from the variable defined earlier in the list), and auth, both set explicitly.
  EXPECT_EQ(EnvValue(sts, "DISPOTIFY_TLS_CERT_FILE"),
            "/var/run/dispotify/tls/node-$(DISPOTIFY_POD_ORDINAL).crt");
  EXPECT_EQ(EnvValue(sts, "DISPOTIFY_TLS_KEY_FILE"),
            "/var/run/dispotify/tls/node-$(DISPOTIFY_POD_ORDINAL).key");
  EXPECT_EQ(EnvValue(sts, "DISPOTIFY_TLS_CA_FILE"), "/var/run/dispotify/tls/ca.crt");
  EXPECT_EQ(EnvValue(sts, "DISPOTIFY_INSECURE_GRPC"), "false");
  EXPECT_EQ(EnvValue(sts, "DISPOTIFY_AUTH"), "true");
  {
    const auto& env = NodeContainer(sts).at("env").as_array();
    auto index = [&](const std::string& name) {
      for (size_t i = 0; i < env.size(); ++i) {
        if (env.at(i).at("name").as_string() == name) return i;
      }
      return env.size();
    };
    EXPECT_LT(index("DISPOTIFY_POD_ORDINAL"), index("DISPOTIFY_TLS_CERT_FILE"));
    EXPECT_LT(index("DISPOTIFY_POD_ORDINAL"), index("DISPOTIFY_TLS_KEY_FILE"));
  }
  EXPECT_EQ(EnvValue(sts, "DISPOTIFY_CONFIG"), "/etc/dispotify/config.yaml");
  const value token = Env(sts, "DISPOTIFY_API_TOKEN").at("valueFrom").at("secretKeyRef");
  EXPECT_EQ(token.at("name").as_string(), "music-admin");
  EXPECT_EQ(token.at("key").as_string(), "token");
  EXPECT_TRUE(Env(sts, "DISPOTIFY_METADATA_STORE").is_null());
  EXPECT_TRUE(Env(sts, "DISPOTIFY_NODE_ID").is_null());  // the node derives it from the ordinal

  // The cluster domain comes from the operator's settings.
  value other =
      StatefulSet(Cluster(), Settings{.cluster_domain = "corp.internal"}, StatefulSetParams{.replicas = 3});
  EXPECT_EQ(EnvValue(other, "DISPOTIFY_ADVERTISE"),
            "$(POD_NAME).music-peers.$(POD_NAMESPACE).svc.corp.internal:7000");
}

TEST(StatefulSetTest, EveryVariableReferenceIsDefinedEarlier) {
  // Kubernetes expands $(VAR) only for variables defined before it in the list; a later or
  // unknown one stays as literal text.
  const value sts =
      Sts(Cluster(R"({"metadataStore": {"type": "postgres", "postgres": {"secretName": "pg"}}})"));
  std::set<std::string> defined;
  const std::regex ref(R"(\$\(([A-Z_]+)\))");
  for (const auto& e : NodeContainer(sts).at("env").as_array()) {
    if (e.has_field("value")) {
      const std::string v = e.at("value").as_string();
      for (auto it = std::sregex_iterator(v.begin(), v.end(), ref); it != std::sregex_iterator(); ++it) {
        EXPECT_TRUE(defined.contains((*it)[1].str()))
            << e.at("name").as_string() << " uses " << (*it)[1].str();
      }
    }
    defined.insert(e.at("name").as_string());
  }
  EXPECT_EQ(defined.size(), NodeContainer(sts).at("env").size()) << "an environment variable is listed twice";
}

TEST(StatefulSetTest, PostgresMountsTheSecretAndNamesThisMembersUrl) {
  const value sts =
      Sts(Cluster(R"({"metadataStore": {"type": "postgres", "postgres": {"secretName": "pg"}}})"));
  EXPECT_EQ(EnvValue(sts, "DISPOTIFY_METADATA_STORE"), "postgres");
  EXPECT_EQ(EnvValue(sts, "DISPOTIFY_POSTGRES_URL_FILE"),
            "/var/run/dispotify/postgres/member-$(DISPOTIFY_POD_ORDINAL)");
  const value volume = Named(PodSpec(sts).at("volumes"), "postgres");
  ASSERT_FALSE(volume.is_null());
  EXPECT_EQ(volume.at("secret").at("secretName").as_string(), "pg");
  const value mount = Named(NodeContainer(sts).at("volumeMounts"), "postgres");
  ASSERT_FALSE(mount.is_null());
  EXPECT_EQ(mount.at("mountPath").as_string(), "/var/run/dispotify/postgres");
  EXPECT_TRUE(mount.at("readOnly").as_bool());
}

TEST(StatefulSetTest, ContainerPortsProbesAndMounts) {
  const value sts = Sts(Cluster());
  const value& ctr = NodeContainer(sts);
  EXPECT_EQ(ctr.at("name").as_string(), "node");
  EXPECT_EQ(ctr.at("image").as_string(), DefaultImage());
  EXPECT_FALSE(ctr.has_field("imagePullPolicy"));
  // spec.resources is empty: requests and a memory limit by default, no CPU limit.
  EXPECT_EQ(ctr.at("resources").at("requests").at("cpu").as_string(), "250m");
  EXPECT_EQ(ctr.at("resources").at("requests").at("memory").as_string(), "256Mi");
  EXPECT_EQ(ctr.at("resources").at("limits").at("memory").as_string(), "1Gi");
  EXPECT_FALSE(ctr.at("resources").at("limits").has_field("cpu"));
  EXPECT_FALSE(ctr.has_field("command"));
  EXPECT_FALSE(ctr.has_field("args"));
  EXPECT_EQ(Named(ctr.at("ports"), "http").at("containerPort").as_integer(), 8080);
  EXPECT_EQ(Named(ctr.at("ports"), "grpc").at("containerPort").as_integer(), 7000);
  EXPECT_EQ(Named(ctr.at("ports"), "metrics").at("containerPort").as_integer(), 9090);
  EXPECT_EQ(ctr.at("readinessProbe").at("httpGet").at("path").as_string(), "/readyz");
  EXPECT_EQ(ctr.at("readinessProbe").at("httpGet").at("port").as_string(), "http");
  EXPECT_EQ(ctr.at("livenessProbe").at("httpGet").at("path").as_string(), "/healthz");
  EXPECT_EQ(ctr.at("startupProbe").at("httpGet").at("path").as_string(), "/healthz");
  EXPECT_GE(ctr.at("startupProbe").at("failureThreshold").as_integer() *
                ctr.at("startupProbe").at("periodSeconds").as_integer(),
            300);
  EXPECT_EQ(Named(ctr.at("volumeMounts"), "data").at("mountPath").as_string(), "/var/lib/dispotify");
  EXPECT_EQ(Named(ctr.at("volumeMounts"), "config").at("mountPath").as_string(), "/etc/dispotify");
  EXPECT_EQ(Named(ctr.at("volumeMounts"), "tmp").at("mountPath").as_string(), "/tmp");
  const value& pod = PodSpec(sts);
  EXPECT_EQ(Named(pod.at("volumes"), "config").at("configMap").at("name").as_string(), "music-config");
  EXPECT_TRUE(Named(pod.at("volumes"), "tmp").has_field("emptyDir"));
  // The certificates: the TLS Secret, read-only, group-readable only (the keys are in it); never
  // the CA's Secret.
  const value tls_mount = Named(ctr.at("volumeMounts"), "tls");
  ASSERT_FALSE(tls_mount.is_null());
  EXPECT_EQ(tls_mount.at("mountPath").as_string(), "/var/run/dispotify/tls");
  EXPECT_TRUE(tls_mount.at("readOnly").as_bool());
  const value tls_volume = Named(pod.at("volumes"), "tls");
  ASSERT_FALSE(tls_volume.is_null());
  EXPECT_EQ(tls_volume.at("secret").at("secretName").as_string(), "music-tls");
  EXPECT_EQ(tls_volume.at("secret").at("defaultMode").as_integer(), 0440);
  EXPECT_EQ(pod.at("volumes").serialize().find("music-ca"), std::string::npos);
  EXPECT_TRUE(Named(pod.at("volumes"), "postgres").is_null());
  EXPECT_FALSE(pod.at("automountServiceAccountToken").as_bool());
  EXPECT_FALSE(pod.at("enableServiceLinks").as_bool());
  // Default: prefer one member per node.
  const value& term = pod.at("affinity")
                          .at("podAntiAffinity")
                          .at("preferredDuringSchedulingIgnoredDuringExecution")
                          .at(0)
                          .at("podAffinityTerm");
  EXPECT_EQ(term.at("topologyKey").as_string(), "kubernetes.io/hostname");
  EXPECT_EQ(term.at("labelSelector").at("matchLabels"), SelectorLabels("music"));
}

TEST(StatefulSetTest, RestrictedPodSecurityStandard) {
  const value sts = Sts(Cluster());
  const value& pod = PodSpec(sts).at("securityContext");
  EXPECT_TRUE(pod.at("runAsNonRoot").as_bool());
  EXPECT_EQ(pod.at("runAsUser").as_integer(), 10001);
  EXPECT_EQ(pod.at("fsGroup").as_integer(), 10001);
  EXPECT_EQ(pod.at("seccompProfile").at("type").as_string(), "RuntimeDefault");
  const value& ctr = NodeContainer(sts).at("securityContext");
  EXPECT_FALSE(ctr.at("allowPrivilegeEscalation").as_bool());
  EXPECT_TRUE(ctr.at("readOnlyRootFilesystem").as_bool());
  EXPECT_TRUE(ctr.at("runAsNonRoot").as_bool());
  EXPECT_EQ(ctr.at("capabilities").at("drop"), value::array({value::string("ALL")}));
  EXPECT_FALSE(ctr.at("capabilities").has_field("add"));
  EXPECT_EQ(ctr.at("seccompProfile").at("type").as_string(), "RuntimeDefault");
  EXPECT_FALSE(PodSpec(sts).has_field("hostNetwork"));
}

TEST(StatefulSetTest, SpecFieldsAndOverridesAreMergedIn) {
  const value sts = Sts(Cluster(R"({
    "image": "registry.example/dispotify:9", "imagePullPolicy": "Always",
    "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}},
    "podTemplate": {"labels": {"team": "audio", "app.kubernetes.io/component": "mine"},
                    "annotations": {"sidecar.example/inject": "false"},
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                        {"nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}]}}},
                    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "music", "effect": "NoSchedule"}],
                    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                                   "whenUnsatisfiable": "DoNotSchedule"}],
                    "nodeSelector": {"pool": "music"}, "priorityClassName": "critical"}})"));
  const value& ctr = NodeContainer(sts);
  EXPECT_EQ(ctr.at("image").as_string(), "registry.example/dispotify:9");
  EXPECT_EQ(ctr.at("imagePullPolicy").as_string(), "Always");
  EXPECT_EQ(ctr.at("resources").at("limits").at("memory").as_string(), "4Gi");
  const value& meta = sts.at("spec").at("template").at("metadata");
  EXPECT_EQ(meta.at("labels").at("team").as_string(), "audio");
  EXPECT_EQ(meta.at("labels").at("app.kubernetes.io/component").as_string(), "node");  // ours win
  EXPECT_EQ(meta.at("labels").at("app.kubernetes.io/instance").as_string(), "music");
  EXPECT_EQ(meta.at("annotations").at("sidecar.example/inject").as_string(), "false");
  EXPECT_TRUE(meta.at("annotations").has_field(std::string(kRestartHashAnnotation)));
  const value& pod = PodSpec(sts);
  EXPECT_TRUE(pod.at("affinity").has_field("nodeAffinity"));
  EXPECT_FALSE(pod.at("affinity").has_field("podAntiAffinity"));  // the user's replaces the default
  EXPECT_EQ(pod.at("tolerations").at(0).at("key").as_string(), "dedicated");
  EXPECT_EQ(pod.at("topologySpreadConstraints").at(0).at("topologyKey").as_string(),
            "topology.kubernetes.io/zone");
  EXPECT_EQ(pod.at("nodeSelector").at("pool").as_string(), "music");
  EXPECT_EQ(pod.at("priorityClassName").as_string(), "critical");
  // The settings' default image is used when the spec names none.
  value defaulted =
      StatefulSet(Cluster(), Settings{.default_image = "mirror/node:2"}, StatefulSetParams{.replicas = 1});
  EXPECT_EQ(NodeContainer(defaulted).at("image").as_string(), "mirror/node:2");
}

struct HashCase {
  const char* name;
  const char* spec;  // applied over the base
  bool restarts;
};

class RestartHashTest : public testing::TestWithParam<HashCase> {};

constexpr const char* kBase = R"({"replicas": 3, "image": "dispotify/node:1"})";

TEST_P(RestartHashTest, ChangesOnlyWithWhatNeedsARestart) {
  const std::string base = RestartHash(Cluster(kBase), kSettings);
  EXPECT_EQ(base.size(), 32u);
  EXPECT_EQ(base, RestartHash(Cluster(kBase), kSettings)) << "not deterministic";
  const std::string changed = RestartHash(Cluster(GetParam().spec), kSettings);
  if (GetParam().restarts) {
    EXPECT_NE(changed, base);
  } else {
    EXPECT_EQ(changed, base);
  }
  // The annotation carries the hash.
  EXPECT_EQ(Sts(Cluster(GetParam().spec))
                .at("spec")
                .at("template")
                .at("metadata")
                .at("annotations")
                .at(std::string(kRestartHashAnnotation))
                .as_string(),
            changed);
}

INSTANTIATE_TEST_SUITE_P(
    Table, RestartHashTest,
    testing::Values(
        HashCase{"Image", R"({"replicas": 3, "image": "dispotify/node:2"})", true},
        HashCase{"PullPolicy", R"({"replicas": 3, "image": "dispotify/node:1", "imagePullPolicy": "Always"})",
                 true},
        HashCase{"Resources",
                 R"({"replicas": 3, "image": "dispotify/node:1", "resources": {"limits": {"cpu": "2"}}})",
                 true},
        HashCase{"Config", R"({"replicas": 3, "image": "dispotify/node:1", "config": {"tick_ms": 20}})",
                 true},
        HashCase{
            "PodAnnotation",
            R"({"replicas": 3, "image": "dispotify/node:1", "podTemplate": {"annotations": {"a": "b"}}})",
            true},
        HashCase{
            "Tolerations",
            R"({"replicas": 3, "image": "dispotify/node:1", "podTemplate": {"tolerations": [{"operator": "Exists"}]}})",
            true},
        HashCase{"Replicas", R"({"replicas": 5, "image": "dispotify/node:1"})", false},
        HashCase{"ReplicationFactor",
                 R"({"replicas": 3, "replicationFactor": 2, "image": "dispotify/node:1"})", false},
        HashCase{"StorageSize",
                 R"({"replicas": 3, "image": "dispotify/node:1", "storage": {"size": "20Gi"}})", false},
        HashCase{
            "Retention",
            R"({"replicas": 3, "image": "dispotify/node:1", "storage": {"retention": {"whenScaled": "Delete"}}})",
            false},
        HashCase{
            "Service",
            R"({"replicas": 3, "image": "dispotify/node:1", "service": {"type": "NodePort", "port": 80}})",
            false},
        HashCase{"Monitoring",
                 R"({"replicas": 3, "image": "dispotify/node:1", "monitoring": {"serviceMonitor": true}})",
                 false},
        HashCase{"Paused", R"({"replicas": 3, "image": "dispotify/node:1", "paused": true})", false}),
    [](const testing::TestParamInfo<HashCase>& p) { return std::string(p.param.name); });

TEST(RestartHashTest, BootstrapNodeIsNotARestart) {
  // config.yaml changes when the cluster has formed (bootstrap_node_id 1 -> 0); the hash must not.
  auto c = Cluster();
  EXPECT_NE(ConfigYaml(c, 1), ConfigYaml(c, 0));
  EXPECT_NE(ConfigYaml(c, 0).find("join: true\n"), std::string::npos);
  EXPECT_EQ(ConfigYaml(c, 0).find("bootstrap_node_id"), std::string::npos)
      << "0 means off: the node would bootstrap";
  EXPECT_EQ(RestartHash(c, kSettings), RestartHash(c, kSettings));
}

TEST(ServiceTest, PeerServiceIsHeadlessAndPublishesNotReadyPods) {
  const value svc = PeerService(Cluster());
  EXPECT_EQ(svc.at("metadata").at("name").as_string(), "music-peers");
  EXPECT_EQ(svc.at("spec").at("clusterIP").as_string(), "None");
  EXPECT_TRUE(svc.at("spec").at("publishNotReadyAddresses").as_bool());
  EXPECT_EQ(svc.at("spec").at("selector"), SelectorLabels("music"));
  EXPECT_EQ(Named(svc.at("spec").at("ports"), "grpc").at("port").as_integer(), 7000);
  EXPECT_EQ(Named(svc.at("spec").at("ports"), "http").at("port").as_integer(), 8080);
  EXPECT_EQ(Named(svc.at("spec").at("ports"), "metrics").at("port").as_integer(), 9090);
}

TEST(ServiceTest, ClientServiceFollowsTheSpec) {
  const value plain = ClientService(Cluster());
  EXPECT_EQ(plain.at("metadata").at("name").as_string(), "music");
  EXPECT_EQ(plain.at("spec").at("type").as_string(), "ClusterIP");
  EXPECT_FALSE(plain.at("spec").has_field("publishNotReadyAddresses"));
  EXPECT_FALSE(plain.at("metadata").has_field("annotations"));
  const value& port = plain.at("spec").at("ports").at(0);
  EXPECT_EQ(port.at("port").as_integer(), 8080);
  EXPECT_EQ(port.at("targetPort").as_string(), "http");
  const value lb = ClientService(
      Cluster(R"({"service": {"type": "LoadBalancer", "port": 443, "annotations": {"x/y": "z"}}})"));
  EXPECT_EQ(lb.at("spec").at("type").as_string(), "LoadBalancer");
  EXPECT_EQ(lb.at("spec").at("ports").at(0).at("port").as_integer(), 443);
  EXPECT_EQ(lb.at("metadata").at("annotations").at("x/y").as_string(), "z");
  EXPECT_EQ(lb.at("spec").at("selector"), SelectorLabels("music"));
}

TEST(ConfigMapTest, ConfigYamlParsesWithEveryValue) {
  auto c = Cluster(R"({"replicas": 5, "replicationFactor": 2,
                       "config": {"tick_ms": 20, "log_level": "debug", "odd": "a: b # \"c\"\n"}})");
  const value cm = ConfigMap(c, 1);
  EXPECT_EQ(cm.at("metadata").at("name").as_string(), "music-config");
  const std::string text = cm.at("data").at("config.yaml").as_string();
  const YAML::Node yaml = YAML::Load(text);
  EXPECT_EQ(yaml["replication_factor"].Scalar(), "2");
  EXPECT_EQ(yaml["bootstrap_node_id"].Scalar(), "1");
  EXPECT_EQ(yaml["tick_ms"].Scalar(), "20");
  EXPECT_EQ(yaml["log_level"].Scalar(), "debug");
  EXPECT_EQ(yaml["odd"].Scalar(), "a: b # \"c\"\n");
  EXPECT_EQ(yaml["reset_removed"].Scalar(), "true");
  EXPECT_EQ(yaml.size(), 6u);
  EXPECT_EQ(YAML::Load(ConfigYaml(c, 0))["join"].Scalar(), "true");
  EXPECT_EQ(YAML::Load(ConfigYaml(Cluster(), 1)).size(), 3u);
}

TEST(SecretTest, HoldsTheTokenItWasGiven) {
  const value s = AdminSecret(Cluster(), "s3cret-token");
  EXPECT_EQ(s.at("metadata").at("name").as_string(), "music-admin");
  EXPECT_EQ(s.at("type").as_string(), "Opaque");
  EXPECT_EQ(s.at("data").at("token").as_string(), "czNjcmV0LXRva2Vu");  // base64("s3cret-token")
}

TEST(SecretTest, TheCaAndTheTlsSecretsHoldWhatTheyWereGivenAndBelongToTheCluster) {
  const value ca = CaSecret(Cluster(), "CERT", "KEY");
  EXPECT_EQ(ca.at("metadata").at("name").as_string(), "music-ca");
  EXPECT_EQ(ca.at("type").as_string(), "kubernetes.io/tls");
  EXPECT_EQ(ca.at("data").at("tls.crt").as_string(), "Q0VSVA==");  // base64("CERT")
  EXPECT_EQ(ca.at("data").at("tls.key").as_string(), "S0VZ");      // base64("KEY")
  EXPECT_EQ(ca.at("data").size(), 2u);
  EXPECT_EQ(ca.at("metadata").at("ownerReferences").at(0).at("uid").as_string(), "6f1c-uid");

  const value tls = TlsSecret(Cluster(), {{"ca.crt", "CA"}, {"node-0.crt", "C0"}, {"node-0.key", "K0"}});
  EXPECT_EQ(tls.at("metadata").at("name").as_string(), "music-tls");
  EXPECT_EQ(tls.at("type").as_string(), "Opaque");
  EXPECT_EQ(tls.at("data").size(), 3u);
  EXPECT_EQ(tls.at("data").at("node-0.key").as_string(), "SzA=");  // base64("K0")
  EXPECT_EQ(tls.at("metadata").at("ownerReferences").at(0).at("uid").as_string(), "6f1c-uid");
  // Neither is among the objects applied every pass: the controller writes them itself.
  const auto objects = DesiredObjects(Cluster(), kSettings, DesiredParams{.stateful_set = {.replicas = 3}});
  for (const auto& o : objects) {
    EXPECT_NE(o.at("metadata").at("name").as_string(), "music-ca");
    EXPECT_NE(o.at("metadata").at("name").as_string(), "music-tls");
  }
}

class PdbTest : public testing::TestWithParam<std::pair<int32_t, int32_t>> {};

TEST_P(PdbTest, MinAvailableIsTheQuorum) {
  const auto [replicas, quorum] = GetParam();
  EXPECT_EQ(QuorumSize(replicas), quorum);
  const value pdb = PodDisruptionBudget(
      Cluster(R"({"replicas": )" + std::to_string(replicas) + R"(, "replicationFactor": 1})"));
  EXPECT_EQ(pdb.at("apiVersion").as_string(), "policy/v1");
  const value& min = pdb.at("spec").at("minAvailable");
  ASSERT_TRUE(min.is_integer()) << "a percentage would round";
  EXPECT_EQ(min.as_integer(), quorum);
  EXPECT_FALSE(pdb.at("spec").has_field("maxUnavailable"));
  EXPECT_EQ(pdb.at("spec").at("selector").at("matchLabels"), SelectorLabels("music"));
}

INSTANTIATE_TEST_SUITE_P(OneToSeven, PdbTest,
                         testing::Values(std::pair{1, 1}, std::pair{2, 2}, std::pair{3, 2}, std::pair{4, 3},
                                         std::pair{5, 3}, std::pair{6, 4}, std::pair{7, 4}));

TEST(PdbTest, ScaleDownInFlightKeepsTheLargerQuorum) {
  // spec says 3 while 5 voters are still members: evicting 3 of them would lose quorum.
  const value pdb = PodDisruptionBudget(Cluster(R"({"replicas": 3})"), 5);
  EXPECT_EQ(pdb.at("spec").at("minAvailable").as_integer(), 3);
  EXPECT_EQ(PodDisruptionBudget(Cluster(R"({"replicas": 5})"), 3).at("spec").at("minAvailable").as_integer(),
            3);
}

TEST(NetworkPolicyTest, PeerPortOnlyFromMembers) {
  const value np = NetworkPolicy(Cluster());
  EXPECT_EQ(np.at("metadata").at("name").as_string(), "music-peers");
  const value& spec = np.at("spec");
  EXPECT_EQ(spec.at("podSelector").at("matchLabels"), SelectorLabels("music"));
  EXPECT_EQ(spec.at("policyTypes"), value::array({value::string("Ingress")}));
  ASSERT_EQ(spec.at("ingress").size(), 2u);
  const value& peers = spec.at("ingress").at(0);
  EXPECT_EQ(peers.at("from").at(0).at("podSelector").at("matchLabels"), SelectorLabels("music"));
  ASSERT_EQ(peers.at("ports").size(), 1u);
  EXPECT_EQ(peers.at("ports").at(0).at("port").as_integer(), 7000);
  const value& open = spec.at("ingress").at(1);
  EXPECT_FALSE(open.has_field("from"));
  std::set<int> ports;
  for (const auto& p : open.at("ports").as_array()) ports.insert(p.at("port").as_integer());
  EXPECT_EQ(ports, (std::set<int>{8080, 9090}));
}

TEST(ServiceMonitorTest, ScrapesEveryMemberThroughThePeerService) {
  const value sm = ServiceMonitor(Cluster(R"({"monitoring": {"serviceMonitor": true, "interval": "15s"}})"));
  EXPECT_EQ(sm.at("apiVersion").as_string(), "monitoring.coreos.com/v1");
  EXPECT_EQ(sm.at("kind").as_string(), "ServiceMonitor");
  const value& match = sm.at("spec").at("selector").at("matchLabels");
  EXPECT_EQ(match.at("app.kubernetes.io/component").as_string(), "peers");
  EXPECT_EQ(match.at("app.kubernetes.io/instance").as_string(), "music");
  const value& ep = sm.at("spec").at("endpoints").at(0);
  EXPECT_EQ(ep.at("port").as_string(), "metrics");
  EXPECT_EQ(ep.at("interval").as_string(), "15s");
  // The nodes want a credential on /metrics: the token of the cluster's admin Secret.
  EXPECT_EQ(ep.at("authorization").at("type").as_string(), "Bearer");
  EXPECT_EQ(ep.at("authorization").at("credentials").at("name").as_string(), AdminSecretName("music"));
  EXPECT_EQ(ep.at("authorization").at("credentials").at("key").as_string(), std::string(kAdminTokenKey));
  // The cluster's name on every series.
  EXPECT_EQ(sm.at("spec").at("targetLabels").at(0).as_string(), "app.kubernetes.io/instance");
  EXPECT_EQ(PeerService(Cluster()).at("metadata").at("labels").at("app.kubernetes.io/instance").as_string(),
            "music");
  // Only the peer Service carries that component label.
  EXPECT_EQ(PeerService(Cluster()).at("metadata").at("labels").at("app.kubernetes.io/component").as_string(),
            "peers");
  EXPECT_NE(
      ClientService(Cluster()).at("metadata").at("labels").at("app.kubernetes.io/component").as_string(),
      "peers");
}

}  // namespace
}  // namespace dispotify::op::specs
