#include "operator/kube/leader_election.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/operator/kube/fake_kube_api.h"

namespace dispotify::op::kube {
namespace {

namespace json = web::json;
using namespace std::chrono_literals;
using Action = ElectionState::Action;
using TimePoint = ElectionState::TimePoint;

// A fake monotonic clock: times are offsets from an arbitrary origin.
TimePoint At(std::chrono::milliseconds ms) {
  return TimePoint(std::chrono::hours(1000) + ms);
}

LeaseRecord Held(const std::string& holder, const std::string& renew, const std::string& rv = "5") {
  LeaseRecord r;
  r.holder = holder;
  r.lease_duration_seconds = 15;
  r.acquire_time = "2026-01-01T00:00:00.000000Z";
  r.renew_time = renew;
  r.transitions = 2;
  r.resource_version = rv;
  return r;
}

const std::chrono::system_clock::time_point kWall{};

TEST(ElectionTiming, Validation) {
  EXPECT_TRUE(ValidateTiming({}).ok());
  EXPECT_FALSE(ValidateTiming({.lease_duration = 10s, .renew_deadline = 10s, .retry_period = 2s}).ok());
  EXPECT_FALSE(ValidateTiming({.lease_duration = 15s, .renew_deadline = 2s, .retry_period = 2s}).ok());
  EXPECT_FALSE(ValidateTiming({.lease_duration = 15s, .renew_deadline = 10s, .retry_period = 0s}).ok());
}

TEST(ElectionState, CreatesAMissingLeaseAndLeadsUntilTheRenewDeadline) {
  ElectionState me("me", {});
  me.Observe(std::nullopt, At(0ms));
  EXPECT_EQ(me.Next(At(0ms)), Action::kCreate);
  EXPECT_FALSE(me.IsLeader(At(0ms)));
  LeaseRecord want = me.Desired(Action::kCreate, kWall);
  EXPECT_EQ(want.holder, "me");
  EXPECT_EQ(want.lease_duration_seconds, 15);
  EXPECT_EQ(want.transitions, 0);
  EXPECT_FALSE(want.renew_time.empty());
  EXPECT_EQ(want.acquire_time, want.renew_time);

  // The write was sent at 100 ms and answered at 400 ms: the deadline runs from the send.
  want.resource_version = "6";
  me.Written(want, At(100ms));
  EXPECT_TRUE(me.IsLeader(At(400ms)));
  EXPECT_TRUE(me.IsLeader(At(10099ms)));
  EXPECT_FALSE(me.IsLeader(At(10100ms)));
  EXPECT_EQ(me.leading_until(), At(10100ms));
  EXPECT_EQ(me.Next(At(2000ms)), Action::kRenew);

  // A renewal keeps the acquire time and the transitions, and moves the deadline.
  LeaseRecord renewed = me.Desired(Action::kRenew, kWall + 2s);
  EXPECT_EQ(renewed.acquire_time, want.acquire_time);
  EXPECT_NE(renewed.renew_time, want.renew_time);
  EXPECT_EQ(renewed.transitions, 0);
  EXPECT_EQ(renewed.resource_version, "6");
  me.Written(renewed, At(2000ms));
  EXPECT_TRUE(me.IsLeader(At(11000ms)));
  EXPECT_FALSE(me.IsLeader(At(12000ms)));
}

TEST(ElectionState, WaitsAWholeLeaseFromWhenItSawTheHolderChangeNotFromWallClocks) {
  ElectionState me("me", {});
  // The holder's renewTime says the year 2000: a wall-clock comparison would call it long expired.
  const LeaseRecord old = Held("other", "2000-01-01T00:00:00.000000Z");
  me.Observe(old, At(0ms));
  EXPECT_EQ(me.Next(At(0ms)), Action::kWait);
  // Seeing the same record again does not restart the count.
  me.Observe(old, At(10s));
  EXPECT_EQ(me.Next(At(14999ms)), Action::kWait);
  EXPECT_EQ(me.Next(At(15s)), Action::kTakeOver);
  // A renewal seen at 12 s restarts it.
  me.Observe(Held("other", "2000-01-01T00:00:12.000000Z", "6"), At(12s));
  EXPECT_EQ(me.Next(At(15s)), Action::kWait);
  EXPECT_EQ(me.Next(At(26999ms)), Action::kWait);
  EXPECT_EQ(me.Next(At(27s)), Action::kTakeOver);
  EXPECT_EQ(me.expires_at(), At(27s));

  const LeaseRecord take = me.Desired(Action::kTakeOver, kWall);
  EXPECT_EQ(take.holder, "me");
  EXPECT_EQ(take.transitions, 3);
  EXPECT_EQ(take.resource_version, "6");  // the Update is conditional on what we saw
  EXPECT_EQ(take.acquire_time, take.renew_time);
  EXPECT_FALSE(me.IsLeader(At(27s)));
}

TEST(ElectionState, AReleasedLeaseIsFreeAtOnce) {
  ElectionState me("me", {});
  LeaseRecord released = Held("", "2026-01-01T00:00:00.000000Z");
  released.lease_duration_seconds = 1;
  me.Observe(released, At(0ms));
  EXPECT_EQ(me.Next(At(0ms)), Action::kTakeOver);
}

TEST(ElectionState, SeeingAnotherHolderEndsOurLeadershipAtOnce) {
  ElectionState me("me", {});
  me.Observe(std::nullopt, At(0ms));
  LeaseRecord mine = me.Desired(Action::kCreate, kWall);
  me.Written(mine, At(0ms));
  ASSERT_TRUE(me.IsLeader(At(1s)));
  me.Observe(Held("other", "x"), At(1s));
  EXPECT_FALSE(me.IsLeader(At(1s)));
  EXPECT_EQ(me.Next(At(1s)), Action::kWait);

  // A deleted Lease also ends it: anyone may create a new one.
  ElectionState again("me", {});
  again.Observe(std::nullopt, At(0ms));
  again.Written(again.Desired(Action::kCreate, kWall), At(0ms));
  again.Observe(std::nullopt, At(1s));
  EXPECT_FALSE(again.IsLeader(At(1s)));
  // A holder that reads its own identity renews (a restart with the same identity).
  ElectionState restarted("me", {});
  restarted.Observe(Held("me", "x"), At(0ms));
  EXPECT_EQ(restarted.Next(At(0ms)), Action::kRenew);
  EXPECT_FALSE(restarted.IsLeader(At(0ms)));  // not before its write succeeds
}

TEST(ElectionState, TheLeaseDurationIsRoundedUpToWholeSeconds) {
  ElectionState me("me", {.lease_duration = 1500ms, .renew_deadline = 1000ms, .retry_period = 200ms});
  me.Observe(std::nullopt, At(0ms));
  EXPECT_EQ(me.Desired(Action::kCreate, kWall).lease_duration_seconds, 2);
}

// The safety claim: whenever a candidate may take the lease over, the leader has already stopped.
// The candidate can only take over after observing the leader's last write (any other version
// conflicts), and it cannot observe it before the write was sent.
TEST(ElectionState, ADeposedLeaderStopsBeforeAnyCandidateCanTakeOver) {
  for (const auto timing : {LeaderElectionTiming{}, LeaderElectionTiming{3000ms, 2000ms, 250ms},
                            LeaderElectionTiming{1500ms, 1000ms, 100ms}}) {
    for (int64_t sent_ms : {0, 1, 777, 5000}) {
      for (int64_t seen_after_ms : {0, 1, 50, 900, 2500}) {
        ElectionState leader("leader", timing);
        leader.Observe(std::nullopt, At(0ms));
        LeaseRecord written = leader.Desired(ElectionState::Action::kCreate, kWall);
        written.resource_version = "9";
        leader.Written(written, At(std::chrono::milliseconds(sent_ms)));

        ElectionState candidate("candidate", timing);
        candidate.Observe(written, At(std::chrono::milliseconds(sent_ms + seen_after_ms)));
        for (int64_t t = sent_ms; t < sent_ms + seen_after_ms + 20000; t += 10) {
          const TimePoint now = At(std::chrono::milliseconds(t));
          if (candidate.Next(now) == ElectionState::Action::kTakeOver) {
            ASSERT_FALSE(leader.IsLeader(now))
                << "at " << t << " ms, sent " << sent_ms << ", seen +" << seen_after_ms;
          }
        }
      }
    }
  }
}

TEST(LeaseJson, RoundTripsAndKeepsWhatItDoesNotKnow) {
  const json::value base = json::value::parse(R"({
    "apiVersion":"coordination.k8s.io/v1","kind":"Lease",
    "metadata":{"name":"op","namespace":"ns","resourceVersion":"5","labels":{"keep":"me"}},
    "spec":{"holderIdentity":"a","leaseDurationSeconds":15,"renewTime":"r","acquireTime":"q","leaseTransitions":4,
            "strategy":"OldestEmulationVersion"}})");
  LeaseRecord r = LeaseRecordFromJson(base);
  EXPECT_EQ(r.holder, "a");
  EXPECT_EQ(r.lease_duration_seconds, 15);
  EXPECT_EQ(r.renew_time, "r");
  EXPECT_EQ(r.acquire_time, "q");
  EXPECT_EQ(r.transitions, 4);
  EXPECT_EQ(r.resource_version, "5");

