// The next safe step, as a table: every step of scale up/down, R changes, upgrades, the return of
// an empty disk, and every refusal. Each row is an observed state and the one decision expected.
#include "operator/plan/plan.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

namespace dispotify::op::plan {
namespace {

std::string Uuid(uint64_t id, int incarnation = 0) {
  return "uuid-" + std::to_string(id) + (incarnation ? "-" + std::to_string(incarnation) : "");
}

Pod PodFor(int ordinal, int incarnation = 0) {
  const uint64_t id = static_cast<uint64_t>(ordinal) + 1;
  return Pod{.ordinal = ordinal,
             .exists = true,
             .running = true,
             .ready = true,
             .up_to_date = true,
             .node_uuid = Uuid(id, incarnation),
             .peer_address = "m-" + std::to_string(ordinal) + ".peers:7000"};
}

// A healthy bootstrapped cluster: `members` voters (node ids 1..members, node 1 leads), one Ready
// pod per member, R = min(3, members), the spec matching.
Observed Healthy(int members) {
  Observed o;
  o.bootstrapped = true;
  o.now_s = 1000;
  o.desired.replicas = members;
  o.desired.replication_factor = static_cast<uint32_t>(std::min(3, members));
  Group g;
  g.leader_id = 1;
  g.commit_index = 500;
  g.replication_factor = o.desired.replication_factor;
  for (int i = 0; i < members; ++i) {
    const uint64_t id = static_cast<uint64_t>(i) + 1;
    g.members.push_back(Member{.node_id = id,
                               .node_uuid = Uuid(id),
                               .voter = true,
                               .healthy = true,
                               .match_index = 500,
                               .files = 10});
  }
  o.group = g;
  for (int i = 0; i < members; ++i) o.pods.push_back(PodFor(i));
  return o;
}

Member* M(Observed& o, uint64_t id) {
  for (auto& m : o.group->members)
    if (m.node_id == id) return &m;
  return nullptr;
}
Pod* P(Observed& o, int ordinal) {
  for (auto& p : o.pods)
    if (p.ordinal == ordinal) return &p;
  return nullptr;
}
void AddLearner(Observed& o, uint64_t id, uint64_t match) {
  o.group->members.push_back(Member{.node_id = id,
                                    .node_uuid = Uuid(id),
                                    .voter = false,
                                    .healthy = true,
                                    .match_index = match,
                                    .files = 0});
}
Operation Op(const char* type, uint64_t member, std::string step, uint32_t value = 0) {
  return Operation{.type = type,
                   .member = member,
                   .node_uuid = member ? Uuid(member) : "",
                   .step = std::move(step),
                   .value = value,
                   .step_since_s = 900};
}

struct Row {
  std::string name;
  std::function<Observed()> observed;
  ActionType action;
  uint64_t node = 0;    // the action's node id (0: not checked)
  std::string op_type;  // the journal after the decision ("" = none)
  std::string op_step;
  std::string refusal;            // reason, "" = none
  int statefulset_replicas = -1;  // -1: not checked
};

std::vector<Row> Rows() {
  std::vector<Row> rows;
  auto add = [&](Row r) { rows.push_back(std::move(r)); };

  // Bring-up.
  add({"paused does nothing",
       [] {
         auto o = Healthy(3);
         o.desired.paused = true;
         o.desired.replicas = 5;
         return o;
       },
       ActionType::kWait});
  add({"not bootstrapped, no leader: wait for the first member",
       [] {
         auto o = Healthy(3);
         o.bootstrapped = false;
         o.group.reset();
         return o;
       },
       ActionType::kWait, 0, "", "", "", 3});
  add({"not bootstrapped, a leader: record it",
       [] {
         auto o = Healthy(1);
         o.bootstrapped = false;
         o.desired.replicas = 3;
         return o;
       },
       ActionType::kMarkBootstrapped});
  add({"grow from the bootstrap member: add node 2",
       [] {
         auto o = Healthy(1);
         o.desired.replicas = 3;
         o.desired.replication_factor = 3;
         o.pods.push_back(PodFor(1));
         o.pods.push_back(PodFor(2));
         return o;
       },
       ActionType::kAddLearner, 2, kOpAddMember, "add-learner", "", 3});
  add({"bootstrapped but no leader: wait, never act",
       [] {
         auto o = Healthy(3);
         o.group.reset();
         return o;
       },
       ActionType::kWait, 0, "", "", "", 3});

  // Scale up 3 -> 5.
  add({"scale up: pod 3 not running yet",
       [] {
         auto o = Healthy(3);
         o.desired.replicas = 5;
         return o;
       },
       ActionType::kWait, 0, "", "", "", 5});
  add({"scale up: pod 3 running, add it as a learner",
       [] {
         auto o = Healthy(3);
         o.desired.replicas = 5;
         o.pods.push_back(PodFor(3));
         return o;
       },
       ActionType::kAddLearner, 4, kOpAddMember, "add-learner", "", 5});
  add({"scale up: learner recorded but not in the group yet (crash before the call): retake",
       [] {
         auto o = Healthy(3);
         o.desired.replicas = 5;
         o.pods.push_back(PodFor(3));
         o.operation = Op(kOpAddMember, 4, "add-learner");
         return o;
       },
       ActionType::kAddLearner, 4, kOpAddMember, "add-learner"});
  add({"scale up: learner behind: wait",
       [] {
         auto o = Healthy(3);
         o.desired.replicas = 5;
         o.pods.push_back(PodFor(3));
         AddLearner(o, 4, 10);
         o.operation = Op(kOpAddMember, 4, "add-learner");
         return o;
       },
       ActionType::kWait, 0, kOpAddMember, "add-learner"});
  add({"scale up: a learner that acknowledged nothing is never promoted, even in a young log",
       [] {
         auto o = Healthy(3);
         o.group->commit_index = 8;
         o.desired.replicas = 5;
         o.pods.push_back(PodFor(3));
         AddLearner(o, 4, 0);
         o.operation = Op(kOpAddMember, 4, "add-learner");
         return o;
       },
       ActionType::kWait, 0, kOpAddMember, "add-learner"});
  add({"scale up: the learner's pod came back as another incarnation: the add ends, a replace follows",
       [] {
         auto o = Healthy(3);
         o.desired.replicas = 5;
         o.pods.push_back(PodFor(3, 7));
         AddLearner(o, 4, 0);
         o.operation = Op(kOpAddMember, 4, "add-learner");
         return o;
       },
       ActionType::kWait, 0, "", ""});
  add({"scale up: learner caught up: record promote",
       [] {
         auto o = Healthy(3);
         o.desired.replicas = 5;
         o.pods.push_back(PodFor(3));
         AddLearner(o, 4, 499);
         o.operation = Op(kOpAddMember, 4, "add-learner");
         return o;
       },
       ActionType::kPromote, 4, kOpAddMember, "promote"});
  add({"scale up: promote recorded, not yet a voter: retake",
       [] {
         auto o = Healthy(3);
         o.desired.replicas = 5;
         o.pods.push_back(PodFor(3));
         AddLearner(o, 4, 499);
         o.operation = Op(kOpAddMember, 4, "promote");
         return o;
       },
       ActionType::kPromote, 4, kOpAddMember, "promote"});
  add({"scale up: promoted: the operation ends",
       [] {
         auto o = Healthy(4);
         o.desired.replicas = 5;
         o.operation = Op(kOpAddMember, 4, "promote");
         return o;
       },
       ActionType::kWait, 0, "", ""});
  add({"scale up: a learner left by an earlier operation is promoted first",
       [] {
         auto o = Healthy(3);
         o.desired.replicas = 5;
         o.pods.push_back(PodFor(3));
         o.pods.push_back(PodFor(4));
         AddLearner(o, 4, 500);
         return o;
       },
       ActionType::kPromote, 4, kOpAddMember, "promote"});
  add({"scale up: a second change while one is in flight is deferred and said",
       [] {
         auto o = Healthy(3);
         o.desired.replicas = 5;
         o.desired.replication_factor = 2;
         o.pods.push_back(PodFor(3));
         AddLearner(o, 4, 10);
         o.operation = Op(kOpAddMember, 4, "add-learner");
         return o;
       },
       ActionType::kWait, 0, kOpAddMember, "add-learner", "ChangeInFlight"});
  add({"scale up reversed: an unwanted learner is removed",
       [] {
         auto o = Healthy(3);
         o.pods.push_back(PodFor(3));
         AddLearner(o, 4, 10);
         o.operation = Op(kOpAddMember, 4, "add-learner");
         return o;
       },
       ActionType::kRemoveMember, 4, kOpAddMember, "remove-learner", "", 4});
  add({"scale up reversed before the learner was added: nothing to undo",
       [] {
         auto o = Healthy(3);
         o.pods.push_back(PodFor(3));
         o.operation = Op(kOpAddMember, 4, "add-learner");
         return o;
       },
       ActionType::kWait, 0, "", ""});
  add({"add: the pod came back as another incarnation before the call: start over",
       [] {
         auto o = Healthy(3);
         o.desired.replicas = 4;
         o.pods.push_back(PodFor(3, 1));
         o.operation = Op(kOpAddMember, 4, "add-learner");
         return o;
       },
       ActionType::kWait, 0, "", ""});

  // Scale down 5 -> 3.
  add({"scale down: drain the highest member first",
       [] {
         auto o = Healthy(5);
         o.desired.replicas = 3;
         return o;
       },
       ActionType::kDrain, 5, kOpRemoveMember, "drain", "", 5});
  add({"scale down: the leaving member leads: transfer leadership first",
       [] {
         auto o = Healthy(5);
         o.desired.replicas = 3;
         o.group->leader_id = 5;
         return o;
       },
       ActionType::kTransferLeadership, 5, kOpRemoveMember, "transfer-leadership"});
  add({"scale down: leadership moved: drain",
       [] {
         auto o = Healthy(5);
         o.desired.replicas = 3;
         o.operation = Op(kOpRemoveMember, 5, "transfer-leadership");
         return o;
       },
       ActionType::kDrain, 5, kOpRemoveMember, "drain"});
  add({"scale down: draining, files left: wait",
       [] {
         auto o = Healthy(5);
         o.desired.replicas = 3;
         M(o, 5)->draining = true;
         o.operation = Op(kOpRemoveMember, 5, "drain");
         return o;
       },
       ActionType::kWait, 0, kOpRemoveMember, "drain"});
  add({"scale down: drained but files under-replicated: wait",
       [] {
         auto o = Healthy(5);
         o.desired.replicas = 3;
         M(o, 5)->draining = true;
         M(o, 5)->files = 0;
         o.group->under_replicated = 2;
         o.operation = Op(kOpRemoveMember, 5, "drain");
         return o;
       },
       ActionType::kWait, 0, kOpRemoveMember, "drain"});
  add({"scale down: drained: record remove",
       [] {
         auto o = Healthy(5);
         o.desired.replicas = 3;
         M(o, 5)->draining = true;
         M(o, 5)->files = 0;
         o.operation = Op(kOpRemoveMember, 5, "drain");
         return o;
       },
       ActionType::kRemoveMember, 5, kOpRemoveMember, "remove", "", 5});
  add({"scale down: remove recorded, still a member (crash before the call): retake",
       [] {
         auto o = Healthy(5);
         o.desired.replicas = 3;
         M(o, 5)->draining = true;
         M(o, 5)->files = 0;
         o.operation = Op(kOpRemoveMember, 5, "remove");
         return o;
       },
       ActionType::kRemoveMember, 5, kOpRemoveMember, "remove"});
  add({"scale down: removed: done, the StatefulSet may shrink to the remaining members",
       [] {
         auto o = Healthy(4);
         o.desired.replicas = 3;
         o.pods.push_back(PodFor(4));
         o.operation = Op(kOpRemoveMember, 5, "remove");
         return o;
       },
       ActionType::kWait, 0, "", "", "", 4});
  add({"scale down: then the next member, node 4",
       [] {
         auto o = Healthy(4);
         o.desired.replicas = 3;
         o.pods.push_back(PodFor(4));
         return o;
       },
       ActionType::kDrain, 4, kOpRemoveMember, "drain", "", 4});
  add({"scale down: the leader regained leadership during the drain: transfer again",
       [] {
         auto o = Healthy(5);
         o.desired.replicas = 3;
         M(o, 5)->draining = true;
         o.group->leader_id = 5;
         o.operation = Op(kOpRemoveMember, 5, "drain");
         return o;
       },
       ActionType::kTransferLeadership, 5, kOpRemoveMember, "transfer-leadership"});
  add({"scale down reversed while draining: undrain",
       [] {
         auto o = Healthy(5);
         M(o, 5)->draining = true;
         o.operation = Op(kOpRemoveMember, 5, "drain");
         return o;
       },
       ActionType::kUndrain, 5, kOpRemoveMember, "undrain"});
  add({"scale down reversed: undrained: done",
       [] {
         auto o = Healthy(5);
         o.operation = Op(kOpRemoveMember, 5, "undrain");
         return o;
       },
       ActionType::kWait, 0, "", ""});
  add({"scale down refused: two of five voters down, removing a healthy one loses quorum",
       [] {
         auto o = Healthy(5);
         o.desired.replicas = 4;
         M(o, 2)->healthy = false;
         M(o, 3)->healthy = false;
         return o;
       },
       ActionType::kWait, 0, "", "", "WouldLoseQuorum"});
  add({"scale down refused mid-operation: quorum gone before the remove",
       [] {
         auto o = Healthy(5);
         o.desired.replicas = 4;
         M(o, 5)->draining = true;
         M(o, 5)->files = 0;
         M(o, 2)->healthy = false;
         M(o, 3)->healthy = false;
         o.operation = Op(kOpRemoveMember, 5, "drain");
         return o;
       },
       ActionType::kWait, 0, kOpRemoveMember, "drain", "WouldLoseQuorum"});
  add({"scale down refused: below R",
       [] {
         auto o = Healthy(3);
         o.desired.replicas = 2;
         o.desired.replication_factor = 3;
         return o;
       },
       ActionType::kWait, 0, "", "", "BelowReplicationFactor"});
  add({"scale down with R: R is lowered first",
       [] {
         auto o = Healthy(3);
         o.desired.replicas = 2;
         o.desired.replication_factor = 2;
         return o;
       },
       ActionType::kSetReplicationFactor, 0, kOpSetReplicationFactor, "set"});
  add({"membership unknown: the StatefulSet never shrinks",
       [] {
         auto o = Healthy(5);
         o.desired.replicas = 3;
         o.group.reset();
         return o;
       },
       ActionType::kWait, 0, "", "", "", 5});

  // Replication factor.
  add({"R 3 -> 2",
       [] {
         auto o = Healthy(3);
         o.desired.replication_factor = 2;
         return o;
       },
       ActionType::kSetReplicationFactor, 0, kOpSetReplicationFactor, "set"});
  add({"R set recorded, not applied yet: retake",
       [] {
         auto o = Healthy(3);
         o.desired.replication_factor = 2;
         o.operation = Op(kOpSetReplicationFactor, 0, "set", 2);
         return o;
       },
       ActionType::kSetReplicationFactor, 0, kOpSetReplicationFactor, "set"});
  add({"R applied: done",
       [] {
         auto o = Healthy(3);
         o.desired.replication_factor = 2;
         o.group->replication_factor = 2;
         o.operation = Op(kOpSetReplicationFactor, 0, "set", 2);
         return o;
       },
       ActionType::kWait, 0, "", ""});
  add({"R 2 -> 3",
       [] {
         auto o = Healthy(3);
         o.group->replication_factor = 2;
         return o;
       },
       ActionType::kSetReplicationFactor, 0, kOpSetReplicationFactor, "set"});
  add({"R above the members is refused",
       [] {
         auto o = Healthy(2);
         o.desired.replication_factor = 3;
         return o;
       },
       ActionType::kWait, 0, "", "", "NotEnoughMembers"});
  add({"R applied but files under-replicated: nothing to do (the condition reports it)",
       [] {
         auto o = Healthy(3);
         o.group->under_replicated = 7;
         return o;
       },
       ActionType::kNone});

  // Empty disk.
  add({"a pod back with an empty disk: remove the old incarnation",
       [] {
         auto o = Healthy(3);
         *P(o, 2) = PodFor(2, 1);
         P(o, 2)->ready = false;
         M(o, 3)->healthy = false;
         return o;
       },
       ActionType::kRemoveMember, 3, kOpReplaceMember, "remove-old"});
  add({"empty disk: old incarnation removed: add the new one as a learner",
       [] {
         auto o = Healthy(2);
         o.desired.replicas = 3;
         o.pods.push_back(PodFor(2, 1));
         o.operation = Op(kOpReplaceMember, 3, "remove-old");
         o.operation.node_uuid = Uuid(3, 1);
         return o;
       },
       ActionType::kAddLearner, 3, kOpReplaceMember, "add-learner"});
  add({"empty disk: the new incarnation caught up: promote",
       [] {
         auto o = Healthy(2);
         o.desired.replicas = 3;
         o.pods.push_back(PodFor(2, 1));
         o.group->members.push_back(
             Member{.node_id = 3, .node_uuid = Uuid(3, 1), .healthy = true, .match_index = 500, .files = 0});
         o.operation = Op(kOpReplaceMember, 3, "add-learner");
         o.operation.node_uuid = Uuid(3, 1);
         return o;
       },
       ActionType::kPromote, 3, kOpReplaceMember, "promote"});
  add({"empty disk refused: the old voter's removal would lose quorum",
       [] {
         auto o = Healthy(3);
         *P(o, 2) = PodFor(2, 1);
         M(o, 3)->healthy = false;
         M(o, 2)->healthy = false;
         return o;
       },
       ActionType::kWait, 0, "", "", "WouldLoseQuorum"});

  // Rolling upgrade.
  add({"upgrade: followers first, highest ordinal first",
       [] {
         auto o = Healthy(3);
         for (auto& p : o.pods) p.up_to_date = false;
         return o;
       },
       ActionType::kDeletePod, 3, kOpRestartPod, "delete-pod"});
  add({"upgrade: the leader last, after a transfer",
       [] {
         auto o = Healthy(3);
         P(o, 0)->up_to_date = false;
         return o;
       },
       ActionType::kTransferLeadership, 1, kOpRestartPod, "transfer-leadership"});
  add({"upgrade: leadership moved: delete the pod",
       [] {
         auto o = Healthy(3);
         P(o, 0)->up_to_date = false;
         o.group->leader_id = 2;
         o.operation = Op(kOpRestartPod, 1, "transfer-leadership");
         return o;
       },
       ActionType::kDeletePod, 1, kOpRestartPod, "delete-pod"});
  add({"upgrade: the new pod exists: wait for it",
       [] {
         auto o = Healthy(3);
         P(o, 2)->ready = false;
         M(o, 3)->healthy = false;
         o.operation = Op(kOpRestartPod, 3, "delete-pod");
         return o;
       },
       ActionType::kWait, 0, kOpRestartPod, "wait-ready"});
  add({"upgrade: the old pod still terminating: wait",
       [] {
         auto o = Healthy(3);
         P(o, 2)->up_to_date = false;
         P(o, 2)->terminating = true;
         o.operation = Op(kOpRestartPod, 3, "delete-pod");
         return o;
       },
       ActionType::kWait, 0, kOpRestartPod, "delete-pod"});
  add({"upgrade: delete recorded, pod unchanged (crash before the call): retake",
       [] {
         auto o = Healthy(3);
         P(o, 2)->up_to_date = false;
         o.operation = Op(kOpRestartPod, 3, "delete-pod");
         return o;
       },
       ActionType::kDeletePod, 3, kOpRestartPod, "delete-pod"});
  add({"upgrade: back Ready and caught up: done",
       [] {
         auto o = Healthy(3);
         o.operation = Op(kOpRestartPod, 3, "wait-ready");
         return o;
       },
       ActionType::kWait, 0, "", ""});
  add({"upgrade: not back in time: reported, stays",
       [] {
         auto o = Healthy(3);
         P(o, 2)->ready = false;
         o.operation = Op(kOpRestartPod, 3, "wait-ready");
         o.now_s = 900 + 301;
         return o;
       },
       ActionType::kWait, 0, kOpRestartPod, "wait-ready", "RestartStalled"});
  add({"upgrade waits for a healthy cluster",
       [] {
         auto o = Healthy(3);
         P(o, 2)->up_to_date = false;
         M(o, 2)->healthy = false;
         return o;
       },
       ActionType::kWait});

  // Quorum loss: nodes 2 and 3 came back with empty disks (new incarnations), no leader. Only a
  // person's request (the annotations) starts a recovery, and only from a member with its data.
  auto lost = [] {
    auto o = Healthy(3);
    o.known_members = o.group->members;
    o.group.reset();
    *P(o, 1) = PodFor(1, 2);
    *P(o, 2) = PodFor(2, 2);
    for (auto& p : o.pods) p.uid = "pod-uid-" + std::to_string(p.ordinal);
    return o;
  };
  auto request = [](uint64_t node, bool uid_matches = true) {
    return RecoveryRequest{
        .pod = "m-" + std::to_string(node - 1), .node_id = node, .uid_matches = uid_matches};
  };
  add({"quorum lost, no request: wait, never repair by itself", lost, ActionType::kWait, 0, "", "", "", 3});
  add({"quorum lost, a request: restart the survivor to rebuild from it",
       [=] {
         auto o = lost();
         o.recovery = request(1);
         return o;
       },
       ActionType::kDeletePod, 1, kOpRecoverQuorum, "restart-survivor"});
  add({"quorum lost in the middle of a replacement: the request supersedes it",
       [=] {
         auto o = lost();
         o.operation = Op(kOpReplaceMember, 2, "add-learner");
         o.recovery = request(1);
         return o;
       },
       ActionType::kDeletePod, 1, kOpRecoverQuorum, "restart-survivor"});
  add({"a request with another cluster's UID is refused",
       [=] {
         auto o = lost();
         o.recovery = request(1, false);
         return o;
       },
       ActionType::kWait, 0, "", "", "RecoveryRefused"});
  add({"a request naming a member without its data is refused",
       [=] {
         auto o = lost();
         o.recovery = request(2);
         return o;
       },
       ActionType::kWait, 0, "", "", "RecoveryRefused"});
  add({"a request naming no pod of the cluster is refused",
       [=] {
         auto o = lost();
         o.recovery = RecoveryRequest{.pod = "other-0", .node_id = 0, .uid_matches = true};
         return o;
       },
       ActionType::kWait, 0, "", "", "RecoveryRefused"});
  add({"a request while a majority still has its data is refused (no leader yet)",
       [=] {
         auto o = lost();
         *P(o, 1) = PodFor(1);
         o.recovery = request(1);
         return o;
       },
       ActionType::kWait, 0, "", "", "RecoveryRefused"});
  add({"a request while the group has a leader is ignored, the rest goes on",
       [=] {
         auto o = Healthy(3);
         o.desired.replicas = 4;
         o.pods.push_back(PodFor(3));
         o.recovery = request(1);
         return o;
       },
       ActionType::kAddLearner, 4, kOpAddMember, "add-learner", "RecoveryNotNeeded"});
  add({"recovery: the survivor's pod was not restarted yet (journal written, action lost)",
       [=] {
         auto o = lost();
         o.recovery = request(1);
         o.operation = Op(kOpRecoverQuorum, 1, "restart-survivor");
         o.operation.token = "pod-uid-0";
         return o;
       },
       ActionType::kDeletePod, 1, kOpRecoverQuorum, "restart-survivor"});
  add({"recovery: the survivor restarted, not leading yet: wait",
       [=] {
         auto o = lost();
         o.recovery = request(1);
         o.operation = Op(kOpRecoverQuorum, 1, "restart-survivor");
         o.operation.token = "pod-uid-0-before";
         return o;
       },
       ActionType::kWait, 0, kOpRecoverQuorum, "restart-survivor"});
  add({"recovery: the survivor does not lead after the timeout: reported",
       [=] {
         auto o = lost();
         o.recovery = request(1);
         o.operation = Op(kOpRecoverQuorum, 1, "restart-survivor");
         o.operation.token = "pod-uid-0-before";
         o.now_s = o.operation.step_since_s + 1000;
         return o;
       },
       ActionType::kWait, 0, kOpRecoverQuorum, "restart-survivor", "RecoveryStalled"});
  auto rebuilt = [=] {
    auto o = lost();
    o.group = Group{.leader_id = 1, .commit_index = 510, .replication_factor = 3};
    o.group->members.push_back(o.known_members[0]);
    o.known_members = o.group->members;
    o.operation = Op(kOpRecoverQuorum, 1, "restart-survivor");
    o.operation.token = "pod-uid-0-before";
    return o;
  };
  add({"recovery: the survivor leads a group of one: remove the request",
       [=] {
         auto o = rebuilt();
         o.recovery = request(1);
         return o;
       },
       ActionType::kClearRecoveryRequest, 1, kOpRecoverQuorum, "clear-request"});
  add({"recovery: the request is gone: done",
       [=] {
         auto o = rebuilt();
         o.operation.step = "clear-request";
         return o;
       },
       ActionType::kWait, 0, "", ""});
  add({"after a recovery, with no operation: add node 2 (its new incarnation) as a learner",
       [=] {
         auto o = rebuilt();
         o.operation = Operation{};
         return o;
       },
       ActionType::kAddLearner, 2, kOpAddMember, "add-learner"});

  // A PostgreSQL metadata store: a member without its URL in the Secret is never started.
  add({"postgres: no Secret: no pod before bootstrap, and a refusal that names it",
       [] {
         auto o = Healthy(3);
         o.bootstrapped = false;
         o.group.reset();
         o.pods.clear();
         o.metadata_urls = MetadataUrls{.secret = "pg", .found = false, .members = 0};
         return o;
       },
       ActionType::kWait, 0, "", "", "MetadataSecretMissing", 0});
  add({"postgres: a URL per member: steady state",
       [] {
         auto o = Healthy(3);
         o.metadata_urls = MetadataUrls{.secret = "pg", .found = true, .members = 3};
         return o;
       },
       ActionType::kNone, 0, "", "", "", 3});
  add({"postgres: scale to 5 with URLs for 4: node 4 is added, the set stops at 4",
       [] {
         auto o = Healthy(3);
         o.desired.replicas = 5;
         o.pods.push_back(PodFor(3));
         o.metadata_urls = MetadataUrls{.secret = "pg", .found = true, .members = 4};
         return o;
       },
       ActionType::kAddLearner, 4, kOpAddMember, "add-learner", "MetadataSecretIncomplete", 4});
  add({"postgres: scale to 5 with URLs for 4 once node 4 is in: nothing else to do, still refused",
       [] {
         auto o = Healthy(4);
         o.desired.replicas = 5;
         o.desired.replication_factor = 3;
         o.group->replication_factor = 3;
         o.metadata_urls = MetadataUrls{.secret = "pg", .found = true, .members = 4};
         return o;
       },
       ActionType::kNone, 0, "", "", "MetadataSecretIncomplete", 4});
  add({"postgres: a key removed later never shrinks the set below its members",
       [] {
         auto o = Healthy(3);
         o.metadata_urls = MetadataUrls{.secret = "pg", .found = true, .members = 1};
         return o;
       },
       ActionType::kNone, 0, "", "", "MetadataSecretIncomplete", 3});

  add({"steady state", [] { return Healthy(3); }, ActionType::kNone, 0, "", "", "", 3});
  add({"a journal from a newer operator is left alone",
       [] {
         auto o = Healthy(3);
         o.operation = Op("split-brain-repair", 2, "x");
         return o;
       },
       ActionType::kWait, 0, "split-brain-repair", "x", "UnknownOperation"});
  return rows;
}

class NextStepTable : public ::testing::TestWithParam<Row> {};

TEST_P(NextStepTable, Decides) {
  const Row& row = GetParam();
  const Observed o = row.observed();
  const Decision d = NextStep(o);
  EXPECT_EQ(ActionName(d.action.type), std::string(ActionName(row.action))) << d.action.reason;
  if (row.node != 0) {
    EXPECT_EQ(d.action.node_id, row.node);
  }
  EXPECT_EQ(d.operation.type, row.op_type);
  EXPECT_EQ(d.operation.step, row.op_step);
  EXPECT_EQ(d.refusal ? d.refusal->reason : "", row.refusal) << (d.refusal ? d.refusal->message : "");
  if (row.statefulset_replicas >= 0) {
    EXPECT_EQ(d.statefulset_replicas, row.statefulset_replicas);
  }
  // A recorded journal is stamped with the time its step began.
  if (d.operation.active() && d.operation.step != o.operation.step) {
    EXPECT_EQ(d.operation.step_since_s, o.now_s);
  }
}

INSTANTIATE_TEST_SUITE_P(Plan, NextStepTable, ::testing::ValuesIn(Rows()),
                         [](const ::testing::TestParamInfo<Row>& param_info) {
                           std::string name;
                           for (char c : param_info.param.name)
                             name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name;
                         });

TEST(NextStep, AddLearnerCarriesTheAddressAndIncarnation) {
  Observed o = Healthy(3);
  o.desired.replicas = 4;
  o.pods.push_back(PodFor(3, 2));
  const Decision d = NextStep(o);
  ASSERT_EQ(d.action.type, ActionType::kAddLearner);
  EXPECT_EQ(d.action.address, "m-3.peers:7000");
  EXPECT_EQ(d.action.node_uuid, Uuid(4, 2));
  EXPECT_EQ(d.operation.node_uuid, Uuid(4, 2));
}

}  // namespace
}  // namespace dispotify::op::plan
