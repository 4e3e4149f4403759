#include "operator/plan/health.h"

#include <algorithm>

namespace dispotify::op::plan {

namespace {

int OrdinalOf(uint64_t node_id) {
  return static_cast<int>(node_id) - 1;
}

}  // namespace

Health Summarize(const Observed& o, const Decision& d, const std::vector<Member>& known_members) {
  Health h;
  for (const auto& p : o.pods) h.ready_replicas += p.ready && !p.terminating ? 1 : 0;

  ConditionValue ready{"Ready", false, "", ""};
  ConditionValue progressing{"Progressing", false, "", ""};
  ConditionValue degraded{"Degraded", false, "", ""};
  ConditionValue replication{"ReplicationHealthy", false, "", ""};
  ConditionValue quorum{"QuorumLost", false, "QuorumPresent", "the group has a leader"};

  const bool busy = d.operation.active() || d.action.type != ActionType::kNone;
  progressing.status = busy && d.action.type != ActionType::kNone;
  progressing.reason =
      d.operation.active() ? "OperationInFlight" : (progressing.status ? "Waiting" : "Reconciled");
  progressing.message =
      d.operation.active() ? d.operation.type + " of node " + std::to_string(d.operation.member) + ", step " +
                                 d.operation.step + (d.action.reason.empty() ? "" : ": " + d.action.reason)
                           : d.action.reason;

  if (!o.group) {
    if (auto lost = QuorumLost(o, known_members)) {
      quorum = {"QuorumLost", true, "MajorityLost", *lost};
    } else {
      quorum = {"QuorumLost", false, "NoLeader", "no leader right now (election or start-up)"};
    }
    ready = {"Ready", false, o.bootstrapped ? "NoLeader" : "Bootstrapping", "no leader answered"};
    degraded = {"Degraded", o.bootstrapped, o.bootstrapped ? "NoLeader" : "Bootstrapping",
                "no leader answered"};
    replication = {"ReplicationHealthy", false, "Unknown", "no leader answered"};
    h.phase = !o.bootstrapped ? "Bootstrapping" : (quorum.status ? "QuorumLost" : "Degraded");
  } else {
    const Group& g = *o.group;
    std::string unhealthy;
    for (const auto& m : g.members) {
      const Pod* pod = o.FindPod(OrdinalOf(m.node_id));
      if (!m.healthy || pod == nullptr || !pod->ready) {
        unhealthy += (unhealthy.empty() ? "" : ", ") + std::string("node ") + std::to_string(m.node_id) +
                     (!m.healthy ? " unreachable" : " not Ready");
      }
    }
    int wanted_voters = 0;
    for (const auto& m : g.members)
      wanted_voters += m.voter && OrdinalOf(m.node_id) < o.desired.replicas ? 1 : 0;
    const bool stalled = d.refusal && d.refusal->reason == "RestartStalled";
    degraded = {
        "Degraded", !unhealthy.empty() || stalled,
        stalled ? "RestartStalled" : (unhealthy.empty() ? "AllHealthy" : "MembersUnhealthy"),
        stalled ? d.refusal->message : (unhealthy.empty() ? "every member is healthy and Ready" : unhealthy)};
    const bool complete = wanted_voters == o.desired.replicas;
    ready = {"Ready", unhealthy.empty() && complete, "", ""};
    ready.reason = ready.status ? "Ready" : (complete ? "MembersUnhealthy" : "MembersMissing");
    ready.message = std::to_string(wanted_voters) + " of " + std::to_string(o.desired.replicas) +
                    " voters, leader node " + std::to_string(g.leader_id);
    const bool r_ok = g.replication_factor == o.desired.replication_factor && g.under_replicated == 0;
    replication = {"ReplicationHealthy", r_ok, r_ok ? "Replicated" : "Repairing",
                   "R=" + std::to_string(g.replication_factor) + " (spec " +
                       std::to_string(o.desired.replication_factor) + "), " +
                       std::to_string(g.under_replicated) + " files under-replicated"};
    if (o.desired.paused)
      h.phase = "Paused";
    else if (d.operation.type == kOpRestartPod)
      h.phase = "Upgrading";
    else if (d.operation.active() || !complete)
      h.phase = "Scaling";
    else if (degraded.status)
      h.phase = "Degraded";
    else
      h.phase = "Running";
  }
  if (o.desired.paused) progressing = {"Progressing", false, "Paused", "spec.paused is set"};
  if (d.refusal) {
    progressing.reason = d.refusal->reason;
    progressing.message = d.refusal->message;
  }
  h.conditions = {ready, progressing, degraded, replication, quorum};
  return h;
}

}  // namespace dispotify::op::plan
