#pragma once
// How the data plane changes the catalog: a command is committed through the Raft leader, wherever
// the caller runs. Implemented by the composition root (node/server/catalog_proposer.h), which
// proposes locally on the leader and forwards to the leader otherwise; tests substitute their own.

#include <chrono>
#include <string>

#include "common/status.h"
#include "node/catalog/commands.h"

namespace dispotify::catalog {

// Counters of CatchUp, for metrics and benchmarks.
struct ReadStats {
  uint64_t reads = 0;     // CatchUp calls
  uint64_t rounds = 0;    // read-index rounds they needed (concurrent reads share one)
  uint64_t failures = 0;  // calls that could not confirm the latest state in time
};

class Proposer {
 public:
  virtual ~Proposer() = default;

  // Commits `body` (the leader stamps its clock into the command) and returns once this node has
  // applied it, so that a read on this node right after sees the change. Returns the state
  // machine's answer: OK with its value (a lock's fencing token), or its refusal
  // (kAlreadyExists, kNotFound, kFailedPrecondition, kInvalidArgument). Or, when the command was
  // not known to be applied within `timeout`: kUnavailable (no leader / no quorum: not
  // committed), kCommitUnknown (may have committed), kTimeout.
  virtual Result<std::string> Propose(const CommandBody& body, std::chrono::milliseconds timeout) = 0;

  // True when the Raft group has a known leader right now (as this node sees it): a cheap check
  // that lets an upload fail fast instead of waiting for a quorum that is not there.
  virtual bool HasLeader() const = 0;

  // Returns once this node has applied every change committed before the call (a ReadIndex
  // through the leader), so that a read on this node then is linearizable. kUnavailable
  // otherwise (no leader, not reachable, not applied in time): the local state may be behind.
  virtual Status CatchUp(std::chrono::milliseconds timeout) = 0;

  virtual ReadStats read_stats() const { return {}; }
};

}  // namespace dispotify::catalog
