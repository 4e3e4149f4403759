// The reconciler against a simulated world (fake_world.h): bootstrap, scaling both ways, a member
// back with an empty disk, a rolling restart, and an operator that dies at any write, with the
// world's invariants (quorum kept, no member's pod dropped) checked after every step.

#include "operator/controller/reconciler.h"

#include <gtest/gtest.h>

#include <random>

#include "operator/certs/certs.h"
#include "tests/operator/controller/fake_world.h"

namespace dispotify::op::controller::testing {
namespace {

class ReconcilerTest : public ::testing::Test {
 protected:
  FakeWorld world;
  kube::EventRecorder events{&world.kube, "operator-test"};
  int64_t now = 1'800'000'000;
  // Each write asks may_act; a test makes some of them fail, as a process dying at that point.
  std::function<bool()> may_act = [] { return true; };
  std::unique_ptr<Reconciler> reconciler = Make();

  std::unique_ptr<Reconciler> Make() {
    ReconcilerDeps deps;
    deps.kube = &world.kube;
    deps.events = &events;
    deps.node_admin = [this](const std::string&) { return std::make_unique<FakeWorld::Handle>(&world); };
    deps.now = [this] { return now; };
    deps.may_act = [this] { return may_act(); };
    deps.new_token = [] { return std::string("token-1"); };
    return std::make_unique<Reconciler>(std::move(deps), ReconcilerOptions{});
  }

  // One step of the world: a pass (whose failure is only retried), the kubelet, the group.
  void Step() {
    auto r = reconciler->Reconcile(kNs, kName);
    last = r.ok() ? r->summary : r.status().ToString();
    world.Kubelet();
    world.Tick();
    now += 2;
  }

  // Steps until the status says Running with `voters` voters and R, at most `steps`.
  // With `also`, that must hold too.
  bool Converge(int voters, int r, int steps = 200, const std::function<bool()>& also = nullptr) {
    for (int i = 0; i < steps; ++i) {
      Step();
      if (!world.violation.empty()) return false;
      auto c = world.Parsed();
      if (c.status.phase == "Running" && c.status.replicas == voters && c.status.replication_factor == r &&
          !c.status.operation && world.StatefulSetReplicas() == voters && (!also || also()))
        return true;
    }
    return false;
  }

  std::string Describe() {
    auto c = world.Parsed();
    std::string out =
        "phase " + c.status.phase + ", last pass: " + last + ", violation: " + world.violation + ", members:";
    for (const auto& m : world.members) {
      out += " " + std::to_string(m.id) + (m.voter ? "v" : "l") + (m.id == world.leader ? "*" : "");
    }
    if (c.status.operation) out += ", operation " + c.status.operation->type + "/" + c.status.operation->step;
    return out;
  }

