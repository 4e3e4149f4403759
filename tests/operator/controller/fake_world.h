#pragma once
// A simulated world for reconciler tests: the Kubernetes API (FakeKubeApi), a kubelet that runs
// the StatefulSet's pods, and a Raft group that answers the node admin API the way the node does
// (docs/openapi.yaml), with its rules: only the leader changes membership, a learner is promoted
// only once caught up, a member is re-added only as the same incarnation.
//
// Time advances in steps: Kubelet() makes the pods the StatefulSet asks for (and removes the rest),
// Tick() lets learners catch up and drains finish. Test-only, single-threaded use.

#include <cpprest/json.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "operator/api/types.h"
#include "operator/controller/reconciler.h"
#include "operator/nodes/nodes.h"
#include "operator/specs/specs.h"
#include "tests/operator/kube/fake_kube_api.h"

namespace dispotify::op::controller::testing {

using web::json::value;

inline constexpr const char* kNs = "music-ns";
inline constexpr const char* kName = "music";
inline constexpr const char* kUid = "0b6f3b9e-5f4c-4d1e-9a51-2c1d6b7f8a90";

class FakeWorld : public nodes::NodeAdmin {
 public:
  struct Disk {
    std::string uuid;  // the node's incarnation, made with its data directory
  };
  struct GroupMember {
    uint64_t id = 0;
    std::string uuid;
    bool voter = false;
    bool draining = false;
    uint64_t match = 0;
    uint64_t files = 10;
  };

  kube::fakes::FakeKubeApi kube;
  std::map<int, Disk> disks;                      // by ordinal: the PVC's contents
  std::map<int, bool> node_up;                    // by ordinal: its process answers
  std::map<int, std::string> started_with_disk_;  // by ordinal: the disk its node last started on
  std::vector<GroupMember> members;
  std::set<std::string> removed_uuids;  // incarnations removed from the group
  uint64_t leader = 0;
  uint64_t term = 1;
  uint64_t commit = 100;
  uint32_t r = 0;
  int pods_made = 0;
  std::vector<std::string> calls;  // admin calls, in order ("add-learner 4", ...)
  std::string violation;           // the first broken invariant, "" while none

  static kube::ResourceRef Ref(kube::ResourceType t, const std::string& name = "",
                               const std::string& sub = "") {
    return {std::move(t), kNs, name, sub};
  }

  void CreateCluster(int replicas, int r_factor, const std::string& image = "dispotify/node:test") {
    value obj = value::object();
    obj["apiVersion"] = value::string(std::string(api::kApiVersion));
    obj["kind"] = value::string(std::string(api::kKind));
    obj["metadata"]["name"] = value::string(kName);
    obj["metadata"]["namespace"] = value::string(kNs);
    obj["metadata"]["uid"] = value::string(kUid);
    obj["metadata"]["generation"] = value::number(1);
    obj["spec"]["replicas"] = value::number(replicas);
    obj["spec"]["replicationFactor"] = value::number(r_factor);
    obj["spec"]["image"] = value::string(image);
    kube.Put(Ref(DispotifyClusters(), kName), obj);
  }

  value Cluster() { return *kube.Find(Ref(DispotifyClusters(), kName)); }
  api::DispotifyCluster Parsed() { return *api::ParseCluster(Cluster()); }

  void SetSpec(const char* field, value v) {
    value obj = Cluster();
    obj["spec"][field] = std::move(v);
    obj["metadata"]["generation"] = value::number(obj["metadata"]["generation"].as_integer() + 1);
    kube.Put(Ref(DispotifyClusters(), kName), obj);
  }

  int StatefulSetReplicas() {
    auto sts = kube.Find(Ref(kube::StatefulSets(), kName));
    return sts ? sts->at("spec").at("replicas").as_integer() : -1;
  }

  std::string ConfigYaml() {
    auto cm = kube.Find(Ref(kube::ConfigMaps(), std::string(kName) + "-config"));
    return cm ? cm->at("data").at("config.yaml").as_string() : "";
  }

  static std::string Ip(int ordinal) { return "10.0.0." + std::to_string(ordinal + 1); }
  static std::string Url(int ordinal) { return "http://" + Ip(ordinal) + ":8080"; }
  static int OrdinalOfUrl(const std::string& url) {
    const size_t a = std::string("http://10.0.0.").size();
    return std::stoi(url.substr(a, url.find(':', a) - a)) - 1;
  }

