#pragma once
// Leader election through a coordination.k8s.io/v1 Lease, so that of several operator replicas only
// one acts, as client-go's leaderelection does it, with one difference in the deposed leader's
// favour of safety (below).
//
// The rules (ElectionState, pure and driven by the caller's monotonic clock):
//   - A candidate never compares wall clocks. It notes the local monotonic time at which it last
//     saw the Lease's record change (holder, renewTime, ...) and judges the lease expired when
//     leaseDurationSeconds have passed since then without a change.
//   - It may take the lease when there is none (Create), when the holder is empty (released) or
//     when the lease expired (Update with the resourceVersion it read: if anyone wrote in between,
//     the server answers 409 and it lost the race).
//   - The holder renews every retry period with an Update carrying the resourceVersion.
//   - The holder leads until renew_deadline after the moment it *sent* its last successful write.
//     Another candidate can only take over after observing that very write (any other
//     resourceVersion conflicts), hence no earlier than the write itself plus lease_duration; with
//     renew_deadline < lease_duration the old leader has stopped before, with lease_duration -
//     renew_deadline (5 s by default) to spare for clock rate differences and a slow owner.
//     (client-go measures the deadline from the start of its renew loop; measuring from the send of
//     the last success is never later.)
//   - Seeing another holder ends our leadership at once.
//
// LeaderElector runs the rules on a thread against a KubeApi. IsLeader() reads the clock itself,
// so it turns false at the deadline even while a request hangs; a second thread calls
// on_stopped_leading at that moment. Callbacks alternate started/stopped, never from two threads at
// once; after stopping it stays a candidate and may lead again (started is called again).
// Stop() on a leader calls on_stopped_leading, then releases the lease (empty holder, 1 s duration)
// so that a successor takes over at once; Abandon() stops without releasing (a crash, for tests).
//
// Identities must be unique per process (e.g. the pod name and a random suffix): a holder that
// reads its own identity in the Lease renews it.

#include <cpprest/json.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>

#include "common/status.h"
#include "operator/kube/client.h"

namespace dispotify::op::kube {

// The spec of a Lease, and its resourceVersion.
struct LeaseRecord {
  std::string holder;  // "" when free
  int32_t lease_duration_seconds = 0;
  std::string acquire_time;  // RFC 3339 MicroTime, as written
  std::string renew_time;
  int32_t transitions = 0;
  std::string resource_version;

  // Equal as a record (the resourceVersion is not compared).
  bool SameRecord(const LeaseRecord& o) const {
    return holder == o.holder && lease_duration_seconds == o.lease_duration_seconds &&
           acquire_time == o.acquire_time && renew_time == o.renew_time && transitions == o.transitions;
  }
};

LeaseRecord LeaseRecordFromJson(const web::json::value& lease);
// `base`: the Lease object last read (kept whole so an Update keeps its labels and annotations), or
// null for a new one named `ns`/`name`.
web::json::value LeaseToJson(const LeaseRecord& record, const web::json::value& base, const std::string& ns,
                             const std::string& name);

struct LeaderElectionTiming {
  std::chrono::milliseconds lease_duration{15000};
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};
};
// retry_period < renew_deadline < lease_duration, all positive.
Status ValidateTiming(const LeaderElectionTiming& t);

// The decisions of one candidate. Not thread-safe; times are the caller's monotonic clock.
class ElectionState {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  enum class Action : uint8_t {
    kWait,      // someone else holds a valid lease
    kCreate,    // there is no Lease
    kTakeOver,  // the lease is free or expired
    kRenew,     // we hold it
  };

  ElectionState(std::string identity, LeaderElectionTiming timing);

  // What was read from the server at `now` (nullopt: there is no Lease).
  void Observe(const std::optional<LeaseRecord>& record, TimePoint now);
  Action Next(TimePoint now) const;
  // The record to write for `action` at wall time `wall`.
  LeaseRecord Desired(Action action, std::chrono::system_clock::time_point wall) const;
  // Our write of `written` (as the server returned it) succeeded; it was sent at `sent`.
  void Written(const LeaseRecord& written, TimePoint sent);
  // Whether we lead at `now`: we hold the lease and the renew deadline has not passed.
  bool IsLeader(TimePoint now) const { return now < leading_until_; }
  TimePoint leading_until() const { return leading_until_; }
  // We no longer lead, whatever the clock says (stopping).
  void Resign() { leading_until_ = TimePoint::min(); }
  // When the observed holder's lease expires as we judge it.
  TimePoint expires_at() const;
  const std::optional<LeaseRecord>& observed() const { return observed_; }
  const std::string& identity() const { return identity_; }

 private:
  const std::string identity_;
  const LeaderElectionTiming timing_;
  std::optional<LeaseRecord> observed_;
  TimePoint observed_at_{};  // when observed_ last changed
  TimePoint leading_until_ = TimePoint::min();
};

struct LeaderElectionConfig {
  std::string lease_namespace;
  std::string lease_name;
  std::string identity;
  LeaderElectionTiming timing;
  // Called when we start leading; the owner may act from then on.
  std::function<void()> on_started_leading;
  // Called when we stop leading (deadline passed, lease lost, Stop()); the owner must have
  // stopped acting when it returns.
  std::function<void()> on_stopped_leading;
};

class LeaderElector {
 public:
  LeaderElector(KubeApi* api, LeaderElectionConfig config);
  ~LeaderElector();  // Stop()
  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  // Fails on invalid timing or an empty name or identity.
  Status Start();
  // Stops; a leader calls on_stopped_leading, then releases the lease.
  void Stop();
  // Stops without releasing the lease and without on_stopped_leading (a crash, for tests).
  void Abandon();

  bool IsLeader() const;
  // The holder last seen ("" when none or not known yet).
  std::string leader() const;

 private:
  void Loop(std::stop_token stop);
  void Monitor(std::stop_token stop);
  void Halt(bool release);
  bool Sleep(std::stop_token stop, std::chrono::milliseconds d);

  KubeApi* const api_;
  const LeaderElectionConfig config_;
  const ResourceRef lease_ref_;

  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  ElectionState state_;
  web::json::value last_object_;  // the Lease as last read or written
  uint64_t changes_ = 0;          // bumped on every change of state_, wakes Monitor
  // on_started_leading called, on_stopped_leading not yet. Only Monitor calls them while it runs,
  // then only Stop() (after Monitor ended), so they never overlap.
  bool announced_ = false;

  std::jthread loop_;
  std::jthread monitor_;
};

}  // namespace dispotify::op::kube