  std::string last;
};

TEST_F(ReconcilerTest, BootstrapsThreeMembersOneAtATime) {
  world.CreateCluster(3, 3);
  ASSERT_TRUE(Converge(3, 3)) << Describe();
  auto c = world.Parsed();
  EXPECT_TRUE(c.status.bootstrapped);
  EXPECT_EQ(c.status.leader, "music-0");
  ASSERT_EQ(c.status.members.size(), 3u);
  for (const auto& m : c.status.members) {
    EXPECT_TRUE(m.healthy) << m.pod;
    EXPECT_TRUE(m.caught_up) << m.pod;
  }
  EXPECT_TRUE(api::IsConditionTrue(c.status.conditions, "Ready"));
  EXPECT_TRUE(api::IsConditionTrue(c.status.conditions, "ReplicationHealthy"));
  EXPECT_FALSE(api::IsConditionTrue(c.status.conditions, "Degraded"));
  // Once the group exists no node may create another.
  EXPECT_NE(world.ConfigYaml().find("join: true\n"), std::string::npos) << world.ConfigYaml();
  // Each member was added as a learner and promoted, never straight to voter.
  EXPECT_EQ(world.calls,
            (std::vector<std::string>{"add-learner 2", "promote 2", "add-learner 3", "promote 3"}));
  // The owned objects exist, owned by the custom resource.
  for (auto ref :
       {FakeWorld::Ref(kube::Services(), "music"), FakeWorld::Ref(kube::Services(), "music-peers"),
        FakeWorld::Ref(kube::Secrets(), "music-admin"), FakeWorld::Ref(kube::PodDisruptionBudgets(), "music"),
        FakeWorld::Ref(kube::NetworkPolicies(), "music-peers")}) {
    auto obj = world.kube.Find(ref);
    ASSERT_TRUE(obj) << kube::Describe(ref);
    EXPECT_EQ(obj->at("metadata").at("ownerReferences")[0].at("uid").as_string(), kUid);
  }
}

TEST_F(ReconcilerTest, ScalesUpToFiveAndBackToThreeWithoutLosingQuorum) {
  world.CreateCluster(3, 3);
  ASSERT_TRUE(Converge(3, 3)) << Describe();
  world.SetSpec("replicas", web::json::value::number(5));
  ASSERT_TRUE(Converge(5, 3)) << Describe();
  world.calls.clear();
  world.SetSpec("replicas", web::json::value::number(3));
  ASSERT_TRUE(Converge(3, 3)) << Describe();
  // Highest ordinal first, each drained before it leaves.
  EXPECT_EQ(world.calls, (std::vector<std::string>{"drain 5", "remove 5", "drain 4", "remove 4"}));
  EXPECT_EQ(world.Parsed().status.observed_generation, 3);
  // Up again: the pods come back on the volumes the scale-down kept, which belonged to removed
  // members; they start afresh as new incarnations.
  const std::string old_uuid = world.disks[4].uuid;
  world.SetSpec("replicas", web::json::value::number(5));
  ASSERT_TRUE(Converge(5, 3)) << Describe();
  EXPECT_NE(world.disks[4].uuid, old_uuid);
}

TEST_F(ReconcilerTest, TheLeaderLeavesLastAfterHandingOverLeadership) {
  world.CreateCluster(3, 1);
  ASSERT_TRUE(Converge(3, 1)) << Describe();
  ASSERT_TRUE(world.TransferLeadership(FakeWorld::Url(0), 0).ok());  // node 3 leads now
  ASSERT_EQ(world.leader, 3u);
  world.calls.clear();
  world.SetSpec("replicas", web::json::value::number(2));
  ASSERT_TRUE(Converge(2, 1)) << Describe();
  ASSERT_FALSE(world.calls.empty());
  EXPECT_EQ(world.calls.front(), "transfer-leadership");
  EXPECT_NE(world.leader, 3u);
}

TEST_F(ReconcilerTest, RaisesTheReplicationFactorOnlyWithEnoughMembers) {
  world.CreateCluster(3, 3);
  ASSERT_TRUE(Converge(3, 3)) << Describe();
  world.SetSpec("replicas", web::json::value::number(5));
  world.SetSpec("replicationFactor", web::json::value::number(5));
  ASSERT_TRUE(Converge(5, 5)) << Describe();
  EXPECT_EQ(world.calls.back(), "set-r 5");
}

TEST_F(ReconcilerTest, AMemberBackWithAnEmptyDiskIsReplacedNotTrusted) {
  world.CreateCluster(3, 3);
  ASSERT_TRUE(Converge(3, 3)) << Describe();
  const std::string old_uuid = world.members[2].uuid;
  world.calls.clear();
  world.WipeAndRestart(2);
  ASSERT_TRUE(Converge(3, 3, 200, [&] { return world.members.back().uuid != old_uuid; })) << Describe();
  EXPECT_EQ(world.calls, (std::vector<std::string>{"remove 3", "add-learner 3", "promote 3"}));
  EXPECT_NE(world.members.back().uuid, old_uuid);
  EXPECT_EQ(world.members.back().uuid, world.disks[2].uuid);
}

TEST_F(ReconcilerTest, RollsAnImageChangeThroughOnePodAtATimeLeaderLast) {
  world.CreateCluster(3, 3);
  ASSERT_TRUE(Converge(3, 3)) << Describe();
  world.calls.clear();
  world.SetSpec("image", web::json::value::string("dispotify/node:next"));
  int most_down = 0;
  bool done = false;
  for (int i = 0; i < 200 && !done; ++i) {
    Step();
    int down = 0;
    for (int o = 0; o < 3; ++o) down += world.node_up[o] ? 0 : 1;
    most_down = std::max(most_down, down);
    auto c = world.Parsed();
    done = c.status.phase == "Running" && !c.status.operation;
    for (int o = 0; o < 3 && done; ++o) {
      auto pod = world.kube.Find(FakeWorld::Ref(kube::Pods(), "music-" + std::to_string(o)));
      done = pod && pod->at("metadata").at("annotations").at("dispotify.io/restart-hash") ==
                        world.kube.Find(FakeWorld::Ref(kube::StatefulSets(), "music"))
                            ->at("spec")
                            .at("template")
                            .at("metadata")
                            .at("annotations")
                            .at("dispotify.io/restart-hash");
    }
  }
  ASSERT_TRUE(done) << Describe();
  EXPECT_LE(most_down, 1);
  EXPECT_EQ(world.calls, (std::vector<std::string>{"transfer-leadership"}))
      << "the leader moves once, before its restart";
  EXPECT_TRUE(world.violation.empty()) << world.violation;
}

TEST_F(ReconcilerTest, APausedClusterIsLeftAlone) {
  world.CreateCluster(3, 3);
  ASSERT_TRUE(Converge(3, 3)) << Describe();
  world.SetSpec("paused", web::json::value::boolean(true));
  world.SetSpec("replicas", web::json::value::number(5));
  for (int i = 0; i < 10; ++i) Step();
  EXPECT_EQ(world.StatefulSetReplicas(), 3);
  EXPECT_EQ(world.members.size(), 3u);
  EXPECT_EQ(world.Parsed().status.phase, "Paused");
}

TEST_F(ReconcilerTest, ANodeOfAnotherClusterIsNotCounted) {
  world.CreateCluster(1, 1);
  world.Kubelet();
  ASSERT_TRUE(Converge(1, 1)) << Describe();
  // A PVC left by another cluster of the same name: the node reports another cluster_id.
  world.SetSpec("replicas", web::json::value::number(2));
  Step();
  world.Kubelet();
  struct Foreign : FakeWorld::Handle {
    using Handle::Handle;
    Result<nodes::NodeStatus> GetStatus(const std::string& u) override {
      auto s = w->GetStatus(u);
      if (s.ok() && FakeWorld::OrdinalOfUrl(u) == 1) s->cluster_id = "another-cluster";
      return s;
    }
  };
  ReconcilerDeps deps;
  deps.kube = &world.kube;
  deps.events = &events;
  deps.node_admin = [this](const std::string&) { return std::make_unique<Foreign>(&world); };
  deps.now = [this] { return now; };
  reconciler = std::make_unique<Reconciler>(std::move(deps), ReconcilerOptions{});
  for (int i = 0; i < 10; ++i) Step();
  EXPECT_EQ(world.members.size(), 1u) << "a node of another cluster was added";
  bool warned = false;
  for (const auto& e : world.kube.created()) {
    warned |= e.has_field("reason") && e.at("reason").as_string() == "ForeignNode";
  }
  EXPECT_TRUE(warned);
}

// The Secrets' data, decoded.
std::map<std::string, std::string> SecretData(FakeWorld& world, const std::string& name) {
  std::map<std::string, std::string> out;
  auto secret = world.kube.Find(FakeWorld::Ref(kube::Secrets(), name));
  if (!secret || !secret->has_field("data")) return out;
  for (const auto& [k, v] : secret->at("data").as_object()) out[k] = *kube::DecodeBase64(v.as_string());
  return out;
}

bool HasEvent(FakeWorld& world, const std::string& reason) {
  for (const auto& e : world.kube.created()) {
    if (e.has_field("reason") && e.at("reason").as_string() == reason) return true;
  }
  return false;
}

TEST_F(ReconcilerTest, MakesTheCaOnceAndAPairPerPodAndRenewsThemAtTwoThirdsOfTheirLifetime) {
  world.CreateCluster(3, 3);
  ASSERT_TRUE(Converge(3, 3)) << Describe();
  const auto ca = SecretData(world, "music-ca");
  ASSERT_EQ(ca.size(), 2u);
  auto parsed_ca = certs::ParseCa(ca.at("tls.crt"), ca.at("tls.key"), kUid);
  ASSERT_TRUE(parsed_ca.ok()) << parsed_ca.status().ToString();
  EXPECT_TRUE(HasEvent(world, "CACreated"));
  const auto first = SecretData(world, "music-tls");
  ASSERT_EQ(first.size(), 7u);  // ca.crt and a pair per pod
  EXPECT_EQ(first.at("ca.crt"), ca.at("tls.crt"));
  int64_t due = 0;
  for (int32_t o = 0; o < 3; ++o) {
    const auto facts =
        certs::InspectPodCertificate(*parsed_ca, world.Parsed().metadata, o, specs::Settings{},
                                     first.at(specs::TlsCertKey(o)), first.at(specs::TlsKeyKey(o)));
    EXPECT_EQ(facts.problem, "") << o;
    const auto d = plan::DecideCertificate(facts, now);
    ASSERT_EQ(d.verdict, plan::CertificateVerdict::kKeep);
    due = due == 0 ? d.renew_at : std::min(due, d.renew_at);
  }
  // The pass asks to be run again no later than the first renewal; 90-day certificates leave the
  // usual resync alone.
  auto r = reconciler->Reconcile(kNs, kName);
  ASSERT_TRUE(r.ok());
  EXPECT_LE(r->requeue_after, std::chrono::seconds(due - now));
  EXPECT_EQ(SecretData(world, "music-tls"), first) << "nothing due: the Secret stays as it is";

  // At the renewal time every pair is replaced, under the same CA, and no pod is restarted.
  const int pods_before = world.pods_made;
  now = due;
  Step();
  const auto renewed = SecretData(world, "music-tls");
  EXPECT_EQ(SecretData(world, "music-ca"), ca);
  EXPECT_EQ(renewed.at("ca.crt"), first.at("ca.crt"));
  for (int32_t o = 0; o < 3; ++o) {
    EXPECT_NE(renewed.at(specs::TlsCertKey(o)), first.at(specs::TlsCertKey(o))) << o;
    EXPECT_NE(renewed.at(specs::TlsKeyKey(o)), first.at(specs::TlsKeyKey(o))) << o;
  }
  EXPECT_TRUE(HasEvent(world, "CertificatesIssued"));
  for (int i = 0; i < 5; ++i) Step();
  EXPECT_EQ(world.pods_made, pods_before) << "a renewal must not restart pods";
  EXPECT_EQ(SecretData(world, "music-tls"), renewed);

  // A new pod gets a pair before its pod exists; a shrink drops the pair of the pod that left.
  world.SetSpec("replicas", web::json::value::number(4));
  ASSERT_TRUE(Converge(4, 3)) << Describe();
  EXPECT_TRUE(SecretData(world, "music-tls").contains("node-3.key"));
  world.SetSpec("replicas", web::json::value::number(3));
  ASSERT_TRUE(Converge(3, 3)) << Describe();
  EXPECT_FALSE(SecretData(world, "music-tls").contains("node-3.key"));
  EXPECT_EQ(SecretData(world, "music-ca"), ca);
}

TEST_F(ReconcilerTest, AShortLifetimeBringsThePassBackAtTheRenewal) {
  ReconcilerDeps deps;
  deps.kube = &world.kube;
  deps.events = &events;
  deps.node_admin = [this](const std::string&) { return std::make_unique<FakeWorld::Handle>(&world); };
  deps.now = [this] { return now; };
  ReconcilerOptions options;
  options.certificates.leaf_lifetime = std::chrono::seconds(120);
  reconciler = std::make_unique<Reconciler>(std::move(deps), options);
  world.CreateCluster(1, 1);
  ASSERT_TRUE(Converge(1, 1)) << Describe();
  auto r = reconciler->Reconcile(kNs, kName);
  ASSERT_TRUE(r.ok());
  // Issued within the last few passes: due 2/3 into [t - 15 s, t + 120 s], well under the resync.
  EXPECT_LE(r->requeue_after, std::chrono::seconds(75));
  EXPECT_GE(r->requeue_after, std::chrono::seconds(1));
}

TEST_F(ReconcilerTest, AnUnusableCaIsNeverReplacedAndNothingIsIssuedFromIt) {
  world.CreateCluster(1, 1);
  ASSERT_TRUE(Converge(1, 1)) << Describe();
  const auto tls = SecretData(world, "music-tls");
  value ca = *world.kube.Find(FakeWorld::Ref(kube::Secrets(), "music-ca"));
  ca["data"]["tls.key"] = value::string("bm90IGEga2V5");  // "not a key"
  world.kube.Put(FakeWorld::Ref(kube::Secrets(), "music-ca"), ca);
  auto r = reconciler->Reconcile(kNs, kName);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(HasEvent(world, "CAUnusable"));
  EXPECT_EQ(
      world.kube.Find(FakeWorld::Ref(kube::Secrets(), "music-ca"))->at("data").at("tls.key").as_string(),
      "bm90IGEga2V5");
  EXPECT_EQ(SecretData(world, "music-tls"), tls);
  // Deleting it is how a person starts over: a new CA, and every pair reissued from it.
  ASSERT_TRUE(world.kube.Delete(FakeWorld::Ref(kube::Secrets(), "music-ca"), {}).ok());
  ASSERT_TRUE(reconciler->Reconcile(kNs, kName).ok());
  const auto fresh = SecretData(world, "music-tls");
  EXPECT_NE(fresh.at("ca.crt"), tls.at("ca.crt"));
  EXPECT_NE(fresh.at("node-0.crt"), tls.at("node-0.crt"));
  EXPECT_EQ(fresh.at("ca.crt"), SecretData(world, "music-ca").at("tls.crt"));
}

// The operator dies at random writes (the journal, an owned object, a node call, the status) and
// starts again from what it finds: the cluster still converges, and no step ever breaks quorum or
// drops a member's pod.
class ReconcilerCrashTest : public ReconcilerTest, public ::testing::WithParamInterface<uint32_t> {};

TEST_P(ReconcilerCrashTest, ConvergesWhateverWriteTheOperatorDiesAt) {
  std::mt19937 rng(GetParam());
  may_act = [&rng] { return std::uniform_int_distribution<int>(0, 9)(rng) >= 3; };
  world.CreateCluster(3, 3);
  ASSERT_TRUE(Converge(3, 3, 600)) << Describe();
  world.SetSpec("replicas", web::json::value::number(5));
  world.SetSpec("replicationFactor", web::json::value::number(4));
  ASSERT_TRUE(Converge(5, 4, 600)) << Describe();
  world.SetSpec("replicationFactor", web::json::value::number(3));
  world.SetSpec("replicas", web::json::value::number(3));
  ASSERT_TRUE(Converge(3, 3, 600)) << Describe();
  world.WipeAndRestart(1);
  auto replaced = [&] {
    for (const auto& m : world.members) {
      if (m.id == 2) return m.voter && m.uuid == world.disks[1].uuid;
    }
    return false;
  };
  ASSERT_TRUE(Converge(3, 3, 600, replaced)) << Describe();
}

INSTANTIATE_TEST_SUITE_P(Seeds, ReconcilerCrashTest, ::testing::Range(1u, 31u));

}  // namespace
}  // namespace dispotify::op::controller::testing

namespace dispotify::op::controller {
namespace {

TEST(CrashPointTest, MatchesOneStepOfOneTypeOrOfAny) {
  EXPECT_TRUE(CrashPointMatches("add-member/promote", "add-member", "promote"));
  EXPECT_FALSE(CrashPointMatches("add-member/promote", "replace-member", "promote"));
  EXPECT_TRUE(CrashPointMatches("*/promote", "replace-member", "promote"));
  EXPECT_FALSE(CrashPointMatches("*/promote", "add-member", "add-learner"));
  EXPECT_FALSE(CrashPointMatches("", "add-member", "promote"));
  EXPECT_FALSE(CrashPointMatches("promote", "add-member", "promote"));
}

}  // namespace
}  // namespace dispotify::op::controller
