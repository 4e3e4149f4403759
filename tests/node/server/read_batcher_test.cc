// ReadBatcher: one read-index round at a time; reads that arrive during a round share the next one,
// which starts only after they arrived (what makes a shared round linearizable for each of them).

#include "node/server/read_batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace dispotify::server {
namespace {

using namespace std::chrono_literals;
using Clock = ReadBatcher::Clock;

// A fetch that blocks until released, and answers with the number of the round.
class GatedFetch {
 public:
  Result<LogIndex> operator()(Clock::time_point deadline) {
    std::unique_lock lock(mu_);
    const uint64_t round = ++started_;
    cv_.notify_all();
    if (!cv_.wait_until(lock, deadline, [&] { return released_ >= round; }))
      return Status::Timeout("gate closed");
    if (fail_) return Status::Unavailable("no leader");
    return LogIndex(round * 100);
  }
  void Release(uint64_t round) {
    std::lock_guard lock(mu_);
    released_ = round;
    cv_.notify_all();
  }
  void WaitStarted(uint64_t round) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return started_ >= round; });
  }
  uint64_t started() {
    std::lock_guard lock(mu_);
    return started_;
  }
  void Fail() {
    std::lock_guard lock(mu_);
    fail_ = true;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t started_ = 0;
  uint64_t released_ = 0;
  bool fail_ = false;
};

TEST(ReadBatcherTest, ALoneReadRunsOneRound) {
  GatedFetch gate;
  gate.Release(1);
  ReadBatcher batcher([&](Clock::time_point d) { return gate(d); });
  auto r = batcher.Await(Clock::now() + 5s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->value(), 100u);
  EXPECT_EQ(batcher.rounds(), 1u);
  EXPECT_EQ(batcher.reads(), 1u);
}

TEST(ReadBatcherTest, ReadsArrivingDuringARoundShareTheNextOne) {
  GatedFetch gate;
  ReadBatcher batcher([&](Clock::time_point d) { return gate(d); });
  std::thread first([&] {
    auto r = batcher.Await(Clock::now() + 10s);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->value(), 100u);  // the round it started
  });
  gate.WaitStarted(1);
  // 16 reads arrive while round 1 is in flight: none may use round 1 (it started before them).
  constexpr int kReaders = 16;
  std::atomic<int> served{0};
  std::vector<std::thread> later;
  for (int i = 0; i < kReaders; ++i) {
    later.emplace_back([&] {
      auto r = batcher.Await(Clock::now() + 10s);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(r->value(), 200u);
      served.fetch_add(1);
    });
  }
  while (batcher.reads() < 1 + kReaders) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(gate.started(), 1u) << "a second round started while the first was in flight";
  gate.Release(2);
  first.join();
  for (auto& t : later) t.join();
  EXPECT_EQ(served.load(), kReaders);
  EXPECT_EQ(batcher.rounds(), 2u);
  EXPECT_EQ(gate.started(), 2u);
}

TEST(ReadBatcherTest, AReaderStopsWaitingAtItsDeadline) {
  GatedFetch gate;
  ReadBatcher batcher([&](Clock::time_point d) { return gate(d); });
  std::thread first([&] { (void)batcher.Await(Clock::now() + 10s); });
  gate.WaitStarted(1);
  const auto start = Clock::now();
  auto r = batcher.Await(Clock::now() + 50ms);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kTimeout);
  EXPECT_LT(Clock::now() - start, 5s);
  gate.Release(1);
  first.join();
  // The abandoned round is still run by the next reader that comes.
  gate.Release(2);
  auto next = batcher.Await(Clock::now() + 5s);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->value(), 200u);
}

TEST(ReadBatcherTest, ARoundsFailureReachesEachOfItsReaders) {
  GatedFetch gate;
  gate.Fail();
  gate.Release(100);
  ReadBatcher batcher([&](Clock::time_point d) { return gate(d); });
  auto r = batcher.Await(Clock::now() + 5s);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace dispotify::server
