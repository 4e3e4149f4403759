#include "operator/api/types.h"

#include <gtest/gtest.h>

#include <string>

namespace dispotify::op::api {
namespace {

using web::json::value;

value Json(const std::string& text) {
  return value::parse(text);
}

// A cluster object as the API server returns it, with `spec` spliced in.
value Object(const std::string& spec) {
  return Json(R"({"apiVersion":"dispotify.io/v1alpha1","kind":"DispotifyCluster",
    "metadata":{"name":"music","namespace":"ns","uid":"0b6c3c1e-uid","generation":4,"resourceVersion":"77",
                "labels":{"team":"a"},"finalizers":["dispotify.io/cleanup"]},
    "spec":)" +
              spec + "}");
}

TEST(ParseClusterTest, EmptySpecTakesEveryDefault) {
  auto c = ParseCluster(Object("{}"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->metadata.name, "music");
  EXPECT_EQ(c->metadata.namespace_, "ns");
  EXPECT_EQ(c->metadata.uid, "0b6c3c1e-uid");
  EXPECT_EQ(c->metadata.generation, 4);
  EXPECT_EQ(c->metadata.resource_version, "77");
  EXPECT_EQ(c->metadata.labels.at("team"), "a");
  EXPECT_EQ(c->metadata.finalizers, std::vector<std::string>{"dispotify.io/cleanup"});
  const ClusterSpec& s = c->spec;
  EXPECT_EQ(s.replicas, 3);
  EXPECT_EQ(s.replication_factor, 3);
  EXPECT_EQ(s.image, "");
  EXPECT_EQ(s.image_pull_policy, "");
  EXPECT_TRUE(s.resources.is_null());
  EXPECT_EQ(s.storage.size, "10Gi");
  EXPECT_FALSE(s.storage.storage_class_name.has_value());
  EXPECT_EQ(s.storage.when_scaled, RetentionPolicy::kRetain);
  EXPECT_EQ(s.storage.when_deleted, RetentionPolicy::kRetain);
  EXPECT_EQ(s.metadata_store.type, MetadataStoreType::kEmbedded);
  EXPECT_EQ(s.service.type, "ClusterIP");
  EXPECT_EQ(s.service.port, 8080);
  EXPECT_FALSE(s.paused);
  EXPECT_FALSE(s.monitoring.service_monitor);
  EXPECT_EQ(s.monitoring.interval, "30s");
  EXPECT_TRUE(s.config.empty());
  EXPECT_TRUE(s.pod_template.affinity.is_null());
  EXPECT_EQ(c->status, ClusterStatus{});
}

TEST(ParseClusterTest, AbsentSpecTakesEveryDefault) {
  auto c = ParseCluster(Json(R"({"metadata":{"name":"music","namespace":"ns","uid":"u"}})"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->spec.replicas, 3);
}

TEST(ParseClusterTest, EveryFieldIsRead) {
  auto c = ParseCluster(Object(R"({
    "replicas": 5, "replicationFactor": 2, "image": "registry/dispotify:1.2", "imagePullPolicy": "Always",
    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
    "storage": {"size": "50Gi", "storageClassName": "fast", "retention": {"whenScaled": "Delete", "whenDeleted": "Retain"}},
    "metadataStore": {"type": "postgres", "postgres": {"secretName": "pg-urls"}},
    "service": {"type": "LoadBalancer", "port": 80, "annotations": {"lb": "internal"}},
    "paused": true,
    "podTemplate": {"labels": {"tier": "music"}, "annotations": {"a": "b"},
                    "affinity": {"nodeAffinity": {}}, "tolerations": [{"key": "k", "operator": "Exists"}],
                    "topologySpreadConstraints": [{"maxSkew": 1}], "nodeSelector": {"disk": "ssd"},
                    "priorityClassName": "high"},
    "monitoring": {"serviceMonitor": true, "interval": "1m"},
    "config": {"tick_ms": 20, "auto_promote": "false", "log_level": "debug"}
  })"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const ClusterSpec& s = c->spec;
  EXPECT_EQ(s.replicas, 5);
  EXPECT_EQ(s.replication_factor, 2);
  EXPECT_EQ(s.image, "registry/dispotify:1.2");
  EXPECT_EQ(s.image_pull_policy, "Always");
  EXPECT_EQ(s.resources.at("requests").at("cpu").as_string(), "500m");
  EXPECT_EQ(s.storage.size, "50Gi");
  EXPECT_EQ(s.storage.storage_class_name, "fast");
  EXPECT_EQ(s.storage.when_scaled, RetentionPolicy::kDelete);
  EXPECT_EQ(s.storage.when_deleted, RetentionPolicy::kRetain);
  EXPECT_EQ(s.metadata_store.type, MetadataStoreType::kPostgres);
  EXPECT_EQ(s.metadata_store.postgres_secret_name, "pg-urls");
  EXPECT_EQ(s.service.type, "LoadBalancer");
  EXPECT_EQ(s.service.port, 80);
  EXPECT_EQ(s.service.annotations.at("lb"), "internal");
  EXPECT_TRUE(s.paused);
  EXPECT_EQ(s.pod_template.labels.at("tier"), "music");
  EXPECT_EQ(s.pod_template.annotations.at("a"), "b");
  EXPECT_TRUE(s.pod_template.affinity.has_field("nodeAffinity"));
  EXPECT_EQ(s.pod_template.tolerations.size(), 1u);
  EXPECT_EQ(s.pod_template.topology_spread_constraints.size(), 1u);
  EXPECT_EQ(s.pod_template.node_selector.at("disk"), "ssd");
  EXPECT_EQ(s.pod_template.priority_class_name, "high");
  EXPECT_TRUE(s.monitoring.service_monitor);
  EXPECT_EQ(s.monitoring.interval, "1m");
  EXPECT_EQ(s.config.at("tick_ms"), "20");
  EXPECT_EQ(s.config.at("auto_promote"), "false");
  EXPECT_EQ(s.config.at("log_level"), "debug");
}

TEST(ParseClusterTest, NullFieldsAreAbsent) {
  auto c = ParseCluster(Object(R"({"replicas": null, "storage": null, "config": null})"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->spec.replicas, 3);
  EXPECT_EQ(c->spec.storage.size, "10Gi");
}

struct BadSpec {
  const char* name;
  const char* spec;
  const char* error;  // a piece of the expected message
};

class BadSpecTest : public testing::TestWithParam<BadSpec> {};

TEST_P(BadSpecTest, IsRefusedWithItsField) {
  auto c = ParseCluster(Object(GetParam().spec));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find(GetParam().error), std::string::npos) << c.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadSpecTest,
    testing::Values(
        BadSpec{"ZeroReplicas", R"({"replicas": 0, "replicationFactor": 1})",
                "spec.replicas: must be at least 1"},
        BadSpec{"NegativeReplicas", R"({"replicas": -2})", "spec.replicas: must be at least 1"},
        BadSpec{"ReplicasNotInteger", R"({"replicas": "three"})", "spec.replicas: must be an integer"},
        BadSpec{"ReplicasFraction", R"({"replicas": 2.5})", "spec.replicas: must be an integer"},
        BadSpec{"RAboveReplicas", R"({"replicas": 3, "replicationFactor": 4})",
                "spec.replicationFactor: must not exceed spec.replicas"},
        BadSpec{"DefaultRAboveReplicas", R"({"replicas": 1})", "spec.replicationFactor: must not exceed"},
        BadSpec{"ZeroR", R"({"replicationFactor": 0})", "spec.replicationFactor: must be at least 1"},
        BadSpec{"SpecNotObject", R"([1])", "spec: must be an object"},
        BadSpec{"BadPullPolicy", R"({"imagePullPolicy": "Sometimes"})",
                "spec.imagePullPolicy: must be one of"},
        BadSpec{"BadSize", R"({"storage": {"size": "ten gigs"}})",
                "spec.storage.size: 'ten gigs' is not a quantity"},
        BadSpec{"ZeroSize", R"({"storage": {"size": "0"}})",
                "spec.storage.size: must be a positive quantity"},
        BadSpec{"BadRetention", R"({"storage": {"retention": {"whenScaled": "Keep"}}})",
                "spec.storage.retention.whenScaled: must be one of Retain, Delete"},
        BadSpec{"BadStoreType", R"({"metadataStore": {"type": "mysql"}})",
                "spec.metadataStore.type: must be one of"},
        BadSpec{"PostgresWithoutSecret", R"({"metadataStore": {"type": "postgres"}})",
                "spec.metadataStore.postgres.secretName: is required"},
        BadSpec{"BadServiceType", R"({"service": {"type": "ExternalName"}})",
                "spec.service.type: must be one of"},
        BadSpec{"PortZero", R"({"service": {"port": 0}})", "spec.service.port: must be at least 1"},
        BadSpec{"PortTooLarge", R"({"service": {"port": 70000}})",
                "spec.service.port: must be at most 65535"},
        BadSpec{"PausedNotBool", R"({"paused": "yes"})", "spec.paused: must be true or false"},
        BadSpec{"SelectorLabel", R"({"podTemplate": {"labels": {"app.kubernetes.io/instance": "x"}}})",
                "spec.podTemplate.labels: may not set app.kubernetes.io/instance"},
        BadSpec{"LabelNotString", R"({"podTemplate": {"labels": {"a": 1}}})",
                "spec.podTemplate.labels.a: must be a string"},
        BadSpec{"TolerationsNotList", R"({"podTemplate": {"tolerations": {}}})",
                "spec.podTemplate.tolerations: must be a list"},
        BadSpec{"BadInterval", R"({"monitoring": {"interval": "often"}})",
                "spec.monitoring.interval: must be a duration"},
        BadSpec{"OwnedConfigKey", R"({"config": {"node_id": 4}})",
                "spec.config.node_id: is set by the operator"},
        BadSpec{"OwnedConfigR", R"({"config": {"replication_factor": 2}})",
                "spec.config.replication_factor: is set by the operator"},
        BadSpec{"ConfigKeyCase", R"({"config": {"TickMs": 4}})",
                "spec.config: key 'TickMs' is not a node setting"},
        BadSpec{"ConfigValueBool", R"({"config": {"auto_promote": true}})",
                "spec.config.auto_promote: must be a string or an integer"}),
    [](const testing::TestParamInfo<BadSpec>& p) { return std::string(p.param.name); });

TEST(ParseClusterTest, EveryOwnedConfigKeyIsRefused) {
  for (const auto& key : OperatorOwnedConfigKeys()) {
    auto c = ParseCluster(Object(R"({"config": {")" + key + R"(": "x"}})"));
    EXPECT_FALSE(c.ok()) << key;
  }
}

TEST(ParseClusterTest, MetadataIsChecked) {
  EXPECT_FALSE(ParseCluster(Json(R"({"spec":{}})")).ok());
  auto no_uid = ParseCluster(Json(R"({"metadata":{"name":"music","namespace":"ns"}})"));
  ASSERT_FALSE(no_uid.ok());
  EXPECT_NE(no_uid.status().message().find("metadata.uid: is required"), std::string::npos);
  auto upper = ParseCluster(Json(R"({"metadata":{"name":"Music","namespace":"ns","uid":"u"}})"));
  ASSERT_FALSE(upper.ok());
  EXPECT_NE(upper.status().message().find("metadata.name"), std::string::npos);
  auto long_name = ParseCluster(
      Json(R"({"metadata":{"name":")" + std::string(53, 'a') + R"(","namespace":"ns","uid":"u"}})"));
  EXPECT_FALSE(long_name.ok());
  EXPECT_FALSE(
      ParseCluster(Json(R"({"kind":"StatefulSet","metadata":{"name":"m","namespace":"ns","uid":"u"}})"))
          .ok());
  EXPECT_FALSE(ParseCluster(Json("[]")).ok());
}

TEST(StatusTest, RoundTripsThroughJson) {
  ClusterStatus s;
  s.observed_generation = 7;
  s.phase = "Scaling";
  s.selector = "app.kubernetes.io/instance=music,app.kubernetes.io/name=dispotify";
  s.replicas = 4;
  s.ready_replicas = 3;
  s.leader = "music-0";
  s.replication_factor = 3;
  s.under_replicated_files = 12;
  s.bootstrapped = true;
  s.conditions.push_back({"Ready", "True", "AllMembersReady", "3 of 3", "2026-01-02T03:04:05Z", 7});
  s.members.push_back({"music-0", 1, "uuid-a", MemberRole::kLeader, true, true, "0.1.0"});
  s.members.push_back({"music-3", 4, "uuid-d", MemberRole::kLearner, true, false, ""});
  Operation op;
  op.type = "ScaleUp";
  op.member = "music-3";
  op.node_id = 4;
  op.node_uuid = "uuid-d";
  op.step = "AddLearner";
  op.started = "2026-01-02T03:04:00Z";
  op.last_error = "not caught up";
  op.target_replicas = 5;
  op.target_replication_factor = 3;
  op.target_revision = "abc";
  op.extra["attempts"] = value::number(2);  // a field a newer operator wrote
  s.operation = op;

  const value json = StatusToJson(s);
  EXPECT_EQ(json.at("operation").at("attempts").as_integer(), 2);
  EXPECT_EQ(json.at("members").at(0).at("role").as_string(), "leader");
  EXPECT_EQ(json.at("conditions").at(0).at("lastTransitionTime").as_string(), "2026-01-02T03:04:05Z");
  auto back = ParseStatus(value::parse(json.serialize()));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, s);
}

TEST(StatusTest, EmptyStatusOmitsOptionalFields) {
  const value json = StatusToJson(ClusterStatus{});
  EXPECT_FALSE(json.has_field("operation"));
  EXPECT_FALSE(json.has_field("leader"));
  EXPECT_FALSE(json.has_field("phase"));
  EXPECT_TRUE(json.at("conditions").is_array());
}

TEST(StatusTest, ApplyObjectNamesTheCluster) {
  ObjectMeta meta;
  meta.name = "music";
  meta.namespace_ = "ns";
  meta.uid = "u";
  ClusterStatus s;
  s.phase = "Ready";
  const value obj = StatusApplyObject(meta, s);
  EXPECT_EQ(obj.at("apiVersion").as_string(), "dispotify.io/v1alpha1");
  EXPECT_EQ(obj.at("kind").as_string(), "DispotifyCluster");
  EXPECT_EQ(obj.at("metadata").at("name").as_string(), "music");
  EXPECT_EQ(obj.at("metadata").at("namespace").as_string(), "ns");
  EXPECT_EQ(obj.at("status").at("phase").as_string(), "Ready");
  EXPECT_FALSE(obj.has_field("spec"));
}

TEST(StatusTest, BadStatusIsRefused) {
  EXPECT_FALSE(ParseStatus(Json(R"({"members":[{"pod":"a","role":"king"}]})")).ok());
  EXPECT_FALSE(ParseStatus(Json(R"({"members":[{"role":"voter"}]})")).ok());
  EXPECT_FALSE(ParseStatus(Json(R"({"conditions":[{"type":"Ready","status":"Maybe"}]})")).ok());
  EXPECT_FALSE(ParseStatus(Json(R"({"operation":{"step":"x"}})")).ok());
  EXPECT_FALSE(ParseStatus(Json(R"({"readyReplicas":-1})")).ok());
  EXPECT_TRUE(ParseStatus(value::null()).ok());
}

TEST(ConditionTest, TransitionTimeMovesOnlyWhenTheStatusChanges) {
  std::vector<Condition> conds;
  EXPECT_TRUE(SetCondition(&conds, {"Ready", "False", "Bootstrapping", "0 of 3 ready", "", 1}, "T1"));
  ASSERT_EQ(conds.size(), 1u);
  EXPECT_EQ(conds[0].last_transition_time, "T1");

  // Same status, new message: updated in place, time kept.
  EXPECT_TRUE(SetCondition(&conds, {"Ready", "False", "Bootstrapping", "1 of 3 ready", "", 2}, "T2"));
  EXPECT_EQ(conds[0].last_transition_time, "T1");
  EXPECT_EQ(conds[0].message, "1 of 3 ready");
  EXPECT_EQ(conds[0].observed_generation, 2);

  // Nothing new: no change reported.
  EXPECT_FALSE(SetCondition(&conds, {"Ready", "False", "Bootstrapping", "1 of 3 ready", "", 2}, "T3"));
  EXPECT_EQ(conds[0].last_transition_time, "T1");

  // New status: new time.
  EXPECT_TRUE(SetCondition(&conds, {"Ready", "True", "AllMembersReady", "3 of 3 ready", "", 2}, "T4"));
  EXPECT_EQ(conds[0].last_transition_time, "T4");
  EXPECT_TRUE(IsConditionTrue(conds, kConditionReady));

  // Another type is added beside it.
  EXPECT_TRUE(SetCondition(&conds, {"Degraded", "False", "AllHealthy", "", "", 2}, "T5"));
  ASSERT_EQ(conds.size(), 2u);
  EXPECT_EQ(FindCondition(conds, kConditionDegraded)->last_transition_time, "T5");
  EXPECT_FALSE(IsConditionTrue(conds, kConditionDegraded));
  EXPECT_EQ(FindCondition(conds, kConditionQuorumLost), nullptr);
  EXPECT_TRUE(RemoveCondition(&conds, kConditionDegraded));
  EXPECT_FALSE(RemoveCondition(&conds, kConditionDegraded));
  EXPECT_EQ(conds.size(), 1u);
}

struct QuantityCase {
  std::string text;
  int64_t bytes;  // -1: refused
};

class QuantityTest : public testing::TestWithParam<QuantityCase> {};

TEST_P(QuantityTest, Parses) {
  auto b = ParseQuantityBytes(GetParam().text);
  if (GetParam().bytes < 0) {
    EXPECT_FALSE(b.ok()) << GetParam().text;
  } else {
    ASSERT_TRUE(b.ok()) << GetParam().text << ": " << b.status().ToString();
    EXPECT_EQ(*b, GetParam().bytes) << GetParam().text;
  }
}

INSTANTIATE_TEST_SUITE_P(Table, QuantityTest,
                         testing::Values(QuantityCase{"10Gi", 10LL << 30}, QuantityCase{"1Ki", 1024},
                                         QuantityCase{"1.5Ti", 3LL << 39}, QuantityCase{"500M", 500000000},
                                         QuantityCase{"2k", 2000}, QuantityCase{"1e9", 1000000000},
                                         QuantityCase{"1E", 1000000000000000000}, QuantityCase{"1E3", 1000},
                                         QuantityCase{"123", 123}, QuantityCase{"+4", 4},
                                         QuantityCase{".5Ki", 512}, QuantityCase{"1500m", 2},
                                         QuantityCase{"0", 0}, QuantityCase{"", -1}, QuantityCase{"-1Gi", -1},
                                         QuantityCase{"10GB", -1}, QuantityCase{"Gi", -1},
                                         QuantityCase{"10 Gi", -1}, QuantityCase{"9Ei", -1},
                                         QuantityCase{"1e40", -1}, QuantityCase{"1e-3", 1},
                                         QuantityCase{"1e999999", -1},
                                         QuantityCase{"999999999999999999999999", -1},
                                         QuantityCase{"1" + std::string(80, '0'), -1}));

TEST(TimeTest, Rfc3339) {
  EXPECT_EQ(Rfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(Rfc3339(1767323045), "2026-01-02T03:04:05Z");
  EXPECT_EQ(NowRfc3339().size(), 20u);
}

TEST(TimeTest, ParseRfc3339RoundTripsAndRefusesOtherText) {
  EXPECT_EQ(*ParseRfc3339("2026-01-02T03:04:05Z"), 1767323045);
  EXPECT_EQ(*ParseRfc3339("2026-01-02T03:04:05.123456Z"), 1767323045);  // a MicroTime
  EXPECT_EQ(*ParseRfc3339(Rfc3339(1800000000)), 1800000000);
  for (const char* bad :
       {"", "2026-01-02", "2026-01-02T03:04:05", "2026-01-02T03:04:05+01:00", "yesterday"}) {
    EXPECT_FALSE(ParseRfc3339(bad).ok()) << bad;
  }
}

TEST(NamesTest, RolesRoundTrip) {
  for (auto r : {MemberRole::kNone, MemberRole::kLeader, MemberRole::kVoter, MemberRole::kLearner}) {
    auto back = ParseMemberRole(MemberRoleName(r));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, r);
  }
  EXPECT_EQ(RetentionPolicyName(RetentionPolicy::kDelete), "Delete");
  EXPECT_EQ(MetadataStoreTypeName(MetadataStoreType::kPostgres), "postgres");
}

}  // namespace
}  // namespace dispotify::op::api
