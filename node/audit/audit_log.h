#pragma once
// The node's side of the audit trail: handlers record what happened (Record) and what was refused
// (Deny); a background thread hands the entries, in batches, to `submit`, which proposes them
// through Raft (catalog::AppendAuditCmd), where the state machine chains them. So any node
// records, every node holds the same trail, and a busy node adds one Raft entry per interval,
// not one per request.
//
// Denials go through a DenialAggregator (denials.h): counted per (client, reason) and written as
// at most one entry per key per interval, so a flood of bad requests adds a bounded number of
// entries.
//
// What can be lost: entries recorded but not yet submitted when the process dies (at most one
// flush interval, 1 s by default), and, while the cluster has no quorum, entries past
// max_pending (the oldest are kept: they are the ones leading up to the outage). Both are counted
// (dropped()) and logged; the chain itself never has a gap, because entries get their seq only
// when committed.
//
// Fields copied from a request go through audit::Sanitize here; callers may pass raw values.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/audit/entry.h"
#include "common/status.h"
#include "node/audit/denials.h"

namespace dispotify::audit {

class AuditLog {
 public:
  // Proposes the encoded (unchained) entries; returns once committed, or why not.
  using Submit = std::function<Status(const std::vector<std::string>& encoded)>;

  struct Options {
    std::chrono::milliseconds flush_interval{1000};
    int64_t denial_interval_ms = 10'000;
    size_t max_pending = 10'000;
    std::function<int64_t()> now_ms;  // wall clock
  };

  AuditLog(Options options, Submit submit);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  void Start();
  // Flushes what is pending (one last try) and stops the thread.
  void Stop();

  // An action that happened (or failed). time_ms is set here when 0.
  void Record(Entry entry);
  void Record(Action action, Outcome outcome, std::string_view actor, std::string_view client,
              std::string_view target, std::string_view code, std::string_view detail = {},
              std::string_view request_id = {});
  // One refused request (aggregated).
  void Deny(std::string_view client, std::string_view reason, std::string_view actor);

  // Submits everything pending now (tests, shutdown). OK when there was nothing to submit.
  Status Flush();

  uint64_t submitted() const;
  uint64_t dropped() const;

 private:
  void Run();

  const Options options_;
  const Submit submit_;

  mutable std::mutex mu_;
  std::vector<Entry> pending_;
  DenialAggregator denials_;
  uint64_t submitted_ = 0;
  uint64_t dropped_ = 0;

  std::mutex flush_mu_;  // one submission at a time, in order

  std::mutex thread_mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace dispotify::audit