  r.holder.clear();  // a release
  r.resource_version = "5";
  const json::value out = LeaseToJson(r, base, "ns", "op");
  EXPECT_FALSE(out.at("spec").has_field("holderIdentity"));
  EXPECT_EQ(out.at("spec").at("strategy").as_string(), "OldestEmulationVersion");
  EXPECT_EQ(out.at("metadata").at("labels").at("keep").as_string(), "me");
  EXPECT_EQ(out.at("metadata").at("resourceVersion").as_string(), "5");

  // A new Lease, from nothing and without a resourceVersion.
  LeaseRecord fresh;
  fresh.holder = "me";
  fresh.lease_duration_seconds = 15;
  const json::value made = LeaseToJson(fresh, json::value::null(), "ns", "op");
  EXPECT_EQ(made.at("kind").as_string(), "Lease");
  EXPECT_EQ(made.at("metadata").at("name").as_string(), "op");
  EXPECT_FALSE(made.at("metadata").has_field("resourceVersion"));
  EXPECT_EQ(LeaseRecordFromJson(made).holder, "me");
  EXPECT_TRUE(LeaseRecordFromJson(json::value::object()).holder.empty());
}

// The elector's threads against the in-memory API: short timings, loose bounds.
struct Calls {
  std::atomic<int> started{0}, stopped{0};
  LeaderElectionConfig Config(const std::string& identity) {
    LeaderElectionConfig c;
    c.lease_namespace = "ns";
    c.lease_name = "op";
    c.identity = identity;
    c.timing = {.lease_duration = 1000ms, .renew_deadline = 600ms, .retry_period = 50ms};
    c.on_started_leading = [this] { ++started; };
    c.on_stopped_leading = [this] { ++stopped; };
    return c;
  }
};

template <typename F>
bool Eventually(F cond, std::chrono::milliseconds timeout = 5s) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return cond();
}

