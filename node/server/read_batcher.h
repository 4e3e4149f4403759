#pragma once
// Batches linearizable reads (etcd's linearizableReadLoop): at most one read-index round is in
// flight per node; every read that arrives meanwhile joins the next round, which starts as soon
// as the current one ends. A round started after a read arrived confirms it (the leader's
// heartbeat quorum of that round postdates the read), so one round to the leader serves all of
// its reads, and under N concurrent readers the rounds per read fall towards 1/N.
//
// Thread-safe. The caller that finds the next round not yet started runs it (no extra thread);
// the others wait for its result or for their own deadline.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "common/ids.h"
#include "common/status.h"

namespace dispotify::server {

class ReadBatcher {
 public:
  using Clock = std::chrono::steady_clock;
  // One round: the read index a leader confirmed (its commit index when the round started), or
  // why there is none. Runs on a caller's thread; must return by `deadline` (about).
  using Fetch = std::function<Result<LogIndex>(Clock::time_point deadline)>;

  explicit ReadBatcher(Fetch fetch);

  // The read index of a round that started after this call: kTimeout when the deadline passed
  // first, or the round's own failure.
  Result<LogIndex> Await(Clock::time_point deadline);

  uint64_t rounds() const { return rounds_.load(std::memory_order_relaxed); }
  uint64_t reads() const { return reads_.load(std::memory_order_relaxed); }

 private:
  struct Round {
    bool done = false;
    Result<LogIndex> result = Status::Unavailable("read round not run");
    Clock::time_point deadline;  // the latest of its readers' deadlines
  };

  const Fetch fetch_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool running_ = false;         // a round is in flight
  std::shared_ptr<Round> next_;  // collects the reads that arrive meanwhile
  std::atomic<uint64_t> rounds_{0};
  std::atomic<uint64_t> reads_{0};
};

}  // namespace dispotify::server
