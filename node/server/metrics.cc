#include "node/server/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <exception>
#include <mutex>

namespace dispotify::server {

namespace {
constexpr std::array<consensus::Role, 4> kRoles = {consensus::Role::kFollower, consensus::Role::kPreCandidate,
                                                   consensus::Role::kCandidate, consensus::Role::kLeader};
const char* RoleLabel(consensus::Role r) {
  switch (r) {
    case consensus::Role::kFollower: return "follower";
    case consensus::Role::kPreCandidate: return "pre_candidate";
    case consensus::Role::kCandidate: return "candidate";
    case consensus::Role::kLeader: return "leader";
  }
  return "unknown";
}

// 50 us .. ~3.3 s, doubling: fsyncs sit at the low end, proposals a little above.
prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  prometheus::Histogram::BucketBoundaries b;
  for (double v = 50e-6; v < 4.0; v *= 2) b.push_back(v);
  return b;
}
}  // namespace

struct Metrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<prometheus::Exposer> exposer;
  prometheus::Gauge* term = nullptr;
  std::array<prometheus::Gauge*, 4> role{};
  prometheus::Gauge* is_leader = nullptr;
  prometheus::Gauge* leader_id = nullptr;
  prometheus::Counter* leader_changes = nullptr;
  prometheus::Gauge* commit = nullptr;
  prometheus::Gauge* applied = nullptr;
  prometheus::Histogram* proposal = nullptr;
  prometheus::Histogram* fsync = nullptr;
};

Result<std::unique_ptr<Metrics>> Metrics::Start(const std::string& listen) {
  auto impl = std::make_unique<Impl>();
  auto& r = *impl->registry;
  impl->term =
      &prometheus::BuildGauge().Name("dispotify_raft_term").Help("Current Raft term").Register(r).Add({});
  auto& role = prometheus::BuildGauge()
                   .Name("dispotify_raft_role")
                   .Help("1 for the role this node has now, 0 for the others")
                   .Register(r);
  for (size_t i = 0; i < kRoles.size(); ++i) impl->role[i] = &role.Add({{"role", RoleLabel(kRoles[i])}});
  impl->is_leader = &prometheus::BuildGauge()
                         .Name("dispotify_raft_is_leader")
                         .Help("1 when this node leads")
                         .Register(r)
                         .Add({});
  impl->leader_id = &prometheus::BuildGauge()
                         .Name("dispotify_raft_leader_id")
                         .Help("Id of the leader this node knows (0: none)")
                         .Register(r)
                         .Add({});
  impl->leader_changes = &prometheus::BuildCounter()
                              .Name("dispotify_raft_leader_changes_total")
                              .Help("Times the known leader changed")
                              .Register(r)
                              .Add({});
  impl->commit = &prometheus::BuildGauge()
                      .Name("dispotify_raft_commit_index")
                      .Help("Highest log index known committed")
                      .Register(r)
                      .Add({});
  impl->applied = &prometheus::BuildGauge()
                       .Name("dispotify_raft_applied_index")
                       .Help("Highest log index applied to the state machine")
                       .Register(r)
                       .Add({});
  impl->proposal = &prometheus::BuildHistogram()
                        .Name("dispotify_raft_proposal_duration_seconds")
                        .Help("From proposal to applied (or failed)")
                        .Register(r)
                        .Add({}, LatencyBuckets());
  impl->fsync = &prometheus::BuildHistogram()
                     .Name("dispotify_raft_fsync_duration_seconds")
                     .Help("Durations of log syncs and hard-state saves")
                     .Register(r)
                     .Add({}, LatencyBuckets());
  try {
    impl->exposer = std::make_unique<prometheus::Exposer>(listen, 2);
  } catch (const std::exception& e) {
    return Status::Unavailable("cannot serve metrics on " + listen + ": " + e.what());
  }
  impl->exposer->RegisterCollectable(impl->registry);
  return std::unique_ptr<Metrics>(new Metrics(std::move(impl)));
}

Metrics::Metrics(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Metrics::~Metrics() = default;

int Metrics::port() const {
  auto ports = impl_->exposer->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

void Metrics::OnState(consensus::Role role, Term term, NodeId leader, LogIndex commit, LogIndex applied) {
  impl_->term->Set(static_cast<double>(term.value()));
  for (size_t i = 0; i < kRoles.size(); ++i) impl_->role[i]->Set(kRoles[i] == role ? 1 : 0);
  impl_->is_leader->Set(role == consensus::Role::kLeader ? 1 : 0);
  impl_->leader_id->Set(static_cast<double>(leader.value()));
  impl_->commit->Set(static_cast<double>(commit.value()));
  impl_->applied->Set(static_cast<double>(applied.value()));
}

void Metrics::OnLeaderChange() {
  impl_->leader_changes->Increment();
}
void Metrics::ObserveFsync(double seconds) {
  impl_->fsync->Observe(seconds);
}
void Metrics::ObserveProposal(double seconds) {
  impl_->proposal->Observe(seconds);
}

}  // namespace dispotify::server
