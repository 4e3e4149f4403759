#pragma once
// Token buckets by key ("login/ip:10.0.0.7", "upload/user:alice"): each key may spend `burst`
// requests at once and then `rate_per_s` a second. Take() answers how long to wait when the
// bucket is empty, for a 429's Retry-After. Memory is bounded: past max_keys, the buckets that
// are full again (they hold no information) are dropped first, then the least recently used.
// Thread-safe; in memory, per node (a client spreading its attempts over N nodes gets N times the
// rate: the front balancer's own limits, or N small, bound that).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace dispotify::auth {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    double rate_per_s = 1;
    double burst = 10;
    size_t max_keys = 10000;
    std::function<Clock::time_point()> now = Clock::now;
  };

  explicit RateLimiter(Options options);

  // 0 when a token was taken (go on); otherwise the whole seconds (>= 1) until one is available.
  uint32_t Take(std::string_view key);
  // Whether Take would succeed, without taking (a check before expensive work).
  uint32_t Peek(std::string_view key);
  size_t size() const;

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point updated;
    std::list<std::string>::iterator lru;
  };
  uint32_t TakeLocked(std::string_view key, bool take);
  void EvictLocked(Clock::time_point now);

  const Options options_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
  std::list<std::string> lru_;  // front: most recently used
};

}  // namespace dispotify::auth
