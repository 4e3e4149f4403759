#include "operator/controller/work_queue.h"

#include <gtest/gtest.h>

#include <thread>

namespace dispotify::op::controller {
namespace {

using std::chrono::milliseconds;

TEST(WorkQueue, AKeyIsQueuedOnceAndNeverHandedOutTwiceAtOnce) {
  WorkQueue q;
  q.Add("ns/a");
  q.Add("ns/a");
  q.Add("ns/b");
  EXPECT_EQ(q.Len(), 2u);
  std::stop_source stop;
  EXPECT_EQ(*q.Get(stop.get_token()), "ns/a");
  q.Add("ns/a");  // changed while processed: queued again at Done, not before
  EXPECT_EQ(*q.Get(stop.get_token()), "ns/b");
  EXPECT_EQ(q.Len(), 0u);
  q.Done("ns/a");
  EXPECT_EQ(q.Len(), 1u);
  EXPECT_EQ(*q.Get(stop.get_token()), "ns/a");
}

TEST(WorkQueue, AddAfterWaitsAndAnEarlierKeyOvertakes) {
  WorkQueue q;
  std::stop_source stop;
  const auto start = WorkQueue::Clock::now();
  q.AddAfter("late", milliseconds(2000));
  std::thread t([&] {
    std::this_thread::sleep_for(milliseconds(50));
    q.AddAfter("soon", milliseconds(50));
  });
  EXPECT_EQ(*q.Get(stop.get_token()), "soon");
  EXPECT_LT(WorkQueue::Clock::now() - start, milliseconds(1500));
  t.join();
}

TEST(WorkQueue, RateLimitedDelaysDoubleUpToTheCapUntilForgotten) {
  WorkQueue q(milliseconds(10), milliseconds(50));
  EXPECT_EQ(q.AddRateLimited("k"), milliseconds(10));
  EXPECT_EQ(q.AddRateLimited("k"), milliseconds(20));
  EXPECT_EQ(q.AddRateLimited("k"), milliseconds(40));
  EXPECT_EQ(q.AddRateLimited("k"), milliseconds(50));
  EXPECT_EQ(q.Failures("k"), 4);
  q.Forget("k");
  EXPECT_EQ(q.AddRateLimited("k"), milliseconds(10));
}

TEST(WorkQueue, GetReturnsNothingOnceShutDownOrStopped) {
  WorkQueue q;
  std::stop_source stop;
  std::thread t([&] {
    std::this_thread::sleep_for(milliseconds(50));
    stop.request_stop();
  });
  EXPECT_FALSE(q.Get(stop.get_token()));
  t.join();
  std::stop_source other;
  q.ShutDown();
  q.Add("x");
  EXPECT_FALSE(q.Get(other.get_token()));
}

}  // namespace
}  // namespace dispotify::op::controller