TEST(LeaderElector, RefusesBadSettings) {
  fakes::FakeKubeApi api;
  Calls calls;
  LeaderElectionConfig c = calls.Config("");
  EXPECT_EQ(LeaderElector(&api, c).Start().code(), StatusCode::kInvalidArgument);
  c = calls.Config("me");
  c.timing.renew_deadline = c.timing.lease_duration;
  EXPECT_EQ(LeaderElector(&api, c).Start().code(), StatusCode::kInvalidArgument);
}

TEST(LeaderElector, LeadsRenewsAndReleasesOnStop) {
  fakes::FakeKubeApi api;
  Calls a_calls, b_calls;
  LeaderElector a(&api, a_calls.Config("a"));
  ASSERT_TRUE(a.Start().ok());
  ASSERT_TRUE(Eventually([&] { return a.IsLeader() && a_calls.started == 1; }));
  LeaderElector b(&api, b_calls.Config("b"));
  ASSERT_TRUE(b.Start().ok());
  // a keeps renewing: b never gets it.
  std::this_thread::sleep_for(1500ms);
  EXPECT_TRUE(a.IsLeader());
  EXPECT_FALSE(b.IsLeader());
  EXPECT_EQ(b.leader(), "a");
  EXPECT_GT(api.updates, 10);

  a.Stop();
  EXPECT_FALSE(a.IsLeader());
  EXPECT_EQ(a_calls.stopped, 1);
  auto lease = api.Find({Leases(), "ns", "op", ""});
  ASSERT_TRUE(lease.has_value());
  // Released: taken by b well before a lease duration. (Its started callback runs on its own
  // thread just after it takes the lease: waited for too, as for a above, or b.Stop() below could
  // come first and neither callback would run.)
  ASSERT_TRUE(Eventually([&] { return b.IsLeader() && b_calls.started == 1; }, 500ms));
  EXPECT_EQ(LeaseRecordFromJson(*api.Find({Leases(), "ns", "op", ""})).holder, "b");
  EXPECT_EQ(LeaseRecordFromJson(*api.Find({Leases(), "ns", "op", ""})).transitions, 1);
  b.Stop();
  EXPECT_EQ(b_calls.started, 1);
  EXPECT_EQ(b_calls.stopped, 1);
}

TEST(LeaderElector, StopsLeadingAtTheDeadlineWhenRenewalsFailAndLeadsAgainAfter) {
  fakes::FakeKubeApi api;
  Calls calls;
  LeaderElector a(&api, calls.Config("a"));
  ASSERT_TRUE(a.Start().ok());
  ASSERT_TRUE(Eventually([&] { return a.IsLeader(); }));
  const auto cut = std::chrono::steady_clock::now();
  api.SetWriteError(Status::Unavailable("partitioned"));
  ASSERT_TRUE(Eventually([&] { return calls.stopped == 1; }, 2s));
  const auto took = std::chrono::steady_clock::now() - cut;
  EXPECT_FALSE(a.IsLeader());
  EXPECT_LE(took, 600ms + 100ms);
  // Healed: nobody else took the lease, so a renews it and leads again.
  api.SetWriteError(Status::Ok());
  ASSERT_TRUE(Eventually([&] { return a.IsLeader() && calls.started == 2; }));
  a.Stop();
  EXPECT_EQ(calls.stopped, 2);
}

TEST(LeaderElector, AbandonNeitherReleasesNorCallsBack) {
  fakes::FakeKubeApi api;
  Calls calls;
  LeaderElector a(&api, calls.Config("a"));
  ASSERT_TRUE(a.Start().ok());
  ASSERT_TRUE(Eventually([&] { return a.IsLeader(); }));
  a.Abandon();
  EXPECT_FALSE(a.IsLeader());
  EXPECT_EQ(calls.stopped, 0);
  EXPECT_EQ(LeaseRecordFromJson(*api.Find({Leases(), "ns", "op", ""})).holder, "a");
}

}  // namespace
}  // namespace dispotify::op::kube
