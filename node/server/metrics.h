#pragma once
// Prometheus metrics of the node, served by prometheus-cpp's Exposer on its own port. Prometheus
// headers stay in metrics.cc: the loop sees only the RaftObserver interface.
//
//   dispotify_raft_term                         gauge
//   dispotify_raft_role{role="follower|pre_candidate|candidate|leader"}  gauge, 1 for the current role
//   dispotify_raft_is_leader                    gauge 0/1
//   dispotify_raft_leader_id                    gauge (0: unknown)
//   dispotify_raft_leader_changes_total         counter
//   dispotify_raft_commit_index                 gauge
//   dispotify_raft_applied_index                gauge
//   dispotify_raft_proposal_duration_seconds    histogram (propose -> applied or failed)
//   dispotify_raft_fsync_duration_seconds       histogram (log sync and hard-state saves)

#include <memory>
#include <string>

#include "common/status.h"
#include "node/server/raft_node.h"

namespace dispotify::server {

class Metrics final : public RaftObserver {
 public:
  // Starts serving on `listen` (HOST:PORT; port 0 picks a free one).
  static Result<std::unique_ptr<Metrics>> Start(const std::string& listen);
  ~Metrics() override;

  int port() const;

  void OnState(consensus::Role role, Term term, NodeId leader, LogIndex commit, LogIndex applied) override;
  void OnLeaderChange() override;
  void ObserveFsync(double seconds) override;
  void ObserveProposal(double seconds) override;

 private:
  struct Impl;
  explicit Metrics(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dispotify::server
