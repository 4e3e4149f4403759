#include "node/auth/rate_limiter.h"

#include <gtest/gtest.h>

namespace dispotify::auth {
namespace {

using Clock = RateLimiter::Clock;

TEST(RateLimiter, BurstThenRateWithRetryAfter) {
  Clock::time_point now{};
  RateLimiter::Options o;
  o.rate_per_s = 0.5;  // one every 2 s
  o.burst = 3;
  o.now = [&] { return now; };
  RateLimiter rl(o);
  EXPECT_EQ(rl.Take("k"), 0u);
  EXPECT_EQ(rl.Take("k"), 0u);
  EXPECT_EQ(rl.Peek("k"), 0u);
  EXPECT_EQ(rl.Take("k"), 0u);
  EXPECT_EQ(rl.Take("k"), 2u);
  EXPECT_EQ(rl.Take("other"), 0u) << "keys are independent";
  now += std::chrono::seconds(1);
  EXPECT_EQ(rl.Take("k"), 1u);
  now += std::chrono::seconds(1);
  EXPECT_EQ(rl.Take("k"), 0u);
  EXPECT_EQ(rl.Take("k"), 2u);
  now += std::chrono::hours(1);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(rl.Take("k"), 0u) << "refills to the burst, not beyond";
  EXPECT_GT(rl.Take("k"), 0u);
}

TEST(RateLimiter, MemoryIsBoundedAndEmptyBucketsAreKeptLongest) {
  Clock::time_point now{};
  RateLimiter::Options o;
  o.rate_per_s = 0.001;
  o.burst = 1;
  o.max_keys = 4;
  o.now = [&] { return now; };
  RateLimiter rl(o);
  EXPECT_EQ(rl.Take("attacker"), 0u);
  EXPECT_GT(rl.Take("attacker"), 0u);
  // Many one-off keys do not let the attacker's empty bucket be forgotten while full ones exist.
  for (int i = 0; i < 3; ++i) {
    (void)rl.Peek("idle" + std::to_string(i));
  }
  for (int i = 0; i < 20; ++i) {
    (void)rl.Peek("idle-more" + std::to_string(i));
    EXPECT_LE(rl.size(), 4u);
  }
  EXPECT_GT(rl.Take("attacker"), 0u);
}

}  // namespace
}  // namespace dispotify::auth