  // The kubelet and the StatefulSet controller: pods 0..replicas-1 exist and run with the template
  // of the StatefulSet; a pod started on an empty disk gets a new incarnation.
  void Kubelet() {
    auto sts = kube.Find(Ref(kube::StatefulSets(), kName));
    if (!sts) return;
    const int n = sts->at("spec").at("replicas").as_integer();
    const value templ = sts->at("spec").at("template");
    for (int o = 0; o < 64; ++o) {
      const std::string pod_name = std::string(kName) + "-" + std::to_string(o);
      auto pod = kube.Find(Ref(kube::Pods(), pod_name));
      if (o >= n) {
        if (pod) kube.Remove(Ref(kube::Pods(), pod_name));
        node_up[o] = false;
        continue;
      }
      if (pod) continue;
      if (!disks.contains(o))
        disks[o] = Disk{"uuid-" + std::to_string(o) + "-" + std::to_string(++pods_made)};
      // The volume of a member removed by a scale-down: the node refuses to start on it, unless
      // reset_removed lets it wipe the volume and start as a new incarnation.
      bool refuses = false;
      if (removed_uuids.contains(disks[o].uuid)) {
        if (ConfigYaml().find("reset_removed: true\n") != std::string::npos) {
          disks[o] = Disk{"uuid-" + std::to_string(o) + "-" + std::to_string(++pods_made)};
        } else {
          refuses = true;
        }
      }
      value p = value::object();
      p["apiVersion"] = value::string("v1");
      p["kind"] = value::string("Pod");
      p["metadata"] = templ.at("metadata");
      p["metadata"]["name"] = value::string(pod_name);
      p["metadata"]["namespace"] = value::string(kNs);
      p["metadata"]["uid"] = value::string("pod-uid-" + std::to_string(++pods_made));
      p["status"]["podIP"] = value::string(Ip(o));
      p["status"]["conditions"][0]["type"] = value::string("Ready");
      p["status"]["conditions"][0]["status"] = value::string("True");
      p["status"]["containerStatuses"][0]["name"] = value::string("node");
      p["status"]["containerStatuses"][0]["state"]["running"] = value::object();
      if (refuses) p["status"]["containerStatuses"][0]["state"] = value::object();
      kube.Put(Ref(kube::Pods(), pod_name), p);
      node_up[o] = !refuses;
      // What the node does on start (node/server/config.h): the bootstrap node creates a one-member
      // group on an empty disk; with join it waits to be added; with neither (bootstrap_node_id 0
      // means "off") it creates a group of its own, which must never happen in a cluster.
      const std::string config = ConfigYaml();
      const bool fresh = started_with_disk_[o] != disks[o].uuid;
      started_with_disk_[o] = disks[o].uuid;
      if (o == 0 && members.empty() && config.find("bootstrap_node_id: 1\n") != std::string::npos) {
        members.push_back({.id = 1, .uuid = disks[0].uuid, .voter = true, .match = commit});
        leader = 1;
        r = 3;
      } else if (fresh && config.find("bootstrap_node_id: ") == std::string::npos &&
                 config.find("join: true\n") == std::string::npos && violation.empty()) {
        violation =
            "pod " + std::to_string(o) + " started with neither bootstrap_node_id nor join: a second group";
      }
    }
  }

  // The pod's disk is lost and its pod restarted: a new incarnation of the same node id.
  void WipeAndRestart(int ordinal) {
    disks.erase(ordinal);
    kube.Remove(Ref(kube::Pods(), std::string(kName) + "-" + std::to_string(ordinal)));
    node_up[ordinal] = false;
    Kubelet();
  }

  void Tick() {
    commit += 5;
    for (auto& m : members) {
      const int o = static_cast<int>(m.id) - 1;
      if (node_up[o] && disks.contains(o) && disks[o].uuid == m.uuid) m.match = commit;
      if (m.draining) m.files = 0;
    }
    if (leader != 0 && !node_up[static_cast<int>(leader) - 1]) ElectAnother();
    CheckInvariants();
  }

  void CheckInvariants() {
    if (!violation.empty() || members.empty()) return;
    int voters = 0, alive = 0;
    for (const auto& m : members) {
      if (!m.voter) continue;
      ++voters;
      const int o = static_cast<int>(m.id) - 1;
      if (node_up[o] && disks.contains(o) && disks[o].uuid == m.uuid) ++alive;
      // A member's pod is never removed by a scale-down while it is a member.
      if (o >= StatefulSetReplicas())
        violation = "the StatefulSet dropped the pod of member " + std::to_string(m.id);
    }
    if (alive < voters / 2 + 1)
      violation = "quorum lost: " + std::to_string(alive) + " of " + std::to_string(voters) + " voters alive";
  }

  // --- NodeAdmin, as the node answers ---
  Result<nodes::NodeStatus> GetStatus(const std::string& url) override {
    const int o = OrdinalOfUrl(url);
    if (!node_up[o]) return Status::Unavailable("connection refused");
    nodes::NodeStatus s;
    s.node_id = static_cast<uint64_t>(o) + 1;
    s.node_uuid = disks[o].uuid;
    s.cluster_id = kUid;
    s.version = "test";
    const GroupMember* me = Find(s.node_id);
    const bool member = me != nullptr && me->uuid == s.node_uuid;
    s.role = member && leader == s.node_id ? "leader" : "follower";
    s.term = term;
    s.leader_id = member ? leader : 0;
    s.commit_index = member ? commit : 0;
    s.replication_factor = r;
    if (member) {
      for (const auto& m : members) {
        const int mo = static_cast<int>(m.id) - 1;
        s.members.push_back({.node_id = m.id,
                             .address = "music-" + std::to_string(mo) + ".music-peers:7000",
                             .role = m.id == leader ? "leader" : (m.voter ? "voter" : "learner"),
                             .healthy = node_up[mo] && disks[mo].uuid == m.uuid,
                             .draining = m.draining,
                             .match_index = m.match,
                             .node_uuid = m.uuid,
                             .files = m.files});
      }
      if (leader == s.node_id) s.under_replicated = 0;
    }
    return s;
  }

