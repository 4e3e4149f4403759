// The node's audit log: batching into submissions, aggregated denials, and what happens while
// the cluster cannot commit (entries kept, in order, within a bound).

#include "node/audit/audit_log.h"

#include <gtest/gtest.h>

#include <mutex>

namespace dispotify::audit {
namespace {

struct Sink {
  std::mutex mu;
  std::vector<std::vector<Entry>> batches;
  bool fail = false;
  Status Submit(const std::vector<std::string>& encoded) {
    std::lock_guard<std::mutex> lock(mu);
    if (fail) return Status::Unavailable("no quorum");
    std::vector<Entry> batch;
    for (const auto& b : encoded) batch.push_back(*Decode(b));
    batches.push_back(std::move(batch));
    return Status::Ok();
  }
  std::vector<Entry> All() {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<Entry> out;
    for (const auto& b : batches) out.insert(out.end(), b.begin(), b.end());
    return out;
  }
};

AuditLog::Options Opts(int64_t* now, size_t max_pending = 100) {
  AuditLog::Options o;
  o.flush_interval = std::chrono::hours(1);  // the tests flush by hand
  o.denial_interval_ms = 1000;
  o.max_pending = max_pending;
  o.now_ms = [now] { return *now; };
  return o;
}

TEST(AuditLog, RecordsAreSanitizedStampedAndSubmittedInOneBatch) {
  int64_t now = 1000;
  Sink sink;
  AuditLog log(Opts(&now), [&](const auto& e) { return sink.Submit(e); });
  log.Record(Action::kUpload, Outcome::kOk, "alice", "10.0.0.1", "song-1", "ok", "sha256=ab");
  log.Record(Action::kLoginFailed, Outcome::kDenied, "", "10.0.0.2", "bob", "bad_credentials",
             "tried password=hunter2 and Bearer dsp_abcdefghijklmnopqrstuvwxyz", "req-1");
  ASSERT_TRUE(log.Flush().ok());
  ASSERT_EQ(sink.batches.size(), 1u);
  const auto all = sink.All();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].time_ms, 1000);
  EXPECT_EQ(all[0].seq, 0u) << "unchained: the state machine links them";
  EXPECT_EQ(all[1].actor, kAnonymous);
  EXPECT_EQ(all[1].request_id, "req-1");
  EXPECT_EQ(all[1].detail.find("hunter2"), std::string::npos) << all[1].detail;
  EXPECT_EQ(all[1].detail.find("dsp_abcdefghij"), std::string::npos) << all[1].detail;
  EXPECT_TRUE(log.Flush().ok()) << "nothing pending";
  EXPECT_EQ(sink.batches.size(), 1u);
  EXPECT_EQ(log.submitted(), 2u);
}

TEST(AuditLog, AFloodOfDenialsBecomesOneEntryPerClientAndReasonPerInterval) {
  int64_t now = 0;
  Sink sink;
  AuditLog log(Opts(&now), [&](const auto& e) { return sink.Submit(e); });
  for (int i = 0; i < 10000; ++i) log.Deny("10.0.0.9", "unauthenticated", "");
  for (int i = 0; i < 50; ++i) log.Deny("10.0.0.8", "forbidden", "lisa");
  ASSERT_TRUE(log.Flush().ok());
  EXPECT_TRUE(sink.All().empty()) << "the interval is still open";
  now = 1000;
  ASSERT_TRUE(log.Flush().ok());
  const auto all = sink.All();
  ASSERT_EQ(all.size(), 2u);
  for (const Entry& e : all) {
    EXPECT_EQ(e.action, Action::kDenied);
    EXPECT_EQ(e.outcome, Outcome::kDenied);
  }
  EXPECT_TRUE(all[0].detail.find("50") != std::string::npos || all[1].detail.find("50") != std::string::npos);
  EXPECT_TRUE(all[0].detail.find("10000") != std::string::npos ||
              all[1].detail.find("10000") != std::string::npos);
}

TEST(AuditLog, WithoutQuorumEntriesWaitInOrderWithinTheBound) {
  int64_t now = 0;
  Sink sink;
  sink.fail = true;
  AuditLog log(Opts(&now, 3), [&](const auto& e) { return sink.Submit(e); });
  for (int i = 0; i < 5; ++i)
    log.Record(Action::kDelete, Outcome::kOk, "a", "c", "song-" + std::to_string(i), "ok");
  EXPECT_EQ(log.Flush().code(), StatusCode::kUnavailable);
  log.Record(Action::kDelete, Outcome::kOk, "a", "c", "late", "ok");
  EXPECT_EQ(log.Flush().code(), StatusCode::kUnavailable);
  sink.fail = false;
  ASSERT_TRUE(log.Flush().ok());
  const auto all = sink.All();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].target, "song-0");
  EXPECT_EQ(all[2].target, "song-2");
  EXPECT_EQ(log.dropped(), 3u) << "two past the bound at once, then the late one";
}

TEST(AuditLog, StopSubmitsWhatIsPending) {
  int64_t now = 0;
  Sink sink;
  {
    AuditLog log(Opts(&now), [&](const auto& e) { return sink.Submit(e); });
    log.Start();
    log.Record(Action::kLogout, Outcome::kOk, "a", "c", "a", "ok");
    log.Deny("10.0.0.1", "csrf", "a");
    log.Stop();
  }
  EXPECT_EQ(sink.All().size(), 2u) << "the record and the open denial interval";
}

}  // namespace
}  // namespace dispotify::audit
