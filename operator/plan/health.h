#pragma once
// What status says about a cluster: its phase and conditions, from the same observed state the
// decisions come from (pure, like plan.h).
//
// Conditions (type: meaning of True):
//   Ready               the group has a leader, every wanted member is a healthy voter and every
//                       pod is Ready
//   Progressing         an operation is in flight or the spec is not reached yet
//   Degraded            a member is unhealthy or a pod is not Ready, or an upgrade stalled
//   ReplicationHealthy  R is the spec's and no file is under-replicated
//   QuorumLost          no leader, and fewer members than a quorum still run with their own disk:
//                       not repaired automatically (docs/operator.md, "Quorum loss")

#include <string>
#include <vector>

#include "operator/plan/plan.h"

namespace dispotify::op::plan {

struct ConditionValue {
  std::string type;
  bool status = false;
  std::string reason;
  std::string message;
};

struct Health {
  std::string
      phase;  // Pending | Bootstrapping | Running | Scaling | Upgrading | Degraded | QuorumLost | Paused
  int ready_replicas = 0;
  std::vector<ConditionValue> conditions;  // in the order listed above
};

// `known_members` is the group's membership as any member last reported it (used only when no
// leader answers, to tell an election from a lost quorum).
Health Summarize(const Observed& observed, const Decision& decision,
                 const std::vector<Member>& known_members);

}  // namespace dispotify::op::plan
