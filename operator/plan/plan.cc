#include "operator/plan/plan.h"

#include <algorithm>

namespace dispotify::op::plan {

const Member* Group::Find(uint64_t node_id) const {
  for (const auto& m : members) {
    if (m.node_id == node_id) return &m;
  }
  return nullptr;
}

int Group::Voters() const {
  return static_cast<int>(
      std::count_if(members.begin(), members.end(), [](const Member& m) { return m.voter; }));
}

const Pod* Observed::FindPod(int ordinal) const {
  for (const auto& p : pods) {
    if (p.ordinal == ordinal) return &p;
  }
  return nullptr;
}

const char* ActionName(ActionType type) {
  switch (type) {
    case ActionType::kNone: return "none";
    case ActionType::kWait: return "wait";
    case ActionType::kMarkBootstrapped: return "mark-bootstrapped";
    case ActionType::kAddLearner: return "add-learner";
    case ActionType::kPromote: return "promote";
    case ActionType::kTransferLeadership: return "transfer-leadership";
    case ActionType::kDrain: return "drain";
    case ActionType::kUndrain: return "undrain";
    case ActionType::kRemoveMember: return "remove-member";
    case ActionType::kSetReplicationFactor: return "set-replication-factor";
    case ActionType::kDeletePod: return "delete-pod";
    case ActionType::kClearRecoveryRequest: return "clear-recovery-request";
  }
  return "?";
}

namespace {

int OrdinalOf(uint64_t node_id) {
  return static_cast<int>(node_id) - 1;
}
uint64_t IdOf(int ordinal) {
  return static_cast<uint64_t>(ordinal) + 1;
}
std::string Node(uint64_t id) {
  return "node " + std::to_string(id);
}

// A learner that has acknowledged nothing is not caught up however young the log is: the leader
// may not reach it at all, and promoting it would make a voter that can never vote.
bool CaughtUp(const Group& g, const Member& m, const Options& o) {
  return m.match_index > 0 && m.match_index + o.max_catch_up_lag >= g.commit_index;
}

// Incarnations match, or one side does not know (a node that reports none).
bool SameIncarnation(const std::string& a, const std::string& b) {
  return a.empty() || b.empty() || a == b;
}

enum class Removal {
  kShrink,   // the member leaves for good: R members must remain
  kReplace,  // its disk is already gone and a new incarnation takes its place: only quorum matters
};

// Removing `id` must leave a healthy majority of the voters that remain, and R members when it
// leaves for good.
std::optional<Refusal> CheckRemoval(const Group& g, uint64_t id, Removal kind) {
  const Member* m = g.Find(id);
  if (m == nullptr) return std::nullopt;
  const int members_after = static_cast<int>(g.members.size()) - 1;
  if (kind == Removal::kShrink && members_after < static_cast<int>(g.replication_factor)) {
    return Refusal{"BelowReplicationFactor", "removing " + Node(id) + " would leave " +
                                                 std::to_string(members_after) +
                                                 " members for R=" + std::to_string(g.replication_factor)};
  }
  if (!m->voter) return std::nullopt;  // a learner never counts toward a quorum
  const int voters_after = g.Voters() - 1;
  int healthy_after = 0;
  for (const auto& v : g.members) healthy_after += (v.voter && v.node_id != id && v.healthy) ? 1 : 0;
  if (voters_after < 1 || healthy_after < QuorumOf(voters_after)) {
    return Refusal{"WouldLoseQuorum", "removing " + Node(id) + " would leave " +
                                          std::to_string(healthy_after) + " healthy of " +
                                          std::to_string(voters_after) + " voters (a quorum needs " +
                                          std::to_string(QuorumOf(voters_after)) + ")"};
  }
  return std::nullopt;
}

bool Drained(const Group& g, const Member& m) {
  return m.files.has_value() && *m.files == 0 && g.under_replicated == 0;
}

// The StatefulSet never shrinks below a pod that is still a member or the subject of the
// operation in flight, and never at all while the membership is unknown.
// How many members can run: a member without a metadata URL would only crash-loop.
int Runnable(const Observed& o) {
  if (!o.metadata_urls) return o.desired.replicas;
  return std::min(o.desired.replicas, o.metadata_urls->members);
}

// Says why members the spec wants cannot be added yet (nullopt when they can).
std::optional<Refusal> MissingMetadataUrls(const Observed& o) {
  if (!o.metadata_urls || o.metadata_urls->members >= o.desired.replicas) return std::nullopt;
  const MetadataUrls& u = *o.metadata_urls;
  if (!u.found) {
    return Refusal{"MetadataSecretMissing", "the Secret " + u.secret +
                                                " (spec.metadataStore.postgres.secretName) does not exist: "
                                                "no member can start until it holds a URL per member"};
  }
  return Refusal{"MetadataSecretIncomplete",
                 "the Secret " + u.secret + " has no key member-" + std::to_string(u.members) +
                     " (a PostgreSQL URL for node " + std::to_string(u.members + 1) +
                     "): " + std::to_string(o.desired.replicas - u.members) + " of " +
                     std::to_string(o.desired.replicas) + " members wait for their URL"};
}

int StatefulSetReplicas(const Observed& o, const Operation& in_flight) {
  int n = Runnable(o);
  if (!o.group) {
    for (const auto& p : o.pods) n = std::max(n, p.ordinal + 1);
    return n;
  }
  for (const auto& m : o.group->members) n = std::max(n, OrdinalOf(m.node_id) + 1);
  if (in_flight.active() && in_flight.member > 0) n = std::max(n, OrdinalOf(in_flight.member) + 1);
  return n;
}

Decision Wait(Decision d, std::string reason) {
  d.action = Action{.type = ActionType::kWait, .reason = std::move(reason)};
  return d;
}

// Waits, saying why: the refusal's message (read before `d` is moved from).
Decision WaitRefused(Decision d) {
  std::string why = d.refusal->message;
  return Wait(std::move(d), std::move(why));
}

// Ends the operation in flight: the next pass starts the next one.
Decision Done(Decision d, std::string reason) {
  d.operation = Operation{};
  return Wait(std::move(d), std::move(reason));
}

// Records `op` at `step` (its clock restarts when the step changes) and takes `action`.
Decision Record(const Observed& o, Decision d, Operation op, std::string step, Action action) {
  const bool same = op.step == step && o.operation.type == op.type && o.operation.member == op.member;
  op.step = std::move(step);
  op.step_since_s = same ? o.operation.step_since_s : o.now_s;
  if (!same) op.last_error.clear();
  d.operation = std::move(op);
  d.action = std::move(action);
  return d;
}

Action Act(ActionType type, uint64_t node_id, std::string reason) {
  return Action{.type = type, .node_id = node_id, .reason = std::move(reason)};
}

Operation NewOperation(const char* type, uint64_t member, std::string node_uuid, uint32_t value = 0) {
  return Operation{.type = type, .member = member, .node_uuid = std::move(node_uuid), .value = value};
}

// add-member, and the second half of replace-member: add-learner -> promote (or remove-learner when
// the spec no longer wants the member).
Decision ContinueAdd(const Observed& o, const Group& g, const Options& opt, Decision d) {
  const Operation& op = o.operation;
  const Member* m = g.Find(op.member);
  const bool wanted = OrdinalOf(op.member) < o.desired.replicas;
  if (op.step == "remove-learner") {
    if (m == nullptr) return Done(std::move(d), Node(op.member) + " removed: scale-up reversed");
    return Record(o, std::move(d), op, "remove-learner",
                  Act(ActionType::kRemoveMember, op.member, "the spec no longer wants " + Node(op.member)));
  }
  if (m == nullptr) {
    if (op.step != "add-learner") return Done(std::move(d), Node(op.member) + " left the group");
    if (!wanted) return Done(std::move(d), "scale-up reversed before " + Node(op.member) + " was added");
    const Pod* pod = o.FindPod(OrdinalOf(op.member));
    if (pod == nullptr || !pod->node_uuid || !SameIncarnation(*pod->node_uuid, op.node_uuid)) {
      // Its pod is gone or came back as another incarnation: start over from what runs now.
      return Done(std::move(d), "the pod of " + Node(op.member) + " changed before it was added");
    }
    Action add = Act(ActionType::kAddLearner, op.member, "add " + Node(op.member) + " as a learner");
    add.address = pod->peer_address;
    add.node_uuid = op.node_uuid;
    return Record(o, std::move(d), op, "add-learner", std::move(add));
  }
  if (!SameIncarnation(m->node_uuid, op.node_uuid))
    return Done(std::move(d), "another incarnation of " + Node(op.member) + " is in the group");
  if (m->voter) return Done(std::move(d), Node(op.member) + " is a voter");
  // The learner's pod restarted on an empty disk: the learner in the group is an incarnation that
  // no longer runs and never catches up; the next pass replaces it.
  if (const Pod* pod = o.FindPod(OrdinalOf(op.member));
      pod != nullptr && pod->node_uuid && !SameIncarnation(*pod->node_uuid, op.node_uuid))
    return Done(std::move(d), "the pod of " + Node(op.member) + " came back as another incarnation");
  if (!wanted) {
    return Record(o, std::move(d), op, "remove-learner",
                  Act(ActionType::kRemoveMember, op.member, "the spec no longer wants " + Node(op.member)));
  }
  if (!CaughtUp(g, *m, opt)) {
    return Wait(std::move(d), Node(op.member) + " catching up (match index " +
                                  std::to_string(m->match_index) + " of " + std::to_string(g.commit_index) +
                                  ")");
  }
  return Record(o, std::move(d), op, "promote",
                Act(ActionType::kPromote, op.member, "promote " + Node(op.member)));
}

Decision ContinueReplace(const Observed& o, const Group& g, const Options& opt, Decision d) {
  const Operation& op = o.operation;
  if (op.step != "remove-old") return ContinueAdd(o, g, opt, std::move(d));
  const Member* m = g.Find(op.member);
  if (m != nullptr && !SameIncarnation(m->node_uuid, op.node_uuid)) {
    if (auto r = CheckRemoval(g, op.member, Removal::kReplace)) {
      d.refusal = *r;
      return Wait(std::move(d), r->message);
    }
    return Record(
        o, std::move(d), op, "remove-old",
        Act(ActionType::kRemoveMember, op.member, "remove the old incarnation of " + Node(op.member)));
  }
  // The old incarnation is gone: add the new one.
  Observed next = o;
  next.operation.step = "add-learner";
  Decision r = ContinueAdd(next, g, opt, std::move(d));
  if (r.operation.active() && r.operation.step == "add-learner" && r.operation.type == op.type &&
      o.operation.step == "remove-old")
    r.operation.step_since_s = o.now_s;
  return r;
}

Decision ContinueRemove(const Observed& o, const Group& g, Decision d) {
  const Operation& op = o.operation;
  const Member* m = g.Find(op.member);
  if (m == nullptr) return Done(std::move(d), Node(op.member) + " removed");
  if (!SameIncarnation(m->node_uuid, op.node_uuid))
    return Done(std::move(d), "another incarnation of " + Node(op.member) + " is in the group");
  const bool wanted = OrdinalOf(op.member) < o.desired.replicas;
  if (wanted && op.step != "remove") {
    // The spec wants the member back before it left: undo the drain.
    if (m->draining) {
      return Record(o, std::move(d), op, "undrain",
                    Act(ActionType::kUndrain, op.member, "the spec wants " + Node(op.member) + " again"));
    }
    return Done(std::move(d), "scale-down of " + Node(op.member) + " reversed");
  }
  if (op.step == "undrain") return Done(std::move(d), "undrain of " + Node(op.member) + " superseded");
  if (g.leader_id == op.member) {
    return Record(
        o, std::move(d), op, "transfer-leadership",
        Act(ActionType::kTransferLeadership, op.member, "move leadership away from " + Node(op.member)));
  }
  if (op.step != "remove") {
    if (!m->draining) {
      return Record(
          o, std::move(d), op, "drain",
          Act(ActionType::kDrain, op.member, "copy the files of " + Node(op.member) + " elsewhere"));
    }
    if (!Drained(g, *m)) {
      return Wait(std::move(d),
                  "draining " + Node(op.member) + ": " +
                      (m->files ? std::to_string(*m->files) + " files left" : "file count unknown") + ", " +
                      std::to_string(g.under_replicated) + " under-replicated");
    }
  }
  if (auto r = CheckRemoval(g, op.member, Removal::kShrink)) {
    d.refusal = *r;
    return Wait(std::move(d), r->message);
  }
  return Record(o, std::move(d), op, "remove",
                Act(ActionType::kRemoveMember, op.member, "remove " + Node(op.member) + " from the group"));
}

Decision ContinueSetR(const Observed& o, const Group& g, Decision d) {
  const Operation& op = o.operation;
  if (g.replication_factor == op.value)
    return Done(std::move(d), "replication factor is " + std::to_string(op.value));
  Action a{.type = ActionType::kSetReplicationFactor,
           .value = op.value,
           .reason = "set the replication factor to " + std::to_string(op.value)};
  return Record(o, std::move(d), op, "set", std::move(a));
}

Decision ContinueRestart(const Observed& o, const Group& g, const Options& opt, Decision d) {
  const Operation& op = o.operation;
  const int ordinal = OrdinalOf(op.member);
  const Pod* pod = o.FindPod(ordinal);
  const std::string who = "pod " + std::to_string(ordinal) + " (" + Node(op.member) + ")";
  if (op.step == "transfer-leadership" || op.step == "delete-pod") {
    if (op.step == "delete-pod" && pod != nullptr && pod->up_to_date && !pod->terminating) {
      Decision r = Record(o, std::move(d), op, "wait-ready", Action{});
      return Wait(std::move(r), who + " to come back");
    }
    if (pod != nullptr && pod->terminating) return Wait(std::move(d), who + " to terminate");
    if (g.leader_id == op.member) {
      return Record(
          o, std::move(d), op, "transfer-leadership",
          Act(ActionType::kTransferLeadership, op.member, "move leadership away before restarting " + who));
    }
    if (pod == nullptr) {
      Decision r = Record(o, std::move(d), op, "wait-ready", Action{});
      return Wait(std::move(r), who + " to come back");
    }
    return Record(o, std::move(d), op, "delete-pod",
                  Act(ActionType::kDeletePod, op.member, "restart " + who));
  }
  // wait-ready
  const Member* m = g.Find(op.member);
  if (pod != nullptr && pod->ready && pod->up_to_date && m != nullptr && m->healthy && CaughtUp(g, *m, opt))
    return Done(std::move(d), who + " restarted");
  if (o.now_s - op.step_since_s > opt.restart_timeout_s) {
    d.operation.last_error = who + " not back after " + std::to_string(o.now_s - op.step_since_s) + " s";
    d.refusal = Refusal{"RestartStalled", d.operation.last_error + "; the upgrade stops here"};
  }
  return Wait(std::move(d), who + " to come back Ready and caught up");
}

Decision Start(const Observed& o, Decision d, Operation op, std::string step, Action action) {
  return Record(o, std::move(d), std::move(op), std::move(step), std::move(action));
}

// No operation in flight: what is the next change, if any?
Decision Begin(const Observed& o, const Group& g, const Options& opt, Decision d) {
  // 1. A member whose pod came back as another incarnation (an empty disk): it is not the old voter.
  for (const auto& m : g.members) {
    const Pod* pod = o.FindPod(OrdinalOf(m.node_id));
    if (pod == nullptr || !pod->running || !pod->node_uuid || pod->node_uuid->empty() ||
        m.node_uuid.empty() || *pod->node_uuid == m.node_uuid)
      continue;
    if (auto r = CheckRemoval(g, m.node_id, Removal::kReplace)) {
      d.refusal = *r;
      return Wait(std::move(d), r->message);
    }
    return Start(
        o, std::move(d), NewOperation(kOpReplaceMember, m.node_id, *pod->node_uuid), "remove-old",
        Act(ActionType::kRemoveMember, m.node_id, "remove the old incarnation of " + Node(m.node_id)));
  }
  // 2. A lower R goes first: the members it no longer needs may then leave.
  if (o.desired.replication_factor < g.replication_factor) {
    const uint32_t r = o.desired.replication_factor;
    return Start(o, std::move(d), NewOperation(kOpSetReplicationFactor, 0, "", r), "set",
                 Action{.type = ActionType::kSetReplicationFactor,
                        .value = r,
                        .reason = "lower the replication factor to " + std::to_string(r)});
  }
  // 3. Learners the spec wants as voters (left by an earlier operation).
  for (const auto& m : g.members) {
    if (m.voter || OrdinalOf(m.node_id) >= o.desired.replicas) continue;
    if (!CaughtUp(g, m, opt))
      return Wait(std::move(d), "learner " + Node(m.node_id) + " catching up before promotion");
    return Start(o, std::move(d), NewOperation(kOpAddMember, m.node_id, m.node_uuid), "promote",
                 Act(ActionType::kPromote, m.node_id, "promote " + Node(m.node_id)));
  }
  // 4. Additions, lowest ordinal first, one at a time (those without a metadata URL wait).
  for (int ordinal = 0; ordinal < Runnable(o); ++ordinal) {
    const uint64_t id = IdOf(ordinal);
    if (g.Find(id) != nullptr) continue;
    const Pod* pod = o.FindPod(ordinal);
    if (pod == nullptr || pod->terminating || !pod->running || !pod->node_uuid)
      return Wait(std::move(d), "pod " + std::to_string(ordinal) + " to start before adding " + Node(id));
    Action add = Act(ActionType::kAddLearner, id, "add " + Node(id) + " as a learner");
    add.address = pod->peer_address;
    add.node_uuid = *pod->node_uuid;
    return Start(o, std::move(d), NewOperation(kOpAddMember, id, *pod->node_uuid), "add-learner",
                 std::move(add));
  }
  // 5. A higher R, once there are members for it.
  if (o.desired.replication_factor > g.replication_factor) {
    const uint32_t r = o.desired.replication_factor;
    if (static_cast<int>(g.members.size()) < static_cast<int>(r)) {
      d.refusal =
          Refusal{"NotEnoughMembers", "R=" + std::to_string(r) + " needs " + std::to_string(r) +
                                          " members, the group has " + std::to_string(g.members.size())};
      return WaitRefused(std::move(d));
    }
    return Start(o, std::move(d), NewOperation(kOpSetReplicationFactor, 0, "", r), "set",
                 Action{.type = ActionType::kSetReplicationFactor,
                        .value = r,
                        .reason = "raise the replication factor to " + std::to_string(r)});
  }
  // 6. Removals, highest ordinal first (a StatefulSet removes its highest ordinal).
  const Member* leaving = nullptr;
  for (const auto& m : g.members) {
    if (OrdinalOf(m.node_id) >= o.desired.replicas && (leaving == nullptr || m.node_id > leaving->node_id))
      leaving = &m;
  }
  if (leaving != nullptr) {
    if (auto r = CheckRemoval(g, leaving->node_id, Removal::kShrink)) {
      d.refusal = *r;
      return Wait(std::move(d), r->message);
    }
    Operation op = NewOperation(kOpRemoveMember, leaving->node_id, leaving->node_uuid);
    if (g.leader_id == leaving->node_id) {
      return Start(o, std::move(d), std::move(op), "transfer-leadership",
                   Act(ActionType::kTransferLeadership, leaving->node_id,
                       "move leadership away from " + Node(leaving->node_id)));
    }
    return Start(o, std::move(d), std::move(op), "drain",
                 Act(ActionType::kDrain, leaving->node_id,
                     "copy the files of " + Node(leaving->node_id) + " elsewhere"));
  }
  // 7. Rolling restart of pods whose template changed: followers first (highest ordinal first),
  // the leader last, and only while every member is healthy and Ready.
  const Member* restart = nullptr;
  for (const auto& m : g.members) {
    const Pod* pod = o.FindPod(OrdinalOf(m.node_id));
    if (pod == nullptr || pod->up_to_date) continue;
    const bool better = restart == nullptr || (restart->node_id == g.leader_id) ||
                        (m.node_id != g.leader_id && m.node_id > restart->node_id);
    if (better) restart = &m;
  }
  if (restart != nullptr) {
    for (const auto& m : g.members) {
      const Pod* pod = o.FindPod(OrdinalOf(m.node_id));
      if (!m.healthy || pod == nullptr || !pod->ready)
        return Wait(std::move(d), "the upgrade waits for " + Node(m.node_id) + " to be healthy and Ready");
    }
    Operation op = NewOperation(kOpRestartPod, restart->node_id, restart->node_uuid);
    const int ordinal = OrdinalOf(restart->node_id);
    if (g.leader_id == restart->node_id) {
      return Start(o, std::move(d), std::move(op), "transfer-leadership",
                   Act(ActionType::kTransferLeadership, restart->node_id,
                       "move leadership away before restarting pod " + std::to_string(ordinal)));
    }
    return Start(o, std::move(d), std::move(op), "delete-pod",
                 Act(ActionType::kDeletePod, restart->node_id, "restart pod " + std::to_string(ordinal)));
  }
  d.action = Action{.type = ActionType::kNone, .reason = "the cluster matches the spec"};
  return d;
}

// Quorum-loss recovery, asked for by a person (never started on the operator's own): the
// survivor's pod restarts with force_new_cluster (the ConfigMap carries it while this operation is
// in flight) and leads a group of one; the request is then removed, and the usual steps add the
// other members back as new ones.
Decision BeginRecover(const Observed& o, Decision d) {
  const RecoveryRequest& req = *o.recovery;
  auto refuse = [&](std::string message) {
    d.refusal = Refusal{"RecoveryRefused", std::move(message)};
    return WaitRefused(std::move(d));
  };
  if (!req.uid_matches)
    return refuse("the annotation dispotify.io/recover-uid is not this cluster's UID: nothing done");
  if (!QuorumLost(o, o.known_members)) {
    return refuse(
        "the group has not lost its quorum (a majority of its voters still run with their data and may "
        "elect a leader): nothing done");
  }
  if (req.node_id == 0) return refuse("'" + req.pod + "' is not a pod of this cluster");
  const Member* m = nullptr;
  for (const auto& k : o.known_members) {
    if (k.node_id == req.node_id) m = &k;
  }
  if (m == nullptr || !m->voter)
    return refuse(Node(req.node_id) + " is not a voter of the last known configuration");
  const Pod* pod = o.FindPod(OrdinalOf(req.node_id));
  if (pod == nullptr || !pod->running || !pod->node_uuid ||
      (!m->node_uuid.empty() && *pod->node_uuid != m->node_uuid)) {
    return refuse("pod " + req.pod + " does not run with the data of " + Node(req.node_id) +
                  ": there is nothing to rebuild the group from");
  }
  Operation op = NewOperation(kOpRecoverQuorum, req.node_id, *pod->node_uuid);
  // Fixed for the whole recovery: the node forces a new cluster once per token.
  op.token = !pod->uid.empty() ? pod->uid : *pod->node_uuid + "-" + std::to_string(o.now_s);
  return Start(o, std::move(d), std::move(op), "restart-survivor",
               Act(ActionType::kDeletePod, req.node_id,
                   "restart pod " + req.pod + " to rebuild the group from the data of " + Node(req.node_id)));
}

Decision ContinueRecover(const Observed& o, const Options& opt, Decision d) {
  const Operation& op = o.operation;
  const std::string who = "pod " + std::to_string(OrdinalOf(op.member)) + " (" + Node(op.member) + ")";
  const Action clear{.type = ActionType::kClearRecoveryRequest,
                     .node_id = op.member,
                     .reason = "the group was rebuilt from " + Node(op.member) + ": remove the request"};
  if (op.step == "clear-request") {
    if (!o.recovery) return Done(std::move(d), "the group was rebuilt from " + Node(op.member));
    return Record(o, std::move(d), op, "clear-request", clear);
  }
  if (o.group && o.group->leader_id == op.member && o.group->Voters() == 1)
    return Record(o, std::move(d), op, "clear-request", clear);
  const Pod* pod = o.FindPod(OrdinalOf(op.member));
  if (pod != nullptr && !pod->terminating && pod->uid == op.token) {
    // Still the pod from before the recovery (its restart was recorded but not taken).
    return Record(o, std::move(d), op, "restart-survivor",
                  Act(ActionType::kDeletePod, op.member, "restart " + who + " to rebuild the group"));
  }
  if (o.now_s - op.step_since_s > opt.restart_timeout_s) {
    d.operation.last_error =
        who + " does not lead a group of one after " + std::to_string(o.now_s - op.step_since_s) + " s";
    d.refusal = Refusal{"RecoveryStalled", d.operation.last_error + "; see its log"};
  }
  return Wait(std::move(d), who + " to restart and lead a group of one");
}

Decision Continue(const Observed& o, const Group& g, const Options& opt, Decision d) {
  const std::string& type = o.operation.type;
  if (type == kOpAddMember) return ContinueAdd(o, g, opt, std::move(d));
  if (type == kOpReplaceMember) return ContinueReplace(o, g, opt, std::move(d));
  if (type == kOpRemoveMember) return ContinueRemove(o, g, std::move(d));
  if (type == kOpSetReplicationFactor) return ContinueSetR(o, g, std::move(d));
  if (type == kOpRestartPod) return ContinueRestart(o, g, opt, std::move(d));
  // A journal this version does not know (written by a newer operator): touch nothing.
  d.refusal = Refusal{"UnknownOperation", "status.operation has an unknown type '" + type + "'"};
  return WaitRefused(std::move(d));
}

}  // namespace

namespace {

Decision Decide(const Observed& o, const Options& opt) {
  Decision d;
  d.operation = o.operation;
  if (o.desired.paused) return Wait(std::move(d), "spec.paused is set");
  if (!o.bootstrapped) {
    if (o.group) {
      d.action = Action{.type = ActionType::kMarkBootstrapped, .reason = "the group has a leader"};
      return d;
    }
    return Wait(std::move(d), "the first member to start the group");
  }
  if (o.operation.type == kOpRecoverQuorum) return ContinueRecover(o, opt, std::move(d));
  if (!o.group) {
    // A recovery supersedes a change caught by the quorum loss: without a leader it cannot go
    // on, and after the recovery the next pass plans again from the group of one.
    if (o.recovery) return BeginRecover(o, std::move(d));
    return Wait(std::move(d), "a leader");
  }
  const Group& g = *o.group;
  if (!o.operation.active()) {
    Decision next = Begin(o, g, opt, std::move(d));
    if (o.recovery && !next.refusal) {
      next.refusal = Refusal{"RecoveryNotNeeded",
                             "the group has a leader: the recovery annotations are ignored (remove them)"};
    }
    return next;
  }

  Decision result = Continue(o, g, opt, d);
  if (!result.refusal && result.operation == o.operation) {
    // Still in flight: say what else the spec asks for, which must wait for it.
    Observed idle = o;
    idle.operation = Operation{};
    Decision next = Begin(idle, g, opt, d);
    if (next.operation.active() &&
        (next.operation.type != o.operation.type || next.operation.member != o.operation.member)) {
      result.refusal =
          Refusal{"ChangeInFlight", "waiting for " + o.operation.type + " of " + Node(o.operation.member) +
                                        " (step " + o.operation.step + ") before " + next.operation.type +
                                        (next.operation.member ? " of " + Node(next.operation.member) : "")};
    }
  }
  return result;
}

}  // namespace

std::optional<std::string> QuorumLost(const Observed& o, const std::vector<Member>& known_members) {
  if (o.group || !o.bootstrapped) return std::nullopt;
  int voters = 0;
  int alive = 0;  // voters whose pod runs with the member's own incarnation (its disk)
  for (const auto& m : known_members) {
    if (!m.voter) continue;
    ++voters;
    const Pod* pod = o.FindPod(OrdinalOf(m.node_id));
    if (pod == nullptr || !pod->running || !pod->node_uuid) continue;
    if (m.node_uuid.empty() || *pod->node_uuid == m.node_uuid) ++alive;
  }
  if (voters == 0 || alive >= QuorumOf(voters)) return std::nullopt;
  return std::to_string(alive) + " of " + std::to_string(voters) +
         " voters run with their data; a quorum needs " + std::to_string(QuorumOf(voters)) +
         ". Not repaired automatically: see docs/operator.md, \"Quorum loss\"";
}

Decision NextStep(const Observed& o, const Options& opt) {
  Decision d = Decide(o, opt);
  if (!d.refusal) d.refusal = MissingMetadataUrls(o);
  // From the operation as it stands after this step, so a finished removal lets the set shrink.
  d.statefulset_replicas = StatefulSetReplicas(o, d.operation);
  return d;
}

}  // namespace dispotify::op::plan