  Status AddLearner(const std::string& url, uint64_t id, const std::string&,
                    const std::string& uuid) override {
    DISPOTIFY_RETURN_IF_ERROR(AtLeader(url));
    calls.push_back("add-learner " + std::to_string(id));
    if (const GroupMember* m = Find(id)) {
      return m->uuid == uuid ? Status::Ok()
                             : Status::Aborted("node " + std::to_string(id) +
                                               " is a member as another incarnation: remove it first");
    }
    members.push_back({.id = id, .uuid = uuid, .voter = false, .match = 0});
    return Status::Ok();
  }
  Status Promote(const std::string& url, uint64_t id) override {
    DISPOTIFY_RETURN_IF_ERROR(AtLeader(url));
    calls.push_back("promote " + std::to_string(id));
    GroupMember* m = Find(id);
    if (m == nullptr) return Status::NotFound("no member " + std::to_string(id));
    if (m->match + 64 < commit) return Status::FailedPrecondition("not caught up");
    m->voter = true;
    CheckInvariants();
    return Status::Ok();
  }
  Status RemoveMember(const std::string& url, uint64_t id) override {
    DISPOTIFY_RETURN_IF_ERROR(AtLeader(url));
    calls.push_back("remove " + std::to_string(id));
    for (const auto& m : members) {
      if (m.id == id) removed_uuids.insert(m.uuid);
    }
    std::erase_if(members, [&](const GroupMember& m) { return m.id == id; });
    if (leader == id) ElectAnother();
    CheckInvariants();
    return Status::Ok();
  }
  Status Drain(const std::string& url, uint64_t id) override {
    DISPOTIFY_RETURN_IF_ERROR(AtLeader(url));
    calls.push_back("drain " + std::to_string(id));
    if (GroupMember* m = Find(id)) m->draining = true;
    return Status::Ok();
  }
  Status Undrain(const std::string& url, uint64_t id) override {
    DISPOTIFY_RETURN_IF_ERROR(AtLeader(url));
    calls.push_back("undrain " + std::to_string(id));
    if (GroupMember* m = Find(id)) m->draining = false;
    return Status::Ok();
  }
  Status TransferLeadership(const std::string& url, uint64_t) override {
    DISPOTIFY_RETURN_IF_ERROR(AtLeader(url));
    calls.push_back("transfer-leadership");
    ElectAnother();
    return Status::Ok();
  }
  Status SetReplicationFactor(const std::string& url, uint32_t factor) override {
    DISPOTIFY_RETURN_IF_ERROR(AtLeader(url));
    calls.push_back("set-r " + std::to_string(factor));
    r = factor;
    return Status::Ok();
  }

  // A NodeAdmin handle for the reconciler (which owns what its factory returns).
  struct Handle : nodes::NodeAdmin {
    explicit Handle(FakeWorld* world) : w(world) {}
    FakeWorld* w;
    Result<nodes::NodeStatus> GetStatus(const std::string& u) override { return w->GetStatus(u); }
    Status AddLearner(const std::string& u, uint64_t id, const std::string& a,
                      const std::string& x) override {
      return w->AddLearner(u, id, a, x);
    }
    Status Promote(const std::string& u, uint64_t id) override { return w->Promote(u, id); }
    Status RemoveMember(const std::string& u, uint64_t id) override { return w->RemoveMember(u, id); }
    Status Drain(const std::string& u, uint64_t id) override { return w->Drain(u, id); }
    Status Undrain(const std::string& u, uint64_t id) override { return w->Undrain(u, id); }
    Status TransferLeadership(const std::string& u, uint64_t t) override {
      return w->TransferLeadership(u, t);
    }
    Status SetReplicationFactor(const std::string& u, uint32_t f) override {
      return w->SetReplicationFactor(u, f);
    }
  };

 private:
  GroupMember* Find(uint64_t id) {
    for (auto& m : members) {
      if (m.id == id) return &m;
    }
    return nullptr;
  }
  Status AtLeader(const std::string& url) {
    const int o = OrdinalOfUrl(url);
    if (!node_up[o]) return Status::Unavailable("connection refused");
    if (leader != static_cast<uint64_t>(o) + 1) return Status::Unavailable("not the leader");
    return Status::Ok();
  }
  void ElectAnother() {
    const uint64_t old = leader;
    leader = 0;
    for (const auto& m : members) {
      const int o = static_cast<int>(m.id) - 1;
      if (m.voter && m.id != old && node_up[o] && disks[o].uuid == m.uuid) leader = std::max(leader, m.id);
    }
    ++term;
  }
};

}  // namespace dispotify::op::controller::testing
